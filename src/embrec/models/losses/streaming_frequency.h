// The streaming frequency estimator of Yi et al. (RecSys 2019, Algorithm 2): for the log-Q correction without a
// pass over the data, each item's sampling probability per batch estimated online from the gap between the batches
// it appears in, B_j <- (1 - alpha) B_j + alpha (t - A_j), A_j <- t, probability 1 / B_j. Exact per item (the
// paper hashes items into H buckets; embrec's catalogue fits). Its state is two buffers of the owning module, so it
// checkpoints and resumes with the model.
#pragma once

#include <torch/torch.h>

namespace embrec::models::losses {

class StreamingFrequency {
 public:
  StreamingFrequency() = default;
  // Registers its buffers ("<prefix>last_step", "<prefix>interval") on `module` for `item_count` items.
  StreamingFrequency(torch::nn::Module& module, const std::string& prefix, int64_t item_count, double alpha);

  // Batch `step` (counting from 0) holds `items` (ids, any order; repeats count once): updates their estimates.
  void update(const torch::Tensor& items, int64_t step);
  // log of the estimated probability that each of `items` appears in a batch; items never seen yet get the
  // smallest probability the estimator can state so far, 1 / (step + 1).
  torch::Tensor log_probability(const torch::Tensor& items) const;
  double alpha() const { return alpha_; }

 private:
  torch::Tensor last_step_;  // [items] float64, -1 = never seen
  torch::Tensor interval_;   // [items] float64, the estimated batches between two appearances
  torch::Tensor steps_;      // [] float64, batches seen so far
  double alpha_ = 0.01;
};

}  // namespace embrec::models::losses
