// RBM: hand-worked free energy and scores, the softmax visible units, the CD gradient, the CD-k schedule, learning
// a planted rating pattern, checkpoint round trip and config/data errors.
#include "embrec/models/rbm.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "embrec/eval/metrics.h"
#include "embrec/util/error.h"
#include "model_fixtures.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

std::unique_ptr<Rbm> make(const std::string& toml_text, int32_t users, int32_t items, uint64_t seed = 1) {
  return testing::make_model<Rbm>(toml_text, users, items, seed);
}

std::string config_error(const std::string& toml_text) { return testing::creation_error<Rbm>(toml_text); }

// Trains with the sampler and Adam as the trainer does; returns each epoch's mean "recon" part.
std::vector<double> train(Rbm& model, const data::Sequences& train, int32_t item_count, int64_t epochs,
                          double learning_rate, int32_t batch_size) {
  data::SamplerOptions defaults;
  defaults.batch_size = batch_size;
  data::SequenceSampler sampler(train, item_count, model.sampler_options(defaults));
  torch::optim::Adam optimizer(model.module().parameters(), torch::optim::AdamOptions(learning_rate));
  data::SequenceBatch batch;
  std::vector<double> recon;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    const auto plan = sampler.epoch_plan(epoch);
    double sum = 0.0;
    for (size_t b = 0; b < plan.size(); ++b) {
      sampler.fill(plan[b], epoch, static_cast<int64_t>(b), batch);
      LossParts loss = model.loss(testing::batch_tensors(batch, epoch, static_cast<int64_t>(b)));
      EXPECT_EQ(loss.parts.at(1).first, "recon");
      sum += loss.parts.at(1).second.item<double>();
      optimizer.zero_grad();
      loss.total.backward();
      optimizer.step();
    }
    recon.push_back(sum / static_cast<double>(plan.size()));
  }
  return recon;
}

// The tiny RBM of the hand-worked tests: 2 items, ratings 1..2 (levels 0, 1), 2 hidden units. Softmax units are
// numbered item·2 + level.
std::unique_ptr<Rbm> tiny_rbm() {
  auto model = make("name = 'rbm'\nhidden = 2\nmin_rating = 1\nmax_rating = 2\n", 3, 2);
  RbmModuleImpl& m = *model->rbm_module();
  torch::NoGradGuard no_grad;
  m.weight.copy_(torch::tensor({{0.5f, -1.0f}, {1.0f, 0.5f}, {-0.5f, 0.25f}, {2.0f, -2.0f}}));
  m.visible_bias.copy_(torch::tensor({0.1f, 0.2f, -0.3f, 0.4f}));
  m.hidden_bias.copy_(torch::tensor({0.0f, -0.5f}));
  return model;
}

RbmVisible units(std::vector<int64_t> rows, std::vector<int64_t> items, std::vector<int64_t> levels,
                 int64_t row_count) {
  RbmVisible v;
  v.rows = torch::tensor(rows, torch::kLong);
  v.items = torch::tensor(items, torch::kLong);
  v.levels = torch::tensor(levels, torch::kLong);
  v.row_count = row_count;
  return v;
}

TEST(RbmFreeEnergy, IsHandWorkedOnATinyRbm) {
  // Row 0 rated item 0 = 2 (unit 1) and item 1 = 1 (unit 2): F = −(0.2 − 0.3) − softplus(1 − 0.5 + 0)
  //   − softplus(0.5 + 0.25 − 0.5) = 0.1 − 0.974077 − 0.825939 = −1.700016.
  // Row 1 rated item 1 = 2 (unit 3): F = −0.4 − softplus(2) − softplus(−2 − 0.5) = −2.605818.
  // Row 2 rated nothing: F = −softplus(0) − softplus(−0.5) = −1.167224.
  auto model = tiny_rbm();
  const torch::Tensor energy = model->free_energy(units({0, 0, 1}, {0, 1, 1}, {1, 0, 1}, 3));
  EXPECT_NEAR(energy[0].item<double>(), -1.700016, 1e-5);
  EXPECT_NEAR(energy[1].item<double>(), -2.605818, 1e-5);
  EXPECT_NEAR(energy[2].item<double>(), -1.167224, 1e-5);
  // The same units from a sampler batch (item ids + 1, 0 = padding, ratings beside them).
  TensorBatch batch;
  batch.target = torch::tensor({{1, 2}, {0, 2}, {0, 0}}, torch::kLong);
  batch.rating = torch::tensor({{2.0f, 1.0f}, {0.0f, 2.0f}, {0.0f, 0.0f}});
  EXPECT_TRUE(torch::allclose(model->free_energy(model->visible_from_batch(batch)), energy));
}

TEST(RbmVisible, SoftmaxSumsToOnePerItemAndIsHandWorked) {
  // h = (1, 0): item 0's logits are b + W·h = (0.1 + 0.5, 0.2 + 1.0): p(rating 2) = σ(0.6) = 0.645656.
  auto tiny = tiny_rbm();
  const torch::Tensor p = tiny->visible_probabilities(torch::tensor({{1.0f, 0.0f}}));
  EXPECT_NEAR(p[0][0][1].item<double>(), 0.645656, 1e-5);
  auto model = make("name = 'rbm'\nhidden = 4\ninit_std = 1.0\n", 3, 6);
  torch::manual_seed(5);
  for (const torch::Tensor& hidden : {torch::rand({3, 4}), torch::randint(0, 2, {3, 4}).to(torch::kFloat32)}) {
    const torch::Tensor probabilities = model->visible_probabilities(hidden);
    ASSERT_EQ(probabilities.sizes(), (std::vector<int64_t>{3, 6, 5}));
    EXPECT_TRUE(torch::allclose(probabilities.sum(2), torch::ones({3, 6}), 1e-6, 1e-6));
    EXPECT_GT(probabilities.min().item<double>(), 0.0);
  }
}

TEST(RbmVisible, RatingValueUnitsAreSoftmaxUnitsWithTiedWeights) {
  // MS's rank-2 units: p(v_i = r) ∝ exp(r (b_i + W_i·h)), the softmax model with W_irh = r W_ih, b_ir = r b_i.
  auto tied = make("name = 'rbm'\nvisible = 'rating_value'\nhidden = 3\nmin_rating = 1\nmax_rating = 3\n", 2, 4);
  auto full = make("name = 'rbm'\nvisible = 'softmax'\nhidden = 3\nmin_rating = 1\nmax_rating = 3\n", 2, 4);
  {
    torch::NoGradGuard no_grad;
    RbmModuleImpl& a = *tied->rbm_module();
    RbmModuleImpl& b = *full->rbm_module();
    a.visible_bias.copy_(torch::randn({4}));
    a.hidden_bias.copy_(torch::randn({3}));
    const torch::Tensor values = torch::tensor({1.0f, 2.0f, 3.0f});
    b.weight.copy_((a.weight.unsqueeze(1) * values.view({1, 3, 1})).reshape({12, 3}));
    b.visible_bias.copy_((a.visible_bias.unsqueeze(1) * values.view({1, 3})).reshape({12}));
    b.hidden_bias.copy_(a.hidden_bias);
  }
  EXPECT_EQ(tied->rbm_module()->weight.sizes(), (std::vector<int64_t>{4, 3}));
  const RbmVisible v = units({0, 0, 1, 1}, {0, 3, 1, 3}, {2, 0, 1, 1}, 2);
  EXPECT_TRUE(torch::allclose(tied->free_energy(v), full->free_energy(v), 1e-5, 1e-5));
  const torch::Tensor hidden = torch::rand({2, 3});
  EXPECT_TRUE(torch::allclose(tied->visible_probabilities(hidden), full->visible_probabilities(hidden), 1e-5, 1e-6));
}

TEST(RbmGradient, FreeEnergyDifferenceGivesTheContrastiveDivergenceUpdate) {
  // loss = mean_rows F(v_data) − F(v_model), v_model fixed: ∂loss/∂W_uj = −(1/B) Σ_rows (v_data,u p_j(v_data) −
  // v_model,u p_j(v_model)), i.e. minus the CD update ⟨v h⟩_data − ⟨v h⟩_model; likewise for both biases. A unit's
  // value v_u is 1 for softmax units and the rating r for MS's rating_value units.
  for (const char* visible : {"softmax", "rating_value"}) {
    const int64_t items = 3, values = 3, hidden = 2, rows = 2;
    auto model = make(fmt::format("name = 'rbm'\nvisible = '{}'\nhidden = 2\nmin_rating = 1\nmax_rating = 3\n"
                                  "init_std = 0.7\n",
                                  visible),
                      rows, items);
    const bool softmax = std::string(visible) == "softmax";
    model->module().to(torch::kFloat64);
    RbmModuleImpl& m = *model->rbm_module();
    {
      torch::NoGradGuard no_grad;
      m.visible_bias.copy_(torch::randn(m.visible_bias.sizes()));
      m.hidden_bias.copy_(torch::randn({hidden}));
    }
    // The same rated items, different ratings in the model sample (unrated items stay off).
    const std::vector<int64_t> unit_rows = {0, 0, 1}, unit_items = {0, 2, 1};
    const std::vector<int64_t> data_levels = {2, 0, 1}, model_levels = {1, 0, 2};
    const RbmVisible data = units(unit_rows, unit_items, data_levels, rows);
    const RbmVisible sample = units(unit_rows, unit_items, model_levels, rows);
    model->module().zero_grad();
    (model->free_energy(data) - model->free_energy(sample)).mean().backward();

    const int64_t unit_count = softmax ? items * values : items;
    auto weight = m.weight.accessor<double, 2>();
    auto hidden_bias = m.hidden_bias.accessor<double, 1>();
    // One row's state as (unit, value) pairs and p(h_j = 1 | v), by hand from the parameters.
    auto state = [&](int64_t row, const std::vector<int64_t>& levels) {
      std::vector<std::pair<int64_t, double>> on;
      for (size_t p = 0; p < unit_rows.size(); ++p) {
        if (unit_rows[p] != row) continue;
        const double value = static_cast<double>(levels[p] + 1);
        on.emplace_back(softmax ? unit_items[p] * values + levels[p] : unit_items[p], softmax ? 1.0 : value);
      }
      std::vector<double> probability(hidden);
      for (int64_t j = 0; j < hidden; ++j) {
        double input = hidden_bias[j];
        for (auto [unit, value] : on) input += value * weight[unit][j];
        probability[j] = 1.0 / (1.0 + std::exp(-input));
      }
      return std::make_pair(on, probability);
    };
    torch::Tensor expected_weight = torch::zeros({unit_count, hidden}, torch::kFloat64);
    torch::Tensor expected_visible = torch::zeros({unit_count}, torch::kFloat64);
    torch::Tensor expected_hidden = torch::zeros({hidden}, torch::kFloat64);
    auto ew = expected_weight.accessor<double, 2>();
    auto ev = expected_visible.accessor<double, 1>();
    auto eh = expected_hidden.accessor<double, 1>();
    for (int64_t row = 0; row < rows; ++row) {
      for (const auto& [levels, sign] : {std::make_pair(data_levels, -1.0), std::make_pair(model_levels, 1.0)}) {
        const auto [on, probability] = state(row, levels);
        for (int64_t j = 0; j < hidden; ++j) eh[j] += sign * probability[j] / rows;
        for (auto [unit, value] : on) {
          ev[unit] += sign * value / rows;
          for (int64_t j = 0; j < hidden; ++j) ew[unit][j] += sign * value * probability[j] / rows;
        }
      }
    }
    EXPECT_TRUE(torch::allclose(m.weight.grad(), expected_weight, 1e-10, 1e-12)) << visible;
    EXPECT_TRUE(torch::allclose(m.visible_bias.grad(), expected_visible, 1e-10, 1e-12)) << visible;
    EXPECT_TRUE(torch::allclose(m.hidden_bias.grad(), expected_hidden, 1e-10, 1e-12)) << visible;
    EXPECT_GT(expected_weight.abs().max().item<double>(), 0.01);  // a non-trivial sample
  }
}

TEST(RbmGibbs, ChainsStayOnTheRatedItemsAndAreSeededByEpochAndBatch) {
  auto config = RbmConfig{};
  config.cd_steps = 1;
  config.cd_step_epochs = {17, 23, 26, 29};  // MS's sampling_protocol [50, 70, 80, 90, 100] % of 31 epochs
  const int64_t expected_steps[] = {1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
  const int64_t epochs[] = {0, 10, 15, 16, 21, 22, 24, 25, 27, 28, 30};
  for (int k = 0; k < 11; ++k) EXPECT_EQ(config.cd_steps_at(epochs[k]), expected_steps[k]) << epochs[k];

  auto model = make("name = 'rbm'\nhidden = 4\ninit_std = 1.0\nkeep_prob = 0.9\n", 2, 6);
  const RbmVisible data = units({0, 0, 0, 1}, {1, 4, 5, 2}, {0, 4, 2, 3}, 2);
  at::Generator generator = at::detail::createCPUGenerator(7);
  const RbmVisible sample = model->gibbs_chain(data, 3, generator);
  EXPECT_TRUE(torch::equal(sample.rows, data.rows));
  EXPECT_TRUE(torch::equal(sample.items, data.items));
  EXPECT_GE(sample.levels.min().item<int64_t>(), 0);
  EXPECT_LT(sample.levels.max().item<int64_t>(), 5);
  EXPECT_TRUE(torch::equal(model->gibbs_chain(data, 0, generator).levels, data.levels));

  // The loss's chain depends on (seed, epoch, batch_index) only.
  TensorBatch batch;
  batch.target = torch::tensor({{2, 5, 6, 1, 3, 4}, {0, 0, 3, 4, 5, 6}}, torch::kLong);
  batch.rating = torch::tensor({{1.0f, 5.0f, 3.0f, 2.0f, 4.0f, 1.0f}, {0.0f, 0.0f, 4.0f, 2.0f, 5.0f, 5.0f}});
  auto loss_at = [&](int64_t epoch, int64_t batch_index) {
    batch.epoch = epoch;
    batch.batch_index = batch_index;
    return model->loss(batch).total.item<double>();
  };
  EXPECT_EQ(loss_at(3, 1), loss_at(3, 1));
  std::set<double> distinct;
  for (int64_t b = 0; b < 8; ++b) distinct.insert(loss_at(3, b));
  EXPECT_GT(distinct.size(), 1u);
}

TEST(RbmTraining, ReconstructionFallsAndPredictionsRecoverAPlantedPattern) {
  // Two user tastes, two item kinds: a user rates items of their kind 4 or 5 and the others 1 or 2 (5 and 1 on
  // every third item). Each user rates 2/3 of the items in training; a fixed sixth is held out.
  const int32_t users = 60, items = 24;
  auto planted = [](int32_t u, int32_t i) -> float {
    const bool liked = u % 2 == i % 2;
    const bool strong = i % 3 == 0;
    return liked ? (strong ? 5.0f : 4.0f) : (strong ? 1.0f : 2.0f);
  };
  data::Split split;
  std::vector<int32_t> test_users, test_items;
  std::vector<float> test_truth;
  for (int32_t u = 0; u < users; ++u) {
    std::vector<int32_t> row_items;
    std::vector<float> row_ratings;
    for (int32_t i = 0; i < items; ++i) {
      const int32_t slot = (u * 7 + i * 5) % 6;
      if (slot == 0) {
        test_users.push_back(u);
        test_items.push_back(i);
        test_truth.push_back(planted(u, i));
      } else if (slot <= 4) {
        row_items.push_back(i);
        row_ratings.push_back(planted(u, i));
      }
    }
    split.train.push_user(row_items.data(), static_cast<int64_t>(row_items.size()), row_ratings.data());
  }
  const int64_t held_out = static_cast<int64_t>(test_truth.size());
  double mean = 0.0;
  for (float r : split.train.ratings) mean += r / static_cast<double>(split.train.ratings.size());
  std::vector<float> mean_prediction(held_out, static_cast<float>(mean));
  const double baseline = eval::rmse(test_truth.data(), mean_prediction.data(), held_out);
  EXPECT_GT(baseline, 1.3);  // ratings 4.3 or 1.7 on average around a mean of 3

  auto model = make("name = 'rbm'\nhidden = 8\ncd_steps = 1\ncd_step_epochs = [30]\n", users, items, /*seed=*/3);
  model->fit(split);
  const std::vector<double> recon = train(*model, split.train, items, /*epochs=*/60, /*learning_rate=*/0.02,
                                          /*batch_size=*/10);
  EXPECT_LT(recon.back(), 0.5 * recon.front()) << "first " << recon.front() << " last " << recon.back();

  std::vector<float> predicted(held_out);
  model->predict_ratings(test_users.data(), test_items.data(), held_out, predicted.data());
  for (float p : predicted) {
    EXPECT_GE(p, 1.0f);
    EXPECT_LE(p, 5.0f);
  }
  const double held_out_rmse = eval::rmse(test_truth.data(), predicted.data(), held_out);
  EXPECT_LT(held_out_rmse, 0.35 * baseline) << "held-out RMSE " << held_out_rmse << ", mean-only " << baseline;

  // Ranking from the training histories: items of the user's kind come first.
  std::vector<int32_t> all(users);
  for (int32_t u = 0; u < users; ++u) all[u] = u;
  std::vector<float> scores(static_cast<size_t>(users) * items);
  model->score_block(split.train, all.data(), users, scores.data());
  int64_t ordered = 0, pairs = 0;
  for (int32_t u = 0; u < users; ++u)
    for (int32_t a = 0; a < items; ++a)
      for (int32_t b = 0; b < items; ++b)
        if (a % 2 == u % 2 && b % 2 != u % 2) {
          ++pairs;
          ordered += scores[u * items + a] > scores[u * items + b];
        }
  EXPECT_GT(static_cast<double>(ordered) / pairs, 0.95);
}

TEST(RbmScoring, ModeProbabilityAndExpectedRatingAreHandWorked) {
  // W = 0, b_h = 0: p(h | v) = 1/2 whatever the history, so p(v_i | h) = softmax(b_i). With ratings 1..3:
  //   item 0: p = (0.3, 0.3, 0.4): expected 2.1, mode score 3 · 0.4 = 1.2;
  //   item 1: p = (0.05, 0.9, 0.05): expected 2.0, mode score 2 · 0.9 = 1.8.
  // The two rankings disagree: MS's score (rating × its probability) prefers the confident item 1.
  const char* base = "name = 'rbm'\nhidden = 2\nmin_rating = 1\nmax_rating = 3\n";
  data::Split split;
  const int32_t a[] = {0}, none[] = {0};
  const float ra[] = {3};
  split.train.push_user(a, 1, ra);
  split.train.push_user(none, 0, ra);
  for (const char* ranking : {"mode_probability", "expected_rating"}) {
    auto model = make(fmt::format("{}ranking = '{}'\n", base, ranking), 2, 2);
    {
      torch::NoGradGuard no_grad;
      RbmModuleImpl& m = *model->rbm_module();
      m.weight.zero_();
      m.hidden_bias.zero_();
      m.visible_bias.copy_(torch::tensor({0.3f, 0.3f, 0.4f, 0.05f, 0.9f, 0.05f}).log());
    }
    model->fit(split);
    const int32_t users[] = {0, 1};
    float scores[4];
    model->score_block(split.train, users, 2, scores);
    const bool mode = std::string(ranking) == "mode_probability";
    for (int row = 0; row < 2; ++row) {
      EXPECT_NEAR(scores[row * 2 + 0], mode ? 1.2 : 2.1, 1e-5) << ranking;
      EXPECT_NEAR(scores[row * 2 + 1], mode ? 1.8 : 2.0, 1e-5) << ranking;
    }
    // Rating predictions are the expected rating whatever the ranking.
    const int32_t pair_users[] = {1, 0, 0}, pair_items[] = {1, 0, 1};
    float predicted[3];
    model->predict_ratings(pair_users, pair_items, 3, predicted);
    EXPECT_NEAR(predicted[0], 2.0, 1e-5);
    EXPECT_NEAR(predicted[1], 2.1, 1e-5);
    EXPECT_NEAR(predicted[2], 2.0, 1e-5);
  }
}

TEST(RbmScoring, ChunksAndReusedBuffersGiveTheScoresOfOneBlock) {
  // score_chunk = 2 splits 5 users into blocks of 2, 2 and 1 (buffers shrink and grow again on the second call).
  data::Split split;
  const int32_t a[] = {0, 2, 3}, b[] = {1}, c[] = {4, 5}, none[] = {0};
  const float ra[] = {4, 2, 5}, rb[] = {1}, rc[] = {3, 3};
  split.train.push_user(a, 3, ra);
  split.train.push_user(b, 1, rb);
  split.train.push_user(c, 2, rc);
  split.train.push_user(none, 0, ra);
  split.train.push_user(b, 1, ra);
  const int32_t users[] = {0, 1, 2, 3, 4};
  for (const char* visible : {"softmax", "rating_value"}) {
    for (const char* ranking : {"mode_probability", "expected_rating"}) {
      const std::string toml =
          fmt::format("name = 'rbm'\nhidden = 3\ninit_std = 0.5\nvisible = '{}'\nranking = '{}'\n", visible, ranking);
      auto whole = make(toml, 5, 6, /*seed=*/4);
      auto chunked = make(toml + "score_chunk = 2\n", 5, 6, /*seed=*/4);
      whole->fit(split);
      chunked->fit(split);
      std::vector<float> expected(30), first(30), again(30);
      whole->score_block(split.train, users, 5, expected.data());
      chunked->score_block(split.train, users, 5, first.data());
      chunked->score_block(split.train, users + 1, 1, again.data());
      chunked->score_block(split.train, users, 5, again.data());
      for (int k = 0; k < 30; ++k) {
        EXPECT_NEAR(first[k], expected[k], 1e-6) << visible << " " << ranking << " " << k;
        EXPECT_EQ(again[k], first[k]) << visible << " " << ranking << " " << k;
      }
    }
  }
}

TEST(RbmCheckpoint, RoundTripGivesIdenticalPredictions) {
  data::Split split;
  const int32_t a[] = {0, 2, 3}, b[] = {1};
  const float ra[] = {4, 2, 5}, rb[] = {1};
  split.train.push_user(a, 3, ra);
  split.train.push_user(b, 1, rb);
  const std::string toml = "name = 'rbm'\nhidden = 3\ninit_std = 0.5\n";
  auto saved = make(toml, 2, 4, /*seed=*/1);
  saved->fit(split);
  const std::string path =
      (std::filesystem::temp_directory_path() / ("embrec-rbm-" + std::to_string(::getpid()) + ".pt")).string();
  {
    torch::serialize::OutputArchive archive;
    saved->module().save(archive);
    archive.save_to(path);
  }
  auto loaded = make(toml, 2, 4, /*seed=*/2);
  loaded->fit(split);  // the training ratings are rebuilt from the split, as load_run does
  const int32_t users[] = {0, 0, 1, 1}, items[] = {0, 1, 2, 3};
  float before[4], fresh[4], after[4];
  saved->predict_ratings(users, items, 4, before);
  loaded->predict_ratings(users, items, 4, fresh);
  EXPECT_NE(std::vector<float>(before, before + 4), std::vector<float>(fresh, fresh + 4));
  {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    loaded->module().load(archive);
  }
  std::filesystem::remove(path);
  loaded->predict_ratings(users, items, 4, after);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(before[k], after[k]) << k;
  const int32_t both[] = {0, 1};
  float scores_before[8], scores_after[8];
  saved->score_block(split.train, both, 2, scores_before);
  loaded->score_block(split.train, both, 2, scores_after);
  for (int k = 0; k < 8; ++k) EXPECT_EQ(scores_before[k], scores_after[k]) << k;
}

TEST(RbmConfig, InvalidKeysAreErrorsNamingTheKey) {
  EXPECT_NE(config_error("name = 'rbm'\nhiden = 8\n").find("hiden"), std::string::npos);
  EXPECT_NE(config_error("name = 'rbm'\nhidden = 0\n").find("hidden"), std::string::npos);
  EXPECT_NE(config_error("name = 'rbm'\nhidden = 'many'\n").find("hidden"), std::string::npos);
  EXPECT_NE(config_error("name = 'rbm'\nvisible = 'one_hot'\n").find("visible"), std::string::npos);
  EXPECT_NE(config_error("name = 'rbm'\nranking = 'argmax'\n").find("ranking"), std::string::npos);
  EXPECT_NE(config_error("name = 'rbm'\nmax_rating = 1\n").find("max_rating"), std::string::npos);
  EXPECT_NE(config_error("name = 'rbm'\nkeep_prob = 0.0\n").find("keep_prob"), std::string::npos);
  EXPECT_NE(config_error("name = 'rbm'\ncd_steps = 0\n").find("cd_steps"), std::string::npos);
  EXPECT_NE(config_error("name = 'rbm'\ncd_step_epochs = [5, 3]\n").find("cd_step_epochs"), std::string::npos);
  EXPECT_NE(config_error("name = 'rbm'\ninit_std = -1.0\n").find("init_std"), std::string::npos);
  EXPECT_EQ(config_error("name = 'rbm'\nvisible = 'rating_value'\ncd_step_epochs = [2, 4]\nkeep_prob = 0.9\n"),
            "(no error)");
}

TEST(RbmData, DataWithoutRatingsOrOffTheScaleIsAnErrorNamingTheProblem) {
  auto model = make("name = 'rbm'\n", 1, 3);
  data::Split implicit;
  const int32_t a[] = {0, 2};
  implicit.train.push_user(a, 2);
  const std::string none = error_of([&] { model->fit(implicit); });
  EXPECT_NE(none.find("training data has none"), std::string::npos) << none;
  for (float bad : {4.5f, 6.0f, 0.0f}) {
    data::Split split;
    const float ratings[] = {3.0f, bad};
    split.train.push_user(a, 2, ratings);
    const std::string message = error_of([&] { model->fit(split); });
    EXPECT_NE(message.find("min_rating"), std::string::npos) << message;
    EXPECT_NE(message.find(fmt::format("rating {}", bad)), std::string::npos) << message;
  }
  // Scoring from histories without ratings needs the training ratings of fit().
  const int32_t user = 0;
  float scores[3];
  const std::string scoring = error_of([&] { model->score_block(implicit.train, &user, 1, scores); });
  EXPECT_NE(scoring.find("no ratings"), std::string::npos) << scoring;
}

TEST(RbmScoring, HistoriesWithoutRatingsTakeTheTrainingRatings) {
  // Histories may carry items only (a log without a rating column served a fresh history, say). Their events take
  // the training ratings; an event never rated in training (item 1 here) is not a visible unit.
  auto model = make("name = 'rbm'\nhidden = 3\ninit_std = 0.5\n", 2, 4);
  data::Split split;
  const int32_t a[] = {0, 2}, b[] = {3};
  const float ra[] = {5, 1}, rb[] = {4};
  split.train.push_user(a, 2, ra);
  split.train.push_user(b, 1, rb);
  model->fit(split);
  data::Sequences implicit;
  const int32_t ia[] = {0, 2, 1}, ib[] = {3};
  implicit.push_user(ia, 3);
  implicit.push_user(ib, 1);
  ASSERT_FALSE(implicit.has_ratings());
  const int32_t users[] = {0, 1};
  float from_ratings[8], from_items[8];
  model->score_block(split.train, users, 2, from_ratings);
  model->score_block(implicit, users, 2, from_items);
  for (int k = 0; k < 8; ++k) EXPECT_EQ(from_ratings[k], from_items[k]) << k;
  // A different rating of item 0 changes the scores: the ratings do reach the hidden units.
  data::Sequences other;
  const float other_ratings[] = {1, 1};
  other.push_user(a, 2, other_ratings);
  other.push_user(b, 1, rb);
  float from_other[8];
  model->score_block(other, users, 2, from_other);
  EXPECT_NE(from_other[1], from_ratings[1]);
}

}  // namespace
}  // namespace embrec::models
