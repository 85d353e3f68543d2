// MF: recovery of a planted low-rank matrix, hand-worked losses, gradients against finite differences, rating
// metrics in the evaluator, checkpoint round trip and config errors.
#include "embrec/models/mf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <nlohmann/json.hpp>

#include "embrec/eval/metrics.h"
#include "embrec/models/evaluate.h"
#include "embrec/util/error.h"
#include "model_fixtures.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

namespace F = torch::nn::functional;

std::unique_ptr<Mf> make(const std::string& toml_text, int32_t users, int32_t items, uint64_t seed = 1) {
  return testing::make_model<Mf>(toml_text, users, items, seed);
}

void train(Mf& model, const data::Sequences& train, int32_t item_count, int64_t epochs, double learning_rate,
           int32_t batch_size) {
  data::SamplerOptions defaults;
  defaults.batch_size = batch_size;
  const data::SamplerOptions options = model.sampler_options(defaults);
  data::SequenceSampler sampler(train, item_count, options);
  torch::optim::Adam optimizer(model.module().parameters(), torch::optim::AdamOptions(learning_rate));
  data::SequenceBatch batch;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    const auto plan = sampler.epoch_plan(epoch);
    for (size_t b = 0; b < plan.size(); ++b) {
      sampler.fill(plan[b], epoch, static_cast<int64_t>(b), batch);
      LossParts loss = model.loss(testing::batch_tensors(batch));
      optimizer.zero_grad();
      loss.total.backward();
      optimizer.step();
    }
  }
}

// Users 0 and 2 of 3; items 1..5 (ids + 1, 0 = padding), negatives for BPR.
TensorBatch small_batch() {
  TensorBatch batch;
  batch.users = torch::tensor({0, 2}, torch::kLong);
  batch.target = torch::tensor({{0, 2, 3}, {1, 4, 5}}, torch::kLong);
  batch.input = batch.target;
  batch.negative = torch::tensor({{0, 5, 1}, {3, 1, 2}}, torch::kLong);
  batch.rating = torch::tensor({{0.0f, 4.0f, 2.0f}, {5.0f, 1.0f, 3.0f}});
  return batch;
}

std::string config_error(const std::string& toml_text) { return testing::creation_error<Mf>(toml_text); }

TEST(Mf, MseRecoversAPlantedLowRankMatrix) {
  // R = 3 + U Vᵀ with U [60 x 3], V [40 x 3] ~ N(0, 0.7²): entries have std ≈ sqrt(3) · 0.49 ≈ 0.85. Four in five
  // entries are training ratings; the fifth (a fixed pattern, 480 entries) is held out. Rank-3 MF with biases
  // fits the training entries exactly, so the held-out error measures recovery, not memorisation.
  const int32_t users = 60, items = 40;
  torch::manual_seed(3);
  const torch::Tensor planted =
      3.0 + torch::mm(torch::randn({users, 3}) * 0.7, torch::randn({items, 3}).t() * 0.7);
  auto entry = planted.accessor<float, 2>();
  data::Split split;
  std::vector<int32_t> test_users, test_items;
  std::vector<float> test_truth;
  for (int32_t u = 0; u < users; ++u) {
    std::vector<int32_t> row_items;
    std::vector<float> row_ratings;
    for (int32_t i = 0; i < items; ++i) {
      if ((u * 7 + i * 3) % 5 == 0) {
        test_users.push_back(u);
        test_items.push_back(i);
        test_truth.push_back(entry[u][i]);
      } else {
        row_items.push_back(i);
        row_ratings.push_back(entry[u][i]);
      }
    }
    split.train.push_user(row_items.data(), static_cast<int64_t>(row_items.size()), row_ratings.data());
  }
  const int64_t held_out = static_cast<int64_t>(test_truth.size());
  ASSERT_EQ(held_out, 480);
  auto model = make("name = 'mf'\nloss = 'mse'\ndim = 3\n", users, items);
  model->fit(split);
  // Predicting the training mean everywhere: the bound below must be far under this.
  std::vector<float> mean_prediction(held_out, model->mf_module()->global_mean.item<float>());
  const double baseline = eval::rmse(test_truth.data(), mean_prediction.data(), held_out);
  EXPECT_GT(baseline, 0.6);
  train(*model, split.train, items, /*epochs=*/300, /*learning_rate=*/0.03, /*batch_size=*/20);
  std::vector<float> predicted(held_out);
  model->predict_ratings(test_users.data(), test_items.data(), held_out, predicted.data());
  const double held_out_rmse = eval::rmse(test_truth.data(), predicted.data(), held_out);
  EXPECT_LT(held_out_rmse, 0.05) << "mean-only RMSE " << baseline;
}

TEST(Mf, MseLossAndPredictionAreHandWorked) {
  // p_0 = (1, 2), q_1 = (0.5, -1), b_u = 0.25, b_i = -0.5, μ = 3: r̂ = 3 + 0.25 - 0.5 + (0.5 - 2) = 1.25.
  // Truth 2: squared error 0.75² = 0.5625. reg 0.1 · (|p|² + |q|² + b_u² + b_i²) = 0.1 · (5 + 1.25 + 0.0625 + 0.25)
  // = 0.65625. Total 1.21875.
  auto model = make("name = 'mf'\nloss = 'mse'\ndim = 2\nreg = 0.1\n", 2, 3);
  MfModuleImpl& m = *model->mf_module();
  {
    torch::NoGradGuard no_grad;
    m.user_factors[0] = torch::tensor({1.0f, 2.0f});
    m.item_factors[1] = torch::tensor({0.5f, -1.0f});
    m.user_bias[0] = 0.25f;
    m.item_bias[1] = -0.5f;
    m.global_mean.fill_(3.0);
  }
  TensorBatch batch;
  batch.users = torch::tensor({0}, torch::kLong);
  batch.target = torch::tensor({{0, 2}}, torch::kLong);
  batch.input = batch.target;
  batch.rating = torch::tensor({{0.0f, 2.0f}});
  LossParts loss = model->loss(batch);
  EXPECT_NEAR(loss.total.item<double>(), 1.21875, 1e-6);
  ASSERT_EQ(loss.parts.size(), 2u);
  EXPECT_EQ(loss.parts[0].first, "mse");
  EXPECT_NEAR(loss.parts[0].second.item<double>(), 0.5625, 1e-6);
  EXPECT_NEAR(loss.parts[1].second.item<double>(), 0.65625, 1e-6);
  const int32_t user = 0, item = 1;
  float predicted = 0;
  model->predict_ratings(&user, &item, 1, &predicted);
  EXPECT_NEAR(predicted, 1.25, 1e-6);
  // Ranking vectors [p, 1] · [q, b_i] = r̂ - μ - b_u = -2.
  data::Sequences none;
  const torch::Tensor u = model->user_vectors(none, &user, 1);
  const torch::Tensor v = model->item_vectors();
  EXPECT_EQ(model->dim(), 3);
  EXPECT_NEAR((u[0] * v[1]).sum().item<double>(), -2.0, 1e-6);
}

TEST(Mf, BprIsLogTwoAtZeroFactorsAndItsGradientMatchesFiniteDifferences) {
  auto model = make("name = 'mf'\nloss = 'bpr'\ndim = 3\nreg = 0.05\n", 3, 5);
  {
    // All scores 0: -log σ(0) = log 2 for every pair, and no L2 term.
    torch::NoGradGuard no_grad;
    for (auto& parameter : model->module().parameters()) parameter.zero_();
    EXPECT_NEAR(model->loss(small_batch()).total.item<double>(), std::log(2.0), 1e-6);
  }
  auto fresh = make("name = 'mf'\nloss = 'bpr'\ndim = 3\nreg = 0.05\ninit_std = 0.5\n", 3, 5);
  fresh->module().to(torch::kFloat64);
  EXPECT_LT(testing::parameter_gradient_error(*fresh, small_batch()), 1e-7);
}

TEST(Mf, SoftmaxGradientsMatchFiniteDifferencesForCosineAndDot) {
  for (const char* similarity : {"cosine", "dot"})
    for (const char* bias : {"false", "true"}) {
      auto model = make(fmt::format("name = 'mf'\nloss = 'softmax'\nsimilarity = '{}'\ndim = 3\nreg = 0.01\n"
                                    "init_std = 0.5\nsoftmax_chunk = 3\nitem_bias = {}\n",
                                    similarity, bias),
                        3, 5);
      model->module().to(torch::kFloat64);
      {
        torch::NoGradGuard no_grad;
        if (model->mf_module()->item_bias.defined()) model->mf_module()->item_bias.normal_(0.0, 0.5);
      }
      EXPECT_LT(testing::parameter_gradient_error(*model, small_batch()), 1e-7) << similarity << " bias " << bias;
    }
}

TEST(Mf, InBatchSoftmaxIsHandWorkedMasksDuplicatesAndMatchesFiniteDifferences) {
  // small_batch's pairs: user 0 with items 1, 2 and user 2 with items 0, 3, 4 (0-based). Dot scores, τ = 1, no
  // correction: row r's loss is -log softmax over the batch's five items, its own column the label.
  auto model = make("name = 'mf'\nloss = 'softmax'\nnegatives = 'in_batch'\nlogq_correction = false\ndim = 3\n"
                    "init_std = 0.5\n", 3, 5);
  MfModuleImpl& m = *model->mf_module();
  const torch::Tensor users = torch::tensor({0, 0, 2, 2, 2}, torch::kLong), items = torch::tensor({1, 2, 0, 3, 4}, torch::kLong);
  auto expected_loss = [&](const torch::Tensor& user_ids, const torch::Tensor& item_ids, const torch::Tensor& log_q) {
    const torch::Tensor logits = m.user_factors.index_select(0, user_ids).mm(m.item_factors.index_select(0, item_ids).t()) -
                                 log_q.index_select(0, item_ids).unsqueeze(0);
    return -torch::log_softmax(logits, 1).diagonal().mean();
  };
  EXPECT_NEAR(model->loss(small_batch()).total.item<double>(), expected_loss(users, items, torch::zeros({5})).item<double>(), 1e-6);

  // Item 3 twice: the other copy is no negative of either row, i.e. each of those rows sees four classes.
  TensorBatch duplicate = small_batch();
  duplicate.target = torch::tensor({{0, 2, 4}, {1, 4, 5}}, torch::kLong);  // items 1, 3 | 0, 3, 4
  const double with_duplicate = model->loss(duplicate).total.item<double>();
  const torch::Tensor logits = m.user_factors.index_select(0, torch::tensor({0, 0, 2, 2, 2}, torch::kLong))
                                   .mm(m.item_factors.index_select(0, torch::tensor({1, 3, 0, 3, 4}, torch::kLong)).t());
  const torch::Tensor masked = logits.detach().clone();
  masked[1][3] = -std::numeric_limits<float>::infinity();
  masked[3][1] = -std::numeric_limits<float>::infinity();
  EXPECT_NEAR(with_duplicate, (-torch::log_softmax(masked, 1).diagonal().mean()).item<double>(), 1e-6);

  // With the log-Q correction (Q from a training split) and cosine scores, in double: gradients are exact.
  auto corrected = make("name = 'mf'\nloss = 'softmax'\nnegatives = 'in_batch'\nsimilarity = 'cosine'\n"
                        "item_bias = true\ndim = 3\ninit_std = 0.5\nreg = 0.01\n", 3, 5);
  data::Split split;
  for (const std::vector<int32_t>& list : {std::vector<int32_t>{1, 2}, {0, 1}, {1, 3, 4}})
    split.train.push_user(list.data(), static_cast<int64_t>(list.size()));
  corrected->fit(split);
  // Item 1 has 3 of 7 interactions: with add-one counts its share is (3 + 1) / (7 + 5).
  EXPECT_NEAR(corrected->mf_module()->item_log_q[1].item<double>(), std::log(4.0 / 12.0), 1e-6);
  corrected->module().to(torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    corrected->mf_module()->item_bias.normal_(0.0, 0.5);
  }
  EXPECT_LT(testing::parameter_gradient_error(*corrected, small_batch()), 1e-7);
}

TEST(Mf, SgdSolverTakesCornacsStepAndLearnsAPlantedTaste) {
  // One user who had item 0 of 2: every triple is (0, 0, 1). One epoch of one step from hand-set values.
  auto model = make("name = 'mf'\nloss = 'bpr'\nsolver = 'sgd'\nsgd_epochs = 1\nsgd_learning_rate = 0.5\n"
                    "reg = 0.1\ndim = 2\n", 1, 2);
  EXPECT_FALSE(model->trainable());
  MfModuleImpl& m = *model->mf_module();
  {
    torch::NoGradGuard no_grad;
    m.user_factors.copy_(torch::tensor({{1.0f, 2.0f}}));
    m.item_factors.copy_(torch::tensor({{0.5f, 0.0f}, {0.0f, 0.5f}}));
    m.item_bias.copy_(torch::tensor({0.25f, -0.25f}));
  }
  data::Split one;
  const int32_t item = 0;
  one.train.push_user(&item, 1);
  model->fit(one);
  // x = p·(q0 - q1) + b0 - b1 = (0.5 - 1.0) + 0.5 = 0; z = σ(0) = 0.5; η = 0.5, 2 reg = 0.2.
  const double z = 0.5, rate = 0.5, decay = 0.2;
  const std::vector<double> p{1, 2}, q0{0.5, 0}, q1{0, 0.5};
  for (int d = 0; d < 2; ++d) {
    EXPECT_NEAR(m.user_factors[0][d].item<double>(), p[d] + rate * (z * (q0[d] - q1[d]) - decay * p[d]), 1e-6);
    EXPECT_NEAR(m.item_factors[0][d].item<double>(), q0[d] + rate * (z * p[d] - decay * q0[d]), 1e-6);
    EXPECT_NEAR(m.item_factors[1][d].item<double>(), q1[d] + rate * (-z * p[d] - decay * q1[d]), 1e-6);
  }
  EXPECT_NEAR(m.item_bias[0].item<double>(), 0.25 + rate * (z - decay * 0.25), 1e-6);
  EXPECT_NEAR(m.item_bias[1].item<double>(), -0.25 + rate * (-z + decay * 0.25), 1e-6);

  // Two groups of 20 users, each liking its own 10-item block (8 in training): the held-out items of a user's block
  // outrank the other block's, and the same seed gives the same parameters.
  data::Split split;
  for (int32_t u = 0; u < 40; ++u) {
    std::vector<int32_t> liked;
    for (int32_t k = 0; k < 8; ++k) liked.push_back((u < 20 ? 0 : 10) + (u + k) % 10);
    split.train.push_user(liked.data(), static_cast<int64_t>(liked.size()));
  }
  auto learner = [&] {
    auto fresh = make("name = 'mf'\nloss = 'bpr'\nsolver = 'sgd'\nsgd_epochs = 30\nreg = 0.001\ndim = 4\n", 40, 20);
    fresh->fit(split);
    return fresh;
  };
  auto a = learner(), b = learner();
  EXPECT_TRUE(torch::equal(a->mf_module()->user_factors, b->mf_module()->user_factors));
  std::vector<int32_t> users(40);
  std::iota(users.begin(), users.end(), 0);
  const torch::Tensor scores = a->user_vectors({}, users.data(), 40).mm(a->item_vectors().t());
  int right = 0, total = 0;
  for (int32_t u = 0; u < 40; ++u) {
    const int32_t own = u < 20 ? 0 : 10, other = u < 20 ? 10 : 0;
    for (int32_t k = 8; k < 10; ++k) {  // the two held-out items of the user's block
      const int32_t held = own + (u + k) % 10;
      for (int32_t o = 0; o < 10; ++o, ++total) right += scores[u][held].item<float>() > scores[u][other + o].item<float>();
    }
  }
  EXPECT_GT(right, 0.95 * total);
}

TEST(Mf, RankingVectorsGiveTheScoresTheLossUses) {
  // BPR (item bias on by default): u · v = p_u · q_i + b_i; softmax with a bias: the logit p_u · q_i / τ + b_i;
  // cosine softmax without one: the cosine.
  struct Case {
    const char* toml;
    std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)> score;
  };
  const std::vector<Case> cases = {
      {"loss = 'bpr'", [](auto& p, auto& q, auto& b) { return p.mm(q.t()) + b; }},
      {"loss = 'softmax'\ntemperature = 0.5\nitem_bias = true",
       [](auto& p, auto& q, auto& b) { return p.mm(q.t()) / 0.5 + b; }},
      {"loss = 'softmax'\nsimilarity = 'cosine'",
       [](auto& p, auto& q, auto&) {
         return F::normalize(p, F::NormalizeFuncOptions().dim(1)).mm(F::normalize(q, F::NormalizeFuncOptions().dim(1)).t());
       }},
  };
  for (const Case& c : cases) {
    auto model = make(std::string("name = 'mf'\ndim = 4\ninit_std = 0.5\n") + c.toml + "\n", 3, 5);
    MfModuleImpl& m = *model->mf_module();
    torch::Tensor bias = torch::zeros({5});
    {
      torch::NoGradGuard no_grad;
      if (m.item_bias.defined()) bias = m.item_bias.normal_(0.0, 1.0).clone();
    }
    const int32_t users[] = {0, 1, 2};
    const torch::Tensor scores = model->user_vectors({}, users, 3).mm(model->item_vectors().t());
    const torch::Tensor expected = c.score(m.user_factors.detach(), m.item_factors.detach(), bias);
    EXPECT_TRUE(torch::allclose(scores, expected, 1e-5, 1e-5)) << c.toml << "\n" << scores << "\n" << expected;
  }
}

TEST(Mf, CosineSoftmaxIsLogItemsWhenAllItemsPointTheSameWay) {
  // Item vectors k · (1, 1), k = 1..5: one direction, so every item has the same cosine with any user, the softmax
  // is uniform and the loss is log 5 whatever the temperature. (With dot scores the longest vector would win.)
  auto model = make("name = 'mf'\nloss = 'softmax'\nsimilarity = 'cosine'\ndim = 2\n", 3, 5);
  EXPECT_EQ(model->dim(), 2);
  {
    torch::NoGradGuard no_grad;
    MfModuleImpl& m = *model->mf_module();
    m.item_factors.copy_(torch::arange(1, 6, torch::kFloat32).unsqueeze(1).expand({5, 2}));
  }
  EXPECT_NEAR(model->loss(small_batch()).total.item<double>(), std::log(5.0), 1e-5);
}

TEST(Mf, EvaluatorAddsRatingMetricsOnlyForRatingModels) {
  // Targets: user 0 rated item 2 with 4 and item 0 with 1, user 1 rated item 1 with 3.
  data::EvalTask task;
  const int32_t h0[] = {1}, h1[] = {0};
  const float hr[] = {5};
  task.history.push_user(h0, 1, hr);
  task.history.push_user(h1, 1, hr);
  const int32_t t0[] = {2, 0}, t1[] = {1};
  const float r0[] = {4, 1}, r1[] = {3};
  task.targets.push_user(t0, 2, r0);
  task.targets.push_user(t1, 1, r1);
  eval::EvalConfig config;
  config.ks = {2};
  auto model = make("name = 'mf'\nloss = 'mse'\ndim = 2\n", 2, 3);
  const eval::EvalResult result = evaluate_model(*model, task, 3, config);
  const int32_t users[] = {0, 0, 1}, items[] = {2, 0, 1};
  const float truth[] = {4, 1, 3};
  float predicted[3];
  model->predict_ratings(users, items, 3, predicted);
  EXPECT_DOUBLE_EQ(result.value("rmse"), eval::rmse(truth, predicted, 3));
  EXPECT_DOUBLE_EQ(result.value("mae"), eval::mae(truth, predicted, 3));
  EXPECT_DOUBLE_EQ(result.value("r2"), eval::r_squared(truth, predicted, 3));
  EXPECT_DOUBLE_EQ(result.value("explained_variance"), eval::explained_variance(truth, predicted, 3));
  EXPECT_NE(result.to_table(config.ks, config.metrics).find("rmse"), std::string::npos);
  EXPECT_EQ(eval::EvalResult::from_json(result.to_json()).value("rmse"), result.value("rmse"));

  auto implicit = make("name = 'mf'\nloss = 'bpr'\ndim = 2\n", 2, 3);
  const eval::EvalResult ranking_only = evaluate_model(*implicit, task, 3, config);
  EXPECT_EQ(ranking_only.all().values.count("rmse"), 0u);
  EXPECT_EQ(ranking_only.to_table(config.ks, config.metrics).find("rmse"), std::string::npos);
}

TEST(Mf, CheckpointRoundTripGivesIdenticalPredictions) {
  data::Split split;
  const int32_t a[] = {0, 2}, b[] = {1};
  const float ra[] = {4, 2}, rb[] = {5};
  split.train.push_user(a, 2, ra);
  split.train.push_user(b, 1, rb);
  auto saved = make("name = 'mf'\nloss = 'mse'\ndim = 4\n", 2, 3, /*seed=*/1);
  saved->fit(split);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("embrec-mf-" + std::to_string(::getpid()) + ".pt")).string();
  {
    torch::serialize::OutputArchive archive;
    saved->module().save(archive);
    archive.save_to(path);
  }
  auto loaded = make("name = 'mf'\nloss = 'mse'\ndim = 4\n", 2, 3, /*seed=*/2);
  {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    loaded->module().load(archive);
  }
  std::filesystem::remove(path);
  const int32_t users[] = {0, 0, 1, 1}, items[] = {0, 1, 2, 0};
  float before[4], after[4];
  saved->predict_ratings(users, items, 4, before);
  loaded->predict_ratings(users, items, 4, after);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(before[k], after[k]) << k;
  EXPECT_NEAR(after[0], 11.0f / 3.0f, 0.5f);  // μ = 11/3 travelled with the checkpoint, plus small factor products
  data::Sequences none;
  EXPECT_TRUE(torch::equal(saved->user_vectors(none, users, 4), loaded->user_vectors(none, users, 4)));
  EXPECT_TRUE(torch::equal(saved->item_vectors(), loaded->item_vectors()));
}

TEST(Mf, InvalidKeysAreErrorsNamingTheKey) {
  EXPECT_NE(config_error("name = 'mf'\ndims = 8\n").find("dims"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'rmse'\n").find("loss"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'bpr'\nsimilarity = 'cosine'\n").find("similarity"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'mse'\ntemperature = 0.2\n").find("temperature"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'softmax'\ntemperature = 0.0\n").find("temperature"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\ndim = 0\n").find("dim"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nreg = -1.0\n").find("reg"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\ndim = 'big'\n").find("dim"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'mse'\nitem_bias = false\n").find("item_bias"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'bpr'\nnegatives = 'in_batch'\n").find("negatives"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'softmax'\nlogq_correction = true\n").find("logq_correction"),
            std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'softmax'\nnegatives = 'some'\n").find("negatives"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'mse'\nsolver = 'sgd'\n").find("solver"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'bpr'\nsgd_epochs = 3\n").find("sgd_epochs"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'bpr'\nsolver = 'sgd'\nsgd_learning_rate = 0.0\n").find("sgd_learning_rate"),
            std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'bpr'\ntargets = 'binary'\n").find("targets"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'mse'\ntargets = 'clicks'\n").find("targets"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'softmax'\nmax_pairs = 64\n").find("max_pairs"), std::string::npos);
  EXPECT_NE(config_error("name = 'mf'\nloss = 'softmax'\nnegatives = 'in_batch'\nmax_pairs = 1\n").find("max_pairs"),
            std::string::npos);
  EXPECT_EQ(config_error("name = 'mf'\nloss = 'softmax'\nsimilarity = 'cosine'\n"), "(no error)");
}

TEST(Mf, BinaryTargetsRegressOneOnObservedAndZeroOnTheSampledItem) {
  // p_0 = (1, 2), q_1 = (0.5, -1), q_3 = (1, 1), b_u = 0.25, b_1 = -0.5, b_3 = 0.1, μ = 0.5 (set by fit):
  // observed r̂_01 = 0.5 + 0.25 - 0.5 - 1.5 = -1.25, error (1 + 1.25)² = 5.0625; sampled r̂_03 = 0.5 + 0.25 + 0.1 + 3 =
  // 3.85, error 3.85² = 14.8225; the loss is their mean 9.9425.
  auto model = make("name = 'mf'\nloss = 'mse'\ntargets = 'binary'\ndim = 2\n", 2, 4);
  EXPECT_FALSE(model->predicts_ratings());
  data::SamplerOptions defaults;
  const data::SamplerOptions options = model->sampler_options(defaults);
  EXPECT_TRUE(options.negatives);
  EXPECT_FALSE(options.ratings);
  data::Split split;  // no ratings: binary targets need none
  const int32_t a[] = {1};
  split.train.push_user(a, 1);
  model->fit(split);
  MfModuleImpl& m = *model->mf_module();
  EXPECT_DOUBLE_EQ(m.global_mean.item<double>(), 0.5);
  {
    torch::NoGradGuard no_grad;
    m.user_factors[0] = torch::tensor({1.0f, 2.0f});
    m.item_factors[1] = torch::tensor({0.5f, -1.0f});
    m.item_factors[3] = torch::tensor({1.0f, 1.0f});
    m.user_bias[0] = 0.25f;
    m.item_bias[1] = -0.5f;
    m.item_bias[3] = 0.1f;
  }
  TensorBatch batch;
  batch.users = torch::tensor({0}, torch::kLong);
  batch.target = torch::tensor({{0, 2}}, torch::kLong);
  batch.input = batch.target;
  batch.negative = torch::tensor({{0, 4}}, torch::kLong);
  EXPECT_NEAR(model->loss(batch).total.item<double>(), 9.9425, 1e-5);
  // Its gradient, biases and L2 term included, against finite differences.
  auto fresh = make("name = 'mf'\nloss = 'mse'\ntargets = 'binary'\ndim = 4\nreg = 0.01\n", 3, 5);
  fresh->module().to(torch::kFloat64);
  EXPECT_LT(testing::parameter_gradient_error(*fresh, small_batch()), 1e-7);
}

TEST(Mf, InBatchSoftmaxIsCutIntoChunksOfAtMostMaxPairs) {
  // small_batch holds five pairs. max_pairs = 2 cuts them into three chunks (sizes 1, 2, 2 of a seeded shuffle):
  // the loss is the mean of three softmaxes, each over its own chunk's items, so it differs from one softmax over
  // all five; max_pairs = 5 is that one softmax exactly.
  const std::string base = "name = 'mf'\nloss = 'softmax'\nnegatives = 'in_batch'\nlogq_correction = false\ndim = 3\n"
                           "init_std = 0.5\n";
  auto whole = make(base + "max_pairs = 5\n", 3, 5);
  auto chunked = make(base + "max_pairs = 2\n", 3, 5);
  {
    torch::NoGradGuard no_grad;
    chunked->mf_module()->user_factors.copy_(whole->mf_module()->user_factors);
    chunked->mf_module()->item_factors.copy_(whole->mf_module()->item_factors);
  }
  MfModuleImpl& m = *whole->mf_module();
  const torch::Tensor users = torch::tensor({0, 0, 2, 2, 2}, torch::kLong), items = torch::tensor({1, 2, 0, 3, 4}, torch::kLong);
  const torch::Tensor logits = m.user_factors.index_select(0, users).mm(m.item_factors.index_select(0, items).t());
  EXPECT_NEAR(whole->loss(small_batch()).total.item<double>(),
              (-torch::log_softmax(logits, 1).diagonal().mean()).item<double>(), 1e-6);
  const double chunked_loss = chunked->loss(small_batch()).total.item<double>();
  // Every partition of the five pairs into chunks of sizes {1, 2, 2}: the chunked loss is one of them.
  double closest = 1e9;
  std::vector<int64_t> order{0, 1, 2, 3, 4};
  do {
    double total = 0;
    for (auto [begin, end] : {std::pair<int, int>{0, 1}, {1, 3}, {3, 5}}) {
      const torch::Tensor rows = torch::tensor(std::vector<int64_t>(order.begin() + begin, order.begin() + end));
      const torch::Tensor part = logits.index_select(0, rows).index_select(1, rows);
      total += (-torch::log_softmax(part, 1).diagonal().mean()).item<double>();
    }
    closest = std::min(closest, std::abs(total / 3.0 - chunked_loss));
  } while (std::next_permutation(order.begin(), order.end()));
  EXPECT_LT(closest, 1e-6);
  EXPECT_GT(std::abs(chunked_loss - whole->loss(small_batch()).total.item<double>()), 1e-4);
}

TEST(Mf, MseWithoutRatingsIsAnError) {
  data::Split split;
  const int32_t a[] = {0, 2};
  split.train.push_user(a, 2);
  auto model = make("name = 'mf'\nloss = 'mse'\n", 1, 3);
  const std::string message = error_of([&] { model->fit(split); });
  EXPECT_NE(message.find("ratings"), std::string::npos) << message;
  EXPECT_NE(message.find("targets = \"binary\""), std::string::npos) << message;
}

}  // namespace
}  // namespace embrec::models
