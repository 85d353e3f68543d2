// RawLog -> Dataset: rating threshold, duplicate policy, iterative k-core, contiguous ids, per-user time order.
#include "embrec/data/prepare.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <unordered_map>

#include "embrec/util/error.h"

namespace embrec::data {

std::vector<bool> kcore_mask(const std::vector<int32_t>& user, const std::vector<int32_t>& item, int32_t user_count,
                             int32_t item_count, int user_core, int item_core) {
  std::vector<bool> keep(user.size(), true);
  if (user_core <= 1 && item_core <= 1) return keep;
  std::vector<int64_t> user_degree(user_count), item_degree(item_count);
  // Removing users can push items under their threshold and back: repeat until a pass removes nothing.
  for (bool changed = true; changed;) {
    changed = false;
    std::fill(user_degree.begin(), user_degree.end(), 0);
    std::fill(item_degree.begin(), item_degree.end(), 0);
    for (size_t i = 0; i < user.size(); ++i) {
      if (!keep[i]) continue;
      ++user_degree[user[i]];
      ++item_degree[item[i]];
    }
    for (size_t i = 0; i < user.size(); ++i) {
      if (keep[i] && (user_degree[user[i]] < user_core || item_degree[item[i]] < item_core)) {
        keep[i] = false;
        changed = true;
      }
    }
  }
  return keep;
}

Dataset prepare_dataset(const RawLog& log, const PrepareOptions& options) {
  const std::string name = std::filesystem::path(log.source).filename().string();
  const size_t n = static_cast<size_t>(log.size());
  std::vector<bool> keep(n, true);
  if (options.has_min_rating) {
    for (size_t i = 0; i < n; ++i) keep[i] = log.rating[i] >= options.min_rating;
  }
  if (options.dedup != Dedup::Keep) {
    // Per (user, item) pair, the kept entry: earliest (first) or latest (last) by time, file order on ties.
    std::unordered_map<uint64_t, size_t> chosen;
    chosen.reserve(n);
    auto earlier = [&](size_t a, size_t b) {
      return log.timestamp[a] < log.timestamp[b] || (log.timestamp[a] == log.timestamp[b] && a < b);
    };
    for (size_t i = 0; i < n; ++i) {
      if (!keep[i]) continue;
      const uint64_t key = (static_cast<uint64_t>(log.user[i]) << 32) | static_cast<uint32_t>(log.item[i]);
      auto [it, inserted] = chosen.try_emplace(key, i);
      if (inserted) continue;
      const bool replace = options.dedup == Dedup::First ? earlier(i, it->second) : earlier(it->second, i);
      keep[replace ? it->second : i] = false;
      if (replace) it->second = i;
    }
  }
  std::vector<int32_t> users, items;
  std::vector<size_t> rows;
  for (size_t i = 0; i < n; ++i)
    if (keep[i]) rows.push_back(i);
  if (rows.empty())
    fail("{}: no interactions left after the rating threshold (min_rating = {})", name, options.min_rating);
  users.reserve(rows.size());
  items.reserve(rows.size());
  for (size_t i : rows) {
    users.push_back(log.user[i]);
    items.push_back(log.item[i]);
  }
  const std::vector<bool> core = kcore_mask(users, items, log.users.size(), log.items.size(), options.user_core,
                                            options.item_core);
  std::vector<size_t> kept;
  for (size_t r = 0; r < rows.size(); ++r)
    if (core[r]) kept.push_back(rows[r]);
  if (kept.empty())
    fail("{}: k-core filtering (user_core = {}, item_core = {}) removed every interaction", name, options.user_core,
         options.item_core);

  // New contiguous ids in order of first appearance in the file.
  Dataset dataset;
  dataset.name = std::filesystem::path(log.source).stem().string();
  std::vector<int32_t> user_id(log.users.size(), -1), item_id(log.items.size(), -1);
  for (size_t i : kept) {
    if (user_id[log.user[i]] < 0) user_id[log.user[i]] = dataset.users.get_or_add(log.users.external(log.user[i]));
    if (item_id[log.item[i]] < 0) item_id[log.item[i]] = dataset.items.get_or_add(log.items.external(log.item[i]));
  }
  // Group by user (counting sort keeps file order), then order each user's list by time, stably.
  const int32_t user_count = dataset.users.size();
  std::vector<int64_t> offsets(user_count + 1, 0);
  for (size_t i : kept) ++offsets[user_id[log.user[i]] + 1];
  std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
  std::vector<size_t> order(kept.size());
  std::vector<int64_t> cursor(offsets.begin(), offsets.end() - 1);
  for (size_t i : kept) order[cursor[user_id[log.user[i]]]++] = i;
  Sequences& all = dataset.interactions;
  all.offsets = offsets;
  all.items.resize(kept.size());
  if (log.has_rating) all.ratings.resize(kept.size());
  all.timestamps.resize(kept.size());
  for (int32_t u = 0; u < user_count; ++u) {
    std::stable_sort(order.begin() + offsets[u], order.begin() + offsets[u + 1],
                     [&](size_t a, size_t b) { return log.timestamp[a] < log.timestamp[b]; });
    for (int64_t p = offsets[u]; p < offsets[u + 1]; ++p) {
      const size_t i = order[p];
      all.items[p] = item_id[log.item[i]];
      if (log.has_rating) all.ratings[p] = log.rating[i];
      all.timestamps[p] = log.timestamp[i];
    }
  }
  return dataset;
}

}  // namespace embrec::data
