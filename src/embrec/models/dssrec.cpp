// DSSRec: the intention layer (paper Eq. 7-9), the latent seq2seq loss with confident pairs (Eq. 3-4) and the model.
#include "embrec/models/dssrec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "embrec/util/error.h"

namespace embrec::models {

namespace F = torch::nn::functional;

DssrecConfig DssrecConfig::from(ConfigTable& table) {
  DssrecConfig c;
  c.encoder = SasrecConfig::from(table);
  c.intentions = table.get_positive("intentions", c.intentions);
  c.seq2seq_weight = table.get_at_least("seq2seq_weight", c.seq2seq_weight, 0.0);
  c.temperature = table.get_positive("temperature", c.temperature);
  c.selection = table.get_one_of("selection", c.selection, kIntentionSelectionNames);
  c.confidence = table.only(c.selection == IntentionSelection::Confident, "when selection = \"confident\"")
                     .get_in_range("confidence", c.confidence, "(0, 1]");
  c.split = table.get_one_of("split", c.split, kSplitSamplingNames);
  return c;
}

namespace {

torch::nn::LayerNorm layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-12));  // as the encoder's
}

}  // namespace

IntentionLayerImpl::IntentionLayerImpl(int64_t dim, int64_t intentions, int64_t max_length,
                                       double initializer_range) {
  prototypes = register_parameter("prototypes", torch::randn({intentions, dim}));  // LN2 makes their scale moot
  recency = register_parameter("recency", torch::randn({max_length, dim}) * initializer_range);
  query_bias = register_parameter("query_bias", torch::zeros({dim}));
  key_transform = register_module("key_transform", torch::nn::Linear(dim, dim));
  item_norm = register_module("item_norm", layer_norm(dim));
  prototype_norm = register_module("prototype_norm", layer_norm(dim));
  key_norm = register_module("key_norm", layer_norm(dim));
  query_norm = register_module("query_norm", layer_norm(dim));
  output_norm = register_module("output_norm", layer_norm(dim));
  // beta ~ N(0, 1/D) (Eq. 9): noise, not learned, so that past and future cannot agree on an absent intention.
  const double beta_scale = 1.0 / std::sqrt(static_cast<double>(dim));
  past_bias = register_buffer("past_bias", torch::randn({intentions, dim}) * beta_scale);
  future_bias = register_buffer("future_bias", torch::randn({intentions, dim}) * beta_scale);
  torch::NoGradGuard no_grad;
  key_transform->weight.normal_(0.0, initializer_range);
  key_transform->bias.zero_();
}

torch::Tensor IntentionLayerImpl::intention_probabilities(const torch::Tensor& hidden) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(hidden.size(-1)));
  return torch::softmax(torch::matmul(item_norm(hidden), prototype_norm(prototypes).t()) * scale, -1);
}

torch::Tensor IntentionLayerImpl::position_weights(const torch::Tensor& hidden, const torch::Tensor& items,
                                                   const torch::Tensor& query_column) {
  const int64_t batch = hidden.size(0), length = hidden.size(1), d = hidden.size(2);
  if (length > recency.size(0)) fail("dssrec: sequence length {} exceeds max_length {}", length, recency.size(0));
  auto columns = torch::arange(length, query_column.options()).unsqueeze(0);
  auto distance = query_column.unsqueeze(1) - columns;  // [B, L]: 0 at the query, > 0 before it
  // The query's own column always counts, so that a row without items (never trained on) stays finite.
  auto allowed = items.logical_and(distance.ge(0)).logical_or(distance.eq(0));
  auto recent = recency.index_select(0, distance.clamp(0, recency.size(0) - 1).reshape({-1})).view({batch, length, d});
  auto keys_tilde = key_norm(hidden + recent);
  auto keys = keys_tilde + torch::relu(key_transform(keys_tilde));
  auto z_query = hidden.gather(1, query_column.view({batch, 1, 1}).expand({batch, 1, d})).squeeze(1);
  auto query = query_norm(z_query + recency[0] + query_bias);
  auto scores = torch::bmm(keys, query.unsqueeze(2)).squeeze(2) / std::sqrt(static_cast<double>(d));
  scores = scores.masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
  return torch::softmax(scores, 1);
}

torch::Tensor IntentionLayerImpl::forward(const torch::Tensor& hidden, const torch::Tensor& items,
                                          const torch::Tensor& query_column, SequenceSide side) {
  auto weights = position_weights(hidden, items, query_column).unsqueeze(2) * intention_probabilities(hidden);
  auto aggregated = torch::bmm(weights.transpose(1, 2), hidden);  // [B, K, D]: sum_i p(k|i) p_i z_i
  return output_norm(aggregated + (side == SequenceSide::Past ? past_bias : future_bias));
}

DssrecModuleImpl::DssrecModuleImpl(const DssrecConfig& config, int32_t item_count) {
  encoder = register_module("encoder", SasrecEncoder(config.encoder, item_count));
  intentions = register_module("intentions", IntentionLayer(config.encoder.dim, config.intentions,
                                                            config.encoder.max_length,
                                                            config.encoder.initializer_range));
}

Seq2seqLoss seq2seq_loss(const torch::Tensor& past, const torch::Tensor& future, const torch::Tensor& valid,
                         const Seq2seqOptions& options) {
  if (past.dim() != 3 || !past.sizes().equals(future.sizes()))
    fail("seq2seq_loss: past and future must both be [B, K, D]");
  if (valid.dim() != 1 || valid.size(0) != past.size(0)) fail("seq2seq_loss: valid must be [B]");
  const int64_t rows = past.size(0), k = past.size(1), d = past.size(2);
  const double scale = 1.0 / (std::sqrt(static_cast<double>(d)) * options.temperature);

  // Every rank computes the whole batch's pairs from the gathered pasts and futures (this rank's rows live, the others
  // constants): the future of a row is a negative of every other row's anchors, and only so does the gradient into
  // this rank's futures include what the other ranks' anchors ask of them. Pair (u, k) is candidate u * K + k.
  const Gathered all_past = gather_rows(options.gather, past);
  const torch::Tensor all_future = gather_rows(options.gather, future).all;
  const torch::Tensor all_valid = gather_rows(options.gather, valid.to(past.dtype())).all.gt(0.5);
  const int64_t offset = all_past.offset, total = all_past.all.size(0);
  auto long_options = torch::TensorOptions().dtype(torch::kLong).device(past.device());
  auto targets = torch::arange(total * k, long_options);
  auto logits = torch::matmul(all_past.all.reshape({total * k, d}), all_future.reshape({total * k, d}).t()) * scale;
  // Rows without a split are no negatives; a pair's own column stays (a pair of such a row is then finite, unused).
  auto own = torch::eye(total * k, torch::TensorOptions().dtype(torch::kBool).device(past.device()));
  auto not_candidate = all_valid.repeat_interleave(k).logical_not().unsqueeze(0).logical_and(own.logical_not());
  logits = logits.masked_fill(not_candidate, -std::numeric_limits<double>::infinity());
  auto all_pairs =
      F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().reduction(torch::kNone)).view({total, k});
  all_pairs = all_pairs * all_valid.unsqueeze(1).to(all_pairs.dtype());

  // Eq. 4 over the whole batch (the same decision on every rank): the kept pairs and their count.
  auto all_kept = torch::zeros({total, k}, torch::TensorOptions().dtype(torch::kBool).device(past.device()));
  const int64_t valid_rows = all_valid.sum().item<int64_t>();
  int64_t kept_count = 0;
  if (valid_rows > 0) {
    const torch::Tensor ranked = all_pairs.detach();
    if (options.selection == IntentionSelection::Confident) {
      kept_count = std::max<int64_t>(
          1, static_cast<int64_t>(std::floor(options.confidence * static_cast<double>(valid_rows * k))));
      auto keys = ranked.masked_fill(all_valid.logical_not().unsqueeze(1), std::numeric_limits<double>::infinity());
      // A stable sort: ties are broken by position, identically on every rank.
      auto order = std::get<1>(torch::sort(keys.reshape({-1}), /*stable=*/true, /*dim=*/0, /*descending=*/false));
      all_kept.view({-1}).index_fill_(0, order.narrow(0, 0, kept_count), true);
    } else {
      kept_count = valid_rows;
      all_kept.scatter_(1, ranked.argmin(1, /*keepdim=*/true), true);
      all_kept.logical_and_(all_valid.unsqueeze(1));
    }
  }
  const double inverse_count = 1.0 / static_cast<double>(std::max<int64_t>(kept_count, 1));
  auto whole = (all_pairs * all_kept.to(all_pairs.dtype())).sum() * inverse_count;
  auto pairs = all_pairs.narrow(0, offset, rows);
  auto kept = all_kept.narrow(0, offset, rows);
  if (!options.gather) return Seq2seqLoss{whole, kept, pairs};
  // The trainer weighs each rank's loss by B / N and adds the ranks' gradients. Value: this rank's kept pairs, times
  // N / B (the ranks' values then add up to `whole`). Gradient: `whole`'s through this rank's rows, times N / B (the
  // ranks' gradients then add up to the one-process gradient).
  const double share = static_cast<double>(total) / static_cast<double>(rows);
  auto value = (pairs * kept.to(pairs.dtype())).sum().detach() * (inverse_count * share);
  auto loss = value + (whole - whole.detach()) * share;
  return Seq2seqLoss{loss, kept, pairs};
}

Dssrec::Dssrec(const DssrecConfig& config, const ModelContext& context)
    : SasrecBase(config.encoder, context), config_(config) {
  module_ = DssrecModule(config_, context.item_count);
  module_->to(context.device);
  set_encoder(module_->encoder);
}

Splits Dssrec::make_splits(const TensorBatch& batch) const {
  const auto input = batch.input.to(torch::kCPU).contiguous();
  const torch::Tensor target = batch.target.defined() ? batch.target.to(torch::kCPU).contiguous() : torch::Tensor();
  const int64_t rows = input.size(0), length = input.size(1);
  const int64_t* in = input.data_ptr<int64_t>();
  const int64_t* next = target.defined() ? target.data_ptr<int64_t>() : nullptr;
  Splits out;
  out.split.assign(static_cast<size_t>(rows), 0);
  std::vector<int64_t> past_column(static_cast<size_t>(rows), length - 1);
  std::vector<uint8_t> valid(static_cast<size_t>(rows), 0);
  std::vector<std::vector<int64_t>> futures(static_cast<size_t>(rows));
  std::vector<int64_t> sequence, columns;
  int64_t longest = 1;
  for (int64_t r = 0; r < rows; ++r) {
    sequence.clear();
    columns.clear();
    for (int64_t j = 0; j < length; ++j) {
      if (in[r * length + j] <= 0) continue;
      sequence.push_back(in[r * length + j]);
      columns.push_back(j);
    }
    // x_1..x_T: the input, then the target after its last item (the last item of the training sequence).
    if (next && !columns.empty() && columns.back() == length - 1 && next[r * length + length - 1] > 0)
      sequence.push_back(next[r * length + length - 1]);
    const auto items = static_cast<int64_t>(sequence.size());
    if (items < 2) continue;
    int64_t t = items / 2;
    if (config_.split == SplitSampling::Uniform) {
      // One generator per (seed, epoch, batch, row of the global batch): a resumed run and every rank draw the same.
      std::seed_seq seed{static_cast<uint64_t>(context_.seed), static_cast<uint64_t>(batch.epoch),
                         static_cast<uint64_t>(batch.batch_index), static_cast<uint64_t>(batch.first_row + r)};
      std::mt19937_64 random(seed);
      t = std::uniform_int_distribution<int64_t>(1, items - 1)(random);
    }
    out.split[r] = t;
    valid[r] = 1;
    past_column[r] = columns[t - 1];
    futures[r].assign(sequence.rbegin(), sequence.rend() - t);  // x_T, ..., x_{t+1}
    longest = std::max(longest, items - t);
  }
  auto future_input = torch::zeros({rows, longest}, torch::kLong);
  int64_t* f = future_input.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const auto& future = futures[r];
    std::copy(future.begin(), future.end(), f + r * longest + (longest - static_cast<int64_t>(future.size())));
  }
  const torch::Device device = batch.input.device();
  out.past_column = torch::tensor(past_column, torch::kLong).to(device);
  out.future_input = future_input.to(device);
  out.valid = torch::tensor(std::vector<int64_t>(valid.begin(), valid.end()), torch::kLong).gt(0).to(device);
  return out;
}

LossParts Dssrec::loss(const TensorBatch& batch) {
  SasrecEncoderImpl& encoder = *module_->encoder;
  auto hidden = encoder.forward(batch.input);
  auto sr = next_item_loss(config_.encoder, encoder, hidden, batch);
  LossParts out{sr, {{"sr", sr}}};
  if (config_.seq2seq_weight == 0) return out;

  const Splits splits = make_splits(batch);
  IntentionLayerImpl& intentions = *module_->intentions;
  auto past = intentions.forward(hidden, batch.input.gt(0), splits.past_column, SequenceSide::Past);
  auto future_hidden = encoder.forward(splits.future_input);
  const int64_t rows = splits.future_input.size(0), last = splits.future_input.size(1) - 1;
  auto future_column = torch::full({rows}, last, splits.past_column.options());
  auto future = intentions.forward(future_hidden, splits.future_input.gt(0), future_column, SequenceSide::Future);

  Seq2seqOptions options;
  options.temperature = config_.temperature;
  options.selection = config_.selection;
  options.confidence = config_.confidence;
  options.gather = batch.gather;
  auto seq2seq = seq2seq_loss(past, future, splits.valid, options).loss;
  out.total = out.total + config_.seq2seq_weight * seq2seq;
  out.parts.emplace_back("seq2seq", seq2seq);
  return out;
}

EMBREC_REGISTER_MODEL("dssrec", Dssrec);

}  // namespace embrec::models
