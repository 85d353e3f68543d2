// Pop: ranks items by their number of training interactions. The smallest model: copy it to start a new one.
#pragma once

#include "embrec/models/model.h"

namespace embrec::models {

struct PopConfig {
  static PopConfig from(ConfigTable& table);
};

class Pop final : public Model {
 public:
  using Config = PopConfig;
  Pop(const PopConfig& config, const ModelContext& context);
  std::string name() const override { return "pop"; }
  void fit(const data::Split& split) override;
  torch::nn::Module& module() override { return module_; }
  void score_block(const data::Sequences& histories, const int32_t* users, int32_t count, float* out) override;

 private:
  torch::nn::Module module_;
  torch::Tensor counts_;  // [item_count] float32, a buffer of module_ so checkpoints carry it
};

}  // namespace embrec::models
