// Impression metrics on hand-worked impressions; the arithmetic is in the comments.
#include "embrec/eval/impression_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "../util/error_of.h"

namespace embrec::eval {
namespace {

struct Impression {
  std::vector<int8_t> labels;
  std::vector<float> scores;
  double auc() const { return impression_auc(labels.data(), scores.data(), size()); }
  double mrr() const { return impression_mrr(labels.data(), scores.data(), size()); }
  double ndcg(int64_t k) const { return impression_ndcg(labels.data(), scores.data(), size(), k); }
  int64_t size() const { return static_cast<int64_t>(labels.size()); }
};

const double kLog2Of3 = std::log2(3.0);

TEST(ImpressionMetrics, TiedScoresGetHalfCreditInAuc) {
  // Clicked c0 (0.9) and c2 (0.3); unclicked c1 (0.9) and c3 (0.1). Pairs (clicked, unclicked):
  // (c0, c1) tie 0.5, (c0, c3) 1, (c2, c1) 0, (c2, c3) 1: AUC = 2.5 / 4 = 0.625.
  const Impression impression{{1, 0, 1, 0}, {0.9f, 0.9f, 0.3f, 0.1f}};
  EXPECT_DOUBLE_EQ(impression.auc(), 0.625);
  // Ranked c0, c1 (the tie in display order), c2, c3: clicks at ranks 1 and 3.
  // MRR = (1/1 + 1/3) / 2 = 2/3. DCG@5 = 1/log2(2) + 1/log2(4) = 1.5, ideal 1 + 1/log2(3) = 1.6309298: 0.9197208.
  EXPECT_NEAR(impression.mrr(), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(impression.ndcg(5), 1.5 / (1.0 + 1.0 / kLog2Of3), 1e-12);
  EXPECT_NEAR(impression.ndcg(5), 0.9197207891481876, 1e-12);
}

TEST(ImpressionMetrics, TwoClicksAtRanksTwoAndSeven) {
  // Scores rank c1, c0, c2, c3, c4, c5, c6, c7; clicked c0 (rank 2) and c6 (rank 7).
  const Impression impression{{1, 0, 0, 0, 0, 0, 1, 0}, {0.8f, 0.9f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f}};
  // MRR (all clicks, Microsoft Recommenders' mrr_score) = (1/2 + 1/7) / 2 = 9/28; not 1/2, the first click's alone.
  EXPECT_NEAR(impression.mrr(), 9.0 / 28.0, 1e-12);
  // nDCG@5: only rank 2 counts: DCG = 1/log2(3) = 0.6309298; ideal = 1 + 1/log2(3) = 1.6309298; 0.3868528.
  EXPECT_NEAR(impression.ndcg(5), (1.0 / kLog2Of3) / (1.0 + 1.0 / kLog2Of3), 1e-12);
  EXPECT_NEAR(impression.ndcg(5), 0.38685280723454163, 1e-12);
  // nDCG@10: + 1/log2(8) = 1/3: (0.6309298 + 0.3333333) / 1.6309298 = 0.5912352.
  EXPECT_NEAR(impression.ndcg(10), (1.0 / kLog2Of3 + 1.0 / 3.0) / (1.0 + 1.0 / kLog2Of3), 1e-12);
  EXPECT_NEAR(impression.ndcg(10), 0.5912352, 1e-7);
  // AUC: c0 beats the 5 unclicked below it (c2, c3, c4, c5, c7), c6 beats c7: 6 of 2 x 6 pairs = 0.5.
  EXPECT_DOUBLE_EQ(impression.auc(), 0.5);
  // A k beyond the impression's length is the whole list: nDCG@100 = nDCG@10 here.
  EXPECT_DOUBLE_EQ(impression.ndcg(100), impression.ndcg(10));
}

TEST(ImpressionMetrics, PerfectAndReversedRankings) {
  const Impression perfect{{0, 1, 0, 1}, {0.1f, 0.8f, 0.2f, 0.9f}};
  EXPECT_DOUBLE_EQ(perfect.auc(), 1.0);
  EXPECT_DOUBLE_EQ(perfect.mrr(), (1.0 + 0.5) / 2.0);  // two clicks at ranks 1 and 2
  EXPECT_DOUBLE_EQ(perfect.ndcg(5), 1.0);
  const Impression reversed{{1, 0, 0}, {0.1f, 0.5f, 0.9f}};
  EXPECT_DOUBLE_EQ(reversed.auc(), 0.0);
  EXPECT_DOUBLE_EQ(reversed.mrr(), 1.0 / 3.0);
  EXPECT_NEAR(reversed.ndcg(5), 0.5, 1e-12);  // 1/log2(4) over the ideal 1
}

TEST(ImpressionMetrics, EqualScoresRankInDisplayOrder) {
  // A constant scorer: the earlier candidate ranks first, so a click shown second is at rank 2.
  const Impression second{{0, 1}, {0.5f, 0.5f}};
  EXPECT_DOUBLE_EQ(second.mrr(), 0.5);
  EXPECT_NEAR(second.ndcg(5), 1.0 / kLog2Of3, 1e-12);
  EXPECT_DOUBLE_EQ(second.auc(), 0.5);  // AUC does not depend on the rule
  const Impression first{{1, 0}, {0.5f, 0.5f}};
  EXPECT_DOUBLE_EQ(first.mrr(), 1.0);
  EXPECT_DOUBLE_EQ(first.auc(), 0.5);
}

TEST(ImpressionMetrics, UndefinedWhereTheReferenceDividesByZeroOrRaises) {
  const Impression none{{0, 0, 0}, {0.3f, 0.2f, 0.1f}};
  EXPECT_TRUE(std::isnan(none.auc()));
  EXPECT_TRUE(std::isnan(none.mrr()));
  EXPECT_TRUE(std::isnan(none.ndcg(5)));
  // Everything clicked: AUC has no unclicked candidate; MRR = (1 + 1/2) / 2 = 0.75; nDCG = 1.
  const Impression all{{1, 1}, {0.2f, 0.8f}};
  EXPECT_TRUE(std::isnan(all.auc()));
  EXPECT_DOUBLE_EQ(all.mrr(), 0.75);
  EXPECT_DOUBLE_EQ(all.ndcg(10), 1.0);
}

TEST(ImpressionMetrics, MeanSkipsImpressionsWhereAMetricIsUndefined) {
  // A: the tie impression above (AUC 0.625, MRR 2/3, nDCG@5 = nDCG@10 = 0.9197208).
  // B: both clicked (no AUC; MRR 0.75, nDCG 1). C: no click (skipped). D: labels absent (skipped, as evaluate.py
  // skips masked impressions).
  const std::vector<int64_t> offsets{0, 4, 6, 8, 10};
  const std::vector<int8_t> labels{1, 0, 1, 0, /*B*/ 1, 1, /*C*/ 0, 0, /*D*/ -1, -1};
  const std::vector<float> scores{0.9f, 0.9f, 0.3f, 0.1f, 0.2f, 0.8f, 0.5f, 0.4f, 0.7f, 0.6f};
  const ImpressionMetrics mean = mean_impression_metrics(offsets.data(), 4, labels.data(), scores.data());
  EXPECT_EQ(mean.impressions, 4);
  EXPECT_EQ(mean.unlabelled, 1);
  EXPECT_EQ(mean.without_clicks, 1);
  EXPECT_EQ(mean.all_clicked, 1);
  EXPECT_EQ(mean.auc_impressions, 1);
  EXPECT_EQ(mean.ranking_impressions, 2);
  EXPECT_DOUBLE_EQ(mean.auc, 0.625);
  EXPECT_NEAR(mean.mrr, (2.0 / 3.0 + 0.75) / 2.0, 1e-12);  // 0.7083333
  EXPECT_NEAR(mean.ndcg_at_5, (0.9197207891481876 + 1.0) / 2.0, 1e-12);
  EXPECT_NEAR(mean.ndcg_at_10, (0.9197207891481876 + 1.0) / 2.0, 1e-12);
}

TEST(ImpressionMetrics, MeanOfTwoImpressionsIsThePlainAverage) {
  // evaluate.py: np.mean over impressions, each weighing the same whatever its length.
  // First: AUC 0.625, MRR 2/3. Second (8 candidates): AUC 0.5, MRR 9/28.
  const std::vector<int64_t> offsets{0, 4, 12};
  const std::vector<int8_t> labels{1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0};
  const std::vector<float> scores{0.9f, 0.9f, 0.3f, 0.1f, 0.8f, 0.9f, 0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.2f};
  const ImpressionMetrics mean = mean_impression_metrics(offsets.data(), 2, labels.data(), scores.data());
  EXPECT_DOUBLE_EQ(mean.auc, (0.625 + 0.5) / 2.0);
  EXPECT_NEAR(mean.mrr, (2.0 / 3.0 + 9.0 / 28.0) / 2.0, 1e-12);
  EXPECT_NEAR(mean.ndcg_at_5, (0.9197207891481876 + 0.38685280723454163) / 2.0, 1e-12);
}

TEST(ImpressionMetrics, NoImpressionsGiveNaN) {
  const std::vector<int64_t> offsets{0};
  const ImpressionMetrics mean = mean_impression_metrics(offsets.data(), 0, nullptr, nullptr);
  EXPECT_TRUE(std::isnan(mean.auc));
  EXPECT_TRUE(std::isnan(mean.mrr));
  EXPECT_EQ(mean.ranking_impressions, 0);
}

TEST(ImpressionMetrics, BadInputIsAnError) {
  const std::vector<int8_t> two{1, 2};
  const std::vector<float> scores{0.1f, 0.2f};
  EXPECT_EQ(error_of([&] { impression_auc(two.data(), scores.data(), 2); }),
            "impression metrics: label 2 of candidate 2 is not 0 or 1");
  const std::vector<int8_t> labels{1, 0};
  const std::vector<float> nan{0.1f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_EQ(error_of([&] { impression_mrr(labels.data(), nan.data(), 2); }),
            "impression metrics: the score of candidate 2 is NaN");
  EXPECT_EQ(error_of([&] { impression_ndcg(labels.data(), scores.data(), 2, 0); }),
            "impression metrics: ndcg needs k > 0, got 0");
  const std::vector<int64_t> offsets{0, 2, 4};
  const std::vector<int8_t> mixed{1, 0, -1, 1};
  const std::vector<float> four{0.1f, 0.2f, 0.3f, 0.4f};
  EXPECT_EQ(error_of([&] { mean_impression_metrics(offsets.data(), 2, mixed.data(), four.data()); }),
            "impression metrics: impression 2 mixes absent (-1) and present labels");
}

}  // namespace
}  // namespace embrec::eval
