// Per-impression metrics of news recommendation (AUC, MRR, nDCG@5, nDCG@10) as MIND's leaderboard computes them,
// and their mean over impressions; hand-checked in tests/eval/impression_metrics_test.cpp.
//
// The definitions follow msnews/MIND evaluate.py (commit 57536bbd), which Microsoft Recommenders repeats in
// recommenders/models/deeprec/deeprec_utils.py (cal_metric: group_auc, mean_mrr, ndcg@5;10). For one impression
// with click labels y (0/1) and scores s over its n candidates:
//   auc      sklearn's roc_auc_score(y, s): the share of (clicked, not clicked) pairs whose clicked candidate scores
//            higher, a tie counting half.
//   mrr      mrr_score: candidates ranked by descending score (rank 1 first), sum over clicked of 1 / rank, divided
//            by the number of clicked (so not the reciprocal rank of the first click alone).
//   ndcg@k   ndcg_score: DCG@k = sum over the first k ranks of (2^y - 1) / log2(rank + 1), divided by the DCG@k of
//            the ideal order (clicked first).
// Ties in score for mrr and ndcg: the reference sorts with np.argsort(score)[::-1], which leaves the order of equal
// scores to numpy's sort. Here the earlier candidate (in the impression's display order) ranks first, so that a
// result never depends on the sort's implementation. AUC needs no such rule.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace embrec::eval {

// One impression of `count` candidates: labels 0 or 1 (anything else is an Error), finite scores (NaN is an Error:
// it has no place in a ranking). Returns NaN where the reference divides by zero or raises: auc when all labels are
// equal (sklearn raises "Only one class present"), mrr and ndcg when nothing was clicked (0 / 0).
double impression_auc(const int8_t* labels, const float* scores, int64_t count);
double impression_mrr(const int8_t* labels, const float* scores, int64_t count);
double impression_ndcg(const int8_t* labels, const float* scores, int64_t count, int64_t k);

struct ImpressionMetrics {
  double auc = 0.0;
  double mrr = 0.0;
  double ndcg_at_5 = 0.0;
  double ndcg_at_10 = 0.0;
  int64_t impressions = 0;      // given
  int64_t unlabelled = 0;       // skipped for every metric: labels absent (-1) or no candidates, like
                                // evaluate.py's masked impressions
  int64_t without_clicks = 0;   // skipped for every metric: no metric is defined
  int64_t all_clicked = 0;      // skipped for auc only: mrr and ndcg are defined and count
  int64_t auc_impressions = 0;  // the impressions auc is the mean of
  int64_t ranking_impressions = 0;  // the impressions mrr and ndcg are the means of
};

// Means over impressions in CSR form (impression i owns candidates [offsets[i], offsets[i + 1]) of labels and
// scores; labels as data/mind.h reads them: 1, 0, or -1 when absent). evaluate.py averages every labelled
// impression and would stop at an impression with one class (roc_auc_score raises); it runs through MIND's test
// set (and Microsoft Recommenders' group_auc through the dev set), so those have none and both agree there. Here
// such impressions are skipped where a metric is undefined (see the counts) rather than stopping the evaluation. A mean over no impressions is NaN. An impression that mixes absent and present labels is
// an Error naming it.
ImpressionMetrics mean_impression_metrics(const int64_t* offsets, int64_t impression_count, const int8_t* labels,
                                          const float* scores);

// The names results carry them under, beside the full-ranking metrics (whose "mrr" and "ndcg@10" rank all items):
// auc, impression_mrr, impression_ndcg@5, impression_ndcg@10; each may be a run's eval.select.
const std::vector<std::string>& impression_metric_names();
// `metrics` by those names, and "impressions" (how many were scored).
void add_impression_values(const ImpressionMetrics& metrics, std::map<std::string, double>& values);

}  // namespace embrec::eval
