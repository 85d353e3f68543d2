// DSSRec (Ma et al., KDD 2020, "Disentangled Self-Supervision in Sequential Recommenders"): SASRec's next-item loss
// plus the paper's sequence-to-sequence self-supervision in latent space with disentangled intentions:
//   L = L_SR + seq2seq_weight * L_seq2seq                                               (paper Eq. 6)
// The paper's own code is not public, and its PDF was not at hand when this was written: the definitions below are
// reconstructed from a reading of the paper (equation numbers as it gives them) and a third-party re-implementation
// (MOOCRec); check them against the paper. Where it leaves a choice, the choice is written here (and in
// configs/dssrec-*.toml):
// - L_SR is SASRec's (next_item_loss, `loss` = bce | softmax), so that DSSRec trains under SASRec's conditions; the
//   paper's latent seq2item (its Eq. 5, a mixture over intentions) is not used, and the user vector for ranking is
//   SASRec's (the last position of the encoded history), so eval, export and serve are unchanged.
// - The encoder Phi_theta is SASRec's (layers, heads as configured; the paper uses one head) followed by the
//   intention layer of the paper's Sec. 3.3, shared by past and future:
//     intention clustering   p(k|i) = softmax_k( <LN1(z_i), LN2(c_k)> / sqrt(D) )              (Eq. 7)
//     intention weighting    p_i    = softmax_i( <k_i, q> / sqrt(D) ),  k~_i = LN3(z_i + a_i),
//                                     k_i = k~_i + ReLU(W k~_i + b),   q = LN4(z_t + a_t + b')     (Eq. 8)
//     intention aggregation  phi^(k) = LN5( beta_k + sum_i p(k|i) p_i z_i )                       (Eq. 9)
//   with learned prototypes c_k; a_i is a learned vector indexed by the distance of position i from the query
//   position t (0 = the query), i.e. recency, the paper's reason for it; beta_k ~ N(0, 1/D) are fixed buffers drawn
//   once (checkpointed), one set for past and another for future sequences, so an intention absent from a sequence
//   (p(k|i) ~ 0 everywhere) is represented by noise that matches nothing.
// - The past x_{1:t} is read from the L_SR forward pass at position t (causal attention: its output depends on
//   x_{1:t} only); the future is encoded by the same encoder reversed, x_{T:t+1} (the item next to the split read
//   last, as the paper writes it), as its own right-aligned sequence. The sequence x_1..x_T is the batch row's input
//   followed by its last target.
// - Split points: the paper sums over every t; one t per sequence and batch is drawn (split = "uniform", t uniform
//   in 1..T-1, seeded by seed, epoch, batch and row) or t = floor(T/2) (split = "middle").
// - L_seq2seq (Eq. 3) for the pair (sequence u, intention k):
//     l_uk = -log [ exp(s(phi^k(past_u), phi^k(future_u)))
//                  / sum_{u' in batch} sum_{k'} exp(s(phi^k(past_u), phi^k'(future_u'))) ]
//   with s = <., .> / (sqrt(D) * temperature) (temperature 1 = the paper); the other intentions of the same future
//   are negatives too, which is what disentangles the intentions without an extra regulariser.
// - Which intentions are trained (the paper's confident pairs, Eq. 4): selection = "confident" keeps the
//   floor(confidence * N * K) pairs (u, k) of the batch's N sequences with the lowest l_uk (at least one), i.e. the
//   pairs whose intention the past and future most plausibly share; selection = "best" keeps, per sequence, the one
//   intention k* = argmin_k l_uk. L_seq2seq is the mean of the kept l_uk. Selection is made over the whole batch of a
//   data-parallel job (TensorBatch::gather), as are the in-batch negatives, and the job's gradient is the one-process
//   gradient (see Seq2seqLoss).
#pragma once

#include "embrec/models/sasrec.h"

namespace embrec::models {

enum class IntentionSelection { Confident, Best };
inline const Names<IntentionSelection> kIntentionSelectionNames = {{"confident", IntentionSelection::Confident},
                                                                   {"best", IntentionSelection::Best}};

enum class SplitSampling { Uniform, Middle };
inline const Names<SplitSampling> kSplitSamplingNames = {{"uniform", SplitSampling::Uniform},
                                                         {"middle", SplitSampling::Middle}};

struct DssrecConfig {
  SasrecConfig encoder;                                         // dim, layers, heads, ..., loss (L_SR: bce | softmax)
  int64_t intentions = 4;                                       // K, check >= 1
  double seq2seq_weight = 1.0;                                  // Eq. 6 adds both losses; check >= 0 (0 = SASRec)
  double temperature = 1.0;                                     // of Eq. 3's similarity, check > 0
  IntentionSelection selection = IntentionSelection::Confident;
  double confidence = 0.5;                                      // lambda of Eq. 4, check in (0, 1]
  SplitSampling split = SplitSampling::Uniform;

  static DssrecConfig from(ConfigTable& table);
};

// Which sequence the intention layer reads: the past x_{1:t} or the reversed future x_{T:t+1} (own beta each).
enum class SequenceSide { Past, Future };

// The intention layer of Sec. 3.3 (Eq. 7-9) over encoder outputs.
struct IntentionLayerImpl : torch::nn::Module {
  IntentionLayerImpl(int64_t dim, int64_t intentions, int64_t max_length, double initializer_range);
  // phi [B, K, D] of the sequences whose encoder outputs are hidden [B, L, D] (items [B, L]: true at real items),
  // each read at its query column [B] (int64): positions after the query are ignored.
  torch::Tensor forward(const torch::Tensor& hidden, const torch::Tensor& items, const torch::Tensor& query_column,
                        SequenceSide side);
  // p(k|i), Eq. 7: [B, L, K].
  torch::Tensor intention_probabilities(const torch::Tensor& hidden);
  // p_i, Eq. 8: [B, L], zero at padding and after the query.
  torch::Tensor position_weights(const torch::Tensor& hidden, const torch::Tensor& items,
                                 const torch::Tensor& query_column);

  torch::Tensor prototypes;  // c_k [K, D]
  torch::Tensor recency;     // a_d [max_length, D], d = distance from the query position
  torch::Tensor query_bias;  // b' [D]
  torch::nn::Linear key_transform{nullptr};  // W, b
  torch::nn::LayerNorm item_norm{nullptr}, prototype_norm{nullptr}, key_norm{nullptr}, query_norm{nullptr},
      output_norm{nullptr};  // LN1..LN5
  torch::Tensor past_bias, future_bias;  // beta [K, D], fixed buffers
};
TORCH_MODULE(IntentionLayer);

struct DssrecModuleImpl : torch::nn::Module {
  DssrecModuleImpl(const DssrecConfig& config, int32_t item_count);
  SasrecEncoder encoder{nullptr};
  IntentionLayer intentions{nullptr};
};
TORCH_MODULE(DssrecModule);

struct Seq2seqOptions {
  double temperature = 1.0;
  IntentionSelection selection = IntentionSelection::Confident;
  double confidence = 0.5;
  BatchGather gather;  // the whole batch of a data-parallel job; empty = one process
};

struct Seq2seqLoss {
  // The mean of the kept l_uk over the whole batch. In a data-parallel job, as this rank's share: the ranks' values
  // weighed by their share of the sequences add up to the one-process value, and so do their gradients (each rank
  // differentiates the whole batch's loss through its own rows, so a future also learns from the anchors of the
  // other ranks, which a loss over this rank's anchors alone would leave out).
  torch::Tensor loss;
  torch::Tensor kept;   // [B, K] bool: this rank's kept pairs
  torch::Tensor pairs;  // [B, K]: l_uk of this rank's pairs (0 for sequences without a split)
};

// L_seq2seq (Eq. 3-4) of past and future representations [B, K, D] of this rank's sequences; valid [B] bool marks
// the sequences that have a split (at least two items); the others are neither anchors nor negatives.
Seq2seqLoss seq2seq_loss(const torch::Tensor& past, const torch::Tensor& future, const torch::Tensor& valid,
                         const Seq2seqOptions& options);

// The split of each batch row into past and future.
struct Splits {
  torch::Tensor past_column;   // [B] int64: the column of x_t in batch.input
  torch::Tensor future_input;  // [B, F] int64: x_T, ..., x_{t+1}, right-aligned (0 = padding)
  torch::Tensor valid;         // [B] bool: the row has T >= 2 items
  std::vector<int64_t> split;  // t per row (0 where not valid)
};

class Dssrec final : public SasrecBase {
 public:
  using Config = DssrecConfig;
  Dssrec(const DssrecConfig& config, const ModelContext& context);
  std::string name() const override { return "dssrec"; }
  torch::nn::Module& module() override { return *module_; }
  LossParts loss(const TensorBatch& batch) override;

  Splits make_splits(const TensorBatch& batch) const;
  DssrecModule& parameters() { return module_; }
  const DssrecConfig& config() const { return config_; }

 private:
  DssrecConfig config_;
  DssrecModule module_{nullptr};
};

}  // namespace embrec::models
