// In-batch (and mixed) sampled softmax with the log-Q correction.
#include "embrec/models/losses/sampled_softmax.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

namespace embrec::models::losses {

namespace F = torch::nn::functional;

namespace {

// Logits of the rows `users` (whose own items are `row_ids`, whose labels are the columns `labels`) over the
// candidates [items | extra], less their log Q; a column holding a row's own item other than its label is -inf.
torch::Tensor logits_over(const torch::Tensor& users, const torch::Tensor& row_ids, const torch::Tensor& labels,
                          const torch::Tensor& items, const torch::Tensor& item_ids, const torch::Tensor& log_q,
                          const torch::Tensor& extra, const torch::Tensor& extra_ids, const torch::Tensor& extra_log_q) {
  const bool has_extra = extra.defined() && extra.size(0) > 0;
  torch::Tensor candidates = has_extra ? torch::cat({items, extra}, 0) : items;
  torch::Tensor ids = has_extra ? torch::cat({item_ids, extra_ids}, 0) : item_ids;
  torch::Tensor logits = users.mm(candidates.t());
  if (log_q.defined()) {
    const torch::Tensor correction = has_extra ? torch::cat({log_q, extra_log_q}, 0) : log_q;
    logits = logits - correction.unsqueeze(0);
  }
  const torch::Tensor same = row_ids.unsqueeze(1).eq(ids.unsqueeze(0));
  const torch::Tensor is_label = labels.unsqueeze(1).eq(torch::arange(ids.size(0), labels.options()).unsqueeze(0));
  return logits.masked_fill(same.logical_and(is_label.logical_not()), -std::numeric_limits<float>::infinity());
}

}  // namespace

torch::Tensor sampled_softmax_logits(const torch::Tensor& users, const torch::Tensor& items, const torch::Tensor& item_ids,
                                     const torch::Tensor& log_q, const torch::Tensor& extra,
                                     const torch::Tensor& extra_ids, const torch::Tensor& extra_log_q) {
  // Row i's label is column i.
  const torch::Tensor labels = torch::arange(users.size(0), item_ids.options().dtype(torch::kLong));
  return logits_over(users, item_ids, labels, items, item_ids, log_q, extra, extra_ids, extra_log_q);
}

torch::Tensor sampled_softmax_loss(const torch::Tensor& users, const torch::Tensor& items, const torch::Tensor& item_ids,
                                   const torch::Tensor& log_q, const torch::Tensor& extra,
                                   const torch::Tensor& extra_ids, const torch::Tensor& extra_log_q) {
  const torch::Tensor logits = sampled_softmax_logits(users, items, item_ids, log_q, extra, extra_ids, extra_log_q);
  return F::cross_entropy(logits, torch::arange(users.size(0), item_ids.options().dtype(torch::kLong)));
}

namespace {

// The pairs' order: as they are when they fit one softmax, else shuffled by `seed`; and the number of chunks.
std::vector<int64_t> pair_order(int64_t pairs, int64_t max_pairs, uint64_t seed, int64_t& chunks) {
  std::vector<int64_t> order(static_cast<size_t>(pairs));
  std::iota(order.begin(), order.end(), 0);
  chunks = 1;
  if (pairs <= max_pairs) return order;
  std::mt19937_64 random(seed);
  std::shuffle(order.begin(), order.end(), random);
  chunks = (pairs + max_pairs - 1) / max_pairs;
  return order;
}

// Even chunk sizes (never one full chunk and a tiny remainder): chunk c is order[begin, end).
std::pair<int64_t, int64_t> chunk_bounds(int64_t pairs, int64_t chunks, int64_t c) {
  return {c * pairs / chunks, (c + 1) * pairs / chunks};
}

// This rank's share of the loss over the whole batch's pairs (see the header).
torch::Tensor gathered_chunked_loss(const torch::Tensor& users, const torch::Tensor& items,
                                    const torch::Tensor& item_ids, const torch::Tensor& log_q, int64_t max_pairs,
                                    uint64_t seed, const torch::Tensor& extra, const torch::Tensor& extra_ids,
                                    const torch::Tensor& extra_log_q, const BatchGather& gather) {
  const Gathered all_items = gather(items);
  const torch::Tensor all_ids = gather(item_ids).all;
  const torch::Tensor all_log_q = log_q.defined() ? gather(log_q).all : torch::Tensor();
  const int64_t offset = all_items.offset, local = users.size(0), pairs = all_ids.size(0);
  int64_t chunks = 1;
  const std::vector<int64_t> order = pair_order(pairs, max_pairs, seed, chunks);
  const auto long_options = item_ids.options().dtype(torch::kLong);
  torch::Tensor total = torch::zeros({}, users.options());
  for (int64_t c = 0; c < chunks; ++c) {
    const auto [begin, end] = chunk_bounds(pairs, chunks, c);
    // The chunk's rows that are this rank's pairs, and their label columns among the chunk's candidates.
    std::vector<int64_t> rows, labels;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t pair = order[static_cast<size_t>(k)];
      if (pair >= offset && pair < offset + local) {
        rows.push_back(pair - offset);
        labels.push_back(k - begin);
      }
    }
    if (rows.empty()) continue;
    const torch::Tensor chunk = torch::tensor(std::vector<int64_t>(order.begin() + begin, order.begin() + end))
                                    .to(long_options.device());
    const torch::Tensor row_index = torch::tensor(rows).to(long_options.device());
    const torch::Tensor label = torch::tensor(labels).to(long_options.device());
    const torch::Tensor logits =
        logits_over(users.index_select(0, row_index), item_ids.index_select(0, row_index), label,
                    all_items.all.index_select(0, chunk), all_ids.index_select(0, chunk),
                    all_log_q.defined() ? all_log_q.index_select(0, chunk) : all_log_q, extra, extra_ids, extra_log_q);
    total = total + F::cross_entropy(logits, label, F::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                        static_cast<double>(end - begin);
  }
  return total / static_cast<double>(chunks);
}

}  // namespace

torch::Tensor chunked_sampled_softmax_loss(const torch::Tensor& users, const torch::Tensor& items,
                                           const torch::Tensor& item_ids, const torch::Tensor& log_q, int64_t max_pairs,
                                           uint64_t seed, const torch::Tensor& extra, const torch::Tensor& extra_ids,
                                           const torch::Tensor& extra_log_q, const BatchGather& gather) {
  if (gather)
    return gathered_chunked_loss(users, items, item_ids, log_q, max_pairs, seed, extra, extra_ids, extra_log_q,
                                 gather);
  const int64_t pairs = item_ids.size(0);
  if (pairs <= max_pairs) return sampled_softmax_loss(users, items, item_ids, log_q, extra, extra_ids, extra_log_q);
  int64_t chunks = 1;
  const std::vector<int64_t> order = pair_order(pairs, max_pairs, seed, chunks);
  const torch::Tensor permutation = torch::tensor(order).to(item_ids.device());
  torch::Tensor total = torch::zeros({}, users.options());
  for (int64_t c = 0; c < chunks; ++c) {
    const auto [begin, end] = chunk_bounds(pairs, chunks, c);
    const torch::Tensor rows = permutation.slice(0, begin, end);
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
