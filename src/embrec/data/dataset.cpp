// IdMap, Sequences, Features lookups and EvalTask construction.
#include "embrec/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "embrec/data/news.h"
#include "embrec/util/error.h"

namespace embrec::data {

int32_t IdMap::get_or_add(std::string_view external) {
  auto [it, inserted] = index_.try_emplace(std::string(external), static_cast<int32_t>(externals_.size()));
  if (inserted) externals_.emplace_back(external);
  return it->second;
}

int32_t IdMap::find(std::string_view external) const {
  auto it = index_.find(std::string(external));
  return it == index_.end() ? -1 : it->second;
}

IdMap IdMap::from_externals(std::vector<std::string> externals) {
  IdMap map;
  map.index_.reserve(externals.size());
  for (size_t i = 0; i < externals.size(); ++i) {
    if (!map.index_.emplace(externals[i], static_cast<int32_t>(i)).second) fail("duplicate id '{}' in id map", externals[i]);
  }
  map.externals_ = std::move(externals);
  return map;
}

int32_t Features::field_index(std::string_view name) const {
  for (size_t f = 0; f < fields.size(); ++f)
    if (fields[f] == name) return static_cast<int32_t>(f);
  return -1;
}

void Sequences::push_user(const int32_t* item_begin, int64_t count, const float* rating_begin,
                          const int64_t* timestamp_begin) {
  items.insert(items.end(), item_begin, item_begin + count);
  if (rating_begin) ratings.insert(ratings.end(), rating_begin, rating_begin + count);
  if (timestamp_begin) timestamps.insert(timestamps.end(), timestamp_begin, timestamp_begin + count);
  offsets.push_back(static_cast<int64_t>(items.size()));
}

Sequences Sequences::concat(const Sequences& a, const Sequences& b) {
  if (a.user_count() != b.user_count()) fail("internal: concat of {} and {} users", a.user_count(), b.user_count());
  // An empty part (e.g. the valid stage of a 75/25 split) has no ratings to carry and must not drop the other's.
  const bool ratings = (a.has_ratings() || a.items.empty()) && (b.has_ratings() || b.items.empty()) &&
                       (a.has_ratings() || b.has_ratings());
  const bool timestamps = (a.has_timestamps() || a.items.empty()) && (b.has_timestamps() || b.items.empty()) &&
                          (a.has_timestamps() || b.has_timestamps());
  Sequences out;
  out.items.reserve(a.items.size() + b.items.size());
  for (int32_t u = 0; u < a.user_count(); ++u) {
    for (const Sequences* part : {&a, &b}) {
      const int64_t lo = part->offsets[u], hi = part->offsets[u + 1];
      out.items.insert(out.items.end(), part->items.begin() + lo, part->items.begin() + hi);
      if (ratings) out.ratings.insert(out.ratings.end(), part->ratings.begin() + lo, part->ratings.begin() + hi);
      if (timestamps)
        out.timestamps.insert(out.timestamps.end(), part->timestamps.begin() + lo, part->timestamps.begin() + hi);
    }
    out.offsets.push_back(static_cast<int64_t>(out.items.size()));
  }
  return out;
}

EvalTask make_eval_task(const Split& split, bool test_stage) {
  EvalTask task;
  if (split.method == "user") {
    task.history = split.eval_input;
    task.targets = test_stage ? split.test : split.valid;
    return task;
  }
  if (split.impressions) {  // news: each stage's own histories, impressions and news of the day (data/news.h)
    const ImpressionSplit& impressions = *split.impressions;
    task.history = test_stage ? impressions.test_history : impressions.train_history;
    task.targets = test_stage ? split.test : split.valid;
    task.impressions = std::shared_ptr<const ImpressionSet>(split.impressions,
                                                            test_stage ? &impressions.test : &impressions.valid);
    task.rankable = test_stage ? impressions.test_news : impressions.valid_news;
    return task;
  }
  task.history = test_stage ? Sequences::concat(split.train, split.valid) : split.train;
  task.targets = test_stage ? split.test : split.valid;
  return task;
}

EvalTask make_cold_task(const Split& split) {
  EvalTask task;
  task.history = Sequences::concat(Sequences::concat(split.train, split.valid), split.test);
  if (split.method == "user") task.history = Sequences::concat(split.eval_input, task.history);
  task.targets = split.cold;
  return task;
}

std::vector<uint8_t> head_users(const Sequences& train, double head_share) {
  const int32_t users = train.user_count();
  std::vector<int32_t> order(users);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return train.length(a) > train.length(b); });
  const int32_t head_count = std::min(users, static_cast<int32_t>(std::lround(head_share * users)));
  std::vector<uint8_t> head(users, 0);
  for (int32_t i = 0; i < head_count; ++i) head[order[i]] = 1;
  return head;
}

}  // namespace embrec::data
