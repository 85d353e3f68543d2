// Top-K recommendations from a loaded run, for known users (their whole known history, as `embrec export` stores
// it) or for fresh histories: what the Python module's run.recommend() returns. Embedding models rank through the
// same exact Faiss item index the export builds by default (flat, inner product), so the answers equal the
// service's on such an export; count-based models rank their own score rows.
#pragma once

#include <cstdint>
#include <vector>

#include "embrec/data/dataset.h"
#include "embrec/index/item_index.h"
#include "embrec/train/experiment.h"

namespace embrec::train {

// One list per query, best first; each at most k items (fewer only when exclusion leaves fewer).
using Recommendations = std::vector<std::vector<index::ScoredItem>>;

// For known users (internal ids): history = every interaction of the user in the dataset (train, valid and test),
// which is also what `exclude_seen` removes.
Recommendations recommend_users(Experiment& experiment, const std::vector<int32_t>& users, int64_t k,
                                bool exclude_seen);

// For fresh histories (internal item ids, oldest first): the model encodes each; a model that learns user vectors
// by user id (MF, NCF, ...) cannot, and is an Error naming it.
Recommendations recommend_histories(Experiment& experiment, const data::Sequences& histories, int64_t k,
                                    bool exclude_seen);

}  // namespace embrec::train
