// Helpers shared by the model tests: a model from a TOML snippet, the trainer's batch tensors on the CPU, and the
// check of a model's loss gradient against central differences.
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "embrec/models/model.h"
#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::models::testing {

// The model a `[model]` table's text describes, as type M, for `users` x `items`. torch's global generator is seeded
// with torch_seed first (initial weights repeat); context_seed is the model's own seed (its sampling).
template <typename M>
std::unique_ptr<M> make_model(const std::string& toml_text, int32_t users, int32_t items, uint64_t torch_seed = 1,
                              uint64_t context_seed = 42) {
  ConfigTable table = ConfigTable::parse_string(toml_text, "test.toml");
  ModelContext context;
  context.user_count = users;
  context.item_count = items;
  context.seed = context_seed;
  torch::manual_seed(torch_seed);
  std::unique_ptr<Model> model = create_model(table, context);
  table.finish();
  return std::unique_ptr<M>(dynamic_cast<M*>(model.release()));
}

// The message of the error that creating such a model raises, or "(no error)".
template <typename M>
std::string creation_error(const std::string& toml_text, int32_t users = 3, int32_t items = 5) {
  return error_of([&] { make_model<M>(toml_text, users, items); });
}

// Batch tensors from the sampler's arrays, as the trainer makes them (on the CPU), copied so they outlive `batch`.
inline TensorBatch batch_tensors(const data::SequenceBatch& batch, int64_t epoch = 0, int64_t batch_index = 0) {
  TensorBatch out = tensor_batch(batch, 0, torch::kCPU);
  for (torch::Tensor* t : {&out.users, &out.input, &out.target, &out.negative, &out.rating, &out.shared_negative})
    if (t->defined()) *t = t->clone();
  out.epoch = epoch;
  out.batch_index = batch_index;
  return out;
}

// `inner` with torch's generator reseeded before each loss(), so that a loss that draws (cloze masks, negatives)
// draws the same at every evaluation of a finite-difference check.
class Reseeded final : public Model {
 public:
  Reseeded(Model& inner, uint64_t seed) : inner_(inner), seed_(seed) {}
  std::string name() const override { return inner_.name(); }
  torch::nn::Module& module() override { return inner_.module(); }
  LossParts loss(const TensorBatch& batch) override {
    torch::manual_seed(seed_);
    return inner_.loss(batch);
  }

 private:
  Model& inner_;
  uint64_t seed_;
};

// Largest |autograd - central difference| over every parameter entry of the model's loss on `batch` (run the model
// in float64 for a tight bound).
inline double parameter_gradient_error(Model& model, const TensorBatch& batch) {
  std::vector<torch::Tensor> parameters = model.module().parameters();
  model.module().zero_grad();
  model.loss(batch).total.backward();
  const double h = 1e-6;
  double worst = 0.0;
  torch::NoGradGuard no_grad;
  for (torch::Tensor& parameter : parameters) {
    const torch::Tensor analytic =
        parameter.grad().defined() ? parameter.grad().view({-1}) : torch::zeros({parameter.numel()}, parameter.options());
    torch::Tensor flat = parameter.detach().view({-1});
    for (int64_t k = 0; k < flat.numel(); ++k) {
      const double saved = flat[k].item<double>();
      flat[k] = saved + h;
      const double plus = model.loss(batch).total.item<double>();
      flat[k] = saved - h;
      const double minus = model.loss(batch).total.item<double>();
      flat[k] = saved;
      worst = std::max(worst, std::abs(analytic[k].item<double>() - (plus - minus) / (2 * h)));
    }
  }
  return worst;
}

}  // namespace embrec::models::testing
