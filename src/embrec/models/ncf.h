// NCF (He et al., "Neural Collaborative Filtering", WWW 2017) as one model with a switch: GMF, MLP or NeuMF,
// trained with binary cross-entropy on each training interaction and sampled unseen negatives.
#pragma once

#include <string>
#include <vector>

#include "embrec/models/model.h"

namespace embrec::models {

enum class NcfVariant { Gmf, Mlp, NeuMf };
inline const Names<NcfVariant> kNcfVariantNames = {
    {"gmf", NcfVariant::Gmf}, {"mlp", NcfVariant::Mlp}, {"neumf", NcfVariant::NeuMf}};

struct NcfConfig {
  NcfVariant variant = NcfVariant::NeuMf;      // gmf | mlp | neumf
  int64_t factors = 8;                         // GMF embedding size (gmf, neumf)
  std::vector<int64_t> layers{64, 32, 16, 8};  // MLP (mlp, neumf): layers[0] = |[p_u; q_i]| (each half), then the
                                               // widths of the ReLU layers, as the paper's and MS's layer lists
  int64_t negatives = 4;                       // sampled negatives per training interaction, fresh each epoch
  double init_std = 0.01;                      // embeddings start N(0, init_std²) (the paper's Keras code)
  // NeuMF with pre-training (paper §3.4.1): run folders of a trained variant = "gmf" and a variant = "mlp" model of
  // the same sizes; relative paths are taken against the folder of the config file, as data.path is.
  std::string pretrain_gmf;
  std::string pretrain_mlp;
  double pretrain_alpha = 0.5;  // h = [α h_gmf ; (1 - α) h_mlp]

  static NcfConfig from(ConfigTable& table);
  bool has_gmf() const { return variant != NcfVariant::Mlp; }
  bool has_mlp() const { return variant != NcfVariant::Gmf; }
};

// The parameters: GMF embeddings P, Q, MLP embeddings P', Q' and tower, and the output weights h (no bias, as the
// paper's ŷ = σ(hᵀ φ)). A variant holds only its own parts.
struct NcfModuleImpl : torch::nn::Module {
  NcfModuleImpl(const NcfConfig& config, int32_t user_count, int32_t item_count);
  // Logits hᵀ φ(u, i) of the pairs (users[k], items[k]), int64 [N] on the module's device -> [N].
  torch::Tensor forward(const torch::Tensor& users, const torch::Tensor& items);

  torch::Tensor gmf_user;                // [user_count, factors]
  torch::Tensor gmf_item;                // [item_count, factors]
  torch::Tensor mlp_user;                // [user_count, layers[0] / 2]
  torch::Tensor mlp_item;                // [item_count, layers[0] / 2]
  std::vector<torch::nn::Linear> tower;  // layers[k-1] -> layers[k], each followed by ReLU
  torch::Tensor output;                  // h: [factors (gmf part) + layers.back() (mlp part)]
  int64_t gmf_size = 0;                  // the first gmf_size entries of h weigh the GMF vector
};
TORCH_MODULE(NcfModule);

// Scores are the logits hᵀ φ(u, i) (σ is monotone, so rankings are those of ŷ). GMF alone is an inner product,
// hᵀ(p ⊙ q) = (h ⊙ p) · q, so variant = "gmf" is served as an embedding model (dim() = factors); MLP and NeuMF fill
// score blocks in chunks of user x item pairs through reused workspaces.
class Ncf final : public Model {
 public:
  using Config = NcfConfig;
  Ncf(const NcfConfig& config, const ModelContext& context);
  std::string name() const override { return "ncf"; }
  // Learns each user's training items: negatives are drawn from the others.
  void fit(const data::Split& split) override;
  bool trainable() const override { return true; }
  // Every training (user, item) pair is a positive once an epoch (all_items); the model draws its own negatives.
  data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const override;
  torch::nn::Module& module() override { return *module_; }
  // Epoch 0 of a run with pretrain_gmf / pretrain_mlp copies the pre-trained weights in (see load_pretrained).
  void begin_epoch(int64_t epoch, const EpochWorld& world = {}) override;
  // Mean binary cross-entropy over the batch's positives (label 1) and `negatives` sampled items per positive
  // (label 0): -[Σ log σ(x⁺) + Σ log σ(-x⁻)] / (N (1 + negatives)), the paper's eq. 7 as a mean.
  LossParts loss(const TensorBatch& batch) override;

  int64_t dim() const override { return config_.variant == NcfVariant::Gmf ? config_.factors : 0; }
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;
  torch::Tensor item_vectors() override;
  void score_block(const data::Sequences& histories, const int32_t* users, int32_t count, float* out) override;

  // `negatives` items per entry of users (int64 [N], CPU), none of them among that user's training items, drawn
  // from a generator seeded by (model seed, epoch, batch_index): int64 [N, negatives], 0-based item ids.
  torch::Tensor sample_negatives(const torch::Tensor& users, int64_t epoch, int64_t batch_index) const;
  // Copies GMF embeddings and h_gmf from pretrain_gmf's best.pt, MLP embeddings, tower and h_mlp from
  // pretrain_mlp's, and sets h = [α h_gmf ; (1 - α) h_mlp]. An Error names the folder when it is missing, is not an
  // NCF run of the right variant, or its sizes (factors, layers, users, items) differ from this model's.
  void load_pretrained();
  NcfModule& ncf_module() { return module_; }

 private:
  NcfModule load_run_module(const std::string& folder, NcfVariant variant) const;

  NcfConfig config_;
  ModelContext context_;
  NcfModule module_{nullptr};
  std::vector<int64_t> train_offsets_;  // each user's training items, sorted and distinct, in train_items_
  std::vector<int32_t> train_items_;
  std::vector<torch::Tensor> workspace_;  // score_block: one [pairs, width] buffer per tower layer, reused
};

}  // namespace embrec::models
