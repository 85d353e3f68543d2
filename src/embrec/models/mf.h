// Matrix factorisation, one model with switches: explicit ratings (biased MF, squared loss), BPR with one sampled
// negative (Rendle et al. 2009), or full softmax cross-entropy over all items with dot or cosine similarity.
#pragma once

#include "embrec/models/model.h"
#include "embrec/models/similarity.h"

namespace embrec::models {

enum class MfLoss { Mse, Bpr, Softmax };
inline const Names<MfLoss> kMfLossNames = {{"mse", MfLoss::Mse}, {"bpr", MfLoss::Bpr}, {"softmax", MfLoss::Softmax}};
enum class MfNegatives { All, InBatch };
inline const Names<MfNegatives> kMfNegativesNames = {{"all", MfNegatives::All}, {"in_batch", MfNegatives::InBatch}};
// loss = "mse": what the squared loss regresses. ratings: the log's ratings (explicit feedback). binary: implicit
// feedback as matrix completion of an interest matrix: 1 for each observed (user, item) pair and 0 for one
// unobserved item drawn uniformly per pair (the sampler's negative).
enum class MfTargets { Ratings, Binary };
inline const Names<MfTargets> kMfTargetsNames = {{"ratings", MfTargets::Ratings}, {"binary", MfTargets::Binary}};
enum class MfSolver { Adam, Sgd };
inline const Names<MfSolver> kMfSolverNames = {{"adam", MfSolver::Adam}, {"sgd", MfSolver::Sgd}};

struct MfConfig {
  int64_t dim = 64;                 // factors per user and item
  MfLoss loss = MfLoss::Mse;        // mse | bpr | softmax
  Similarity similarity = Similarity::Dot;  // dot | cosine; cosine only with loss = "softmax"
  double temperature = 1.0;         // softmax only; default 0.1 with cosine, 1 with dot
  MfTargets targets = MfTargets::Ratings;  // mse only: ratings | binary
  // A learned item bias b_i added to every score: always on for mse (with the user bias and μ); for bpr on by
  // default (as cornac's BPR, Microsoft Recommenders' BPR row, has it: it carries item popularity); off by default
  // for softmax.
  bool item_bias = false;
  double reg = 0.0;                 // L2 on the factors (and biases) of each training pair, see Mf::loss
  double init_std = 0.1;            // factors start N(0, init_std²), biases at 0 (Surprise's SVD default)
  int64_t softmax_chunk = 1024;     // rows per chunk of the fused softmax cross-entropy
  // softmax only: the negatives of each (user, item) pair: "all" items (the exact softmax) or "in_batch" (the
  // other pairs' items in the batch, the two-tower recipe for catalogues too large for a full softmax).
  MfNegatives negatives = MfNegatives::All;
  // in_batch only: subtract log Q(j), item j's share of the training interactions, from every logit (Yi et al.,
  // RecSys 2019): in-batch negatives are drawn by popularity, and this corrects the popular items' over-penalty.
  bool logq_correction = true;
  // in_batch only: a batch's pairs are shuffled and cut into softmaxes of at most this many pairs, as the two-tower
  // model does (the same key and default there), so the two compare on the same softmax size.
  int64_t max_pairs = 1024;
  // bpr only: "adam" trains through the shared trainer (mini-batches, Adam); "sgd" runs cornac's solver in fit():
  // one (user, item, unseen item) triple at a time, drawn with replacement, plain SGD, sgd_epochs x |train| steps,
  // on the CPU (a few microseconds a step: no tensors per step). The trainer's epochs and learning rate are then
  // unused.
  MfSolver solver = MfSolver::Adam;
  int64_t sgd_epochs = 15;
  double sgd_learning_rate = 0.05;

  static MfConfig from(ConfigTable& table);
};

// The parameters: user factors p_u, item factors q_i, item biases b_i (mse, or item_bias) and, for loss = "mse",
// user biases b_u and the global training mean μ (a buffer, so checkpoints carry it).
struct MfModuleImpl : torch::nn::Module {
  MfModuleImpl(const MfConfig& config, int32_t user_count, int32_t item_count);
  torch::Tensor user_factors;  // [user_count, dim]
  torch::Tensor item_factors;  // [item_count, dim]
  torch::Tensor user_bias;     // [user_count], mse only
  torch::Tensor item_bias;     // [item_count], mse or item_bias
  torch::Tensor global_mean;   // [] , mse only
  torch::Tensor item_log_q;    // [item_count] log of each item's share of training interactions, in_batch only
};
TORCH_MODULE(MfModule);

class Mf final : public Model {
 public:
  using Config = MfConfig;
  Mf(const MfConfig& config, const ModelContext& context);
  std::string name() const override { return "mf"; }
  // mse: μ = the mean training rating (an error when the data has no ratings).
  void fit(const data::Split& split) override;
  bool trainable() const override { return config_.solver != MfSolver::Sgd; }
  // Every statistic fit() computes (μ, log Q) is a buffer and the SGD solver's result is the parameters: loading a
  // run restores everything from its checkpoint.
  void restore(const data::Split&) override {}
  // Every training (user, item) pair is a target once an epoch (all_items); ratings for mse, negatives for bpr.
  data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const override;
  torch::nn::Module& module() override { return *module_; }
  LossParts loss(const TensorBatch& batch) override;

  // Ranking by inner product: dot: p_u · q_i; cosine: p_u/|p_u| · q_i/|q_i| (the softmax's order, τ > 0 drops
  // out); with an item bias one more coordinate: [p_u, 1] · [q_i, b_i] (mse: = r̂_ui − μ − b_u, which orders a
  // user's items exactly as the predicted rating; softmax: [p_u / τ, 1] · [q_i, b_i], the logit).
  int64_t dim() const override { return has_item_bias() ? config_.dim + 1 : config_.dim; }
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;
  torch::Tensor item_vectors() override;

  bool predicts_ratings() const override { return config_.loss == MfLoss::Mse && config_.targets == MfTargets::Ratings; }
  // r̂_ui = μ + b_u + b_i + p_u · q_i.
  void predict_ratings(const int32_t* users, const int32_t* items, int64_t count, float* out) override;

  MfModule& mf_module() { return module_; }

 private:
  void fit_sgd(const data::Sequences& train);
  bool has_item_bias() const { return config_.loss == MfLoss::Mse || config_.item_bias; }
  MfConfig config_;
  ModelContext context_;
  MfModule module_{nullptr};
};

}  // namespace embrec::models
