// Seeds of independent random streams: one stream per (seed, a, b), e.g. (run seed, epoch, batch), so that a resumed
// run and every rank of a data-parallel job draw exactly what one uninterrupted process draws.
#pragma once

#include <cstdint>

namespace embrec {

// splitmix64 of the combined words.
inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (a + 1) + 0xBF58476D1CE4E5B9ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

}  // namespace embrec
