// The synthetic demo generator shipped in the code: users with a few latent intents, Zipf item popularity,
// head (long) and tail (short) histories, intent-dependent sequential transitions. Seeded and deterministic.
#pragma once

#include <cstdint>

#include "embrec/data/dataset.h"

namespace embrec::data {

struct DemoOptions {
  int32_t users = 3000;
  int32_t items = 1000;
  int32_t intents = 8;           // latent intents; each owns a slice of the catalogue
  double zipf_exponent = 1.0;    // item popularity within an intent
  double head_share = 0.2;       // share of users with long histories
  int32_t head_min_length = 30, head_max_length = 80;
  int32_t tail_min_length = 5, tail_max_length = 12;
  double transition_strength = 0.7;  // probability that the next item follows the intent's transition chain
  uint64_t seed = 7;
};

Dataset generate_demo(const DemoOptions& options);

}  // namespace embrec::data
