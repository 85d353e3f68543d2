// ItemKNN: top-N cosine neighbours from SAR's sparse co-occurrence, checkpointed as CSR buffers.
#include "embrec/models/itemknn.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "embrec/util/error.h"

namespace embrec::models {

ItemKnnConfig ItemKnnConfig::from(ConfigTable& table) {
  ItemKnnConfig c;
  c.neighbours = table.get_positive("neighbours", c.neighbours);
  c.shrink = table.get_at_least("shrink", c.shrink, 0.0);
  return c;
}

CsrMatrix itemknn_similarity(const CsrMatrix& cooccurrence, int64_t neighbours, double shrink) {
  const int32_t items = cooccurrence.row_count();
  std::vector<double> diagonal(items);
  for (int32_t i = 0; i < items; ++i) diagonal[i] = cooccurrence.at(i, i);
  std::vector<std::vector<std::pair<int32_t, float>>> rows(items);
#pragma omp parallel for schedule(dynamic, 16)
  for (int32_t i = 0; i < items; ++i) {
    auto& row = rows[i];
    for (int64_t p = cooccurrence.offsets[i]; p < cooccurrence.offsets[i + 1]; ++p) {
      const int32_t j = cooccurrence.columns[p];
      const double denominator = std::sqrt(diagonal[i] * diagonal[j]) + shrink;
      if (j != i && denominator > 0) row.emplace_back(j, static_cast<float>(cooccurrence.values[p] / denominator));
    }
    if (static_cast<int64_t>(row.size()) > neighbours) {
      auto better = [](const auto& a, const auto& b) {
        return a.second > b.second || (a.second == b.second && a.first < b.first);
      };
      std::nth_element(row.begin(), row.begin() + neighbours, row.end(), better);
      row.resize(neighbours);
      std::sort(row.begin(), row.end());
    }
  }
  CsrMatrix similarity;
  similarity.column_count = items;
  for (const auto& row : rows) {
    for (const auto& [column, value] : row) {
      similarity.columns.push_back(column);
      similarity.values.push_back(value);
    }
    similarity.offsets.push_back(similarity.nonzeros());
  }
  return similarity;
}

ItemKnn::ItemKnn(const ItemKnnConfig& config, const ModelContext& context)
    : config_(config), item_count_(context.item_count), similarity_(module_, "similarity") {}

void ItemKnn::fit(const data::Split& split) {
  const auto start = std::chrono::steady_clock::now();
  similarity_.assign(
      itemknn_similarity(item_cooccurrence(split.train, item_count_, 1), config_.neighbours, config_.shrink));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::info("itemknn: {} neighbours of {} items (shrink {}); fitted in {:.3f} s", config_.neighbours, item_count_,
               config_.shrink, seconds);
}

void ItemKnn::score_block(const data::Sequences& histories, const int32_t* users, int32_t count, float* out) {
  if (similarity_.row_count() != item_count_)
    fail("model 'itemknn': scores asked before fit() or a checkpoint load ({} similarity rows for {} items)",
         similarity_.row_count(), item_count_);
  // Checked here, outside the parallel loop: an exception must not leave an OpenMP region.
  for (int32_t row = 0; row < count; ++row) {
    if (users[row] < 0 || users[row] >= histories.user_count())
      fail("model 'itemknn': user {} has no history ({} users)", users[row], histories.user_count());
    for (const int32_t* it = histories.begin(users[row]); it != histories.end(users[row]); ++it)
      if (*it < 0 || *it >= item_count_)
        fail("model 'itemknn': history item {} outside the {} items", *it, item_count_);
  }
  const int64_t* offsets = similarity_.offsets();
  const int32_t* columns = similarity_.columns();
  const float* values = similarity_.values();
  const int64_t items = item_count_;
#pragma omp parallel for schedule(dynamic, 8)
  for (int32_t row = 0; row < count; ++row) {
    // Binarised like the training matrix: an item seen twice counts once.
    thread_local std::vector<int32_t> distinct;
    distinct.assign(histories.begin(users[row]), histories.end(users[row]));
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    float* scores = out + row * items;
    std::fill(scores, scores + items, 0.0f);
    for (int32_t i : distinct)
      for (int64_t q = offsets[i]; q < offsets[i + 1]; ++q) scores[columns[q]] += values[q];
  }
}

EMBREC_REGISTER_MODEL("itemknn", ItemKnn);

}  // namespace embrec::models
