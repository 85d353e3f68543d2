// Evaluating embedding models through embrec's Faiss item index: a flat inner-product index gives the exact
// ranking's metrics, and a cosine index ranks by the L2-normalised item vectors. News stages: per-impression metrics
// of embedding and count-based models.
#include "embrec/models/evaluate.h"

#include <gtest/gtest.h>

#include "embrec/data/news.h"
#include "embrec/models/pop.h"
#include "model_fixtures.h"

namespace embrec::models {
namespace {

// Fixed vectors: user u's vector is users[u], whatever the history.
class FixedVectors final : public Model {
 public:
  FixedVectors(torch::Tensor users, torch::Tensor items) : users_(std::move(users)), items_(std::move(items)) {}
  std::string name() const override { return "fixed"; }
  torch::nn::Module& module() override { return module_; }
  int64_t dim() const override { return users_.size(1); }
  torch::Tensor user_vectors(const data::Sequences&, const int32_t* users, int32_t count) override {
    return users_.index_select(0, torch::from_blob(const_cast<int32_t*>(users), {count}, torch::kInt32).to(torch::kLong));
  }
  torch::Tensor item_vectors() override { return items_; }

 private:
  torch::nn::Module module_;
  torch::Tensor users_, items_;
};

data::EvalTask task_of(const std::vector<std::vector<int32_t>>& histories,
                       const std::vector<std::vector<int32_t>>& targets) {
  data::EvalTask task;
  for (const auto& h : histories) task.history.push_user(h.data(), static_cast<int64_t>(h.size()));
  for (const auto& t : targets) task.targets.push_user(t.data(), static_cast<int64_t>(t.size()));
  return task;
}

TEST(EvaluateModel, AFlatIndexGivesTheExactRankingsMetrics) {
  torch::manual_seed(2);
  FixedVectors model(torch::randn({40, 8}), torch::randn({300, 8}));
  std::vector<std::vector<int32_t>> histories, targets;
  for (int32_t u = 0; u < 40; ++u) {
    histories.push_back({u, u + 40, u + 80});
    targets.push_back({u + 120, u + 160, (u * 7) % 300});
  }
  const data::EvalTask task = task_of(histories, targets);
  eval::EvalConfig exact;
  exact.ks = {5, 20, 50};
  exact.metrics = {"recall", "hr", "ndcg"};
  eval::EvalConfig by_index = exact;
  by_index.search = eval::Search::Index;
  const eval::EvalResult a = evaluate_model(model, task, 300, exact), b = evaluate_model(model, task, 300, by_index);
  for (const auto& [key, value] : a.all().values) EXPECT_NEAR(b.all().values.at(key), value, 1e-9) << key;
  EXPECT_GT(a.value("recall@50"), 0.0);
}

TEST(EvaluateModel, ACosineIndexRanksByNormalisedItemVectors) {
  // Item 0 has the largest inner product with the user only by its length; by cosine item 1 wins.
  FixedVectors model(torch::tensor({{1.0f, 0.0f}}), torch::tensor({{3.0f, 3.0f}, {1.0f, 0.1f}, {-1.0f, 0.0f}}));
  const data::EvalTask task = task_of({{}}, {{1}});
  eval::EvalConfig config;
  config.ks = {1};
  config.metrics = {"hr"};
  EXPECT_EQ(evaluate_model(model, task, 3, config).value("hr@1"), 0.0);
  config.search = eval::Search::Index;
  config.index_metric = "cosine";
  EXPECT_EQ(evaluate_model(model, task, 3, config).value("hr@1"), 1.0);
}

// Two impressions: user 0 shown items 0, 1, 2 (clicked 1), user 1 shown items 2, 3 (clicked 3).
std::shared_ptr<data::ImpressionSet> two_impressions() {
  auto set = std::make_shared<data::ImpressionSet>();
  set->user = {0, 1};
  set->times = {0, 0};
  set->candidate_offsets = {0, 3, 5};
  set->candidates = {0, 1, 2, 2, 3};
  set->labels = {0, 1, 0, 0, 1};
  return set;
}

TEST(EvaluateModel, ImpressionsAreScoredByTheUserAndNewsVectors) {
  // User 0 scores items 0, 1, 2 as 3, 2, 1: the click ranks second of three (AUC 1/2, MRR 1/2, nDCG 1/log2(3)).
  // User 1 scores items 2, 3 as 1, 1: a tie, AUC 1/2; the earlier candidate ranks first (MRR 1/2).
  FixedVectors model(torch::tensor({{1.f}, {1.f}}), torch::tensor({{3.f}, {2.f}, {1.f}, {1.f}}));
  data::EvalTask task = task_of({{}, {}}, {{1}, {3}});
  task.impressions = two_impressions();
  eval::EvalConfig config;
  config.ks = {1};
  config.metrics = {"hr"};
  const eval::EvalResult result = evaluate_model(model, task, 4, config);
  EXPECT_DOUBLE_EQ(result.value("auc"), 0.5);
  EXPECT_DOUBLE_EQ(result.value("impression_mrr"), 0.5);
  EXPECT_NEAR(result.value("impression_ndcg@5"), (1.0 / std::log2(3.0) + 1.0 / std::log2(3.0)) / 2, 1e-12);
  EXPECT_EQ(result.value("impressions"), 2.0);
  EXPECT_EQ(result.value("hr@1"), 0.0);  // the full ranking beside them: item 0 outranks both clicks
  const std::vector<std::string> rows = result.row_keys(config.ks, config.metrics);
  EXPECT_EQ(rows, (std::vector<std::string>{"hr@1", "auc", "impression_mrr", "impression_ndcg@5",
                                            "impression_ndcg@10"}));
}

TEST(EvaluateModel, ImpressionsOfACountBasedModelUseItsScoreBlocks) {
  // Pop trained on item 3 twice and item 1 once: user 0's click (1) beats items 0 and 2 (AUC 1); user 1's click
  // (3) beats item 2 (AUC 1).
  auto pop = testing::make_model<Pop>("name = 'pop'\n", 2, 4);
  data::Split split;
  const std::vector<int32_t> a{3, 1}, b{3};
  split.train.push_user(a.data(), 2);
  split.train.push_user(b.data(), 1);
  pop->fit(split);
  data::EvalTask task = task_of({{}, {}}, {{1}, {3}});
  task.impressions = two_impressions();
  eval::EvalConfig config;
  config.ks = {1};
  config.metrics = {"hr"};
  const eval::EvalResult result = evaluate_model(*pop, task, 4, config);
  EXPECT_DOUBLE_EQ(result.value("auc"), 1.0);
  EXPECT_DOUBLE_EQ(result.value("impression_mrr"), 1.0);
}

}  // namespace
}  // namespace embrec::models
