// Ranking metrics @K; definitions in metrics.h, hand-checked in tests/eval/metrics_test.cpp.
#include "embrec/eval/metrics.h"

#include <algorithm>
#include <cmath>

#include "embrec/util/error.h"

namespace embrec::eval {

const std::vector<std::string>& metric_names() {
  static const std::vector<std::string> names{"hr", "recall", "ndcg", "mrr", "map", "precision"};
  return names;
}

double metric_at_k(const std::string& name, const int32_t* ranked, int64_t ranked_count, const int32_t* relevant,
                   int64_t relevant_count, int64_t k) {
  if (relevant_count <= 0 || k <= 0) return 0.0;
  const int64_t depth = std::min(ranked_count, k);
  auto is_relevant = [&](int32_t item) { return std::find(relevant, relevant + relevant_count, item) != relevant + relevant_count; };
  int64_t hits = 0;
  double dcg = 0.0, first_reciprocal = 0.0, precision_sum = 0.0;
  for (int64_t position = 0; position < depth; ++position) {
    if (!is_relevant(ranked[position])) continue;
    ++hits;
    dcg += 1.0 / std::log2(static_cast<double>(position) + 2.0);
    if (hits == 1) first_reciprocal = 1.0 / static_cast<double>(position + 1);
    precision_sum += static_cast<double>(hits) / static_cast<double>(position + 1);
  }
  if (name == "hr") return hits > 0 ? 1.0 : 0.0;
  if (name == "recall") return static_cast<double>(hits) / static_cast<double>(relevant_count);
  if (name == "precision") return static_cast<double>(hits) / static_cast<double>(k);
  if (name == "mrr") return first_reciprocal;
  if (name == "map") return precision_sum / static_cast<double>(relevant_count);
  if (name == "ndcg") {
    double ideal = 0.0;
    for (int64_t position = 0; position < std::min(relevant_count, k); ++position)
      ideal += 1.0 / std::log2(static_cast<double>(position) + 2.0);
    return dcg / ideal;
  }
  fail("unknown metric '{}'", name);
}

double metric_from_rank(const std::string& name, int64_t rank, int64_t k) {
  const bool hit = rank >= 0 && rank < k;
  if (name == "hr" || name == "recall") return hit ? 1.0 : 0.0;
  if (name == "precision") return hit ? 1.0 / static_cast<double>(k) : 0.0;
  if (name == "mrr" || name == "map") return hit ? 1.0 / static_cast<double>(rank + 1) : 0.0;
  if (name == "ndcg") return hit ? 1.0 / std::log2(static_cast<double>(rank) + 2.0) : 0.0;
  fail("unknown metric '{}'", name);
}

const std::vector<std::string>& rating_metric_names() {
  static const std::vector<std::string> names{"rmse", "mae", "r2", "explained_variance"};
  return names;
}

bool lower_is_better(const std::string& metric) { return metric == "rmse" || metric == "mae"; }

double rmse(const float* truth, const float* predicted, int64_t count) {
  if (count <= 0) return 0.0;
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const double error = static_cast<double>(truth[i]) - predicted[i];
    sum += error * error;
  }
  return std::sqrt(sum / static_cast<double>(count));
}

double mae(const float* truth, const float* predicted, int64_t count) {
  if (count <= 0) return 0.0;
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i) sum += std::abs(static_cast<double>(truth[i]) - predicted[i]);
  return sum / static_cast<double>(count);
}

namespace {
// Mean of f(i) over i < count, in double.
template <typename F>
double mean_of(int64_t count, F f) {
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i) sum += f(i);
  return sum / static_cast<double>(count);
}

// sklearn's rule for a constant truth (force_finite): a perfect prediction scores 1, anything else 0.
double one_minus_ratio(double numerator, double denominator) {
  if (denominator == 0.0) return numerator == 0.0 ? 1.0 : 0.0;
  return 1.0 - numerator / denominator;
}
}  // namespace

double r_squared(const float* truth, const float* predicted, int64_t count) {
  if (count <= 0) return 0.0;
  const double mean = mean_of(count, [&](int64_t i) { return static_cast<double>(truth[i]); });
  double residual = 0.0, total = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    const double error = static_cast<double>(truth[i]) - predicted[i];
    const double spread = static_cast<double>(truth[i]) - mean;
    residual += error * error;
    total += spread * spread;
  }
  return one_minus_ratio(residual, total);
}

double explained_variance(const float* truth, const float* predicted, int64_t count) {
  if (count <= 0) return 0.0;
  const double mean_truth = mean_of(count, [&](int64_t i) { return static_cast<double>(truth[i]); });
  const double mean_error =
      mean_of(count, [&](int64_t i) { return static_cast<double>(truth[i]) - predicted[i]; });
  const double error_variance = mean_of(count, [&](int64_t i) {
    const double centred = static_cast<double>(truth[i]) - predicted[i] - mean_error;
    return centred * centred;
  });
  const double truth_variance = mean_of(count, [&](int64_t i) {
    const double centred = static_cast<double>(truth[i]) - mean_truth;
    return centred * centred;
  });
  return one_minus_ratio(error_variance, truth_variance);
}

}  // namespace embrec::eval
