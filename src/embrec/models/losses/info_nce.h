// InfoNCE with in-batch negatives and optional extra negatives (S4Rec Eq. 9-10: the prototypes of the clusters a
// user is not assigned to; ICLRec: intents), the contrastive piece of CL4SRec, ICLRec and S4Rec.
#pragma once

#include <torch/torch.h>

#include <string>

#include "embrec/models/batch_gather.h"
#include "embrec/models/similarity.h"

namespace embrec::models::losses {

struct InfoNceOptions {
  double temperature = 1.0;
  // Dot: raw inner products (the CL4SRec / ICLRec reference code); Cosine: L2-normalised first (SimCLR).
  Similarity similarity = Similarity::Dot;
  // Also contrast each anchor with the other anchors (the 2B - 2 negatives of SimCLR / CL4SRec), not only with the
  // other positives.
  bool anchor_negatives = true;
  // In a data-parallel job, the batch's rows of every rank (TensorBatch::gather): each anchor is contrasted with the
  // positives and anchors of the whole batch; the loss is the mean over this rank's anchors. Empty = one process.
  BatchGather gather;
};

// Mean over rows i of  -log( exp(s(a_i, p_i)) / [ sum_j exp(s(a_i, p_j)) + sum_{j != i} exp(s(a_i, a_j))
//                                                  + sum_k exp(s(a_i, e_k)) [k not excluded for i] ] ),  s = sim / T.
// anchors, positives [B, d] (this rank's rows); extra_negatives [K, d] or undefined; exclude [B, K] bool (true = not a
// negative for that row, e.g. the row's own prototype) or undefined; false_negatives [B, N] bool over the whole
// batch's N rows (N = B in one process; true = drop j from row i's in-batch negatives, e.g. users of the same intent;
// row i's own column is ignored) or undefined.
torch::Tensor info_nce(const torch::Tensor& anchors, const torch::Tensor& positives, const InfoNceOptions& options,
                       const torch::Tensor& extra_negatives = {}, const torch::Tensor& exclude = {},
                       const torch::Tensor& false_negatives = {});

}  // namespace embrec::models::losses
