// NCF: a hand-worked GMF score and BCE, gradients against finite differences, negative sampling, a planted
// two-group problem, score blocks against the pair forward, NeuMF pre-training, checkpoints and config errors.
#include "embrec/models/ncf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "embrec/train/checkpoint.h"
#include "embrec/util/error.h"
#include "model_fixtures.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

namespace fs = std::filesystem;

std::unique_ptr<Ncf> make(const std::string& toml_text, int32_t users, int32_t items, uint64_t seed = 1) {
  return testing::make_model<Ncf>(toml_text, users, items, seed, seed);
}

std::string config_error(const std::string& toml_text) { return testing::creation_error<Ncf>(toml_text); }

data::Split split_of(const std::vector<std::vector<int32_t>>& lists) {
  data::Split split;
  for (const auto& items : lists) split.train.push_user(items.data(), static_cast<int64_t>(items.size()));
  return split;
}

void train(Ncf& model, const data::Sequences& train, int32_t item_count, int64_t epochs, double learning_rate,
           int32_t batch_size) {
  data::SamplerOptions defaults;
  defaults.batch_size = batch_size;
  const data::SamplerOptions options = model.sampler_options(defaults);
  data::SequenceSampler sampler(train, item_count, options);
  torch::optim::Adam optimizer(model.module().parameters(), torch::optim::AdamOptions(learning_rate));
  data::SequenceBatch batch;
  model.module().train();
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    model.begin_epoch(epoch);
    const auto plan = sampler.epoch_plan(epoch);
    for (size_t b = 0; b < plan.size(); ++b) {
      sampler.fill(plan[b], epoch, static_cast<int64_t>(b), batch);
      LossParts loss = model.loss(testing::batch_tensors(batch, epoch, static_cast<int64_t>(b)));
      optimizer.zero_grad();
      loss.total.backward();
      optimizer.step();
    }
  }
  model.module().eval();
}

// Logits of every (user, item) pair through the module's forward: [count, items].
torch::Tensor pair_logits(Ncf& model, const std::vector<int32_t>& users, int32_t items) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> user_ids, item_ids;
  for (int32_t u : users)
    for (int32_t i = 0; i < items; ++i) {
      user_ids.push_back(u);
      item_ids.push_back(i);
    }
  return model.ncf_module()
      ->forward(torch::tensor(user_ids, torch::kLong), torch::tensor(item_ids, torch::kLong))
      .view({static_cast<int64_t>(users.size()), items});
}

torch::Tensor score_block(Ncf& model, const std::vector<int32_t>& users, int32_t items) {
  torch::Tensor out = torch::full({static_cast<int64_t>(users.size()), items}, 99.0f);
  data::Sequences none;
  model.score_block(none, users.data(), static_cast<int32_t>(users.size()), out.data_ptr<float>());
  return out;
}

TEST(NcfGmf, ScoreAndBceAreHandWorked) {
  // p_0 = (1, 2), h = (1, 0.5). Item 1 (user 0's training item): q_1 = (0.5, -1), x⁺ = 1·0.5·1 + 0.5·2·(-1) = -0.5.
  // Items 0 and 2 (the only possible negatives): q = (0, 1), x⁻ = 0.5·2·1 = 1 whichever is drawn. Two negatives:
  // BCE = -(log σ(-0.5) + 2 log σ(-1)) / 3 = (0.974077 + 2 · 1.313262) / 3 = 1.2002001.
  auto model = make("name = 'ncf'\nvariant = 'gmf'\nfactors = 2\nnegatives = 2\n", 1, 3);
  model->fit(split_of({{1}}));
  NcfModuleImpl& m = *model->ncf_module();
  {
    torch::NoGradGuard no_grad;
    m.gmf_user[0] = torch::tensor({1.0f, 2.0f});
    m.gmf_item.copy_(torch::tensor({{0.0f, 1.0f}, {0.5f, -1.0f}, {0.0f, 1.0f}}));
    m.output.copy_(torch::tensor({1.0f, 0.5f}));
  }
  TensorBatch batch;
  batch.users = torch::tensor({0}, torch::kLong);
  batch.target = torch::tensor({{2}}, torch::kLong);  // item 1, shifted by one
  batch.input = batch.target;
  LossParts loss = model->loss(batch);
  EXPECT_NEAR(loss.total.item<double>(), 1.2002001197, 1e-6);
  ASSERT_EQ(loss.parts.size(), 1u);
  EXPECT_EQ(loss.parts[0].first, "bce");
  // Scores are logits: 1, -0.5, 1 for items 0, 1, 2, the same through the embedding fast path.
  const torch::Tensor expected = torch::tensor({{1.0f, -0.5f, 1.0f}});
  EXPECT_TRUE(torch::allclose(score_block(*model, {0}, 3), expected, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(pair_logits(*model, {0}, 3), expected, 1e-6, 1e-6));
  EXPECT_EQ(model->dim(), 2);
  const int32_t user = 0;
  data::Sequences none;
  const torch::Tensor vectors = torch::mm(model->user_vectors(none, &user, 1), model->item_vectors().t());
  EXPECT_TRUE(torch::allclose(vectors, expected, 1e-6, 1e-6));
}

TEST(NcfLoss, GradientsMatchFiniteDifferencesForEveryVariant) {
  const data::Split split = split_of({{0, 2, 3}, {1}, {4, 5, 0}});
  TensorBatch batch;
  batch.users = torch::tensor({0, 2}, torch::kLong);
  batch.target = torch::tensor({{1, 3, 4}, {5, 6, 1}}, torch::kLong);
  batch.input = batch.target;
  batch.epoch = 3;
  batch.batch_index = 1;
  for (const char* variant : {"gmf", "mlp", "neumf"}) {
    const std::string sizes = std::string(variant) == "gmf"   ? "factors = 3\n"
                              : std::string(variant) == "mlp" ? "layers = [4, 3, 2]\n"
                                                              : "factors = 2\nlayers = [4, 3, 2]\n";
    auto model = make(fmt::format("name = 'ncf'\nvariant = '{}'\n{}negatives = 3\ninit_std = 0.5\n", variant, sizes),
                      3, 7);
    model->fit(split);
    model->module().to(torch::kFloat64);
    {
      // Zero biases put a ReLU exactly at its kink whenever a whole layer below is off, where a central difference
      // sees slope 1/2: random biases keep every pre-activation away from 0.
      torch::NoGradGuard no_grad;
      for (auto& parameter : model->module().parameters()) parameter.add_(torch::randn_like(parameter) * 0.1);
    }
    EXPECT_LT(testing::parameter_gradient_error(*model, batch), 1e-7) << variant;
  }
}

TEST(NcfNegatives, AvoidTrainingItemsAreReproducibleAndChangeWithEpochAndBatch) {
  // User 0 has items 0..7 of 10, so its negatives can only be 8 or 9; user 1 has item 3 only.
  auto model = make("name = 'ncf'\nvariant = 'gmf'\nfactors = 2\nnegatives = 4\n", 2, 10, /*seed=*/7);
  model->fit(split_of({{7, 0, 1, 2, 3, 4, 5, 6, 2}, {3}}));
  std::vector<int64_t> users(500, 0);
  users.insert(users.end(), 500, 1);
  const torch::Tensor ids = torch::tensor(users, torch::kLong);
  const torch::Tensor drawn = model->sample_negatives(ids, /*epoch=*/2, /*batch_index=*/5);
  ASSERT_EQ(drawn.sizes().vec(), (std::vector<int64_t>{1000, 4}));
  std::set<int64_t> first_user, second_user;
  auto values = drawn.accessor<int64_t, 2>();
  for (int64_t k = 0; k < 1000; ++k)
    for (int64_t j = 0; j < 4; ++j) (k < 500 ? first_user : second_user).insert(values[k][j]);
  EXPECT_EQ(first_user, (std::set<int64_t>{8, 9}));
  EXPECT_EQ(second_user, (std::set<int64_t>{0, 1, 2, 4, 5, 6, 7, 8, 9}));
  EXPECT_TRUE(torch::equal(drawn, model->sample_negatives(ids, 2, 5)));
  EXPECT_FALSE(torch::equal(drawn, model->sample_negatives(ids, 3, 5)));
  EXPECT_FALSE(torch::equal(drawn, model->sample_negatives(ids, 2, 6)));
  // The loss draws the same negatives for the same (epoch, batch): equal losses, and different ones otherwise.
  TensorBatch batch;
  batch.users = torch::tensor({0, 1}, torch::kLong);
  batch.target = torch::tensor({{1, 5}, {0, 4}}, torch::kLong);
  batch.input = batch.target;
  batch.epoch = 4;
  const double once = model->loss(batch).total.item<double>();
  EXPECT_EQ(once, model->loss(batch).total.item<double>());
  batch.epoch = 5;
  EXPECT_NE(once, model->loss(batch).total.item<double>());
  // A user who has every item leaves nothing to draw: an error, not an endless loop.
  auto full = make("name = 'ncf'\nvariant = 'gmf'\nfactors = 2\n", 1, 3);
  full->fit(split_of({{0, 1, 2}}));
  EXPECT_THROW(full->sample_negatives(torch::tensor({0}, torch::kLong), 0, 0), Error);
}

TEST(NcfTraining, LearnsTwoGroupsLikingDisjointItemBlocks) {
  // Users 0..19 like items 0..19, users 20..39 items 20..39; each user trains on 16 random items of its block and
  // holds out the other 4. Held-out items of a user's block must outrank (almost) every item of the other block:
  // a chance ranking orders half of these pairs, an item-only (popularity) one about as many. With the narrowest
  // towers ([8, 4], [16, 8]) the MLP alone collapsed to item-only scores for some seeds (dead ReLUs at lr 0.03, an
  // ordered share of 0.36); [32, 16, 8] at lr 0.01 learned the groups for all 5 seeds tried (>= 0.99).
  const int32_t users = 40, items = 40;
  std::vector<std::vector<int32_t>> lists(users);
  std::vector<std::vector<int32_t>> held_out(users);
  std::mt19937 random(5);
  for (int32_t u = 0; u < users; ++u) {
    std::vector<int32_t> block(20);
    for (int32_t j = 0; j < 20; ++j) block[j] = (u < 20 ? 0 : 20) + j;
    std::shuffle(block.begin(), block.end(), random);
    lists[u].assign(block.begin(), block.begin() + 16);
    held_out[u].assign(block.begin() + 16, block.end());
  }
  const data::Split split = split_of(lists);
  for (const char* variant : {"gmf", "mlp", "neumf"}) {
    const std::string sizes = std::string(variant) == "gmf"   ? "factors = 4\n"
                              : std::string(variant) == "mlp" ? "layers = [32, 16, 8]\n"
                                                              : "factors = 4\nlayers = [32, 16, 8]\n";
    auto model = make(fmt::format("name = 'ncf'\nvariant = '{}'\n{}", variant, sizes), users, items, /*seed=*/3);
    model->fit(split);
    train(*model, split.train, items, /*epochs=*/25, /*learning_rate=*/0.01, /*batch_size=*/4);
    std::vector<int32_t> all(users);
    for (int32_t u = 0; u < users; ++u) all[u] = u;
    const torch::Tensor scores = score_block(*model, all, items);
    auto s = scores.accessor<float, 2>();
    int64_t ordered = 0, pairs = 0;
    for (int32_t u = 0; u < users; ++u) {
      const int32_t other = u < 20 ? 20 : 0;
      for (int32_t liked : held_out[u])
        for (int32_t j = other; j < other + 20; ++j) {
          ordered += s[u][liked] > s[u][j];
          ++pairs;
        }
    }
    EXPECT_GT(static_cast<double>(ordered) / pairs, 0.95) << variant;
  }
}

TEST(NcfScoring, ScoreBlocksEqualThePairForwardAcrossChunks) {
  // 3,000 items: a chunk holds 5 users' pairs, so 12 users make two full chunks and a partial one.
  const int32_t users = 13, items = 3000;
  std::vector<int32_t> block = {12, 0, 5, 7, 1, 2, 3, 4, 6, 8, 9, 10};
  for (const char* variant : {"gmf", "mlp", "neumf"}) {
    const std::string sizes = std::string(variant) == "gmf"   ? "factors = 3\n"
                              : std::string(variant) == "mlp" ? "layers = [6, 5, 3]\n"
                                                              : "factors = 3\nlayers = [6, 5, 3]\n";
    auto model = make(fmt::format("name = 'ncf'\nvariant = '{}'\n{}init_std = 0.5\n", variant, sizes), users, items);
    {
      torch::NoGradGuard no_grad;  // non-zero biases, so the split first layer must carry them
      for (auto& parameter : model->module().parameters()) parameter.add_(torch::randn_like(parameter) * 0.1);
    }
    const torch::Tensor expected = pair_logits(*model, block, items);
    EXPECT_TRUE(torch::allclose(score_block(*model, block, items), expected, 1e-5, 1e-5)) << variant;
    // A second call reuses the workspaces.
    const std::vector<int32_t> two = {3, 9};
    EXPECT_TRUE(torch::allclose(score_block(*model, two, items), pair_logits(*model, two, items), 1e-5, 1e-5))
        << variant;
  }
}

// A run folder as the trainer leaves it: config.toml with a [model] table and best.pt.
void write_run(Ncf& model, const std::string& folder, const std::string& model_toml) {
  fs::create_directories(folder);
  std::ofstream(folder + "/config.toml") << "[data]\ndemo = 'default'\n\n[model]\n" << model_toml;
  train::save_module(model.module(), folder + "/best.pt");
}

TEST(NcfPretraining, NeumfStartsFromGmfAndMlpRunsAndRejectsMismatches) {
  const fs::path root = fs::temp_directory_path() / ("embrec-ncf-" + std::to_string(::getpid()));
  const std::string gmf_toml = "name = 'ncf'\nvariant = 'gmf'\nfactors = 3\n";
  const std::string mlp_toml = "name = 'ncf'\nvariant = 'mlp'\nlayers = [6, 4, 2]\n";
  auto gmf = make(gmf_toml, 4, 9, /*seed=*/11);
  auto mlp = make(mlp_toml, 4, 9, /*seed=*/12);
  write_run(*gmf, (root / "gmf").string(), gmf_toml);
  write_run(*mlp, (root / "mlp").string(), mlp_toml);
  auto neumf_config = [&](const std::string& gmf_folder, const std::string& mlp_folder, const std::string& sizes) {
    return fmt::format("name = 'ncf'\nvariant = 'neumf'\n{}pretrain_gmf = '{}'\npretrain_mlp = '{}'\n"
                       "pretrain_alpha = 0.25\n",
                       sizes, (root / gmf_folder).string(), (root / mlp_folder).string());
  };
  const std::string sizes = "factors = 3\nlayers = [6, 4, 2]\n";
  auto neumf = make(neumf_config("gmf", "mlp", sizes), 4, 9, /*seed=*/13);
  neumf->begin_epoch(0);
  NcfModuleImpl& m = *neumf->ncf_module();
  EXPECT_TRUE(torch::equal(m.gmf_user, gmf->ncf_module()->gmf_user));
  EXPECT_TRUE(torch::equal(m.gmf_item, gmf->ncf_module()->gmf_item));
  EXPECT_TRUE(torch::equal(m.mlp_user, mlp->ncf_module()->mlp_user));
  EXPECT_TRUE(torch::equal(m.mlp_item, mlp->ncf_module()->mlp_item));
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_TRUE(torch::equal(m.tower[k]->weight, mlp->ncf_module()->tower[k]->weight)) << k;
    EXPECT_TRUE(torch::equal(m.tower[k]->bias, mlp->ncf_module()->tower[k]->bias)) << k;
  }
  EXPECT_TRUE(torch::equal(m.output, torch::cat({gmf->ncf_module()->output * 0.25, mlp->ncf_module()->output * 0.75})));
  // So NeuMF's logit starts as α x_gmf + (1 - α) x_mlp.
  const std::vector<int32_t> users = {0, 3};
  EXPECT_TRUE(torch::allclose(pair_logits(*neumf, users, 9),
                              0.25 * pair_logits(*gmf, users, 9) + 0.75 * pair_logits(*mlp, users, 9), 1e-5, 1e-6));

  auto pretrain_error = [&](const std::string& toml_text, int32_t user_count) -> std::string {
    return error_of([&] { make(toml_text, user_count, 9)->load_pretrained(); });
  };
  // A missing folder, a run of the wrong variant, other sizes, other data, a folder without best.pt.
  EXPECT_NE(pretrain_error(neumf_config("nothing", "mlp", sizes), 4).find("pretrain_gmf"), std::string::npos);
  EXPECT_NE(pretrain_error(neumf_config("nothing", "mlp", sizes), 4).find("nothing"), std::string::npos);
  EXPECT_NE(pretrain_error(neumf_config("mlp", "mlp", sizes), 4).find("variant = \"gmf\""), std::string::npos);
  EXPECT_NE(pretrain_error(neumf_config("gmf", "mlp", "factors = 4\nlayers = [6, 4, 2]\n"), 4).find("factors = 3"),
            std::string::npos);
  EXPECT_NE(pretrain_error(neumf_config("gmf", "mlp", "factors = 3\nlayers = [6, 4]\n"), 4).find("layers"),
            std::string::npos);
  EXPECT_NE(pretrain_error(neumf_config("gmf", "mlp", sizes), 5).find("other data"), std::string::npos);
  fs::create_directories(root / "empty");
  std::ofstream((root / "empty" / "config.toml").string()) << "[model]\n" << gmf_toml;
  EXPECT_NE(pretrain_error(neumf_config("empty", "mlp", sizes), 4).find("best.pt"), std::string::npos);
  fs::remove_all(root);
}

TEST(NcfCheckpoint, RoundTripGivesIdenticalScores) {
  const std::string config = "name = 'ncf'\nvariant = 'neumf'\nfactors = 4\nlayers = [8, 4, 2]\n";
  auto saved = make(config, 3, 6, /*seed=*/1);
  const std::string path =
      (fs::temp_directory_path() / ("embrec-ncf-" + std::to_string(::getpid()) + ".pt")).string();
  {
    torch::serialize::OutputArchive archive;
    saved->module().save(archive);
    archive.save_to(path);
  }
  auto loaded = make(config, 3, 6, /*seed=*/2);
  const std::vector<int32_t> users = {0, 1, 2};
  EXPECT_FALSE(torch::equal(score_block(*saved, users, 6), score_block(*loaded, users, 6)));
  {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    loaded->module().load(archive);
  }
  fs::remove(path);
  EXPECT_TRUE(torch::equal(score_block(*saved, users, 6), score_block(*loaded, users, 6)));
}

TEST(NcfConfig, InvalidKeysAreErrorsNamingTheKey) {
  EXPECT_NE(config_error("name = 'ncf'\nfactor = 8\n").find("factor"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nvariant = 'ncf'\n").find("variant"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nvariant = 'gmf'\nlayers = [8, 4]\n").find("layers"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nvariant = 'mlp'\nfactors = 8\n").find("factors"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nlayers = [7, 4]\n").find("layers"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nlayers = [8]\n").find("layers"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nlayers = [8, 0]\n").find("layers"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nfactors = 0\n").find("factors"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nnegatives = 0\n").find("negatives"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\ninit_std = -1.0\n").find("init_std"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nnegatives = 'four'\n").find("negatives"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\npretrain_gmf = 'a'\n").find("pretrain_mlp"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\nvariant = 'gmf'\npretrain_gmf = 'a'\npretrain_mlp = 'b'\n").find("pretrain_gmf"),
            std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\npretrain_alpha = 0.5\n").find("pretrain_alpha"), std::string::npos);
  EXPECT_NE(config_error("name = 'ncf'\npretrain_gmf = 'a'\npretrain_mlp = 'b'\npretrain_alpha = 1.5\n")
                .find("pretrain_alpha"),
            std::string::npos);
  // Pre-training folders are read when training starts, not when the config is read.
  EXPECT_EQ(config_error("name = 'ncf'\npretrain_gmf = 'a'\npretrain_mlp = 'b'\n"), "(no error)");
  EXPECT_EQ(config_error("name = 'ncf'\nvariant = 'mlp'\nlayers = [16, 8, 4]\n"), "(no error)");
}

}  // namespace
}  // namespace embrec::models
