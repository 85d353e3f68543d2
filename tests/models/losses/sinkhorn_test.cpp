// Sinkhorn marginals (hand-checked and random) and the gradient-reversal layer.
#include "embrec/models/losses/sinkhorn.h"

#include <gtest/gtest.h>

#include "embrec/models/losses/grad_reverse.h"

namespace embrec::models::losses {
namespace {

TEST(Sinkhorn, HandCheckedTwoByTwo) {
  // Scores [[1, 0], [0, 1]], epsilon 1: the balanced solution is symmetric, Q = [[a, b], [b, a]] with a + b = 1/2
  // and a / b = e (the kernel ratio): a = e / (2 (1 + e)) = 0.3655293, b = 1 / (2 (1 + e)) = 0.1344707.
  auto q = sinkhorn(torch::tensor({{1.0, 0.0}, {0.0, 1.0}}, torch::kFloat64), 1.0, 3);
  const double a = std::exp(1.0) / (2 * (1 + std::exp(1.0)));
  EXPECT_NEAR(q[0][0].item<double>(), a, 1e-12);
  EXPECT_NEAR(q[1][1].item<double>(), a, 1e-12);
  EXPECT_NEAR(q[0][1].item<double>(), 0.5 - a, 1e-12);
}

TEST(Sinkhorn, RowsAndColumnsSumToMarginals) {
  torch::manual_seed(7);
  for (auto [rows, columns] : std::vector<std::pair<int64_t, int64_t>>{{8, 3}, {64, 16}, {5, 128}, {512, 128}}) {
    auto scores = torch::randn({rows, columns}, torch::kFloat64) * 3;
    // Rows are exact after every iteration; columns converge geometrically, at a rate set by scores / epsilon
    // (here up to ~20): 2,000 iterations bring them to 1e-6 relative.
    auto q = sinkhorn(scores, 0.5, 2000);
    EXPECT_TRUE(torch::allclose(q.sum(1), torch::full({rows}, 1.0 / rows, torch::kFloat64), 0, 1e-12));
    EXPECT_TRUE(torch::allclose(q.sum(0), torch::full({columns}, 1.0 / columns, torch::kFloat64), 0, 1e-6 / columns))
        << rows << "x" << columns << ": " << (q.sum(0) * columns - 1).abs().max().item<double>();
    EXPECT_GE(q.min().item<double>(), 0.0);
  }
}

TEST(Sinkhorn, SmallEpsilonStaysFiniteAndSharpens) {
  auto scores = torch::tensor({{0.9f, 0.1f}, {0.8f, 0.2f}, {0.1f, 0.9f}, {0.3f, 0.7f}});
  auto q = sinkhorn(scores, 0.01, 100);
  EXPECT_TRUE(torch::isfinite(q).all().item<bool>());
  // Equipartition forces two users per cluster: users 0, 1 to cluster 0, users 2, 3 to cluster 1.
  auto assignment = q.argmax(1);
  EXPECT_EQ(assignment[0].item<int64_t>(), 0);
  EXPECT_EQ(assignment[1].item<int64_t>(), 0);
  EXPECT_EQ(assignment[2].item<int64_t>(), 1);
  EXPECT_EQ(assignment[3].item<int64_t>(), 1);
}

TEST(Sinkhorn, NoGradientFlowsThroughTheTargets) {
  auto scores = torch::randn({4, 3}).requires_grad_(true);
  EXPECT_FALSE(sinkhorn(scores, 0.1, 3).requires_grad());
}

TEST(GradReverse, FlipsAndScalesTheGradientExactly) {
  auto x = torch::tensor({1.0, -2.0, 3.0}, torch::kFloat64).requires_grad_(true);
  auto y = grad_reverse(x, 0.25);
  EXPECT_TRUE(torch::equal(y, x.detach()));
  (y * torch::tensor({2.0, 4.0, 8.0}, torch::kFloat64)).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::tensor({-0.5, -1.0, -2.0}, torch::kFloat64)));
}

}  // namespace
}  // namespace embrec::models::losses
