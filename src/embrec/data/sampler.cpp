// SequenceSampler: seeded epoch plans with optional length bucketing, and batch filling without reallocation.
#include "embrec/data/sampler.h"

#include <algorithm>
#include <limits>
#include <random>
#include <unordered_set>

#include "embrec/util/error.h"

namespace embrec::data {

namespace {
uint64_t mix(uint64_t seed, uint64_t a, uint64_t b = 0) {
  // splitmix64 of the combined words: independent streams per (seed, epoch, batch).
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (a + 1) + 0xBF58476D1CE4E5B9ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
}  // namespace

SequenceSampler::SequenceSampler(const Sequences& train, int32_t item_count, const SamplerOptions& options)
    : train_(train), item_count_(item_count), options_(options) {
  if (options.batch_size <= 0) fail("sampler: batch_size must be positive, got {}", options.batch_size);
  if (options.max_length <= 0) fail("sampler: max_length must be positive, got {}", options.max_length);
  if (options.ratings && !train.has_ratings())
    fail("sampler: ratings are asked for (a rating loss) but the training data has none (its format has no rating "
         "column)");
  const int64_t least = options.all_items ? 1 : 2;
  for (int32_t u = 0; u < train.user_count(); ++u)
    if (train.length(u) >= least) users_.push_back(u);
  if (users_.empty()) fail("sampler: no user has {} or more training interactions", least);
}

std::vector<std::vector<int32_t>> SequenceSampler::epoch_plan(int64_t epoch) const {
  std::mt19937_64 random(mix(options_.seed, static_cast<uint64_t>(epoch)));
  std::vector<int32_t> order = users_;
  std::shuffle(order.begin(), order.end(), random);
  const size_t batch = static_cast<size_t>(options_.batch_size);
  if (options_.length_bucketing) {
    // Sort windows of 64 batches by (clipped) length: batches come out of similar length, yet each window is a
    // random sample of users, so consecutive epochs still see different company.
    const size_t window = batch * 64;
    const int64_t cap = options_.all_items ? std::numeric_limits<int64_t>::max() : options_.max_length + 1LL;
    for (size_t lo = 0; lo < order.size(); lo += window) {
      const size_t hi = std::min(order.size(), lo + window);
      std::stable_sort(order.begin() + lo, order.begin() + hi, [&](int32_t a, int32_t b) {
        return std::min(train_.length(a), cap) < std::min(train_.length(b), cap);
      });
    }
  }
  std::vector<std::vector<int32_t>> plan;
  for (size_t lo = 0; lo < order.size(); lo += batch)
    plan.emplace_back(order.begin() + lo, order.begin() + std::min(order.size(), lo + batch));
  if (options_.length_bucketing) std::shuffle(plan.begin(), plan.end(), random);
  return plan;
}

void SequenceSampler::fill(const std::vector<int32_t>& users, int64_t epoch, int64_t batch_index,
                           SequenceBatch& out) const {
  // Targets per user: the next-item layout pairs each item with its successor (length - 1 pairs, the last
  // max_length of them); all_items makes every item a target and keeps the whole list.
  const bool all_items = options_.all_items;
  auto target_count = [&](int32_t u) {
    return all_items ? train_.length(u) : std::min<int64_t>(train_.length(u) - 1, options_.max_length);
  };
  int32_t length = 1;
  for (int32_t u : users) length = std::max<int32_t>(length, static_cast<int32_t>(target_count(u)));
  out.size = static_cast<int32_t>(users.size());
  out.length = length;
  out.users.assign(users.begin(), users.end());
  out.input.assign(static_cast<size_t>(out.size) * length, 0);
  out.target.assign(static_cast<size_t>(out.size) * length, 0);
  if (options_.negatives) {
    out.negative.assign(static_cast<size_t>(out.size) * length, 0);
  } else {
    out.negative.clear();
  }
  if (options_.ratings) {
    out.rating.assign(static_cast<size_t>(out.size) * length, 0.0f);
  } else {
    out.rating.clear();
  }
  std::mt19937_64 random(mix(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(batch_index) + 1));
  std::uniform_int_distribution<int32_t> any_item(0, item_count_ - 1);
  std::unordered_set<int32_t> seen;
  for (int32_t row = 0; row < out.size; ++row) {
    const int32_t u = users[row];
    const int32_t* items = train_.begin(u);
    const int64_t pairs = target_count(u);
    const int64_t first_target = train_.length(u) - pairs;  // index of the first target used
    const int64_t first = all_items ? first_target : first_target - 1;  // first input index used
    int64_t* input = out.input.data() + static_cast<size_t>(row) * length + (length - pairs);
    int64_t* target = out.target.data() + static_cast<size_t>(row) * length + (length - pairs);
    for (int64_t j = 0; j < pairs; ++j) {
      input[j] = items[first + j] + 1;
      target[j] = items[first_target + j] + 1;
    }
    if (options_.ratings) {
      const float* ratings = train_.ratings.data() + train_.offsets[u] + first_target;
      std::copy(ratings, ratings + pairs, out.rating.data() + static_cast<size_t>(row) * length + (length - pairs));
    }
    if (options_.negatives) {
      seen.clear();
      seen.insert(train_.begin(u), train_.end(u));
      int64_t* negative = out.negative.data() + static_cast<size_t>(row) * length + (length - pairs);
      const bool can_avoid = static_cast<int64_t>(seen.size()) < item_count_;
      for (int64_t j = 0; j < pairs; ++j) {
        int32_t candidate = any_item(random);
        while (can_avoid && seen.count(candidate)) candidate = any_item(random);
        negative[j] = candidate + 1;
      }
    }
  }
}

int32_t fill_histories(const Sequences& histories, const int32_t* users, int32_t count, int32_t max_length,
                       std::vector<int64_t>& out) {
  int32_t length = 1;
  for (int32_t i = 0; i < count; ++i)
    length = std::max<int32_t>(length, std::min<int64_t>(histories.length(users[i]), max_length));
  out.assign(static_cast<size_t>(count) * length, 0);
  for (int32_t i = 0; i < count; ++i) {
    const int32_t u = users[i];
    const int64_t used = std::min<int64_t>(histories.length(u), length);
    const int32_t* items = histories.end(u) - used;
    int64_t* row = out.data() + static_cast<size_t>(i) * length + (length - used);
    for (int64_t j = 0; j < used; ++j) row[j] = items[j] + 1;
  }
  return length;
}

}  // namespace embrec::data
