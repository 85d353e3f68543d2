// S3-Rec (Zhou et al., CIKM 2020): the SASRec encoder pre-trained with four mutual-information objectives over
// item attributes and masked sequences -- associated attribute prediction (AAP), masked item prediction (MIP),
// masked attribute prediction (MAP), segment prediction (SP) -- with bidirectional attention, then fine-tuned as
// SASRec for next-item prediction (causal attention, SASRec's `loss`: "bce" as published, or "softmax").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "embrec/models/pretrain.h"
#include "embrec/models/sasrec.h"

namespace embrec::models {

// [model]: SASRec's keys (the encoder and the fine-tuning loss) and which item features are the attributes.
struct S3recConfig {
  SasrecConfig encoder;
  // The item feature fields ([data.item_features]) whose values are the attributes; empty = every field. ML-1M's
  // movies.dat gives "genre" and "year"; the S3-Rec attributes of a movie are its genres.
  std::vector<std::string> attribute_fields;

  static S3recConfig from(ConfigTable& table);
};

// [pretrain]: the schedule and the objectives. Defaults: the reference code's (RUCAIBox/CIKM2020-S3Rec
// run_pretrain.py): batch 100, Adam lr 1e-3, weights AAP 0.2, MIP 1.0, MAP 1.0, SP 0.5, mask_p 0.2; 100 epochs,
// where the paper's released models were taken (100 for Sports and Yelp, 150 for Beauty).
struct S3recPretrainConfig {
  PretrainSchedule schedule{100, 100, 1e-3, 0.0};
  double aap_weight = 0.2;
  double mip_weight = 1.0;
  double map_weight = 1.0;
  double sp_weight = 0.5;
  double mask_p = 0.2;  // each item of a sample but the last is masked with this probability; the last always is

  static S3recPretrainConfig from(ConfigTable& table);
};

// The pre-training parameters besides the encoder: attribute embeddings and one bilinear map W per objective
// (f(x, y) = sigmoid(x^T W y), W a linear layer with bias, as the reference's aap_norm ... sp_norm).
struct S3recModuleImpl : torch::nn::Module {
  S3recModuleImpl(const SasrecConfig& config, int32_t item_count, int64_t attribute_count);
  SasrecEncoder encoder{nullptr};  // item rows 1..item_count, then the mask token (item_count + 1)
  torch::nn::Embedding attribute_embedding{nullptr};  // [attribute_count, dim]
  torch::nn::Linear aap{nullptr}, mip{nullptr}, map{nullptr}, sp{nullptr};
};
TORCH_MODULE(S3recModule);

// One pre-training sample's views, as the reference's PretrainDataset builds them: ids + 1, the mask token
// item_count + 1, oldest first, unpadded (each view as long as the sample).
struct PretrainViews {
  std::vector<int64_t> items;             // the sample
  std::vector<int64_t> masked_items;      // MIP/MAP input: some items masked, the last always
  std::vector<int64_t> negative_items;    // at masked positions an item not in the sample, elsewhere the item
  bool has_segment = false;               // samples of one item have no segment (no SP term)
  int64_t segment_start = 0, segment_length = 0;
  std::vector<int64_t> segment_context;   // SP input: the items with the segment masked
  std::vector<int64_t> positive_segment;  // the segment at its place, masks everywhere else
  std::vector<int64_t> negative_segment;  // a slice of the same length from `long_sequence`, at the same place
};

// The views of sample `items` (internal ids, oldest first, n >= 1): each item but the last masked with probability
// mask_p (the last always), with a negative drawn uniformly among the items not in the sample; for n >= 2 a segment
// of uniform length in [1, n/2] at a uniform start is masked, and its negative is the slice of the same length at a
// uniform start in `long_sequence` (every training sequence, concatenated). Deterministic in `seed`.
PretrainViews make_pretrain_views(const int32_t* items, int64_t n, const std::vector<int32_t>& long_sequence,
                                  int32_t item_count, double mask_p, uint64_t seed);

// AAP and MAP (the reference code's multi-label form of the paper's attribute objectives): the sum over rows r and
// every attribute a of BCE(sigmoid(context_r . attribute_a), [a is an attribute of row r's item]), i.e.
// sum softplus(logits) - sum over (positive_row, positive_attribute) pairs of their logits. context: [N, d] after the
// objective's map W; attributes: [A, d]; positive_*: [P] int64.
torch::Tensor attribute_prediction_loss(const torch::Tensor& context, const torch::Tensor& attributes,
                                        const torch::Tensor& positive_row, const torch::Tensor& positive_attribute);

// MIP and SP (the reference code's pairwise form): with f(x, y) = sigmoid(x . y), the sum over rows of
// -log sigmoid(f(context, positive) - f(context, negative)). All [N, d]; context after the objective's map W.
torch::Tensor pairwise_prediction_loss(const torch::Tensor& context, const torch::Tensor& positive,
                                       const torch::Tensor& negative);

class S3rec final : public SasrecBase, public Pretrainable {
 public:
  using Config = S3recConfig;
  using PretrainConfig = S3recPretrainConfig;
  S3rec(const S3recConfig& config, const ModelContext& context);
  std::string name() const override { return "s3rec"; }
  torch::nn::Module& module() override { return *module_; }
  // Fine-tuning: SASRec's next-item loss with causal attention.
  LossParts loss(const TensorBatch& batch) override;
  std::string encoder_state() const override;

  void set_pretrain_config(const S3recPretrainConfig& config) { pretrain_config_ = config; }
  const S3recPretrainConfig& pretrain_config() const { return pretrain_config_; }
  const PretrainSchedule& pretrain_schedule() const override { return pretrain_config_.schedule; }
  // One sample per prefix of each user's training window (the last max_length training items), as the reference
  // pre-trains on every prefix: the always-masked last item of a prefix is a next-item target.
  int64_t pretrain_sample_count() const override { return static_cast<int64_t>(sample_length_.size()); }
  LossParts pretrain_loss(const std::vector<int32_t>& samples, int64_t epoch) override;

  int64_t attribute_count() const { return attribute_count_; }
  // The views of sample `sample` at `epoch` (what pretrain_loss draws for it).
  PretrainViews sample_views(int32_t sample, int64_t epoch) const;

 private:
  void read_attributes(const data::Dataset& dataset, const data::Split& split);
  void lay_out_samples(const data::Sequences& train);

  S3recConfig config_;
  S3recPretrainConfig pretrain_config_;
  int64_t attribute_count_ = 0;
  std::vector<int64_t> attribute_offsets_;  // item i's attributes: attribute_ids_[offsets[i] .. offsets[i + 1])
  std::vector<int64_t> attribute_ids_;
  std::vector<int32_t> window_items_;       // every user's training window, concatenated
  std::vector<int64_t> sample_start_;       // sample s: window_items_[start .. start + length)
  std::vector<int32_t> sample_length_;
  std::vector<int32_t> long_sequence_;      // every user's training items, concatenated (SP's negatives)
  S3recModule module_{nullptr};
};

}  // namespace embrec::models
