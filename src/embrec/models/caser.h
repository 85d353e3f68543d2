// Caser (Tang & Wang, WSDM 2018): the last L items as an L x d "image", read by horizontal convolutions of heights
// 1..L (max-pooled over time) and by vertical convolutions; a fully connected layer makes z, which is concatenated
// with the user's embedding P_u and scored against each item's output vector and bias. Trained on windows of L
// inputs and the T items that follow them, with binary cross-entropy and sampled negatives.
//
// Scores stay inner products: the user vector is [z, P_u, 1] and the item vector [W_i, b_i]. With the user
// embedding (the paper's model) a user vector belongs to a known user id, so a fresh history is not served;
// user_embedding = false makes Caser a pure sequence model that encodes any history.
#pragma once

#include "embrec/models/model.h"

namespace embrec::models {

struct CaserConfig {
  int64_t dim = 50;                 // d
  int64_t window = 5;               // L, items in the image
  int64_t targets = 3;              // T, items predicted from each window
  int64_t horizontal_filters = 16;  // n_h, per height 1..L
  int64_t vertical_filters = 4;     // n_v
  double dropout = 0.5;
  int64_t negatives = 3;            // sampled negatives per window (uniform over all items)
  bool user_embedding = true;
  int64_t max_length = 50;          // training pairs per user per batch, as SASRec's window
  int64_t encode_batch = 1024;

  static CaserConfig from(ConfigTable& table);
};

struct CaserNetImpl : torch::nn::Module {
  CaserNetImpl(const CaserConfig& config, int32_t item_count, int32_t user_count);
  // windows [W, L] item ids (0 = padding, right-aligned) -> z [W, d].
  torch::Tensor encode(const torch::Tensor& windows);
  // [z, P_u, 1] for the windows' users (users undefined or no user embedding: [z, 1]).
  torch::Tensor user_side(const torch::Tensor& z, const torch::Tensor& users);
  // [W_i, b_i] for item ids (+ 1) [..] -> [.., width].
  torch::Tensor item_side(const torch::Tensor& items);

  CaserConfig config;
  torch::nn::Embedding item_embedding{nullptr}, user_embedding{nullptr}, output_weight{nullptr}, output_bias{nullptr};
  torch::nn::Conv2d vertical{nullptr};
  std::vector<torch::nn::Conv2d> horizontal;
  torch::nn::Linear fully_connected{nullptr};
};
TORCH_MODULE(CaserNet);

class Caser final : public Model {
 public:
  using Config = CaserConfig;
  Caser(const CaserConfig& config, const ModelContext& context);
  std::string name() const override { return "caser"; }
  bool trainable() const override { return true; }
  data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const override;
  torch::nn::Module& module() override { return *net_; }
  LossParts loss(const TensorBatch& batch) override;
  int64_t dim() const override { return config_.dim * (config_.user_embedding ? 2 : 1) + 1; }
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;
  bool encodes_histories() const override { return !config_.user_embedding; }
  torch::Tensor item_vectors() override;

  // The training windows of a batch: each position t of a row's sequence (its inputs and last target) that has an
  // item before it gives inputs = the L items before t and targets = the T items from t (0 where the sequence
  // ends). Returned as windows [W, L], targets [W, T] and the row (user) of each window [W].
  struct Windows {
    torch::Tensor inputs, targets, rows;
  };
  Windows windows(const TensorBatch& batch) const;
  CaserNet& net() { return net_; }

 private:
  CaserConfig config_;
  ModelContext context_;
  CaserNet net_{nullptr};
};

}  // namespace embrec::models
