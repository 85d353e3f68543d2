// NCF: the GMF / MLP / NeuMF parameters, BCE with negatives drawn per (epoch, batch), chunked full scoring, and
// NeuMF's initialisation from pre-trained GMF and MLP runs.
//
// Settings follow the paper and Microsoft Recommenders' ncf_singlenode.py (read, not copied): embeddings N(0, 0.01²)
// (MS: truncated normal, same std), Glorot-uniform tower weights with zero biases and a bias-free output layer
// (tf.contrib fully_connected as MS calls it), layers[0] / 2 as each MLP embedding's size, mean log loss over
// positives and negatives (tf.losses.log_loss), negatives from the items the user has no training interaction with.
#include "embrec/models/ncf.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "embrec/util/error.h"
#include "embrec/util/seed.h"
#include "embrec/util/files.h"

namespace embrec::models {

namespace F = torch::nn::functional;
namespace fs = std::filesystem;

namespace {

// score_block runs about this many (user, item) pairs through the tower at once: the widest workspace of the paper's
// tower (32 floats a pair) is then 2 MiB, allocated once and reused, not a fresh [users x items x width] block.
// Not tuned: ML-100K's test stage (943 users x 1,682 items, layers [64, 32, 16, 8], 1 thread) took 0.17-0.44 s in
// all (ranking and metrics included), depending on the load of the shared machine.
constexpr int64_t kScoreChunkPairs = int64_t{1} << 14;
}  // namespace

NcfConfig NcfConfig::from(ConfigTable& table) {
  NcfConfig c;
  c.variant = table.get_one_of("variant", c.variant, kNcfVariantNames);
  // A size that the variant would ignore is a mistake in the config, not a default.
  c.factors = table.only(c.has_gmf(), "to variant = \"gmf\" or \"neumf\"").get_positive("factors", c.factors);
  c.layers = table.only(c.has_mlp(), "to variant = \"mlp\" or \"neumf\"").get("layers", c.layers);
  if (c.has_mlp()) {
    table.check(c.layers.size() >= 2, "layers",
                fmt::format("needs the embedding size and at least one ReLU layer (e.g. [64, 32, 16, 8]), got {} "
                            "entries", c.layers.size()));
    for (int64_t width : c.layers)
      table.check(width > 0, "layers", fmt::format("entries must be positive, got {}", width));
    table.check(c.layers[0] % 2 == 0, "layers",
                fmt::format("first entry is |[p_u; q_i]| and must be even, got {}", c.layers[0]));
  }
  c.negatives = table.get_positive("negatives", c.negatives);
  c.init_std = table.get_positive("init_std", c.init_std);
  // Pre-training is on when either folder is named; then both are needed, and only NeuMF takes them.
  const bool pretrain = table.has("pretrain_gmf") || table.has("pretrain_mlp");
  auto neumf_only = table.only(pretrain && c.variant == NcfVariant::NeuMf, "to variant = \"neumf\"");
  c.pretrain_gmf = neumf_only.get_path("pretrain_gmf", c.pretrain_gmf);
  c.pretrain_mlp = neumf_only.get_path("pretrain_mlp", c.pretrain_mlp);
  table.check(!pretrain || !c.pretrain_gmf.empty(), "pretrain_gmf",
              "is needed with pretrain_mlp (a variant = \"gmf\" run folder)");
  table.check(!pretrain || !c.pretrain_mlp.empty(), "pretrain_mlp",
              "is needed with pretrain_gmf (a variant = \"mlp\" run folder)");
  c.pretrain_alpha = table.only(pretrain, "with pretrain_gmf and pretrain_mlp")
                         .get_in_range("pretrain_alpha", c.pretrain_alpha, "[0, 1]");
  return c;
}

NcfModuleImpl::NcfModuleImpl(const NcfConfig& config, int32_t user_count, int32_t item_count) {
  if (config.has_gmf()) {
    gmf_user = register_parameter("gmf_user", torch::randn({user_count, config.factors}) * config.init_std);
    gmf_item = register_parameter("gmf_item", torch::randn({item_count, config.factors}) * config.init_std);
    gmf_size = config.factors;
  }
  int64_t mlp_size = 0;
  if (config.has_mlp()) {
    const int64_t half = config.layers[0] / 2;
    mlp_user = register_parameter("mlp_user", torch::randn({user_count, half}) * config.init_std);
    mlp_item = register_parameter("mlp_item", torch::randn({item_count, half}) * config.init_std);
    for (size_t k = 1; k < config.layers.size(); ++k) {
      torch::nn::Linear layer(config.layers[k - 1], config.layers[k]);
      torch::nn::init::xavier_uniform_(layer->weight);
      torch::nn::init::zeros_(layer->bias);
      tower.push_back(register_module("tower" + std::to_string(k - 1), layer));
    }
    mlp_size = config.layers.back();
  }
  // Glorot uniform for a [size -> 1] layer.
  const int64_t size = gmf_size + mlp_size;
  const double bound = std::sqrt(6.0 / static_cast<double>(size + 1));
  output = register_parameter("output", torch::empty({size}).uniform_(-bound, bound));
}

torch::Tensor NcfModuleImpl::forward(const torch::Tensor& users, const torch::Tensor& items) {
  std::vector<torch::Tensor> parts;
  if (gmf_size > 0) parts.push_back(gmf_user.index_select(0, users) * gmf_item.index_select(0, items));
  if (!tower.empty()) {
    torch::Tensor hidden = torch::cat({mlp_user.index_select(0, users), mlp_item.index_select(0, items)}, 1);
    for (auto& layer : tower) hidden = torch::relu(layer->forward(hidden));
    parts.push_back(hidden);
  }
  const torch::Tensor vector = parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
  return torch::mv(vector, output);
}

Ncf::Ncf(const NcfConfig& config, const ModelContext& context) : config_(config), context_(context) {
  if (context.user_count <= 0 || context.item_count <= 0)
    fail("model 'ncf': needs users and items, got {} users and {} items", context.user_count, context.item_count);
  module_ = NcfModule(config, context.user_count, context.item_count);
  module_->to(context.device);
}

void Ncf::fit(const data::Split& split) {
  const data::Sequences& train = split.train;
  train_offsets_.assign(1, 0);
  train_items_.clear();
  train_items_.reserve(train.items.size());
  for (int32_t u = 0; u < train.user_count(); ++u) {
    const size_t first = train_items_.size();
    for (const int32_t* it = train.begin(u); it != train.end(u); ++it) {
      if (*it < 0 || *it >= context_.item_count)
        fail("model 'ncf': item {} outside the {} items", *it, context_.item_count);
      train_items_.push_back(*it);
    }
    std::sort(train_items_.begin() + first, train_items_.end());
    train_items_.erase(std::unique(train_items_.begin() + first, train_items_.end()), train_items_.end());
    train_offsets_.push_back(static_cast<int64_t>(train_items_.size()));
  }
}

data::SamplerOptions Ncf::sampler_options(const data::SamplerOptions& defaults) const {
  data::SamplerOptions options = defaults;
  options.all_items = true;
  options.negatives = false;  // drawn in loss(): `negatives` per positive, which the sampler's one cannot give
  options.ratings = false;
  return options;
}

void Ncf::begin_epoch(int64_t epoch, const EpochWorld&) {
  // Here rather than at construction: a run folder's config.toml must reload (embrec eval, serve) without the
  // pre-training folders, whose weights its best.pt supersedes anyway. A run resumed after epoch 0 keeps its own.
  if (epoch == 0 && !config_.pretrain_gmf.empty()) load_pretrained();
}

torch::Tensor Ncf::sample_negatives(const torch::Tensor& users, int64_t epoch, int64_t batch_index) const {
  if (train_offsets_.size() < 2) fail("model 'ncf': negatives asked for before fit()");
  const torch::Tensor ids = users.to(torch::kCPU, torch::kLong).contiguous();
  const int64_t count = ids.numel();
  const int64_t* user = ids.data_ptr<int64_t>();
  const int64_t user_count = static_cast<int64_t>(train_offsets_.size()) - 1;
  torch::Tensor negatives = torch::empty({count, config_.negatives}, torch::kLong);
  int64_t* out = negatives.data_ptr<int64_t>();
  std::mt19937_64 random(mix_seed(context_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(batch_index)));
  std::uniform_int_distribution<int32_t> any_item(0, context_.item_count - 1);
  for (int64_t k = 0; k < count; ++k) {
    const int64_t u = user[k];
    if (u < 0 || u >= user_count)
      fail("model 'ncf': user {} is not among the {} users it was fitted on", u, user_count);
    const int32_t* seen_begin = train_items_.data() + train_offsets_[u];
    const int32_t* seen_end = train_items_.data() + train_offsets_[u + 1];
    if (seen_end - seen_begin >= context_.item_count)
      fail("model 'ncf': user {} has a training interaction with every one of the {} items: no negative to draw", u,
           context_.item_count);
    // Rejection against the sorted training items: a user who has seen a share s of the catalogue costs
    // 1 / (1 - s) draws per negative (ML-100K's heaviest user, 737 of 1,682 training items: < 2).
    for (int64_t j = 0; j < config_.negatives; ++j) {
      int32_t candidate = any_item(random);
      while (std::binary_search(seen_begin, seen_end, candidate)) candidate = any_item(random);
      out[k * config_.negatives + j] = candidate;
    }
  }
  return negatives;
}

LossParts Ncf::loss(const TensorBatch& batch) {
  const torch::Tensor mask = batch.target > 0;
  const torch::Tensor users = batch.users.unsqueeze(1).expand_as(batch.target).masked_select(mask);
  const torch::Tensor items = batch.target.masked_select(mask) - 1;
  const int64_t positives = users.numel();
  if (positives == 0) fail("model 'ncf': a batch without targets");
  const torch::Tensor negatives = sample_negatives(users, batch.epoch, batch.batch_index).to(users.device());
  const torch::Tensor all_users = torch::cat({users, users.unsqueeze(1).expand_as(negatives).reshape({-1})});
  const torch::Tensor all_items = torch::cat({items, negatives.reshape({-1})});
  const torch::Tensor logits = module_->forward(all_users, all_items);
  const torch::Tensor positive = logits.narrow(0, 0, positives);
  const torch::Tensor negative = logits.narrow(0, positives, logits.size(0) - positives);
  // log σ(x) and log σ(-x) in their stable forms; the mean over every labelled pair, as MS's log loss.
  const torch::Tensor bce =
      -(F::logsigmoid(positive).sum() + F::logsigmoid(-negative).sum()) / static_cast<double>(logits.size(0));
  LossParts out;
  out.total = bce;
  out.parts.emplace_back("bce", bce.detach());
  return out;
}

torch::Tensor Ncf::user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) {
  if (config_.variant != NcfVariant::Gmf) return Model::user_vectors(histories, users, count);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids =
      torch::from_blob(const_cast<int32_t*>(users), {count}, torch::kInt32).to(torch::kLong).to(context_.device);
  const torch::Tensor vectors = module_->gmf_user.index_select(0, ids) * module_->output;
  return vectors.to(torch::kCPU, torch::kFloat32).contiguous();
}

torch::Tensor Ncf::item_vectors() {
  if (config_.variant != NcfVariant::Gmf) return Model::item_vectors();
  torch::NoGradGuard no_grad;
  return module_->gmf_item.to(torch::kCPU, torch::kFloat32).contiguous();
}

// hᵀ φ(u, i) for every item, without materialising [p_u; q_i] per pair: the first tower layer splits as
// W₁[p; q] + b₁ = W₁ᵤ p + (W₁ᵢ q + b₁), so the item half (items x width) is computed once per block and each
// pair's first activation is one broadcast add into a reused workspace; later layers are addmm_out into reused
// workspaces, the MLP score an mv_out straight into `out` (on CPU), the GMF part one addmm_ over the block.
void Ncf::score_block(const data::Sequences&, const int32_t* users, int32_t count, float* out) {
  torch::NoGradGuard no_grad;
  for (int32_t row = 0; row < count; ++row)
    if (users[row] < 0 || users[row] >= context_.user_count)
      fail("model 'ncf': user {} outside the {} users", users[row], context_.user_count);
  NcfModuleImpl& m = *module_;
  const int64_t items = context_.item_count;
  const torch::TensorOptions options = m.output.options();
  const bool direct = options.device().is_cpu() && options.dtype() == torch::kFloat32;
  const torch::Tensor ids =
      torch::from_blob(const_cast<int32_t*>(users), {count}, torch::kInt32).to(torch::kLong).to(options.device());
  const torch::Tensor scores = torch::from_blob(out, {count, items}, torch::kFloat32);
  // The GMF part as (h_gmf ⊙ p_u) · q_i, an inner product.
  torch::Tensor gmf_users;
  if (m.gmf_size > 0) gmf_users = m.gmf_user.index_select(0, ids) * m.output.narrow(0, 0, m.gmf_size);
  if (m.tower.empty()) {
    const torch::Tensor block = torch::mm(gmf_users, m.gmf_item.t());
    scores.copy_(block);
    return;
  }
  const int64_t half = m.mlp_user.size(1);
  const torch::Tensor& first_weight = m.tower[0]->weight;  // [width, 2 half]
  const torch::Tensor user_half = torch::mm(m.mlp_user.index_select(0, ids), first_weight.narrow(1, 0, half).t());
  const torch::Tensor item_half =
      torch::addmm(m.tower[0]->bias, m.mlp_item, first_weight.narrow(1, half, half).t());  // [items, width]
  const torch::Tensor mlp_output = m.output.narrow(0, m.gmf_size, m.output.size(0) - m.gmf_size);

  const int64_t chunk_users = std::max<int64_t>(1, kScoreChunkPairs / std::max<int64_t>(1, items));
  const int64_t chunk_pairs = chunk_users * items;
  workspace_.resize(m.tower.size() + 1);
  for (size_t k = 0; k <= m.tower.size(); ++k) {
    const int64_t width = k < m.tower.size() ? m.tower[k]->weight.size(0) : 1;  // the last: device scores
    torch::Tensor& buffer = workspace_[k];
    if (k == m.tower.size() && direct) continue;
    if (!buffer.defined() || buffer.numel() < chunk_pairs * width || buffer.device() != options.device() ||
        buffer.scalar_type() != options.dtype().toScalarType())
      buffer = torch::empty({chunk_pairs * width}, options);
  }
  for (int64_t begin = 0; begin < count; begin += chunk_users) {
    const int64_t block_users = std::min<int64_t>(chunk_users, count - begin);
    const int64_t pairs = block_users * items;
    const int64_t width0 = m.tower[0]->weight.size(0);
    torch::Tensor first = workspace_[0].narrow(0, 0, pairs * width0).view({block_users, items, width0});
    torch::add_out(first, item_half.unsqueeze(0), user_half.narrow(0, begin, block_users).unsqueeze(1));
    first.relu_();
    torch::Tensor hidden = first.view({pairs, width0});
    for (size_t k = 1; k < m.tower.size(); ++k) {
      const int64_t width = m.tower[k]->weight.size(0);
      torch::Tensor next = workspace_[k].narrow(0, 0, pairs * width).view({pairs, width});
      torch::addmm_out(next, m.tower[k]->bias, hidden, m.tower[k]->weight.t());
      next.relu_();
      hidden = next;
    }
    torch::Tensor target = direct ? scores.narrow(0, begin, block_users)
                                  : workspace_.back().narrow(0, 0, pairs).view({block_users, items});
    torch::Tensor flat = target.view({pairs});
    torch::mv_out(flat, hidden, mlp_output);
    if (m.gmf_size > 0) target.addmm_(gmf_users.narrow(0, begin, block_users), m.gmf_item.t());
    if (!direct) scores.narrow(0, begin, block_users).copy_(target);
  }
}

NcfModule Ncf::load_run_module(const std::string& folder, NcfVariant variant) const {
  const std::string key = "pretrain_" + name_of(kNcfVariantNames, variant);
  if (!fs::is_directory(folder)) fail("model 'ncf': {} = '{}': no such run folder", key, folder);
  const std::string config_path = folder + "/config.toml";
  const std::string weights_path = folder + "/best.pt";
  if (!file_exists(config_path)) fail("model 'ncf': {} = '{}' is not a run folder (no config.toml)", key, folder);
  if (!file_exists(weights_path)) fail("model 'ncf': {} = '{}' holds no trained model (no best.pt)", key, folder);
  ConfigTable root = ConfigTable::parse_file(config_path);
  ConfigTable& table = root.sub("model");
  const std::string name = table.get("name", std::string());
  if (name != "ncf") fail("model 'ncf': {}: {} needs an ncf run, this one is model '{}'", config_path, key, name);
  const NcfConfig source = NcfConfig::from(table);
  if (source.variant != variant)
    fail("model 'ncf': {}: {} needs a variant = \"{}\" run, this one is variant = \"{}\"", config_path, key,
         name_of(kNcfVariantNames, variant), name_of(kNcfVariantNames, source.variant));
  if (variant == NcfVariant::Gmf && source.factors != config_.factors)
    fail("model 'ncf': {}: {} has factors = {}, this model factors = {}", config_path, key, source.factors,
         config_.factors);
  if (variant == NcfVariant::Mlp && source.layers != config_.layers)
    fail("model 'ncf': {}: {} has layers = [{}], this model layers = [{}]", config_path, key,
         fmt::join(source.layers, ", "), fmt::join(config_.layers, ", "));
  NcfModule loaded(source, context_.user_count, context_.item_count);
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& parameter : loaded->named_parameters())
    expected.emplace_back(parameter.key(), parameter.value().sizes().vec());
  try {
    const std::string bytes = read_checkpoint_archive(weights_path);
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    loaded->load(archive);
  } catch (const c10::Error& error) {
    fail("model 'ncf': {}: cannot load: {}", weights_path, error.what_without_backtrace());
  }
  // Loading replaces each tensor whatever its shape: a run on other data shows here.
  const auto parameters = loaded->named_parameters();
  for (const auto& [parameter_name, sizes] : expected) {
    const std::vector<int64_t> found = parameters[parameter_name].sizes().vec();
    if (found != sizes)
      fail("model 'ncf': {}: '{}' is [{}], this model needs [{}] ({} users, {} items): was it trained on other data?",
           weights_path, parameter_name, fmt::join(found, ", "), fmt::join(sizes, ", "), context_.user_count,
           context_.item_count);
  }
  return loaded;
}

void Ncf::load_pretrained() {
  if (config_.variant != NcfVariant::NeuMf || config_.pretrain_gmf.empty() || config_.pretrain_mlp.empty())
    fail("model 'ncf': pre-training needs variant = \"neumf\" with pretrain_gmf and pretrain_mlp");
  NcfModule gmf = load_run_module(config_.pretrain_gmf, NcfVariant::Gmf);
  NcfModule mlp = load_run_module(config_.pretrain_mlp, NcfVariant::Mlp);
  torch::NoGradGuard no_grad;
  NcfModuleImpl& m = *module_;
  m.gmf_user.copy_(gmf->gmf_user);
  m.gmf_item.copy_(gmf->gmf_item);
  m.mlp_user.copy_(mlp->mlp_user);
  m.mlp_item.copy_(mlp->mlp_item);
  for (size_t k = 0; k < m.tower.size(); ++k) {
    m.tower[k]->weight.copy_(mlp->tower[k]->weight);
    m.tower[k]->bias.copy_(mlp->tower[k]->bias);
  }
  const double alpha = config_.pretrain_alpha;
  m.output.narrow(0, 0, m.gmf_size).copy_(gmf->output * alpha);
  m.output.narrow(0, m.gmf_size, m.output.size(0) - m.gmf_size).copy_(mlp->output * (1.0 - alpha));
}

EMBREC_REGISTER_MODEL("ncf", Ncf);

}  // namespace embrec::models
