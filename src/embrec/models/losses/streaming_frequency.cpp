// Online per-item sampling probabilities from the gaps between appearances (Yi et al. 2019).
#include "embrec/models/losses/streaming_frequency.h"

namespace embrec::models::losses {

StreamingFrequency::StreamingFrequency(torch::nn::Module& module, const std::string& prefix, int64_t item_count,
                                       double alpha)
    : alpha_(alpha) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  last_step_ = module.register_buffer(prefix + "last_step", torch::full({item_count}, -1.0, options));
  interval_ = module.register_buffer(prefix + "interval", torch::zeros({item_count}, options));
  steps_ = module.register_buffer(prefix + "steps", torch::zeros({}, options));
}

void StreamingFrequency::update(const torch::Tensor& items, int64_t step) {
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = std::get<0>(torch::_unique(items.to(torch::kLong).flatten())).to(last_step_.device());
  const double t = static_cast<double>(step);
  const torch::Tensor last = last_step_.index_select(0, ids);
  const torch::Tensor interval = interval_.index_select(0, ids);
  // First sight: the gap since the start stands for the interval; later, the running average of the gaps.
  const torch::Tensor seen = last.ge(0);
  const torch::Tensor gap = torch::where(seen, t - last, torch::full_like(last, t + 1));
  const torch::Tensor updated = torch::where(seen, (1 - alpha_) * interval + alpha_ * gap, gap);
  interval_.index_copy_(0, ids, updated);
  last_step_.index_fill_(0, ids, t);
  steps_.fill_(std::max(steps_.item<double>(), t + 1));
}

torch::Tensor StreamingFrequency::log_probability(const torch::Tensor& items) const {
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = items.to(torch::kLong).to(interval_.device());
  const torch::Tensor interval = interval_.index_select(0, ids);
  const torch::Tensor fallback = torch::full_like(interval, std::max(1.0, steps_.item<double>() + 1));
  const torch::Tensor seen = last_step_.index_select(0, ids).ge(0);
  return -torch::where(seen, interval.clamp_min(1.0), fallback).log().to(torch::kFloat32);
}

}  // namespace embrec::models::losses
