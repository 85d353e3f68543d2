// Full softmax cross-entropy over all items, fused with the output projection and computed in row chunks.
//
// logits = hidden @ weight^T would be [tokens x items] (on Beauty, 1,500 x 12,101 floats a batch = 73 MB) and
// autograd would keep it and its softmax alive for backward; on this machine every fresh 73 MB costs ~0.2 s in page
// faults alone. Here forward computes the loss and both gradients chunk by chunk in one reused workspace (three
// GEMMs, the minimum), and backward only scales the stored gradients.
#pragma once

#include <torch/torch.h>

namespace embrec::models::losses {

// Mean over rows of -log softmax(hidden[r] . weight^T)[targets[r]].
// hidden [N, d] float, weight [I, d] float, targets [N] int64 in [0, I). Differentiable in hidden and weight.
torch::Tensor softmax_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                    const torch::Tensor& targets, int64_t chunk_rows = 1024);

}  // namespace embrec::models::losses
