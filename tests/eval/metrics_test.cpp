// Metric values on hand-worked rankings; the arithmetic is in the comments.
#include "embrec/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace embrec::eval {
namespace {

double at_k(const std::string& name, std::vector<int32_t> ranked, std::vector<int32_t> relevant, int64_t k) {
  return metric_at_k(name, ranked.data(), static_cast<int64_t>(ranked.size()), relevant.data(),
                     static_cast<int64_t>(relevant.size()), k);
}

TEST(Metrics, TwoTargetsAtRanksOneAndThreeOfFive) {
  // ranked: 7 (hit) 1 4 (hit) 9 2; relevant {7, 4}.
  const std::vector<int32_t> ranked{7, 1, 4, 9, 2}, relevant{4, 7};
  EXPECT_DOUBLE_EQ(at_k("hr", ranked, relevant, 5), 1.0);
  EXPECT_DOUBLE_EQ(at_k("recall", ranked, relevant, 5), 1.0);           // 2 hits / 2 relevant
  EXPECT_DOUBLE_EQ(at_k("precision", ranked, relevant, 5), 2.0 / 5.0);  // 2 hits / k
  // DCG = 1/log2(2) + 1/log2(4) = 1.5; IDCG = 1/log2(2) + 1/log2(3) = 1.6309298; NDCG = 0.9197207.
  EXPECT_NEAR(at_k("ndcg", ranked, relevant, 5), 1.5 / (1.0 + 1.0 / std::log2(3.0)), 1e-12);
  EXPECT_NEAR(at_k("ndcg", ranked, relevant, 5), 0.9197207891481876, 1e-12);
  EXPECT_DOUBLE_EQ(at_k("mrr", ranked, relevant, 5), 1.0);
  // MAP: (P@1 + P@3) / |relevant| = (1 + 2/3) / 2 = 0.8333.
  EXPECT_NEAR(at_k("map", ranked, relevant, 5), (1.0 + 2.0 / 3.0) / 2.0, 1e-12);
}

TEST(Metrics, CutOffAtK) {
  // Same ranking at k = 2: only item 7 counts.
  const std::vector<int32_t> ranked{7, 1, 4, 9, 2}, relevant{4, 7};
  EXPECT_DOUBLE_EQ(at_k("recall", ranked, relevant, 2), 0.5);
  EXPECT_DOUBLE_EQ(at_k("precision", ranked, relevant, 2), 0.5);
  // IDCG over min(2, 2) = 2 positions: 1 + 1/log2(3); DCG = 1.
  EXPECT_NEAR(at_k("ndcg", ranked, relevant, 2), 1.0 / (1.0 + 1.0 / std::log2(3.0)), 1e-12);
  EXPECT_DOUBLE_EQ(at_k("map", ranked, relevant, 2), 0.5);  // P@1 / 2
}

TEST(Metrics, MicrosoftRecommendersStyleMultiTarget) {
  // Five relevant items, top-4 list with hits at ranks 2 and 4 (k = 4):
  // precision = 2/4; recall = 2/5; MAP = (1/2 + 2/4) / 5 = 0.2;
  // DCG = 1/log2(3) + 1/log2(5) = 0.6309298 + 0.4306766 = 1.0616064;
  // IDCG over min(5, 4) = 4 positions = 1 + 0.6309298 + 0.5 + 0.4306766 = 2.5616064; NDCG = 0.4144299.
  const std::vector<int32_t> ranked{10, 1, 11, 2}, relevant{1, 2, 3, 4, 5};
  EXPECT_DOUBLE_EQ(at_k("precision", ranked, relevant, 4), 0.5);
  EXPECT_DOUBLE_EQ(at_k("recall", ranked, relevant, 4), 0.4);
  EXPECT_NEAR(at_k("map", ranked, relevant, 4), 0.2, 1e-12);
  EXPECT_NEAR(at_k("ndcg", ranked, relevant, 4), 0.41442993, 1e-8);
  EXPECT_DOUBLE_EQ(at_k("mrr", ranked, relevant, 4), 0.5);
}

TEST(Metrics, MissesAreZero) {
  const std::vector<int32_t> ranked{1, 2, 3}, relevant{9};
  for (const std::string& name : metric_names()) EXPECT_EQ(at_k(name, ranked, relevant, 3), 0.0) << name;
}

TEST(Metrics, SingleTargetRankMatchesTheListDefinition) {
  // Target 5 at 0-based rank r in a list of 30: both paths agree for every metric and k.
  for (int64_t rank = 0; rank < 30; ++rank) {
    std::vector<int32_t> ranked;
    for (int32_t i = 0; i < 30; ++i) ranked.push_back(i == rank ? 5 : 100 + i);
    for (const std::string& name : metric_names())
      for (int64_t k : {1, 5, 10, 20})
        EXPECT_NEAR(metric_from_rank(name, rank, k), at_k(name, ranked, {5}, k), 1e-12) << name << "@" << k;
  }
  // Hand values: rank 2 (third place): ndcg = 1/log2(4) = 0.5, mrr = 1/3, precision@5 = 1/5.
  EXPECT_DOUBLE_EQ(metric_from_rank("ndcg", 2, 5), 0.5);
  EXPECT_DOUBLE_EQ(metric_from_rank("mrr", 2, 5), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(metric_from_rank("precision", 2, 5), 0.2);
  EXPECT_DOUBLE_EQ(metric_from_rank("hr", 5, 5), 0.0);
}

TEST(Metrics, UnknownNameThrows) { EXPECT_THROW(metric_from_rank("auc", 0, 5), std::exception); }

TEST(RatingMetrics, HandWorkedErrors) {
  // errors y - ŷ = -1, 0, 0, 1: RMSE = sqrt(2 / 4), MAE = 2 / 4. mean y = 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5,
  // SS_res = 2: R² = 1 - 2/5 = 0.6. The errors have mean 0 and variance 2/4, Var(y) = 5/4: explained variance 0.6.
  const float truth[] = {1, 2, 3, 4}, predicted[] = {2, 2, 3, 3};
  EXPECT_NEAR(rmse(truth, predicted, 4), std::sqrt(0.5), 1e-12);
  EXPECT_NEAR(mae(truth, predicted, 4), 0.5, 1e-12);
  EXPECT_NEAR(r_squared(truth, predicted, 4), 0.6, 1e-12);
  EXPECT_NEAR(explained_variance(truth, predicted, 4), 0.6, 1e-12);
}

TEST(RatingMetrics, ConstantOffsetHurtsRSquaredButNotExplainedVariance) {
  // ŷ = y + 1: every error is -1. RMSE = MAE = 1; SS_res = 4, SS_tot = 5: R² = 0.2; Var(y - ŷ) = 0: EV = 1.
  const float truth[] = {1, 2, 3, 4}, predicted[] = {2, 3, 4, 5};
  EXPECT_NEAR(rmse(truth, predicted, 4), 1.0, 1e-12);
  EXPECT_NEAR(mae(truth, predicted, 4), 1.0, 1e-12);
  EXPECT_NEAR(r_squared(truth, predicted, 4), 0.2, 1e-12);
  EXPECT_NEAR(explained_variance(truth, predicted, 4), 1.0, 1e-12);
}

TEST(RatingMetrics, ConstantTruthAndEmptyInputFollowSklearn) {
  // Var(y) = 0: 1 for a perfect prediction, 0 otherwise (sklearn's force_finite); no pairs: all 0.
  const float truth[] = {3, 3}, exact[] = {3, 3}, off[] = {3, 4};
  EXPECT_DOUBLE_EQ(r_squared(truth, exact, 2), 1.0);
  EXPECT_DOUBLE_EQ(explained_variance(truth, exact, 2), 1.0);
  EXPECT_DOUBLE_EQ(r_squared(truth, off, 2), 0.0);
  EXPECT_DOUBLE_EQ(explained_variance(truth, off, 2), 0.0);
  EXPECT_DOUBLE_EQ(rmse(truth, off, 0), 0.0);
  EXPECT_DOUBLE_EQ(mae(truth, off, 0), 0.0);
}

}  // namespace
}  // namespace embrec::eval
