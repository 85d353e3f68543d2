// In-batch (and mixed) sampled softmax with the log-Q correction.
#include "embrec/models/losses/sampled_softmax.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>

namespace embrec::models::losses {

namespace F = torch::nn::functional;

torch::Tensor sampled_softmax_logits(const torch::Tensor& users, const torch::Tensor& items, const torch::Tensor& item_ids,
                                     const torch::Tensor& log_q, const torch::Tensor& extra,
                                     const torch::Tensor& extra_ids, const torch::Tensor& extra_log_q) {
  const int64_t rows = users.size(0);
  const bool has_extra = extra.defined() && extra.size(0) > 0;
  torch::Tensor candidates = has_extra ? torch::cat({items, extra}, 0) : items;
  torch::Tensor ids = has_extra ? torch::cat({item_ids, extra_ids}, 0) : item_ids;
  torch::Tensor logits = users.mm(candidates.t());
  if (log_q.defined()) {
    const torch::Tensor correction = has_extra ? torch::cat({log_q, extra_log_q}, 0) : log_q;
    logits = logits - correction.unsqueeze(0);
  }
  // Row i's own item in any column but its label is not a negative.
  const torch::Tensor same = item_ids.unsqueeze(1).eq(ids.unsqueeze(0));
  const torch::Tensor label = torch::eye(rows, ids.size(0), same.options());
  return logits.masked_fill(same.logical_and(label.logical_not()), -std::numeric_limits<float>::infinity());
}

torch::Tensor sampled_softmax_loss(const torch::Tensor& users, const torch::Tensor& items, const torch::Tensor& item_ids,
                                   const torch::Tensor& log_q, const torch::Tensor& extra,
                                   const torch::Tensor& extra_ids, const torch::Tensor& extra_log_q) {
  const torch::Tensor logits = sampled_softmax_logits(users, items, item_ids, log_q, extra, extra_ids, extra_log_q);
  return F::cross_entropy(logits, torch::arange(users.size(0), item_ids.options().dtype(torch::kLong)));
}

torch::Tensor chunked_sampled_softmax_loss(const torch::Tensor& users, const torch::Tensor& items,
                                           const torch::Tensor& item_ids, const torch::Tensor& log_q, int64_t max_pairs,
                                           uint64_t seed, const torch::Tensor& extra, const torch::Tensor& extra_ids,
                                           const torch::Tensor& extra_log_q) {
  const int64_t pairs = item_ids.size(0);
  if (pairs <= max_pairs) return sampled_softmax_loss(users, items, item_ids, log_q, extra, extra_ids, extra_log_q);
  std::vector<int64_t> order(static_cast<size_t>(pairs));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 random(seed);
  std::shuffle(order.begin(), order.end(), random);
  const torch::Tensor permutation = torch::tensor(order).to(item_ids.device());
  const int64_t chunks = (pairs + max_pairs - 1) / max_pairs;
  torch::Tensor total = torch::zeros({}, users.options());
  for (int64_t c = 0; c < chunks; ++c) {
    // Even chunk sizes (never one full chunk and a tiny remainder).
    const torch::Tensor rows = permutation.slice(0, c * pairs / chunks, (c + 1) * pairs / chunks);
    total = total + sampled_softmax_loss(users.index_select(0, rows), items.index_select(0, rows),
                                         item_ids.index_select(0, rows),
                                         log_q.defined() ? log_q.index_select(0, rows) : log_q, extra, extra_ids,
                                         extra_log_q);
  }
  return total / static_cast<double>(chunks);
}

torch::Tensor log_training_share(const std::vector<int32_t>& train_items, int32_t item_count) {
  std::vector<float> counts(static_cast<size_t>(item_count), 1.0f);
  for (int32_t item : train_items) counts[item] += 1.0f;
  return (torch::tensor(counts) / static_cast<double>(train_items.size() + counts.size())).log();
}

}  // namespace embrec::models::losses
