// The full-ranking evaluator: exclusion, tie-breaking, skipping, chunk independence, groups, JSON, config errors.
#include "embrec/eval/evaluator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::eval {
namespace {

// Fixed score rows per user.
class TableScores final : public ScoreSource {
 public:
  explicit TableScores(std::vector<std::vector<float>> rows) : rows_(std::move(rows)) {}
  int32_t item_count() const override { return static_cast<int32_t>(rows_[0].size()); }
  void score_block(const int32_t* users, int32_t count, float* out) override {
    for (int32_t r = 0; r < count; ++r) std::copy(rows_[users[r]].begin(), rows_[users[r]].end(), out + r * item_count());
  }

 private:
  std::vector<std::vector<float>> rows_;
};

data::Sequences lists(const std::vector<std::vector<int32_t>>& per_user) {
  data::Sequences out;
  for (const auto& items : per_user) out.push_user(items.data(), static_cast<int64_t>(items.size()));
  return out;
}

EvalConfig config_with(std::vector<int64_t> ks, std::vector<std::string> metrics) {
  EvalConfig config;
  config.ks = std::move(ks);
  config.metrics = std::move(metrics);
  config.select = config.metrics[0] + "@" + std::to_string(config.ks[0]);
  return config;
}

EvalConfig excluding(Exclude exclude, std::vector<int64_t> ks, std::vector<std::string> metrics) {
  EvalConfig config = config_with(std::move(ks), std::move(metrics));
  config.exclude = exclude;
  return config;
}

TEST(Evaluator, UnderHistoryEveryHistoryItemIsExcludedSoARepeatedTargetIsAMiss) {
  // Item 0 scores highest but is in the history; the target 2 is in the history too.
  TableScores scores({{9.f, 1.f, 5.f, 7.f}});
  data::EvalTask task{lists({{0, 2}}), lists({{2}})};
  EvalResult result = evaluate(scores, task, config_with({1, 2, 4}, {"hr", "mrr"}));
  EXPECT_EQ(result.exclude, "history");
  EXPECT_EQ(result.value("hr@4"), 0.0);  // only 3 and 1 are ranked: the target can never be found
  EXPECT_EQ(result.value("mrr@4"), 0.0);
  EXPECT_EQ(result.targets, 1);
  EXPECT_EQ(result.repeat_targets, 1);
  // The diagnostic that keeps a target in the ranking finds it second: 3 (7.0), 2 (5.0), 1 (1.0).
  EvalResult diagnostic = evaluate(scores, task, excluding(Exclude::HistoryExceptTarget, {1, 2}, {"hr", "mrr"}));
  EXPECT_EQ(diagnostic.value("hr@1"), 0.0);
  EXPECT_EQ(diagnostic.value("hr@2"), 1.0);
  EXPECT_EQ(diagnostic.value("mrr@2"), 0.5);
}

TEST(Evaluator, ItemsOutsideTheRankableSetNeverOutrankATarget) {
  // Item 0 beats the target 2 but is not rankable (news not shown at the stage): the target ranks first.
  TableScores scores({{9.f, 1.f, 5.f, 7.f}});
  data::EvalTask task{lists({{}}), lists({{2}})};
  EXPECT_EQ(evaluate(scores, task, config_with({1}, {"hr"})).value("hr@1"), 0.0);
  task.rankable = {0, 1, 1, 0};
  EvalResult result = evaluate(scores, task, config_with({1, 2}, {"hr", "mrr"}));
  EXPECT_EQ(result.value("hr@1"), 1.0);
  EXPECT_EQ(result.value("mrr@2"), 1.0);
}

TEST(Evaluator, UnderNoneARepeatedTargetIsRankedNormallyAndReportedApart) {
  TableScores scores({{9.f, 1.f, 5.f, 7.f}, {9.f, 1.f, 5.f, 7.f}});
  data::EvalTask task{lists({{0, 2}, {0}}), lists({{2}, {3}})};
  EvalResult result = evaluate(scores, task, excluding(Exclude::None, {2, 3}, {"hr", "mrr"}));
  // User 0: 0 (9.0), 3 (7.0), 2 (5.0): its repeated target is third. User 1: its new target 3 is second.
  EXPECT_NEAR(result.value("mrr@3"), (1.0 / 3 + 0.5) / 2, 1e-12);
  EXPECT_EQ(result.group_names, (std::vector<std::string>{"all", "repeat", "new"}));
  EXPECT_EQ(result.groups[1].users, 1);
  EXPECT_NEAR(result.value("mrr@3", "repeat"), 1.0 / 3, 1e-12);
  EXPECT_EQ(result.value("hr@2", "repeat"), 0.0);
  EXPECT_NEAR(result.value("mrr@3", "new"), 0.5, 1e-12);
  EXPECT_EQ(result.value("hr@2", "new"), 1.0);
  EXPECT_EQ(result.repeat_targets, 1);
  EXPECT_EQ(result.targets, 2);
}

TEST(Evaluator, TheMaskIsAFunctionOfTheInputHistoryAlone) {
  const std::vector<int32_t> history{4, 1, 6};
  auto masked = [&](Exclude mode, std::vector<int32_t> targets) {
    std::vector<float> row(8, 1.0f);
    apply_exclusion(mode, history.data(), 3, targets.data(), static_cast<int64_t>(targets.size()), row.data());
    return row;
  };
  // The same user with two different answers (one repeats a history item) gets the same mask.
  EXPECT_EQ(masked(Exclude::History, {1}), masked(Exclude::History, {7}));
  const std::vector<float> expected{1, -INFINITY, 1, 1, -INFINITY, 1, -INFINITY, 1};
  EXPECT_EQ(masked(Exclude::History, {1}), expected);
  EXPECT_EQ(masked(Exclude::None, {1}), std::vector<float>(8, 1.0f));
  // Why the old rule is only a diagnostic: its mask changes with the answer.
  EXPECT_NE(masked(Exclude::HistoryExceptTarget, {1}), masked(Exclude::HistoryExceptTarget, {7}));
}

TEST(Evaluator, MultiTargetSetsWithATargetInTheHistory) {
  TableScores scores({{9.f, 8.f, 7.f, 6.f, 5.f}});
  data::EvalTask task{lists({{0, 1}}), lists({{1, 3}})};
  // history: 2 (7), 3 (6), 4 (5) are ranked; target 1 is excluded (a miss), target 3 is second.
  EvalResult history = evaluate(scores, task, config_with({2}, {"recall", "hr", "precision"}));
  EXPECT_EQ(history.value("recall@2"), 0.5);
  EXPECT_EQ(history.value("hr@2"), 1.0);
  EXPECT_EQ(history.value("precision@2"), 0.5);
  // none: 0 (9), 1 (8), 2, 3, 4: target 1 is second, target 3 fourth.
  EvalResult none = evaluate(scores, task, excluding(Exclude::None, {2, 4}, {"recall"}));
  EXPECT_EQ(none.value("recall@2"), 0.5);
  EXPECT_EQ(none.value("recall@4"), 1.0);
  EXPECT_EQ(none.value("recall@2", "repeat"), 1.0);  // {1}: found at 2
  EXPECT_EQ(none.value("recall@2", "new"), 0.0);     // {3}: at 4
  EXPECT_EQ(none.value("recall@4", "new"), 1.0);
  EXPECT_EQ(none.repeat_targets, 1);
}

TEST(Evaluator, RepeatShareCountsTargetsThatOccurInTheInputHistory) {
  TableScores scores({{1.f, 2.f, 3.f, 4.f}, {1.f, 2.f, 3.f, 4.f}, {1.f, 2.f, 3.f, 4.f}, {1.f, 2.f, 3.f, 4.f}});
  // u0 repeats, u1 does not, u2 has two targets of which one repeats, u3 has no targets (not evaluated).
  data::EvalTask task{lists({{0, 1}, {2}, {3, 0}, {1}}), lists({{1}, {3}, {0, 2}, {}})};
  EvalResult result = evaluate(scores, task, config_with({2}, {"hr"}));
  EXPECT_EQ(result.targets, 4);
  EXPECT_EQ(result.repeat_targets, 2);
  EXPECT_EQ(result.repeat_share(), 0.5);
  const std::string table = result.to_table({2}, {"hr"});
  EXPECT_NE(table.find("4 targets, 2 (50.00 %) repeat an item of the user's input history (exclude = history: they "
                       "count as misses)"),
            std::string::npos)
      << table;
}

TEST(Evaluator, TiesGoToTheLowerItemId) {
  TableScores scores({{1.f, 1.f, 1.f}, {1.f, 1.f, 1.f}});
  data::EvalTask task{lists({{}, {}}), lists({{0}, {2}})};
  EvalResult result = evaluate(scores, task, config_with({1, 3}, {"mrr"}));
  // User 0: target 0 wins the tie (rank 1). User 1: target 2 loses to 0 and 1 (rank 3). Mean = (1 + 1/3) / 2.
  EXPECT_NEAR(result.value("mrr@3"), (1.0 + 1.0 / 3.0) / 2.0, 1e-12);
  EXPECT_NEAR(result.value("mrr@1"), 0.5, 1e-12);
}

TEST(Evaluator, MultiTargetTiesAlsoGoToTheLowerItemId) {
  TableScores scores({{1.f, 1.f, 1.f, 0.f}});
  data::EvalTask task{lists({{}}), lists({{2, 3}})};
  // Top-2 under the tie rule: 0, 1 -> no hit.
  EXPECT_EQ(evaluate(scores, task, config_with({2}, {"hr"})).value("hr@2"), 0.0);
  EXPECT_EQ(evaluate(scores, task, config_with({3}, {"recall"})).value("recall@3"), 0.5);
}

TEST(Evaluator, UsersWithoutTargetsAreSkipped) {
  TableScores scores({{3.f, 2.f, 1.f}, {3.f, 2.f, 1.f}, {3.f, 2.f, 1.f}});
  data::EvalTask task{lists({{}, {}, {}}), lists({{0}, {}, {2}})};
  EvalResult result = evaluate(scores, task, config_with({1}, {"hr"}));
  EXPECT_EQ(result.all().users, 2);
  EXPECT_EQ(result.value("hr@1"), 0.5);
}

TEST(Evaluator, EmbeddingScorerIsTheDotProduct) {
  const std::vector<float> users{1, 2, 0, -1, 3, 1};          // 3 users x 2
  const std::vector<float> items{1, 0, 0, 1, 2, 2, -1, 1};    // 4 items x 2
  EmbeddingScorer scorer(users.data(), 3, items.data(), 4, 2);
  const int32_t block[] = {2, 0};
  std::vector<float> out(8);
  scorer.score_block(block, 2, out.data());
  // user 2 = (3, 1): 3, 1, 8, -2; user 0 = (1, 2): 1, 2, 6, 1.
  EXPECT_EQ(out, (std::vector<float>{3, 1, 8, -2, 1, 2, 6, 1}));
}

// A random problem where single-target and top-K paths can be compared.
struct RandomProblem {
  std::vector<float> user_vectors, item_vectors;
  data::EvalTask task;
  RandomProblem(int32_t users, int32_t items, int32_t dim, bool two_targets_for_first_user) {
    std::mt19937 random(3);
    std::normal_distribution<float> normal;
    user_vectors.resize(users * dim);
    item_vectors.resize(items * dim);
    for (float& v : user_vectors) v = normal(random);
    for (float& v : item_vectors) v = normal(random);
    std::uniform_int_distribution<int32_t> any(0, items - 1);
    for (int32_t u = 0; u < users; ++u) {
      std::vector<int32_t> history(1 + u % 6);
      for (int32_t& item : history) item = any(random);
      task.history.push_user(history.data(), static_cast<int64_t>(history.size()));
      std::vector<int32_t> targets{any(random)};
      if (u == 0 && two_targets_for_first_user) targets.push_back((targets[0] + 1) % items);
      task.targets.push_user(targets.data(), static_cast<int64_t>(targets.size()));
    }
  }
};

TEST(Evaluator, ResultsDoNotDependOnChunkSize) {
  RandomProblem problem(50, 40, 8, false);
  EvalConfig config = config_with({1, 5, 10}, {"hr", "ndcg", "mrr", "map", "precision", "recall"});
  std::map<std::string, double> reference;
  for (int32_t chunk : {1, 3, 7, 256}) {
    config.chunk_users = chunk;
    EmbeddingScorer scorer(problem.user_vectors.data(), 50, problem.item_vectors.data(), 40, 8);
    auto values = evaluate(scorer, problem.task, config).all().values;
    if (reference.empty()) reference = values;
    EXPECT_EQ(values, reference) << "chunk " << chunk;
  }
}

TEST(Evaluator, RankCountingAgreesWithTopKSelection) {
  // Adding a second target to user 0 forces the top-K path for everyone; for the other users the metrics must be
  // the same as with rank counting. Compare on users 1.. through per-user groups.
  RandomProblem single(30, 25, 4, false), multi(30, 25, 4, true);
  EvalConfig config = config_with({1, 3, 10}, {"hr", "ndcg", "mrr", "precision", "recall"});
  UserGroups groups;
  groups.names = {"rest"};
  groups.user_group.assign(30, 0);
  groups.user_group[0] = -1;
  EmbeddingScorer a(single.user_vectors.data(), 30, single.item_vectors.data(), 25, 4);
  EmbeddingScorer b(multi.user_vectors.data(), 30, multi.item_vectors.data(), 25, 4);
  auto fast = evaluate(a, single.task, config, &groups);
  auto general = evaluate(b, multi.task, config, &groups);
  for (const auto& [key, value] : fast.groups[1].values) EXPECT_NEAR(general.groups[1].values.at(key), value, 1e-12) << key;
}

TEST(Evaluator, GroupsAreMeansOverTheirUsers) {
  // Target ranks: user 0 first, user 1 third, user 2 second (scores 3,2,1 and no history).
  TableScores scores({{3.f, 2.f, 1.f}, {3.f, 2.f, 1.f}, {3.f, 2.f, 1.f}});
  data::EvalTask task{lists({{}, {}, {}}), lists({{0}, {2}, {1}})};
  UserGroups groups{{"head", "tail"}, {0, 1, 1}};
  EvalResult result = evaluate(scores, task, config_with({3}, {"mrr"}), &groups);
  EXPECT_NEAR(result.value("mrr@3", "all"), (1.0 + 1.0 / 3 + 0.5) / 3, 1e-12);
  EXPECT_NEAR(result.value("mrr@3", "head"), 1.0, 1e-12);
  EXPECT_NEAR(result.value("mrr@3", "tail"), (1.0 / 3 + 0.5) / 2, 1e-12);
  EXPECT_EQ(result.groups[2].users, 2);
  EXPECT_THROW(result.value("mrr@3", "middle"), Error);
  EXPECT_THROW(result.value("ndcg@3"), Error);
}

TEST(Evaluator, ItemGroupsScoreHeadAndTailItemTargetsEachOnTheirOwn) {
  // Items 0 and 1 are head items, 2 and 3 tail. Scores 4 > 3 > 2 > 1 over items 0..3, no history.
  TableScores scores({{4.f, 3.f, 2.f, 1.f}, {4.f, 3.f, 2.f, 1.f}, {4.f, 3.f, 2.f, 1.f}});
  // User 0: targets 1 (head, rank 2) and 3 (tail, rank 4); user 1: only 2 (tail, rank 3); user 2: only 0 (head).
  data::EvalTask task{lists({{}, {}, {}}), lists({{1, 3}, {2}, {0}})};
  UserGroups groups{{"head", "tail"}, {0, 1, 1}, {"head_items", "tail_items"}, {0, 0, 1, 1}};
  EvalResult result = evaluate(scores, task, config_with({2, 4}, {"recall"}), &groups);
  EXPECT_EQ(result.group_names,
            (std::vector<std::string>{"all", "head", "tail", "head_items", "tail_items"}));
  // All targets: user 0 finds 1 of 2 in the top 2, user 1 none, user 2 its one.
  EXPECT_NEAR(result.value("recall@2"), (0.5 + 0.0 + 1.0) / 3, 1e-12);
  // Head-item targets (users 0 and 2): both found in the top 2. Tail-item targets (users 0 and 1): none in the top 2,
  // both in the top 4.
  EXPECT_EQ(result.groups[3].users, 2);
  EXPECT_NEAR(result.value("recall@2", "head_items"), 1.0, 1e-12);
  EXPECT_NEAR(result.value("recall@2", "tail_items"), 0.0, 1e-12);
  EXPECT_NEAR(result.value("recall@4", "tail_items"), 1.0, 1e-12);
  // The single-target path (each user one target) agrees: user 1 (tail item 2, rank 3) and user 2 (head item 0).
  data::EvalTask single{lists({{}, {}, {}}), lists({{}, {2}, {0}})};
  EvalResult fast = evaluate(scores, single, config_with({2}, {"recall"}), &groups);
  EXPECT_NEAR(fast.value("recall@2", "head_items"), 1.0, 1e-12);
  EXPECT_NEAR(fast.value("recall@2", "tail_items"), 0.0, 1e-12);
  EXPECT_EQ(fast.groups[4].users, 1);
}

TEST(Evaluator, HeadItemsAreTheMostTrainedOnAndTiesGoToTheLowerId) {
  // Training counts: item 0: 1, item 1: 3, item 2: 3, item 3: 0, item 4: 2.
  const data::Sequences train = lists({{1, 2, 4}, {1, 2, 0}, {1, 2, 4}});
  const UserGroups groups = head_tail_groups(train, 0.5, 5, 0.4);  // ceil(0.4 x 5) = 2 head items
  EXPECT_EQ(groups.item_group, (std::vector<int32_t>{1, 0, 0, 1, 1}));
  const UserGroups three = head_tail_groups(train, 0.5, 5, 0.5);  // 3: item 4 (2) before item 0 (1)
  EXPECT_EQ(three.item_group, (std::vector<int32_t>{1, 0, 0, 1, 0}));
  EXPECT_TRUE(head_tail_groups(train, 0.5).item_group.empty());
}

TEST(Evaluator, JsonRoundTripAndTable) {
  TableScores scores({{3.f, 2.f, 1.f}, {1.f, 2.f, 3.f}});
  data::EvalTask task{lists({{}, {}}), lists({{0}, {0}})};
  UserGroups groups{{"head", "tail"}, {0, 1}};
  EvalResult result = evaluate(scores, task, config_with({1, 2}, {"hr", "ndcg"}), &groups);
  EvalResult back = EvalResult::from_json(nlohmann::json::parse(result.to_json().dump()));
  EXPECT_EQ(back.group_names, result.group_names);
  for (size_t g = 0; g < result.groups.size(); ++g) {
    EXPECT_EQ(back.groups[g].users, result.groups[g].users);
    EXPECT_EQ(back.groups[g].values, result.groups[g].values);
  }
  const std::string table = result.to_table({1, 2}, {"hr", "ndcg"});
  EXPECT_NE(table.find("all (n=2)"), std::string::npos) << table;
  EXPECT_NE(table.find("hr@1"), std::string::npos) << table;
  EXPECT_NE(table.find("0.5000"), std::string::npos) << table;
  EXPECT_EQ(back.exclude, "history");
  EXPECT_EQ(back.targets, 2);
  EXPECT_EQ(back.repeat_targets, 0);
  EXPECT_THROW(EvalResult::from_json(nlohmann::json::parse("{\"seconds\": 1}")), Error);
}

TEST(Evaluator, ConfigErrorsNameTheKey) {
  auto config_error = [](const std::string& text) -> std::string {
    return error_of([&] {
      ConfigTable table = ConfigTable::parse_string(text, "e.toml");
      EvalConfig::from(table);
    });
  };
  EXPECT_NE(config_error("metrics = ['hr', 'auc']").find("e.toml: key 'metrics': unknown metric 'auc'"),
            std::string::npos);
  EXPECT_NE(config_error("select = 'ndcg@50'").find("e.toml: key 'select'"), std::string::npos);
  EXPECT_NE(config_error("ks = [0]").find("e.toml: key 'ks'"), std::string::npos);
  EXPECT_EQ(config_error("ks = [5, 10]\nselect = 'hr@5'"), "(no error)");
  EXPECT_EQ(config_error("exclude = 'seen'"),
            "e.toml: key 'exclude' must be one of {history, none, history_except_target}, got 'seen'");
  EXPECT_EQ(config_error("exclude = 'none'\nexclude_history = true"),
            "e.toml: key 'exclude_history' is the older name of 'exclude': give one of them");
}

TEST(Evaluator, ConfigReadsExcludeAndTheOlderRunFoldersKey) {
  auto exclude_of = [](const std::string& text) {
    ConfigTable table = ConfigTable::parse_string(text, "e.toml");
    return EvalConfig::from(table).exclude;
  };
  EXPECT_EQ(exclude_of(""), Exclude::History);
  EXPECT_EQ(exclude_of("exclude = 'none'"), Exclude::None);
  // Run folders written before `exclude` existed ranked with the history less the targets.
  EXPECT_EQ(exclude_of("exclude_history = true"), Exclude::HistoryExceptTarget);
  EXPECT_EQ(exclude_of("exclude_history = false"), Exclude::None);
}

}  // namespace
}  // namespace embrec::eval
