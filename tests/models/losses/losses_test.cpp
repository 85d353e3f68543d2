// The custom losses of S4Rec / ICLRec and GRU4Rec's ranking losses against finite differences, and their hand-checked values.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "embrec/models/losses/distill.h"
#include "embrec/models/losses/grad_reverse.h"
#include "embrec/models/losses/info_nce.h"
#include "embrec/models/losses/ranking.h"
#include "embrec/models/losses/sampled_softmax.h"
#include "embrec/models/losses/streaming_frequency.h"
#include "embrec/models/losses/sinkhorn.h"

namespace embrec::models::losses {
namespace {

using Loss = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

// Central differences on every entry of every input (double precision) against autograd; returns the largest
// absolute difference.
double gradient_error(const Loss& loss, std::vector<torch::Tensor> inputs) {
  for (auto& x : inputs) x = x.to(torch::kFloat64).detach().requires_grad_(true);
  auto value = loss(inputs);
  auto grads = torch::autograd::grad({value}, inputs, {}, false, false, /*allow_unused=*/true);
  double worst = 0;
  const double h = 1e-6;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto numeric = torch::zeros_like(inputs[i]);
    auto flat = inputs[i].detach().view({-1});
    for (int64_t k = 0; k < flat.numel(); ++k) {
      std::vector<torch::Tensor> plus, minus;
      for (auto& x : inputs) {
        plus.push_back(x.detach().clone());
        minus.push_back(x.detach().clone());
      }
      plus[i].view({-1})[k] += h;
      minus[i].view({-1})[k] -= h;
      torch::NoGradGuard no_grad;
      numeric.view({-1})[k] = (loss(plus).item<double>() - loss(minus).item<double>()) / (2 * h);
    }
    auto analytic = grads[i].defined() ? grads[i] : torch::zeros_like(numeric);
    worst = std::max(worst, (analytic - numeric).abs().max().item<double>());
  }
  return worst;
}

TEST(InfoNce, HandCheckedTwoRows) {
  // anchors a = [[1, 0], [0, 1]], positives p = [[1, 0], [1, 1]], dot, T = 1, no anchor negatives:
  // row 0 logits [a0.p0, a0.p1] = [1, 1] -> -log(1/2); row 1 logits [a1.p0, a1.p1] = [0, 1] (target 1)
  // -> -log(e / (1 + e)). Mean of the two.
  InfoNceOptions options;
  options.anchor_negatives = false;
  auto a = torch::tensor({{1.0, 0.0}, {0.0, 1.0}}, torch::kFloat64);
  auto p = torch::tensor({{1.0, 0.0}, {1.0, 1.0}}, torch::kFloat64);
  const double expected = (std::log(2.0) + std::log((1 + std::exp(1.0)) / std::exp(1.0))) / 2;
  EXPECT_NEAR(info_nce(a, p, options).item<double>(), expected, 1e-12);
  // An extra negative e = [0, 2], excluded for row 1 only: row 0 gains exp(a0.e) = exp(0) = 1 in its denominator,
  // -log(e / (2e + 1)).
  auto e = torch::tensor({{0.0, 2.0}}, torch::kFloat64);
  auto exclude = torch::tensor({{false}, {true}});
  const double with_extra =
      (std::log((2 * std::exp(1.0) + 1) / std::exp(1.0)) + std::log((1 + std::exp(1.0)) / std::exp(1.0))) / 2;
  EXPECT_NEAR(info_nce(a, p, options, e, exclude).item<double>(), with_extra, 1e-12);
}

TEST(InfoNce, GradientMatchesFiniteDifferencesWithPrototypeNegatives) {
  torch::manual_seed(3);
  auto exclude = torch::tensor({{true, false, false}, {false, true, false}, {false, false, true}, {true, false, false}});
  for (Similarity similarity : {Similarity::Dot, Similarity::Cosine}) {
    InfoNceOptions options;
    options.temperature = 0.5;
    options.similarity = similarity;
    Loss loss = [&](const std::vector<torch::Tensor>& x) { return info_nce(x[0], x[1], options, x[2], exclude); };
    EXPECT_LT(gradient_error(loss, {torch::randn({4, 5}), torch::randn({4, 5}), torch::randn({3, 5})}), 1e-7)
        << name_of(kSimilarityNames, similarity);
  }
}

TEST(InfoNce, FalseNegativesAreDroppedFromTheDenominator) {
  // With every off-diagonal pair marked a false negative, only the positive is left: the loss is exactly 0.
  InfoNceOptions options;
  auto a = torch::randn({3, 4}, torch::kFloat64), p = torch::randn({3, 4}, torch::kFloat64);
  auto all = torch::ones({3, 3}, torch::kBool);
  EXPECT_NEAR(info_nce(a, p, options, {}, {}, all).item<double>(), 0.0, 1e-12);
  Loss loss = [&](const std::vector<torch::Tensor>& x) {
    return info_nce(x[0], x[1], options, {}, {}, torch::tensor({{false, true, false}, {true, false, false},
                                                                  {false, false, false}}));
  };
  EXPECT_LT(gradient_error(loss, {torch::randn({3, 4}), torch::randn({3, 4})}), 1e-7);
}

TEST(ClusteringCrossEntropy, GradientMatchesFiniteDifferencesWithSinkhornTargets) {
  torch::manual_seed(5);
  auto scores = torch::randn({6, 4}, torch::kFloat64);
  auto targets = sinkhorn(scores, 0.05, 3) * 6;  // fixed targets: no gradient flows through Q
  EXPECT_TRUE(torch::allclose(targets.sum(1), torch::ones({6}, torch::kFloat64)));
  Loss loss = [&](const std::vector<torch::Tensor>& x) { return clustering_cross_entropy(x[0], targets, 0.1); };
  EXPECT_LT(gradient_error(loss, {scores}), 1e-6);
  // Hand-checked: uniform scores give log K whatever the targets.
  EXPECT_NEAR(clustering_cross_entropy(torch::zeros({6, 4}, torch::kFloat64), targets, 0.1).item<double>(),
              std::log(4.0), 1e-12);
}

TEST(DistillKl, HandCheckedAndGradientOnTheStudentOnly) {
  // Identical teacher and student: KL = 0. Teacher [0, 0] (uniform), student [ln 3, 0] at T = 1: the student is
  // (3/4, 1/4); KL(u || s) = 1/2 ln((1/2)/(3/4)) + 1/2 ln((1/2)/(1/4)) = 1/2 ln(4/3).
  auto t = torch::tensor({{0.0, 0.0}}, torch::kFloat64);
  EXPECT_NEAR(distill_kl(t, t, 1.0).item<double>(), 0.0, 1e-12);
  auto s = torch::tensor({{std::log(3.0), 0.0}}, torch::kFloat64);
  EXPECT_NEAR(distill_kl(t, s, 1.0).item<double>(), 0.5 * std::log(4.0 / 3.0), 1e-12);
  torch::manual_seed(9);
  auto teacher = torch::randn({3, 6}, torch::kFloat64);
  Loss loss = [&](const std::vector<torch::Tensor>& x) { return distill_kl(teacher, x[0], 0.1); };
  EXPECT_LT(gradient_error(loss, {torch::randn({3, 6}, torch::kFloat64)}), 1e-7);
  // The teacher is detached: no gradient reaches it.
  auto teacher_leaf = torch::randn({3, 6}, torch::kFloat64).requires_grad_(true);
  auto student_leaf = torch::randn({3, 6}, torch::kFloat64).requires_grad_(true);
  distill_kl(teacher_leaf, student_leaf, 0.1).backward();
  EXPECT_FALSE(teacher_leaf.grad().defined());
  EXPECT_TRUE(student_leaf.grad().defined());
}

TEST(Adversary, CrossEntropyThroughGradientReversalIsTheNegatedScaledGradient) {
  // L_Adv = CE(W grl(z), c): the classifier's gradient is the plain one; z's is exactly -scale times the plain one.
  torch::manual_seed(11);
  auto labels = torch::tensor({0, 1, 1}, torch::kLong);
  auto w = torch::randn({2, 4}, torch::kFloat64);
  auto z = torch::randn({3, 4}, torch::kFloat64);
  Loss plain = [&](const std::vector<torch::Tensor>& x) {
    return torch::nn::functional::cross_entropy(torch::matmul(x[0], x[1].t()), labels);
  };
  EXPECT_LT(gradient_error(plain, {z, w}), 1e-7);
  auto z1 = z.clone().requires_grad_(true), w1 = w.clone().requires_grad_(true);
  plain({z1, w1}).backward();
  auto z2 = z.clone().requires_grad_(true), w2 = w.clone().requires_grad_(true);
  torch::nn::functional::cross_entropy(torch::matmul(grad_reverse(z2, 0.3), w2.t()), labels).backward();
  EXPECT_TRUE(torch::allclose(z2.grad(), -0.3 * z1.grad(), 0, 1e-15));
  EXPECT_TRUE(torch::allclose(w2.grad(), w1.grad(), 0, 1e-15));
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST(RankingLoss, HandCheckedValuesWithMaskedColumnsAndRowsWithoutNegatives) {
  // Row 0: positive 1, negatives 0 and 2, a third column masked (its 5 must not count). Row 1 has no negative at
  // all and is left out of the mean.
  auto positive = torch::tensor({1.0, 7.0}, torch::kFloat64);
  auto negatives = torch::tensor({{0.0, 2.0, 5.0}, {1.0, 1.0, 1.0}}, torch::kFloat64);
  auto valid = torch::tensor({{true, true, false}, {false, false, false}});
  const double s0 = 1.0 / (1.0 + std::exp(2.0)), s1 = 1.0 - s0;  // softmax of the negatives 0 and 2
  const double lambda = 0.5;
  const std::vector<std::pair<RankingLoss, double>> expected = {
      {RankingLoss::Bpr, (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(1.0))) / 2},
      {RankingLoss::Top1, (sigmoid(-1) + sigmoid(0) + sigmoid(1) + sigmoid(4)) / 2},
      {RankingLoss::BprMax, -std::log(s0 * sigmoid(1) + s1 * sigmoid(-1)) + lambda * (s0 * 0 + s1 * 4)},
      {RankingLoss::Top1Max, s0 * (sigmoid(-1) + sigmoid(0)) + s1 * (sigmoid(1) + sigmoid(4))}};
  for (const auto& [kind, value] : expected)
    EXPECT_NEAR(ranking_loss(kind, positive, negatives, valid, lambda).item<double>(), value, 1e-12)
        << name_of(kRankingLossNames, kind);
}

TEST(RankingLoss, GradientsMatchFiniteDifferences) {
  torch::manual_seed(5);
  // Each row loses a different column (its own target's), one row loses two.
  auto valid = torch::tensor({{false, true, true, true, true},
                              {true, false, true, true, true},
                              {true, true, false, false, true},
                              {true, true, true, true, false}});
  for (const auto& [name, kind] : kRankingLossNames) {
    Loss loss = [&, kind = kind](const std::vector<torch::Tensor>& x) {
      return ranking_loss(kind, x[0], x[1], valid, 0.7);
    };
    EXPECT_LT(gradient_error(loss, {torch::randn({4}), torch::randn({4, 5})}), 1e-7) << name;
  }
}

TEST(RankingLoss, BprMaxIsFiniteWhereTheSoftmaxWeightsUnderflow) {
  // Scores far apart make most softmax weights 0 in double; the log-sum-exp form keeps loss and gradient finite.
  auto positive = torch::tensor({0.0}, torch::kFloat64).requires_grad_(true);
  auto negatives = torch::tensor({{-900.0, 0.0, 800.0}}, torch::kFloat64).requires_grad_(true);
  auto valid = torch::ones({1, 3}, torch::kBool);
  auto value = ranking_loss(RankingLoss::BprMax, positive, negatives, valid, 0.0);
  value.backward();
  EXPECT_TRUE(std::isfinite(value.item<double>()));
  // Weights ~ (0, e^-800, 1): -log(e^-800 sigmoid(0) + sigmoid(-800)) = 800 - log(1.5).
  EXPECT_NEAR(value.item<double>(), 800.0 - std::log(1.5), 1e-9);
  EXPECT_TRUE(torch::isfinite(negatives.grad()).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(positive.grad()).all().item<bool>());
}

TEST(SampledSoftmax, TheLogQCorrectionMovesEachLogitByExactlyMinusLogQAndDuplicatesAreNoNegatives) {
  torch::manual_seed(3);
  const auto users = torch::randn({3, 4}, torch::kFloat64), items = torch::randn({3, 4}, torch::kFloat64);
  const auto extra = torch::randn({2, 4}, torch::kFloat64);
  // Row 0 and row 2 hold the same item (7); the second extra is item 5, row 1's item.
  const auto ids = torch::tensor({7, 5, 7}, torch::kLong), extra_ids = torch::tensor({9, 5}, torch::kLong);
  const auto log_q = torch::tensor({-1.0, -2.5, -1.0}, torch::kFloat64);
  const auto extra_log_q = torch::tensor({-3.0, -3.0}, torch::kFloat64);
  const auto plain = sampled_softmax_logits(users, items, ids, {}, extra, extra_ids, {});
  const auto corrected = sampled_softmax_logits(users, items, ids, log_q, extra, extra_ids, extra_log_q);
  const auto scores = users.mm(torch::cat({items, extra}).t());
  const double minus_log_q[5] = {1.0, 2.5, 1.0, 3.0, 3.0};
  const bool masked[3][5] = {{false, false, true, false, false},
                             {false, false, false, false, true},
                             {true, false, false, false, false}};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 5; ++j) {
      if (masked[i][j]) {
        EXPECT_TRUE(std::isinf(corrected[i][j].item<double>()) && corrected[i][j].item<double>() < 0) << i << j;
        continue;
      }
      EXPECT_DOUBLE_EQ(plain[i][j].item<double>(), scores[i][j].item<double>()) << i << j;
      EXPECT_DOUBLE_EQ(corrected[i][j].item<double>() - plain[i][j].item<double>(), minus_log_q[j]) << i << j;
    }
  }
  // Hand-checked loss of one row: -log(e^{a} / (e^{a} + e^{b})) with two candidates.
  const auto u = torch::tensor({{1.0, 0.0}}, torch::kFloat64), v = torch::tensor({{2.0, 0.0}}, torch::kFloat64);
  const auto e = torch::tensor({{0.5, 0.0}}, torch::kFloat64);
  const double a = 2.0 + 1.0, b = 0.5 + 2.0;  // scores minus log Q (log Q = -1 and -2)
  EXPECT_NEAR(sampled_softmax_loss(u, v, torch::tensor({1}), torch::tensor({-1.0}, torch::kFloat64), e,
                                   torch::tensor({2}), torch::tensor({-2.0}, torch::kFloat64))
                  .item<double>(),
              -std::log(std::exp(a) / (std::exp(a) + std::exp(b))), 1e-12);
}

TEST(SampledSoftmax, GradientsMatchFiniteDifferences) {
  torch::manual_seed(4);
  const auto ids = torch::tensor({0, 1, 0, 3}, torch::kLong), extra_ids = torch::tensor({2, 1, 5}, torch::kLong);
  const auto log_q = torch::tensor({-1.0, -2.0, -1.0, -0.5}, torch::kFloat64);
  const auto extra_log_q = torch::full({3}, -1.7, torch::kFloat64);
  Loss loss = [&](const std::vector<torch::Tensor>& x) {
    return sampled_softmax_loss(x[0], x[1], ids, log_q, x[2], extra_ids, extra_log_q);
  };
  EXPECT_LT(gradient_error(loss, {torch::randn({4, 3}), torch::randn({4, 3}), torch::randn({3, 3})}), 1e-7);
}

TEST(StreamingFrequency, ConvergesToThePlantedProbabilitiesOfAStream) {
  // Items 0..2 appear in each batch with probability 0.5, 0.1 and 0.02; item 3 never does.
  struct Holder : torch::nn::Module {};
  Holder holder;
  StreamingFrequency estimator(holder, "frequency_", 4, 0.01);
  const double planted[3] = {0.5, 0.1, 0.02};
  torch::manual_seed(8);
  const torch::Tensor draws = torch::rand({40000, 3}, torch::kFloat64);
  for (int64_t step = 0; step < 40000; ++step) {
    std::vector<int64_t> present;
    for (int64_t item = 0; item < 3; ++item)
      if (draws[step][item].item<double>() < planted[item]) present.push_back(item);
    if (!present.empty()) estimator.update(torch::tensor(present), step);
  }
  const torch::Tensor estimated = estimator.log_probability(torch::tensor({0, 1, 2, 3})).exp();
  for (int64_t item = 0; item < 3; ++item)
    EXPECT_NEAR(estimated[item].item<float>() / planted[item], 1.0, 0.2) << "item " << item;
  EXPECT_NEAR(estimated[3].item<float>(), 1.0 / 40000, 1e-7);  // never seen: the smallest it can state
  EXPECT_EQ(holder.named_buffers().size(), 3u);                // checkpointed with the model
}

}  // namespace
}  // namespace embrec::models::losses
