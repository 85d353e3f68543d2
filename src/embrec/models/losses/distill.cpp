// KL divergence between teacher and student distributions over embedding dimensions.
#include "embrec/models/losses/distill.h"

#include "embrec/util/error.h"

namespace embrec::models::losses {

torch::Tensor distill_kl(const torch::Tensor& teacher, const torch::Tensor& student, double temperature) {
  if (!teacher.sizes().equals(student.sizes())) fail("distill_kl: teacher and student must have the same shape");
  if (!(temperature > 0)) fail("distill_kl: temperature must be positive, got {}", temperature);
  auto log_teacher = torch::log_softmax(teacher.detach() / temperature, -1);
  auto log_student = torch::log_softmax(student / temperature, -1);
  return (log_teacher.exp() * (log_teacher - log_student)).sum(-1).mean();
}

}  // namespace embrec::models::losses
