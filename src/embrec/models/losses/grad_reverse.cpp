// Gradient reversal as a custom autograd function.
#include "embrec/models/losses/grad_reverse.h"

namespace embrec::models::losses {

namespace {
class GradReverse : public torch::autograd::Function<GradReverse> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* context, torch::Tensor input, double scale) {
    context->saved_data["scale"] = scale;
    return input.view_as(input);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grad_outputs) {
    const double scale = context->saved_data["scale"].toDouble();
    return {grad_outputs[0] * -scale, torch::Tensor()};
  }
};
}  // namespace

torch::Tensor grad_reverse(const torch::Tensor& input, double scale) { return GradReverse::apply(input, scale); }

}  // namespace embrec::models::losses
