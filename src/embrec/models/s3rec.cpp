// S3-Rec: attributes from the item features, the pre-training samples and their views, the four objectives, and
// fine-tuning as SASRec.
#include "embrec/models/s3rec.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>
#include <unordered_set>

#include "embrec/data/features.h"
#include "embrec/util/error.h"
#include "embrec/util/seed.h"

namespace embrec::models {

namespace {

// Pre-training attends both ways (the paper's bidirectional self-attention); fine-tuning and user vectors causally.
class Bidirectional {
 public:
  explicit Bidirectional(SasrecEncoderImpl& encoder) : encoder_(encoder) { encoder_.causal = false; }
  ~Bidirectional() { encoder_.causal = true; }
  Bidirectional(const Bidirectional&) = delete;
  Bidirectional& operator=(const Bidirectional&) = delete;

 private:
  SasrecEncoderImpl& encoder_;
};

}  // namespace

S3recConfig S3recConfig::from(ConfigTable& table) {
  S3recConfig c;
  c.encoder = SasrecConfig::from(table);
  c.attribute_fields = table.get("attribute_fields", c.attribute_fields);
  return c;
}

S3recPretrainConfig S3recPretrainConfig::from(ConfigTable& table) {
  S3recPretrainConfig c;
  c.schedule = PretrainSchedule::from(table, c.schedule);
  c.aap_weight = table.get_at_least("aap_weight", c.aap_weight, 0.0);
  c.mip_weight = table.get_at_least("mip_weight", c.mip_weight, 0.0);
  c.map_weight = table.get_at_least("map_weight", c.map_weight, 0.0);
  c.sp_weight = table.get_at_least("sp_weight", c.sp_weight, 0.0);
  c.mask_p = table.get_in_range("mask_p", c.mask_p, "[0, 1]");
  return c;
}

S3recModuleImpl::S3recModuleImpl(const SasrecConfig& config, int32_t item_count, int64_t attribute_count) {
  const int64_t d = config.dim;
  encoder = register_module("encoder", SasrecEncoder(config, item_count, /*extra_tokens=*/1));
  attribute_embedding = register_module("attribute_embedding", torch::nn::Embedding(attribute_count, d));
  aap = register_module("aap", torch::nn::Linear(d, d));
  mip = register_module("mip", torch::nn::Linear(d, d));
  map = register_module("map", torch::nn::Linear(d, d));
  sp = register_module("sp", torch::nn::Linear(d, d));
  // The reference's init_weights: N(0, initializer_range) weights, zero biases (the encoder initialises itself).
  torch::NoGradGuard no_grad;
  attribute_embedding->weight.normal_(0.0, config.initializer_range);
  for (torch::nn::Linear* layer : {&aap, &mip, &map, &sp}) {
    (*layer)->weight.normal_(0.0, config.initializer_range);
    (*layer)->bias.zero_();
  }
}

PretrainViews make_pretrain_views(const int32_t* items, int64_t n, const std::vector<int32_t>& long_sequence,
                                  int32_t item_count, double mask_p, uint64_t seed) {
  if (n < 1) fail("s3rec: a pre-training sample needs at least one item");
  const int64_t mask = static_cast<int64_t>(item_count) + 1;
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int32_t> any_item(0, item_count - 1);
  const std::unordered_set<int32_t> in_sample(items, items + n);
  auto negative = [&]() -> int64_t {
    // Uniform over the items not in the sample (rejection; a sample holding nearly every item takes any after 100).
    int32_t candidate = any_item(random);
    for (int attempt = 0; attempt < 100 && in_sample.count(candidate); ++attempt) candidate = any_item(random);
    return static_cast<int64_t>(candidate) + 1;
  };

  PretrainViews v;
  v.items.resize(static_cast<size_t>(n));
  for (int64_t t = 0; t < n; ++t) v.items[t] = static_cast<int64_t>(items[t]) + 1;
  v.masked_items = v.items;
  v.negative_items = v.items;
  for (int64_t t = 0; t < n; ++t) {
    if (t + 1 == n || unit(random) < mask_p) {
      v.masked_items[t] = mask;
      v.negative_items[t] = negative();
    }
  }

  v.segment_context = v.items;
  v.positive_segment = v.items;
  v.negative_segment = v.items;
  if (n < 2) return v;
  v.has_segment = true;
  v.segment_length = std::uniform_int_distribution<int64_t>(1, n / 2)(random);
  v.segment_start = std::uniform_int_distribution<int64_t>(0, n - v.segment_length)(random);
  const int64_t long_length = static_cast<int64_t>(long_sequence.size());
  if (long_length < v.segment_length) fail("s3rec: the training sequences are shorter than a segment");
  const int64_t negative_start = std::uniform_int_distribution<int64_t>(0, long_length - v.segment_length)(random);
  for (int64_t t = 0; t < n; ++t) {
    const bool inside = t >= v.segment_start && t < v.segment_start + v.segment_length;
    if (inside) {
      v.segment_context[t] = mask;
      v.negative_segment[t] = static_cast<int64_t>(long_sequence[negative_start + t - v.segment_start]) + 1;
    } else {
      v.positive_segment[t] = mask;
      v.negative_segment[t] = mask;
    }
  }
  return v;
}

torch::Tensor attribute_prediction_loss(const torch::Tensor& context, const torch::Tensor& attributes,
                                        const torch::Tensor& positive_row, const torch::Tensor& positive_attribute) {
  auto logits = torch::matmul(context, attributes.t());  // [N, A]
  auto positives = logits.reshape({-1}).index_select(0, positive_row * attributes.size(0) + positive_attribute);
  // BCE(sigmoid(x), y) = softplus(x) - y x, in the stable form.
  return torch::softplus(logits).sum() - positives.sum();
}

torch::Tensor pairwise_prediction_loss(const torch::Tensor& context, const torch::Tensor& positive,
                                       const torch::Tensor& negative) {
  auto positive_score = torch::sigmoid((context * positive).sum(-1));
  auto negative_score = torch::sigmoid((context * negative).sum(-1));
  return torch::softplus(negative_score - positive_score).sum();  // -log sigmoid(f+ - f-)
}

S3rec::S3rec(const S3recConfig& config, const ModelContext& context)
    : SasrecBase(config.encoder, context), config_(config) {
  if (context.dataset && context.split) {
    read_attributes(*context.dataset, *context.split);
    lay_out_samples(context.split->train);
  } else if (!context.encoder_state.empty()) {
    // An export's encoder: only the number of attributes is needed, to rebuild the module the weights fit.
    try {
      attribute_count_ = nlohmann::json::parse(context.encoder_state).at("attributes").get<int64_t>();
    } catch (const std::exception& error) {
      fail("model 's3rec': the encoder state (attribute count) is unreadable: {}", error.what());
    }
  } else {
    fail("model 's3rec': needs the training data and its item attributes (or, in an export, the encoder state)");
  }
  module_ = S3recModule(config.encoder, context.item_count, attribute_count_);
  module_->to(context.device);
  set_encoder(module_->encoder);
}

void S3rec::read_attributes(const data::Dataset& dataset, const data::Split& split) {
  if (dataset.item_features.empty())
    fail("model 's3rec' pre-trains on item attributes and the data has none: set [data.item_features] (e.g. "
         "Beauty_item2attributes.json, format = \"attributes\")");
  // Vocabularies from the training items (data/features.h); values only untrained items hold are left out.
  const int32_t item_count = context_.item_count;
  const data::EncodedFeatures encoded =
      data::encode_features(dataset.item_features, data::items_in(split.train, item_count));
  std::vector<const data::EncodedField*> fields;
  for (const data::EncodedField& field : encoded.fields)
    if (config_.attribute_fields.empty() ||
        std::find(config_.attribute_fields.begin(), config_.attribute_fields.end(), field.name) !=
            config_.attribute_fields.end())
      fields.push_back(&field);
  for (const std::string& name : config_.attribute_fields) {
    bool found = false;
    for (const data::EncodedField* field : fields) found = found || field->name == name;
    if (!found) {
      std::string known;
      for (const data::EncodedField& field : encoded.fields) known += (known.empty() ? "" : ", ") + field.name;
      fail("model 's3rec': attribute_fields names '{}', which the item features do not have (fields: {})", name, known);
    }
  }
  // Attribute ids: each field's known values (vocabulary indices from 2 on), fields one after another.
  std::vector<int64_t> field_offset;
  for (const data::EncodedField* field : fields) {
    field_offset.push_back(attribute_count_);
    attribute_count_ += std::max(0, field->vocabulary_size() - 2);
  }
  if (attribute_count_ == 0) fail("model 's3rec': the item features hold no attribute of a training item");
  attribute_offsets_.assign(1, 0);
  for (int32_t item = 0; item < item_count; ++item) {
    for (size_t f = 0; f < fields.size(); ++f)
      for (const int32_t* index = fields[f]->begin(item); index != fields[f]->end(item); ++index)
        if (*index >= 2) attribute_ids_.push_back(field_offset[f] + *index - 2);
    attribute_offsets_.push_back(static_cast<int64_t>(attribute_ids_.size()));
  }
}

void S3rec::lay_out_samples(const data::Sequences& train) {
  // The reference pre-trains on every prefix of each user's last max_length training items.
  const int64_t window = encoder_config_.max_length;
  for (int32_t user = 0; user < train.user_count(); ++user) {
    const int64_t length = train.length(user);
    long_sequence_.insert(long_sequence_.end(), train.begin(user), train.end(user));
    const int64_t kept = std::min(length, window);
    const int64_t start = static_cast<int64_t>(window_items_.size());
    window_items_.insert(window_items_.end(), train.end(user) - kept, train.end(user));
    for (int64_t prefix = 1; prefix <= kept; ++prefix) {
      sample_start_.push_back(start);
      sample_length_.push_back(static_cast<int32_t>(prefix));
    }
  }
}

std::string S3rec::encoder_state() const { return nlohmann::json{{"attributes", attribute_count_}}.dump(); }

PretrainViews S3rec::sample_views(int32_t sample, int64_t epoch) const {
  return make_pretrain_views(window_items_.data() + sample_start_[sample], sample_length_[sample], long_sequence_,
                             context_.item_count, pretrain_config_.mask_p,
                             mix_seed(context_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(sample)));
}

LossParts S3rec::pretrain_loss(const std::vector<int32_t>& samples, int64_t epoch) {
  const int64_t batch = static_cast<int64_t>(samples.size());
  if (batch == 0) fail("s3rec: an empty pre-training batch");
  const int64_t mask = static_cast<int64_t>(context_.item_count) + 1;
  std::vector<PretrainViews> views;
  views.reserve(samples.size());
  int64_t length = 1;
  for (int32_t sample : samples) {
    if (sample < 0 || sample >= pretrain_sample_count()) fail("s3rec: no pre-training sample {}", sample);
    views.push_back(sample_views(sample, epoch));
    length = std::max<int64_t>(length, static_cast<int64_t>(views.back().items.size()));
  }
  // Right-aligned rows (0 = padding), as the encoder takes them; SP's rows only for samples with a segment.
  auto padded = [&](std::vector<int64_t> PretrainViews::*view, bool segments_only) {
    std::vector<int64_t> out;
    for (const PretrainViews& v : views) {
      if (segments_only && !v.has_segment) continue;
      const std::vector<int64_t>& row = v.*view;
      out.insert(out.end(), static_cast<size_t>(length) - row.size(), 0);
      out.insert(out.end(), row.begin(), row.end());
    }
    const int64_t rows = static_cast<int64_t>(out.size()) / length;
    return torch::tensor(out, torch::kLong).view({rows, length}).to(context_.device);
  };
  auto items = padded(&PretrainViews::items, false);
  auto masked_items = padded(&PretrainViews::masked_items, false);
  auto negative_items = padded(&PretrainViews::negative_items, false);

  S3recModuleImpl& m = *module_;
  SasrecEncoderImpl& encoder = *m.encoder;
  const Bidirectional bidirectional(encoder);
  const int64_t d = encoder_config_.dim;
  auto hidden = encoder.forward(masked_items).reshape({-1, d});  // [B * L, d]
  auto flat_items = items.reshape({-1}), flat_masked = masked_items.reshape({-1});
  auto masked_rows = flat_masked.eq(mask).nonzero().squeeze(1);
  auto seen_rows = flat_items.gt(0).logical_and(flat_masked.ne(mask)).nonzero().squeeze(1);

  // The attribute pairs of the items at `rows` (row index within `rows`, attribute id).
  auto attribute_pairs = [&](const torch::Tensor& rows) {
    auto item_ids = flat_items.index_select(0, rows).to(torch::kCPU);
    const int64_t* ids = item_ids.data_ptr<int64_t>();
    std::vector<int64_t> pair_rows, pair_attributes;
    for (int64_t r = 0; r < item_ids.size(0); ++r) {
      const int64_t item = ids[r] - 1;
      for (int64_t k = attribute_offsets_[item]; k < attribute_offsets_[item + 1]; ++k) {
        pair_rows.push_back(r);
        pair_attributes.push_back(attribute_ids_[k]);
      }
    }
    return std::make_pair(torch::tensor(pair_rows, torch::kLong).to(context_.device),
                          torch::tensor(pair_attributes, torch::kLong).to(context_.device));
  };
  const torch::Tensor& attributes = m.attribute_embedding->weight;

  // AAP: an item seen in the input <-> its attributes. MAP: a masked position's context <-> the item's attributes.
  const auto [seen_pair_rows, seen_pair_attributes] = attribute_pairs(seen_rows);
  auto aap = attribute_prediction_loss(m.aap(hidden.index_select(0, seen_rows)), attributes, seen_pair_rows,
                                       seen_pair_attributes);
  auto masked_hidden = hidden.index_select(0, masked_rows);
  const auto [masked_pair_rows, masked_pair_attributes] = attribute_pairs(masked_rows);
  auto map = attribute_prediction_loss(m.map(masked_hidden), attributes, masked_pair_rows, masked_pair_attributes);
  // MIP: a masked position's context <-> the masked item, against a sampled item.
  auto negative_rows = negative_items.reshape({-1}).index_select(0, masked_rows);
  auto mip = pairwise_prediction_loss(m.mip(masked_hidden),
                                      encoder.item_embedding(flat_items.index_select(0, masked_rows)),
                                      encoder.item_embedding(negative_rows));
  // SP: the sequence with a segment masked <-> the segment, against a slice of another sequence; each encoded by
  // the last position's representation. A batch of one-item samples has no segment: SP is then 0, still computed
  // from W_sp so that every parameter has a gradient at every step (Adam then moves the same parameters in a
  // resumed run as in an uninterrupted one).
  torch::Tensor sp = m.sp->weight.sum() * 0.0 + m.sp->bias.sum() * 0.0;
  if (std::any_of(views.begin(), views.end(), [](const PretrainViews& v) { return v.has_segment; })) {
    auto context = encoder.encode_last(padded(&PretrainViews::segment_context, true));
    auto positive = encoder.encode_last(padded(&PretrainViews::positive_segment, true));
    auto negative = encoder.encode_last(padded(&PretrainViews::negative_segment, true));
    sp = pairwise_prediction_loss(m.sp(context), positive, negative);
  }

  // Sums over the batch as the reference, then per sample (the trainer's unit; Adam does not see the scale).
  const double per_sample = 1.0 / static_cast<double>(batch);
  aap = aap * per_sample, mip = mip * per_sample, map = map * per_sample, sp = sp * per_sample;
  const S3recPretrainConfig& w = pretrain_config_;
  auto total = w.aap_weight * aap + w.mip_weight * mip + w.map_weight * map + w.sp_weight * sp;
  return LossParts{total, {{"aap", aap}, {"mip", mip}, {"map", map}, {"sp", sp}}};
}

LossParts S3rec::loss(const TensorBatch& batch) {
  auto hidden = encoder()->forward(batch.input);
  auto sr = next_item_loss(encoder_config_, *encoder(), hidden, batch);
  return LossParts{sr, {{"sr", sr}}};
}

EMBREC_REGISTER_MODEL("s3rec", S3rec);
EMBREC_REGISTER_PRETRAIN("s3rec", S3rec);

}  // namespace embrec::models
