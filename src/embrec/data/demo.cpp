// The synthetic demo generator: intents, Zipf popularity, head/tail users and intent-dependent transitions.
//
// Each intent owns a contiguous slice of the catalogue and a random "chain" through its items. A user holds one or
// two intents; each next item either follows the chain from the previous item (sequential signal a sequence model
// can learn and popularity cannot), or is drawn by Zipf popularity within the current intent (what popularity
// captures). Head users have long histories, tail users short ones, as in the S4Rec paper's motivation.
#include "embrec/data/demo.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "embrec/util/error.h"

namespace embrec::data {

Dataset generate_demo(const DemoOptions& options) {
  if (options.users <= 0 || options.items <= 0 || options.intents <= 0 || options.items < options.intents * 2)
    fail("demo: need users > 0 and items >= 2 * intents (got users={}, items={}, intents={})", options.users,
         options.items, options.intents);
  std::mt19937_64 random(options.seed);
  const int32_t per_intent = options.items / options.intents;

  // Zipf weights within an intent's slice, and a chain (a random permutation) through the slice.
  std::vector<double> zipf(per_intent);
  for (int32_t r = 0; r < per_intent; ++r) zipf[r] = 1.0 / std::pow(r + 1.0, options.zipf_exponent);
  std::discrete_distribution<int32_t> popular(zipf.begin(), zipf.end());
  std::vector<std::vector<int32_t>> chain(options.intents);
  std::vector<int32_t> next_in_chain(options.items, -1);
  for (int32_t k = 0; k < options.intents; ++k) {
    chain[k].resize(per_intent);
    std::iota(chain[k].begin(), chain[k].end(), k * per_intent);
    std::shuffle(chain[k].begin(), chain[k].end(), random);
    for (int32_t i = 0; i < per_intent; ++i) next_in_chain[chain[k][i]] = chain[k][(i + 1) % per_intent];
  }

  Dataset dataset;
  dataset.name = "demo";
  // Register items in id order so internal ids equal item numbers.
  for (int32_t i = 0; i < options.items; ++i) dataset.items.get_or_add("i" + std::to_string(i + 1));

  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int32_t> any_intent(0, options.intents - 1);
  std::vector<int32_t> sequence;
  std::vector<int64_t> timestamps;
  for (int32_t u = 0; u < options.users; ++u) {
    dataset.users.get_or_add("u" + std::to_string(u + 1));
    const bool head = unit(random) < options.head_share;
    const int32_t lo = head ? options.head_min_length : options.tail_min_length;
    const int32_t hi = head ? options.head_max_length : options.tail_max_length;
    const int32_t length = std::uniform_int_distribution<int32_t>(lo, hi)(random);
    const int32_t intents[2] = {any_intent(random), any_intent(random)};
    int32_t current = intents[0];
    int32_t previous = -1;
    sequence.clear();
    timestamps.clear();
    for (int32_t t = 0; t < length; ++t) {
      if (unit(random) < 0.1) current = intents[unit(random) < 0.5 ? 0 : 1];  // occasional switch between intents
      int32_t item;
      if (previous >= 0 && previous / per_intent == current && unit(random) < options.transition_strength) {
        item = next_in_chain[previous];
      } else {
        item = current * per_intent + popular(random);
      }
      sequence.push_back(item);
      timestamps.push_back(1'600'000'000LL + static_cast<int64_t>(u) * 1000 + t);
      previous = item;
    }
    dataset.interactions.push_user(sequence.data(), static_cast<int64_t>(sequence.size()), nullptr,
                                   timestamps.data());
  }
  return dataset;
}

}  // namespace embrec::data
