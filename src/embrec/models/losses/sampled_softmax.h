// The sampled softmax of retrieval models: each (user, item) pair of a batch against the batch's other items and
// optional extra sampled items, with the log-Q correction (Yi et al., RecSys 2019): a candidate's logit is its
// score minus the log of the probability with which it was drawn, since in-batch candidates come by popularity
// and would otherwise over-penalise popular items. Shared by MF (negatives = "in_batch") and the two-tower model.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "embrec/models/batch_gather.h"

namespace embrec::models::losses {

// Logits [B, B + K] of rows i over columns j:  users_i · candidates_j − log_q_j, where the candidates are the
// batch's own items [B, d] (row i's label is column i) followed by `extra` [K, d] (or undefined). Scores are taken
// as given (scale them by 1/τ first). `item_ids` [B] and `extra_ids` [K] are the candidates' item ids: a column
// holding row i's own item other than its label (the same item twice in a batch, or drawn again among the extras)
// is no negative and is set to -inf. `log_q` [B] and `extra_log_q` [K] are undefined for no correction.
torch::Tensor sampled_softmax_logits(const torch::Tensor& users, const torch::Tensor& items, const torch::Tensor& item_ids,
                                     const torch::Tensor& log_q, const torch::Tensor& extra = {},
                                     const torch::Tensor& extra_ids = {}, const torch::Tensor& extra_log_q = {});

// Mean over rows of the cross-entropy of sampled_softmax_logits with row i's label at column i.
torch::Tensor sampled_softmax_loss(const torch::Tensor& users, const torch::Tensor& items, const torch::Tensor& item_ids,
                                   const torch::Tensor& log_q, const torch::Tensor& extra = {},
                                   const torch::Tensor& extra_ids = {}, const torch::Tensor& extra_log_q = {});

// The batch's pairs in a random order seeded by `seed`, cut into chunks of at most `max_pairs` rows, each chunk a
// sampled_softmax_loss against its own items (and all of `extra`); the mean of the chunks' losses. A large batch of
// users holds thousands of pairs (16 ML-1M users ~2,600): chunking bounds the logit matrix and gives every model
// that uses it the same softmax size. With at most max_pairs pairs: one softmax, in order (no shuffle).
// In a data-parallel job (`gather` set, TensorBatch::gather) the arguments are this rank's pairs: the chunks are
// drawn over the whole batch's pairs (the same on every rank), each chunk's candidates are its items whichever rank
// holds them, and the result is this rank's share of the one-process loss: the sum over its pairs of their
// cross-entropy / (chunk size x chunk count), so that the ranks' results add up to it. Gradient reaches another
// rank's items only through that rank's own pairs (models/batch_gather.h).
torch::Tensor chunked_sampled_softmax_loss(const torch::Tensor& users, const torch::Tensor& items,
                                           const torch::Tensor& item_ids, const torch::Tensor& log_q, int64_t max_pairs,
                                           uint64_t seed, const torch::Tensor& extra = {},
                                           const torch::Tensor& extra_ids = {}, const torch::Tensor& extra_log_q = {},
                                           const BatchGather& gather = {});

// log Q from exact counts: each item's share of the training interactions `train_items`, counted add-one so an item
// never trained on has a finite log. [item_count] float32 on the CPU.
torch::Tensor log_training_share(const std::vector<int32_t>& train_items, int32_t item_count);

}  // namespace embrec::models::losses
