// The prepared dataset: contiguous internal ids with maps back to the original ids, and per-user time-ordered
// interactions stored as CSR. Everything downstream (splits, samplers, models, eval) works on these types.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace embrec::data {

// Maps original (external) ids, kept as strings exactly as read, to contiguous internal ids 0..size()-1.
class IdMap {
 public:
  int32_t get_or_add(std::string_view external);
  // -1 when unknown.
  int32_t find(std::string_view external) const;
  const std::string& external(int32_t internal) const { return externals_[internal]; }
  int32_t size() const { return static_cast<int32_t>(externals_.size()); }
  const std::vector<std::string>& externals() const { return externals_; }
  // Rebuilds the map from a list of externals (used by the cache reader); duplicates are an error.
  static IdMap from_externals(std::vector<std::string> externals);

 private:
  std::vector<std::string> externals_;
  std::unordered_map<std::string, int32_t> index_;
};

// Per-user lists in CSR form: user u owns positions [offsets[u], offsets[u+1]).
// `ratings` and `timestamps` are either empty or parallel to `items`.
struct Sequences {
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> items;
  std::vector<float> ratings;
  std::vector<int64_t> timestamps;

  int32_t user_count() const { return static_cast<int32_t>(offsets.size()) - 1; }
  int64_t size() const { return static_cast<int64_t>(items.size()); }
  int64_t length(int32_t user) const { return offsets[user + 1] - offsets[user]; }
  const int32_t* begin(int32_t user) const { return items.data() + offsets[user]; }
  const int32_t* end(int32_t user) const { return items.data() + offsets[user + 1]; }
  bool has_ratings() const { return !ratings.empty(); }
  bool has_timestamps() const { return !timestamps.empty(); }

  // Appends one user's list (ratings/timestamps may be null when this Sequences has none).
  void push_user(const int32_t* item_begin, int64_t count, const float* rating_begin = nullptr,
                 const int64_t* timestamp_begin = nullptr);
  // Concatenates, per user, a's list then b's list (both must have the same user count).
  static Sequences concat(const Sequences& a, const Sequences& b);
};

struct Dataset {
  std::string name;
  IdMap users;
  IdMap items;
  Sequences interactions;  // all interactions, each user's in time order (ties keep file order)

  int32_t user_count() const { return users.size(); }
  int32_t item_count() const { return items.size(); }
};

// A split of a Dataset. Every Sequences has one list per user (possibly empty).
// valid/test hold the held-out targets; train is what models learn from.
struct Split {
  std::string method;
  Sequences train;
  Sequences valid;
  Sequences test;
  // The "user" split only: each valid or test user's input (the first part of their sequence), from which their
  // targets in valid or test are predicted; never trained on (their train lists are empty). Empty otherwise.
  Sequences eval_input;
};

// One evaluation stage: for each user, the history a model conditions on (also the items excluded from the
// ranking, except any that are targets) and the held-out targets. Users with no targets are skipped.
struct EvalTask {
  Sequences history;
  Sequences targets;
};

// Head users by history length (S4Rec paper: the longest 20 % of training sequences): 1 for the `head_share`
// longest lists, 0 for the rest; ties at the boundary go by user id so the split is deterministic.
std::vector<uint8_t> head_users(const Sequences& train, double head_share);

// valid: history = train, targets = valid. test: history = train + valid, targets = test. A "user" split:
// history = eval_input at both stages.
EvalTask make_eval_task(const Split& split, bool test_stage);

}  // namespace embrec::data
