// The full-ranking evaluator: scores every item for every user in chunks of users into one reused buffer,
// masks each user's history, and computes metrics @K. Never materialises the users x items matrix; no torch.
//
// Order and ties: items are ranked by score descending, ties broken by internal item id ascending; the rank of a
// single target counts the candidates that beat it under that order. What is excluded is decided by the input
// history alone (`exclude`), never by the answer: under the default "history" every item of the input history is
// removed, so a target that repeats a history item is a miss, as the service's history request behaves.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "embrec/data/dataset.h"
#include "embrec/util/config.h"

namespace embrec::eval {

// Fills a block of scores: out is [count x item_count()] row-major, for the given internal user ids.
class ScoreSource {
 public:
  virtual ~ScoreSource() = default;
  virtual int32_t item_count() const = 0;
  virtual void score_block(const int32_t* users, int32_t count, float* out) = 0;
};

// Inner products of user vectors [user_count x dim] and item vectors [item_count x dim] (row-major) by sgemm.
// The vectors are borrowed, not copied.
class EmbeddingScorer final : public ScoreSource {
 public:
  EmbeddingScorer(const float* user_vectors, int32_t user_count, const float* item_vectors, int32_t item_count,
                  int32_t dim);
  int32_t item_count() const override { return item_count_; }
  void score_block(const int32_t* users, int32_t count, float* out) override;

 private:
  const float* user_vectors_;
  int32_t user_count_;
  const float* item_vectors_;
  int32_t item_count_;
  int32_t dim_;
  std::vector<float> gathered_;  // reused: the block's user vectors, contiguous
};

// What is removed from a user's ranking. History: every item of the input history (the papers' protocol, and
// what the service does with exclude_seen = true). None: nothing, for repeat-aware use (re-buying, re-listening);
// metrics are then also reported for repeated and new targets separately. HistoryExceptTarget: the history less
// the targets -- a diagnostic only, since it depends on the answer (a repeated target is then the one familiar
// item left among unfamiliar ones), never a protocol.
enum class Exclude { History, None, HistoryExceptTarget };
inline const Names<Exclude> kExcludeNames = {
    {"history", Exclude::History}, {"none", Exclude::None}, {"history_except_target", Exclude::HistoryExceptTarget}};

// Sets the scores of what `mode` excludes to -infinity in `row_scores` (all items' scores for one user). Only
// HistoryExceptTarget reads the targets.
void apply_exclusion(Exclude mode, const int32_t* history, int64_t history_count, const int32_t* targets,
                     int64_t target_count, float* row_scores);

// How embedding models are ranked: exactly (every item's inner product, the default), or by searching embrec's
// Faiss item index built as `embrec export` builds it (`index`, `index_metric`), so that what is evaluated is what
// the service returns -- e.g. the user-split protocol's L2-normalised item vectors in an inner-product index
// (index_metric = "cosine"). Count-based models always rank exactly.
enum class Search { Exact, Index };
inline const Names<Search> kSearchNames = {{"exact", Search::Exact}, {"index", Search::Index}};

struct EvalConfig {
  std::vector<int64_t> ks{5, 10, 20};
  std::vector<std::string> metrics{"hr", "ndcg", "mrr", "map", "precision", "recall"};
  int32_t chunk_users = 256;
  Exclude exclude = Exclude::History;
  Search search = Search::Exact;
  std::string index = "flat";        // search = "index": Faiss factory string or preset, as `embrec export --index`
  std::string index_metric = "ip";   // search = "index": ip | cosine | l2, as `embrec export --metric`
  // Which metric/k early stopping and "best" use, e.g. "ndcg@10".
  std::string select = "ndcg@10";
  // Also report the metrics over head-item and tail-item targets (head_item_share of the items, most popular in
  // training first), for the test and valid results (not the per-epoch validation).
  bool item_groups = false;
  double head_item_share = 0.2;
  // Keep each user's values in EvalResult::per_user, for a paired comparison of two runs (eval/per_user.h). Set by
  // the caller (the final test evaluation, `embrec eval`), not read from TOML.
  bool per_user = false;

  static EvalConfig from(ConfigTable& table);
};

// Metrics of one group of users: "hr@10" -> mean over users.
struct GroupMetrics {
  int64_t users = 0;
  std::map<std::string, double> values;
};

// Each evaluated user's values (EvalConfig::per_user): the rows of a paired significance test (eval/significance.h).
struct PerUserValues {
  std::vector<int32_t> users;        // internal ids, in the order evaluated
  std::vector<std::string> groups;   // each user's group ("head", "tail"), "" when in none or without groups
  std::vector<std::string> columns;  // "ndcg@20", ..., then "<side>:ndcg@20" for each side of a target split
                                     // (e.g. "tail_items:recall@50")
  std::vector<double> values;        // users x columns; NaN where the user has no targets of that side
};

struct EvalResult {
  std::vector<std::string> group_names;   // "all" first, then the groups asked for (e.g. "head", "tail")
  std::vector<GroupMetrics> groups;       // parallel to group_names; with exclude = none also "repeat" and "new":
                                          // the metrics over repeated / new targets alone, of users that have them
  double seconds = 0.0;
  std::string exclude;                    // the exclusion it ranked under ("history", "none", ...)
  int64_t targets = 0;                    // targets evaluated (all users)
  int64_t repeat_targets = 0;             // of them, items that occur in their user's input history
  PerUserValues per_user;                 // empty unless EvalConfig::per_user (not in to_json)

  double repeat_share() const;

  const GroupMetrics& all() const { return groups.front(); }
  double value(const std::string& key, const std::string& group = "all") const;
  nlohmann::json to_json() const;
  static EvalResult from_json(const nlohmann::json& json);
  // The rows of a metric table: metric@k in the given order, then the rating metrics the result holds.
  std::vector<std::string> row_keys(const std::vector<int64_t>& ks, const std::vector<std::string>& metrics) const;
  // "N targets, R (x %) repeat an item of the user's input history (exclude = ...)"; empty without targets.
  std::string repeat_summary() const;
  // A fixed-width table: one row per metric@k, one column per group, then the share of repeated targets.
  std::string to_table(const std::vector<int64_t>& ks, const std::vector<std::string>& metrics) const;
};

// Optional user groups: user_group[u] indexes group_names (user ids are internal ids); -1 = in no group. And
// optional item groups (two, e.g. head and tail items): item_group[i] is 0 or 1; each user's targets are then also
// divided by their item's group and each part scored on its own, reported as the groups item_names[0] and [1].
struct UserGroups {
  std::vector<std::string> names;
  std::vector<int32_t> user_group;
  std::vector<std::string> item_names;
  std::vector<int32_t> item_group;  // empty: no item groups
};

// Head/tail users by training-history length: the `head_share` longest histories are "head", the rest "tail"
// (the S4Rec paper takes the longest 20 %). Ties at the boundary go by user id so the split is deterministic.
// With item_count > 0 also head/tail items: the ceil(head_item_share x item_count) items with the most training
// interactions (ties by lower id) are "head_items", the rest (the long tail, items never trained on included)
// "tail_items".
UserGroups head_tail_groups(const data::Sequences& train, double head_share, int32_t item_count = 0,
                            double head_item_share = 0.2);
// The groups a run's results report: head/tail users, and head/tail items when config.item_groups.
UserGroups result_groups(const data::Sequences& train, double head_share, int32_t item_count,
                         const EvalConfig& config);

EvalResult evaluate(ScoreSource& source, const data::EvalTask& task, const EvalConfig& config,
                    const UserGroups* groups = nullptr);

}  // namespace embrec::eval
