// SASRec: causal mask, right-aligned positions, losses, and registry behaviour.
#include "embrec/models/sasrec.h"

#include <gtest/gtest.h>

#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

std::unique_ptr<Model> make(const std::string& toml_text, int32_t items = 30) {
  ConfigTable table = ConfigTable::parse_string(toml_text, "test.toml");
  ModelContext context;
  context.item_count = items;
  context.user_count = 4;
  torch::manual_seed(1);
  auto model = create_model(table, context);
  table.finish();
  return model;
}

TEST(Sasrec, OutputAtPositionDoesNotDependOnLaterItems) {
  auto model = make("name = 'sasrec'\ndim = 16\nheads = 2\nlayers = 2\nmax_length = 8\n");
  auto& sasrec = dynamic_cast<Sasrec&>(*model);
  sasrec.module().eval();
  torch::NoGradGuard no_grad;
  auto a = torch::tensor({{0, 0, 3, 4, 5, 6, 7, 8}}, torch::kLong);
  auto b = torch::tensor({{0, 0, 3, 4, 5, 20, 21, 22}}, torch::kLong);
  auto out_a = sasrec.encoder()->forward(a);
  auto out_b = sasrec.encoder()->forward(b);
  // Item positions 2..4 see the same prefix: identical outputs. Position 5 sees a different item: different output.
  // (Padding positions 0..1 have no key to attend to; their outputs are never used and not compared.)
  EXPECT_TRUE(torch::allclose(out_a.narrow(1, 2, 3), out_b.narrow(1, 2, 3), 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(out_a.narrow(1, 5, 1), out_b.narrow(1, 5, 1), 1e-3, 1e-3));
}

TEST(Sasrec, LeftPaddingCutDoesNotChangeTheRepresentation) {
  // A batch padded to the window and the same sequence cut to its length give the same last-position vector,
  // because positions are right-aligned and padding keys are masked.
  auto model = make("name = 'sasrec'\ndim = 16\nheads = 2\nlayers = 2\nmax_length = 8\n");
  auto& sasrec = dynamic_cast<Sasrec&>(*model);
  sasrec.module().eval();
  torch::NoGradGuard no_grad;
  auto full = sasrec.encoder()->encode_last(torch::tensor({{0, 0, 0, 0, 0, 3, 9, 4}}, torch::kLong));
  auto cut = sasrec.encoder()->encode_last(torch::tensor({{3, 9, 4}}, torch::kLong));
  EXPECT_TRUE(torch::allclose(full, cut, 1e-5, 1e-5));
}

TEST(Sasrec, EncodeLastEqualsTheLastPositionOfTheFullForward) {
  for (const char* layers : {"1", "3"}) {
    auto model = make(std::string("name = 'sasrec'\ndim = 16\nheads = 4\nmax_length = 6\nlayers = ") + layers);
    auto& sasrec = dynamic_cast<Sasrec&>(*model);
    sasrec.module().eval();
    torch::NoGradGuard no_grad;
    auto input = torch::tensor({{0, 0, 3, 4, 5, 6}, {1, 2, 3, 4, 5, 6}, {0, 0, 0, 0, 0, 9}}, torch::kLong);
    auto full = sasrec.encoder()->forward(input).select(1, 5);
    EXPECT_TRUE(torch::allclose(sasrec.encoder()->encode_last(input), full, 1e-5, 1e-5)) << layers << " layers";
  }
}

TEST(Sasrec, SplittingAMixedLengthBatchByLengthChangesNoOutputOrGradient) {
  // Shuffled batches mix lengths 1..12: the encoder groups rows by length and encodes each group at its own padded
  // length. At every real position the output and every parameter gradient equal the unsplit computation.
  auto model = make("name = 'sasrec'\ndim = 16\nheads = 2\nlayers = 2\nmax_length = 12\ndropout = 0.0\n"
                    "attention_dropout = 0.0\n");
  auto& encoder = *dynamic_cast<Sasrec&>(*model).encoder();
  encoder.train();
  const std::vector<int64_t> lengths = {1, 12, 2, 3, 1, 2, 5, 1};
  auto input = torch::zeros({8, 12}, torch::kLong);
  for (int64_t r = 0; r < 8; ++r)
    input[r].narrow(0, 12 - lengths[r], lengths[r]).copy_(torch::randint(1, 31, {lengths[r]}, torch::kLong));
  auto real = input.gt(0).unsqueeze(2).to(torch::kFloat32);
  auto weights = torch::randn({8, 12, 16});
  std::vector<torch::Tensor> outputs, last, gradients[2];
  for (bool split : {false, true}) {
    encoder.split_by_length = split;
    encoder.zero_grad();
    auto out = encoder.forward(input);
    (out * weights * real).sum().backward();
    outputs.push_back(out.detach());
    for (auto& p : encoder.parameters()) gradients[split].push_back(p.grad().clone());
    torch::NoGradGuard no_grad;
    last.push_back(encoder.encode_last(input));
  }
  EXPECT_TRUE(torch::allclose(outputs[0] * real, outputs[1] * real, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(last[0], last[1], 1e-5, 1e-5));
  for (size_t i = 0; i < gradients[0].size(); ++i)
    EXPECT_TRUE(torch::allclose(gradients[0][i], gradients[1][i], 1e-4, 1e-5)) << "parameter " << i;
  // The split path was taken: it leaves zeros at the padding positions of a short row.
  EXPECT_EQ(outputs[1][0].narrow(0, 0, 11).abs().sum().item<float>(), 0.0f);
  EXPECT_GT(outputs[0][0].narrow(0, 0, 11).abs().sum().item<float>(), 0.0f);
}

TEST(Sasrec, UserVectorsAreTheLastPositionOfTheHistory) {
  auto model = make("name = 'sasrec'\ndim = 8\nheads = 1\nlayers = 1\nmax_length = 4\n");
  auto& sasrec = dynamic_cast<Sasrec&>(*model);
  data::Sequences histories;
  const int32_t first[] = {0, 1, 2, 3, 4, 5};  // longer than the window: the last 4 are used
  const int32_t second[] = {7};
  histories.push_user(first, 6);
  histories.push_user(second, 1);
  const int32_t users[] = {0, 1};
  auto vectors = sasrec.user_vectors(histories, users, 2);
  ASSERT_EQ(vectors.sizes(), (std::vector<int64_t>{2, 8}));
  sasrec.module().eval();
  torch::NoGradGuard no_grad;
  auto expected = sasrec.encoder()->forward(torch::tensor({{3, 4, 5, 6}}, torch::kLong)).select(1, 3);
  EXPECT_TRUE(torch::allclose(vectors[0], expected[0], 1e-5, 1e-5));
  // Users are encoded shortest-first internally; rows still come back in the caller's order.
  auto expected_second = sasrec.encoder()->encode_last(torch::tensor({{8}}, torch::kLong));
  EXPECT_TRUE(torch::allclose(vectors[1], expected_second[0], 1e-5, 1e-5));
  EXPECT_EQ(sasrec.item_vectors().size(0), 30);
}

TEST(Sasrec, BceLossIsTheHandComputedValue) {
  auto model = make("name = 'sasrec'\ndim = 8\nheads = 1\nlayers = 1\nmax_length = 4\nloss = 'bce'\ndropout = 0.0\n"
                    "attention_dropout = 0.0\n");
  auto& sasrec = dynamic_cast<Sasrec&>(*model);
  TensorBatch batch;
  batch.input = torch::tensor({{0, 1, 2}}, torch::kLong);
  batch.target = torch::tensor({{0, 2, 3}}, torch::kLong);
  batch.negative = torch::tensor({{0, 9, 10}}, torch::kLong);
  batch.users = torch::tensor({0}, torch::kLong);
  auto loss = sasrec.loss(batch).total.item<double>();
  auto hidden = sasrec.encoder()->forward(batch.input);
  auto table = sasrec.encoder()->item_embedding->weight;
  double expected = 0;
  for (int j : {1, 2}) {
    const double positive = (hidden[0][j] * table[batch.target[0][j].item<int64_t>()]).sum().item<double>();
    const double negative = (hidden[0][j] * table[batch.negative[0][j].item<int64_t>()]).sum().item<double>();
    expected += -std::log(1 / (1 + std::exp(-positive))) - std::log(1 - 1 / (1 + std::exp(-negative)));
  }
  EXPECT_NEAR(loss, expected / 2, 1e-5);
}

TEST(Sasrec, SoftmaxLossIgnoresPositionsWithoutTargets) {
  auto model = make("name = 'sasrec'\ndim = 8\nheads = 1\nlayers = 1\nmax_length = 4\ndropout = 0.0\n"
                    "attention_dropout = 0.0\n");
  auto& sasrec = dynamic_cast<Sasrec&>(*model);
  TensorBatch batch;
  batch.input = torch::tensor({{0, 1, 2}}, torch::kLong);
  batch.target = torch::tensor({{0, 2, 3}}, torch::kLong);
  batch.users = torch::tensor({0}, torch::kLong);
  auto loss = sasrec.loss(batch).total.item<double>();
  auto hidden = sasrec.encoder()->forward(batch.input)[0].narrow(0, 1, 2);
  auto logits = hidden.mm(sasrec.encoder()->item_embedding->weight.narrow(0, 1, 30).t());
  auto expected = torch::nn::functional::cross_entropy(logits, torch::tensor({1, 2}, torch::kLong)).item<double>();
  EXPECT_NEAR(loss, expected, 1e-5);
}

TEST(Sasrec, ConfigErrorsNameTheKeyAndFile) {
  const std::string heads = error_of([] { make("name = 'sasrec'\ndim = 10\nheads = 3\n"); });
  EXPECT_NE(heads.find("test.toml: key 'heads'"), std::string::npos) << heads;
  EXPECT_EQ(error_of([] { make("name = 'sasrec'\nlos = 'bce'\n"); }), "test.toml: unknown key 'los'");
  const std::string unknown = error_of([] { make("name = 'sasrek'\n"); });
  EXPECT_NE(unknown.find("unknown model 'sasrek' (known: "), std::string::npos) << unknown;
  EXPECT_EQ(error_of([] { make("name = 'sasrec'\ndropout = 'high'\n"); }),
            "test.toml: key 'dropout' must be a number, got a string");
}

}  // namespace
}  // namespace embrec::models
