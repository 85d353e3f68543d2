// SASRec: encoder, next-item losses, user and item vectors.
#include "embrec/models/sasrec.h"

#include <algorithm>
#include <cmath>

#include "embrec/models/losses/softmax_cross_entropy.h"
#include "embrec/util/error.h"

namespace embrec::models {

SasrecConfig SasrecConfig::from(ConfigTable& table) { return from(table, SasrecConfig{}); }

SasrecConfig SasrecConfig::from(ConfigTable& table, const SasrecConfig& defaults) {
  SasrecConfig c = defaults;
  c.dim = table.get_positive("dim", c.dim);
  c.layers = table.get_positive("layers", c.layers);
  c.heads = table.get_positive("heads", c.heads);
  c.max_length = table.get_positive("max_length", c.max_length);
  c.dropout = table.get_in_range("dropout", c.dropout, "[0, 1)");
  c.attention_dropout = table.get_in_range("attention_dropout", c.attention_dropout, "[0, 1)");
  c.initializer_range = table.get("initializer_range", c.initializer_range);
  c.loss = table.get_one_of("loss", c.loss, kNextItemLossNames);
  c.softmax_chunk = table.get_positive("softmax_chunk", c.softmax_chunk);
  c.encode_batch = table.get_positive("encode_batch", c.encode_batch);
  table.check(c.dim % c.heads == 0, "heads",
              fmt::format("({}) must divide key '{}' ({})", c.heads, table.key_path("dim"), c.dim));
  return c;
}

SasrecEncoderImpl::SasrecEncoderImpl(const SasrecConfig& config_in, int32_t item_count_in, int32_t extra_tokens)
    : config(config_in), item_count(item_count_in) {
  const int64_t d = config.dim;
  item_embedding = register_module(
      "item_embedding",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(item_count + 1 + extra_tokens, d).padding_idx(0)));
  position_embedding = register_module("position_embedding", torch::nn::Embedding(config.max_length, d));
  embedding_norm = register_module("embedding_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-12)));
  embedding_dropout = register_module("embedding_dropout", torch::nn::Dropout(config.dropout));
  for (int64_t l = 0; l < config.layers; ++l) {
    Block block;
    const std::string prefix = "block" + std::to_string(l) + "_";
    block.query_key_value = register_module(prefix + "query_key_value", torch::nn::Linear(d, 3 * d));
    block.attention_output = register_module(prefix + "attention_output", torch::nn::Linear(d, d));
    block.attention_norm =
        register_module(prefix + "attention_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-12)));
    block.feed_forward_in = register_module(prefix + "feed_forward_in", torch::nn::Linear(d, 4 * d));
    block.feed_forward_out = register_module(prefix + "feed_forward_out", torch::nn::Linear(4 * d, d));
    block.feed_forward_norm = register_module(prefix + "feed_forward_norm",
                                              torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-12)));
    blocks.push_back(block);
  }
  // The initialisation of the ICLRec/S3Rec SASRec: N(0, 0.02) weights, zero biases, unit layer norms.
  torch::NoGradGuard no_grad;
  for (auto& parameter : named_parameters()) {
    const std::string& key = parameter.key();
    if (key.find("norm") != std::string::npos) {
      parameter.value().fill_(key.find("bias") != std::string::npos ? 0.0 : 1.0);
    } else if (key.find("bias") != std::string::npos) {
      parameter.value().zero_();
    } else {
      parameter.value().normal_(0.0, config.initializer_range);
    }
  }
}

torch::Tensor SasrecEncoderImpl::forward(const torch::Tensor& input) { return run(input, /*last_only=*/false); }

torch::Tensor SasrecEncoderImpl::encode_last(const torch::Tensor& input) { return run(input, /*last_only=*/true); }

torch::Tensor SasrecEncoderImpl::run(const torch::Tensor& input, bool last_only) {
  const int64_t batch = input.size(0), length = input.size(1);
  if (!split_by_length || batch < 2 || length < 4) return run_padded(input, last_only);
  // Each row's length: columns from its first item to the end (rows are right-aligned). Rows without items count 1.
  auto present = input.gt(0);
  auto first = present.to(torch::kInt32).argmax(1);  // the first maximal index, i.e. the first item
  auto row_lengths = (length - first.to(torch::kLong)).masked_fill_(present.any(1).logical_not(), 1);
  auto lengths_tensor = row_lengths.to(torch::kCPU).contiguous();
  const int64_t* lengths = lengths_tensor.data_ptr<int64_t>();
  // Groups by a ladder of lengths (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, ...); each group is cut to its longest
  // row. Not worth it when that saves under a quarter of the padded tokens (e.g. a length-bucketed batch).
  auto group_of = [](int64_t n) {
    int64_t group = 1;
    if (n <= 1) return int64_t{0};
    for (int64_t step = 2; step < n; ++group) step = (step & (step - 1)) == 0 ? step / 2 * 3 : step / 3 * 4;
    return group;
  };
  std::vector<std::vector<int64_t>> groups;
  std::vector<int64_t> group_length;
  for (int64_t r = 0; r < batch; ++r) {
    const auto g = static_cast<size_t>(group_of(lengths[r]));
    if (g >= groups.size()) groups.resize(g + 1), group_length.resize(g + 1, 0);
    groups[g].push_back(r);
    group_length[g] = std::max(group_length[g], lengths[r]);
  }
  int64_t tokens = 0;
  for (size_t g = 0; g < groups.size(); ++g) tokens += static_cast<int64_t>(groups[g].size()) * group_length[g];
  if (tokens * 4 > batch * length * 3) return run_padded(input, last_only);

  std::vector<torch::Tensor> outputs;
  std::vector<int64_t> order;  // original row of each output row
  for (size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].empty()) continue;
    const int64_t n = static_cast<int64_t>(groups[g].size()), cut = group_length[g];
    // Copies (here and below): autograd keeps the indices for the backward pass, after these vectors are gone.
    auto rows = torch::from_blob(groups[g].data(), {n}, torch::kLong).to(input.device(), false, /*copy=*/true);
    auto out = run_padded(input.index_select(0, rows).narrow(1, length - cut, cut), last_only);
    if (!last_only && cut < length) out = torch::constant_pad_nd(out, {0, 0, length - cut, 0});
    outputs.push_back(out);
    order.insert(order.end(), groups[g].begin(), groups[g].end());
  }
  std::vector<int64_t> inverse(batch);
  for (int64_t i = 0; i < batch; ++i) inverse[order[i]] = i;
  auto back = torch::from_blob(inverse.data(), {batch}, torch::kLong).to(input.device(), false, /*copy=*/true);
  return torch::cat(outputs, 0).index_select(0, back);
}

torch::Tensor SasrecEncoderImpl::run_padded(const torch::Tensor& input, bool last_only) {
  const int64_t batch = input.size(0), length = input.size(1), d = config.dim, heads = config.heads;
  const int64_t head_dim = d / heads;
  if (length > config.max_length) fail("sasrec: input length {} exceeds max_length {}", length, config.max_length);
  // Right-aligned windows: column j sits at window position max_length - length + j.
  auto positions = torch::arange(config.max_length - length, config.max_length,
                                 torch::TensorOptions().dtype(torch::kLong).device(input.device()));
  auto hidden = item_embedding(input) + position_embedding(positions).unsqueeze(0);
  hidden = embedding_dropout(embedding_norm(hidden));

  // Additive mask [B, 1, L, L]: causal (unless bidirectional), and padding keys hidden. A large finite value (not
  // -inf) keeps rows that are all padding finite; their outputs are never used.
  auto key_is_item = (input > 0).unsqueeze(1).unsqueeze(2);  // [B,1,1,L]
  auto allowed = key_is_item.expand({batch, 1, length, length});
  if (causal) {
    auto lower = torch::ones({length, length}, torch::TensorOptions().dtype(torch::kBool).device(input.device())).tril();
    allowed = allowed.logical_and(lower);
  }
  auto mask = torch::zeros({batch, 1, length, length}, hidden.options()).masked_fill_(allowed.logical_not(), -10000.0);

  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  for (size_t b = 0; b < blocks.size(); ++b) {
    Block& block = blocks[b];
    auto qkv = block.query_key_value(hidden).view({batch, length, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
    auto query = qkv[0], key = qkv[1], value = qkv[2];  // [B, h, L, hd]
    auto block_mask = mask;
    auto residual = hidden;
    int64_t rows = length;
    if (last_only && b + 1 == blocks.size()) {
      // Only z_u (the last position) is wanted: the last block needs keys and values everywhere but a query, the
      // output projection and the feed-forward at one position. This halves encoding time with 2 blocks.
      query = query.narrow(2, length - 1, 1);
      block_mask = mask.narrow(2, length - 1, 1);
      residual = hidden.narrow(1, length - 1, 1);
      rows = 1;
    }
    auto scores = torch::matmul(query, key.transpose(-1, -2)).mul_(scale).add_(block_mask);
    auto probabilities = torch::dropout(torch::softmax(scores, -1), config.attention_dropout, is_training());
    auto context = torch::matmul(probabilities, value).permute({0, 2, 1, 3}).reshape({batch, rows, d});
    auto attended = torch::dropout(block.attention_output(context), config.dropout, is_training());
    hidden = block.attention_norm(attended + residual);
    auto inner = torch::gelu(block.feed_forward_in(hidden));
    auto fed = torch::dropout(block.feed_forward_out(inner), config.dropout, is_training());
    hidden = block.feed_forward_norm(fed + hidden);
  }
  return last_only ? hidden.select(1, hidden.size(1) - 1) : hidden;
}

Sasrec::Sasrec(const SasrecConfig& config, const ModelContext& context) : SasrecBase(config, context) {
  set_encoder(SasrecEncoder(config, context.item_count));
  encoder()->to(context.device);
}

data::SamplerOptions SasrecBase::sampler_options(const data::SamplerOptions& defaults) const {
  data::SamplerOptions options = defaults;
  options.max_length = static_cast<int32_t>(encoder_config_.max_length);
  options.negatives = encoder_config_.loss == NextItemLoss::Bce;
  return options;
}

torch::Tensor next_item_loss(const SasrecConfig& config, SasrecEncoderImpl& encoder, const torch::Tensor& hidden,
                             const TensorBatch& batch) {
  const int64_t d = hidden.size(-1);
  auto flat_target = batch.target.reshape({-1});
  auto rows = flat_target.nonzero().squeeze(1);  // positions with a target
  auto states = hidden.reshape({-1, d}).index_select(0, rows);
  if (config.loss == NextItemLoss::Softmax) {
    auto weight = encoder.item_embedding->weight.narrow(0, 1, encoder.item_count);
    return losses::softmax_cross_entropy(states, weight, flat_target.index_select(0, rows) - 1, config.softmax_chunk);
  }
  if (!batch.negative.defined()) fail("sasrec: loss 'bce' needs sampled negatives in the batch");
  auto positive = encoder.item_embedding(flat_target.index_select(0, rows));
  auto negative = encoder.item_embedding(batch.negative.reshape({-1}).index_select(0, rows));
  auto positive_logits = (states * positive).sum(-1);
  auto negative_logits = (states * negative).sum(-1);
  // -log sigmoid(pos) - log(1 - sigmoid(neg)), in the stable softplus form.
  return (torch::softplus(-positive_logits) + torch::softplus(negative_logits)).mean();
}

LossParts Sasrec::loss(const TensorBatch& batch) {
  auto hidden = encoder()->forward(batch.input);
  auto sr = next_item_loss(encoder_config_, *encoder(), hidden, batch);
  return LossParts{sr, {{"sr", sr}}};
}

torch::Tensor encode_histories(SasrecEncoderImpl& encoder, const data::Sequences& histories, const int32_t* users,
                               int32_t count, int64_t batch_users, torch::Device device) {
  return encode_history_blocks(histories, users, count, encoder.config.max_length, batch_users, encoder.config.dim,
                               device, encoder, [&](const torch::Tensor& input) { return encoder.encode_last(input); });
}

torch::Tensor SasrecBase::user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) {
  return encode_histories(*encoder_, histories, users, count, encoder_config_.encode_batch, context_.device);
}

torch::Tensor SasrecBase::item_vectors() {
  torch::NoGradGuard no_grad;
  return encoder_->item_embedding->weight.narrow(0, 1, encoder_->item_count).to(torch::kCPU, torch::kFloat32).contiguous();
}

EMBREC_REGISTER_MODEL("sasrec", Sasrec);

}  // namespace embrec::models
