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
  // The whole batch's positives and anchors; this rank's row i is row offset + i there (the identity in one process).
  const Gathered all_positives = gather_rows(options.gather, p);
  const int64_t offset = all_positives.offset;
  const int64_t total = all_positives.all.size(0);
  auto long_options = torch::TensorOptions().dtype(torch::kLong).device(anchors.device());
  auto targets = torch::arange(offset, offset + batch, long_options);
  // own[i][j]: column j is row i itself.
  auto own = targets.unsqueeze(1).eq(torch::arange(total, long_options).unsqueeze(0));
  if (false_negatives.defined() && (false_negatives.size(0) != batch || false_negatives.size(1) != total))
    fail("info_nce: false_negatives must be [{}, {}] (this rank's rows x the whole batch)", batch, total);
  // Masked entries get -inf: exp(-inf) = 0 removes them from the denominator exactly.
  const double minus_infinity = -std::numeric_limits<double>::infinity();
  std::vector<torch::Tensor> blocks;
  auto with_positives = torch::matmul(a, all_positives.all.t()) * inverse_temperature;  // [B, N], targets on "own"
  if (false_negatives.defined())
    with_positives = with_positives.masked_fill(false_negatives.logical_and(own.logical_not()), minus_infinity);
  blocks.push_back(with_positives);
  if (options.anchor_negatives) {
    auto mask = own;
    if (false_negatives.defined()) mask = mask.logical_or(false_negatives);
    const torch::Tensor all_anchors = gather_rows(options.gather, a).all;
    blocks.push_back((torch::matmul(a, all_anchors.t()) * inverse_temperature).masked_fill(mask, minus_infinity));
  }
  if (e.defined()) {
    auto extra = torch::matmul(a, e.t()) * inverse_temperature;  // [B, K]
    if (exclude.defined()) extra = extra.masked_fill(exclude, minus_infinity);
    blocks.push_back(extra);
  }
  auto logits = torch::cat(blocks, 1);
  return torch::nn::functional::cross_entropy(logits, targets);
}

}  // namespace embrec::models::losses
