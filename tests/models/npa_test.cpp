// NPA: personalised word and news attention, the unknown user row (item side, users without training impressions,
// fresh histories), masking, the loss gradient, learning on generated MIND data, fresh articles and an encoder
// rebuilt from its export state.
#include "embrec/models/npa.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model_fixtures.h"
#include "news_fixtures.h"

namespace embrec::models {
namespace {

using testing::make_news_model;
using testing::tiny_news;

const char* kTiny =
    "name = 'npa'\nword_dim = 6\nfilters = 5\nwindow = 3\nuser_dim = 4\nattention_hidden = 3\nhistory = 4\n"
    "npratio = 2\ndropout = 0.0\nunknown_user_rate = 0.0\n";

testing::TinyNews tiny() {
  return tiny_news({{"stocks fall on rate fears", "finance", "markets"},
                    {"team wins the final", "sports", "football"},
                    {"rates rise again", "finance", "economy"},
                    {"star player injured before the final", "sports", "football"},
                    {"new phone released", "tech", "gadgets"},
                    {"phone makers cut prices", "tech", "gadgets"}},
                   4, {0, 1, 2});  // user 3 has no training impression
}

// The tiny model with random user embeddings (they start at zero, where every user reads alike).
std::unique_ptr<Npa> tiny_model(const testing::TinyNews& data, const std::string& extra = "") {
  auto model = make_news_model<Npa>(std::string(kTiny) + extra, data.dataset, data.split);
  torch::NoGradGuard no_grad;
  model->network()->user_embedding->weight.normal_(0.0, 1.0);
  return model;
}

TEST(Npa, ConfigErrorsNameTheKey) {
  EXPECT_NE(testing::creation_error<Npa>("name = 'npa'\nwindow = 2\n").find("key 'window'"), std::string::npos);
  EXPECT_NE(testing::creation_error<Npa>("name = 'npa'\nfilters = 0\n").find("key 'filters'"), std::string::npos);
  EXPECT_NE(testing::creation_error<Npa>("name = 'npa'\nunknown_user_rate = 1.0\n").find("key 'unknown_user_rate'"),
            std::string::npos);
  EXPECT_NE(testing::creation_error<Npa>("name = 'npa'\ndropout = -0.1\n").find("key 'dropout'"), std::string::npos);
}

TEST(Npa, UsersWithoutTrainingImpressionsTakeTheUnknownRow) {
  auto data = tiny();
  auto model = tiny_model(data);
  auto rows = model->user_rows(torch::tensor({0, 1, 2, 3, 7, -1}, torch::kLong));
  EXPECT_TRUE(torch::equal(rows, torch::tensor({1, 2, 3, 0, 0, 0}, torch::kLong)));
  EXPECT_EQ(model->network()->known_users.sum().item<int64_t>(), 3);
  // The mask is module state: checkpoints and exports carry it.
  bool found = false;
  for (const auto& buffer : model->module().named_buffers()) found = found || buffer.key() == "known_users";
  EXPECT_TRUE(found);
}

TEST(Npa, AttendWordsEqualsEachPairComputedAlone) {
  auto data = tiny();
  auto model = tiny_model(data);
  torch::manual_seed(11);
  auto features = torch::randn({3, 4, 5});
  auto mask = torch::tensor({{true, true, false, false}, {true, true, true, true}, {false, false, false, false}});
  auto queries = torch::randn({2, 5});
  auto pair_news = torch::tensor({0, 1, 1, 2, 0}, torch::kLong);
  auto pair_query = torch::tensor({0, 0, 1, 1, 1}, torch::kLong);
  auto out = model->network()->attend_words(features, mask, queries, pair_news, pair_query);
  for (int64_t p = 0; p < 5; ++p) {
    const int64_t n = pair_news[p].item<int64_t>(), q = pair_query[p].item<int64_t>();
    auto c = features[n];
    auto expected = torch::zeros({5});
    if (mask[n].any().item<bool>()) {
      auto logits = c.mv(queries[q]).masked_fill(mask[n].logical_not(), -INFINITY);
      expected = (torch::softmax(logits, 0).unsqueeze(1) * c).sum(0);
    }
    EXPECT_TRUE(torch::allclose(out[p], expected, 1e-5, 1e-6)) << "pair " << p;
  }
}

TEST(Npa, ItemSideReadsNewsWithTheUnknownUsersQuery) {
  auto data = tiny();
  auto model = tiny_model(data);
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto news = model->items().gather(torch::arange(1, 7, torch::kLong));
  auto pairs = torch::arange(6, torch::kLong);
  auto as_unknown =
      model->network()->encode_news(news, torch::tensor({0}, torch::kLong), pairs, torch::zeros({6}, torch::kLong));
  EXPECT_TRUE(torch::allclose(model->news_vectors(news), as_unknown, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(model->item_vectors(), as_unknown, 1e-6, 1e-7));
  // Personalisation: user 0 (row 1) reads the same titles otherwise.
  auto as_user =
      model->network()->encode_news(news, torch::tensor({1}, torch::kLong), pairs, torch::zeros({6}, torch::kLong));
  EXPECT_FALSE(torch::allclose(as_user, as_unknown, 1e-4, 1e-4));
}

TEST(Npa, PaddingChangesNothingAndAnEmptyHistoryGivesTheQuery) {
  auto data = tiny();
  auto model = tiny_model(data);
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto& network = *model->network();
  auto queries = network.news_queries(torch::tensor({1, 2, 0}, torch::kLong));
  auto history = torch::randn({3, 4, 5});
  auto mask = torch::tensor({{false, true, true, true}, {false, false, false, true}, {false, false, false, false}});
  auto changed = history.clone();
  changed.index_put_({mask.logical_not()}, torch::randn({8, 5}) * 100);  // the 8 padded slots
  auto users = network.encode_user(history, mask, queries);
  EXPECT_TRUE(torch::equal(users, network.encode_user(changed, mask, queries)));
  EXPECT_TRUE(torch::equal(users[2], queries[2]));  // no clicked news: the query itself
  EXPECT_TRUE(torch::isfinite(users).all().item<bool>());
  // Through user_vectors: a user without clicks gets its own news query (user 1: row 2).
  data::Sequences histories;
  const int32_t clicks[] = {0, 4};
  histories.push_user(clicks, 2);
  histories.push_user(nullptr, 0);
  const int32_t user_ids[] = {0, 1};
  auto user_vectors = model->user_vectors(histories, user_ids, 2);
  EXPECT_TRUE(torch::isfinite(user_vectors).all().item<bool>());
  EXPECT_TRUE(torch::allclose(user_vectors[1], queries[1], 1e-6, 1e-7));
  // Padded words: an all-padding title reads as zeros, never NaN, for any reader.
  auto padding = model->items().gather(torch::zeros({2}, torch::kLong));
  auto vectors = network.encode_news(padding, torch::tensor({0, 2}, torch::kLong), torch::tensor({0, 1}, torch::kLong),
                                     torch::tensor({0, 1}, torch::kLong));
  EXPECT_TRUE(torch::equal(vectors, torch::zeros({2, 5})));
}

TEST(Npa, UserVectorsReadTheHistoryWithTheUsersOwnQueries) {
  auto data = tiny();
  auto model = tiny_model(data);
  data::Sequences histories;
  const int32_t clicks[] = {0, 2, 3};
  for (int32_t u = 0; u < 4; ++u) histories.push_user(clicks, 3);
  const int32_t users[] = {0, 3};
  auto vectors = model->user_vectors(histories, users, 2);
  ASSERT_EQ(vectors.sizes(), (std::vector<int64_t>{2, 5}));
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto& network = *model->network();
  auto news = model->items().gather(torch::tensor({1, 3, 4}, torch::kLong));
  auto pairs = torch::arange(3, torch::kLong);
  for (int64_t k = 0; k < 2; ++k) {
    auto row = torch::tensor({k == 0 ? 1 : 0}, torch::kLong);  // user 3 has no training impression: row 0
    auto read = network.encode_news(news, row, pairs, torch::zeros({3}, torch::kLong)).unsqueeze(0);
    auto expected = network.encode_user(read, torch::ones({1, 3}, torch::kBool), network.news_queries(row));
    EXPECT_TRUE(torch::allclose(vectors[k], expected[0], 1e-5, 1e-6)) << "user " << users[k];
  }
  // A fresh history is read as the unknown user: user 3's vector.
  EXPECT_TRUE(torch::allclose(model->fresh_user_vector({0, 2, 3}, {})[0], vectors[1], 1e-6, 1e-7));
  EXPECT_FALSE(torch::allclose(vectors[0], vectors[1], 1e-4, 1e-4));
}

TEST(Npa, WordFeaturesInGroupsOfTitleLengthEqualOnePaddedPass) {
  auto data = tiny_news({{"alpha"},
                         {"beta"},
                         {"alpha beta"},
                         {"gamma delta"},
                         {"alpha beta gamma"},
                         {"one two three four five six"},
                         {"delta"},
                         {"beta gamma"}},
                        2);
  auto model = tiny_model(data);
  model->module().eval();
  torch::NoGradGuard no_grad;
  auto news = model->items().gather(torch::arange(0, 9, torch::kLong));
  auto grouped = model->network()->word_features(news);  // [9, 6, 5]: the longest title has 6 words
  auto padded = model->network()->convolve(news.titles);
  ASSERT_EQ(grouped.sizes(), padded.sizes());
  auto real = news.word_mask().unsqueeze(2).expand_as(padded);
  EXPECT_TRUE(torch::allclose(grouped.masked_select(real), padded.masked_select(real), 1e-5, 1e-6));
  // And the news vectors they give.
  auto pairs = torch::arange(9, torch::kLong);
  auto rows = torch::tensor({2}, torch::kLong);
  auto queries = model->network()->word_queries(rows);
  auto expected =
      model->network()->attend_words(padded, news.word_mask(), queries, pairs, torch::zeros({9}, torch::kLong));
  auto vectors = model->network()->encode_news(news, rows, pairs, torch::zeros({9}, torch::kLong));
  EXPECT_TRUE(torch::allclose(vectors, expected, 1e-5, 1e-6));
}

TEST(Npa, LossGradientMatchesFiniteDifferences) {
  for (const char* extra : {"", "categories = true\ncategory_dim = 3\n"}) {
    auto data = tiny();
    auto model = tiny_model(data, extra);
    model->module().to(torch::kDouble);
    const double error = testing::parameter_gradient_error(*model, testing::tiny_impression_batch());
    EXPECT_LT(error, 1e-6) << extra;
  }
}

TEST(Npa, LossIsTheCrossEntropyOfTheClickWithEachRowReadByItsUser) {
  auto data = tiny();
  auto model = tiny_model(data);
  const TensorBatch batch = testing::tiny_impression_batch();
  const double loss = model->loss(batch).total.item<double>();
  torch::NoGradGuard no_grad;
  auto& network = *model->network();
  double expected = 0;
  for (int64_t r = 0; r < 3; ++r) {
    auto row = torch::tensor({r + 1}, torch::kLong);
    auto read = [&](const torch::Tensor& ids) {
      auto news = model->items().gather(ids);
      return network.encode_news(news, row, torch::arange(ids.size(0), torch::kLong),
                                 torch::zeros({ids.size(0)}, torch::kLong));
    };
    auto user = network.encode_user(read(batch.input[r]).unsqueeze(0), batch.input[r].gt(0).unsqueeze(0),
                                    network.news_queries(row))[0];
    auto scores = read(batch.candidates[r]).mv(user);
    expected += -torch::log_softmax(scores, 0)[0].item<double>();
  }
  EXPECT_NEAR(loss, expected / 3, 1e-5);
}

TEST(Npa, FreshArticleGetsItsItemVectorAndUnknownTitlesAreRefused) {
  auto data = tiny();
  auto model = tiny_model(data, "categories = true\ncategory_dim = 3\n");
  auto items = model->item_vectors();
  auto fresh = model->fresh_item_vector({"rates rise again", "finance", "economy"});
  ASSERT_EQ(fresh.sizes(), (std::vector<int64_t>{1, 5}));
  EXPECT_TRUE(torch::allclose(fresh[0], items[2], 1e-5, 1e-6));
  EXPECT_THROW(model->fresh_item_vector({"", "finance", ""}), InputError);
  EXPECT_THROW(model->fresh_item_vector({"zebra xylophone", "", ""}), InputError);
  EXPECT_TRUE(model->places_untrained_items());  // news never clicked in training still have text
}

TEST(Npa, EncoderRebuiltFromItsStateGivesTheSameVectors) {
  auto data = tiny();
  const std::string extra = "categories = true\ncategory_dim = 3\n";
  auto model = tiny_model(data, extra);
  testing::train_steps(*model, {{0, {1, 2}, {3, 4, 5}}, {1, {4}, {6, 1, 2}}}, 3, 2, 0.01, 1);
  auto served = testing::rebuild_from_encoder_state(*model, std::string(kTiny) + extra, 6, 4);
  data::NewsText article{"rates rise on phone prices", "finance", ""};
  EXPECT_TRUE(torch::equal(model->fresh_item_vector(article), served->fresh_item_vector(article)));
  data::Sequences histories;
  const int32_t history[] = {0, 3, 5};
  for (int32_t u = 0; u < 4; ++u) histories.push_user(history, 3);
  const int32_t users[] = {0, 1, 3};
  EXPECT_TRUE(torch::equal(model->user_vectors(histories, users, 3), served->user_vectors(histories, users, 3)));
  EXPECT_TRUE(torch::equal(model->fresh_user_vector({0, 3, 5}, {}), served->fresh_user_vector({0, 3, 5}, {})));
  EXPECT_TRUE(torch::equal(served->network()->known_users, model->network()->known_users));
}

TEST(Npa, LearnsOnGeneratedMind) {
  testing::expect_learns_on_generated_mind<Npa>(
      "npa", "name = 'npa'\nword_dim = 32\nfilters = 32\nuser_dim = 16\nattention_hidden = 16\nhistory = 10\n", 300, 0.01);
}

}  // namespace
}  // namespace embrec::models
