// The fused softmax cross-entropy equals torch's unfused loss and its gradients match finite differences.
#include "embrec/models/losses/softmax_cross_entropy.h"

#include <gtest/gtest.h>

namespace embrec::models::losses {
namespace {

TEST(SoftmaxCrossEntropy, EqualsUnfusedCrossEntropyForEveryChunkSize) {
  torch::manual_seed(3);
  auto hidden = torch::randn({7, 5}, torch::kFloat64);
  auto weight = torch::randn({11, 5}, torch::kFloat64);
  auto targets = torch::tensor({0, 3, 10, 3, 7, 1, 2}, torch::kLong);
  const double expected = torch::nn::functional::cross_entropy(hidden.mm(weight.t()), targets).item<double>();
  for (int64_t chunk : {1, 2, 3, 7, 100}) {
    EXPECT_NEAR(softmax_cross_entropy(hidden, weight, targets, chunk).item<double>(), expected, 1e-12) << chunk;
  }
}

TEST(SoftmaxCrossEntropy, HandWorkedValue) {
  // One row, two items, logits (1, 0): loss = log(e^1 + e^0) - 1 = log(1 + e^-1) = 0.31326168751.
  auto hidden = torch::tensor({{1.0, 0.0}}, torch::kFloat64);
  auto weight = torch::tensor({{1.0, 0.0}, {0.0, 1.0}}, torch::kFloat64);
  EXPECT_NEAR(softmax_cross_entropy(hidden, weight, torch::tensor({0}, torch::kLong)).item<double>(), 0.31326168751,
              1e-10);
}

TEST(SoftmaxCrossEntropy, GradientsMatchFiniteDifferences) {
  torch::manual_seed(5);
  auto hidden = torch::randn({6, 4}, torch::kFloat64).requires_grad_(true);
  auto weight = torch::randn({9, 4}, torch::kFloat64).requires_grad_(true);
  auto targets = torch::tensor({8, 0, 4, 4, 2, 6}, torch::kLong);
  // A non-unit upstream gradient checks that backward scales by it.
  auto loss = softmax_cross_entropy(hidden, weight, targets, /*chunk_rows=*/4) * 2.5;
  loss.backward();
  const double step = 1e-6;
  for (auto* parameter : {&hidden, &weight}) {
    auto values = parameter->detach().clone();
    auto analytic = parameter->grad();
    for (int64_t i = 0; i < values.numel(); ++i) {
      auto plus = values.clone();
      plus.view(-1)[i] += step;
      auto minus = values.clone();
      minus.view(-1)[i] -= step;
      auto evaluate = [&](const torch::Tensor& v) {
        return parameter == &hidden ? softmax_cross_entropy(v, weight.detach(), targets).item<double>() * 2.5
                                    : softmax_cross_entropy(hidden.detach(), v, targets).item<double>() * 2.5;
      };
      const double numeric = (evaluate(plus) - evaluate(minus)) / (2 * step);
      EXPECT_NEAR(analytic.view(-1)[i].item<double>(), numeric, 1e-6) << "element " << i;
    }
  }
}

TEST(SoftmaxCrossEntropy, RejectsMismatchedShapes) {
  auto hidden = torch::randn({3, 4});
  EXPECT_THROW(softmax_cross_entropy(hidden, torch::randn({5, 3}), torch::zeros({3}, torch::kLong)), std::exception);
  EXPECT_THROW(softmax_cross_entropy(hidden, torch::randn({5, 4}), torch::zeros({2}, torch::kLong)), std::exception);
}

}  // namespace
}  // namespace embrec::models::losses
