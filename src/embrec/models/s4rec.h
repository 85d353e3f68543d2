// S4Rec (Wei et al., WWW 2024, "Leave No One Behind"): SASRec + online Sinkhorn clustering + sequence contrastive
// learning with prototype negatives + cluster-aware self-distillation + head/tail adversarial learning:
//   L = L_SR + alpha L_Clust + beta1 L_SCL + beta2 L_CKD + lambda L_Adv            (paper Eq. 14)
// Every part is a config switch, so the paper's baselines and ablations are this one model: SASRec (all weights 0),
// CL4SRec (beta1 only, no prototype negatives), ICLRec (clustering = "kmeans", offline Faiss k-means each epoch,
// beta1 + icl_weight), S4Rec with k-means, without CKD, without the adversary, without prototype negatives.
#pragma once

#include <random>

#include "embrec/data/augment.h"
#include "embrec/models/losses/info_nce.h"
#include "embrec/models/sasrec.h"

namespace embrec::models {

// How users are clustered: online with learnable prototypes (S4Rec), offline Faiss k-means each epoch (ICLRec),
// or not at all.
enum class Clustering { Sinkhorn, Kmeans, None };
inline const Names<Clustering> kClusteringNames = {
    {"sinkhorn", Clustering::Sinkhorn}, {"kmeans", Clustering::Kmeans}, {"none", Clustering::None}};

// What L_CKD compares (Eq. 11): the raw sequence representation z_u and prototype mu_h(u), as the paper writes it,
// or both L2-normalised as the clustering sees them. The normalised form at tau3 = 1 is a softmax over 64 values in
// [-1, 1], nearly uniform: between unrelated vectors its KL is about 0.015, so it carries almost no gradient.
enum class CkdSpace { Raw, Normalized };
inline const Names<CkdSpace> kCkdSpaceNames = {{"raw", CkdSpace::Raw}, {"normalized", CkdSpace::Normalized}};

struct S4recConfig {
  SasrecConfig encoder;                // dim, layers, heads, max_length, dropout, ..., loss (L_SR)
  Clustering clustering = Clustering::Sinkhorn;
  int64_t clusters = 128;               // K
  double alpha = 0.01;                  // L_Clust (sinkhorn only)
  double beta1 = 0.1;                   // L_SCL
  double beta2 = 0.1;                   // L_CKD
  double lambda = 1.0;                  // L_Adv
  double icl_weight = 0.0;              // ICLRec's intent contrastive loss (Chen et al. 2022)
  double tau1 = 1.0;                    // clustering temperature (Eq. 3)
  double tau2 = 1.0;                    // contrastive temperature (Eq. 9-10)
  double tau3 = 1.0;                    // distillation temperature (Eq. 11)
  CkdSpace ckd_space = CkdSpace::Raw;   // raw (the paper's Eq. 11) | normalized (embrec before issue #22)
  double sinkhorn_epsilon = 0.05;       // entropy weight of Eq. 5 (SwAV's value)
  int64_t sinkhorn_iterations = 3;
  bool prototype_negatives = true;      // Eq. 10: prototypes of the other clusters as extra negatives
  Similarity similarity = Similarity::Dot;  // contrastive: dot (CL4SRec/ICLRec code) | cosine
  double grl_scale = 1.0;               // gradient reversal scale (gamma of Eq. 13)
  double head_share = 0.2;              // the longest 20 % of training sequences are "head" (adversary labels)
  int64_t kmeans_iterations = 20;
  data::AugmentOptions augment;         // keys: augmentations, mask_ratio, crop_ratio, reorder_ratio, insert_ratio, ...

  bool uses_views() const { return beta1 > 0 || beta2 > 0 || icl_weight > 0; }
  static S4recConfig from(ConfigTable& table);
};

// The parameters: the SASRec encoder, the prototypes (sinkhorn) or the k-means centroids (a buffer), and the
// head/tail classifier.
struct S4recModuleImpl : torch::nn::Module {
  S4recModuleImpl(const S4recConfig& config, int32_t item_count);
  SasrecEncoder encoder{nullptr};
  torch::Tensor prototypes;  // [K, d]: a parameter (sinkhorn) or a buffer of centroids (kmeans); undefined if none
  torch::nn::Linear classifier{nullptr};  // d -> 2 (head, tail), when lambda > 0
};
TORCH_MODULE(S4recModule);

class S4rec final : public SasrecBase {
 public:
  using Config = S4recConfig;
  S4rec(const S4recConfig& config, const ModelContext& context);
  std::string name() const override { return "s4rec"; }
  void fit(const data::Split& split) override;
  torch::nn::Module& module() override { return *module_; }
  void begin_epoch(int64_t epoch, const EpochWorld& world = {}) override;
  // ICLRec's k-means of the users' representations z [n, d] (CPU float) into the prototypes.
  void cluster(const torch::Tensor& z, int64_t epoch);
  LossParts loss(const TensorBatch& batch) override;
  int64_t cluster_count() const override;
  std::vector<int32_t> cluster_assignments(const data::Sequences& histories, const int32_t* users,
                                           int32_t count) override;

  S4recModule& parameters() { return module_; }
  const S4recConfig& config() const { return config_; }
  // Two augmented views of the batch's inputs, padded right-aligned: [2B, L'] (view 1 rows, then view 2 rows).
  torch::Tensor make_views(const TensorBatch& batch) const;

 private:
  // z in the space the clusters live in: L2-normalised for sinkhorn prototypes, raw for k-means centroids.
  torch::Tensor cluster_space(const torch::Tensor& z) const;
  // Normalised prototypes or centroids [K, d].
  torch::Tensor cluster_centers() const;

  S4recConfig config_;
  S4recModule module_{nullptr};
  data::ItemPool pool_;               // training items (shifted ids) for insert / substitute
  torch::Tensor head_labels_;         // [user_count] int64: 0 head, 1 tail
  data::Sequences train_;              // a copy (small): k-means re-encodes every user's input each epoch
  bool warned_sparse_clusters_ = false;  // the few-users-per-cluster warning is given once per run
};

}  // namespace embrec::models
