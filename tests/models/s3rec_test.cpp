// S3-Rec: the two loss forms on hand-worked numbers and against finite differences, the masked and segment views,
// the pre-training samples, the attributes taken from the item features, and a checkpoint round trip.
#include "embrec/models/s3rec.h"

#include "model_fixtures.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <unistd.h>

#include "embrec/train/checkpoint.h"
#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

double softplus(double x) { return std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

torch::Tensor doubles(std::vector<double> values, std::vector<int64_t> shape) {
  return torch::tensor(values, torch::kFloat64).view(shape);
}

TEST(S3rec, AttributePredictionLossIsBinaryCrossEntropyOverEveryAttribute) {
  // Two rows, three attributes; row 0's item has attribute 0, row 1's item attribute 2. Logits (context . attribute):
  // row 0 = [2, 0, 1], row 1 = [0, 2, 2].
  auto context = doubles({1, 0, 0, 2}, {2, 2});
  auto attributes = doubles({2, 0, 0, 1, 1, 1}, {3, 2});
  auto loss = attribute_prediction_loss(context, attributes, torch::tensor({0, 1}, torch::kLong),
                                        torch::tensor({0, 2}, torch::kLong));
  // Row 0: -log s(2) - log(1 - s(0)) - log(1 - s(1)) = 0.126928 + 0.693147 + 1.313262;
  // row 1: -log(1 - s(0)) - log(1 - s(2)) - log s(2) = 0.693147 + 2.126928 + 0.126928. Sum 5.080340.
  const double expected = -std::log(sigmoid(2)) - std::log(1 - sigmoid(0)) - std::log(1 - sigmoid(1)) -
                          std::log(1 - sigmoid(0)) - std::log(1 - sigmoid(2)) - std::log(sigmoid(2));
  EXPECT_NEAR(expected, 5.080340, 1e-6);
  EXPECT_NEAR(loss.item<double>(), expected, 1e-12);
}

TEST(S3rec, PairwisePredictionLossComparesSigmoidScoresOfPositiveAndNegative) {
  // f(c, p) = s(2) = 0.880797, f(c, n) = s(0) = 0.5: -log s(0.380797) = log(1 + e^-0.380797) = 0.520766 for row 0;
  // row 1 has the two swapped: -log s(-0.380797) = 0.901563.
  auto context = doubles({1, 0, 1, 0}, {2, 2});
  auto positive = doubles({2, 0, 0, 3}, {2, 2});
  auto negative = doubles({0, 3, 2, 0}, {2, 2});
  const double gap = sigmoid(2) - sigmoid(0);
  EXPECT_NEAR(softplus(-gap), 0.520766, 1e-6);
  EXPECT_NEAR(softplus(gap), 0.901563, 1e-6);
  EXPECT_NEAR(pairwise_prediction_loss(context, positive, negative).item<double>(), softplus(-gap) + softplus(gap),
              1e-12);
}

// Largest |autograd - central difference| of loss(inputs) over every entry of every input.
double input_gradient_error(std::vector<torch::Tensor> inputs,
                            const std::function<torch::Tensor(const std::vector<torch::Tensor>&)>& loss) {
  for (torch::Tensor& input : inputs) input.requires_grad_(true);
  loss(inputs).backward();
  const double h = 1e-6;
  double worst = 0.0;
  torch::NoGradGuard no_grad;
  for (torch::Tensor& input : inputs) {
    torch::Tensor flat = input.detach().view({-1});
    const torch::Tensor analytic = input.grad().view({-1});
    for (int64_t k = 0; k < flat.numel(); ++k) {
      const double saved = flat[k].item<double>();
      flat[k] = saved + h;
      const double plus = loss(inputs).item<double>();
      flat[k] = saved - h;
      const double minus = loss(inputs).item<double>();
      flat[k] = saved;
      worst = std::max(worst, std::abs(analytic[k].item<double>() - (plus - minus) / (2 * h)));
    }
  }
  return worst;
}

TEST(S3rec, LossGradientsMatchFiniteDifferences) {
  torch::manual_seed(3);
  auto rows = torch::tensor({0, 0, 2, 3}, torch::kLong), attribute_ids = torch::tensor({1, 4, 0, 4}, torch::kLong);
  const double attribute_error = input_gradient_error(
      {torch::randn({4, 3}, torch::kFloat64), torch::randn({5, 3}, torch::kFloat64)},
      [&](const std::vector<torch::Tensor>& x) { return attribute_prediction_loss(x[0], x[1], rows, attribute_ids); });
  EXPECT_LT(attribute_error, 1e-7);
  const double pairwise_error = input_gradient_error(
      {torch::randn({4, 3}, torch::kFloat64), torch::randn({4, 3}, torch::kFloat64),
       torch::randn({4, 3}, torch::kFloat64)},
      [](const std::vector<torch::Tensor>& x) { return pairwise_prediction_loss(x[0], x[1], x[2]); });
  EXPECT_LT(pairwise_error, 1e-7);
}

TEST(S3rec, MasksAboutMaskPOfTheItemsAndAlwaysTheLastWithNegativesOutsideTheSample) {
  std::vector<int32_t> items(50), long_sequence(200);
  for (int32_t t = 0; t < 50; ++t) items[t] = 2 * t;  // even items; the odd ones are the only possible negatives
  for (int32_t t = 0; t < 200; ++t) long_sequence[t] = t % 100;
  int64_t masked = 0, positions = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    const PretrainViews v = make_pretrain_views(items.data(), 50, long_sequence, 100, 0.2, seed);
    ASSERT_EQ(v.masked_items.size(), 50u);
    EXPECT_EQ(v.masked_items.back(), 101);  // the mask token, item_count + 1
    for (size_t t = 0; t < 50; ++t) {
      EXPECT_EQ(v.items[t], items[t] + 1);
      if (v.masked_items[t] == 101) {
        EXPECT_EQ(v.negative_items[t] % 2, 0) << "negative " << v.negative_items[t] - 1 << " is in the sample";
        EXPECT_GE(v.negative_items[t], 1);
        EXPECT_LE(v.negative_items[t], 100);
      } else {
        EXPECT_EQ(v.masked_items[t], v.items[t]);
        EXPECT_EQ(v.negative_items[t], v.items[t]);
      }
      if (t + 1 < 50) {
        masked += v.masked_items[t] == 101 ? 1 : 0;
        ++positions;
      }
    }
  }
  // 98,000 draws at p = 0.2: sd 0.0013.
  EXPECT_NEAR(static_cast<double>(masked) / positions, 0.2, 0.006);
  // mask_p = 0 masks the last item only.
  const PretrainViews none = make_pretrain_views(items.data(), 50, long_sequence, 100, 0.0, 1);
  EXPECT_EQ(std::count(none.masked_items.begin(), none.masked_items.end(), 101), 1);
}

TEST(S3rec, SegmentMaskingHidesOneContiguousSegmentOfAtMostHalfTheSample) {
  std::vector<int32_t> items(10), long_sequence(30);
  for (int32_t t = 0; t < 10; ++t) items[t] = t;
  for (int32_t t = 0; t < 30; ++t) long_sequence[t] = 10 + t;  // negatives' items: 10..39, none in the sample
  std::set<int64_t> lengths, starts;
  for (uint64_t seed = 0; seed < 500; ++seed) {
    const PretrainViews v = make_pretrain_views(items.data(), 10, long_sequence, 40, 0.2, seed);
    ASSERT_TRUE(v.has_segment);
    const int64_t start = v.segment_start, length = v.segment_length;
    ASSERT_GE(length, 1);
    ASSERT_LE(length, 5);
    ASSERT_LE(start + length, 10);
    lengths.insert(length);
    starts.insert(start);
    // Masked in the context exactly on [start, start + length); the positive segment is the rest's complement.
    for (int64_t t = 0; t < 10; ++t) {
      const bool inside = t >= start && t < start + length;
      EXPECT_EQ(v.segment_context[t], inside ? 41 : t + 1) << seed << " " << t;
      EXPECT_EQ(v.positive_segment[t], inside ? t + 1 : 41) << seed << " " << t;
      if (!inside) EXPECT_EQ(v.negative_segment[t], 41);
    }
    // The negative segment is a contiguous slice of the long sequence.
    const int64_t first = v.negative_segment[start] - 1 - 10;
    ASSERT_GE(first, 0);
    ASSERT_LE(first + length, 30);
    for (int64_t t = 0; t < length; ++t) EXPECT_EQ(v.negative_segment[start + t], long_sequence[first + t] + 1);
  }
  EXPECT_EQ(lengths, (std::set<int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(starts.size(), 10u);  // every start 0..9 occurs (length 1 may start at 9)
  const PretrainViews one = make_pretrain_views(items.data(), 1, long_sequence, 40, 0.2, 3);
  EXPECT_FALSE(one.has_segment);
  EXPECT_EQ(one.masked_items, (std::vector<int64_t>{41}));
}

// Eight items with attributes in two fields: "tag" (multi-valued: t{i % 3}, and "even" for even items) and "year"
// (single-valued, y{i % 2}); three users' training sequences.
struct AttributeData {
  data::Dataset dataset;
  data::Split split;
  explicit AttributeData(bool features = true) {
    for (int i = 0; i < 8; ++i) dataset.items.get_or_add("i" + std::to_string(i));
    if (features) {
      dataset.item_features.fields = {"tag", "year"};
      dataset.item_features.multi_valued = {1, 0};
      for (int i = 0; i < 8; ++i) {
        dataset.item_features.values.push_back("t" + std::to_string(i % 3));
        if (i % 2 == 0) dataset.item_features.values.push_back("even");
        dataset.item_features.offsets.push_back(static_cast<int64_t>(dataset.item_features.values.size()));
        dataset.item_features.values.push_back("y" + std::to_string(i % 2));
        dataset.item_features.offsets.push_back(static_cast<int64_t>(dataset.item_features.values.size()));
      }
    }
    const std::vector<std::vector<int32_t>> users = {{0, 1, 2}, {3, 4, 5, 6, 7, 0, 1, 2}, {2, 5}};
    for (size_t u = 0; u < users.size(); ++u) {
      dataset.users.get_or_add("u" + std::to_string(u));
      dataset.interactions.push_user(users[u].data(), static_cast<int64_t>(users[u].size()));
      split.valid.push_user(nullptr, 0);
      split.test.push_user(nullptr, 0);
    }
    split.method = "none";
    split.train = dataset.interactions;
  }
};

const char* kTinyEncoder = "name = 's3rec'\ndim = 4\nheads = 1\nlayers = 1\nmax_length = 6\ndropout = 0.0\n"
                           "attention_dropout = 0.0\n";

std::unique_ptr<S3rec> make_s3rec(const AttributeData& data, const std::string& extra = "", uint64_t seed = 1) {
  ConfigTable table = ConfigTable::parse_string(std::string(kTinyEncoder) + extra, "test.toml");
  ModelContext context;
  context.user_count = data.dataset.user_count();
  context.item_count = data.dataset.item_count();
  context.dataset = &data.dataset;
  context.split = &data.split;
  torch::manual_seed(seed);
  std::unique_ptr<Model> model = create_model(table, context);
  table.finish();
  return std::unique_ptr<S3rec>(dynamic_cast<S3rec*>(model.release()));
}

TEST(S3rec, SamplesArePrefixesOfEachUsersTrainingWindow) {
  const AttributeData data;
  auto model = make_s3rec(data);
  // Windows of max_length 6: user 0 all 3 items, user 1 its last 6 (5, 6, 7, 0, 1, 2), user 2 both: 3 + 6 + 2.
  ASSERT_EQ(model->pretrain_sample_count(), 11);
  EXPECT_EQ(model->sample_views(2, 0).items, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(model->sample_views(3, 0).items, (std::vector<int64_t>{6}));
  EXPECT_EQ(model->sample_views(8, 0).items, (std::vector<int64_t>{6, 7, 8, 1, 2, 3}));
  EXPECT_EQ(model->sample_views(10, 0).items, (std::vector<int64_t>{3, 6}));
  // The draws depend on (epoch, sample) only.
  EXPECT_EQ(model->sample_views(8, 4).masked_items, model->sample_views(8, 4).masked_items);
}

TEST(S3rec, AttributesAreTheChosenFieldsValues) {
  const AttributeData data;
  EXPECT_EQ(make_s3rec(data)->attribute_count(), 6);  // t0 t1 t2 even y0 y1
  EXPECT_EQ(make_s3rec(data, "attribute_fields = ['tag']")->attribute_count(), 4);
  const std::string unknown_field = error_of([&] { make_s3rec(data, "attribute_fields = ['genre']"); });
  EXPECT_NE(unknown_field.find("'genre'"), std::string::npos) << unknown_field;
  EXPECT_NE(unknown_field.find("tag, year"), std::string::npos) << unknown_field;
  const std::string no_features = error_of([] { make_s3rec(AttributeData(false)); });
  EXPECT_NE(no_features.find("item_features"), std::string::npos) << no_features;
}

// The pre-training loss of fixed samples as a model's loss(), for the finite-difference helper.
class PretrainLoss final : public Model {
 public:
  PretrainLoss(S3rec& inner, std::vector<int32_t> samples) : inner_(inner), samples_(std::move(samples)) {}
  std::string name() const override { return "s3rec-pretrain"; }
  torch::nn::Module& module() override { return inner_.module(); }
  LossParts loss(const TensorBatch&) override { return inner_.pretrain_loss(samples_, 1); }

 private:
  S3rec& inner_;
  std::vector<int32_t> samples_;
};

TEST(S3rec, PretrainingLossGradientMatchesFiniteDifferencesInEveryParameter) {
  const AttributeData data;
  auto model = make_s3rec(data, "attribute_fields = ['tag']");
  model->module().to(torch::kFloat64);
  PretrainLoss loss(*model, {0, 2, 5, 8, 10});
  const LossParts parts = loss.loss({});
  ASSERT_EQ(parts.parts.size(), 4u);
  for (const auto& [name, value] : parts.parts) EXPECT_GT(value.item<double>(), 0.0) << name;
  EXPECT_LT(testing::parameter_gradient_error(loss, {}), 1e-6);
}

TEST(S3rec, ObjectiveWeightsScaleTheirParts) {
  const AttributeData data;
  auto model = make_s3rec(data);
  model->module().eval();
  const LossParts base = model->pretrain_loss({1, 4, 8}, 0);
  S3recPretrainConfig config;
  config.aap_weight = 0.0, config.mip_weight = 2.0, config.map_weight = 0.0, config.sp_weight = 3.0;
  model->set_pretrain_config(config);
  const LossParts weighted = model->pretrain_loss({1, 4, 8}, 0);
  const double mip = base.parts[1].second.item<double>(), sp = base.parts[3].second.item<double>();
  EXPECT_NEAR(weighted.total.item<double>(), 2.0 * mip + 3.0 * sp, 1e-5);
}

TEST(S3rec, PretrainingAttendsBothWaysAndLeavesTheEncoderCausalForFineTuning) {
  const AttributeData data;
  auto model = make_s3rec(data);
  const int32_t users[] = {0, 1, 2};
  const torch::Tensor before = model->user_vectors(data.split.train, users, 3);
  (void)model->pretrain_loss({0, 1, 2}, 0);
  EXPECT_TRUE(model->encoder()->causal);
  EXPECT_TRUE(torch::equal(before, model->user_vectors(data.split.train, users, 3)));
  // A bidirectional encoder sees the later items: the first position's output changes when they do; causal does not.
  auto& encoder = *model->encoder();
  encoder.eval();
  auto a = torch::tensor({{1, 2, 3}}, torch::kLong), b = torch::tensor({{1, 5, 6}}, torch::kLong);
  EXPECT_TRUE(torch::allclose(encoder.forward(a)[0][0], encoder.forward(b)[0][0]));
  encoder.causal = false;
  EXPECT_FALSE(torch::allclose(encoder.forward(a)[0][0], encoder.forward(b)[0][0]));
  encoder.causal = true;
}

TEST(S3rec, RoundTripsThroughACheckpointAndAnExportsEncoderState) {
  const AttributeData data;
  auto model = make_s3rec(data, "", 1);
  {
    torch::optim::Adam optimizer(model->module().parameters(), torch::optim::AdamOptions(0.05));
    for (int step = 0; step < 3; ++step) {
      optimizer.zero_grad();
      model->pretrain_loss({0, 3, 8, 10}, step).total.backward();
      optimizer.step();
    }
  }
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("embrec-s3rec-" + std::to_string(::getpid()) + ".pt")).string();
  train::save_module(model->module(), path);
  auto loaded = make_s3rec(data, "", 99);
  train::load_module(loaded->module(), path);
  const int32_t users[] = {0, 1, 2};
  EXPECT_TRUE(torch::equal(model->item_vectors(), loaded->item_vectors()));
  EXPECT_TRUE(torch::equal(model->user_vectors(data.split.train, users, 3),
                           loaded->user_vectors(data.split.train, users, 3)));
  model->module().eval();
  loaded->module().eval();
  EXPECT_TRUE(torch::equal(model->pretrain_loss({1, 9}, 5).total, loaded->pretrain_loss({1, 9}, 5).total));

  // An export rebuilds the encoder from its config and encoder_state() alone.
  ConfigTable table = ConfigTable::parse_string(kTinyEncoder, "test.toml");
  ModelContext context;
  context.item_count = 8;
  context.encoder_state = model->encoder_state();
  auto rebuilt = create_model(table, context);
  train::load_module(rebuilt->module(), path);
  EXPECT_TRUE(torch::equal(model->user_vectors(data.split.train, users, 3),
                           rebuilt->user_vectors(data.split.train, users, 3)));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace embrec::models
