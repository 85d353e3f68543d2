// GRU4Rec (Hidasi et al., ICLR 2016; Hidasi & Karatzoglou, CIKM 2018): GRU layers over the interaction sequence;
// the last hidden state (or the mean of the outputs) is the user vector, scored against output item vectors that
// are the input embedding (tied) or a table of their own. Trained with full softmax cross-entropy or with the
// papers' sampled ranking losses over the batch's targets plus negatives shared by the batch (drawn by
// popularity^alpha), on session-parallel mini-batches as in the paper or on padded whole-sequence batches.
#pragma once

#include "embrec/models/losses/ranking.h"
#include "embrec/models/model.h"

namespace embrec::models {

// What feeds the first GRU layer: an item embedding, or the one-hot item vector (its product with the input
// weights is one row of a [items, 3 x dim] table, which is what is learned).
enum class GruInput { Embedding, OneHot };
inline const Names<GruInput> kGruInputNames = {{"embedding", GruInput::Embedding}, {"one_hot", GruInput::OneHot}};
enum class GruPooling { Last, Mean };
inline const Names<GruPooling> kGruPoolingNames = {{"last", GruPooling::Last}, {"mean", GruPooling::Mean}};
// "softmax": full cross-entropy over all items; the others are losses::RankingLoss on sampled negatives.
enum class GruLoss { Softmax, Bpr, Top1, BprMax, Top1Max };
inline const Names<GruLoss> kGruLossNames = {{"softmax", GruLoss::Softmax}, {"bpr", GruLoss::Bpr},
                                             {"top1", GruLoss::Top1},       {"bpr_max", GruLoss::BprMax},
                                             {"top1_max", GruLoss::Top1Max}};
enum class GruBatching { SessionParallel, Padded };
inline const Names<GruBatching> kGruBatchingNames = {{"session_parallel", GruBatching::SessionParallel},
                                                     {"padded", GruBatching::Padded}};

struct Gru4recConfig {
  int64_t dim = 100;           // hidden size of every layer, and the size of user and item vectors
  int64_t layers = 1;
  GruInput input = GruInput::Embedding;
  int64_t embedding_dim = 0;   // input embedding width when not tied (0: dim)
  bool tied = true;            // output item vectors = the input embedding (needs input = "embedding")
  double embedding_dropout = 0.0;
  double hidden_dropout = 0.0;  // on each layer's outputs
  GruPooling pooling = GruPooling::Last;
  GruLoss loss = GruLoss::Softmax;
  int64_t shared_negatives = 2048;  // sampled losses: extra negatives shared by the batch
  double negative_alpha = 0.75;     // ... drawn with probability ~ popularity^alpha (0 uniform, 1 popularity)
  double score_regularization = 1.0;  // BPR-max's lambda
  GruBatching batching = GruBatching::SessionParallel;
  int64_t steps = 1;                // session-parallel: time steps per batch (truncated back-propagation)
  int64_t max_length = 50;          // pairs per user trained on, and the history window of user vectors
  double init_range = 0.0;          // weights ~ U(-r, r); 0: r = sqrt(6 / (fan_in + fan_out)) per matrix
  int64_t softmax_chunk = 1024;
  int64_t encode_batch = 512;

  static Gru4recConfig from(ConfigTable& table);
};

// The network: input table, GRU layers (written out, so a slot's state can be reset mid-batch), output table.
struct Gru4recNetImpl : torch::nn::Module {
  Gru4recNetImpl(const Gru4recConfig& config, int32_t item_count);
  // input [B, L] ids (0 = nothing at this step). `keep` [B, L] bool (undefined: all true) says whether a row's
  // state carries into the step; `state` [layers, B, dim] the state before the first step (undefined: zeros).
  // Returns the top layer's outputs [B, L, dim] (zero where input is 0) and sets *final_state when asked.
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& keep, const torch::Tensor& state,
                        torch::Tensor* final_state = nullptr);
  // Output item vectors [item_count + 1, dim], row 0 unused.
  torch::Tensor output_table();

  Gru4recConfig config;
  int32_t item_count = 0;
  torch::nn::Embedding input_embedding{nullptr};   // [items + 1, width]; width 3 x dim for one-hot input
  torch::nn::Embedding output_embedding{nullptr};  // untied only
  std::vector<torch::Tensor> w_ih, w_hh, b_ih, b_hh;  // per layer; w_ih[0] undefined for one-hot input
};
TORCH_MODULE(Gru4recNet);

class Gru4rec final : public Model {
 public:
  using Config = Gru4recConfig;
  Gru4rec(const Gru4recConfig& config, const ModelContext& context);
  std::string name() const override { return "gru4rec"; }
  bool trainable() const override { return true; }
  data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const override;
  torch::nn::Module& module() override { return *net_; }
  void begin_epoch(int64_t epoch, const EpochWorld& world = {}) override;
  LossParts loss(const TensorBatch& batch) override;
  int64_t dim() const override { return config_.dim; }
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;
  bool encodes_histories() const override { return true; }
  torch::Tensor item_vectors() override;

  Gru4recNet& net() { return net_; }

 private:
  // The user representation at each step: the output itself (last) or the running mean of outputs (mean).
  torch::Tensor pool(const torch::Tensor& outputs, const torch::Tensor& input) const;

  Gru4recConfig config_;
  ModelContext context_;
  Gru4recNet net_{nullptr};
  torch::Tensor carried_;  // session-parallel: every slot's state after the last batch, detached
};

}  // namespace embrec::models
