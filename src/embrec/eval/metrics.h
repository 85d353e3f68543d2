// Ranking metrics as pure functions of one user's top-K list and relevant set, with the definitions of Microsoft
// Recommenders for multi-item targets; hand-checked in tests/eval/metrics_test.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace embrec::eval {

// Names accepted in configs: hr, recall, ndcg, mrr, map, precision.
const std::vector<std::string>& metric_names();

// `ranked` is the top list (best first, at least k long unless fewer items exist), `relevant` the targets.
// hr@k: 1 if any target is in the top k. recall@k: hits / |relevant|. precision@k: hits / k.
// ndcg@k: binary-relevance DCG / ideal DCG over min(|relevant|, k) positions, gain 1/log2(rank + 1) (rank 1-based).
// mrr@k: 1 / rank of the first target within k, else 0.
// map@k: (1 / |relevant|) * sum over target positions i <= k of precision@i (Microsoft Recommenders' `map`).
double metric_at_k(const std::string& name, const int32_t* ranked, int64_t ranked_count, const int32_t* relevant,
                   int64_t relevant_count, int64_t k);

// Single-target fast path: the same metric given only the 0-based rank of the one target among the candidates
// (rank >= k means it is not in the top k).
double metric_from_rank(const std::string& name, int64_t rank, int64_t k);

// Rating metrics over `count` (truth, predicted) pairs, as Microsoft Recommenders' python_evaluation.py defines
// them (sklearn underneath): rmse = sqrt(mean (y - ŷ)²); mae = mean |y - ŷ|; r_squared = 1 - SS_res / SS_tot with
// SS_tot = sum (y - mean y)²; explained_variance = 1 - Var(y - ŷ) / Var(y) (population variances, so a constant
// offset in ŷ is not penalised, unlike R²). When Var(y) = 0 the last two follow sklearn: 1 for a perfect
// prediction, else 0. All are 0 for count = 0.
const std::vector<std::string>& rating_metric_names();  // rmse, mae, r2, explained_variance
// Whether a smaller value of the metric is better (rmse, mae); every other metric is better larger.
bool lower_is_better(const std::string& metric);
double rmse(const float* truth, const float* predicted, int64_t count);
double mae(const float* truth, const float* predicted, int64_t count);
double r_squared(const float* truth, const float* predicted, int64_t count);
double explained_variance(const float* truth, const float* predicted, int64_t count);

}  // namespace embrec::eval
