// GRU4Rec: the written-out GRU against torch's, padding and resets, the carried session-parallel state, every
// loss's gradient, and config rules.
#include "embrec/models/gru4rec.h"

#include <gtest/gtest.h>

#include "model_fixtures.h"

namespace embrec::models {
namespace {

using testing::creation_error;
using testing::make_model;

const char* kSmall = "name = 'gru4rec'\ndim = 6\nlayers = 2\nmax_length = 8\n";

TEST(Gru4rec, TheWrittenOutGruEqualsTorchsGru) {
  auto model = make_model<Gru4rec>(kSmall, 3, 20);
  Gru4recNetImpl& net = *model->net();
  net.eval();
  torch::nn::GRU reference(torch::nn::GRUOptions(6, 6).num_layers(2).batch_first(true));
  {
    torch::NoGradGuard no_grad;
    for (int l = 0; l < 2; ++l) {
      const std::string suffix = "_l" + std::to_string(l);
      reference->named_parameters()["weight_ih" + suffix].copy_(net.w_ih[l]);
      reference->named_parameters()["weight_hh" + suffix].copy_(net.w_hh[l]);
      reference->named_parameters()["bias_ih" + suffix].copy_(torch::randn({18}));
      reference->named_parameters()["bias_hh" + suffix].copy_(torch::randn({18}));
      net.b_ih[l].copy_(reference->named_parameters()["bias_ih" + suffix]);
      net.b_hh[l].copy_(reference->named_parameters()["bias_hh" + suffix]);
    }
  }
  torch::NoGradGuard no_grad;
  auto input = torch::tensor({{3, 4, 5, 6}, {1, 9, 9, 2}}, torch::kLong);
  torch::Tensor final_state;
  auto ours = net.forward(input, {}, {}, &final_state);
  auto [theirs, theirs_state] = reference->forward(net.input_embedding(input));
  EXPECT_TRUE(torch::allclose(ours, theirs, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(final_state, theirs_state, 1e-5, 1e-6));
}

TEST(Gru4rec, LeftPaddingDoesNotChangeTheUserVector) {
  auto model = make_model<Gru4rec>(kSmall, 3, 20);
  torch::NoGradGuard no_grad;
  model->module().eval();
  auto padded = model->net()->forward(torch::tensor({{0, 0, 0, 3, 9, 4}}, torch::kLong), {}, {}).select(1, 5);
  auto cut = model->net()->forward(torch::tensor({{3, 9, 4}}, torch::kLong), {}, {}).select(1, 2);
  EXPECT_TRUE(torch::allclose(padded, cut, 1e-6, 1e-7));
  // user_vectors() takes the same last step of each history.
  data::Sequences histories;
  const int32_t items[] = {2, 8, 3};  // ids + 1 = 3, 9, 4
  histories.push_user(items, 3);
  const int32_t user = 0;
  EXPECT_TRUE(torch::allclose(model->user_vectors(histories, &user, 1), cut, 1e-6, 1e-7));
}

TEST(Gru4rec, AResetColumnStartsTheSlotAfreshAndTheStateCarriesAcrossBatches) {
  auto model = make_model<Gru4rec>(kSmall, 3, 20);
  torch::NoGradGuard no_grad;
  model->module().eval();
  Gru4recNetImpl& net = *model->net();
  // Slot 0 runs 3, 4 then a new sequence 7, 8 (reset at column 2); the new sequence alone gives the same outputs.
  auto keep = torch::tensor({{true, true, false, true}});
  auto out = net.forward(torch::tensor({{3, 4, 7, 8}}, torch::kLong), keep, {});
  auto alone = net.forward(torch::tensor({{7, 8}}, torch::kLong), {}, {});
  EXPECT_TRUE(torch::allclose(out.narrow(1, 2, 2), alone, 1e-6, 1e-7));
  // Without the reset the state carries and the outputs differ.
  auto carried = net.forward(torch::tensor({{3, 4, 7, 8}}, torch::kLong), {}, {});
  EXPECT_FALSE(torch::allclose(carried.narrow(1, 2, 2), alone, 1e-3, 1e-3));
  // Two batches of two steps with the state handed over equal one batch of four steps.
  torch::Tensor state;
  net.forward(torch::tensor({{3, 4}}, torch::kLong), {}, {}, &state);
  auto second = net.forward(torch::tensor({{7, 8}}, torch::kLong), {}, state);
  EXPECT_TRUE(torch::allclose(second, carried.narrow(1, 2, 2), 1e-6, 1e-7));
}

TEST(Gru4rec, SessionParallelLossCarriesTheSlotsStateUntilTheEpochEnds) {
  // The model keeps each slot's state from one batch to the next (truncated back-propagation); begin_epoch drops it.
  auto model = make_model<Gru4rec>(std::string(kSmall) + "hidden_dropout = 0.0\n", 3, 20);
  TensorBatch first, second;
  first.input = torch::tensor({{3}, {5}}, torch::kLong);
  first.target = torch::tensor({{4}, {6}}, torch::kLong);
  first.reset = torch::tensor({{true}, {true}});
  second.input = torch::tensor({{4}, {6}}, torch::kLong);
  second.target = torch::tensor({{5}, {7}}, torch::kLong);
  second.reset = torch::tensor({{false}, {false}});
  model->begin_epoch(0);
  model->loss(first);
  const double after_first = model->loss(second).total.item<double>();
  model->begin_epoch(1);
  const double from_zero = model->loss(second).total.item<double>();
  EXPECT_NE(after_first, from_zero);
  // The same two steps as one padded batch: input 3, 4 / 5, 6 with targets 4, 5 / 6, 7: the second step's loss
  // part equals the carried one (softmax CE is a mean over targets, so compare with a one-target batch).
  TensorBatch whole;
  whole.input = torch::tensor({{3, 4}, {5, 6}}, torch::kLong);
  whole.target = torch::tensor({{0, 5}, {0, 7}}, torch::kLong);
  EXPECT_NEAR(model->loss(whole).total.item<double>(), after_first, 1e-6);
}

TEST(Gru4rec, EveryLossGradientMatchesFiniteDifferences) {
  for (const char* loss : {"softmax", "bpr", "top1", "bpr_max", "top1_max"}) {
    for (const char* batching : {"padded", "session_parallel"}) {
      std::string text = std::string("name = 'gru4rec'\ndim = 3\nlayers = 2\nmax_length = 4\nloss = '") + loss +
                         "'\nbatching = '" + batching + "'\ntied = false\nembedding_dim = 2\n";
      auto model = make_model<Gru4rec>(text, 3, 7);
      model->module().to(torch::kFloat64);
      TensorBatch batch;
      batch.input = torch::tensor({{0, 1, 2}, {3, 4, 5}}, torch::kLong);
      batch.target = torch::tensor({{0, 2, 6}, {4, 5, 2}}, torch::kLong);
      if (std::string(batching) == "session_parallel")
        batch.reset = torch::tensor({{true, false, false}, {true, false, true}});
      if (std::string(loss) != "softmax") batch.shared_negative = torch::tensor({7, 1, 3}, torch::kLong);
      model->begin_epoch(0);
      EXPECT_LT(testing::parameter_gradient_error(*model, batch), 1e-6) << loss << " " << batching;
    }
  }
}

TEST(Gru4rec, OneHotInputLearnsATableOfGateInputs) {
  auto model = make_model<Gru4rec>("name = 'gru4rec'\ndim = 4\ninput = 'one_hot'\n", 3, 9);
  EXPECT_EQ(model->net()->input_embedding->weight.sizes(), (std::vector<int64_t>{10, 12}));
  EXPECT_FALSE(model->net()->w_ih[0].defined());
  EXPECT_EQ(model->item_vectors().sizes(), (std::vector<int64_t>{9, 4}));
}

TEST(Gru4rec, ConfigErrorsNameTheKey) {
  EXPECT_NE(creation_error<Gru4rec>("name = 'gru4rec'\ninput = 'one_hot'\ntied = true\n").find("tied"),
            std::string::npos);
  EXPECT_NE(creation_error<Gru4rec>("name = 'gru4rec'\npooling = 'mean'\n").find("batching = \"padded\""),
            std::string::npos);
  EXPECT_NE(creation_error<Gru4rec>("name = 'gru4rec'\nshared_negatives = 10\n").find("sampled losses"),
            std::string::npos);
  EXPECT_NE(creation_error<Gru4rec>("name = 'gru4rec'\nloss = 'bpr'\nscore_regularization = 1.0\n").find("bpr_max"),
            std::string::npos);
  EXPECT_NE(creation_error<Gru4rec>("name = 'gru4rec'\nloss = 'warp'\n").find("top1_max"), std::string::npos);
}

}  // namespace
}  // namespace embrec::models
