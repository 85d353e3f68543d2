// The prepared dataset: contiguous internal ids with maps back to the original ids, per-user time-ordered
// interactions stored as CSR, and the items' and users' categorical features. Everything downstream (splits,
// samplers, models, eval) works on these types.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace embrec::data {

struct NewsContent;     // data/news.h
struct ImpressionSet;   // data/news.h
struct ImpressionSplit;  // data/news.h

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

// Categorical features of one side (items or users) per internal id: named fields, each single-valued (at most one
// value) or multi-valued (any number, e.g. a movie's genres). Values are opaque strings as read. Entity e's values
// of field f are values[offsets[c] .. offsets[c + 1]) for the cell c = e * field_count() + f; an entity that has no
// row in the feature file has no values. No fields (and no entities) when no features are configured.
struct Features {
  std::vector<std::string> fields;
  std::vector<uint8_t> multi_valued;  // per field: 1 when the field may hold several values
  std::vector<int64_t> offsets{0};    // per (entity, field) cell, entity-major
  std::vector<std::string> values;

  bool empty() const { return fields.empty(); }
  int32_t field_count() const { return static_cast<int32_t>(fields.size()); }
  int32_t entity_count() const {
    return fields.empty() ? 0 : static_cast<int32_t>((offsets.size() - 1) / fields.size());
  }
  // The position of the field named `name`, -1 when there is none.
  int32_t field_index(std::string_view name) const;
  const std::string* begin(int32_t entity, int32_t field) const { return values.data() + offsets[cell(entity, field)]; }
  const std::string* end(int32_t entity, int32_t field) const {
    return values.data() + offsets[cell(entity, field) + 1];
  }
  int64_t value_count(int32_t entity, int32_t field) const {
    return offsets[cell(entity, field) + 1] - offsets[cell(entity, field)];
  }

 private:
  int64_t cell(int32_t entity, int32_t field) const {
    return static_cast<int64_t>(entity) * static_cast<int64_t>(fields.size()) + field;
  }
};

struct Dataset {
  std::string name;
  IdMap users;
  IdMap items;
  Sequences interactions;  // all interactions, each user's in time order (ties keep file order)
  // [data.item_features] and [data.user_features], per internal id (data/features.h); empty when not configured.
  Features item_features;
  Features user_features;
  // News data ([data] format = "mind"): the encoded title and categories of every item (data/news.h); null otherwise.
  std::shared_ptr<const NewsContent> news;

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
  // With [data.split] cold_item_ratio > 0: per user, the interactions with the held-out cold items (time order),
  // in no other part. Empty otherwise.
  Sequences cold;
  // News data: the impressions of each stage and the histories they carry (data/news.h); null otherwise.
  std::shared_ptr<const ImpressionSplit> impressions;
};

// One evaluation stage: for each user, the history a model conditions on (also the items excluded from the
// ranking, except any that are targets) and the held-out targets. Users with no targets are skipped.
struct EvalTask {
  Sequences history;
  Sequences targets;
  // News data: the stage's impressions, scored per impression (AUC, MRR, nDCG@5/10 of eval/impression_metrics.h)
  // besides the full ranking; null otherwise.
  std::shared_ptr<const ImpressionSet> impressions;
  // Per item, 1 when it takes part in the full ranking (news data: the news shown at the stage); empty = every
  // item. Decided by the stage as a whole, never by a user's answer.
  std::vector<uint8_t> rankable;
};

// Head users by history length (S4Rec paper: the longest 20 % of training sequences): 1 for the `head_share`
// longest lists, 0 for the rest; ties at the boundary go by user id so the split is deterministic.
std::vector<uint8_t> head_users(const Sequences& train, double head_share);

// valid: history = train, targets = valid. test: history = train + valid, targets = test. A "user" split:
// history = eval_input at both stages.
EvalTask make_eval_task(const Split& split, bool test_stage);
// The cold-start stage: history = everything known of the user (train + valid + test, or the eval input of a
// "user" split), targets = the user's interactions with cold items (Split::cold), ranked among all items.
EvalTask make_cold_task(const Split& split);

}  // namespace embrec::data
