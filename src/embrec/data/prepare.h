// From a RawLog to a Dataset: implicit conversion by rating threshold, duplicate policy, iterative k-core
// filtering, contiguous ids and per-user time ordering.
#pragma once

#include <cstdint>
#include <string>

#include "embrec/data/dataset.h"
#include "embrec/data/readers.h"
#include "embrec/util/config.h"

namespace embrec::data {

// Repeated (user, item) pairs: all kept, or only the first or the last by time.
enum class Dedup { Keep, First, Last };
inline const Names<Dedup> kDedupNames = {{"keep", Dedup::Keep}, {"first", Dedup::First}, {"last", Dedup::Last}};

struct PrepareOptions {
  // Keep only interactions with rating >= min_rating (implicit feedback); disabled when has_min_rating is false.
  bool has_min_rating = false;
  double min_rating = 0.0;
  // Repeated (user, item) pairs: "keep" all, keep the "first" or the "last" by time.
  Dedup dedup = Dedup::Keep;
  // Iterative k-core: drop users with fewer than user_core and items with fewer than item_core interactions,
  // repeated until nothing changes. 0 disables.
  int user_core = 0;
  int item_core = 0;
};

// Throws Error naming the source when filtering leaves nothing.
Dataset prepare_dataset(const RawLog& log, const PrepareOptions& options);

// The k-core fixpoint on (user, item) pairs; returns the mask of kept entries. Exposed for tests.
std::vector<bool> kcore_mask(const std::vector<int32_t>& user, const std::vector<int32_t>& item, int32_t user_count,
                             int32_t item_count, int user_core, int item_core);

}  // namespace embrec::data
