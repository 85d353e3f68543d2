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

// News data (task.impressions): adds the per-impression metrics (eval/impression_metrics.h) to result's "all"
// group, each candidate scored as the full ranking scores it: the user's vector against the news vector (user and
// item vectors as evaluate_model computed them), or the model's score block (count-based: both undefined).
void add_impression_metrics(Model& model, const data::EvalTask& task, const torch::Tensor& user_vectors,
                            const torch::Tensor& item_vectors, int32_t item_count, eval::EvalResult& result);

// Adds the rating metrics above to result's "all" group (nothing when they do not apply).
void add_rating_metrics(Model& model, const data::EvalTask& task, eval::EvalResult& result);

}  // namespace embrec::models
