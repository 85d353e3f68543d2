// Caser: the convolutional encoder, training windows, the BCE loss with sampled negatives, user and item vectors.
#include "embrec/models/caser.h"

#include <cmath>

namespace embrec::models {

CaserConfig CaserConfig::from(ConfigTable& table) {
  CaserConfig c;
  c.dim = table.get_positive("dim", c.dim);
  c.window = table.get_positive("window", c.window);
  c.targets = table.get_positive("targets", c.targets);
  c.horizontal_filters = table.get_positive("horizontal_filters", c.horizontal_filters);
  c.vertical_filters = table.get_positive("vertical_filters", c.vertical_filters);
  c.dropout = table.get_in_range("dropout", c.dropout, "[0, 1)");
  c.negatives = table.get_positive("negatives", c.negatives);
  c.user_embedding = table.get("user_embedding", c.user_embedding);
  c.max_length = table.get_positive("max_length", c.max_length);
  c.encode_batch = table.get_positive("encode_batch", c.encode_batch);
  return c;
}

CaserNetImpl::CaserNetImpl(const CaserConfig& config_in, int32_t item_count, int32_t user_count) : config(config_in) {
  const int64_t d = config.dim, L = config.window;
  const int64_t width = d * (config.user_embedding ? 2 : 1);
  item_embedding =
      register_module("item_embedding", torch::nn::Embedding(torch::nn::EmbeddingOptions(item_count + 1, d).padding_idx(0)));
  if (config.user_embedding)
    user_embedding = register_module("user_embedding", torch::nn::Embedding(std::max(1, user_count), d));
  vertical = register_module("vertical", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, config.vertical_filters, {L, 1})));
  for (int64_t h = 1; h <= L; ++h)
    horizontal.push_back(register_module("horizontal" + std::to_string(h),
                                         torch::nn::Conv2d(torch::nn::Conv2dOptions(1, config.horizontal_filters, {h, d}))));
  fully_connected =
      register_module("fully_connected", torch::nn::Linear(config.vertical_filters * d + config.horizontal_filters * L, d));
  output_weight = register_module("output_weight", torch::nn::Embedding(item_count + 1, width));
  output_bias = register_module("output_bias", torch::nn::Embedding(item_count + 1, 1));
  // The reference implementation's initialisation: embeddings ~ N(0, 1/dim), output bias 0.
  torch::NoGradGuard no_grad;
  item_embedding->weight.normal_(0.0, 1.0 / static_cast<double>(d));
  item_embedding->weight[0].zero_();
  if (user_embedding) user_embedding->weight.normal_(0.0, 1.0 / static_cast<double>(d));
  output_weight->weight.normal_(0.0, 1.0 / static_cast<double>(width));
  output_bias->weight.zero_();
}

torch::Tensor CaserNetImpl::encode(const torch::Tensor& windows) {
  // Padding is the zero vector by construction (not only by its initial value), so the padding row has no say.
  auto image = (item_embedding(windows) * windows.gt(0).unsqueeze(2)).unsqueeze(1);  // [W, 1, L, d]
  std::vector<torch::Tensor> parts;
  parts.push_back(vertical(image).reshape({windows.size(0), -1}));  // [W, n_v * d]
  for (auto& conv : horizontal) {
    auto out = torch::relu(conv(image).squeeze(3));                   // [W, n_h, L - h + 1]
    parts.push_back(std::get<0>(out.max(2)));                       // max over time: [W, n_h]
  }
  auto features = torch::dropout(torch::cat(parts, 1), config.dropout, is_training());
  return torch::relu(fully_connected(features));
}

torch::Tensor CaserNetImpl::user_side(const torch::Tensor& z, const torch::Tensor& users) {
  std::vector<torch::Tensor> parts = {z};
  if (user_embedding) parts.push_back(users.defined() ? user_embedding(users) : torch::zeros_like(z));
  parts.push_back(torch::ones({z.size(0), 1}, z.options()));
  return torch::cat(parts, 1);
}

torch::Tensor CaserNetImpl::item_side(const torch::Tensor& items) {
  return torch::cat({output_weight(items), output_bias(items)}, -1);
}

Caser::Caser(const CaserConfig& config, const ModelContext& context)
    : config_(config), context_(context), net_(CaserNet(config, context.item_count, context.user_count)) {
  net_->to(context.device);
}

data::SamplerOptions Caser::sampler_options(const data::SamplerOptions& defaults) const {
  data::SamplerOptions options = defaults;
  options.max_length = static_cast<int32_t>(config_.max_length);
  return options;
}

Caser::Windows Caser::windows(const TensorBatch& batch) const {
  const int64_t rows = batch.input.size(0), length = batch.input.size(1), L = config_.window, T = config_.targets;
  auto sequence = torch::cat({batch.input, batch.target.narrow(1, length - 1, 1)}, 1);  // [B, S], right-aligned
  const int64_t S = length + 1;
  auto before = torch::cat({torch::zeros({rows, L}, sequence.options()), sequence}, 1);  // window t = [t, t + L)
  auto after = torch::cat({sequence, torch::zeros({rows, T}, sequence.options())}, 1);    // targets t = [t, t + T)
  auto inputs = before.unfold(1, L, 1).narrow(1, 0, S);  // [B, S, L]
  auto targets = after.unfold(1, T, 1).narrow(1, 0, S);  // [B, S, T]
  // A window needs a target at t and an item before it.
  auto has_input = torch::cat({torch::zeros({rows, 1}, sequence.options()), sequence.narrow(1, 0, S - 1)}, 1).gt(0);
  auto valid = sequence.gt(0).logical_and(has_input).reshape({-1}).nonzero().squeeze(1);
  Windows out;
  out.inputs = inputs.reshape({-1, L}).index_select(0, valid);
  out.targets = targets.reshape({-1, T}).index_select(0, valid);
  out.rows = valid.div(S, "floor");
  return out;
}

LossParts Caser::loss(const TensorBatch& batch) {
  const Windows w = windows(batch);
  auto users = config_.user_embedding ? batch.users.index_select(0, w.rows) : torch::Tensor();
  auto x = net_->user_side(net_->encode(w.inputs), users);  // [W, width + 1]
  auto positive = (x.unsqueeze(1) * net_->item_side(w.targets)).sum(-1);  // [W, T]
  auto negative_items = torch::randint(1, context_.item_count + 1, {w.inputs.size(0), config_.negatives},
                                       w.inputs.options());
  auto negative = (x.unsqueeze(1) * net_->item_side(negative_items)).sum(-1);  // [W, n]
  // -mean log sigmoid(positive) over real targets - mean log(1 - sigmoid(negative)), as the reference code.
  auto real = w.targets.gt(0).to(positive.scalar_type());
  auto value = (torch::softplus(-positive) * real).sum() / real.sum().clamp_min(1.0) + torch::softplus(negative).mean();
  return LossParts{value, {{"bce", value}}};
}

torch::Tensor Caser::user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) {
  // z from the last L items of each history (left-padded to L), then the users' embeddings by id when the model has
  // them (zeros in their place until then).
  auto out = encode_history_blocks(histories, users, count, config_.window, config_.encode_batch, dim(),
                                   context_.device, *net_, [&](const torch::Tensor& input) {
                                     auto padded = torch::constant_pad_nd(input, {config_.window - input.size(1), 0});
                                     return net_->user_side(net_->encode(padded), torch::Tensor());
                                   });
  if (config_.user_embedding) {
    torch::NoGradGuard no_grad;
    auto ids = torch::from_blob(const_cast<int32_t*>(users), {count}, torch::kInt32).to(context_.device, torch::kLong);
    out.narrow(1, config_.dim, config_.dim).copy_(net_->user_embedding(ids).to(torch::kCPU, torch::kFloat32));
  }
  return out;
}

torch::Tensor Caser::item_vectors() {
  torch::NoGradGuard no_grad;
  auto ids = torch::arange(1, context_.item_count + 1, torch::TensorOptions().dtype(torch::kLong).device(context_.device));
  return net_->item_side(ids).to(torch::kCPU, torch::kFloat32).contiguous();
}

EMBREC_REGISTER_MODEL("caser", Caser);

}  // namespace embrec::models
