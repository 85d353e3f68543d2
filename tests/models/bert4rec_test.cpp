// BERT4Rec: cloze masking (ratio, never padding, at least one per row), bidirectional attention, and the [mask]
// appended at inference only.
#include "embrec/models/bert4rec.h"

#include <gtest/gtest.h>

#include "model_fixtures.h"

namespace embrec::models {
namespace {

using testing::make_model;

const char* kSmall = "name = 'bert4rec'\ndim = 8\nheads = 2\nlayers = 1\nmax_length = 8\nmask_probability = 0.3\n";

TEST(Bert4rec, ClozeMasksAboutRhoOfTheItemsNeverPaddingAndAtLeastOneARow) {
  auto model = make_model<Bert4rec>(kSmall, 3, 50);
  torch::manual_seed(4);
  TensorBatch batch;
  // 2,000 rows of three items after four columns of padding: inputs 0 0 0 0 a b, targets 0 0 0 0 b c.
  auto items = torch::randint(1, 51, {2000, 3}, torch::kLong);
  auto zeros = torch::zeros({2000, 4}, torch::kLong);
  batch.input = torch::cat({zeros, items.narrow(1, 0, 2)}, 1);
  batch.target = torch::cat({zeros, items.narrow(1, 1, 2)}, 1);
  const Bert4rec::Cloze c = model->cloze(batch);
  ASSERT_EQ(c.sequence.sizes(), (std::vector<int64_t>{2000, 7}));
  EXPECT_TRUE(torch::equal(c.sequence.narrow(1, 4, 3), items));  // the whole sequence: inputs and the last target
  EXPECT_FALSE(c.masked.narrow(1, 0, 4).any().item<bool>());     // padding is never masked
  EXPECT_TRUE(c.masked.any(1).all().item<bool>());               // every row has a masked item
  // Masked share: 0.3 per item, plus the last item of rows the draw left unmasked (0.7^3 = 0.343 of them):
  // (3 * 0.3 + 0.343) / 3 = 0.414; 6,000 items give a standard deviation under 0.007.
  const double share = c.masked.narrow(1, 4, 3).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(share, (3 * 0.3 + 0.343) / 3, 0.03);
  EXPECT_TRUE(torch::equal(c.input.masked_select(c.masked),
                           torch::full({c.masked.sum().item<int64_t>()}, model->mask_token(), torch::kLong)));
  EXPECT_TRUE(torch::equal(c.input.masked_select(c.masked.logical_not()),
                           c.sequence.masked_select(c.masked.logical_not())));
}

TEST(Bert4rec, AttentionIsBidirectionalAndTheUserVectorIsTheAppendedMask) {
  auto model = make_model<Bert4rec>(kSmall, 3, 30);
  model->module().eval();
  torch::NoGradGuard no_grad;
  SasrecEncoderImpl& encoder = *model->encoder();
  // Changing a later item changes an earlier position's output (no causal mask).
  auto a = encoder.forward(torch::tensor({{0, 3, 4, 5}}, torch::kLong));
  auto b = encoder.forward(torch::tensor({{0, 3, 4, 9}}, torch::kLong));
  EXPECT_FALSE(torch::allclose(a.select(1, 1), b.select(1, 1), 1e-4, 1e-4));
  // user_vectors: the history's last max_length - 1 items, then the [mask], whose output is the vector; the
  // history itself is never masked.
  data::Sequences histories;
  const int32_t items[] = {2, 3, 4};  // ids + 1 = 3, 4, 5
  histories.push_user(items, 3);
  const int32_t user = 0;
  auto expected = encoder.encode_last(torch::tensor(std::vector<int64_t>{3, 4, 5, model->mask_token()}).view({1, 4}));
  EXPECT_TRUE(torch::allclose(model->user_vectors(histories, &user, 1), expected, 1e-5, 1e-6));
  EXPECT_EQ(model->sampler_options({}).max_length, 7);
  EXPECT_EQ(model->item_vectors().size(0), 30);  // the [mask] row is not an item
}

TEST(Bert4rec, LossGradientMatchesFiniteDifferences) {
  auto model = make_model<Bert4rec>("name = 'bert4rec'\ndim = 4\nheads = 1\nlayers = 1\nmax_length = 5\n"
                                    "dropout = 0.0\nattention_dropout = 0.0\nmask_probability = 0.5\n",
                                    2, 6);
  model->module().to(torch::kFloat64);
  TensorBatch batch;
  batch.input = torch::tensor({{0, 1, 2, 3}, {4, 5, 6, 1}}, torch::kLong);
  batch.target = torch::tensor({{0, 2, 3, 4}, {5, 6, 1, 2}}, torch::kLong);
  testing::Reseeded seeded(*model, 9);  // the draws repeat at every evaluation
  EXPECT_LT(testing::parameter_gradient_error(seeded, batch), 1e-6);
}

}  // namespace
}  // namespace embrec::models
