// The two-tower model: augmentation masks (complementary and correlated views disjoint and covering), the uniform
// self-supervised sampler, cosine serving without the log-Q term, and a cold item placed by its features alone.
#include "embrec/models/two_tower.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "embrec/data/sampler.h"
#include "model_fixtures.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

TEST(TwoTowerAugmentation, ComplementaryViewsAreDisjointAndCoverEveryField) {
  const int64_t count = 200, fields = 5;
  const ViewMasks masks = augmentation_masks(Augmentation::Complementary, count, fields, 0.5, {}, 9);
  int64_t masked_first = 0;
  for (int64_t k = 0; k < count * fields; ++k) {
    EXPECT_EQ(masks.first[k] + masks.second[k], 1) << "entity " << k / fields << " field " << k % fields;
    masked_first += masks.first[k];
  }
  // Half of 5 fields is 2 or 3 in the first view: 2.5 on average.
  EXPECT_NEAR(static_cast<double>(masked_first) / count, 2.5, 0.25);
}

TEST(TwoTowerAugmentation, CorrelatedViewsMaskASeedWithItsGroupAndTheRestInTheOtherView) {
  // Fields 0 and 1 correlated; 2 and 3 correlated.
  const std::vector<std::vector<int64_t>> groups = {{0, 1}, {1, 0}, {2, 3}, {3, 2}};
  const ViewMasks masks = augmentation_masks(Augmentation::Correlated, 100, 4, 0.5, groups, 3);
  std::map<std::vector<uint8_t>, int> seen;
  for (int64_t n = 0; n < 100; ++n) {
    const std::vector<uint8_t> first(masks.first.begin() + n * 4, masks.first.begin() + n * 4 + 4);
    const std::vector<uint8_t> second(masks.second.begin() + n * 4, masks.second.begin() + n * 4 + 4);
    EXPECT_TRUE(first == std::vector<uint8_t>({1, 1, 0, 0}) || first == std::vector<uint8_t>({0, 0, 1, 1}));
    for (int f = 0; f < 4; ++f) EXPECT_EQ(first[f] + second[f], 1);
    ++seen[first];
  }
  EXPECT_EQ(seen.size(), 2u);  // both groups are drawn as seeds
  // Independent masking: each field masked at the ratio, the views drawn apart.
  const ViewMasks plain = augmentation_masks(Augmentation::Mask, 4000, 3, 0.3, {}, 5);
  double first = 0, both = 0;
  for (size_t k = 0; k < plain.first.size(); ++k) {
    first += plain.first[k];
    both += plain.first[k] * plain.second[k];
  }
  EXPECT_NEAR(first / 12000, 0.3, 0.02);
  EXPECT_NEAR(both / 12000, 0.09, 0.015);
}

TEST(TwoTowerAugmentation, TheSelfSupervisedBatchIsUniformOverItems) {
  const std::vector<int64_t> draws = uniform_items(200000, 10, 11);
  std::vector<int64_t> counts(10, 0);
  for (int64_t item : draws) ++counts[item];
  for (int64_t item = 0; item < 10; ++item) EXPECT_NEAR(counts[item] / 200000.0, 0.1, 0.004) << item;
}

// 40 items of 4 colours (colour = item % 4; `shade` repeats the colour, a perfectly correlated field; `noise` is
// random); 120 users, each of one colour, with 8 items of it. Items 0..3 (one per colour) have no interactions.
// With user_features: each user has the single-valued field "likes" = its colour.
struct ColourData {
  data::Dataset dataset;
  data::Split split;
  explicit ColourData(bool user_features = false) {
    std::mt19937_64 random(5);
    for (int i = 0; i < 40; ++i) dataset.items.get_or_add("i" + std::to_string(i));
    dataset.item_features.fields = {"colour", "shade", "noise"};
    dataset.item_features.multi_valued = {0, 0, 0};
    for (int i = 0; i < 40; ++i) {
      for (const std::string& value : {std::to_string(i % 4), "s" + std::to_string(i % 4), std::to_string(random() % 5)}) {
        dataset.item_features.values.push_back(value);
        dataset.item_features.offsets.push_back(static_cast<int64_t>(dataset.item_features.values.size()));
      }
    }
    for (int u = 0; u < 120; ++u) {
      dataset.users.get_or_add("u" + std::to_string(u));
      std::vector<int32_t> items;
      while (items.size() < 8) {
        const int32_t item = static_cast<int32_t>(4 + 4 * (random() % 9) + u % 4);
        if (std::find(items.begin(), items.end(), item) == items.end()) items.push_back(item);
      }
      dataset.interactions.push_user(items.data(), static_cast<int64_t>(items.size()));
    }
    if (user_features) {
      dataset.user_features.fields = {"likes"};
      dataset.user_features.multi_valued = {0};
      for (int u = 0; u < 120; ++u) {
        dataset.user_features.values.push_back(std::to_string(u % 4));
        dataset.user_features.offsets.push_back(static_cast<int64_t>(dataset.user_features.values.size()));
      }
    }
    split.method = "none";
    split.train = dataset.interactions;
    for (int u = 0; u < 120; ++u) {
      split.valid.push_user(nullptr, 0);
      split.test.push_user(nullptr, 0);
    }
  }
};

std::unique_ptr<TwoTower> colour_model(const ColourData& data, const std::string& extra) {
  ConfigTable table = ConfigTable::parse_string(
      "name = 'two_tower'\ndim = 16\nembedding_dim = 8\nhidden = [16]\ntemperature = 0.1\n" + extra, "test.toml");
  ModelContext context;
  context.user_count = data.dataset.user_count();
  context.item_count = data.dataset.item_count();
  context.dataset = &data.dataset;
  context.split = &data.split;
  torch::manual_seed(2);
  std::unique_ptr<Model> model = create_model(table, context);
  table.finish();
  model->fit(data.split);
  return std::unique_ptr<TwoTower>(dynamic_cast<TwoTower*>(model.release()));
}

void train_epochs(TwoTower& model, const ColourData& data, int epochs) {
  data::SamplerOptions defaults;
  defaults.batch_size = 16;
  const data::SamplerOptions options = model.sampler_options(defaults);
  data::SequenceSampler sampler(data.split.train, data.dataset.item_count(), options);
  torch::optim::Adam optimizer(model.module().parameters(), torch::optim::AdamOptions(0.01));
  data::SequenceBatch batch;
  model.module().train();
  for (int epoch = 0; epoch < epochs; ++epoch) {
    const auto plan = sampler.epoch_plan(epoch);
    for (size_t b = 0; b < plan.size(); ++b) {
      sampler.fill(plan[b], epoch, static_cast<int64_t>(b), batch);
      const LossParts loss = model.loss(testing::batch_tensors(batch, epoch, static_cast<int64_t>(b)));
      optimizer.zero_grad();
      loss.total.backward();
      optimizer.step();
    }
  }
  model.module().eval();
}

// Each cold item's 5 nearest trained items (cosine) share its colour.
void expect_cold_items_among_their_colour(const torch::Tensor& items) {
  for (int64_t cold = 0; cold < 4; ++cold) {
    torch::Tensor similarity = items.mm(items[cold].unsqueeze(1)).squeeze(1);
    similarity.slice(0, 0, 4).fill_(-2);  // among the trained items
    const torch::Tensor nearest = std::get<1>(similarity.topk(5));
    for (int64_t k = 0; k < 5; ++k)
      EXPECT_EQ(nearest[k].item<int64_t>() % 4, cold) << "cold item " << cold << ", neighbour " << k;
  }
}

TEST(TwoTower, ServesCosineOverTemperatureWithoutTheLogQTerm) {
  const ColourData data;
  auto model = colour_model(data, "logq = 'counts'");
  model->module().eval();
  const torch::Tensor items = model->item_vectors();
  std::vector<int32_t> users = {0, 1, 2};
  const torch::Tensor vectors = model->user_vectors(data.split.train, users.data(), 3);
  EXPECT_TRUE(torch::allclose(items.norm(2, 1), torch::ones({40}), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(vectors.norm(2, 1), torch::full({3}, 10.0), 1e-4, 1e-4));  // 1 / temperature
}

TEST(TwoTower, AFeaturesOnlyItemTowerPlacesAColdItemAmongItsColour) {
  const ColourData data;
  auto model = colour_model(data, "item_id = false\nssl_weight = 0.5\naugmentation = 'correlated'\nssl_batch = 32");
  train_epochs(*model, data, 40);
  const torch::Tensor items = model->item_vectors();
  expect_cold_items_among_their_colour(items);
  // And the users of each colour rank its cold item above the other colours' cold items.
  std::vector<int32_t> users = {0, 1, 2, 3};
  const torch::Tensor scores = model->user_vectors(data.split.train, users.data(), 4).mm(items.slice(0, 0, 4).t());
  for (int64_t u = 0; u < 4; ++u) EXPECT_EQ(scores[u].argmax().item<int64_t>(), u) << "user " << u;
}

TEST(TwoTower, WithIdDropoutAnItemTowerWithIdsAlsoPlacesColdItemsByTheirFeatures) {
  const ColourData data;
  auto model = colour_model(data, "id_dropout = 0.5");
  train_epochs(*model, data, 40);
  expect_cold_items_among_their_colour(model->item_vectors());
}

// An export's encoder: the model rebuilt from its config, encoder_state() and weights alone (no data), serving a
// fresh user from features and a history.
std::unique_ptr<Model> rebuilt_without_data(Model& trained, const ColourData& data, const std::string& extra) {
  ConfigTable table = ConfigTable::parse_string(
      "name = 'two_tower'\ndim = 16\nembedding_dim = 8\nhidden = [16]\ntemperature = 0.1\n" + extra, "test.toml");
  ModelContext context;
  context.user_count = data.dataset.user_count();
  context.item_count = data.dataset.item_count();
  context.encoder_state = trained.encoder_state();
  std::unique_ptr<Model> model = create_model(table, context);
  table.finish();
  torch::NoGradGuard no_grad;
  auto source = trained.module().named_parameters(true);
  for (auto& parameter : model->module().named_parameters(true)) parameter.value().copy_(source[parameter.key()]);
  auto buffers = trained.module().named_buffers(true);
  for (auto& buffer : model->module().named_buffers(true)) buffer.value().copy_(buffers[buffer.key()]);
  model->module().eval();
  return model;
}

TEST(TwoTower, AFreshUserIsServedFromFeaturesAndHistoryByTheRebuiltEncoder) {
  const ColourData data(/*user_features=*/true);
  // User tower = id + "likes"; with half the ids masked in training, the unknown id with a liked colour is a user.
  const std::string by_features = "user_id_dropout = 0.5\n";
  auto model = colour_model(data, by_features);
  EXPECT_TRUE(model->encodes_histories());
  EXPECT_TRUE(model->takes_user_features());
  train_epochs(*model, data, 40);
  auto served = rebuilt_without_data(*model, data, by_features);
  ASSERT_TRUE(served->takes_user_features());
  const torch::Tensor items = model->item_vectors();
  for (int colour = 0; colour < 4; ++colour) {
    // Features alone: the top 5 trained items are of the liked colour.
    const torch::Tensor vector = served->fresh_user_vector({}, {{"likes", {std::to_string(colour)}}});
    ASSERT_EQ(vector.sizes(), (std::vector<int64_t>{1, 16}));
    torch::Tensor scores = vector.mm(items.t()).squeeze(0);
    scores.slice(0, 0, 4).fill_(-1e9);
    const torch::Tensor top = std::get<1>(scores.topk(5));
    for (int64_t k = 0; k < 5; ++k) EXPECT_EQ(top[k].item<int64_t>() % 4, colour) << "liked colour " << colour;
  }
  // With a pooled history too, the rebuilt model gives what the trained one gives.
  const std::string with_history = "history = 'mean'\nuser_id_dropout = 0.5\n";
  auto pooled = colour_model(data, with_history);
  train_epochs(*pooled, data, 2);
  auto pooled_served = rebuilt_without_data(*pooled, data, with_history);
  for (const std::vector<int32_t>& history : {std::vector<int32_t>{5, 9}, {}})
    EXPECT_TRUE(torch::allclose(pooled_served->fresh_user_vector(history, {{"likes", {"1"}}}),
                                pooled->fresh_user_vector(history, {{"likes", {"1"}}}), 1e-5, 1e-6));
  // Bad input is an InputError naming the feature (a service answers 400).
  try {
    served->fresh_user_vector({4}, {{"age", {"25"}}});
    ADD_FAILURE() << "no error";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("'age'"), std::string::npos) << error.what();
  }
  EXPECT_THROW(served->fresh_user_vector({4}, {{"likes", {"1", "2"}}}), InputError);
  // A model trained without user features refuses them, and so does one that encodes no history by default.
  const ColourData plain;
  auto no_features = colour_model(plain, "history = 'mean'");
  EXPECT_FALSE(no_features->takes_user_features());
  EXPECT_THROW(no_features->fresh_user_vector({4}, {{"likes", {"1"}}}), InputError);
  EXPECT_FALSE(colour_model(plain, "")->encodes_histories());
}

TEST(TwoTower, ConfigErrorsNameTheKey) {
  const ColourData data;
  EXPECT_THROW(colour_model(data, "item_id = false\nitem_features = false"), Error);
  const std::string mask_ratio = error_of([&] { colour_model(data, "mask_ratio = 0.3"); });
  EXPECT_NE(mask_ratio.find("mask_ratio"), std::string::npos) << mask_ratio;
  const std::string dropout =
      error_of([&] { colour_model(data, "user_id = false\nuser_id_dropout = 0.3\nhistory = 'mean'"); });
  EXPECT_NE(dropout.find("user_id_dropout"), std::string::npos) << dropout;
  ModelContext bare;
  bare.user_count = 3;
  bare.item_count = 4;
  ConfigTable table = ConfigTable::parse_string("name = 'two_tower'", "test.toml");
  EXPECT_THROW(create_model(table, bare), Error);
}

}  // namespace
}  // namespace embrec::models
