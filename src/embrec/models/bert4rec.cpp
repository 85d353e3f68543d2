// BERT4Rec: cloze masking of the training sequences, the masked-item loss, and user vectors from an appended [mask].
#include "embrec/models/bert4rec.h"

#include "embrec/models/losses/softmax_cross_entropy.h"

namespace embrec::models {

Bert4recConfig Bert4recConfig::from(ConfigTable& table) {
  Bert4recConfig c;
  c.encoder.dropout = 0.1;  // the paper's dropout
  c.encoder.attention_dropout = 0.1;
  c.encoder = SasrecConfig::from(table, c.encoder);
  table.check(c.encoder.loss == NextItemLoss::Softmax, "loss",
              ": BERT4Rec trains its masked positions with softmax over all items (loss = \"softmax\")");
  table.check(c.encoder.max_length >= 2, "max_length", ": must leave room for a history and the [mask] (>= 2)");
  c.mask_probability = table.get_in_range("mask_probability", c.mask_probability, "(0, 1)");
  return c;
}

Bert4rec::Bert4rec(const Bert4recConfig& config, const ModelContext& context)
    : SasrecBase(config.encoder, context), config_(config) {
  SasrecEncoder encoder(config.encoder, context.item_count, /*extra_tokens=*/1);
  encoder->causal = false;
  set_encoder(encoder);
  this->encoder()->to(context.device);
}

data::SamplerOptions Bert4rec::sampler_options(const data::SamplerOptions& defaults) const {
  data::SamplerOptions options = SasrecBase::sampler_options(defaults);
  options.max_length = static_cast<int32_t>(config_.encoder.max_length - 1);  // inputs + the last target fill it
  options.negatives = false;
  return options;
}

Bert4rec::Cloze Bert4rec::cloze(const TensorBatch& batch) const {
  Cloze out;
  const int64_t length = batch.input.size(1);
  // Rows are right-aligned, so the last column's target is each row's last item.
  out.sequence = torch::cat({batch.input, batch.target.narrow(1, length - 1, 1)}, 1);
  auto present = out.sequence.gt(0);
  auto draw = torch::rand(out.sequence.sizes(), torch::TensorOptions().device(out.sequence.device()));
  out.masked = draw.lt(config_.mask_probability).logical_and_(present);
  auto none = out.masked.any(1, /*keepdim=*/true).logical_not().logical_and_(present.narrow(1, length, 1));
  out.masked.narrow(1, length, 1).logical_or_(none);
  out.input = out.sequence.masked_fill(out.masked, mask_token());
  return out;
}

LossParts Bert4rec::loss(const TensorBatch& batch) {
  const Cloze c = cloze(batch);
  auto hidden = encoder()->forward(c.input);
  auto rows = c.masked.reshape({-1}).nonzero().squeeze(1);
  auto states = hidden.reshape({-1, hidden.size(-1)}).index_select(0, rows);
  auto targets = c.sequence.reshape({-1}).index_select(0, rows) - 1;
  auto weight = encoder()->item_embedding->weight.narrow(0, 1, context_.item_count);
  auto value = losses::softmax_cross_entropy(states, weight, targets, config_.encoder.softmax_chunk);
  return LossParts{value, {{"cloze", value}}};
}

torch::Tensor Bert4rec::user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) {
  SasrecEncoderImpl& net = *encoder();
  return encode_history_blocks(histories, users, count, config_.encoder.max_length - 1, config_.encoder.encode_batch,
                               config_.encoder.dim, context_.device, net, [&](const torch::Tensor& input) {
                                 auto mask = torch::full({input.size(0), 1}, mask_token(), input.options());
                                 return net.encode_last(torch::cat({input, mask}, 1));
                               });
}

EMBREC_REGISTER_MODEL("bert4rec", Bert4rec);

}  // namespace embrec::models
