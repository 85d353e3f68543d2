// The news models' shared layers, item text and base: masking, attention, embeddings, item and user vectors.
#include "embrec/models/news_layers.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>

#include "embrec/util/error.h"

namespace embrec::models {

namespace {

// The most negative finite value of a floating type: masked logits take it rather than -inf, so that a slice
// without any real position has a finite softmax (then zeroed by the mask) instead of NaN.
double lowest_finite(torch::ScalarType type) {
  switch (type) {
    case torch::kDouble:
      return std::numeric_limits<double>::lowest();
    case torch::kHalf:
      return -65504.0;
    default:
      return std::numeric_limits<float>::lowest();  // float and bfloat16 share the exponent range
  }
}

// Eval mode and no autograd for a scope; the module's mode is restored after.
class Inference {
 public:
  explicit Inference(torch::nn::Module& module) : module_(module), was_training_(module.is_training()) {
    module_.eval();
  }
  ~Inference() { module_.train(was_training_); }
  Inference(const Inference&) = delete;
  Inference& operator=(const Inference&) = delete;

 private:
  torch::nn::Module& module_;
  bool was_training_;
  torch::NoGradGuard no_grad_;
};

torch::Tensor long_tensor(const std::vector<int64_t>& values, torch::Device device) {
  return torch::tensor(values, torch::kLong).to(device);
}

}  // namespace

// ---- layers ------------------------------------------------------------------------------------------------

torch::Tensor masked_softmax(const torch::Tensor& logits, const torch::Tensor& mask, int64_t dim) {
  auto filled = logits.masked_fill(mask.logical_not(), lowest_finite(logits.scalar_type()));
  return torch::softmax(filled, dim) * mask.to(logits.scalar_type());
}

AdditiveAttentionImpl::AdditiveAttentionImpl(int64_t input_dim, int64_t hidden) {
  projection = register_module("projection", torch::nn::Linear(input_dim, hidden));
  query = register_module("query", torch::nn::Linear(torch::nn::LinearOptions(hidden, 1).bias(false)));
}

torch::Tensor AdditiveAttentionImpl::weights(const torch::Tensor& values, const torch::Tensor& mask) {
  auto logits = query(torch::tanh(projection(values))).squeeze(-1);
  return masked_softmax(logits, mask, 1);
}

torch::Tensor AdditiveAttentionImpl::forward(const torch::Tensor& values, const torch::Tensor& mask) {
  return torch::bmm(weights(values, mask).unsqueeze(1), values).squeeze(1);
}

MultiHeadSelfAttentionImpl::MultiHeadSelfAttentionImpl(int64_t input_dim, int64_t heads_in, int64_t head_dim_in)
    : heads(heads_in), head_dim(head_dim_in) {
  const int64_t out = heads * head_dim;
  query = register_module("query", torch::nn::Linear(torch::nn::LinearOptions(input_dim, out).bias(false)));
  key = register_module("key", torch::nn::Linear(torch::nn::LinearOptions(input_dim, out).bias(false)));
  value = register_module("value", torch::nn::Linear(torch::nn::LinearOptions(input_dim, out).bias(false)));
}

torch::Tensor MultiHeadSelfAttentionImpl::forward(const torch::Tensor& input, const torch::Tensor& mask) {
  const int64_t n = input.size(0), length = input.size(1);
  auto split = [&](const torch::Tensor& x) { return x.view({n, length, heads, head_dim}).transpose(1, 2); };
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  auto q = split(query(input) * scale), k = split(key(input)), v = split(value(input));  // [N, h, L, hd]
  // Padded keys take the lowest finite logit in place (the scores are this function's own, and the product's
  // backward does not need them): in every row with a real key their weight is then exactly 0. A row without any
  // (an all-padding title) gets finite uniform weights, and its output is masked by the caller; not multiplying the
  // [N, h, L, L] weights by the mask saves a pass over the largest tensor of NRMS.
  auto scores = torch::matmul(q, k.transpose(-1, -2));
  scores.masked_fill_(mask.view({n, 1, 1, length}).logical_not(), lowest_finite(scores.scalar_type()));
  return torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({n, length, heads * head_dim});
}

torch::nn::Embedding make_word_embedding(int64_t vocabulary_size, int64_t dim,
                                         const data::PretrainedEmbedding* pretrained, const std::string& model_name) {
  torch::nn::Embedding embedding(torch::nn::EmbeddingOptions(vocabulary_size, dim).padding_idx(0));
  torch::NoGradGuard no_grad;
  torch::Tensor weight = embedding->weight;
  if (pretrained != nullptr && pretrained->dimension > 0) {
    if (pretrained->dimension != dim)
      fail("{}: key 'model.word_dim' is {} but the pre-trained word vectors have dimension {}; set word_dim = {}",
           model_name, dim, pretrained->dimension, pretrained->dimension);
    if (static_cast<int64_t>(pretrained->values.size()) != vocabulary_size * dim ||
        static_cast<int64_t>(pretrained->found.size()) != vocabulary_size)
      fail("{}: the pre-trained embedding has {} rows, the vocabulary {} words", model_name, pretrained->found.size(),
           vocabulary_size);
    auto values =
        torch::from_blob(const_cast<float*>(pretrained->values.data()), {vocabulary_size, dim}, torch::kFloat32);
    auto found = torch::from_blob(const_cast<uint8_t*>(pretrained->found.data()), {vocabulary_size}, torch::kUInt8)
                     .to(torch::kBool);
    const double sigma = pretrained->found_count > 1 ? values.index({found}).std().item<double>() : 0.1;
    weight.normal_(0.0, sigma > 0 ? sigma : 0.1);
    weight.copy_(torch::where(found.unsqueeze(1), values, weight));
  } else {
    weight.normal_(0.0, 0.1);
  }
  weight[0].zero_();
  return embedding;
}

CategoryEncoderImpl::CategoryEncoderImpl(int64_t categories, int64_t subcategories, int64_t category_dim,
                                         int64_t output_dim) {
  category = register_module(
      "category", torch::nn::Embedding(torch::nn::EmbeddingOptions(categories, category_dim).padding_idx(0)));
  subcategory = register_module(
      "subcategory", torch::nn::Embedding(torch::nn::EmbeddingOptions(subcategories, category_dim).padding_idx(0)));
  category_projection = register_module("category_projection", torch::nn::Linear(category_dim, output_dim));
  subcategory_projection = register_module("subcategory_projection", torch::nn::Linear(category_dim, output_dim));
}

torch::Tensor CategoryEncoderImpl::forward(const torch::Tensor& categories, const torch::Tensor& subcategories) {
  return category_projection(category(categories)) + subcategory_projection(subcategory(subcategories));
}

// ---- the items' text ---------------------------------------------------------------------------------------

NewsItems::NewsItems(const data::NewsContent& content, int32_t item_count, torch::Device device) {
  const data::EncodedNews& encoded = content.encoded;
  const int64_t length = encoded.title_length;
  if (length <= 0 || static_cast<int64_t>(encoded.titles.size()) != item_count * length)
    fail("news items: {} title words for {} items of length {}", encoded.titles.size(), item_count, length);
  auto column = [&](const std::vector<int32_t>& values, const char* what) {
    auto out = torch::zeros({item_count + 1}, torch::kLong);
    if (values.empty()) return out;  // no categories read: all unknown
    if (static_cast<int64_t>(values.size()) != item_count)
      fail("news items: {} {} for {} items", values.size(), what, item_count);
    out.narrow(0, 1, item_count)
        .copy_(torch::from_blob(const_cast<int32_t*>(values.data()), {item_count}, torch::kInt32));
    return out;
  };
  titles_ = torch::zeros({item_count + 1, length}, torch::kLong);
  titles_.narrow(0, 1, item_count)
      .copy_(torch::from_blob(const_cast<int32_t*>(encoded.titles.data()), {item_count, length}, torch::kInt32));
  titles_ = titles_.to(device);
  categories_ = column(encoded.categories, "categories").to(device);
  subcategories_ = column(encoded.subcategories, "subcategories").to(device);
}

NewsInput NewsItems::gather(const torch::Tensor& ids) const {
  auto flat = ids.reshape({-1});
  return {titles_.index_select(0, flat), categories_.index_select(0, flat), subcategories_.index_select(0, flat)};
}

nlohmann::json NewsItems::to_json() const {
  auto as_vector = [](const torch::Tensor& t) {
    auto cpu = t.to(torch::kCPU).contiguous();
    return std::vector<int64_t>(cpu.data_ptr<int64_t>(), cpu.data_ptr<int64_t>() + cpu.numel());
  };
  const int64_t items = item_count();
  return {{"title_length", title_length()},
          {"titles", as_vector(titles_.narrow(0, 1, items))},
          {"categories", as_vector(categories_.narrow(0, 1, items))},
          {"subcategories", as_vector(subcategories_.narrow(0, 1, items))}};
}

NewsItems NewsItems::from_json(const nlohmann::json& json, int32_t item_count, torch::Device device,
                               const std::string& model_name) {
  data::NewsContent content;
  try {
    content.encoded.title_length = json.at("title_length").get<int32_t>();
    content.encoded.titles = json.at("titles").get<std::vector<int32_t>>();
    content.encoded.categories = json.at("categories").get<std::vector<int32_t>>();
    content.encoded.subcategories = json.at("subcategories").get<std::vector<int32_t>>();
  } catch (const nlohmann::json::exception& error) {
    fail("{}: encoder state: items: {}", model_name, error.what());
  }
  const int64_t stored = content.encoded.title_length > 0
                             ? static_cast<int64_t>(content.encoded.titles.size()) / content.encoded.title_length
                             : -1;
  if (stored != item_count)
    fail("{}: encoder state holds the text of {} items, the export {}", model_name, stored, item_count);
  return NewsItems(content, item_count, device);
}

NewsInput NewsInput::rows(const torch::Tensor& rows, int64_t length) const {
  return {titles.index_select(0, rows).narrow(1, 0, length), categories.index_select(0, rows),
          subcategories.index_select(0, rows)};
}

NewsInput NewsInput::cut(int64_t length) const { return {titles.narrow(1, 0, length), categories, subcategories}; }

namespace {

// The ladder of group lengths 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, ...: the group of a title of n words.
int64_t length_group(int64_t n) {
  int64_t group = 0;
  for (int64_t step = 1; step < n; ++group)
    step = step < 3 ? step + 1 : ((step & (step - 1)) == 0 ? step / 2 * 3 : step / 3 * 4);
  return group;
}

}  // namespace

torch::Tensor encode_by_title_length(const NewsInput& news,
                                     const std::function<torch::Tensor(const NewsInput&)>& encode) {
  const int64_t count = news.size(), width = news.titles.size(1);
  // A title's length: its last real word (titles are words then padding; an all-padding title counts 1).
  auto positions = torch::arange(1, width + 1, news.titles.options());
  auto lengths_tensor = (news.titles.gt(0) * positions).amax(1).clamp_min(1).to(torch::kCPU).contiguous();
  const int64_t* lengths = lengths_tensor.data_ptr<int64_t>();
  std::vector<std::vector<int64_t>> groups;
  std::vector<int64_t> group_length;
  int64_t longest = 1, tokens = 0;
  for (int64_t i = 0; i < count; ++i) {
    const auto g = static_cast<size_t>(length_group(lengths[i]));
    if (g >= groups.size()) groups.resize(g + 1), group_length.resize(g + 1, 0);
    groups[g].push_back(i);
    group_length[g] = std::max(group_length[g], lengths[i]);
    longest = std::max(longest, lengths[i]);
  }
  for (size_t g = 0; g < groups.size(); ++g) tokens += static_cast<int64_t>(groups[g].size()) * group_length[g];
  // One pass over the batch cut to its longest title when groups would save under a quarter of its words.
  if (tokens * 4 > count * longest * 3) return encode(news.cut(longest));
  std::vector<torch::Tensor> outputs;
  std::vector<int64_t> order;  // the news of each output row
  for (size_t g = 0; g < groups.size(); ++g) {
    if (groups[g].empty()) continue;
    const int64_t n = static_cast<int64_t>(groups[g].size());
    auto rows = torch::from_blob(groups[g].data(), {n}, torch::kLong).to(news.titles.device(), false, /*copy=*/true);
    auto out = encode(news.rows(rows, group_length[g]));
    if (out.dim() == 3 && out.size(1) < longest) out = torch::constant_pad_nd(out, {0, 0, 0, longest - out.size(1)});
    outputs.push_back(out);
    order.insert(order.end(), groups[g].begin(), groups[g].end());
  }
  std::vector<int64_t> inverse(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) inverse[static_cast<size_t>(order[i])] = i;
  auto back = torch::from_blob(inverse.data(), {count}, torch::kLong).to(news.titles.device(), false, /*copy=*/true);
  return torch::cat(outputs, 0).index_select(0, back);
}

UniqueNews unique_news(const torch::Tensor& ids) {
  // A leading 0 makes padding the first row whether or not the batch has any (sorted unique of ids >= 0).
  auto flat = torch::cat({torch::zeros({1}, ids.options()), ids.reshape({-1})});
  auto [values, inverse] = torch::_unique(flat, /*sorted=*/true, /*return_inverse=*/true);
  return {values, inverse.narrow(0, 1, ids.numel()).view(ids.sizes())};
}

// ---- the base ----------------------------------------------------------------------------------------------

NewsModelConfig NewsModelConfig::from(ConfigTable& table) {
  NewsModelConfig c;
  c.word_dim = table.get_positive("word_dim", c.word_dim);
  c.history = table.get_positive("history", c.history);
  c.npratio = table.get_positive("npratio", c.npratio);
  c.dropout = table.get_in_range("dropout", c.dropout, "[0, 1)");
  c.attention_hidden = table.get_positive("attention_hidden", c.attention_hidden);
  c.categories = table.get("categories", c.categories);
  c.category_dim = table.only(c.categories, "to categories = true").get_positive("category_dim", c.category_dim);
  c.encode_batch = table.get_positive("encode_batch", c.encode_batch);
  return c;
}

NewsModel::NewsModel(const NewsModelConfig& common, const ModelContext& context, std::string model_name)
    : common_(common), context_(context), model_name_(std::move(model_name)) {
  context_.dataset = nullptr;
  context_.split = nullptr;
  if (context.dataset != nullptr) {
    if (!context.dataset->news)
      fail("{}: needs news data ([data] format = \"mind\"); dataset '{}' has no news text", model_name_,
           context.dataset->name);
    content_ = context.dataset->news;
    items_ = NewsItems(*content_, context.item_count, context.device);
  } else if (!context.encoder_state.empty()) {
    nlohmann::json items;
    try {
      const nlohmann::json state = nlohmann::json::parse(context.encoder_state);
      content_ =
          std::make_shared<const data::NewsContent>(data::vocabularies_from_json(state.at("vocabularies").dump()));
      items = state.at("items");
    } catch (const nlohmann::json::exception& error) {
      fail("{}: encoder state: {}", model_name_, error.what());
    }
    items_ = NewsItems::from_json(items, context.item_count, context.device, model_name_);
  } else {
    fail("{}: needs news data ([data] format = \"mind\") or an export's encoder state", model_name_);
  }
}

data::SamplerOptions NewsModel::sampler_options(const data::SamplerOptions& defaults) const {
  data::SamplerOptions options = defaults;
  options.impressions = true;
  options.npratio = static_cast<int32_t>(common_.npratio);
  options.max_length = static_cast<int32_t>(common_.history);
  options.negatives = false;
  return options;
}

LossParts NewsModel::loss(const TensorBatch& batch) {
  if (!batch.candidates.defined())
    fail("{}: training needs impression batches (candidates); the sampler gave none", model_name_);
  auto scores = candidate_scores(batch);
  auto clicked = torch::zeros({scores.size(0)}, torch::TensorOptions().dtype(torch::kLong).device(scores.device()));
  auto ce = torch::nn::functional::cross_entropy(scores, clicked);
  return LossParts{ce, {{"ce", ce}}};
}

torch::Tensor NewsModel::fresh_user_vector(const std::vector<int32_t>& history, const data::FeatureValues& features) {
  if (!features.empty())
    throw InputError(fmt::format("model '{}' takes no user features (got '{}')", model_name_, features.begin()->first));
  if (history.empty()) throw InputError(fmt::format("model '{}' needs a non-empty history", model_name_));
  for (int32_t item : history)
    if (item < 0 || item >= items_.item_count())
      throw InputError(fmt::format("model '{}': history item {} has no text known to the model ({} items)", model_name_,
                                   item, items_.item_count()));
  data::Sequences one;
  one.push_user(history.data(), static_cast<int64_t>(history.size()));
  return encode_fresh_user(one);
}

torch::Tensor NewsModel::encode_fresh_user(const data::Sequences& history) {
  const int32_t user = 0;
  return user_vectors(history, &user, 1);
}

torch::Tensor NewsModel::item_vectors() {
  require_items("item vectors");
  Inference inference(module());
  const int32_t items = items_.item_count();
  auto out = torch::empty({items, dim()}, torch::kFloat32);
  for (int32_t start = 0; start < items; start += static_cast<int32_t>(common_.encode_batch)) {
    const int64_t n = std::min<int64_t>(common_.encode_batch, items - start);
    auto ids =
        torch::arange(start + 1, start + 1 + n, torch::TensorOptions().dtype(torch::kLong).device(context_.device));
    out.narrow(0, start, n).copy_(news_vectors(items_.gather(ids)).to(torch::kCPU, torch::kFloat32));
  }
  return out;
}

torch::Tensor NewsModel::fresh_item_vector(const data::NewsText& article) {
  const data::EncodedArticle encoded = data::encode_article(*content_, article);
  const bool known = std::any_of(encoded.title.begin(), encoded.title.end(),
                                 [](int32_t word) { return word > data::Vocabulary::kUnknown; });
  if (!known)
    throw InputError(
        fmt::format("model '{}': the title '{}' has no word the model knows (of its {} words), so it "
                    "cannot be encoded",
                    model_name_, article.title, content_->words.size() - 2));
  // A category the training news never had is most likely a typo or another catalogue's name: refused, naming the
  // known ones. An unknown subcategory is accepted as unknown (new subcategories appear with the news).
  if (!article.category.empty() && encoded.category == 0) {
    std::string known_categories;
    for (int32_t c = 1; c < content_->categories.size(); ++c)
      known_categories += (c > 1 ? ", " : "") + content_->categories.names[c];
    throw InputError(fmt::format("model '{}': unknown category '{}' (known: {})", model_name_, article.category,
                                 known_categories));
  }
  Inference inference(module());
  const auto options = torch::TensorOptions().dtype(torch::kLong).device(context_.device);
  NewsInput news;
  news.titles = torch::tensor(std::vector<int64_t>(encoded.title.begin(), encoded.title.end()), torch::kLong)
                    .view({1, -1})
                    .to(context_.device);
  news.categories = torch::full({1}, encoded.category, options);
  news.subcategories = torch::full({1}, encoded.subcategory, options);
  return news_vectors(news).to(torch::kCPU, torch::kFloat32).contiguous();
}

std::string NewsModel::encoder_state() const {
  nlohmann::json state = {{"vocabularies", nlohmann::json::parse(data::vocabularies_to_json(*content_))},
                          {"items", items_.to_json()}};
  return state.dump();
}

torch::Tensor NewsModel::encode_user_blocks(
    const data::Sequences& histories, const int32_t* users, int32_t count, int64_t batch_users,
    const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& encode) {
  Inference inference(module());
  const int64_t window = common_.history;
  std::vector<int32_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return std::min(histories.length(users[a]), window) < std::min(histories.length(users[b]), window);
  });
  auto out = torch::empty({count, dim()}, torch::kFloat32);
  std::vector<int32_t> block_users;
  std::vector<int64_t> padded, block_ids;
  for (int32_t start = 0; start < count; start += static_cast<int32_t>(batch_users)) {
    const int32_t n = std::min<int32_t>(static_cast<int32_t>(batch_users), count - start);
    block_users.resize(n);
    block_ids.resize(n);
    for (int32_t i = 0; i < n; ++i) block_ids[i] = block_users[i] = users[order[start + i]];
    const int32_t length = data::fill_histories(histories, block_users.data(), n, static_cast<int32_t>(window), padded);
    auto input = torch::from_blob(padded.data(), {n, length}, torch::kLong).to(context_.device, false, true);
    auto vectors = encode(input, long_tensor(block_ids, context_.device)).to(torch::kCPU, torch::kFloat32);
    auto rows = torch::from_blob(order.data() + start, {n}, torch::kInt32).to(torch::kLong);
    out.index_copy_(0, rows, vectors);
  }
  return out;
}

std::pair<torch::Tensor, torch::Tensor> NewsModel::history_news_table(const data::Sequences& histories,
                                                                      const int32_t* users, int32_t count) {
  Inference inference(module());
  const int32_t items = items_.item_count();
  std::vector<uint8_t> needed(static_cast<size_t>(items) + 1, 0);
  for (int32_t k = 0; k < count; ++k) {
    const int32_t* end = histories.end(users[k]);
    for (const int32_t* it = end - std::min(histories.length(users[k]), common_.history); it != end; ++it) {
      if (*it < 0 || *it >= items) fail("{}: history item {} is not one of the {} news", model_name_, *it, items);
      needed[*it + 1] = 1;
    }
  }
  std::vector<int64_t> ids, remap(needed.size(), 0);
  for (int32_t id = 1; id <= items; ++id)
    if (needed[id]) {
      ids.push_back(id);
      remap[id] = static_cast<int64_t>(ids.size());
    }
  const int64_t unique = static_cast<int64_t>(ids.size());
  const auto type = module().parameters().front().scalar_type();
  auto table = torch::zeros({unique + 1, dim()}, torch::TensorOptions().dtype(type).device(context_.device));
  for (int64_t start = 0; start < unique; start += common_.encode_batch) {
    const int64_t n = std::min(common_.encode_batch, unique - start);
    auto block = torch::from_blob(ids.data() + start, {n}, torch::kLong).to(context_.device, false, true);
    table.narrow(0, start + 1, n).copy_(news_vectors(items_.gather(block)));
  }
  return {table, long_tensor(remap, context_.device)};
}

void NewsModel::require_items(const char* what) const {
  if (items_.empty()) fail("{}: {} need the news text, which this model was built without", model_name_, what);
}

}  // namespace embrec::models
