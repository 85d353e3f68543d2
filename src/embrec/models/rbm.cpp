// RBM: free energy, Gibbs chains on the rated items only, the CD-k loss as a free-energy difference, and dense
// chunked scoring from mean-field hidden probabilities.
#include "embrec/models/rbm.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

#include "embrec/util/error.h"

namespace embrec::models {

namespace F = torch::nn::functional;

RbmConfig RbmConfig::from(ConfigTable& table) {
  RbmConfig c;
  c.hidden = table.get_positive("hidden", c.hidden);
  c.visible = table.get_one_of("visible", c.visible, kRbmUnitsNames);
  c.min_rating = table.get("min_rating", c.min_rating);
  c.max_rating = table.get("max_rating", c.max_rating);
  table.check(c.max_rating > c.min_rating, "max_rating",
              fmt::format("must exceed min_rating ({}), got {}", c.min_rating, c.max_rating));
  c.init_std = table.get_positive("init_std", c.init_std);
  c.cd_steps = table.get_at_least("cd_steps", c.cd_steps, int64_t{1});
  c.cd_step_epochs = table.get("cd_step_epochs", c.cd_step_epochs);
  for (size_t i = 0; i < c.cd_step_epochs.size(); ++i)
    table.check(c.cd_step_epochs[i] >= 1 && (i == 0 || c.cd_step_epochs[i] > c.cd_step_epochs[i - 1]),
                "cd_step_epochs", "must be ascending epochs >= 1 (1-based, as the log counts)");
  c.keep_prob = table.get_in_range("keep_prob", c.keep_prob, "(0, 1]");
  c.ranking = table.get_one_of("ranking", c.ranking, kRbmRankingNames);
  c.score_chunk = table.get_positive("score_chunk", c.score_chunk);
  return c;
}

int64_t RbmConfig::cd_steps_at(int64_t epoch) const {
  int64_t steps = cd_steps;
  for (int64_t from : cd_step_epochs) steps += epoch + 1 >= from;
  return steps;
}

RbmModuleImpl::RbmModuleImpl(const RbmConfig& config, int32_t item_count) {
  const int64_t units = config.visible == RbmUnits::Softmax ? item_count * config.rating_count() : item_count;
  weight = register_parameter("weight", torch::randn({units, config.hidden}) * config.init_std);
  visible_bias = register_parameter("visible_bias", torch::zeros({units}));
  hidden_bias = register_parameter("hidden_bias", torch::zeros({config.hidden}));
}

Rbm::Rbm(const RbmConfig& config, const ModelContext& context) : config_(config), context_(context) {
  if (context.user_count <= 0 || context.item_count <= 0)
    fail("model 'rbm': needs users and items, got {} users and {} items", context.user_count, context.item_count);
  module_ = RbmModule(config, context.item_count);
  module_->to(context.device);
  rating_values_ = torch::arange(config.min_rating, config.max_rating + 1, torch::kFloat32).to(context.device);
}

void Rbm::check_level(float rating, const char* where) const {
  if (rating != std::round(rating) || rating < config_.min_rating || rating > config_.max_rating)
    fail("model 'rbm': {} holds rating {}, but its units take integer ratings in [min_rating, max_rating] = [{}, {}] "
         "(set the keys 'min_rating' and 'max_rating')",
         where, rating, config_.min_rating, config_.max_rating);
}

void Rbm::fit(const data::Split& split) {
  if (!split.train.has_ratings() || split.train.ratings.empty())
    fail("model 'rbm': its visible units are ratings, but the training data has none (use data with ratings, e.g. "
         "format = \"udata\")");
  for (float rating : split.train.ratings) check_level(rating, "the training data");
  for (int32_t item : split.train.items)
    if (item < 0 || item >= context_.item_count) fail("model 'rbm': training item {} outside the {} items", item, context_.item_count);
  train_ = data::Sequences{};
  train_.offsets = split.train.offsets;
  train_.items = split.train.items;
  train_.ratings = split.train.ratings;
  fitted_ = true;
}

data::SamplerOptions Rbm::sampler_options(const data::SamplerOptions& defaults) const {
  data::SamplerOptions options = defaults;
  options.all_items = true;
  options.ratings = true;
  options.negatives = false;
  return options;
}

RbmVisible Rbm::visible_from_batch(const TensorBatch& batch) const {
  if (!batch.rating.defined()) fail("model 'rbm': the batch has no ratings (the sampler must provide them)");
  const torch::Tensor mask = batch.target > 0;
  RbmVisible visible;
  visible.row_count = batch.target.size(0);
  visible.rows = mask.nonzero().select(1, 0).contiguous();  // row-major order: grouped by row
  visible.items = batch.target.masked_select(mask) - 1;
  const torch::Tensor ratings = batch.rating.masked_select(mask);
  const torch::Tensor rounded = ratings.round();
  visible.levels = rounded.to(torch::kLong) - config_.min_rating;
  if (visible.levels.numel() > 0 &&
      (ratings.ne(rounded).any().item<bool>() || visible.levels.min().item<int64_t>() < 0 ||
       visible.levels.max().item<int64_t>() >= config_.rating_count())) {
    const torch::Tensor bad = ratings.masked_select(ratings.ne(rounded) | (visible.levels < 0) |
                                                    (visible.levels >= config_.rating_count()));
    check_level(bad[0].item<float>(), "the batch");
  }
  return visible;
}

RbmVisible Rbm::visible_from_histories(const data::Sequences& histories, const int32_t* users, int32_t count) const {
  std::vector<int64_t> rows, items, levels;
  const bool rated = histories.has_ratings();
  for (int32_t r = 0; r < count; ++r) {
    const int32_t u = users[r];
    if (u < 0 || u >= histories.user_count() || histories.length(u) == 0) continue;
    if (!rated && !fitted_)
      fail("model 'rbm': the histories have no ratings and no training ratings were kept (call fit() first); an "
           "RBM conditions on rated items only");
    const bool trained = u < train_.user_count();
    for (int64_t p = histories.offsets[u]; p < histories.offsets[u + 1]; ++p) {
      const int32_t item = histories.items[p];
      float rating = 0.0f;
      if (rated) {
        rating = histories.ratings[p];
      } else if (trained) {
        // No rating with the event: the user's training rating of the item, if any; else the item stays unrated.
        const int32_t* found = std::find(train_.begin(u), train_.end(u), item);
        if (found != train_.end(u)) rating = train_.ratings[found - train_.items.data()];
      }
      if (!rated && rating == 0.0f) continue;
      check_level(rating, "a history");
      rows.push_back(r);
      items.push_back(item);
      levels.push_back(static_cast<int64_t>(rating) - config_.min_rating);
    }
  }
  const torch::Device device = module_->weight.device();
  auto to_tensor = [&](const std::vector<int64_t>& values) {
    return torch::tensor(values, torch::kLong).to(device);
  };
  RbmVisible visible;
  visible.row_count = count;
  visible.rows = rows.empty() ? torch::zeros({0}, torch::TensorOptions().dtype(torch::kLong).device(device)) : to_tensor(rows);
  visible.items = rows.empty() ? visible.rows.clone() : to_tensor(items);
  visible.levels = rows.empty() ? visible.rows.clone() : to_tensor(levels);
  return visible;
}

torch::Tensor Rbm::hidden_input(const RbmVisible& visible) {
  RbmModuleImpl& m = *module_;
  // Only the rated items' units are on, so the sum over units is a gather and a scatter-add, not a dense
  // [rows, items·R] product: ~100 of 8410 units are on for a MovieLens user.
  torch::Tensor gathered;
  if (config_.visible == RbmUnits::Softmax) {
    gathered = m.weight.index_select(0, visible.items * config_.rating_count() + visible.levels);
  } else {
    gathered = m.weight.index_select(0, visible.items) * rating_values_.index_select(0, visible.levels).unsqueeze(1);
  }
  return torch::zeros({visible.row_count, config_.hidden}, m.weight.options()).index_add(0, visible.rows, gathered) +
         m.hidden_bias;
}

torch::Tensor Rbm::free_energy(const RbmVisible& visible) {
  RbmModuleImpl& m = *module_;
  torch::Tensor bias_terms;
  if (config_.visible == RbmUnits::Softmax) {
    bias_terms = m.visible_bias.index_select(0, visible.items * config_.rating_count() + visible.levels);
  } else {
    bias_terms = m.visible_bias.index_select(0, visible.items) * rating_values_.index_select(0, visible.levels);
  }
  const torch::Tensor visible_term =
      torch::zeros({visible.row_count}, m.visible_bias.options()).index_add(0, visible.rows, bias_terms);
  return -visible_term - F::softplus(hidden_input(visible)).sum(1);
}

torch::Tensor Rbm::hidden_probabilities(const RbmVisible& visible) { return torch::sigmoid(hidden_input(visible)); }

torch::Tensor Rbm::visible_logits(const torch::Tensor& hidden) {
  RbmModuleImpl& m = *module_;
  const int64_t rows = hidden.size(0), items = context_.item_count, values = config_.rating_count();
  const torch::Tensor activation = torch::addmm(m.visible_bias, hidden.to(m.weight.scalar_type()), m.weight.t());
  if (config_.visible == RbmUnits::Softmax) return activation.view({rows, items, values});
  // MS's multinomial_distribution: p(v_i = r) ∝ exp(r · φ_i).
  return activation.unsqueeze(2) * rating_values_.to(activation.scalar_type());
}

torch::Tensor Rbm::visible_probabilities(const torch::Tensor& hidden) {
  return torch::softmax(visible_logits(hidden), 2);
}

RbmVisible Rbm::gibbs_chain(const RbmVisible& data, int64_t steps, at::Generator& generator) {
  const torch::Device device = module_->weight.device();
  const int64_t items = context_.item_count, values = config_.rating_count();
  const int64_t units = data.levels.numel();
  const torch::Tensor positions = data.rows * items + data.items;
  auto uniform = [&](std::vector<int64_t> shape) { return torch::rand(shape, generator, torch::kFloat32).to(device); };
  RbmVisible current = data;
  for (int64_t step = 0; step < steps; ++step) {
    const torch::Tensor probabilities = hidden_probabilities(current);
    torch::Tensor on = uniform({current.row_count, config_.hidden}) < probabilities / config_.keep_prob;
    if (config_.keep_prob < 1.0) on &= uniform({current.row_count, config_.hidden}) < config_.keep_prob;
    const torch::Tensor hidden = on.to(probabilities.scalar_type());
    // Only the rated items are resampled: unrated items are not units of this user (the paper; MS keeps them 0).
    const torch::Tensor logits = visible_logits(hidden).reshape({-1, values}).index_select(0, positions);
    const torch::Tensor cumulative = torch::softmax(logits, 1).cumsum(1);
    current.levels = (cumulative < uniform({units}).unsqueeze(1).to(cumulative.scalar_type()))
                         .sum(1)
                         .clamp_max(values - 1);
  }
  return current;
}

// CD-k (Hinton 2002; the paper's Eq. 5 update) moves the parameters by ⟨v h⟩_data − ⟨v h⟩_model. Because
// ∂F(v)/∂W_vj = −v p(h_j = 1 | v), that update is minus the gradient of F(v_data) − F(v_k) with v_k held fixed
// (detached): so the loss is that difference, the shared trainer's Adam does CD-k, and checkpoints, curves and
// resumption need nothing special. This is what MS's rbm.py minimises too (free_energy(v) − free_energy(v_k)).
// Its value is not a likelihood and may be negative; the logged "recon" part shows progress instead.
LossParts Rbm::loss(const TensorBatch& batch) {
  const RbmVisible data = visible_from_batch(batch);
  // One generator per (seed, epoch, batch): a resumed run draws the same chains.
  const uint64_t seed = context_.seed;
  std::seed_seq sequence{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                         static_cast<uint32_t>(batch.epoch), static_cast<uint32_t>(batch.batch_index)};
  std::array<uint32_t, 2> words{};
  sequence.generate(words.begin(), words.end());
  at::Generator generator = at::detail::createCPUGenerator((static_cast<uint64_t>(words[0]) << 32) | words[1]);
  RbmVisible sample;
  torch::Tensor recon;
  {
    torch::NoGradGuard no_grad;
    sample = gibbs_chain(data, config_.cd_steps_at(batch.epoch), generator);
    const int64_t values = config_.rating_count();
    const torch::Tensor logits = visible_logits(hidden_probabilities(data))
                                     .reshape({-1, values})
                                     .index_select(0, data.rows * context_.item_count + data.items);
    const torch::Tensor expected = (torch::softmax(logits, 1) * rating_values_).sum(1);
    recon = (expected - rating_values_.index_select(0, data.levels)).pow(2).mean().sqrt();
  }
  const torch::Tensor cd = (free_energy(data) - free_energy(sample)).mean();
  return LossParts{cd, {{"cd", cd.detach()}, {"recon", recon}}};
}

void Rbm::item_scores(const data::Sequences& histories, const int32_t* users, int32_t count, bool ranking,
                      float* out) {
  torch::NoGradGuard no_grad;
  RbmModuleImpl& m = *module_;
  const int64_t items = context_.item_count, values = config_.rating_count();
  const bool expected = !ranking || config_.ranking == RbmRanking::ExpectedRating;
  const torch::Tensor rating_values = rating_values_.to(m.weight.scalar_type());
  const torch::TensorOptions options = m.weight.options();
  if (!probabilities_.defined() || probabilities_.scalar_type() != m.weight.scalar_type() ||
      probabilities_.device() != m.weight.device()) {
    for (torch::Tensor* buffer : {&probabilities_, &activation_, &scores_, &top_probability_})
      *buffer = torch::empty({0}, options);
    top_level_ = torch::empty({0}, options.dtype(torch::kLong));
  }
  // The dense [users, items, R] block and its reductions go into buffers kept across chunks and calls; they
  // reallocate only when a chunk is larger than any before.
  for (int32_t begin = 0; begin < count; begin += static_cast<int32_t>(config_.score_chunk)) {
    const int32_t rows = std::min<int32_t>(static_cast<int32_t>(config_.score_chunk), count - begin);
    const torch::Tensor hidden = hidden_probabilities(visible_from_histories(histories, users + begin, rows));
    // Explicit resize_ (storage kept when shrinking): an *_out op warns when it has to resize a non-empty output.
    probabilities_.resize_({rows, items * values});
    scores_.resize_({rows * items});
    if (config_.visible == RbmUnits::Softmax) {
      torch::addmm_out(probabilities_, m.visible_bias, hidden, m.weight.t());
    } else {
      activation_.resize_({rows, items});
      probabilities_.resize_({rows, items, values});
      torch::addmm_out(activation_, m.visible_bias, hidden, m.weight.t());
      torch::mul_out(probabilities_, activation_.unsqueeze(2), rating_values);
    }
    const torch::Tensor probabilities = probabilities_.view({rows, items, values});
    probabilities.sub_(std::get<0>(probabilities.max(2, true))).exp_();
    probabilities.div_(probabilities.sum(2, true));
    if (expected) {
      torch::mv_out(scores_, probabilities.view({rows * items, values}), rating_values);
    } else {
      // MS's recommend_k_items: score = rating × its probability, for the most probable rating here.
      top_probability_.resize_({rows, items});
      top_level_.resize_({rows, items});
      torch::max_out(top_probability_, top_level_, probabilities, 2);
      torch::mul_out(scores_, rating_values.index_select(0, top_level_.view({-1})), top_probability_.view({-1}));
    }
    torch::from_blob(out + static_cast<int64_t>(begin) * items, {rows * items}, torch::kFloat32).copy_(scores_);
  }
}

void Rbm::score_block(const data::Sequences& histories, const int32_t* users, int32_t count, float* out) {
  item_scores(histories, users, count, /*ranking=*/true, out);
}

void Rbm::predict_ratings(const int32_t* users, const int32_t* items, int64_t count, float* out) {
  if (!fitted_) fail("model 'rbm': predict_ratings needs the training ratings; call fit() first");
  std::vector<int32_t> row_of(context_.user_count, -1);
  std::vector<int32_t> distinct;
  for (int64_t k = 0; k < count; ++k) {
    if (users[k] < 0 || users[k] >= context_.user_count)
      fail("model 'rbm': user id {} out of range [0, {})", users[k], context_.user_count);
    if (items[k] < 0 || items[k] >= context_.item_count)
      fail("model 'rbm': item id {} out of range [0, {})", items[k], context_.item_count);
    if (row_of[users[k]] < 0) {
      row_of[users[k]] = static_cast<int32_t>(distinct.size());
      distinct.push_back(users[k]);
    }
  }
  std::vector<float> expected(distinct.size() * static_cast<size_t>(context_.item_count));
  item_scores(train_, distinct.data(), static_cast<int32_t>(distinct.size()), /*ranking=*/false, expected.data());
  for (int64_t k = 0; k < count; ++k)
    out[k] = expected[static_cast<size_t>(row_of[users[k]]) * context_.item_count + items[k]];
}

EMBREC_REGISTER_MODEL("rbm", Rbm);

}  // namespace embrec::models
