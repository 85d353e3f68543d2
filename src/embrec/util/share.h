// How a data-parallel job splits work among its ranks, said once for the trainer (a batch's rows) and the models
// (ICLRec's users to encode before k-means).
#pragma once

#include <cstdint>
#include <utility>

namespace embrec {

// The contiguous share [begin, end) of `count` items that rank `rank` of `size` takes: the shares of ranks 0..size-1
// follow each other and cover every item once; their sizes differ by at most one.
inline std::pair<int64_t, int64_t> share_of(int64_t count, int rank, int size) {
  return {count * rank / size, count * (rank + 1) / size};
}

}  // namespace embrec
