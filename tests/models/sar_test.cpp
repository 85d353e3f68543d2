// SAR: co-occurrence, the three similarities, time decay, affinity and scores equal hand-worked matrices on a toy
// log; checkpoints round-trip; config keys are checked.
#include "embrec/models/sar.h"

#include <gtest/gtest.h>

#include <sstream>

#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

constexpr int32_t kItems = 5;
constexpr int64_t kDay = 24 * 60 * 60;
constexpr int64_t kLatest = 100 * kDay;  // the latest training timestamp, T

std::unique_ptr<Model> make(const std::string& toml_text) {
  ConfigTable table = ConfigTable::parse_string(toml_text, "sar.toml");
  ModelContext context;
  context.item_count = kItems;
  context.user_count = 4;
  auto model = create_model(table, context);
  table.finish();
  return model;
}

// Four users, five items, each user's events in time order (item, rating, timestamp):
//   user 0: 0, 1, 2      rating 2, ten days before T
//   user 1: 0, 1         rating 1, at T - 1 day
//   user 2: 1, 2, 3      rating 1, at T - 1 day
//   user 3: 3 (rating 1, T - 2 days), 4 (rating 2, T - 1 day), 3 again (rating 4, at T)
// Binarised, A's rows are {0,1,2}, {0,1}, {1,2,3}, {3,4}, so C = A^T A is
//   [2 2 1 0 0]
//   [2 3 2 1 0]
//   [1 2 2 1 0]
//   [0 1 1 2 1]
//   [0 0 0 1 1]
data::Split toy_split() {
  data::Split split;
  auto add = [&](std::vector<int32_t> items, std::vector<float> ratings, std::vector<int64_t> timestamps) {
    split.train.push_user(items.data(), static_cast<int64_t>(items.size()), ratings.data(), timestamps.data());
  };
  add({0, 1, 2}, {2, 2, 2}, {kLatest - 10 * kDay, kLatest - 10 * kDay, kLatest - 10 * kDay});
  add({0, 1}, {1, 1}, {kLatest - kDay, kLatest - kDay});
  add({1, 2, 3}, {1, 1, 1}, {kLatest - kDay, kLatest - kDay, kLatest - kDay});
  add({3, 4, 3}, {1, 2, 4}, {kLatest - 2 * kDay, kLatest - kDay, kLatest});
  return split;
}

void expect_matrix(const CsrMatrix& matrix, const std::vector<std::vector<double>>& expected) {
  ASSERT_EQ(matrix.row_count(), static_cast<int32_t>(expected.size()));
  for (int32_t i = 0; i < matrix.row_count(); ++i) {
    for (int32_t j = 0; j < static_cast<int32_t>(expected[i].size()); ++j)
      EXPECT_NEAR(matrix.at(i, j), expected[i][j], 1e-6) << "at (" << i << ", " << j << ")";
    // Zeros are not stored.
    for (int64_t p = matrix.offsets[i]; p < matrix.offsets[i + 1]; ++p) EXPECT_NE(matrix.values[p], 0.0f);
  }
}

std::vector<float> scores_of(Model& model, const data::Split& split) {
  const int32_t users[] = {0, 1, 2, 3};
  std::vector<float> out(4 * kItems);
  model.score_block(split.train, users, 4, out.data());
  return out;
}

TEST(Sar, CooccurrenceCountsUsersSharingAPairOnce) {
  expect_matrix(item_cooccurrence(toy_split().train, kItems, 1), {{2, 2, 1, 0, 0},
                                                                  {2, 3, 2, 1, 0},
                                                                  {1, 2, 2, 1, 0},
                                                                  {0, 1, 1, 2, 1},
                                                                  {0, 0, 0, 1, 1}});
}

TEST(Sar, SupportThresholdDropsSmallCountsDiagonalIncluded) {
  // MS's threshold applies to every entry: item 4 (seen by one user) loses its own diagonal too.
  expect_matrix(item_cooccurrence(toy_split().train, kItems, 2), {{2, 2, 0, 0, 0},
                                                                  {2, 3, 2, 0, 0},
                                                                  {0, 2, 2, 0, 0},
                                                                  {0, 0, 0, 2, 0},
                                                                  {0, 0, 0, 0, 0}});
}

TEST(Sar, JaccardIsCountOverUnionWithUnitDiagonal) {
  // c_ij / (c_ii + c_jj - c_ij): e.g. (0, 1) = 2 / (2 + 3 - 2), (1, 3) = 1 / (3 + 2 - 1), (3, 4) = 1 / (2 + 1 - 1).
  const CsrMatrix cooccurrence = item_cooccurrence(toy_split().train, kItems, 1);
  expect_matrix(sar_similarity(cooccurrence, SarSimilarity::Jaccard), {{1, 2.0 / 3, 1.0 / 3, 0, 0},
                                                          {2.0 / 3, 1, 2.0 / 3, 1.0 / 4, 0},
                                                          {1.0 / 3, 2.0 / 3, 1, 1.0 / 3, 0},
                                                          {0, 1.0 / 4, 1.0 / 3, 1, 1.0 / 2},
                                                          {0, 0, 0, 1.0 / 2, 1}});
}

TEST(Sar, LiftIsCountOverProductOfCounts) {
  // c_ij / (c_ii c_jj): the diagonal is 1 / c_ii, as in MS.
  const CsrMatrix cooccurrence = item_cooccurrence(toy_split().train, kItems, 1);
  expect_matrix(sar_similarity(cooccurrence, SarSimilarity::Lift), {{1.0 / 2, 1.0 / 3, 1.0 / 4, 0, 0},
                                                       {1.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 6, 0},
                                                       {1.0 / 4, 1.0 / 3, 1.0 / 2, 1.0 / 4, 0},
                                                       {0, 1.0 / 6, 1.0 / 4, 1.0 / 2, 1.0 / 2},
                                                       {0, 0, 0, 1.0 / 2, 1}});
  expect_matrix(sar_similarity(cooccurrence, SarSimilarity::Cooccurrence), {{2, 2, 1, 0, 0},
                                                               {2, 3, 2, 1, 0},
                                                               {1, 2, 2, 1, 0},
                                                               {0, 1, 1, 2, 1},
                                                               {0, 0, 0, 1, 1}});
}

TEST(Sar, TimeDecayHalvesPerHalfLifeAndCapsAtOne) {
  const double half_life = 30.0 * kDay;
  EXPECT_DOUBLE_EQ(time_decay_weight(kLatest, kLatest, half_life), 1.0);
  EXPECT_DOUBLE_EQ(time_decay_weight(kLatest - 30 * kDay, kLatest, half_life), 0.5);
  EXPECT_DOUBLE_EQ(time_decay_weight(kLatest - 60 * kDay, kLatest, half_life), 0.25);
  EXPECT_DOUBLE_EQ(time_decay_weight(kLatest + kDay, kLatest, half_life), 1.0);  // after T: not boosted
}

TEST(Sar, AffinitySumsDecayedRatingsOfRepeatedEvents) {
  SarConfig config;
  config.time_decay = true;
  config.time_decay_days = 1.0;
  // User 3: item 3 = 1 x 2^-2 + 4 x 1 = 4.25, item 4 = 2 x 2^-1 = 1. User 0: 2 x 2^-10 each. Users 1, 2: 1 x 1/2.
  expect_matrix(sar_affinity(toy_split().train, kItems, config), {{2.0 / 1024, 2.0 / 1024, 2.0 / 1024, 0, 0},
                                                                  {0.5, 0.5, 0, 0, 0},
                                                                  {0, 0.5, 0.5, 0.5, 0},
                                                                  {0, 0, 0, 4.25, 1}});
  config.use_ratings = false;
  config.time_decay = false;
  expect_matrix(sar_affinity(toy_split().train, kItems, config), {{1, 1, 1, 0, 0},
                                                                  {1, 1, 0, 0, 0},
                                                                  {0, 1, 1, 1, 0},
                                                                  {0, 0, 0, 2, 1}});
}

TEST(Sar, TimeDecayWithoutTimestampsIsAnError) {
  data::Sequences train;
  const int32_t items[] = {0, 1};
  train.push_user(items, 2);
  SarConfig config;
  config.time_decay = true;
  EXPECT_THROW(sar_affinity(train, kItems, config), Error);
}

TEST(Sar, ScoresAreAffinityTimesSimilarity) {
  const data::Split split = toy_split();
  for (const std::string storage : {"dense", "sparse"}) {
    auto model = make("name = 'sar'\nsimilarity = 'jaccard'\ntime_decay = true\ntime_decay_days = 1\nstorage = '" +
                      storage + "'\n");
    model->fit(split);
    EXPECT_EQ(dynamic_cast<Sar&>(*model).dense_similarity(), storage == "dense");
    const std::vector<float> scores = scores_of(*model, split);
    // User 3: 4.25 x Jaccard row 3 + 1 x Jaccard row 4.
    const double expected[kItems] = {0, 4.25 / 4, 4.25 / 3, 4.25 + 0.5, 4.25 / 2 + 1};
    for (int32_t j = 0; j < kItems; ++j)
      EXPECT_NEAR(scores[3 * kItems + j], expected[j], 1e-5) << storage << ", item " << j;

    // Unit weights and plain counts: user 0's scores are the sums of C's rows 0, 1 and 2.
    auto counts = make("name = 'sar'\nsimilarity = 'cooccurrence'\nuse_ratings = false\nstorage = '" + storage + "'\n");
    counts->fit(split);
    const std::vector<float> count_scores = scores_of(*counts, split);
    const double expected_counts[kItems] = {5, 7, 5, 2, 0};
    for (int32_t j = 0; j < kItems; ++j)
      EXPECT_FLOAT_EQ(count_scores[j], expected_counts[j]) << storage << ", item " << j;
  }
}

TEST(Sar, AutoStorageIsDenseForDenseSimilarities) {
  // Jaccard on the toy log is 17 of 25 entries non-zero (68 %); with threshold 3 only c_11 remains (4 %).
  auto model = make("name = 'sar'\n");
  model->fit(toy_split());
  EXPECT_TRUE(dynamic_cast<Sar&>(*model).dense_similarity());
  auto sparse = make("name = 'sar'\nsupport_threshold = 3\n");
  sparse->fit(toy_split());
  EXPECT_FALSE(dynamic_cast<Sar&>(*sparse).dense_similarity());
}

TEST(Sar, CheckpointRoundTripScoresIdentically) {
  const data::Split split = toy_split();
  for (const std::string storage : {"dense", "sparse"}) {
    const std::string config =
        "name = 'sar'\nsimilarity = 'lift'\ntime_decay = true\ntime_decay_days = 3\nstorage = '" + storage + "'\n";
    auto fitted = make(config);
    fitted->fit(split);
    torch::serialize::OutputArchive output;
    fitted->module().save(output);
    std::stringstream stream;
    output.save_to(stream);

    auto loaded = make(config);  // never fitted: everything it scores with comes from the archive
    torch::serialize::InputArchive input;
    input.load_from(stream);
    loaded->module().load(input);
    EXPECT_EQ(scores_of(*loaded, split), scores_of(*fitted, split)) << storage;
  }
}

TEST(Sar, ScoringBeforeFitIsAnError) {
  auto model = make("name = 'sar'\n");
  EXPECT_THROW(scores_of(*model, toy_split()), Error);
}

TEST(Sar, UnknownOrInvalidKeysAreErrorsNamingTheKey) {
  auto message_of = [](const std::string& text) -> std::string { return error_of([&] { make(text); }); };
  EXPECT_NE(message_of("name = 'sar'\nsimilarty = 'jaccard'\n").find("similarty"), std::string::npos);
  EXPECT_NE(message_of("name = 'sar'\nsimilarity = 'cosine'\n").find("similarity"), std::string::npos);
  EXPECT_NE(message_of("name = 'sar'\nsupport_threshold = 0\n").find("support_threshold"), std::string::npos);
  EXPECT_NE(message_of("name = 'sar'\ntime_decay_days = 0\n").find("time_decay_days"), std::string::npos);
  EXPECT_NE(message_of("name = 'sar'\nstorage = 'csr'\n").find("storage"), std::string::npos);
}

}  // namespace
}  // namespace embrec::models
