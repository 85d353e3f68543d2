// SASRec (Kang & McAuley 2018), in the form the ICLRec / S4Rec papers use for their baseline: item + learned
// position embeddings, post-norm causal self-attention blocks with point-wise feed-forward, item embedding shared
// with the output layer. Loss: full softmax cross-entropy over all items, or BCE with one sampled negative.
#pragma once

#include "embrec/models/model.h"

namespace embrec::models {

// L_SR, the next-item loss: full softmax cross-entropy over all items, or the SASRec paper's BCE with one sampled
// negative per position.
enum class NextItemLoss { Softmax, Bce };
inline const Names<NextItemLoss> kNextItemLossNames = {{"softmax", NextItemLoss::Softmax}, {"bce", NextItemLoss::Bce}};

struct SasrecConfig {
  int64_t dim = 64;
  int64_t layers = 2;
  int64_t heads = 2;
  int64_t max_length = 50;
  double dropout = 0.5;            // hidden dropout (embeddings, attention output, feed-forward)
  double attention_dropout = 0.5;  // on attention probabilities
  double initializer_range = 0.02;
  NextItemLoss loss = NextItemLoss::Softmax;
  int64_t softmax_chunk = 1024;    // rows per chunk of the fused softmax cross-entropy
  int64_t encode_batch = 512;      // users per forward pass when computing user vectors

  static SasrecConfig from(ConfigTable& table);
  // Reads the table over `defaults` (a model built on the encoder may start from other values, e.g. BERT4Rec's).
  static SasrecConfig from(ConfigTable& table, const SasrecConfig& defaults);
};

// The encoder f_theta: [B, L] item ids (0 = padding, right-aligned in a window of max_length) -> [B, L, dim].
// Reused by the models built on SASRec (S4Rec, CL4SRec, ...).
struct SasrecEncoderImpl : torch::nn::Module {
  // extra_tokens: embedding rows after the items (e.g. a mask token for contrastive views, id item_count + 1).
  SasrecEncoderImpl(const SasrecConfig& config, int32_t item_count, int32_t extra_tokens = 0);
  torch::Tensor forward(const torch::Tensor& input);
  // The last position's representation, z_u in the S4Rec paper: [B, dim]; equal to forward(input)[:, -1] but
  // computes the last block at that position only.
  torch::Tensor encode_last(const torch::Tensor& input);
  torch::Tensor run(const torch::Tensor& input, bool last_only);
  // run() on a batch of mixed history lengths: rows are grouped by length and each group is encoded at its own
  // padded length, then put back in order (what the model computes at real positions is unchanged; outputs at
  // padding positions are zeros). This lets training use plain shuffled batches -- which S4Rec's batch-level
  // losses assume (Sinkhorn equipartition, head/tail adversary, in-batch negatives) -- at about the cost of
  // length-bucketed ones. Off: every row is padded to the batch's longest (tests compare the two).
  bool split_by_length = true;
  // Causal attention (SASRec: a position sees itself and earlier items); false attends both ways (BERT4Rec).
  bool causal = true;
  torch::Tensor run_padded(const torch::Tensor& input, bool last_only);

  SasrecConfig config;
  int32_t item_count = 0;
  torch::nn::Embedding item_embedding{nullptr};      // [item_count + 1 + extra_tokens, dim], row 0 = padding
  torch::nn::Embedding position_embedding{nullptr};  // [max_length, dim]
  torch::nn::LayerNorm embedding_norm{nullptr};
  torch::nn::Dropout embedding_dropout{nullptr};
  struct Block {
    torch::nn::Linear query_key_value{nullptr}, attention_output{nullptr}, feed_forward_in{nullptr},
        feed_forward_out{nullptr};
    torch::nn::LayerNorm attention_norm{nullptr}, feed_forward_norm{nullptr};
  };
  std::vector<Block> blocks;
};
TORCH_MODULE(SasrecEncoder);

// What every model built on the SASRec encoder shares, as RecBole's SequentialRecommender: the sampler's window and
// negatives, user vectors from histories (the last position's representation), item vectors (the item embedding
// shared with the output layer). A derived model creates the encoder (inside its own module if it has more
// parameters) and hands it to set_encoder().
class SasrecBase : public Model {
 public:
  bool trainable() const override { return true; }
  data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const override;
  int64_t dim() const override { return encoder_config_.dim; }
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;
  bool encodes_histories() const override { return true; }
  torch::Tensor item_vectors() override;

  SasrecEncoder& encoder() { return encoder_; }

 protected:
  SasrecBase(const SasrecConfig& encoder_config, const ModelContext& context)
      : encoder_config_(encoder_config), context_(context) {}
  void set_encoder(SasrecEncoder encoder) { encoder_ = std::move(encoder); }

  SasrecConfig encoder_config_;
  ModelContext context_;

 private:
  SasrecEncoder encoder_{nullptr};
};

class Sasrec final : public SasrecBase {
 public:
  using Config = SasrecConfig;
  Sasrec(const SasrecConfig& config, const ModelContext& context);
  std::string name() const override { return "sasrec"; }
  torch::nn::Module& module() override { return *encoder(); }
  LossParts loss(const TensorBatch& batch) override;
};

// The next-item loss of a SASRec-style encoder output, shared by the models built on it: hidden [B, L, d] with
// targets/negatives [B, L] (0 = no target). "softmax": full cross-entropy over all items; "bce": the SASRec
// paper's binary cross-entropy with one sampled negative per position.
torch::Tensor next_item_loss(const SasrecConfig& config, SasrecEncoderImpl& encoder, const torch::Tensor& hidden,
                             const TensorBatch& batch);

// User vectors (last-position representations) for histories, computed in eval mode without autograd.
torch::Tensor encode_histories(SasrecEncoderImpl& encoder, const data::Sequences& histories, const int32_t* users,
                               int32_t count, int64_t batch_users, torch::Device device);

}  // namespace embrec::models
