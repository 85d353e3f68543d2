// The full-ranking evaluator: chunked scoring into one reused buffer, history masking, rank counting for single
// targets and partial top-K selection otherwise, per-group means, JSON and table output.
#include "embrec/eval/evaluator.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "embrec/eval/impression_metrics.h"
#include "embrec/eval/metrics.h"
#include "embrec/util/error.h"

namespace embrec::eval {

EvalConfig EvalConfig::from(ConfigTable& table) {
  EvalConfig c;
  c.ks = table.get("ks", c.ks);
  c.metrics = table.get("metrics", c.metrics);
  c.chunk_users = table.get_positive("chunk_users", c.chunk_users);
  // exclude_history (boolean) is how run folders written before `exclude` existed say it; those runs ranked with
  // the history less the targets, so they are read as that to reproduce their figures.
  table.check(!(table.has("exclude") && table.has("exclude_history")), "exclude_history",
              "is the older name of 'exclude': give one of them");
  if (table.has("exclude_history"))
    c.exclude = table.get("exclude_history", true) ? Exclude::HistoryExceptTarget : Exclude::None;
  else
    c.exclude = table.get_one_of("exclude", c.exclude, kExcludeNames);
  c.search = table.get_one_of("search", c.search, kSearchNames);
  auto by_index = table.only(c.search == Search::Index, "to search = \"index\"");
  c.index = by_index.get("index", c.index);
  c.index_metric = by_index.get("index_metric", c.index_metric);  // checked where the index code is (train/)
  c.select = table.get("select", c.select);
  c.item_groups = table.get("item_groups", c.item_groups);
  c.head_item_share =
      table.only(c.item_groups, "to item_groups = true").get_in_range("head_item_share", c.head_item_share, "(0, 1)");
  table.check(!c.ks.empty(), "ks", "must not be empty");
  for (int64_t k : c.ks) table.check(k > 0, "ks", fmt::format("must hold positive values, got {}", k));
  table.check(!c.metrics.empty(), "metrics", "must not be empty");
  for (const std::string& metric : c.metrics)
    table.check(std::find(metric_names().begin(), metric_names().end(), metric) != metric_names().end(), "metrics",
                fmt::format(": unknown metric '{}' (known: hr, recall, ndcg, mrr, map, precision)", metric));
  bool selectable = false;
  for (const std::string& metric : c.metrics)
    for (int64_t k : c.ks) selectable |= c.select == metric + "@" + std::to_string(k);
  // Rating metrics (rmse, mae, r2, explained_variance) are selectable too; the trainer checks that the model
  // predicts ratings.
  for (const std::string& metric : rating_metric_names()) selectable |= c.select == metric;
  // So are the per-impression metrics of news data (the trainer checks that the data has impressions).
  for (const std::string& metric : impression_metric_names()) selectable |= c.select == metric;
  table.check(selectable, "select",
              fmt::format(": '{}' is not one of the computed metrics (metric@k from 'metrics' and 'ks'; rmse, mae, "
                          "r2, explained_variance for rating models; auc, impression_mrr, impression_ndcg@5, "
                          "impression_ndcg@10 for news data)",
                          c.select));
  return c;
}

EmbeddingScorer::EmbeddingScorer(const float* user_vectors, int32_t user_count, const float* item_vectors,
                                 int32_t item_count, int32_t dim)
    : user_vectors_(user_vectors), user_count_(user_count), item_vectors_(item_vectors), item_count_(item_count),
      dim_(dim) {}

void EmbeddingScorer::score_block(const int32_t* users, int32_t count, float* out) {
  gathered_.resize(static_cast<size_t>(count) * dim_);
  for (int32_t row = 0; row < count; ++row) {
    if (users[row] < 0 || users[row] >= user_count_) fail("internal: user {} has no vector", users[row]);
    std::copy_n(user_vectors_ + static_cast<size_t>(users[row]) * dim_, dim_, gathered_.data() + static_cast<size_t>(row) * dim_);
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, count, item_count_, dim_, 1.0f, gathered_.data(), dim_,
              item_vectors_, dim_, 0.0f, out, item_count_);
}

double EvalResult::value(const std::string& key, const std::string& group) const {
  for (size_t g = 0; g < group_names.size(); ++g) {
    if (group_names[g] != group) continue;
    auto it = groups[g].values.find(key);
    if (it == groups[g].values.end()) fail("no metric '{}' in the evaluation result", key);
    return it->second;
  }
  fail("no group '{}' in the evaluation result", group);
}

double EvalResult::repeat_share() const {
  return targets > 0 ? static_cast<double>(repeat_targets) / static_cast<double>(targets) : 0.0;
}

nlohmann::json EvalResult::to_json() const {
  nlohmann::json out = {{"seconds", seconds}, {"group_order", group_names}, {"exclude", exclude},
                        {"targets", targets}, {"repeat_targets", repeat_targets}};
  for (size_t g = 0; g < groups.size(); ++g)
    out["groups"][group_names[g]] = {{"users", groups[g].users}, {"metrics", groups[g].values}};
  return out;
}

EvalResult EvalResult::from_json(const nlohmann::json& json) {
  EvalResult result;
  try {
    result.seconds = json.at("seconds").get<double>();
    // Absent from results written before the repeat report existed.
    result.exclude = json.value("exclude", std::string());
    result.targets = json.value("targets", int64_t{0});
    result.repeat_targets = json.value("repeat_targets", int64_t{0});
    result.group_names = json.at("group_order").get<std::vector<std::string>>();
    for (const std::string& name : result.group_names) {
      const auto& group = json.at("groups").at(name);
      GroupMetrics metrics;
      metrics.users = group.at("users").get<int64_t>();
      metrics.values = group.at("metrics").get<std::map<std::string, double>>();
      result.groups.push_back(std::move(metrics));
    }
  } catch (const nlohmann::json::exception& error) {
    fail("evaluation result JSON: {}", error.what());
  }
  return result;
}

std::vector<std::string> EvalResult::row_keys(const std::vector<int64_t>& ks,
                                              const std::vector<std::string>& metrics) const {
  std::vector<std::string> keys;
  for (const std::string& metric : metrics)
    for (int64_t k : ks) keys.push_back(metric + "@" + std::to_string(k));
  // Rating metrics (models that predict ratings, on stages whose targets carry ratings) and the per-impression
  // metrics of news data have no cut-off of the full ranking.
  std::vector<std::string> uncut = rating_metric_names();
  uncut.insert(uncut.end(), impression_metric_names().begin(), impression_metric_names().end());
  for (const std::string& key : uncut) {
    bool present = false;
    for (const GroupMetrics& group : groups) present |= group.values.count(key) > 0;
    if (present) keys.push_back(key);
  }
  return keys;
}

std::string EvalResult::repeat_summary() const {
  if (targets == 0) return "";
  const bool misses = exclude == name_of(kExcludeNames, Exclude::History) && repeat_targets > 0;
  return fmt::format("{} targets, {} ({:.2f} %) repeat an item of the user's input history (exclude = {}{})", targets,
                     repeat_targets, 100.0 * repeat_share(), exclude.empty() ? "?" : exclude,
                     misses ? ": they count as misses" : "");
}

std::string EvalResult::to_table(const std::vector<int64_t>& ks, const std::vector<std::string>& metrics) const {
  // Columns 18 wide, or wider for a long heading ("head_items (n=10271)"), always apart by two spaces.
  const std::vector<std::string> keys = row_keys(ks, metrics);
  size_t label = 12;  // the metric column: wide enough for impression_ndcg@10
  for (const std::string& key : keys) label = std::max(label, key.size() + 1);
  std::string table = fmt::format("{:<{}}", "metric", label);
  std::vector<size_t> widths;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string heading = fmt::format("{} (n={})", group_names[g], groups[g].users);
    widths.push_back(std::max<size_t>(18, heading.size() + 2));
    table += fmt::format("{:>{}}", heading, widths.back());
  }
  table += "\n";
  for (const std::string& key : keys) {
    table += fmt::format("{:<{}}", key == "explained_variance" ? "expl. var." : key, label);
    for (size_t g = 0; g < groups.size(); ++g) {
      auto it = groups[g].values.find(key);
      table += it == groups[g].values.end() ? fmt::format("{:>{}}", "-", widths[g])
                                            : fmt::format("{:>{}.4f}", it->second, widths[g]);
    }
    table += "\n";
  }
  if (targets > 0) table += repeat_summary() + "\n";
  return table;
}

UserGroups result_groups(const data::Sequences& train, double head_share, int32_t item_count,
                         const EvalConfig& config) {
  return head_tail_groups(train, head_share, config.item_groups ? item_count : 0, config.head_item_share);
}

UserGroups head_tail_groups(const data::Sequences& train, double head_share, int32_t item_count,
                            double head_item_share) {
  const std::vector<uint8_t> head = data::head_users(train, head_share);
  UserGroups groups;
  groups.names = {"head", "tail"};
  groups.user_group.resize(head.size());
  for (size_t u = 0; u < head.size(); ++u) groups.user_group[u] = head[u] ? 0 : 1;
  if (item_count > 0) {
    // The most interacted-with items by training count, ties by lower id: the first ceil(share x items) are head.
    std::vector<int64_t> counts(static_cast<size_t>(item_count), 0);
    for (int32_t item : train.items) ++counts[item];
    std::vector<int32_t> order(static_cast<size_t>(item_count));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return counts[a] > counts[b]; });
    const size_t heads = static_cast<size_t>(std::ceil(head_item_share * item_count));
    groups.item_names = {"head_items", "tail_items"};
    groups.item_group.assign(static_cast<size_t>(item_count), 1);
    for (size_t i = 0; i < heads && i < order.size(); ++i) groups.item_group[order[i]] = 0;
  }
  return groups;
}

namespace {

// Candidates in the evaluator's order: higher score first, then lower item id.
struct Better {
  const float* scores;
  bool operator()(int32_t a, int32_t b) const { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); }
};

using MetricKeys = std::vector<std::pair<std::string, int64_t>>;  // (metric, k) in the result's order

// The users with at least one target; single_target: whether each has exactly one (the fast rank path).
std::vector<int32_t> users_with_targets(const data::EvalTask& task, int32_t items, bool& single_target) {
  const data::Sequences& targets = task.targets;
  if (task.history.user_count() != targets.user_count())
    fail("internal: history has {} users, targets {}", task.history.user_count(), targets.user_count());
  std::vector<int32_t> users;
  single_target = true;
  for (int32_t u = 0; u < targets.user_count(); ++u) {
    if (targets.length(u) == 0) continue;
    users.push_back(u);
    single_target &= targets.length(u) == 1;
  }
  for (int32_t item : targets.items)
    if (item < 0 || item >= items) fail("internal: target item {} outside the {} scored items", item, items);
  return users;
}

constexpr float kExcluded = -std::numeric_limits<float>::infinity();

bool contains(const int32_t* begin, int64_t count, int32_t item) {
  return std::find(begin, begin + count, item) != begin + count;
}

// How many of user u's targets occur in the input history.
int64_t repeat_count(const data::EvalTask& task, int32_t u) {
  int64_t count = 0;
  for (const int32_t* t = task.targets.begin(u); t != task.targets.end(u); ++t)
    count += contains(task.history.begin(u), task.history.length(u), *t);
  return count;
}

// A division of every user's targets into two sets, each scored on its own as if it were the user's only
// targets: repeated / new (exclude = none), head-item / tail-item targets (UserGroups' item groups).
struct TargetSplit {
  std::string first, second;
  std::function<bool(int32_t user, int32_t item)> in_first;
};

// Where one user's metric values go, in `keys` order: for all targets, and for each side of each TargetSplit
// (`has` = 0 where the user has no target on that side).
struct UserOut {
  double* all;
  std::vector<double*> sides;    // 2 per split: first, second
  std::vector<uint8_t*> has;     // parallel to sides
};

// One user's metric values from the scores of all items, ranked after exclusion; ties go to the lower item id.
// Returns how many of the user's targets repeat an item of the input history.
int64_t rank_metrics(float* row_scores, int32_t items, const data::EvalTask& task, int32_t u, bool single_target,
                     const MetricKeys& keys, int64_t max_k, Exclude exclude, const std::vector<TargetSplit>& splits,
                     const UserOut& out) {
  const int32_t* target_begin = task.targets.begin(u);
  const int64_t target_count = task.targets.length(u);
  const int64_t repeats = repeat_count(task, u);
  apply_exclusion(exclude, task.history.begin(u), task.history.length(u), target_begin, target_count, row_scores);
  if (!task.rankable.empty())
    for (int32_t j = 0; j < items; ++j)
      if (!task.rankable[j]) row_scores[j] = kExcluded;
  if (single_target) {
    const int32_t target = target_begin[0];
    const float target_score = row_scores[target];
    int64_t rank = 0;
    for (int32_t j = 0; j < items; ++j) rank += row_scores[j] > target_score;
    for (int32_t j = 0; j < target; ++j) rank += row_scores[j] == target_score;
    // A NaN score is a miss, never a hit; so is an excluded target (exclude = history and a repeated target).
    if (std::isnan(target_score) || (exclude == Exclude::History && repeats > 0)) rank = items;
    for (size_t m = 0; m < keys.size(); ++m) out.all[m] = metric_from_rank(keys[m].first, rank, keys[m].second);
    for (size_t s = 0; s < splits.size(); ++s) {
      const size_t side = 2 * s + (splits[s].in_first(u, target) ? 0 : 1);
      std::copy(out.all, out.all + keys.size(), out.sides[side]);
      *out.has[side] = 1;
    }
    return repeats;
  }
  std::vector<int32_t> candidates;
  candidates.reserve(items);
  for (int32_t j = 0; j < items; ++j)
    if (row_scores[j] != kExcluded) candidates.push_back(j);
  const int64_t depth = std::min<int64_t>(max_k, static_cast<int64_t>(candidates.size()));
  Better better{row_scores};
  std::nth_element(candidates.begin(), candidates.begin() + depth, candidates.end(), better);
  std::sort(candidates.begin(), candidates.begin() + depth, better);
  auto fill = [&](const int32_t* relevant, int64_t relevant_count, double* values) {
    for (size_t m = 0; m < keys.size(); ++m)
      values[m] = metric_at_k(keys[m].first, candidates.data(), depth, relevant, relevant_count, keys[m].second);
  };
  fill(target_begin, target_count, out.all);
  for (size_t s = 0; s < splits.size(); ++s) {
    std::vector<int32_t> first, second;
    for (const int32_t* t = target_begin; t != target_begin + target_count; ++t)
      (splits[s].in_first(u, *t) ? first : second).push_back(*t);
    *out.has[2 * s] = !first.empty();
    *out.has[2 * s + 1] = !second.empty();
    if (!first.empty()) fill(first.data(), static_cast<int64_t>(first.size()), out.sides[2 * s]);
    if (!second.empty()) fill(second.data(), static_cast<int64_t>(second.size()), out.sides[2 * s + 1]);
  }
  return repeats;
}

// The mean over the users that `member` admits (all when null) of per-user rows (users x keys, summed in user
// order, so results do not depend on thread count or chunk size).
GroupMetrics mean_over(const std::vector<double>& values, const MetricKeys& keys, const std::vector<uint8_t>* member) {
  std::vector<double> sums(keys.size(), 0.0);
  GroupMetrics metrics;
  const size_t users = keys.empty() ? 0 : values.size() / keys.size();
  for (size_t i = 0; i < users; ++i) {
    if (member && !(*member)[i]) continue;
    ++metrics.users;
    for (size_t m = 0; m < keys.size(); ++m) sums[m] += values[i * keys.size() + m];
  }
  for (size_t m = 0; m < keys.size(); ++m)
    metrics.values[keys[m].first + "@" + std::to_string(keys[m].second)] =
        metrics.users > 0 ? sums[m] / static_cast<double>(metrics.users) : 0.0;
  return metrics;
}

// Per-user values of all targets and of each side of each TargetSplit, and which users have targets there.
struct UserValues {
  std::vector<double> all;
  std::vector<std::vector<double>> sides;
  std::vector<std::vector<uint8_t>> has;
};

// "all", then the user groups (head, tail), then each side of each TargetSplit ("repeat" and "new",
// "head_items" and "tail_items").
EvalResult group_means(const UserValues& values, const std::vector<int32_t>& users, const MetricKeys& keys,
                       const UserGroups* groups, const std::vector<TargetSplit>& splits) {
  EvalResult result;
  result.group_names.push_back("all");
  result.groups.push_back(mean_over(values.all, keys, nullptr));
  for (size_t g = 0; groups && g < groups->names.size(); ++g) {
    std::vector<uint8_t> member(users.size());
    for (size_t i = 0; i < users.size(); ++i) member[i] = groups->user_group[users[i]] == static_cast<int32_t>(g);
    result.group_names.push_back(groups->names[g]);
    result.groups.push_back(mean_over(values.all, keys, &member));
  }
  for (size_t s = 0; s < splits.size(); ++s) {
    result.group_names.insert(result.group_names.end(), {splits[s].first, splits[s].second});
    result.groups.push_back(mean_over(values.sides[2 * s], keys, &values.has[2 * s]));
    result.groups.push_back(mean_over(values.sides[2 * s + 1], keys, &values.has[2 * s + 1]));
  }
  return result;
}

// EvalConfig::per_user: every user's row of values.all, then each side's value (NaN where it has no such targets).
PerUserValues per_user_values(const UserValues& values, const std::vector<int32_t>& users, const MetricKeys& keys,
                              const UserGroups* groups, const std::vector<TargetSplit>& splits) {
  PerUserValues out;
  out.users = users;
  for (int32_t u : users) {
    const int32_t group = groups ? groups->user_group[u] : -1;
    out.groups.push_back(group >= 0 ? groups->names[group] : std::string());
  }
  std::vector<std::string> prefixes = {""};
  for (const TargetSplit& split : splits) prefixes.insert(prefixes.end(), {split.first + ":", split.second + ":"});
  for (const std::string& prefix : prefixes)
    for (const auto& [metric, k] : keys) out.columns.push_back(prefix + metric + "@" + std::to_string(k));
  out.values.reserve(users.size() * out.columns.size());
  for (size_t i = 0; i < users.size(); ++i) {
    out.values.insert(out.values.end(), values.all.begin() + i * keys.size(), values.all.begin() + (i + 1) * keys.size());
    for (size_t side = 0; side < values.sides.size(); ++side)
      for (size_t m = 0; m < keys.size(); ++m)
        out.values.push_back(values.has[side][i] ? values.sides[side][i * keys.size() + m]
                                                 : std::numeric_limits<double>::quiet_NaN());
  }
  return out;
}

}  // namespace

void apply_exclusion(Exclude mode, const int32_t* history, int64_t history_count, const int32_t* targets,
                     int64_t target_count, float* row_scores) {
  if (mode == Exclude::None) return;
  for (const int32_t* it = history; it != history + history_count; ++it)
    if (mode == Exclude::History || !contains(targets, target_count, *it)) row_scores[*it] = kExcluded;
}

EvalResult evaluate(ScoreSource& source, const data::EvalTask& task, const EvalConfig& config, const UserGroups* groups) {
  const auto start = std::chrono::steady_clock::now();
  const int32_t items = source.item_count();
  if (groups && static_cast<int32_t>(groups->user_group.size()) != task.targets.user_count())
    fail("internal: groups cover {} users, task {}", groups->user_group.size(), task.targets.user_count());
  bool single_target = true;
  const std::vector<int32_t> users = users_with_targets(task, items, single_target);
  MetricKeys keys;
  for (const std::string& metric : config.metrics)
    for (int64_t k : config.ks) keys.emplace_back(metric, k);
  const int64_t max_k = *std::max_element(config.ks.begin(), config.ks.end());
  std::vector<TargetSplit> splits;
  if (config.exclude == Exclude::None)
    splits.push_back({"repeat", "new", [&task](int32_t u, int32_t item) {
                        return contains(task.history.begin(u), task.history.length(u), item);
                      }});
  if (groups && !groups->item_group.empty()) {
    if (static_cast<int32_t>(groups->item_group.size()) != items)
      fail("internal: item groups cover {} items, the scores {}", groups->item_group.size(), items);
    splits.push_back({groups->item_names[0], groups->item_names[1],
                      [groups](int32_t, int32_t item) { return groups->item_group[item] == 0; }});
  }
  UserValues values;
  values.all.resize(users.size() * keys.size());
  values.sides.assign(2 * splits.size(), std::vector<double>(values.all.size()));
  values.has.assign(2 * splits.size(), std::vector<uint8_t>(users.size()));
  std::vector<int64_t> repeats(users.size());

  // Scores in blocks of chunk users x all items, one reused buffer.
  const int32_t chunk = std::max<int32_t>(1, config.chunk_users);
  std::vector<float> scores(static_cast<size_t>(std::min<size_t>(chunk, std::max<size_t>(users.size(), 1))) * items);
  for (size_t begin = 0; begin < users.size(); begin += chunk) {
    const int32_t count = static_cast<int32_t>(std::min<size_t>(chunk, users.size() - begin));
    source.score_block(users.data() + begin, count, scores.data());
#pragma omp parallel for schedule(dynamic, 4)
    for (int32_t row = 0; row < count; ++row) {
      const size_t i = begin + row, at = i * keys.size();
      UserOut out{values.all.data() + at, {}, {}};
      for (size_t side = 0; side < values.sides.size(); ++side) {
        out.sides.push_back(values.sides[side].data() + at);
        out.has.push_back(&values.has[side][i]);
      }
      repeats[i] = rank_metrics(scores.data() + static_cast<size_t>(row) * items, items, task, users[i],
                                single_target, keys, max_k, config.exclude, splits, out);
    }
  }
  EvalResult result = group_means(values, users, keys, groups, splits);
  if (config.per_user) result.per_user = per_user_values(values, users, keys, groups, splits);
  result.exclude = name_of(kExcludeNames, config.exclude);
  for (int32_t u : users) result.targets += task.targets.length(u);
  for (int64_t r : repeats) result.repeat_targets += r;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace embrec::eval
