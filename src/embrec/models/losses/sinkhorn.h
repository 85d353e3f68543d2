// Sinkhorn-Knopp on a batch score matrix: the equipartitioned cluster targets Q of S4Rec's online clustering
// (S4Rec paper Eq. 5-7, after SwAV): Q = diag(m) exp(S / epsilon) diag(v) with rows summing to 1/B and columns to
// 1/K, so a batch cannot collapse onto one prototype. No gradient flows through Q.
#pragma once

#include <torch/torch.h>

namespace embrec::models::losses {

// scores [B, K] (e.g. z_u . mu_k); returns Q [B, K] on the transportation polytope {Q >= 0, Q 1_K = 1_B / B,
// Q^T 1_B = 1_K / K}. Iterations alternate column then row normalisation in the log domain (stable for small
// epsilon); the rows are exact after the last one, the columns converge geometrically.
torch::Tensor sinkhorn(const torch::Tensor& scores, double epsilon, int64_t iterations);

// L_Clust (S4Rec Eq. 3-4): mean over rows of -sum_k q_k log softmax(scores / tau)_k, with targets [B, K] whose rows
// sum to 1 (B * sinkhorn(...)); the targets carry no gradient.
torch::Tensor clustering_cross_entropy(const torch::Tensor& scores, const torch::Tensor& targets, double tau);

}  // namespace embrec::models::losses
