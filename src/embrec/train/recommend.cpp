// Top-K from a loaded run: embedding models through an exact item index, count-based ones through score rows.
#include "embrec/train/recommend.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "embrec/util/error.h"

namespace embrec::train {

namespace {

// Top-k of one row of scores, best first, ties by lower item id (the ItemIndex order), without `exclude`.
std::vector<index::ScoredItem> top_k_of_row(const float* scores, int32_t item_count, int64_t k,
                                            const int32_t* exclude, int64_t exclude_count) {
  std::vector<float> row(scores, scores + item_count);
  std::vector<uint8_t> excluded(static_cast<size_t>(item_count), 0);
  for (int64_t i = 0; i < exclude_count; ++i)
    if (exclude[i] >= 0 && exclude[i] < item_count) excluded[exclude[i]] = 1;
  std::vector<int32_t> order;
  order.reserve(static_cast<size_t>(item_count));
  for (int32_t item = 0; item < item_count; ++item)
    if (!excluded[item]) order.push_back(item);
  const size_t keep = static_cast<size_t>(std::clamp<int64_t>(k, 0, static_cast<int64_t>(order.size())));
  const auto better = [&](int32_t a, int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); };
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), better);
  std::vector<index::ScoredItem> out(keep);
  for (size_t i = 0; i < keep; ++i) out[i] = {order[i], row[order[i]]};
  return out;
}

// Ranks `count` queries: user vectors from the model (histories[queries] / user ids) against its items.
Recommendations rank(models::Model& model, const data::Sequences& histories, const std::vector<int32_t>& rows,
                     int32_t item_count, int64_t k, bool exclude_seen) {
  const int32_t count = static_cast<int32_t>(rows.size());
  Recommendations out;
  if (count == 0) return out;
  torch::NoGradGuard no_grad;
  if (model.dim() > 0) {
    const torch::Tensor items = model.item_vectors().to(torch::kCPU, torch::kFloat32).contiguous();
    const torch::Tensor users =
        model.user_vectors(histories, rows.data(), count).to(torch::kCPU, torch::kFloat32).contiguous();
    const index::ItemIndex search_index =
        index::ItemIndex::build(items.data_ptr<float>(), items.size(0), static_cast<int32_t>(items.size(1)), {});
    std::vector<std::vector<int32_t>> excludes;
    if (exclude_seen)
      for (int32_t row : rows) excludes.emplace_back(histories.begin(row), histories.end(row));
    return search_index.search_batch(users.data_ptr<float>(), count, k, excludes);
  }
  std::vector<float> scores(static_cast<size_t>(count) * item_count);
  model.score_block(histories, rows.data(), count, scores.data());
  for (int32_t q = 0; q < count; ++q) {
    const int32_t row = rows[q];
    out.push_back(top_k_of_row(scores.data() + static_cast<size_t>(q) * item_count, item_count, k,
                               histories.begin(row), exclude_seen ? histories.length(row) : 0));
  }
  return out;
}

}  // namespace

Recommendations recommend_users(Experiment& experiment, const std::vector<int32_t>& users, int64_t k,
                                bool exclude_seen) {
  const data::Dataset& dataset = experiment.data.dataset;
  for (int32_t user : users)
    if (user < 0 || user >= dataset.user_count()) fail("recommend: internal user id {} out of range", user);
  return rank(*experiment.model, dataset.interactions, users, dataset.item_count(), k, exclude_seen);
}

Recommendations recommend_histories(Experiment& experiment, const data::Sequences& histories, int64_t k,
                                    bool exclude_seen) {
  models::Model& model = *experiment.model;
  if (!model.encodes_histories())
    fail("recommend: model '{}' learns a vector per known user and cannot encode a fresh history; ask for known "
         "users instead",
         model.name());
  const int32_t item_count = experiment.data.dataset.item_count();
  for (int32_t item : histories.items)
    if (item < 0 || item >= item_count) fail("recommend: internal item id {} out of range", item);
  std::vector<int32_t> rows(static_cast<size_t>(histories.user_count()));
  std::iota(rows.begin(), rows.end(), 0);
  return rank(model, histories, rows, item_count, k, exclude_seen);
}

}  // namespace embrec::train
