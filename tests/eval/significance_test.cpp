// Paired tests between two runs (eval/significance.h) on hand-worked cases; the Student-t references were found by
// integrating the t density numerically (Simpson, 200,000 steps), and agree with printed t tables (2.776445 is the
// two-sided 5 % point at 4 degrees of freedom).
#include "embrec/eval/significance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "../util/error_of.h"

namespace embrec::eval {
namespace {

TEST(PairedTest, TTestIntervalAndWilcoxonOnAHandWorkedCase) {
  // Differences 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5), se sqrt(0.5), t = 3 / sqrt(0.5) = 4.2426 at 4 degrees of freedom.
  const PairedTest test = paired_test({1, 1, 1, 1, 1}, {2, 3, 4, 5, 6});
  EXPECT_EQ(test.users, 5);
  EXPECT_DOUBLE_EQ(test.mean_a, 1.0);
  EXPECT_DOUBLE_EQ(test.mean_b, 4.0);
  EXPECT_DOUBLE_EQ(test.mean_difference, 3.0);
  EXPECT_NEAR(test.sd_difference, std::sqrt(2.5), 1e-12);
  EXPECT_NEAR(test.t, 4.242640687, 1e-8);
  EXPECT_NEAR(test.t_p, 0.0132356, 1e-6);
  // 3 -+ 2.776445 x sqrt(0.5)
  EXPECT_NEAR(test.ci_low, 1.0367568, 1e-6);
  EXPECT_NEAR(test.ci_high, 4.9632432, 1e-6);
  // Every difference positive: W = 1 + 2 + 3 + 4 + 5 = 15, mean 7.5, variance 5 x 6 x 11 / 24 = 13.75.
  EXPECT_EQ(test.nonzero, 5);
  EXPECT_DOUBLE_EQ(test.wilcoxon_w, 15.0);
  EXPECT_NEAR(test.wilcoxon_z, 7.5 / std::sqrt(13.75), 1e-12);
}

TEST(PairedTest, WilcoxonRanksMagnitudesAndSumsThePositiveOnes) {
  // Differences 1, -2, 3, 4, 5: ranks 1..5, W = 1 + 3 + 4 + 5 = 13, z = 5.5 / sqrt(13.75) = 1.48324, p = 0.13801.
  const PairedTest test = paired_test({0, 0, 0, 0, 0}, {1, -2, 3, 4, 5});
  EXPECT_DOUBLE_EQ(test.wilcoxon_w, 13.0);
  EXPECT_NEAR(test.wilcoxon_z, 1.4832397, 1e-6);
  EXPECT_NEAR(test.wilcoxon_p, 0.1380107, 1e-6);
}

TEST(PairedTest, WilcoxonDropsZeroDifferencesAndAveragesTiedRanks) {
  // Differences 0, 1, 1, -1, 2: the zero is dropped; |1| three times shares rank 2, |2| has rank 4. W = 2 + 2 + 4 = 8;
  // n = 4: mean 5, variance 4 x 5 x 9 / 24 - (3^3 - 3) / 48 = 7.5 - 0.5 = 7; z = 3 / sqrt(7), p = 0.25684.
  const PairedTest test = paired_test({5, 5, 5, 5, 5}, {5, 6, 6, 4, 7});
  EXPECT_EQ(test.nonzero, 4);
  EXPECT_DOUBLE_EQ(test.wilcoxon_w, 8.0);
  EXPECT_NEAR(test.wilcoxon_z, 3.0 / std::sqrt(7.0), 1e-12);
  EXPECT_NEAR(test.wilcoxon_p, 0.2568393, 1e-6);
}

TEST(PairedTest, NoDifferenceIsNoEvidenceAndAConstantShiftIsCertain) {
  const PairedTest same = paired_test({0.1, 0.5, 0.0}, {0.1, 0.5, 0.0});
  EXPECT_EQ(same.t, 0.0);
  EXPECT_EQ(same.t_p, 1.0);
  EXPECT_EQ(same.nonzero, 0);
  EXPECT_EQ(same.wilcoxon_p, 1.0);
  const PairedTest shifted = paired_test({0.0, 0.5, 1.0}, {0.25, 0.75, 1.25});
  EXPECT_TRUE(std::isinf(shifted.t) && shifted.t > 0);
  EXPECT_EQ(shifted.t_p, 0.0);
  EXPECT_DOUBLE_EQ(shifted.ci_low, 0.25);
  EXPECT_DOUBLE_EQ(shifted.ci_high, 0.25);
}

TEST(PairedTest, OnHitOrMissOutcomesWilcoxonIsTheSignTestAndTIsCloseToIt) {
  // Leave-one-out recall per user is 0 or 1, so differences are -1, 0 or +1: all nonzero magnitudes tie, W = P (n+1)/2,
  // variance n (n+1)^2 / 16, and z = (P - M) / sqrt(n) exactly (P ups, M downs, n = P + M). The t statistic is
  // (P - M) / sqrt((N / (N-1)) (n - (P - M)^2 / N)), which tends to the same for many users: here 1.414922 against
  // 1.414214. embrec compare printing nearly equal z and t on such runs is this, not a bug.
  std::vector<double> a(1000, 0.0), b(1000, 0.0);
  for (int i = 0; i < 30; ++i) b[static_cast<size_t>(i)] = 1.0;
  for (int i = 30; i < 50; ++i) a[static_cast<size_t>(i)] = 1.0;
  const PairedTest test = paired_test(a, b);
  EXPECT_EQ(test.nonzero, 50);
  EXPECT_DOUBLE_EQ(test.wilcoxon_w, 30 * 51 / 2.0);
  EXPECT_NEAR(test.wilcoxon_z, 10 / std::sqrt(50.0), 1e-12);
  EXPECT_NEAR(test.t, 1.414921909, 1e-8);
}

TEST(PairedTest, SwappingTheRunsFlipsTheSignAndKeepsThePValues) {
  const std::vector<double> a = {0.0, 0.2, 0.4, 0.1, 0.9, 0.3}, b = {0.1, 0.2, 0.7, 0.0, 1.0, 0.6};
  const PairedTest forward = paired_test(a, b), backward = paired_test(b, a);
  EXPECT_NEAR(forward.t, -backward.t, 1e-12);
  EXPECT_NEAR(forward.t_p, backward.t_p, 1e-12);
  EXPECT_NEAR(forward.wilcoxon_z, -backward.wilcoxon_z, 1e-12);
  EXPECT_NEAR(forward.wilcoxon_p, backward.wilcoxon_p, 1e-12);
}

TEST(PairedTest, BadInputIsAnErrorThatSaysWhat) {
  EXPECT_NE(error_of([] { paired_test({1, 2}, {1}); }).find("2 values against 1"), std::string::npos);
  EXPECT_NE(error_of([] { paired_test({1}, {2}); }).find("at least 2 users"), std::string::npos);
  EXPECT_NE(error_of([] { paired_test({1, std::numeric_limits<double>::quiet_NaN()}, {1, 2}); }).find("pair 2"),
            std::string::npos);
  EXPECT_NE(error_of([] { paired_test({1, 2}, {2, 3}, 1.5); }).find("confidence 1.5"), std::string::npos);
}

TEST(PairedTest, DescribeNamesBothRunsAndTheRelativeChange) {
  const std::string text = describe(paired_test({1, 1, 1, 1, 1}, {2, 3, 4, 5, 6}), "runs/a", "runs/b");
  EXPECT_NE(text.find("A runs/a: 1.0000"), std::string::npos) << text;
  EXPECT_NE(text.find("B runs/b: 4.0000"), std::string::npos) << text;
  EXPECT_NE(text.find("+3.0000 (+300.0 %)"), std::string::npos) << text;
  EXPECT_NE(text.find("p = 0.0132"), std::string::npos) << text;
}

}  // namespace
}  // namespace embrec::eval
