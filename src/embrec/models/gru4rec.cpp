// GRU4Rec: the GRU written out step by step (so that session-parallel slots reset mid-batch), the two training
// losses, user and item vectors.
#include "embrec/models/gru4rec.h"

#include <cmath>

#include "embrec/models/losses/softmax_cross_entropy.h"
#include "embrec/util/error.h"

namespace embrec::models {

namespace {
losses::RankingLoss ranking_kind(GruLoss loss) {
  switch (loss) {
    case GruLoss::Bpr: return losses::RankingLoss::Bpr;
    case GruLoss::Top1: return losses::RankingLoss::Top1;
    case GruLoss::BprMax: return losses::RankingLoss::BprMax;
    case GruLoss::Top1Max: return losses::RankingLoss::Top1Max;
    case GruLoss::Softmax: break;
  }
  fail("gru4rec: softmax is not a sampled ranking loss");
}
}  // namespace

Gru4recConfig Gru4recConfig::from(ConfigTable& table) {
  Gru4recConfig c;
  c.dim = table.get_positive("dim", c.dim);
  c.layers = table.get_positive("layers", c.layers);
  c.input = table.get_one_of("input", c.input, kGruInputNames);
  // One-hot input has no embedding to tie: its output vectors are always a table of their own.
  const bool embedding = c.input == GruInput::Embedding;
  c.tied = table.only(embedding, "to input = \"embedding\"").get("tied", embedding);
  c.embedding_dim = table.only(c.input == GruInput::Embedding && !c.tied, "to an untied input = \"embedding\"")
                        .get_at_least("embedding_dim", c.embedding_dim, int64_t{0});
  c.embedding_dropout = table.get_in_range("embedding_dropout", c.embedding_dropout, "[0, 1)");
  c.hidden_dropout = table.get_in_range("hidden_dropout", c.hidden_dropout, "[0, 1)");
  c.batching = table.get_one_of("batching", c.batching, kGruBatchingNames);
  c.pooling = table.only(c.batching == GruBatching::Padded, "to batching = \"padded\"")
                  .get_one_of("pooling", c.pooling, kGruPoolingNames);
  c.steps = table.only(c.batching == GruBatching::SessionParallel, "to batching = \"session_parallel\"")
                .get_positive("steps", c.steps);
  c.loss = table.get_one_of("loss", c.loss, kGruLossNames);
  auto sampled = table.only(c.loss != GruLoss::Softmax, "to the sampled losses (bpr, top1, bpr_max, top1_max)");
  c.shared_negatives = sampled.get_at_least("shared_negatives", c.shared_negatives, int64_t{0});
  c.negative_alpha = sampled.get_at_least("negative_alpha", c.negative_alpha, 0.0);
  c.score_regularization = table.only(c.loss == GruLoss::BprMax, "to loss = \"bpr_max\"")
                               .get_at_least("score_regularization", c.score_regularization, 0.0);
  c.max_length = table.get_positive("max_length", c.max_length);
  c.init_range = table.get_at_least("init_range", c.init_range, 0.0);
  c.softmax_chunk = table.only(c.loss == GruLoss::Softmax, "to loss = \"softmax\"")
                        .get_positive("softmax_chunk", c.softmax_chunk);
  c.encode_batch = table.get_positive("encode_batch", c.encode_batch);
  return c;
}

Gru4recNetImpl::Gru4recNetImpl(const Gru4recConfig& config_in, int32_t item_count_in)
    : config(config_in), item_count(item_count_in) {
  const int64_t d = config.dim;
  const bool one_hot = config.input == GruInput::OneHot;
  const int64_t width = one_hot ? 3 * d : (config.tied || config.embedding_dim == 0 ? d : config.embedding_dim);
  input_embedding = register_module("input_embedding", torch::nn::Embedding(item_count + 1, width));
  if (!config.tied) output_embedding = register_module("output_embedding", torch::nn::Embedding(item_count + 1, d));
  for (int64_t l = 0; l < config.layers; ++l) {
    const std::string prefix = "layer" + std::to_string(l) + "_";
    const int64_t in = l == 0 ? width : d;
    w_ih.push_back(l == 0 && one_hot ? torch::Tensor() : register_parameter(prefix + "w_ih", torch::empty({3 * d, in})));
    w_hh.push_back(register_parameter(prefix + "w_hh", torch::empty({3 * d, d})));
    b_ih.push_back(register_parameter(prefix + "b_ih", torch::zeros({3 * d})));
    b_hh.push_back(register_parameter(prefix + "b_hh", torch::zeros({3 * d})));
  }
  // GRU4Rec's initialisation: every matrix ~ U(-r, r) with r = sqrt(6 / (rows + columns)) unless init_range is
  // given; biases zero; the padding row of the input table zero.
  torch::NoGradGuard no_grad;
  for (auto& parameter : named_parameters()) {
    torch::Tensor& value = parameter.value();
    if (value.dim() < 2) continue;
    const double range =
        config.init_range > 0 ? config.init_range : std::sqrt(6.0 / static_cast<double>(value.size(0) + value.size(1)));
    value.uniform_(-range, range);
  }
  input_embedding->weight[0].zero_();
  if (output_embedding) output_embedding->weight[0].zero_();
}

torch::Tensor Gru4recNetImpl::forward(const torch::Tensor& input, const torch::Tensor& keep,
                                      const torch::Tensor& state, torch::Tensor* final_state) {
  const int64_t batch = input.size(0), length = input.size(1), d = config.dim;
  auto layer_input = input_embedding(input);
  auto present = input.gt(0).unsqueeze(2).to(layer_input.scalar_type());  // [B, L, 1]
  auto keep_float = keep.defined() ? keep.unsqueeze(2).to(layer_input.scalar_type()) : torch::Tensor();
  layer_input = torch::dropout(layer_input, config.embedding_dropout, is_training());
  std::vector<torch::Tensor> finals;
  for (int64_t l = 0; l < config.layers; ++l) {
    // The input side of all three gates for every step at once; only the recurrent side is stepped.
    auto gates_x = w_ih[l].defined() ? torch::linear(layer_input, w_ih[l], b_ih[l]) : layer_input + b_ih[l];
    auto h = state.defined() ? state[l] : torch::zeros({batch, d}, layer_input.options());
    std::vector<torch::Tensor> outputs;
    outputs.reserve(static_cast<size_t>(length));
    for (int64_t t = 0; t < length; ++t) {
      if (keep_float.defined()) h = h * keep_float.select(1, t);
      auto gx = gates_x.select(1, t).chunk(3, 1);
      auto gh = torch::linear(h, w_hh[l], b_hh[l]).chunk(3, 1);
      auto reset_gate = torch::sigmoid(gx[0] + gh[0]);
      auto update_gate = torch::sigmoid(gx[1] + gh[1]);
      auto candidate = torch::tanh(gx[2] + reset_gate * gh[2]);
      // (1 - z) n + z h, and nothing (a zero state) at steps without an item.
      h = (candidate + update_gate * (h - candidate)) * present.select(1, t);
      outputs.push_back(h);
    }
    finals.push_back(h);
    layer_input = torch::dropout(torch::stack(outputs, 1), config.hidden_dropout, is_training());
  }
  if (final_state) *final_state = torch::stack(finals, 0);
  return layer_input;
}

torch::Tensor Gru4recNetImpl::output_table() {
  return config.tied ? input_embedding->weight : output_embedding->weight;
}

Gru4rec::Gru4rec(const Gru4recConfig& config, const ModelContext& context)
    : config_(config), context_(context), net_(Gru4recNet(config, context.item_count)) {
  net_->to(context.device);
}

data::SamplerOptions Gru4rec::sampler_options(const data::SamplerOptions& defaults) const {
  data::SamplerOptions options = defaults;
  options.max_length = static_cast<int32_t>(config_.max_length);
  options.session_parallel = config_.batching == GruBatching::SessionParallel;
  options.steps = static_cast<int32_t>(config_.steps);
  options.shared_negatives = config_.loss == GruLoss::Softmax ? 0 : static_cast<int32_t>(config_.shared_negatives);
  options.negative_alpha = config_.negative_alpha;
  return options;
}

void Gru4rec::begin_epoch(int64_t, const EpochWorld&) { carried_ = torch::Tensor(); }

torch::Tensor Gru4rec::pool(const torch::Tensor& outputs, const torch::Tensor& input) const {
  if (config_.pooling == GruPooling::Last) return outputs;
  auto present = input.gt(0).unsqueeze(2).to(outputs.scalar_type());
  return outputs.cumsum(1) / present.cumsum(1).clamp_min(1.0);
}

LossParts Gru4rec::loss(const TensorBatch& batch) {
  const bool session_parallel = batch.reset.defined();
  torch::Tensor keep, state, final_state;
  if (session_parallel) {
    keep = batch.reset.logical_not();
    if (carried_.defined() && carried_.size(1) == batch.input.size(0)) state = carried_;
  }
  auto outputs = net_->forward(batch.input, keep, state, session_parallel ? &final_state : nullptr);
  if (session_parallel) carried_ = final_state.detach();

  auto flat_target = batch.target.reshape({-1});
  auto rows = flat_target.nonzero().squeeze(1);
  auto states = pool(outputs, batch.input).reshape({-1, config_.dim}).index_select(0, rows);
  auto targets = flat_target.index_select(0, rows);  // ids + 1
  auto table = net_->output_table();
  torch::Tensor value;
  if (config_.loss == GruLoss::Softmax) {
    value = losses::softmax_cross_entropy(states, table.narrow(0, 1, context_.item_count), targets - 1,
                                          config_.softmax_chunk);
  } else {
    // Negatives: the batch's distinct targets (of the whole batch in a data-parallel job: the output table is a
    // parameter, so the ids are all a rank needs) and the shared extra samples; a column holding a row's own target
    // item is not a negative of that row.
    auto columns = std::get<0>(torch::_unique(gather_rows(batch.gather, targets).all, /*sorted=*/false));
    if (batch.shared_negative.defined()) columns = torch::cat({columns, batch.shared_negative});
    auto positive = (states * table.index_select(0, targets)).sum(1);
    auto negatives = torch::matmul(states, table.index_select(0, columns).t());
    auto valid = columns.unsqueeze(0).ne(targets.unsqueeze(1));
    value = losses::ranking_loss(ranking_kind(config_.loss), positive, negatives, valid, config_.score_regularization);
  }
  return LossParts{value, {{name_of(kGruLossNames, config_.loss), value}}};
}

torch::Tensor Gru4rec::user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) {
  return encode_history_blocks(histories, users, count, config_.max_length, config_.encode_batch, config_.dim,
                               context_.device, *net_, [&](const torch::Tensor& input) {
                                 auto pooled = pool(net_->forward(input, {}, {}), input);
                                 return pooled.select(1, pooled.size(1) - 1);
                               });
}

torch::Tensor Gru4rec::item_vectors() {
  torch::NoGradGuard no_grad;
  return net_->output_table().narrow(0, 1, context_.item_count).to(torch::kCPU, torch::kFloat32).contiguous();
}

EMBREC_REGISTER_MODEL("gru4rec", Gru4rec);

}  // namespace embrec::models
