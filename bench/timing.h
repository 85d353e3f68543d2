// Wall-clock timing shared by the benchmarks.
#pragma once

#include <chrono>

namespace embrec::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace embrec::bench
