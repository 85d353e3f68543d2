// The news models' shared layers: masked softmax, additive and self-attention ignore padding exactly, all-padding
// rows stay finite, unique news map back, word embeddings start from pre-trained vectors, item text round trips.
#include "embrec/models/news_layers.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "embrec/util/error.h"
#include "news_fixtures.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

TEST(NewsLayers, MaskedSoftmaxIsTheSoftmaxOfTheRealPositionsAndZeroElsewhere) {
  auto logits = torch::tensor({{1.0f, 2.0f, 3.0f, 50.0f}, {0.5f, -1.0f, 7.0f, 2.0f}, {1.0f, 2.0f, 3.0f, 4.0f}});
  auto mask = torch::tensor({{true, true, true, false}, {false, true, false, true}, {false, false, false, false}});
  auto weights = masked_softmax(logits, mask, 1);
  // Row 0: softmax(1, 2, 3) = (0.0900306, 0.2447285, 0.6652410); the masked 50 gets nothing.
  EXPECT_NEAR(weights[0][0].item<float>(), 0.0900306f, 1e-6);
  EXPECT_NEAR(weights[0][1].item<float>(), 0.2447285f, 1e-6);
  EXPECT_NEAR(weights[0][2].item<float>(), 0.6652410f, 1e-6);
  EXPECT_EQ(weights[0][3].item<float>(), 0.0f);
  // Row 1: softmax(-1, 2) = (0.0474259, 0.9525741) at positions 1 and 3.
  EXPECT_EQ(weights[1][0].item<float>(), 0.0f);
  EXPECT_NEAR(weights[1][1].item<float>(), 0.0474259f, 1e-6);
  EXPECT_EQ(weights[1][2].item<float>(), 0.0f);
  EXPECT_NEAR(weights[1][3].item<float>(), 0.9525741f, 1e-6);
  // Row 2: nothing real -- zeros, not NaN.
  EXPECT_TRUE(torch::equal(weights[2], torch::zeros({4})));
}

TEST(NewsLayers, AdditiveAttentionWeightsSumToOneOverRealPositionsAndAreZeroAtPadding) {
  torch::manual_seed(3);
  AdditiveAttention attention(6, 5);
  auto values = torch::randn({3, 7, 6});
  auto mask = torch::rand({3, 7}).gt(0.4);
  mask[0][6] = true;
  mask[1][0] = true;
  mask[2].fill_(false);  // an all-padding row
  auto weights = attention->weights(values, mask);
  for (int64_t r = 0; r < 2; ++r) EXPECT_NEAR(weights[r].sum().item<float>(), 1.0f, 1e-6) << "row " << r;
  EXPECT_TRUE(torch::equal(weights.masked_select(mask.logical_not()), torch::zeros({(~mask).sum().item<int64_t>()})));
  EXPECT_TRUE(weights.masked_select(mask).gt(0).all().item<bool>());
  auto out = attention->forward(values, mask);
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  EXPECT_TRUE(torch::equal(out[2], torch::zeros({6})));
  // The output is the weighted sum of the values.
  EXPECT_TRUE(torch::allclose(out[0], (weights[0].unsqueeze(1) * values[0]).sum(0), 1e-5, 1e-6));
}

TEST(NewsLayers, PaddedContentChangesNoAttentionOutput) {
  torch::manual_seed(4);
  AdditiveAttention additive(6, 5);
  MultiHeadSelfAttention self_attention(6, 2, 3);
  auto values = torch::randn({2, 5, 6});
  auto mask = torch::tensor({{false, false, true, true, true}, {true, false, true, false, true}});
  auto changed = values.clone();
  changed.index_put_({mask.logical_not()}, torch::randn({4, 6}) * 1000);  // the 4 padded positions
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(additive(values, mask), additive(changed, mask)));
  // Self-attention: outputs at the real positions do not see padded keys; the stack used by NRMS neither.
  auto real = mask.unsqueeze(2).expand({2, 5, 6});
  EXPECT_TRUE(torch::equal(self_attention(values, mask).masked_select(real),
                           self_attention(changed, mask).masked_select(real)));
  EXPECT_TRUE(
      torch::equal(additive(self_attention(values, mask), mask), additive(self_attention(changed, mask), mask)));
}

TEST(NewsLayers, SelfAttentionOfAnAllPaddingRowIsFinite) {
  torch::manual_seed(5);
  MultiHeadSelfAttention self_attention(4, 2, 2);
  AdditiveAttention additive(4, 3);
  auto values = torch::randn({2, 3, 4}, torch::requires_grad());
  auto mask = torch::tensor({{false, false, false}, {true, true, false}});
  auto out = additive(self_attention(values, mask), mask);
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
  EXPECT_TRUE(torch::equal(out[0], torch::zeros({4})));
  out.sum().backward();
  EXPECT_TRUE(torch::isfinite(values.grad()).all().item<bool>());
  EXPECT_TRUE(torch::equal(values.grad()[0], torch::zeros({3, 4})));
}

TEST(NewsLayers, SelfAttentionMatchesTheHeadsComputedOneByOne) {
  torch::manual_seed(6);
  MultiHeadSelfAttention attention(4, 2, 3);
  auto x = torch::randn({1, 3, 4});
  auto mask = torch::tensor({{true, true, false}});
  torch::NoGradGuard no_grad;
  auto out = attention(x, mask)[0];  // [3, 6]
  auto q = attention->query(x[0]), k = attention->key(x[0]), v = attention->value(x[0]);
  for (int64_t h = 0; h < 2; ++h) {
    auto qh = q.narrow(1, 3 * h, 3), kh = k.narrow(1, 3 * h, 3).narrow(0, 0, 2),
         vh = v.narrow(1, 3 * h, 3).narrow(0, 0, 2);
    auto expected = torch::softmax(qh.mm(kh.t()) / std::sqrt(3.0), 1).mm(vh);
    EXPECT_TRUE(torch::allclose(out.narrow(1, 3 * h, 3), expected, 1e-5, 1e-6)) << "head " << h;
  }
}

TEST(NewsLayers, UniqueNewsMapsEveryEntryBackWithPaddingFirst) {
  auto ids = torch::tensor({{0, 5, 3}, {3, 9, 5}}, torch::kLong);
  auto unique = unique_news(ids);
  EXPECT_TRUE(torch::equal(unique.ids, torch::tensor({0, 3, 5, 9}, torch::kLong)));
  EXPECT_TRUE(torch::equal(unique.ids.index_select(0, unique.inverse.reshape({-1})).view({2, 3}), ids));
  auto without_padding = unique_news(torch::tensor({{4, 2}}, torch::kLong));
  EXPECT_TRUE(torch::equal(without_padding.ids, torch::tensor({0, 2, 4}, torch::kLong)));
  EXPECT_TRUE(torch::equal(without_padding.inverse, torch::tensor({{2, 1}}, torch::kLong)));
}

TEST(NewsLayers, WordEmbeddingStartsFromThePretrainedVectors) {
  data::PretrainedEmbedding pretrained;
  pretrained.dimension = 2;
  pretrained.values = {0, 0, 0, 0, 1.5f, -2.0f, 0, 0, 3.0f, 0.5f};  // rows: padding, unknown, w2, w3 (missing), w4
  pretrained.found = {0, 0, 1, 0, 1};
  pretrained.found_count = 2;
  torch::manual_seed(7);
  auto embedding = make_word_embedding(5, 2, &pretrained, "nrms");
  auto weight = embedding->weight;
  EXPECT_TRUE(torch::equal(weight[0], torch::zeros({2})));
  EXPECT_TRUE(torch::equal(weight[2], torch::tensor({1.5f, -2.0f})));
  EXPECT_TRUE(torch::equal(weight[4], torch::tensor({3.0f, 0.5f})));
  EXPECT_GT(weight[1].abs().sum().item<float>(), 0.0f);  // unknown and missing words start random
  EXPECT_GT(weight[3].abs().sum().item<float>(), 0.0f);
  const std::string message = error_of([&] { make_word_embedding(5, 3, &pretrained, "nrms"); });
  EXPECT_NE(message.find("word_dim"), std::string::npos) << message;
}

TEST(NewsLayers, NewsItemsGatherByIdPlusOneAndRoundTripThroughJson) {
  auto data =
      testing::tiny_news({{"alpha beta", "a", "a1"}, {"gamma", "b", ""}, {"beta gamma delta", "", ""}}, 2, {}, 4);
  const NewsItems items(*data.dataset.news, 3, torch::kCPU);
  EXPECT_EQ(items.item_count(), 3);
  EXPECT_EQ(items.title_length(), 4);
  auto news = items.gather(torch::tensor({{0, 1}}, torch::kLong));             // padding, item 0
  EXPECT_TRUE(torch::equal(news.titles[0], torch::zeros({4}, torch::kLong)));  // padding
  const data::NewsContent& content = *data.dataset.news;
  EXPECT_EQ(news.titles[1][0].item<int64_t>(), content.words.index("alpha"));
  EXPECT_EQ(news.categories[1].item<int64_t>(), content.categories.find("a"));
  EXPECT_EQ(news.subcategories[1].item<int64_t>(), content.subcategories.find("a1"));
  const NewsItems back = NewsItems::from_json(items.to_json(), 3, torch::kCPU, "nrms");
  auto all = torch::arange(0, 4, torch::kLong);
  EXPECT_TRUE(torch::equal(back.gather(all).titles, items.gather(all).titles));
  EXPECT_TRUE(torch::equal(back.gather(all).categories, items.gather(all).categories));
  EXPECT_TRUE(torch::equal(back.gather(all).subcategories, items.gather(all).subcategories));
  EXPECT_THROW(NewsItems::from_json(items.to_json(), 4, torch::kCPU, "nrms"), Error);  // another item count
}

}  // namespace
}  // namespace embrec::models
