// ItemKNN: shrunk cosine similarity and top-N truncation equal hand-worked values on a toy log; scores sum the
// neighbours of distinct history items; checkpoints round-trip; config keys are checked.
#include "embrec/models/itemknn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

constexpr int32_t kItems = 5;

std::unique_ptr<Model> make(const std::string& toml_text) {
  ConfigTable table = ConfigTable::parse_string(toml_text, "itemknn.toml");
  ModelContext context;
  context.item_count = kItems;
  context.user_count = 4;
  auto model = create_model(table, context);
  table.finish();
  return model;
}

// Users {0,1,2}, {0,1}, {1,2,3}, {3,4,3}: the co-occurrence diagonal is (2, 3, 2, 2, 1) and
//   c01 = 2, c02 = 1, c12 = 2, c13 = 1, c23 = 1, c34 = 1.
data::Split toy_split() {
  data::Split split;
  for (std::vector<int32_t> items : std::vector<std::vector<int32_t>>{{0, 1, 2}, {0, 1}, {1, 2, 3}, {3, 4, 3}})
    split.train.push_user(items.data(), static_cast<int64_t>(items.size()));
  return split;
}

// With shrink 1: c_ij / (sqrt(c_ii c_jj) + 1).
const double kA = 2 / (std::sqrt(6.0) + 1);  // (0,1), (1,2): 0.5798
const double kB = 1 / (std::sqrt(4.0) + 1);  // (0,2), (2,3): 1/3
const double kC = 1 / (std::sqrt(6.0) + 1);  // (1,3): 0.2899
const double kD = 1 / (std::sqrt(2.0) + 1);  // (3,4): 0.4142

void expect_matrix(const CsrMatrix& matrix, const std::vector<std::vector<double>>& expected) {
  ASSERT_EQ(matrix.row_count(), static_cast<int32_t>(expected.size()));
  for (int32_t i = 0; i < matrix.row_count(); ++i)
    for (int32_t j = 0; j < kItems; ++j)
      EXPECT_NEAR(matrix.at(i, j), expected[i][j], 1e-6) << "at (" << i << ", " << j << ")";
}

TEST(ItemKnn, CosineWithShrinkageExcludesTheItemItself) {
  const CsrMatrix cooccurrence = item_cooccurrence(toy_split().train, kItems, 1);
  expect_matrix(itemknn_similarity(cooccurrence, 100, 1.0), {{0, kA, kB, 0, 0},
                                                              {kA, 0, kA, kC, 0},
                                                              {kB, kA, 0, kB, 0},
                                                              {0, kC, kB, 0, kD},
                                                              {0, 0, 0, kD, 0}});
  // Without shrinkage it is the plain cosine: (0, 1) = 2 / sqrt(6).
  EXPECT_NEAR(itemknn_similarity(cooccurrence, 100, 0.0).at(0, 1), 2 / std::sqrt(6.0), 1e-6);
}

TEST(ItemKnn, KeepsTheTopNeighboursTiesToTheLowerItem) {
  // Two per row: row 1 drops (1,3) = 0.29; row 2 has 0.58 then a tie at 1/3 between items 0 and 3, kept: 0;
  // row 3 drops (3,1) = 0.29.
  const CsrMatrix cooccurrence = item_cooccurrence(toy_split().train, kItems, 1);
  expect_matrix(itemknn_similarity(cooccurrence, 2, 1.0), {{0, kA, kB, 0, 0},
                                                            {kA, 0, kA, 0, 0},
                                                            {kB, kA, 0, 0, 0},
                                                            {0, 0, kB, 0, kD},
                                                            {0, 0, 0, kD, 0}});
  EXPECT_EQ(itemknn_similarity(cooccurrence, 1, 1.0).nonzeros(), kItems);
}

TEST(ItemKnn, ScoresSumNeighboursOfDistinctHistoryItems) {
  auto model = make("name = 'itemknn'\nneighbours = 2\nshrink = 1.0\n");
  model->fit(toy_split());
  // Histories differ from the training lists: scores follow the histories given, repeats counted once.
  data::Sequences histories;
  for (std::vector<int32_t> items : std::vector<std::vector<int32_t>>{{0, 1, 2, 1}, {4}})
    histories.push_user(items.data(), static_cast<int64_t>(items.size()));
  const int32_t users[] = {0, 1};
  std::vector<float> scores(2 * kItems);
  model->score_block(histories, users, 2, scores.data());
  // User 0: rows 0, 1, 2 of the top-2 matrix summed. User 1: row 4.
  const double expected[2 * kItems] = {kA + kB, kA + kA, kB + kA, 0, 0, 0, 0, 0, kD, 0};
  for (int32_t j = 0; j < 2 * kItems; ++j) EXPECT_NEAR(scores[j], expected[j], 1e-6) << "entry " << j;
}

TEST(ItemKnn, CheckpointRoundTripScoresIdentically) {
  const data::Split split = toy_split();
  const std::string config = "name = 'itemknn'\nneighbours = 2\nshrink = 0.5\n";
  auto fitted = make(config);
  fitted->fit(split);
  torch::serialize::OutputArchive output;
  fitted->module().save(output);
  std::stringstream stream;
  output.save_to(stream);

  auto loaded = make(config);  // never fitted
  torch::serialize::InputArchive input;
  input.load_from(stream);
  loaded->module().load(input);
  const int32_t users[] = {0, 1, 2, 3};
  std::vector<float> expected(4 * kItems), actual(4 * kItems);
  fitted->score_block(split.train, users, 4, expected.data());
  loaded->score_block(split.train, users, 4, actual.data());
  EXPECT_EQ(actual, expected);
  EXPECT_GT(expected[0 * kItems + 1], 0.0f);
}

TEST(ItemKnn, UnknownOrInvalidKeysAreErrorsNamingTheKey) {
  auto message_of = [](const std::string& text) -> std::string { return error_of([&] { make(text); }); };
  EXPECT_NE(message_of("name = 'itemknn'\nneighbors = 10\n").find("neighbors"), std::string::npos);
  EXPECT_NE(message_of("name = 'itemknn'\nneighbours = 0\n").find("neighbours"), std::string::npos);
  EXPECT_NE(message_of("name = 'itemknn'\nshrink = -1\n").find("shrink"), std::string::npos);
}

}  // namespace
}  // namespace embrec::models
