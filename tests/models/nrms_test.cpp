// NRMS: masking of padded words and history slots, empty histories, the loss and its gradient, learning on
// generated MIND data, fresh articles, and an encoder rebuilt from its export state.
#include "embrec/models/nrms.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model_fixtures.h"
#include "news_fixtures.h"

namespace embrec::models {
namespace {

using testing::make_news_model;
using testing::tiny_news;

const char* kTiny =
    "name = 'nrms'\nword_dim = 8\nheads = 2\nhead_dim = 4\nattention_hidden = 6\nhistory = 4\nnpratio = 2\n"
    "dropout = 0.0\n";

testing::TinyNews tiny() {
  return tiny_news({{"stocks fall on rate fears", "finance", "markets"},
                    {"team wins the final", "sports", "football"},
                    {"rates rise again", "finance", "economy"},
                    {"star player injured before the final", "sports", "football"},
                    {"new phone released", "tech", "gadgets"},
                    {"phone makers cut prices", "tech", "gadgets"}},
                   4, {0, 1, 2});
}

TEST(Nrms, ConfigErrorsNameTheKey) {
  EXPECT_NE(testing::creation_error<Nrms>("name = 'nrms'\ndropout = 1.0\n").find("key 'dropout'"), std::string::npos);
  EXPECT_NE(testing::creation_error<Nrms>("name = 'nrms'\nheads = 0\n").find("key 'heads'"), std::string::npos);
  EXPECT_NE(testing::creation_error<Nrms>("name = 'nrms'\nhistory = -1\n").find("key 'history'"), std::string::npos);
  EXPECT_NE(testing::creation_error<Nrms>("name = 'nrms'\ncategory_dim = 10\n").find("categories = true"),
            std::string::npos);
  // A valid config without news data: the model says what it needs.
  EXPECT_NE(testing::creation_error<Nrms>("name = 'nrms'\n").find("news data"), std::string::npos);
}

TEST(Nrms, SamplerOptionsAskForImpressionBatches) {
  auto data = tiny();
  auto model = make_news_model<Nrms>(std::string(kTiny), data.dataset, data.split);
  const data::SamplerOptions options = model->sampler_options({});
  EXPECT_TRUE(options.impressions);
  EXPECT_EQ(options.npratio, 2);
  EXPECT_EQ(options.max_length, 4);
  EXPECT_EQ(model->dim(), 8);
}

TEST(Nrms, LossIsTheCrossEntropyOfTheClickAmongItsCandidates) {
  auto data = tiny();
  auto model = make_news_model<Nrms>(std::string(kTiny), data.dataset, data.split);
  const TensorBatch batch = testing::tiny_impression_batch();
  auto parts = model->loss(batch);
  ASSERT_EQ(parts.parts.size(), 1u);
  EXPECT_EQ(parts.parts[0].first, "ce");
  // By hand: news vectors of the items, user vectors of the histories, softmax over the three candidates.
  torch::NoGradGuard no_grad;
  auto& network = *model->network();
  auto news = network.encode_news(model->items().gather(torch::arange(0, 7, torch::kLong)));  // row 0 padding
  double expected = 0;
  for (int64_t r = 0; r < 3; ++r) {
    auto history = news.index_select(0, batch.input[r]).unsqueeze(0);
    auto user = network.encode_user(history, batch.input[r].gt(0).unsqueeze(0))[0];
    auto scores = news.index_select(0, batch.candidates[r]).mv(user);
    expected += -torch::log_softmax(scores, 0)[0].item<double>();
  }
  EXPECT_NEAR(parts.total.item<double>(), expected / 3, 1e-5);
}

TEST(Nrms, PaddedHistorySlotsChangeNothing) {
  auto data = tiny();
  auto model = make_news_model<Nrms>(std::string(kTiny), data.dataset, data.split);
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto history = torch::randn({2, 5, 8});
  auto mask = torch::tensor({{false, false, true, true, true}, {false, true, true, true, true}});
  auto changed = history.clone();
  changed.select(1, 0).copy_(torch::randn({2, 8}) * 100);
  changed[0][1].fill_(-7);
  EXPECT_TRUE(torch::equal(model->network()->encode_user(history, mask), model->network()->encode_user(changed, mask)));
  // The same history with more padding in front gives the same vector (up to summation order).
  auto longer = torch::cat({torch::randn({2, 3, 8}), history}, 1);
  auto longer_mask = torch::cat({torch::zeros({2, 3}, torch::kBool), mask}, 1);
  EXPECT_TRUE(torch::allclose(model->network()->encode_user(history, mask),
                              model->network()->encode_user(longer, longer_mask), 1e-6, 1e-6));
}

TEST(Nrms, AllPaddingTitlesAndEmptyHistoriesAreFiniteZeros) {
  auto data = tiny();
  auto model = make_news_model<Nrms>(std::string(kTiny), data.dataset, data.split);
  model->module().eval();
  {
    torch::NoGradGuard no_grad;
    auto padding = model->network()->encode_news(model->items().gather(torch::zeros({2}, torch::kLong)));
    EXPECT_TRUE(torch::equal(padding, torch::zeros_like(padding)));
    auto user = model->network()->encode_user(torch::randn({1, 4, 8}), torch::zeros({1, 4}, torch::kBool));
    EXPECT_TRUE(torch::equal(user, torch::zeros_like(user)));
  }
  data::Sequences histories;
  const int32_t some[] = {0, 2};
  histories.push_user(some, 2);
  histories.push_user(nullptr, 0);
  const int32_t users[] = {0, 1};
  auto vectors = model->user_vectors(histories, users, 2);
  EXPECT_TRUE(torch::isfinite(vectors).all().item<bool>());
  EXPECT_TRUE(torch::equal(vectors[1], torch::zeros({8})));
  EXPECT_GT(vectors[0].abs().sum().item<float>(), 0.0f);
  // A batch row without history trains without NaN in any gradient.
  model->module().train();
  model->loss(testing::tiny_impression_batch()).total.backward();
  for (const auto& parameter : model->module().parameters())
    EXPECT_TRUE(torch::isfinite(parameter.grad()).all().item<bool>());
}

TEST(Nrms, UserVectorsEncodeTheLastHistoryItemsWithTheNewsEncoder) {
  auto data = tiny();
  auto model = make_news_model<Nrms>(std::string(kTiny), data.dataset, data.split);
  data::Sequences histories;
  const int32_t first[] = {5, 0, 1, 2, 3, 4};  // longer than history = 4: the last 4 count
  const int32_t second[] = {2};
  histories.push_user(first, 6);
  histories.push_user(second, 1);
  const int32_t users[] = {0, 1};
  auto vectors = model->user_vectors(histories, users, 2);
  ASSERT_EQ(vectors.sizes(), (std::vector<int64_t>{2, 8}));
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto& network = *model->network();
  auto news = network.encode_news(model->items().gather(torch::tensor({2, 3, 4, 5}, torch::kLong))).unsqueeze(0);
  auto expected = network.encode_user(news, torch::ones({1, 4}, torch::kBool));
  EXPECT_TRUE(torch::allclose(vectors[0], expected[0], 1e-5, 1e-6));
  auto single = network.encode_news(model->items().gather(torch::tensor({3}, torch::kLong))).unsqueeze(0);
  EXPECT_TRUE(
      torch::allclose(vectors[1], network.encode_user(single, torch::ones({1, 1}, torch::kBool))[0], 1e-5, 1e-6));
  auto items = model->item_vectors();
  EXPECT_EQ(items.sizes(), (std::vector<int64_t>{6, 8}));
}

TEST(Nrms, NewsEncodedInGroupsOfTitleLengthEqualOnePaddedPass) {
  // Titles of 1 to 6 words: the groups cut most of the padding, which the padded pass masks.
  auto data = tiny_news({{"alpha"},
                         {"beta"},
                         {"alpha beta"},
                         {"gamma delta"},
                         {"alpha beta gamma"},
                         {"one two three four five six"},
                         {"delta"},
                         {"beta gamma"}},
                        2);
  auto model = make_news_model<Nrms>(std::string(kTiny), data.dataset, data.split);
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto news = model->items().gather(torch::arange(0, 9, torch::kLong));
  auto grouped = model->network()->encode_news(news);
  auto padded = model->network()->encode_titles(news);
  EXPECT_TRUE(torch::allclose(grouped, padded, 1e-5, 1e-6));
}

TEST(Nrms, LossGradientMatchesFiniteDifferences) {
  for (const char* categories : {"false", "true"}) {
    auto data = tiny();
    std::string toml = std::string(kTiny) + "categories = " + categories + "\n";
    if (std::string(categories) == "true") toml += "category_dim = 3\n";
    auto model = make_news_model<Nrms>(toml, data.dataset, data.split);
    model->module().to(torch::kDouble);
    const double error = testing::parameter_gradient_error(*model, testing::tiny_impression_batch());
    EXPECT_LT(error, 1e-6) << "categories = " << categories;
  }
}

TEST(Nrms, FreshArticleGetsItsItemVectorAndUnknownTitlesAreRefused) {
  auto data = tiny();
  auto model =
      make_news_model<Nrms>(std::string(kTiny) + "categories = true\ncategory_dim = 3\n", data.dataset, data.split);
  auto items = model->item_vectors();
  data::NewsText article{"team wins the final", "sports", "football"};
  auto fresh = model->fresh_item_vector(article);
  ASSERT_EQ(fresh.sizes(), (std::vector<int64_t>{1, 8}));
  EXPECT_TRUE(torch::allclose(fresh[0], items[1], 1e-5, 1e-6));
  // Another category changes the vector (categories = true).
  auto other = model->fresh_item_vector({"team wins the final", "tech", "gadgets"});
  EXPECT_FALSE(torch::allclose(fresh, other, 1e-4, 1e-4));
  EXPECT_THROW(model->fresh_item_vector({"", "sports", ""}), InputError);
  EXPECT_THROW(model->fresh_item_vector({"zebra quantum xylophone", "sports", ""}), InputError);
  try {
    model->fresh_item_vector({"zebra", "", ""});
    ADD_FAILURE() << "an article of unknown words only was accepted";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("'zebra'"), std::string::npos) << error.what();
  }
}

TEST(Nrms, EncoderRebuiltFromItsStateGivesTheSameVectors) {
  auto data = tiny();
  const std::string toml = std::string(kTiny) + "categories = true\ncategory_dim = 3\n";
  auto model = make_news_model<Nrms>(toml, data.dataset, data.split);
  testing::train_steps(*model, {{0, {1, 2}, {3, 4, 5}}, {1, {4}, {6, 1, 2}}}, 3, 2, 0.01, 1);
  auto served = testing::rebuild_from_encoder_state(*model, toml, 6, 4);
  data::NewsText article{"rates rise on phone prices", "finance", ""};
  EXPECT_TRUE(torch::equal(model->fresh_item_vector(article), served->fresh_item_vector(article)));
  data::Sequences histories;
  const int32_t history[] = {0, 3, 5};
  histories.push_user(history, 3);
  const int32_t user = 0;
  EXPECT_TRUE(torch::equal(model->user_vectors(histories, &user, 1), served->user_vectors(histories, &user, 1)));
  EXPECT_TRUE(torch::equal(model->fresh_user_vector({0, 3, 5}, {}), served->fresh_user_vector({0, 3, 5}, {})));
  EXPECT_TRUE(torch::equal(model->item_vectors(), served->item_vectors()));
  EXPECT_THROW(served->fresh_user_vector({0, 6}, {}), InputError);  // no text for item 6
  EXPECT_THROW(served->fresh_user_vector({}, {}), InputError);
}

TEST(Nrms, LearnsOnGeneratedMind) {
  testing::expect_learns_on_generated_mind<Nrms>(
      "nrms", "name = 'nrms'\nword_dim = 32\nheads = 4\nhead_dim = 8\nattention_hidden = 32\nhistory = 10\n", 200, 0.003);
}

}  // namespace
}  // namespace embrec::models
