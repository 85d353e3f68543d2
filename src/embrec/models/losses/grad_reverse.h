// The gradient-reversal layer of adversarial training (Ganin & Lempitsky 2015; S4Rec's head/tail adversary):
// identity forward, gradient multiplied by -scale backward.
#pragma once

#include <torch/torch.h>

namespace embrec::models::losses {

torch::Tensor grad_reverse(const torch::Tensor& input, double scale);

}  // namespace embrec::models::losses
