// Caser: training windows on a hand-worked batch, the encoder's shapes, vectors that score as the model does, and
// the loss gradient.
#include "embrec/models/caser.h"

#include <gtest/gtest.h>

#include "model_fixtures.h"

namespace embrec::models {
namespace {

using testing::make_model;

TEST(Caser, WindowsOfLInputsAndTheTFollowingTargets) {
  auto model = make_model<Caser>("name = 'caser'\ndim = 4\nwindow = 2\ntargets = 2\n", 2, 20);
  TensorBatch batch;
  // Row 0: sequence 1 2 3 4 (inputs 1 2 3, targets 2 3 4); row 1: sequence 7 8 (inputs . . 7, targets . . 8).
  batch.input = torch::tensor({{1, 2, 3}, {0, 0, 7}}, torch::kLong);
  batch.target = torch::tensor({{2, 3, 4}, {0, 0, 8}}, torch::kLong);
  batch.users = torch::tensor({0, 1}, torch::kLong);
  const Caser::Windows w = model->windows(batch);
  // Row 0 has targets at positions 1, 2, 3: windows [. 1] -> [2 3], [1 2] -> [3 4], [2 3] -> [4 .];
  // row 1 one window: [. 7] -> [8 .]. Position 0 of a row has no input and gives no window.
  EXPECT_TRUE(torch::equal(w.inputs, torch::tensor({{0, 1}, {1, 2}, {2, 3}, {0, 7}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(w.targets, torch::tensor({{2, 3}, {3, 4}, {4, 0}, {8, 0}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(w.rows, torch::tensor({0, 0, 0, 1}, torch::kLong)));
}

TEST(Caser, UserAndItemVectorsScoreAsTheModelDoes) {
  auto model = make_model<Caser>("name = 'caser'\ndim = 4\nwindow = 3\n", 2, 12);
  model->module().eval();
  data::Sequences histories;
  const int32_t a[] = {1, 2, 3, 4, 5}, b[] = {7};
  histories.push_user(a, 5);
  histories.push_user(b, 1);
  const int32_t users[] = {1, 0};  // user 1's history is b, user 0's is a
  auto vectors = model->user_vectors(histories, users, 2);
  ASSERT_EQ(vectors.sizes(), (std::vector<int64_t>{2, model->dim()}));
  torch::NoGradGuard no_grad;
  CaserNetImpl& net = *model->net();
  auto z = net.encode(torch::tensor({{0, 0, 8}, {4, 5, 6}}, torch::kLong));  // last 3 items, ids + 1
  auto x = net.user_side(z, torch::tensor({1, 0}, torch::kLong));
  auto items = model->item_vectors();
  auto expected = torch::matmul(x, net.item_side(torch::arange(1, 13, torch::kLong)).t());
  EXPECT_TRUE(torch::allclose(torch::matmul(vectors, items.t()), expected, 1e-5, 1e-6));
  EXPECT_FALSE(model->encodes_histories());
  EXPECT_TRUE(make_model<Caser>("name = 'caser'\nuser_embedding = false\n", 2, 12)->encodes_histories());
}

TEST(Caser, LossGradientMatchesFiniteDifferences) {
  auto model = make_model<Caser>("name = 'caser'\ndim = 3\nwindow = 2\ntargets = 2\nhorizontal_filters = 2\n"
                                 "vertical_filters = 1\ndropout = 0.0\nnegatives = 2\n",
                                 2, 6);
  model->module().to(torch::kFloat64);
  TensorBatch batch;
  batch.input = torch::tensor({{1, 2, 3}, {0, 5, 6}}, torch::kLong);
  batch.target = torch::tensor({{2, 3, 4}, {0, 6, 1}}, torch::kLong);
  batch.users = torch::tensor({0, 1}, torch::kLong);
  testing::Reseeded seeded(*model, 3);  // the draws repeat at every evaluation
  EXPECT_LT(testing::parameter_gradient_error(seeded, batch), 1e-6);
}

}  // namespace
}  // namespace embrec::models
