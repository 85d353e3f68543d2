// Pop: hand-counted scores, refitting counts afresh, and the counts travelling in a checkpoint.
#include "embrec/models/pop.h"

#include <gtest/gtest.h>

#include <vector>

namespace embrec::models {
namespace {

std::unique_ptr<Model> make(int32_t items) {
  ConfigTable table = ConfigTable::parse_string("name = 'pop'\n", "test.toml");
  ModelContext context;
  context.item_count = items;
  context.user_count = 3;
  std::unique_ptr<Model> model = create_model(table, context);
  table.finish();
  return model;
}

// Item 2 is in three training lists, item 0 in two, item 3 in one, item 1 in none.
data::Split toy_split() {
  data::Split split;
  for (const std::vector<int32_t>& items : {std::vector<int32_t>{0, 2}, {2, 3}, {2, 0}})
    split.train.push_user(items.data(), static_cast<int64_t>(items.size()));
  return split;
}

std::vector<float> scores_of(Model& model) {
  std::vector<float> out(2 * 4);
  const int32_t users[] = {0, 1};
  model.score_block(data::Sequences{}, users, 2, out.data());
  return out;
}

TEST(Pop, ScoresAreTrainingCountsForEveryUser) {
  auto model = make(4);
  model->fit(toy_split());
  EXPECT_EQ(scores_of(*model), (std::vector<float>{2, 0, 3, 1, 2, 0, 3, 1}));
  model->fit(toy_split());  // fitting again counts afresh, it does not add up
  EXPECT_EQ(scores_of(*model), (std::vector<float>{2, 0, 3, 1, 2, 0, 3, 1}));
}

TEST(Pop, CheckpointRoundTripScoresIdentically) {
  auto saved = make(4);
  saved->fit(toy_split());
  torch::serialize::OutputArchive out;
  saved->module().save(out);
  std::stringstream bytes;
  out.save_to(bytes);
  auto loaded = make(4);  // not fitted: everything comes from the checkpoint
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  loaded->module().load(in);
  EXPECT_EQ(scores_of(*loaded), scores_of(*saved));
}

}  // namespace
}  // namespace embrec::models
