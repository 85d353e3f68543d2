// InfoNCE as one cross-entropy over [positives | other anchors | extra negatives].
#include "embrec/models/losses/info_nce.h"

#include "embrec/util/error.h"

namespace embrec::models::losses {

torch::Tensor info_nce(const torch::Tensor& anchors, const torch::Tensor& positives, const InfoNceOptions& options,
                       const torch::Tensor& extra_negatives, const torch::Tensor& exclude,
                       const torch::Tensor& false_negatives) {
  if (anchors.dim() != 2 || !anchors.sizes().equals(positives.sizes()))
    fail("info_nce: anchors and positives must both be [B, d]");
  if (!(options.temperature > 0)) fail("info_nce: temperature must be positive, got {}", options.temperature);
  const int64_t batch = anchors.size(0);
  auto a = anchors, p = positives, e = extra_negatives;
  if (options.similarity == Similarity::Cosine) {
    a = torch::nn::functional::normalize(a, torch::nn::functional::NormalizeFuncOptions().dim(1));
    p = torch::nn::functional::normalize(p, torch::nn::functional::NormalizeFuncOptions().dim(1));
    if (e.defined()) e = torch::nn::functional::normalize(e, torch::nn::functional::NormalizeFuncOptions().dim(1));
  }
  const double inverse_temperature = 1.0 / options.temperature;
  auto bool_options = torch::TensorOptions().dtype(torch::kBool).device(anchors.device());
  auto eye = torch::eye(batch, bool_options);
  // Masked entries get -inf: exp(-inf) = 0 removes them from the denominator exactly.
  const double minus_infinity = -std::numeric_limits<double>::infinity();
  std::vector<torch::Tensor> blocks;
  auto with_positives = torch::matmul(a, p.t()) * inverse_temperature;  // [B, B], the target is the diagonal
  if (false_negatives.defined()) with_positives = with_positives.masked_fill(false_negatives.logical_and(eye.logical_not()), minus_infinity);
  blocks.push_back(with_positives);
  if (options.anchor_negatives) {
    auto mask = eye;
    if (false_negatives.defined()) mask = mask.logical_or(false_negatives);
    blocks.push_back((torch::matmul(a, a.t()) * inverse_temperature).masked_fill(mask, minus_infinity));
  }
  if (e.defined()) {
    auto extra = torch::matmul(a, e.t()) * inverse_temperature;  // [B, K]
    if (exclude.defined()) extra = extra.masked_fill(exclude, minus_infinity);
    blocks.push_back(extra);
  }
  auto logits = torch::cat(blocks, 1);
  auto targets = torch::arange(batch, torch::TensorOptions().dtype(torch::kLong).device(anchors.device()));
  return torch::nn::functional::cross_entropy(logits, targets);
}

}  // namespace embrec::models::losses
