// Matrix factorisation: the three losses on (user, item) pairs, rating prediction and the vectors for ranking.
#include "embrec/models/mf.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "embrec/models/losses/sampled_softmax.h"
#include "embrec/models/losses/softmax_cross_entropy.h"
#include "embrec/util/error.h"

namespace embrec::models {

namespace F = torch::nn::functional;

MfConfig MfConfig::from(ConfigTable& table) {
  MfConfig c;
  c.dim = table.get_positive("dim", c.dim);
  c.loss = table.get_one_of("loss", c.loss, kMfLossNames);
  c.similarity = table.get_one_of("similarity", c.similarity, kSimilarityNames);
  const bool softmax = c.loss == MfLoss::Softmax;
  c.targets = table.only(c.loss == MfLoss::Mse, "to loss = \"mse\"").get_one_of("targets", c.targets, kMfTargetsNames);
  // A temperature or a cosine that the loss would ignore is a mistake in the config, not a default.
  table.check(softmax || c.similarity == Similarity::Dot, "similarity",
              "applies only to loss = \"softmax\"; mse and bpr use the dot product");
  auto softmax_only = table.only(softmax, "to loss = \"softmax\"");
  // Cosine scores lie in [-1, 1]: without a small temperature the softmax is nearly flat.
  c.temperature = softmax_only.get_positive("temperature", c.similarity == Similarity::Cosine ? 0.1 : 1.0);
  const char* bias_condition = "to loss = \"bpr\" or \"softmax\" (it is always on for loss = \"mse\", with the "
                               "user bias)";
  c.item_bias = table.only(c.loss != MfLoss::Mse, bias_condition).get("item_bias", c.loss == MfLoss::Bpr);
  c.negatives = softmax_only.get_one_of("negatives", c.negatives, kMfNegativesNames);
  c.logq_correction = table.only(softmax && c.negatives == MfNegatives::InBatch,
                                 softmax ? "to negatives = \"in_batch\"" : "to loss = \"softmax\"")
                          .get("logq_correction", c.logq_correction);
  c.max_pairs = table.only(softmax && c.negatives == MfNegatives::InBatch,
                           softmax ? "to negatives = \"in_batch\"" : "to loss = \"softmax\"")
                    .get_at_least("max_pairs", c.max_pairs, int64_t{2});
  c.solver = table.only(c.loss == MfLoss::Bpr, "to loss = \"bpr\"").get_one_of("solver", c.solver, kMfSolverNames);
  auto sgd = table.only(c.solver == MfSolver::Sgd, "to solver = \"sgd\"");
  c.sgd_epochs = sgd.get_positive("sgd_epochs", c.sgd_epochs);
  c.sgd_learning_rate = sgd.get_positive("sgd_learning_rate", c.sgd_learning_rate);
  c.reg = table.get_at_least("reg", c.reg, 0.0);
  c.init_std = table.get_positive("init_std", c.init_std);
  c.softmax_chunk = table.get_positive("softmax_chunk", c.softmax_chunk);
  return c;
}

MfModuleImpl::MfModuleImpl(const MfConfig& config, int32_t user_count, int32_t item_count) {
  user_factors = register_parameter("user_factors", torch::randn({user_count, config.dim}) * config.init_std);
  item_factors = register_parameter("item_factors", torch::randn({item_count, config.dim}) * config.init_std);
  if (config.loss == MfLoss::Mse || config.item_bias)
    item_bias = register_parameter("item_bias", torch::zeros({item_count}));
  if (config.loss == MfLoss::Softmax && config.negatives == MfNegatives::InBatch)
    item_log_q = register_buffer("item_log_q", torch::zeros({item_count}));
  if (config.loss == MfLoss::Mse) {
    user_bias = register_parameter("user_bias", torch::zeros({user_count}));
    global_mean = register_buffer("global_mean", torch::zeros({}));
  }
}

Mf::Mf(const MfConfig& config, const ModelContext& context) : config_(config), context_(context) {
  if (context.user_count <= 0 || context.item_count <= 0)
    fail("model 'mf': needs users and items, got {} users and {} items", context.user_count, context.item_count);
  module_ = MfModule(config, context.user_count, context.item_count);
  module_->to(context.device);
}

void Mf::fit(const data::Split& split) {
  if (module_->item_log_q.defined()) {
    torch::NoGradGuard no_grad;
    module_->item_log_q.copy_(losses::log_training_share(split.train.items, context_.item_count));
  }
  if (config_.solver == MfSolver::Sgd) fit_sgd(split.train);
  if (config_.loss != MfLoss::Mse) return;
  torch::NoGradGuard no_grad;
  if (config_.targets == MfTargets::Binary) {
    module_->global_mean.fill_(0.5);  // the mean target: as many zeros as ones
    return;
  }
  if (!split.train.has_ratings() || split.train.ratings.empty())
    fail("model 'mf': loss = \"mse\" learns ratings, but the training data has none (targets = \"binary\" "
         "regresses 1 on observed and 0 on sampled unobserved pairs; or loss = \"bpr\" or \"softmax\")");
  double sum = 0.0;
  for (float rating : split.train.ratings) sum += rating;
  module_->global_mean.fill_(sum / static_cast<double>(split.train.ratings.size()));
}

// cornac's BPR step for a triple (u, i, j), x = p_u·(q_i − q_j) + b_i − b_j and z = σ(−x) = −∂(−log σ(x))/∂x:
// p_u += η (z (q_i − q_j) − 2 reg p_u), q_i += η (z p_u − 2 reg q_i), q_j += η (−z p_u − 2 reg q_j), and the same
// for b_i, b_j: the gradient of −log σ(x) + reg (‖p_u‖² + ‖q_i‖² + ‖q_j‖² + b_i² + b_j²), the Adam loss per triple.
// All updates read the values from before the step.
void Mf::fit_sgd(const data::Sequences& train) {
  const int64_t dim = config_.dim, items = context_.item_count, pairs = static_cast<int64_t>(train.items.size());
  if (pairs == 0) fail("model 'mf': solver = \"sgd\" needs training interactions");
  MfModuleImpl& m = *module_;
  // Work on CPU copies (the parameters may live on another device), written back at the end.
  torch::Tensor p = m.user_factors.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor q = m.item_factors.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  torch::Tensor b = config_.item_bias ? m.item_bias.detach().to(torch::kCPU, torch::kFloat32).contiguous()
                                      : torch::zeros({items});
  float* P = p.data_ptr<float>();
  float* Q = q.data_ptr<float>();
  float* B = b.data_ptr<float>();
  std::vector<int32_t> owner(static_cast<size_t>(pairs));
  std::vector<std::vector<int32_t>> seen(static_cast<size_t>(train.user_count()));
  for (int32_t u = 0; u < train.user_count(); ++u) {
    std::fill(owner.begin() + train.offsets[u], owner.begin() + train.offsets[u + 1], u);
    seen[u].assign(train.begin(u), train.end(u));
    std::sort(seen[u].begin(), seen[u].end());
    seen[u].erase(std::unique(seen[u].begin(), seen[u].end()), seen[u].end());
    if (static_cast<int64_t>(seen[u].size()) >= items)
      fail("model 'mf': user {} has every item in training: no negative to draw", u);
  }
  const float rate = static_cast<float>(config_.sgd_learning_rate), decay = static_cast<float>(2.0 * config_.reg);
  const bool bias = config_.item_bias;
  std::vector<float> user_old(static_cast<size_t>(dim));
  for (int64_t epoch = 0; epoch < config_.sgd_epochs; ++epoch) {
    std::mt19937_64 random(context_.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(epoch) + 1);
    double loss_sum = 0.0;
    for (int64_t step = 0; step < pairs; ++step) {
      const int64_t pick = static_cast<int64_t>(random() % static_cast<uint64_t>(pairs));
      const int32_t u = owner[pick], i = train.items[pick];
      int32_t j;
      do {
        j = static_cast<int32_t>(random() % static_cast<uint64_t>(items));
      } while (std::binary_search(seen[u].begin(), seen[u].end(), j));
      float* pu = P + u * dim;
      float* qi = Q + static_cast<int64_t>(i) * dim;
      float* qj = Q + static_cast<int64_t>(j) * dim;
      // Eight partial sums: a strict left-to-right float sum would not vectorise.
      float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t d0 = 0;
      for (; d0 + 8 <= dim; d0 += 8)
        for (int k = 0; k < 8; ++k) partial[k] += pu[d0 + k] * (qi[d0 + k] - qj[d0 + k]);
      float x = bias ? B[i] - B[j] : 0.0f;
      for (; d0 < dim; ++d0) x += pu[d0] * (qi[d0] - qj[d0]);
      x += ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
      const float z = 1.0f / (1.0f + std::exp(x));
      loss_sum += std::log1p(std::exp(-static_cast<double>(x)));
      std::copy(pu, pu + dim, user_old.begin());
      for (int64_t d = 0; d < dim; ++d) {
        pu[d] += rate * (z * (qi[d] - qj[d]) - decay * pu[d]);
        qi[d] += rate * (z * user_old[d] - decay * qi[d]);
        qj[d] += rate * (-z * user_old[d] - decay * qj[d]);
      }
      if (bias) {
        B[i] += rate * (z - decay * B[i]);
        B[j] += rate * (-z - decay * B[j]);
      }
    }
    spdlog::info("mf sgd epoch {}/{}: bpr {:.4f}", epoch + 1, config_.sgd_epochs, loss_sum / static_cast<double>(pairs));
  }
  torch::NoGradGuard no_grad;
  m.user_factors.copy_(p);
  m.item_factors.copy_(q);
  if (bias) m.item_bias.copy_(b);
}

data::SamplerOptions Mf::sampler_options(const data::SamplerOptions& defaults) const {
  data::SamplerOptions options = defaults;
  options.all_items = true;
  const bool mse = config_.loss == MfLoss::Mse;
  options.ratings = mse && config_.targets == MfTargets::Ratings;
  options.negatives = config_.loss == MfLoss::Bpr || (mse && config_.targets == MfTargets::Binary);
  return options;
}

// Every term is a mean over the batch's (user, item) pairs. The L2 term adds reg * (squared norms of the pair's
// parameters), as the per-rating SGD of Surprise's SVD and cornac's BPR do; their objectives are ½ err² + ½ λ‖θ‖²
// and log σ(x) − ½ λ‖θ‖², so reg = λ for mse and reg = λ / 2 for bpr give the same minimiser.
LossParts Mf::loss(const TensorBatch& batch) {
  MfModuleImpl& m = *module_;
  const torch::Tensor mask = batch.target > 0;
  const torch::Tensor users = batch.users.unsqueeze(1).expand_as(batch.target).masked_select(mask);
  const torch::Tensor items = batch.target.masked_select(mask) - 1;
  const torch::Tensor p = m.user_factors.index_select(0, users);
  const torch::Tensor q = m.item_factors.index_select(0, items);
  torch::Tensor main, squared_norms;
  if (config_.loss == MfLoss::Mse && config_.targets == MfTargets::Binary) {
    if (!batch.negative.defined()) fail("model 'mf': targets = \"binary\" needs sampled negatives in the batch");
    const torch::Tensor negatives = batch.negative.masked_select(mask) - 1;
    const torch::Tensor negative = m.item_factors.index_select(0, negatives);
    const torch::Tensor user_bias = m.user_bias.index_select(0, users);
    const torch::Tensor item_bias = m.item_bias.index_select(0, items);
    const torch::Tensor negative_bias = m.item_bias.index_select(0, negatives);
    const torch::Tensor observed = m.global_mean + user_bias + item_bias + (p * q).sum(1);
    const torch::Tensor unobserved = m.global_mean + user_bias + negative_bias + (p * negative).sum(1);
    // Each pair contributes (1 − r̂_ui)² and (0 − r̂_uj)²: the mean over both.
    main = ((1.0 - observed).pow(2) + unobserved.pow(2)).mean() / 2.0;
    squared_norms = p.pow(2).sum(1) + q.pow(2).sum(1) + negative.pow(2).sum(1) + user_bias.pow(2) +
                    item_bias.pow(2) + negative_bias.pow(2);
  } else if (config_.loss == MfLoss::Mse) {
    if (!batch.rating.defined()) fail("model 'mf': loss = \"mse\" needs the batch's ratings");
    const torch::Tensor user_bias = m.user_bias.index_select(0, users);
    const torch::Tensor item_bias = m.item_bias.index_select(0, items);
    const torch::Tensor predicted = m.global_mean + user_bias + item_bias + (p * q).sum(1);
    const torch::Tensor truth = batch.rating.masked_select(mask).to(predicted.scalar_type());
    main = (truth - predicted).pow(2).mean();
    squared_norms = p.pow(2).sum(1) + q.pow(2).sum(1) + user_bias.pow(2) + item_bias.pow(2);
  } else if (config_.loss == MfLoss::Bpr) {
    if (!batch.negative.defined()) fail("model 'mf': loss = \"bpr\" needs sampled negatives in the batch");
    const torch::Tensor negatives = batch.negative.masked_select(mask) - 1;
    const torch::Tensor negative = m.item_factors.index_select(0, negatives);
    torch::Tensor difference = (p * (q - negative)).sum(1);
    squared_norms = p.pow(2).sum(1) + q.pow(2).sum(1) + negative.pow(2).sum(1);
    if (config_.item_bias) {
      const torch::Tensor positive_bias = m.item_bias.index_select(0, items);
      const torch::Tensor negative_bias = m.item_bias.index_select(0, negatives);
      difference = difference + positive_bias - negative_bias;
      squared_norms = squared_norms + positive_bias.pow(2) + negative_bias.pow(2);
    }
    main = -F::logsigmoid(difference).mean();
  } else {
    torch::Tensor hidden = p, weight = m.item_factors;
    if (config_.similarity == Similarity::Cosine) {
      // Normalising inside the graph: the gradient flows through the norms, as in the cosine-softmax papers.
      hidden = F::normalize(hidden, F::NormalizeFuncOptions().dim(1).eps(1e-12));
      weight = F::normalize(weight, F::NormalizeFuncOptions().dim(1).eps(1e-12));
    }
    hidden = hidden / config_.temperature;
    squared_norms = p.pow(2).sum(1) + q.pow(2).sum(1);
    if (config_.item_bias) {
      // The bias as one more coordinate: [h, 1] · [w_i, b_i] = h · w_i + b_i, so the fused softmax needs no change.
      hidden = torch::cat({hidden, torch::ones({hidden.size(0), 1}, hidden.options())}, 1);
      weight = torch::cat({weight, m.item_bias.unsqueeze(1)}, 1);
      squared_norms = squared_norms + m.item_bias.index_select(0, items).pow(2);
    }
    if (config_.negatives == MfNegatives::All) {
      main = losses::softmax_cross_entropy(hidden, weight, items, config_.softmax_chunk);
    } else {
      // Row r's classes are the batch's items; its own column is the label (duplicates of it are no negatives).
      const torch::Tensor log_q = config_.logq_correction ? m.item_log_q.index_select(0, items) : torch::Tensor();
      const uint64_t seed = context_.seed * 1000003ULL + static_cast<uint64_t>(batch.epoch) * 7919ULL +
                            static_cast<uint64_t>(batch.batch_index) + 18;
      main = losses::chunked_sampled_softmax_loss(hidden, weight.index_select(0, items), items, log_q,
                                                  config_.max_pairs, seed, {}, {}, {}, batch.gather) *
             share_to_mean(batch.gather, batch.users);
    }
  }
  LossParts out;
  out.parts.emplace_back(name_of(kMfLossNames, config_.loss), main.detach());
  if (config_.reg > 0) {
    const torch::Tensor penalty = config_.reg * squared_norms.mean();
    out.total = main + penalty;
    out.parts.emplace_back("reg", penalty.detach());
  } else {
    out.total = main;
  }
  return out;
}

torch::Tensor Mf::user_vectors(const data::Sequences&, const int32_t* users, int32_t count) {
  torch::NoGradGuard no_grad;
  const torch::Tensor ids =
      torch::from_blob(const_cast<int32_t*>(users), {count}, torch::kInt32).to(torch::kLong).to(context_.device);
  torch::Tensor vectors = module_->user_factors.index_select(0, ids);
  if (config_.similarity == Similarity::Cosine)
    vectors = F::normalize(vectors, F::NormalizeFuncOptions().dim(1).eps(1e-12));
  if (has_item_bias()) {
    // The bias is added to the logit, so the factor part must be on the logit's scale.
    if (config_.loss == MfLoss::Softmax) vectors = vectors / config_.temperature;
    vectors = torch::cat({vectors, torch::ones({count, 1}, vectors.options())}, 1);
  }
  return vectors.to(torch::kCPU, torch::kFloat32).contiguous();
}

torch::Tensor Mf::item_vectors() {
  torch::NoGradGuard no_grad;
  torch::Tensor vectors = module_->item_factors;
  if (config_.similarity == Similarity::Cosine)
    vectors = F::normalize(vectors, F::NormalizeFuncOptions().dim(1).eps(1e-12));
  if (has_item_bias()) vectors = torch::cat({vectors, module_->item_bias.unsqueeze(1)}, 1);
  return vectors.to(torch::kCPU, torch::kFloat32).contiguous();
}

void Mf::predict_ratings(const int32_t* users, const int32_t* items, int64_t count, float* out) {
  if (!predicts_ratings()) Model::predict_ratings(users, items, count, out);
  torch::NoGradGuard no_grad;
  auto ids = [&](const int32_t* values, int32_t limit, const char* what) {
    for (int64_t k = 0; k < count; ++k)
      if (values[k] < 0 || values[k] >= limit) fail("model 'mf': {} id {} out of range [0, {})", what, values[k], limit);
    return torch::from_blob(const_cast<int32_t*>(values), {count}, torch::kInt32).to(torch::kLong).to(context_.device);
  };
  const torch::Tensor u = ids(users, context_.user_count, "user");
  const torch::Tensor i = ids(items, context_.item_count, "item");
  MfModuleImpl& m = *module_;
  const torch::Tensor predicted = m.global_mean + m.user_bias.index_select(0, u) + m.item_bias.index_select(0, i) +
                                  (m.user_factors.index_select(0, u) * m.item_factors.index_select(0, i)).sum(1);
  const torch::Tensor result = predicted.to(torch::kCPU, torch::kFloat32).contiguous();
  std::copy_n(result.data_ptr<float>(), count, out);
}

EMBREC_REGISTER_MODEL("mf", Mf);

}  // namespace embrec::models
