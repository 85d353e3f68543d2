// DSSRec: the latent seq2seq loss (Eq. 3) on hand-worked numbers and against finite differences, the confident
// intentions it keeps (Eq. 4), noise for an absent intention (Eq. 9), splits into past and reversed future, the loss
// over two simulated ranks, SASRec when the seq2seq weight is 0, checkpoints, a short training, and config errors.
#include "embrec/models/dssrec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "embrec/train/checkpoint.h"
#include "embrec/util/error.h"
#include "model_fixtures.h"

namespace embrec::models {
namespace {

namespace fs = std::filesystem;
using testing::make_model;

const std::string kEncoder = "dim = 8\nheads = 2\nlayers = 1\nmax_length = 8\ndropout = 0.0\nattention_dropout = 0.0\n";
const std::string kTiny = "name = 'dssrec'\nintentions = 2\n" + kEncoder;

double cosine(const torch::Tensor& a, const torch::Tensor& b) {
  return (torch::dot(a, b) / (a.norm() * b.norm())).item<double>();
}

// Four rows of shifted ids (item + 1), right-aligned; targets are the next items. Row 3 has one item and its target.
TensorBatch toy_batch() {
  TensorBatch batch;
  batch.users = torch::tensor({0, 1, 2, 3}, torch::kLong);
  batch.input = torch::tensor({{2, 3, 4, 5, 6, 7}, {0, 0, 9, 10, 11, 12}, {0, 0, 0, 4, 5, 6}, {0, 0, 0, 0, 0, 2}},
                              torch::kLong);
  batch.target = torch::tensor({{3, 4, 5, 6, 7, 8}, {0, 0, 10, 11, 12, 13}, {0, 0, 0, 5, 6, 7}, {0, 0, 0, 0, 0, 3}},
                               torch::kLong);
  batch.max_length = 8;
  return batch;
}

double part_of(const LossParts& loss, const std::string& name) {
  for (const auto& [part, value] : loss.parts)
    if (part == name) return value.item<double>();
  ADD_FAILURE() << "no loss part " << name;
  return 0.0;
}

TEST(Dssrec, Seq2seqLossIsEquationThreeOnHandWorkedNumbers) {
  // K = 1, D = 4 (sqrt(D) = 2), two sequences: s(a, b) = <a, b> / 2.
  auto past = torch::tensor({{{2.0, 0.0, 0.0, 0.0}}, {{0.0, 2.0, 0.0, 0.0}}}, torch::kDouble);
  auto future = torch::tensor({{{1.0, 1.0, 0.0, 0.0}}, {{0.0, 0.0, 1.0, 0.0}}}, torch::kDouble);
  Seq2seqOptions options;
  options.confidence = 1.0;  // keep both pairs: the mean of Eq. 3's two terms
  const Seq2seqLoss result = seq2seq_loss(past, future, torch::tensor({true, true}), options);
  // Row 0: s = 1 with its own future, 0 with the other -> -log(e / (e + 1)); row 1: 1 and 0 -> -log(1 / (e + 1)).
  const double e = std::exp(1.0);
  const double row0 = -std::log(e / (e + 1.0)), row1 = -std::log(1.0 / (e + 1.0));
  EXPECT_NEAR(result.pairs[0][0].item<double>(), row0, 1e-12);
  EXPECT_NEAR(result.pairs[1][0].item<double>(), row1, 1e-12);
  EXPECT_NEAR(result.loss.item<double>(), (row0 + row1) / 2.0, 1e-12);
  // The temperature divides the similarity; a row without a split is neither anchor nor negative.
  options.temperature = 0.5;
  const Seq2seqLoss sharper = seq2seq_loss(past, future, torch::tensor({true, false}), options);
  EXPECT_NEAR(sharper.loss.item<double>(), 0.0, 1e-12);  // row 0 alone: its own future is the only candidate
  EXPECT_FALSE(sharper.kept[1][0].item<bool>());
}

TEST(Dssrec, ConfidentSelectionKeepsThePairsThatShareAnIntention) {
  // Three sequences, K = 2, D = 8. Shared intentions: (0, 0), (1, 1), (2, 0) -- past and future point the same way.
  // The other pairs' past and future are orthogonal to everything, so their l_uk = log(6), the largest.
  auto unit = [](int64_t axis, double scale) {
    return torch::one_hot(torch::tensor(axis), 8).to(torch::kDouble) * scale;
  };
  auto past = torch::stack({torch::stack({unit(0, 4), unit(3, 1)}), torch::stack({unit(4, 1), unit(1, 4)}),
                            torch::stack({unit(2, 4), unit(5, 1)})});
  auto future = torch::stack({torch::stack({unit(0, 4), unit(6, 1)}), torch::stack({unit(7, 1), unit(1, 4)}),
                              torch::stack({unit(2, 4), (unit(6, 1) - unit(7, 1)) / std::sqrt(2.0)})});
  const auto valid = torch::tensor({true, true, true});
  const auto shared = torch::tensor({{true, false}, {false, true}, {true, false}});
  Seq2seqOptions options;
  options.confidence = 0.5;  // floor(0.5 * 3 * 2) = 3 pairs
  Seq2seqLoss confident = seq2seq_loss(past, future, valid, options);
  EXPECT_TRUE(torch::equal(confident.kept, shared)) << confident.kept << confident.pairs;
  EXPECT_NEAR(confident.pairs[0][1].item<double>(), std::log(6.0), 1e-9);
  EXPECT_NEAR(confident.loss.item<double>(), (confident.pairs * shared.to(torch::kDouble)).sum().item<double>() / 3.0,
              1e-12);
  options.confidence = 1.0 / 6.0;  // one pair: the most confident, (0, 0), (1, 1) and (2, 0) tie -> the first
  EXPECT_EQ(seq2seq_loss(past, future, valid, options).kept.sum().item<int64_t>(), 1);
  options.selection = IntentionSelection::Best;  // one intention per sequence: argmin_k l_uk
  EXPECT_TRUE(torch::equal(seq2seq_loss(past, future, valid, options).kept, shared));
}

TEST(Dssrec, Seq2seqLossGradientMatchesFiniteDifferences) {
  torch::manual_seed(3);
  const auto valid = torch::tensor({true, true, false, true, true});
  for (IntentionSelection selection : {IntentionSelection::Confident, IntentionSelection::Best}) {
    auto past = torch::randn({5, 3, 4}, torch::kDouble).requires_grad_();
    auto future = torch::randn({5, 3, 4}, torch::kDouble).requires_grad_();
    Seq2seqOptions options;
    options.temperature = 0.7;
    options.selection = selection;
    options.confidence = 0.4;
    auto loss = seq2seq_loss(past, future, valid, options).loss;
    auto grads = torch::autograd::grad({loss}, {past, future});
    const double h = 1e-6;
    double worst = 0.0;
    torch::NoGradGuard no_grad;
    for (int which = 0; which < 2; ++which) {
      torch::Tensor flat = (which == 0 ? past : future).detach().view({-1});
      const torch::Tensor analytic = grads[which].reshape({-1});
      for (int64_t k = 0; k < flat.numel(); ++k) {
        const double saved = flat[k].item<double>();
        flat[k] = saved + h;
        const double plus = seq2seq_loss(past, future, valid, options).loss.item<double>();
        flat[k] = saved - h;
        const double minus = seq2seq_loss(past, future, valid, options).loss.item<double>();
        flat[k] = saved;
        worst = std::max(worst, std::abs(analytic[k].item<double>() - (plus - minus) / (2 * h)));
      }
    }
    EXPECT_LT(worst, 1e-7) << "selection " << static_cast<int>(selection);
    EXPECT_GT(grads[0].abs().sum().item<double>(), 0.0);
    EXPECT_EQ(grads[0][2].abs().sum().item<double>(), 0.0) << "a row without a split trains nothing";
  }
}

TEST(Dssrec, ModelLossGradientMatchesFiniteDifferences) {
  auto model = make_model<Dssrec>("name = 'dssrec'\ndim = 4\nheads = 1\nlayers = 1\nmax_length = 5\nintentions = 2\n"
                                  "dropout = 0.0\nattention_dropout = 0.0\ntemperature = 0.5\n",
                                  3, 6);
  model->module().to(torch::kFloat64);
  model->module().eval();
  TensorBatch batch;
  batch.users = torch::tensor({0, 1, 2}, torch::kLong);
  batch.input = torch::tensor({{1, 2, 3, 4}, {0, 0, 5, 6}, {0, 2, 4, 6}}, torch::kLong);
  batch.target = torch::tensor({{2, 3, 4, 5}, {0, 0, 6, 1}, {0, 4, 6, 3}}, torch::kLong);
  ASSERT_EQ(model->loss(batch).parts.size(), 2u);
  EXPECT_LT(testing::parameter_gradient_error(*model, batch), 1e-6);
}

TEST(Dssrec, AnIntentionAbsentFromASequenceIsItsNoiseAlone) {
  // Eq. 7-9: prototypes c_1 = -c_0 and every position close to c_0, so p(1|i) ~ 0 and phi^(1) = LN5(beta_1).
  torch::manual_seed(2);
  IntentionLayer layer(16, 2, 6, 0.02);
  auto direction = torch::randn({16});
  {
    torch::NoGradGuard no_grad;
    layer->prototypes.copy_(torch::stack({direction, -direction}));
  }
  auto hidden = (direction.unsqueeze(0).unsqueeze(0) * 3.0 + 0.1 * torch::randn({2, 6, 16}));
  auto items = torch::tensor({{false, false, true, true, true, true}, {true, true, true, true, true, true}});
  auto query = torch::tensor({5, 3}, torch::kLong);
  torch::NoGradGuard no_grad;
  auto p = layer->intention_probabilities(hidden);
  EXPECT_GT(p.select(2, 0).min().item<double>(), 0.999);
  auto weights = layer->position_weights(hidden, items, query);
  EXPECT_TRUE(torch::allclose(weights.sum(1), torch::ones({2}), 1e-6, 1e-6));
  EXPECT_EQ(weights[0].narrow(0, 0, 2).abs().sum().item<double>(), 0.0) << "padding has no weight";
  EXPECT_EQ(weights[1].narrow(0, 4, 2).abs().sum().item<double>(), 0.0) << "positions after the query have none";
  for (SequenceSide side : {SequenceSide::Past, SequenceSide::Future}) {
    auto phi = layer->forward(hidden, items, query, side);
    auto beta = side == SequenceSide::Past ? layer->past_bias : layer->future_bias;
    auto noise = layer->output_norm(beta[1]);
    for (int64_t row = 0; row < 2; ++row) {
      EXPECT_GT(cosine(phi[row][1], noise), 0.99);
      EXPECT_GT(cosine(phi[row][0], layer->output_norm(direction)), 0.9) << "the present intention is its items";
    }
  }
  // The two sides' noise does not match: an absent intention cannot make past and future agree.
  EXPECT_LT(std::abs(cosine(layer->output_norm(layer->past_bias[1]), layer->output_norm(layer->future_bias[1]))), 0.9);
}

TEST(Dssrec, SplitsArePastAndReversedFutureSeededByBatchAndRow) {
  auto model = make_model<Dssrec>(kTiny, 4, 14);
  TensorBatch batch = toy_batch();
  const Splits a = model->make_splits(batch);
  const Splits b = model->make_splits(batch);
  EXPECT_EQ(a.split, b.split);
  EXPECT_TRUE(torch::equal(a.future_input, b.future_input));
  EXPECT_TRUE(torch::equal(a.valid, torch::tensor({true, true, true, true})));
  // Row r's sequence: its input items, then its last target.
  const std::vector<std::vector<int64_t>> sequences{{2, 3, 4, 5, 6, 7, 8}, {9, 10, 11, 12, 13}, {4, 5, 6, 7}, {2, 3}};
  const int64_t width = a.future_input.size(1);
  for (size_t r = 0; r < sequences.size(); ++r) {
    const auto& s = sequences[r];
    const int64_t t = a.split[r], items = static_cast<int64_t>(s.size());
    ASSERT_GE(t, 1);
    ASSERT_LE(t, items - 1);
    EXPECT_EQ(batch.input[r][a.past_column[r].item<int64_t>()].item<int64_t>(), s[t - 1]) << "x_t ends the past";
    for (int64_t j = 0; j < width; ++j) {
      const int64_t from_end = width - 1 - j;  // the last column is x_{t+1}, the one before x_{t+2}, ...
      const int64_t expected = t + from_end < items ? s[t + from_end] : 0;
      EXPECT_EQ(a.future_input[r][j].item<int64_t>(), expected) << "row " << r << " column " << j;
    }
  }
  // Another batch (or a rank whose rows start elsewhere in the global batch) draws other splits.
  bool differs = false;
  for (int64_t index = 1; index < 6 && !differs; ++index) {
    batch.batch_index = index;
    differs = model->make_splits(batch).split != a.split;
  }
  EXPECT_TRUE(differs);
  // "middle": t = floor(T / 2); a row of one item and no target has no split.
  auto middle = make_model<Dssrec>(kTiny + "split = 'middle'\n", 4, 14);
  batch.target[3][5] = 0;
  const Splits m = middle->make_splits(batch);
  EXPECT_EQ(m.split, (std::vector<int64_t>{3, 2, 2, 0}));
  EXPECT_TRUE(torch::equal(m.valid, torch::tensor({true, true, true, false})));
}


// Two ranks simulated in one process: each gather returns the rows of the other rank as the one-process pass had them
// (recorded call by call, constants as World::gather's), with this rank's own rows in place. Uneven shares (1 and 3
// rows) test the weighing; values and gradients weighed as the trainer does must equal one process'.
TEST(Dssrec, LossGatheredOverTwoRanksEqualsOneProcessLossOnTheSameBatch) {
  for (const std::string selection : {"confident", "best"}) {
    auto model = make_model<Dssrec>(kTiny + "selection = '" + selection + "'\n", 4, 14);
    model->module().eval();
    std::vector<torch::Tensor> parameters = model->module().parameters();
    auto gradients = [&] {
      std::vector<torch::Tensor> out;
      for (const torch::Tensor& p : parameters)
        out.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
      return out;
    };
    TensorBatch whole = toy_batch();
    const int64_t total = whole.input.size(0);
    model->module().zero_grad();
    const LossParts one = model->loss(whole);
    const double one_process = part_of(one, "seq2seq");
    one.parts.back().second.backward();
    const std::vector<torch::Tensor> expected_gradients = gradients();
    model->module().zero_grad();
    std::vector<torch::Tensor> recorded;
    whole.gather = [&](const torch::Tensor& rows) {
      recorded.push_back(rows.detach().clone());
      return Gathered{rows, 0};
    };
    EXPECT_NEAR(part_of(model->loss(whole), "seq2seq"), one_process, 1e-12);
    ASSERT_FALSE(recorded.empty());
    double combined = 0.0;
    for (int rank = 0; rank < 2; ++rank) {
      const int64_t begin = rank == 0 ? 0 : 1, end = rank == 0 ? 1 : total;
      TensorBatch share = toy_batch();
      for (torch::Tensor* t : {&share.users, &share.input, &share.target}) *t = t->slice(0, begin, end);
      share.first_row = begin;
      size_t call = 0;
      share.gather = [&](const torch::Tensor& local) {
        const torch::Tensor& all = recorded.at(call++);
        return Gathered{torch::cat({all.narrow(0, 0, begin), local, all.narrow(0, end, total - end)}), begin};
      };
      // As the trainer: each rank's loss and gradient weighed by its share of the sequences.
      const double weight = static_cast<double>(end - begin) / static_cast<double>(total);
      const LossParts part = model->loss(share);
      ASSERT_EQ(part.parts.back().first, "seq2seq");
      combined += part.parts.back().second.item<double>() * weight;
      (part.parts.back().second * weight).backward();  // gradients add up over the ranks in .grad
      EXPECT_EQ(call, recorded.size()) << "rank " << rank << " gathered as often as one process";
    }
    EXPECT_NEAR(combined, one_process, 1e-5) << selection;
    const std::vector<torch::Tensor> job_gradients = gradients();
    for (size_t p = 0; p < parameters.size(); ++p)
      EXPECT_TRUE(torch::allclose(job_gradients[p], expected_gradients[p], 1e-4, 1e-6))
          << selection << ", parameter " << p << ": largest difference "
          << (job_gradients[p] - expected_gradients[p]).abs().max().item<double>();
    EXPECT_GT(expected_gradients[0].abs().sum().item<double>(), 0.0);
    EXPECT_GT(one_process, 0.0);
  }
}

TEST(Dssrec, WithoutTheSeq2seqLossItIsExactlySasrec) {
  auto sasrec = make_model<Sasrec>("name = 'sasrec'\n" + kEncoder, 4, 14);
  auto off = make_model<Dssrec>(kTiny + "seq2seq_weight = 0.0\n", 4, 14);
  auto on = make_model<Dssrec>(kTiny, 4, 14);
  {
    torch::NoGradGuard no_grad;
    auto source = sasrec->module().named_parameters();
    for (Dssrec* model : {off.get(), on.get()})
      for (auto& p : model->parameters()->encoder->named_parameters()) p.value().copy_(source[p.key()]);
  }
  const TensorBatch batch = toy_batch();
  for (bool training : {false, true}) {
    sasrec->module().train(training);
    off->module().train(training);
    torch::manual_seed(5);
    auto expected = sasrec->loss(batch);
    torch::manual_seed(5);
    auto got = off->loss(batch);
    EXPECT_TRUE(torch::equal(expected.total, got.total));
    ASSERT_EQ(got.parts.size(), 1u);
  }
  // With the seq2seq loss on, ranking still uses SASRec's user vector (the last position) and item embedding.
  data::Sequences histories;
  const int32_t a[] = {1, 2, 3, 4, 5}, b[] = {7};
  histories.push_user(a, 5);
  histories.push_user(b, 1);
  const int32_t users[] = {1, 0};
  EXPECT_TRUE(on->encodes_histories());
  EXPECT_TRUE(torch::equal(on->user_vectors(histories, users, 2), sasrec->user_vectors(histories, users, 2)));
  EXPECT_TRUE(torch::equal(on->item_vectors(), sasrec->item_vectors()));
  EXPECT_EQ(on->loss(batch).parts.back().first, "seq2seq");
}

TEST(Dssrec, CheckpointRoundTripGivesIdenticalVectorsAndLoss) {
  auto saved = make_model<Dssrec>(kTiny, 4, 14, /*torch_seed=*/1);
  auto loaded = make_model<Dssrec>(kTiny, 4, 14, /*torch_seed=*/2);
  saved->module().eval();
  loaded->module().eval();
  const TensorBatch batch = toy_batch();
  data::Sequences histories;
  const int32_t a[] = {1, 2, 3, 4, 5}, b[] = {7, 9};
  histories.push_user(a, 5);
  histories.push_user(b, 2);
  const int32_t users[] = {0, 1};
  EXPECT_FALSE(torch::equal(saved->loss(batch).total, loaded->loss(batch).total));
  const std::string path =
      (fs::temp_directory_path() / ("embrec-dssrec-" + std::to_string(::getpid()) + ".pt")).string();
  train::save_module(saved->module(), path);
  train::load_module(loaded->module(), path);
  fs::remove(path);
  // The prototypes, recency vectors and the fixed noise beta travel with the weights.
  EXPECT_TRUE(torch::equal(saved->parameters()->intentions->past_bias, loaded->parameters()->intentions->past_bias));
  EXPECT_TRUE(torch::equal(saved->loss(batch).total, loaded->loss(batch).total));
  EXPECT_TRUE(torch::equal(saved->user_vectors(histories, users, 2), loaded->user_vectors(histories, users, 2)));
  EXPECT_TRUE(torch::equal(saved->item_vectors(), loaded->item_vectors()));
}

TEST(Dssrec, AShortTrainingOnSyntheticSequencesLowersBothLosses) {
  // 16 users in two groups; a user of group g walks group g's 8 items in a cycle from its own start, so the future
  // follows from the past.
  constexpr int64_t kUsers = 16, kLength = 8;
  TensorBatch batch;
  batch.users = torch::arange(kUsers, torch::kLong);
  batch.input = torch::zeros({kUsers, kLength}, torch::kLong);
  batch.target = torch::zeros({kUsers, kLength}, torch::kLong);
  for (int64_t u = 0; u < kUsers; ++u) {
    const int64_t group = u % 2, start = u / 2;
    for (int64_t j = 0; j <= kLength; ++j) {
      const int64_t item = group * 8 + (start + j) % 8 + 1;  // shifted ids
      if (j < kLength) batch.input[u][j] = item;
      if (j > 0) batch.target[u][j - 1] = item;
    }
  }
  batch.max_length = kLength;
  auto model = make_model<Dssrec>("name = 'dssrec'\nintentions = 2\nloss = 'softmax'\n" + kEncoder, kUsers, 16);
  auto evaluate = [&] {
    torch::NoGradGuard no_grad;
    model->module().eval();
    batch.batch_index = 0;
    const LossParts loss = model->loss(batch);
    model->module().train();
    return std::make_pair(part_of(loss, "sr"), part_of(loss, "seq2seq"));
  };
  const auto before = evaluate();
  torch::optim::Adam optimizer(model->module().parameters(), torch::optim::AdamOptions(1e-2));
  for (int64_t step = 0; step < 60; ++step) {
    batch.batch_index = step;  // other splits each step
    optimizer.zero_grad();
    model->loss(batch).total.backward();
    optimizer.step();
  }
  const auto after = evaluate();
  // sr starts near log(16); seq2seq near log(N K) = log(32) less what chance alignment gives.
  EXPECT_LT(after.first, 0.8 * before.first) << "sr " << before.first << " -> " << after.first;
  EXPECT_LT(after.second, 0.9 * before.second) << "seq2seq " << before.second << " -> " << after.second;
}

TEST(Dssrec, ConfigErrorsNameTheKey) {
  auto expect_error = [](const std::string& keys, const std::string& fragment) {
    const std::string message = testing::creation_error<Dssrec>("name = 'dssrec'\n" + keys, 3, 5);
    EXPECT_NE(message.find(fragment), std::string::npos) << keys << " -> " << message;
  };
  expect_error("intentions = 0\n", "'intentions' must be positive");
  expect_error("temperature = 0.0\n", "'temperature' must be positive");
  expect_error("seq2seq_weight = -1.0\n", "'seq2seq_weight'");
  expect_error("confidence = 1.5\n", "'confidence'");
  expect_error("confidence = 0.0\n", "'confidence'");
  expect_error("selection = 'best'\nconfidence = 0.5\n", "'confidence'");
  expect_error("selection = 'all'\n", "'selection'");
  expect_error("split = 'random'\n", "'split'");
  expect_error("intention = 4\n", "'intention'");
  expect_error("loss = 'bpr'\n", "'loss'");
  EXPECT_EQ(testing::creation_error<Dssrec>("name = 'dssrec'\nselection = 'best'\nsplit = 'middle'\n"), "(no error)");
}

TEST(Dssrec, ShippedConfigsAreSasrecOverlaysNamingOnlyTheirOwnKeys) {
  const std::string folder = std::string(EMBREC_SOURCE_DIR) + "/configs/";
  for (const std::string dataset : {"beauty", "sports", "ml-1m"}) {
    ConfigTable config = ConfigTable::parse_file(folder + "dssrec-" + dataset + ".toml");
    ConfigTable base = ConfigTable::parse_file(folder + "sasrec-" + dataset + ".toml");
    ConfigTable& model = config.sub("model");
    ConfigTable& base_model = base.sub("model");
    EXPECT_EQ(model.get("name", std::string()), "dssrec") << dataset;
    for (const char* key : {"dim", "layers", "heads", "max_length"})
      EXPECT_EQ(model.get(key, int64_t{0}), base_model.get(key, int64_t{0})) << dataset << ": " << key;
    EXPECT_EQ(model.get("loss", std::string()), base_model.get("loss", std::string())) << dataset;
    EXPECT_EQ(config.sub("train").get("batch_size", int64_t{0}), base.sub("train").get("batch_size", int64_t{0}));
    EXPECT_EQ(config.sub("data").get("path", std::string()), base.sub("data").get("path", std::string()));
    configure_model(model);  // every key known and valid
    model.finish();
  }
}

}  // namespace
}  // namespace embrec::models
