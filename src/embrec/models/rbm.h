// RBM for collaborative filtering (Salakhutdinov, Mnih & Hinton, ICML 2007): softmax visible units over the rating
// values of each rated item, Bernoulli hidden units, trained by contrastive divergence CD-k with Microsoft
// Recommenders' settings (recommenders/models/rbm/rbm.py); ranks and predicts ratings from p(v | p(h | history)).
#pragma once

#include <string>
#include <vector>

#include "embrec/models/model.h"

namespace embrec::models {

enum class RbmUnits { Softmax, RatingValue };
inline const Names<RbmUnits> kRbmUnitsNames = {{"softmax", RbmUnits::Softmax},
                                               {"rating_value", RbmUnits::RatingValue}};
enum class RbmRanking { ModeProbability, ExpectedRating };
inline const Names<RbmRanking> kRbmRankingNames = {{"mode_probability", RbmRanking::ModeProbability},
                                                   {"expected_rating", RbmRanking::ExpectedRating}};

struct RbmConfig {
  int64_t hidden = 500;  // hidden units (MS's default; their ML-100K quick start uses 600)
  // softmax: the paper's units, one weight vector per (item, rating value), W is [items·R, hidden].
  // rating_value: MS's "multinomial units", W is [items, hidden] and the logit of value r is r·(b_i + W_i·h), i.e. the
  // softmax model with tied weights W_irh = r·W_ih, b_ir = r·b_i.
  RbmUnits visible = RbmUnits::Softmax;
  int64_t min_rating = 1;  // ratings must be integers in [min_rating, max_rating]: R = max - min + 1 values
  int64_t max_rating = 5;
  double init_std = 0.1;   // W ~ N(0, init_std²), biases 0 (MS's init_stdv)
  int64_t cd_steps = 1;    // Gibbs steps k of CD-k at the first epoch
  // Epochs (1-based, as the log counts) from which k grows by one each: MS's sampling_protocol increases k as
  // training proceeds (see rbm-ml-100k.toml for their schedule in epochs). Empty: k stays cd_steps.
  std::vector<int64_t> cd_step_epochs;
  // MS's keep_prob: hidden probabilities in the Gibbs chain pass through inverted dropout before sampling
  // (tf.nn.dropout). 1 = none (the paper). Only the training chain uses it; prediction is deterministic.
  double keep_prob = 1.0;
  // mode_probability: MS's recommend_k_items score "predicted rating × its probability", with the most probable
  // rating standing in for their sampled one; expected_rating: Σ_r r·p(r).
  RbmRanking ranking = RbmRanking::ModeProbability;
  int64_t score_chunk = 256;  // users per dense [users, items·R] block when scoring

  static RbmConfig from(ConfigTable& table);
  int64_t rating_count() const { return max_rating - min_rating + 1; }
  // k at 0-based epoch `epoch` (TensorBatch::epoch).
  int64_t cd_steps_at(int64_t epoch) const;
};

struct RbmModuleImpl : torch::nn::Module {
  RbmModuleImpl(const RbmConfig& config, int32_t item_count);
  torch::Tensor weight;          // [items·R, hidden] (softmax) or [items, hidden] (rating_value)
  torch::Tensor visible_bias;    // [items·R] or [items]
  torch::Tensor hidden_bias;     // [hidden]
};
TORCH_MODULE(RbmModule);

// The visible units that are on: for each rated (row, item), its rating as a level 0..R-1 (rating - min_rating).
// Unrated items are not units of that row at all. Positions are grouped by row (ascending).
struct RbmVisible {
  torch::Tensor rows;    // [P] int64, the row (user of the batch) of each unit
  torch::Tensor items;   // [P] int64
  torch::Tensor levels;  // [P] int64 in [0, R)
  int64_t row_count = 0;
};

class Rbm final : public Model {
 public:
  using Config = RbmConfig;
  Rbm(const RbmConfig& config, const ModelContext& context);
  std::string name() const override { return "rbm"; }
  // Checks the ratings (present, integers in [min_rating, max_rating]) and keeps the training ratings: they are
  // the visible units predict_ratings() conditions on. Checkpoints hold the parameters only; load_run calls fit()
  // again, which rebuilds this from the split.
  void fit(const data::Split& split) override;
  bool trainable() const override { return true; }
  // One row per user holding all their training (item, rating) pairs.
  data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const override;
  torch::nn::Module& module() override { return *module_; }
  // mean over users of F(v_data) − F(v_k), v_k after k Gibbs steps (see rbm.cpp); part "recon" is the RMSE of the
  // expected ratings of a mean-field pass v → p(h|v) → p(v|h) against the true training ratings.
  LossParts loss(const TensorBatch& batch) override;

  int64_t dim() const override { return 0; }
  // The histories' rated items are the visible units; scores per config.ranking. Histories without ratings (an
  // implicit log, or Sequences::concat(train, valid) when valid is empty and so carries no ratings) take each event's
  // rating from the training ratings kept by fit(); an event with no training rating is unrated (not a unit), as a 0
  // in MS's user/item matrix.
  void score_block(const data::Sequences& histories, const int32_t* users, int32_t count, float* out) override;
  bool predicts_ratings() const override { return true; }
  // Σ_r r·p(v_i = r | p(h | the user's training ratings)).
  void predict_ratings(const int32_t* users, const int32_t* items, int64_t count, float* out) override;

  // The pieces, public for tests.
  RbmVisible visible_from_batch(const TensorBatch& batch) const;
  // F(v) = −Σ_units b_v − Σ_j softplus(b_h,j + Σ_units W_unit,j), per row: [row_count].
  torch::Tensor free_energy(const RbmVisible& visible);
  torch::Tensor hidden_probabilities(const RbmVisible& visible);  // [rows, hidden]
  // p(v_i = r | h) for every item: [rows, items, R], a softmax over r.
  torch::Tensor visible_probabilities(const torch::Tensor& hidden);
  // k Gibbs steps from `data` (units stay on the same items: unrated items are never sampled), drawing from `generator`
  // (a CPU generator; draws are copied to the model's device).
  RbmVisible gibbs_chain(const RbmVisible& data, int64_t steps, at::Generator& generator);
  // The level values min_rating..max_rating as float32 [R] on the model's device.
  const torch::Tensor& rating_values() const { return rating_values_; }
  const RbmConfig& config() const { return config_; }
  RbmModule& rbm_module() { return module_; }

 private:
  torch::Tensor hidden_input(const RbmVisible& visible);  // Σ_units W_unit + b_h: [rows, hidden]
  torch::Tensor visible_logits(const torch::Tensor& hidden);  // [rows, items, R]
  // The rated items of `users` in `histories` as units on the device.
  RbmVisible visible_from_histories(const data::Sequences& histories, const int32_t* users, int32_t count) const;
  // Scores (ranking = true: config.ranking; false: expected ratings) of all items for `count` users into out.
  void item_scores(const data::Sequences& histories, const int32_t* users, int32_t count, bool ranking, float* out);
  void check_level(float rating, const char* where) const;

  RbmConfig config_;
  ModelContext context_;
  RbmModule module_{nullptr};
  torch::Tensor rating_values_;
  data::Sequences train_;  // training items and ratings from fit()
  // item_scores' workspace, reused across chunks and calls.
  torch::Tensor probabilities_, activation_, scores_, top_probability_, top_level_;
  bool fitted_ = false;
};

}  // namespace embrec::models
