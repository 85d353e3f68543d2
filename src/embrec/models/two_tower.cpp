// Two towers over ids and features, the log-Q corrected sampled softmax, and the item-side self-supervised loss.
#include "embrec/models/two_tower.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "embrec/models/losses/info_nce.h"
#include "embrec/models/losses/sampled_softmax.h"
#include "embrec/util/error.h"

namespace embrec::models {

namespace F = torch::nn::functional;

TwoTowerConfig TwoTowerConfig::from(ConfigTable& table) {
  TwoTowerConfig c;
  c.dim = table.get_positive("dim", c.dim);
  c.embedding_dim = table.get_positive("embedding_dim", c.embedding_dim);
  c.hidden = table.get("hidden", c.hidden);
  for (int64_t width : c.hidden) table.check(width > 0, "hidden", "every layer width must be positive");
  c.dropout = table.get_in_range("dropout", c.dropout, "[0, 1)");
  c.init_std = table.get_positive("init_std", c.init_std);
  c.item_id = table.get("item_id", c.item_id);
  c.id_dropout = table.only(c.item_id, "to item_id = true").get_in_range("id_dropout", c.id_dropout, "[0, 1)");
  c.user_id = table.get("user_id", c.user_id);
  c.user_id_dropout =
      table.only(c.user_id, "to user_id = true").get_in_range("user_id_dropout", c.user_id_dropout, "[0, 1)");
  c.item_features = table.get("item_features", c.item_features);
  c.user_features = table.get("user_features", c.user_features);
  c.history = table.get_one_of("history", c.history, kUserHistoryNames);
  c.temperature = table.get_positive("temperature", c.temperature);
  c.logq = table.get_one_of("logq", c.logq, kLogQNames);
  c.streaming_alpha =
      table.only(c.logq == LogQ::Streaming, "to logq = \"streaming\"").get_in_range("streaming_alpha", c.streaming_alpha, "(0, 1]");
  c.extra_negatives = table.get_at_least("extra_negatives", c.extra_negatives, int64_t{0});
  c.max_pairs = table.get_at_least("max_pairs", c.max_pairs, int64_t{2});
  c.ssl_weight = table.get_at_least("ssl_weight", c.ssl_weight, 0.0);
  auto ssl = table.only(c.ssl_weight > 0, "when ssl_weight > 0");
  c.ssl_temperature = ssl.get_positive("ssl_temperature", c.ssl_temperature);
  c.ssl_batch = ssl.get_positive("ssl_batch", c.ssl_batch);
  c.augmentation = ssl.get_one_of("augmentation", c.augmentation, kAugmentationNames);
  c.mask_ratio = table.only(c.ssl_weight > 0 && c.augmentation == Augmentation::Mask, "to augmentation = \"mask\"")
                     .get_in_range("mask_ratio", c.mask_ratio, "(0, 1)");
  c.dropout_ratio =
      table.only(c.ssl_weight > 0 && c.augmentation == Augmentation::Dropout, "to augmentation = \"dropout\"")
          .get_in_range("dropout_ratio", c.dropout_ratio, "(0, 1)");
  table.check(c.item_id || c.item_features, "item_id", "an item tower needs the id or the features");
  return c;
}

// ---- the tower ----

TowerImpl::TowerImpl(int64_t id_count, bool use_id_embedding, const std::vector<int64_t>& vocab_sizes,
                     bool with_history, const TwoTowerConfig& config)
    : use_id(use_id_embedding) {
  const int64_t e = config.embedding_dim;
  int64_t width = 0;
  if (use_id) {
    // Row 0, masked or unknown, is all zeros and never trained: the one "no id" input that id dropout teaches.
    id_embedding = register_module("id", torch::nn::Embedding(torch::nn::EmbeddingOptions(id_count + 1, e).padding_idx(0)));
    width += e;
  }
  for (size_t f = 0; f < vocab_sizes.size(); ++f) {
    fields.push_back(register_module(
        "field" + std::to_string(f),
        torch::nn::EmbeddingBag(torch::nn::EmbeddingBagOptions(vocab_sizes[f], e).mode(torch::kMean))));
    width += e;
  }
  if (with_history) width += e;
  {
    torch::NoGradGuard no_grad;
    if (use_id) {
      id_embedding->weight.normal_(0.0, config.init_std);
      id_embedding->weight[0].zero_();  // the padding row stays the zero "no id"
    }
    for (auto& field : fields) field->weight.normal_(0.0, config.init_std);
  }
  mlp = register_module("mlp", torch::nn::Sequential());
  for (int64_t hidden : config.hidden) {
    mlp->push_back(torch::nn::Linear(width, hidden));
    mlp->push_back(torch::nn::ReLU());
    if (config.dropout > 0) mlp->push_back(torch::nn::Dropout(config.dropout));
    width = hidden;
  }
  mlp->push_back(torch::nn::Linear(width, config.dim));
}

torch::Tensor TowerImpl::forward(const TowerInput& input) {
  std::vector<torch::Tensor> parts;
  if (use_id) parts.push_back(id_embedding->forward(input.ids));
  for (size_t f = 0; f < fields.size(); ++f) parts.push_back(fields[f]->forward(input.values[f], input.offsets[f]));
  if (input.history.defined()) parts.push_back(input.history);
  return F::normalize(mlp->forward(torch::cat(parts, 1)), F::NormalizeFuncOptions().dim(1).eps(1e-12));
}

// ---- augmentations ----

ViewMasks augmentation_masks(Augmentation kind, int64_t count, int64_t fields, double mask_ratio,
                             const std::vector<std::vector<int64_t>>& correlated, uint64_t seed) {
  ViewMasks masks;
  masks.first.assign(static_cast<size_t>(count * fields), 0);
  masks.second.assign(static_cast<size_t>(count * fields), 0);
  if (kind == Augmentation::Dropout || fields == 0) return masks;  // dropout acts on values, not fields
  std::mt19937_64 random(seed);
  std::vector<int64_t> order(static_cast<size_t>(fields));
  for (int64_t n = 0; n < count; ++n) {
    uint8_t* first = masks.first.data() + n * fields;
    uint8_t* second = masks.second.data() + n * fields;
    if (kind == Augmentation::Mask) {
      std::bernoulli_distribution masked(mask_ratio);
      for (int64_t f = 0; f < fields; ++f) {
        first[f] = masked(random);
        second[f] = masked(random);
      }
      continue;
    }
    // Complementary: a random half of the fields in one view, the rest in the other. Correlated: a random seed
    // field and the fields most correlated with it (half of them) in one view, the rest in the other.
    std::vector<int64_t> chosen;
    if (kind == Augmentation::Complementary || correlated.empty()) {
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), random);
      chosen.assign(order.begin(), order.begin() + fields / 2 + (fields % 2 ? static_cast<int64_t>(random() % 2) : 0));
    } else {
      chosen = correlated[static_cast<size_t>(random() % static_cast<uint64_t>(fields))];
    }
    for (int64_t f = 0; f < fields; ++f) second[f] = 1;
    for (int64_t f : chosen) {
      first[f] = 1;
      second[f] = 0;
    }
  }
  return masks;
}

std::vector<int64_t> uniform_items(int64_t count, int64_t item_count, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<int64_t> item(0, item_count - 1);
  std::vector<int64_t> out(static_cast<size_t>(count));
  for (int64_t& value : out) value = item(random);
  return out;
}

// ---- the model ----

namespace {

// The EmbeddingBag input of `entities` for one field, with masked fields and dropped values replaced by index 0.
void field_input(const data::EncodedField& field, const std::vector<int64_t>& entities,
                 const std::vector<uint8_t>& masked, int64_t field_column, int64_t columns, double value_dropout,
                 std::mt19937_64& random, std::vector<int64_t>& values, std::vector<int64_t>& offsets) {
  values.clear();
  offsets.clear();
  std::bernoulli_distribution drop(value_dropout);
  for (size_t n = 0; n < entities.size(); ++n) {
    offsets.push_back(static_cast<int64_t>(values.size()));
    const bool field_masked = !masked.empty() && masked[n * columns + field_column];
    if (!field_masked) {
      const int32_t entity = static_cast<int32_t>(entities[n]);
      for (const int32_t* it = field.begin(entity); it != field.end(entity); ++it)
        if (*it != data::kMissingIndex && (value_dropout <= 0 || !field.multi_valued || !drop(random)))
          values.push_back(*it);
    }
    if (static_cast<int64_t>(values.size()) == offsets.back()) values.push_back(data::kMissingIndex);  // the default
  }
}

int64_t field_count(const data::EncodedFeatures& features) { return static_cast<int64_t>(features.fields.size()); }

}  // namespace

namespace {

// The vocabularies of an export's encoder (encoder_state): per side, each field's name, kind and values.
nlohmann::json vocabularies_to_json(const data::EncodedFeatures& features) {
  nlohmann::json fields = nlohmann::json::array();
  for (const data::EncodedField& field : features.fields)
    fields.push_back({{"name", field.name}, {"multi_valued", field.multi_valued}, {"vocabulary", field.vocabulary}});
  return fields;
}

data::EncodedFeatures vocabularies_from_json(const nlohmann::json& fields) {
  data::EncodedFeatures features;  // no entities: a served model encodes fresh ones by name (data::encode_entity)
  for (const nlohmann::json& entry : fields) {
    data::EncodedField field;
    field.name = entry.at("name").get<std::string>();
    field.multi_valued = entry.at("multi_valued").get<bool>();
    field.vocabulary = entry.at("vocabulary").get<std::vector<std::string>>();
    if (field.vocabulary.size() < 2) fail("field '{}' has no <missing> and <oov> entries", field.name);
    for (size_t k = 2; k < field.vocabulary.size(); ++k) field.index.emplace(field.vocabulary[k], static_cast<int32_t>(k));
    features.fields.push_back(std::move(field));
  }
  return features;
}

}  // namespace

TwoTower::TwoTower(const TwoTowerConfig& config, const ModelContext& context) : config_(config), context_(context) {
  if (context.dataset && context.split) {
    const data::Dataset& dataset = *context.dataset;
    const data::Sequences& train = context.split->train;
    item_trained_ = data::items_in(train, context.item_count);
    if (config.item_features && !dataset.item_features.empty())
      item_features_ = data::encode_features(dataset.item_features, item_trained_);
    if (config.user_features && !dataset.user_features.empty())
      user_features_ = data::encode_features(dataset.user_features, data::users_with_interactions(train));
  } else if (!context.encoder_state.empty()) {
    // An export's encoder: the vocabularies come from encoder_state(); no item is known as trained (the served
    // model only encodes fresh users; item vectors are in the index).
    try {
      const nlohmann::json state = nlohmann::json::parse(context.encoder_state);
      item_features_ = vocabularies_from_json(state.at("item_fields"));
      user_features_ = vocabularies_from_json(state.at("user_fields"));
    } catch (const std::exception& error) {
      fail("model 'two_tower': the encoder state (feature vocabularies) is unreadable: {}", error.what());
    }
    item_trained_.assign(static_cast<size_t>(context.item_count), 0);
  } else {
    fail("model 'two_tower': needs the training data to build its feature vocabularies (or, in an export, the "
         "encoder state that holds them)");
  }
  const int64_t features = field_count(item_features_);
  if (config.ssl_weight > 0 && config.augmentation == Augmentation::Correlated && features > 0 && context.dataset) {    // The id is field 0 of the item tower when it has one; it correlates with nothing, so it is masked alone.
    const int64_t offset = config.item_id ? 1 : 0;
    const int32_t group_size = std::max<int32_t>(
        1, std::min<int32_t>(static_cast<int32_t>(features), data::half_of_fields(static_cast<int32_t>(features + offset))));
    const std::vector<std::vector<int32_t>> groups =
        data::correlated_groups(data::field_mutual_information(item_features_, item_trained_), group_size);
    if (config.item_id) correlated_.push_back({0});
    for (const std::vector<int32_t>& group : groups) {
      correlated_.emplace_back();
      for (int32_t member : group) correlated_.back().push_back(member + offset);
    }
  }
  std::vector<int64_t> item_vocab, user_vocab;
  for (const data::EncodedField& field : item_features_.fields) item_vocab.push_back(field.vocabulary_size());
  for (const data::EncodedField& field : user_features_.fields) user_vocab.push_back(field.vocabulary_size());
  const bool history = config.history == UserHistory::Mean;
  item_tower_ = module_.register_module("item_tower", Tower(context.item_count, config.item_id, item_vocab, false, config));
  user_tower_ = module_.register_module("user_tower", Tower(context.user_count, config.user_id, user_vocab, history, config));
  if (history)
    history_embedding_ = module_.register_module(
        "history", torch::nn::Embedding(torch::nn::EmbeddingOptions(context.item_count + 1, config.embedding_dim).padding_idx(0)));
  if (history) {
    torch::NoGradGuard no_grad;
    history_embedding_->weight.normal_(0.0, config.init_std);
    history_embedding_->weight[0].zero_();
  }
  if (config.logq == LogQ::Counts) item_log_q_ = module_.register_buffer("item_log_q", torch::zeros({context.item_count}));
  if (config.logq == LogQ::Streaming)
    frequency_ = losses::StreamingFrequency(module_, "frequency_", context.item_count, config.streaming_alpha);
  step_ = module_.register_buffer("step", torch::zeros({}, torch::kFloat64));
  module_.to(context.device);
  context_.dataset = nullptr;  // only valid while constructing
  context_.split = nullptr;
}

void TwoTower::fit(const data::Split& split) {
  if (config_.logq != LogQ::Counts) return;
  torch::NoGradGuard no_grad;
  item_log_q_.copy_(losses::log_training_share(split.train.items, context_.item_count));
}

data::SamplerOptions TwoTower::sampler_options(const data::SamplerOptions& defaults) const {
  data::SamplerOptions options = defaults;
  options.all_items = true;  // every training (user, item) pair once an epoch, as MF
  return options;
}

TowerInput TwoTower::item_input(const std::vector<int64_t>& items, const std::vector<uint8_t>& masked,
                                double value_dropout, uint64_t seed) const {
  const int64_t offset = config_.item_id ? 1 : 0;
  const int64_t columns = offset + field_count(item_features_);
  std::vector<int64_t> ids(items.size());
  for (size_t n = 0; n < items.size(); ++n) {
    const bool id_masked = config_.item_id && !masked.empty() && masked[n * columns];
    // An item never trained on has an untrained id row: it is served by its features alone.
    ids[n] = id_masked || !item_trained_[items[n]] ? 0 : items[n] + 1;
  }
  TowerInput input;
  input.ids = torch::tensor(ids).to(context_.device);
  std::mt19937_64 random(seed);
  std::vector<int64_t> values, offsets;
  for (int64_t f = 0; f < field_count(item_features_); ++f) {
    field_input(item_features_.fields[f], items, masked, f + offset, columns, value_dropout, random, values, offsets);
    input.values.push_back(torch::tensor(values).to(context_.device));
    input.offsets.push_back(torch::tensor(offsets).to(context_.device));
  }
  return input;
}

TowerInput TwoTower::user_input(const std::vector<int64_t>& users, const torch::Tensor& history, double id_dropout,
                                uint64_t seed) const {
  TowerInput input;
  std::vector<int64_t> ids(users.size());
  std::mt19937_64 random(seed);
  std::bernoulli_distribution masked(id_dropout);
  for (size_t n = 0; n < users.size(); ++n) ids[n] = id_dropout > 0 && masked(random) ? 0 : users[n] + 1;
  input.ids = torch::tensor(ids).to(context_.device);
  std::mt19937_64 unused;
  std::vector<int64_t> values, offsets;
  for (const data::EncodedField& field : user_features_.fields) {
    field_input(field, users, {}, 0, 1, 0.0, unused, values, offsets);
    input.values.push_back(torch::tensor(values).to(context_.device));
    input.offsets.push_back(torch::tensor(offsets).to(context_.device));
  }
  input.history = history;
  return input;
}

torch::Tensor TwoTower::pooled_history(const torch::Tensor& items_plus_one) {
  const torch::Tensor embedded = history_embedding_->forward(items_plus_one);  // padding rows are 0
  const torch::Tensor counts = items_plus_one.ne(0).sum(1, true).clamp_min(1).to(embedded.scalar_type());
  return embedded.sum(1) / counts;
}

LossParts TwoTower::loss(const TensorBatch& batch) {
  // The batch's (user, item) pairs: every training item of each row's user (all_items).
  const torch::Tensor mask = batch.target.ne(0);
  const torch::Tensor rows = torch::arange(batch.target.size(0), batch.target.options()).unsqueeze(1).expand_as(batch.target).masked_select(mask);
  const torch::Tensor items = batch.target.masked_select(mask) - 1;
  const torch::Tensor users = batch.users.index_select(0, rows);
  const torch::Tensor item_cpu = items.cpu().contiguous();
  const std::vector<int64_t> item_list(item_cpu.data_ptr<int64_t>(), item_cpu.data_ptr<int64_t>() + item_cpu.numel());

  const uint64_t seed = context_.seed * 1000003ULL + static_cast<uint64_t>(batch.epoch) * 7919ULL +
                        static_cast<uint64_t>(batch.batch_index) + 17;
  torch::Tensor history;
  if (config_.history == UserHistory::Mean) {
    // The mean of the user's other training items: the row's sum less the target, over (n - 1).
    const torch::Tensor embedded = history_embedding_->forward(batch.target);          // [B, L, e]
    const torch::Tensor sums = embedded.sum(1).index_select(0, rows);                    // [P, e]
    const torch::Tensor counts = mask.sum(1).index_select(0, rows).unsqueeze(1).to(sums.scalar_type());
    history = (sums - history_embedding_->forward(items + 1)) / (counts - 1).clamp_min(1);
  }
  torch::Tensor user;
  if (history.defined()) {
    const torch::Tensor user_cpu = users.cpu().contiguous();
    const std::vector<int64_t> user_list(user_cpu.data_ptr<int64_t>(), user_cpu.data_ptr<int64_t>() + user_cpu.numel());
    user = user_tower_->forward(user_input(user_list, history, config_.user_id_dropout, seed + 4)) /
           config_.temperature;  // per pair
  } else {
    // Without a history a user's vector is the same for all its pairs: once per row, then gathered.
    const torch::Tensor row_users = batch.users.cpu().contiguous();
    const std::vector<int64_t> row_list(row_users.data_ptr<int64_t>(), row_users.data_ptr<int64_t>() + row_users.numel());
    user = (user_tower_->forward(user_input(row_list, {}, config_.user_id_dropout, seed + 4)) / config_.temperature)
               .index_select(0, rows);
  }
  std::vector<uint8_t> id_masked;
  if (config_.id_dropout > 0) {
    // Only the id column (column 0 of the item tower's fields) is masked.
    const int64_t columns = 1 + field_count(item_features_);
    id_masked.assign(item_list.size() * static_cast<size_t>(columns), 0);
    std::mt19937_64 random(seed + 2);
    std::bernoulli_distribution masked(config_.id_dropout);
    for (size_t n = 0; n < item_list.size(); ++n) id_masked[n * columns] = masked(random);
  }
  const torch::Tensor item = item_tower_->forward(item_input(item_list, id_masked, 0.0, 0));

  torch::Tensor log_q;
  if (config_.logq == LogQ::Counts) log_q = item_log_q_.index_select(0, items);
  if (config_.logq == LogQ::Streaming) {
    // Every rank of a data-parallel job counts the whole batch's items, so their estimates stay the same.
    frequency_.update(gather_rows(batch.gather, items).all, static_cast<int64_t>(step_.item<double>()));
    log_q = frequency_.log_probability(items).to(user.device());
    step_.add_(1);
  }
  torch::Tensor extra, extra_ids, extra_log_q;
  if (config_.extra_negatives > 0) {
    const std::vector<int64_t> drawn = uniform_items(config_.extra_negatives, context_.item_count, seed);
    extra = item_tower_->forward(item_input(drawn, {}, 0.0, 0));
    extra_ids = torch::tensor(drawn).to(items.device());
    // A uniform draw's probability, on the scale of the in-batch correction (per candidate slot).
    if (log_q.defined())
      extra_log_q = torch::full({config_.extra_negatives}, -std::log(static_cast<double>(context_.item_count)),
                                log_q.options());
  }
  // In a data-parallel job the softmaxes run over the whole batch's pairs (this rank's share of the loss).
  const torch::Tensor main = losses::chunked_sampled_softmax_loss(user, item, items, log_q, config_.max_pairs, seed + 1,
                                                                 extra, extra_ids, extra_log_q, batch.gather) *
                             share_to_mean(batch.gather, batch.users);
  LossParts out;
  out.parts.emplace_back("softmax", main.detach());
  out.total = main;
  if (config_.ssl_weight > 0) {
    const torch::Tensor ssl = ssl_loss(batch);
    out.parts.emplace_back("ssl", ssl.detach());
    out.total = main + config_.ssl_weight * ssl;
  }
  return out;
}

// Yao et al. (2021), Eq. 1-3: two augmented views of uniformly drawn items, a softmax over the batch's second
// views with cosine / ssl_temperature.
torch::Tensor TwoTower::ssl_loss(const TensorBatch& batch) {
  const uint64_t seed = context_.seed * 2654435761ULL + static_cast<uint64_t>(batch.epoch) * 1000003ULL +
                        static_cast<uint64_t>(batch.batch_index);
  const std::vector<int64_t> items = uniform_items(config_.ssl_batch, context_.item_count, seed);
  const int64_t fields = (config_.item_id ? 1 : 0) + field_count(item_features_);
  const ViewMasks masks =
      augmentation_masks(config_.augmentation, config_.ssl_batch, fields, config_.mask_ratio, correlated_, seed + 1);
  const double value_dropout = config_.augmentation == Augmentation::Dropout ? config_.dropout_ratio : 0.0;
  const torch::Tensor first = item_tower_->forward(item_input(items, masks.first, value_dropout, seed + 2));
  const torch::Tensor second = item_tower_->forward(item_input(items, masks.second, value_dropout, seed + 3));
  losses::InfoNceOptions options;
  options.temperature = config_.ssl_temperature;
  options.similarity = Similarity::Cosine;
  options.anchor_negatives = false;
  return losses::info_nce(first, second, options);
}

torch::Tensor TwoTower::user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) {
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> ids(users, users + count);
  torch::Tensor history;
  if (config_.history == UserHistory::Mean) {
    int64_t longest = 1;
    for (int32_t n = 0; n < count; ++n) longest = std::max(longest, histories.length(users[n]));
    std::vector<int64_t> padded(static_cast<size_t>(count * longest), 0);
    for (int32_t n = 0; n < count; ++n) {
      int64_t k = 0;
      for (const int32_t* it = histories.begin(users[n]); it != histories.end(users[n]); ++it)
        padded[n * longest + k++] = *it + 1;
    }
    history = pooled_history(torch::tensor(padded).view({count, longest}).to(context_.device));
  }
  return (user_tower_->forward(user_input(ids, history)) / config_.temperature).to(torch::kCPU, torch::kFloat32).contiguous();
}

torch::Tensor TwoTower::fresh_user_vector(const std::vector<int32_t>& history, const data::FeatureValues& features) {
  if (!features.empty() && user_features_.fields.empty())
    throw InputError(fmt::format("model 'two_tower' was trained without user features (got '{}')",
                                 features.begin()->first));
  const std::vector<std::vector<int32_t>> indices = data::encode_entity(user_features_, features);
  torch::NoGradGuard no_grad;
  TowerInput input;
  input.ids = torch::zeros({1}, torch::TensorOptions(torch::kLong).device(context_.device));  // an unknown user
  for (const std::vector<int32_t>& field : indices) {
    std::vector<int64_t> values(field.begin(), field.end());
    if (values.empty()) values.push_back(data::kMissingIndex);  // no value: the field's default, as in training
    input.values.push_back(torch::tensor(values).to(context_.device));
    input.offsets.push_back(torch::zeros({1}, torch::TensorOptions(torch::kLong).device(context_.device)));
  }
  if (config_.history == UserHistory::Mean) {
    std::vector<int64_t> ids;
    for (int32_t item : history) ids.push_back(item + 1);
    if (ids.empty()) ids.push_back(0);  // only padding: pools to zeros, as for a user with one training item
    input.history = pooled_history(torch::tensor(ids).view({1, -1}).to(context_.device));
  }
  return (user_tower_->forward(input) / config_.temperature).to(torch::kCPU, torch::kFloat32).contiguous();
}

std::string TwoTower::encoder_state() const {
  return nlohmann::json{{"item_fields", vocabularies_to_json(item_features_)},
                        {"user_fields", vocabularies_to_json(user_features_)}}
      .dump();
}

torch::Tensor TwoTower::item_vectors() {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> items(static_cast<size_t>(context_.item_count));
  std::iota(items.begin(), items.end(), 0);
  return item_tower_->forward(item_input(items, {}, 0.0, 0)).to(torch::kCPU, torch::kFloat32).contiguous();
}

EMBREC_REGISTER_MODEL("two_tower", TwoTower);

}  // namespace embrec::models
