// Evaluating a model: embedding models through their user and item vectors (sgemm in eval/), count-based models
// through their own score blocks; both by the one full-ranking evaluator.
#pragma once

#include "embrec/data/dataset.h"
#include "embrec/eval/evaluator.h"
#include "embrec/models/model.h"

namespace embrec::models {

// Ranking metrics for every model; for models that predict ratings, when the stage's targets carry ratings, also
// rmse, mae, r2 and explained_variance over every held-out (user, item, rating), in the "all" group.
eval::EvalResult evaluate_model(Model& model, const data::EvalTask& task, int32_t item_count,
                                const eval::EvalConfig& config, const eval::UserGroups* groups = nullptr);

// Adds the rating metrics above to result's "all" group (nothing when they do not apply).
void add_rating_metrics(Model& model, const data::EvalTask& task, eval::EvalResult& result);

}  // namespace embrec::models
