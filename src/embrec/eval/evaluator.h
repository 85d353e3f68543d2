// The full-ranking evaluator: scores every item for every user in chunks of users into one reused buffer,
// masks each user's history, and computes metrics @K. Never materialises the users x items matrix; no torch.
//
// Order and ties: items are ranked by score descending, ties broken by internal item id ascending; the rank of a
// single target counts the candidates that beat it under that order. Excluded (history) items are never
// candidates; a target is never excluded, even when it also occurs in the history.
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

struct EvalConfig {
  std::vector<int64_t> ks{5, 10, 20};
  std::vector<std::string> metrics{"hr", "ndcg", "mrr", "map", "precision", "recall"};
  int32_t chunk_users = 256;
  bool exclude_history = true;
  // Which metric/k early stopping and "best" use, e.g. "ndcg@10".
  std::string select = "ndcg@10";

  static EvalConfig from(ConfigTable& table);
};

// Metrics of one group of users: "hr@10" -> mean over users.
struct GroupMetrics {
  int64_t users = 0;
  std::map<std::string, double> values;
};

struct EvalResult {
  std::vector<std::string> group_names;   // "all" first, then the groups asked for (e.g. "head", "tail")
  std::vector<GroupMetrics> groups;       // parallel to group_names
  double seconds = 0.0;

  const GroupMetrics& all() const { return groups.front(); }
  double value(const std::string& key, const std::string& group = "all") const;
  nlohmann::json to_json() const;
  static EvalResult from_json(const nlohmann::json& json);
  // A fixed-width table: one row per metric@k, one column per group.
  std::string to_table(const std::vector<int64_t>& ks, const std::vector<std::string>& metrics) const;
};

// Optional user groups: user_group[u] indexes group_names (user ids are internal ids); -1 = in no group.
struct UserGroups {
  std::vector<std::string> names;
  std::vector<int32_t> user_group;
};

// Head/tail users by training-history length: the `head_share` longest histories are "head", the rest "tail"
// (the S4Rec paper takes the longest 20 %). Ties at the boundary go by user id so the split is deterministic.
UserGroups head_tail_groups(const data::Sequences& train, double head_share);

EvalResult evaluate(ScoreSource& source, const data::EvalTask& task, const EvalConfig& config,
                    const UserGroups* groups = nullptr);

}  // namespace embrec::eval
