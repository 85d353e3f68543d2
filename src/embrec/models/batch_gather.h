// The whole batch of a data-parallel job (train/world.h) for the losses that compare a batch's sequences with each
// other: in-batch negatives of a contrastive loss, Sinkhorn's equipartition over the batch. Each rank holds a
// share of the batch; gathering a per-row tensor gives every rank's rows, concatenated in rank order (the order of
// the batch in one process), with this rank's rows at [offset, offset + rows). Gradient flows back only into this
// rank's rows, as in distributed SimCLR and SwAV. In one process there is nothing to gather.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace embrec::models {

struct Gathered {
  torch::Tensor all;   // [global rows, ...]
  int64_t offset = 0;  // where this rank's rows start in `all`
};

// Empty in one process.
using BatchGather = std::function<Gathered(const torch::Tensor& local)>;

// gather(local), or {local, 0} when gather is empty.
inline Gathered gather_rows(const BatchGather& gather, const torch::Tensor& local) {
  return gather ? gather(local) : Gathered{local, 0};
}

// What turns a rank's share of a whole-batch loss (e.g. chunked_sampled_softmax_loss with a gather, whose ranks'
// results add up to the one-process loss) into what the trainer takes from every loss: a mean over the rank's
// sequences, which it weighs by their share of the batch. `rows` holds one row per sequence of this rank
// (TensorBatch::users). 1 in one process.
inline double share_to_mean(const BatchGather& gather, const torch::Tensor& rows) {
  if (!gather) return 1.0;
  return static_cast<double>(gather(rows).all.size(0)) / static_cast<double>(rows.size(0));
}

}  // namespace embrec::models
