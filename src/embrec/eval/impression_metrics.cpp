// Impression metrics (AUC, MRR, nDCG@k) and their means; definitions in impression_metrics.h.
//
// All three come from one ordering of the candidates by descending score, so the mean over impressions sorts each
// impression once, in a workspace reused across impressions.
#include "embrec/eval/impression_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "embrec/util/error.h"

namespace embrec::eval {

namespace {

constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();

// The candidates by descending score, equal scores in display order (see the header); `order` is reused.
void rank_candidates(const int8_t* labels, const float* scores, int64_t count, std::vector<int64_t>& order) {
  for (int64_t i = 0; i < count; ++i) {
    if (labels[i] != 0 && labels[i] != 1)
      fail("impression metrics: label {} of candidate {} is not 0 or 1", static_cast<int>(labels[i]), i + 1);
    if (std::isnan(scores[i])) fail("impression metrics: the score of candidate {} is NaN", i + 1);
  }
  order.resize(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return scores[a] > scores[b]; });
}

int64_t clicked_count(const int8_t* labels, int64_t count) {
  int64_t clicked = 0;
  for (int64_t i = 0; i < count; ++i) clicked += labels[i] == 1;
  return clicked;
}

// Mann-Whitney form of the ROC area: walking groups of equal score from the top, each clicked candidate beats the
// unclicked ones of lower score and ties half of those of its own score, which is what the trapezoids of sklearn's
// ROC curve add up to.
double auc_of(const int8_t* labels, const float* scores, const std::vector<int64_t>& order) {
  const int64_t count = static_cast<int64_t>(order.size());
  const int64_t clicked = clicked_count(labels, count);
  const int64_t unclicked = count - clicked;
  if (clicked == 0 || unclicked == 0) return kUndefined;
  double wins = 0.0;
  int64_t unclicked_above = 0;
  for (int64_t start = 0; start < count;) {
    int64_t end = start;
    int64_t group_clicked = 0, group_unclicked = 0;
    while (end < count && scores[order[end]] == scores[order[start]]) {
      (labels[order[end]] == 1 ? group_clicked : group_unclicked) += 1;
      ++end;
    }
    const int64_t unclicked_below = unclicked - unclicked_above - group_unclicked;
    wins += static_cast<double>(group_clicked) *
            (static_cast<double>(unclicked_below) + 0.5 * static_cast<double>(group_unclicked));
    unclicked_above += group_unclicked;
    start = end;
  }
  return wins / (static_cast<double>(clicked) * static_cast<double>(unclicked));
}

double mrr_of(const int8_t* labels, const std::vector<int64_t>& order) {
  double reciprocal_sum = 0.0;
  int64_t clicked = 0;
  for (size_t rank = 0; rank < order.size(); ++rank) {
    if (labels[order[rank]] != 1) continue;
    reciprocal_sum += 1.0 / static_cast<double>(rank + 1);
    ++clicked;
  }
  return clicked == 0 ? kUndefined : reciprocal_sum / static_cast<double>(clicked);
}

// With 0/1 labels every gain 2^y - 1 is 0 or 1; the ideal order puts the clicked first.
double ndcg_of(const int8_t* labels, const std::vector<int64_t>& order, int64_t k) {
  const int64_t depth = std::min<int64_t>(k, static_cast<int64_t>(order.size()));
  double dcg = 0.0;
  for (int64_t rank = 0; rank < depth; ++rank)
    if (labels[order[rank]] == 1) dcg += 1.0 / std::log2(static_cast<double>(rank) + 2.0);
  const int64_t ideal_hits = std::min(clicked_count(labels, static_cast<int64_t>(order.size())), depth);
  double ideal = 0.0;
  for (int64_t rank = 0; rank < ideal_hits; ++rank) ideal += 1.0 / std::log2(static_cast<double>(rank) + 2.0);
  return ideal == 0.0 ? kUndefined : dcg / ideal;
}

double mean_or_undefined(double sum, int64_t count) {
  return count == 0 ? kUndefined : sum / static_cast<double>(count);
}

}  // namespace

double impression_auc(const int8_t* labels, const float* scores, int64_t count) {
  std::vector<int64_t> order;
  rank_candidates(labels, scores, count, order);
  return auc_of(labels, scores, order);
}

double impression_mrr(const int8_t* labels, const float* scores, int64_t count) {
  std::vector<int64_t> order;
  rank_candidates(labels, scores, count, order);
  return mrr_of(labels, order);
}

double impression_ndcg(const int8_t* labels, const float* scores, int64_t count, int64_t k) {
  if (k <= 0) fail("impression metrics: ndcg needs k > 0, got {}", k);
  std::vector<int64_t> order;
  rank_candidates(labels, scores, count, order);
  return ndcg_of(labels, order, k);
}

ImpressionMetrics mean_impression_metrics(const int64_t* offsets, int64_t impression_count, const int8_t* labels,
                                          const float* scores) {
  ImpressionMetrics metrics;
  metrics.impressions = impression_count;
  double auc_sum = 0.0, mrr_sum = 0.0, ndcg_5_sum = 0.0, ndcg_10_sum = 0.0;
  std::vector<int64_t> order;
  for (int64_t i = 0; i < impression_count; ++i) {
    const int8_t* impression_labels = labels + offsets[i];
    const float* impression_scores = scores + offsets[i];
    const int64_t count = offsets[i + 1] - offsets[i];
    const int64_t absent = std::count(impression_labels, impression_labels + count, int8_t{-1});
    if (absent > 0 || count == 0) {
      if (absent != count) fail("impression metrics: impression {} mixes absent (-1) and present labels", i + 1);
      ++metrics.unlabelled;
      continue;
    }
    rank_candidates(impression_labels, impression_scores, count, order);
    const int64_t clicked = clicked_count(impression_labels, count);
    if (clicked == 0) {
      ++metrics.without_clicks;
      continue;
    }
    mrr_sum += mrr_of(impression_labels, order);
    ndcg_5_sum += ndcg_of(impression_labels, order, 5);
    ndcg_10_sum += ndcg_of(impression_labels, order, 10);
    ++metrics.ranking_impressions;
    if (clicked == count) {
      ++metrics.all_clicked;
      continue;
    }
    auc_sum += auc_of(impression_labels, impression_scores, order);
    ++metrics.auc_impressions;
  }
  metrics.auc = mean_or_undefined(auc_sum, metrics.auc_impressions);
  metrics.mrr = mean_or_undefined(mrr_sum, metrics.ranking_impressions);
  metrics.ndcg_at_5 = mean_or_undefined(ndcg_5_sum, metrics.ranking_impressions);
  metrics.ndcg_at_10 = mean_or_undefined(ndcg_10_sum, metrics.ranking_impressions);
  return metrics;
}

const std::vector<std::string>& impression_metric_names() {
  static const std::vector<std::string> names{"auc", "impression_mrr", "impression_ndcg@5", "impression_ndcg@10"};
  return names;
}

void add_impression_values(const ImpressionMetrics& metrics, std::map<std::string, double>& values) {
  const std::vector<std::string>& names = impression_metric_names();
  values[names[0]] = metrics.auc;
  values[names[1]] = metrics.mrr;
  values[names[2]] = metrics.ndcg_at_5;
  values[names[3]] = metrics.ndcg_at_10;
  values["impressions"] = static_cast<double>(metrics.impressions);
}

}  // namespace embrec::eval
