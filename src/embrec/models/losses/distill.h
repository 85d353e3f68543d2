// Cluster-aware self-distillation (S4Rec Eq. 11-12): the assigned prototype is the teacher, the sequence
// representation the student; both become distributions over embedding dimensions at temperature tau3.
#pragma once

#include <torch/torch.h>

namespace embrec::models::losses {

// Mean over rows of KL( softmax(teacher / T) || softmax(student / T) ), the softmax taken over the last dimension.
// teacher, student [B, d]; the teacher is detached (no gradient reaches the prototypes through this loss).
torch::Tensor distill_kl(const torch::Tensor& teacher, const torch::Tensor& student, double temperature);

}  // namespace embrec::models::losses
