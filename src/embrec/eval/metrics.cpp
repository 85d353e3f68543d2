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

}  // namespace embrec::eval
