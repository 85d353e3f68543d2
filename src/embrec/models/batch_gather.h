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

}  // namespace embrec::models
