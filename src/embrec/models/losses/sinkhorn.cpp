// Log-domain Sinkhorn-Knopp.
#include "embrec/models/losses/sinkhorn.h"

#include <cmath>

#include "embrec/util/error.h"

namespace embrec::models::losses {

torch::Tensor sinkhorn(const torch::Tensor& scores, double epsilon, int64_t iterations) {
  if (scores.dim() != 2 || scores.size(0) == 0 || scores.size(1) == 0)
    fail("sinkhorn: scores must be a non-empty [B, K] matrix");
  if (!(epsilon > 0)) fail("sinkhorn: epsilon must be positive, got {}", epsilon);
  if (iterations < 1) fail("sinkhorn: iterations must be >= 1, got {}", iterations);
  torch::NoGradGuard no_grad;
  const double rows = static_cast<double>(scores.size(0)), columns = static_cast<double>(scores.size(1));
  // Double precision: exp(S / epsilon) with epsilon = 0.05 overflows float32 long before it converges.
  auto log_q = scores.to(torch::kFloat64) / epsilon;
  for (int64_t it = 0; it < iterations; ++it) {
    log_q = log_q - torch::logsumexp(log_q, 0, true) - std::log(columns);  // columns sum to 1/K
    log_q = log_q - torch::logsumexp(log_q, 1, true) - std::log(rows);     // rows sum to 1/B
  }
  return log_q.exp().to(scores.scalar_type());
}

torch::Tensor clustering_cross_entropy(const torch::Tensor& scores, const torch::Tensor& targets, double tau) {
  if (!scores.sizes().equals(targets.sizes())) fail("clustering_cross_entropy: scores and targets differ in shape");
  if (!(tau > 0)) fail("clustering_cross_entropy: temperature must be positive, got {}", tau);
  return -(targets.detach() * torch::log_softmax(scores / tau, 1)).sum(1).mean();
}

}  // namespace embrec::models::losses
