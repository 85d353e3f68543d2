// The two-tower retrieval model (Yi et al., RecSys 2019; Yao et al., CIKM 2021): a user tower and an item tower,
// each the concatenation of an id embedding (switchable), single-valued feature embeddings and mean-pooled
// multi-valued ones (and on the user side optionally the mean of the history's item embeddings), through an MLP to
// an L2-normalised vector; score = cosine / temperature. Trained with a softmax over the batch's items corrected by
// log Q (exact counts or the streaming estimator), optional uniformly sampled extra negatives (mixed negative
// sampling), and a self-supervised contrastive loss on two augmented views of uniformly drawn items.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "embrec/data/features.h"
#include "embrec/models/losses/streaming_frequency.h"
#include "embrec/models/model.h"

namespace embrec::models {

enum class LogQ { None, Counts, Streaming };
inline const Names<LogQ> kLogQNames = {{"none", LogQ::None}, {"counts", LogQ::Counts}, {"streaming", LogQ::Streaming}};
enum class UserHistory { None, Mean };
inline const Names<UserHistory> kUserHistoryNames = {{"none", UserHistory::None}, {"mean", UserHistory::Mean}};
// The item augmentations of the self-supervised loss (Yao et al. 2021, Section 3.2).
enum class Augmentation { Mask, Dropout, Complementary, Correlated };
inline const Names<Augmentation> kAugmentationNames = {{"mask", Augmentation::Mask},
                                                       {"dropout", Augmentation::Dropout},
                                                       {"complementary", Augmentation::Complementary},
                                                       {"correlated", Augmentation::Correlated}};

struct TwoTowerConfig {
  int64_t dim = 64;                     // output vector size of both towers
  int64_t embedding_dim = 32;           // per id and per feature field
  std::vector<int64_t> hidden{128};     // MLP hidden layers (ReLU) before the output layer; [] = linear
  double dropout = 0.0;                 // on the MLP's hidden layers
  // Id and feature embeddings start N(0, init_std²), as mf's factors: LibTorch's N(0, 1) gives every id a distinct
  // random vector from the start, and the towers memorise the training pairs (Beauty, user ids: validation NDCG@20
  // peaked at 0.0099 after 10 epochs and fell) where a small start learns the shared structure first.
  double init_std = 0.1;
  bool item_id = true;                  // the item id embedding (false: a features-only item tower)
  // The share of the main loss's items whose id is masked (DropoutNet, Volkovs et al. 2017): the tower learns to
  // place an item by its features alone, as it must for cold items, whose id was never trained.
  double id_dropout = 0.0;
  bool user_id = true;                  // the user id embedding
  // The share of the main loss's users whose id is masked: the user tower learns to place a user by features and
  // history alone, as it must for a fresh user in a request, whose id it never saw.
  double user_id_dropout = 0.0;
  bool item_features = true;            // the dataset's item features, when it has any
  bool user_features = true;            // the dataset's user features, when it has any
  UserHistory history = UserHistory::None;  // mean: the user's other training items (the target left out)
  double temperature = 0.05;            // cosine / temperature
  LogQ logq = LogQ::Counts;             // the correction of in-batch negatives
  double streaming_alpha = 0.01;        // logq = "streaming": the estimator's step
  int64_t extra_negatives = 0;          // uniformly drawn items added to every row's candidates
  // A batch's (user, item) pairs are shuffled and cut into softmaxes of at most this many pairs (a batch of users
  // holds all their training pairs: 16 ML-1M users hold ~2,600, and one logit matrix of them all ~27 MB).
  int64_t max_pairs = 1024;
  double ssl_weight = 0.0;              // alpha: total = main + alpha * ssl; 0 = no self-supervised loss
  double ssl_temperature = 0.1;
  int64_t ssl_batch = 256;              // items drawn uniformly from the catalogue per batch
  Augmentation augmentation = Augmentation::Correlated;
  double mask_ratio = 0.5;              // mask: each field masked with this probability per view
  double dropout_ratio = 0.5;           // dropout: each value of a multi-valued field dropped per view

  static TwoTowerConfig from(ConfigTable& table);
};

// The inputs of one tower for N entities: the id (+1; 0 = masked or unknown) and each feature field's vocabulary
// indices as an EmbeddingBag input (values + offsets; a single-valued field has one value per entity; an empty or
// masked field holds the "missing" index 0, whose embedding is the learned default).
struct TowerInput {
  torch::Tensor ids;                  // [N] int64
  std::vector<torch::Tensor> values;  // per field [M_f] int64
  std::vector<torch::Tensor> offsets; // per field [N] int64
  torch::Tensor history;              // [N, dim_e] float: the pooled history embedding, or undefined
};

struct TowerImpl : torch::nn::Module {
  TowerImpl(int64_t id_count, bool use_id, const std::vector<int64_t>& vocab_sizes, bool with_history,
            const TwoTowerConfig& config);
  torch::Tensor forward(const TowerInput& input);  // [N, dim], L2-normalised
  torch::nn::Embedding id_embedding{nullptr};
  std::vector<torch::nn::EmbeddingBag> fields;
  torch::nn::Sequential mlp{nullptr};
  bool use_id;
};
TORCH_MODULE(Tower);

// Augmentation masks for one view pair of `count` entities over `fields` fields (the id counts as a field when the
// tower has one): [count x fields] row-major, 1 = masked. Complementary and correlated views are disjoint and cover
// every field; `correlated` lists, for each seed field, the fields masked with it (seed first).
struct ViewMasks {
  std::vector<uint8_t> first, second;
};
ViewMasks augmentation_masks(Augmentation kind, int64_t count, int64_t fields, double mask_ratio,
                             const std::vector<std::vector<int64_t>>& correlated, uint64_t seed);
// `count` items drawn uniformly from [0, item_count) (the self-supervised batch: the tail as often as the head).
std::vector<int64_t> uniform_items(int64_t count, int64_t item_count, uint64_t seed);

class TwoTower final : public Model {
 public:
  using Config = TwoTowerConfig;
  // Needs the dataset and split in the context (its feature vocabularies are built on the training entities).
  TwoTower(const TwoTowerConfig& config, const ModelContext& context);
  std::string name() const override { return "two_tower"; }
  void fit(const data::Split& split) override;
  void restore(const data::Split&) override {}  // log Q and the estimator are buffers
  bool trainable() const override { return true; }
  data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const override;
  torch::nn::Module& module() override { return module_; }
  LossParts loss(const TensorBatch& batch) override;

  int64_t dim() const override { return config_.dim; }
  // Cosine ranking: the user vector is scaled by 1 / temperature so inner products are the training logits.
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;
  // Every item through the item tower; items never trained on (cold items) use only their features.
  torch::Tensor item_vectors() override;
  // A fresh user is served when the user tower has something besides the id: a history (history = "mean") or user
  // features. Its id is the unknown one (the zero row), its features given by name (data::encode_entity).
  bool encodes_histories() const override {
    return config_.history == UserHistory::Mean || !user_features_.fields.empty();
  }
  bool takes_user_features() const override { return !user_features_.fields.empty(); }
  torch::Tensor fresh_user_vector(const std::vector<int32_t>& history, const data::FeatureValues& features) override;
  // The feature vocabularies (JSON: item_fields and user_fields, each [{name, multi_valued, vocabulary}]).
  std::string encoder_state() const override;
  bool places_untrained_items() const override { return !item_features_.fields.empty(); }

  // Item tower inputs of `items` (internal ids), with `masked` [items x fields] (may be empty) and value dropout.
  TowerInput item_input(const std::vector<int64_t>& items, const std::vector<uint8_t>& masked, double value_dropout,
                        uint64_t seed) const;
  const data::EncodedFeatures& item_features() const { return item_features_; }

 private:
  // User tower inputs; each id is masked (0, the unknown row) with probability id_dropout.
  TowerInput user_input(const std::vector<int64_t>& users, const torch::Tensor& history, double id_dropout = 0.0,
                        uint64_t seed = 0) const;
  torch::Tensor pooled_history(const torch::Tensor& items_plus_one);  // [N, L] ids + 1 -> [N, dim_e]
  torch::Tensor ssl_loss(const TensorBatch& batch);

  TwoTowerConfig config_;
  ModelContext context_;
  data::EncodedFeatures item_features_, user_features_;
  std::vector<uint8_t> item_trained_;                // items with training interactions (others: id masked)
  std::vector<std::vector<int64_t>> correlated_;     // per item-tower field, the fields masked with it
  torch::nn::Module module_;
  Tower user_tower_{nullptr}, item_tower_{nullptr};
  torch::nn::Embedding history_embedding_{nullptr};  // [items + 1, dim_e], row 0 padding
  torch::Tensor item_log_q_;                         // logq = counts
  losses::StreamingFrequency frequency_;             // logq = streaming
  torch::Tensor step_;                               // batches trained so far (the estimator's clock)
};

}  // namespace embrec::models
