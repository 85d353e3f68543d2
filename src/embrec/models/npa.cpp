// NPA: CNN news encoder with personalised word attention, personalised news attention over the clicked news.
#include "embrec/models/npa.h"

#include <algorithm>

#include "embrec/util/error.h"

namespace embrec::models {

NpaConfig NpaConfig::from(ConfigTable& table) {
  NpaConfig c;
  c.news = NewsModelConfig::from(table);
  c.filters = table.get_positive("filters", c.filters);
  c.window = table.get_positive("window", c.window);
  table.check(c.window % 2 == 1, "window", fmt::format("must be odd (\"same\" padding), got {}", c.window));
  c.user_dim = table.get_positive("user_dim", c.user_dim);
  c.unknown_user_rate = table.get_in_range("unknown_user_rate", c.unknown_user_rate, "[0, 1)");
  return c;
}

NpaNetworkImpl::NpaNetworkImpl(const NpaConfig& config_in, const data::NewsContent& vocabularies, int32_t user_count)
    : config(config_in) {
  const int64_t filters = config.filters, hidden = config.news.attention_hidden;
  const data::PretrainedEmbedding* pretrained =
      vocabularies.pretrained.dimension > 0 ? &vocabularies.pretrained : nullptr;
  word_embedding = register_module(
      "word_embedding", make_word_embedding(vocabularies.words.size(), config.news.word_dim, pretrained, "npa"));
  cnn = register_module(
      "cnn", torch::nn::Conv1d(
                 torch::nn::Conv1dOptions(config.news.word_dim, filters, config.window).padding(config.window / 2)));
  user_embedding = register_module("user_embedding", torch::nn::Embedding(user_count + 1, config.user_dim));
  word_query = register_module("word_query", torch::nn::Linear(config.user_dim, hidden));
  word_query_projection = register_module("word_query_projection", torch::nn::Linear(hidden, filters));
  news_query = register_module("news_query", torch::nn::Linear(config.user_dim, hidden));
  news_query_projection = register_module("news_query_projection", torch::nn::Linear(hidden, filters));
  if (config.news.categories)
    category_encoder =
        register_module("category_encoder", CategoryEncoder(std::max(vocabularies.categories.size(), 1),
                                                            std::max(vocabularies.subcategories.size(), 1),
                                                            config.news.category_dim, filters));
  known_users = register_buffer("known_users", torch::zeros({user_count}, torch::kBool));
  // As Microsoft Recommenders: Glorot-uniform CNN with zero bias; user embeddings start at zero (every user starts
  // from the shared query the biases give and moves away as its clicks teach).
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(cnn->weight);
  cnn->bias.zero_();
  user_embedding->weight.zero_();
}

torch::Tensor NpaNetworkImpl::word_features(const NewsInput& news) {
  return encode_by_title_length(news, [this](const NewsInput& part) { return convolve(part.titles); });
}

torch::Tensor NpaNetworkImpl::convolve(const torch::Tensor& titles) {
  const double p = config.news.dropout;
  // Padded words are zeroed, not only their (frozen, zero) embedding row: the CNN's windows at a title's last words
  // reach into the padding, and its content must never count.
  auto real = titles.gt(0).unsqueeze(2).to(word_embedding->weight.scalar_type());
  auto words = torch::dropout(word_embedding(titles) * real, p, is_training());  // [N, T, D]
  auto features = torch::relu(cnn(words.transpose(1, 2))).transpose(1, 2);       // [N, T, F]
  return torch::dropout(features, p, is_training()).contiguous();
}

torch::Tensor NpaNetworkImpl::word_queries(const torch::Tensor& rows) {
  return torch::tanh(word_query_projection(torch::relu(word_query(user_embedding(rows)))));
}

torch::Tensor NpaNetworkImpl::news_queries(const torch::Tensor& rows) {
  return torch::tanh(news_query_projection(torch::relu(news_query(user_embedding(rows)))));
}

torch::Tensor NpaNetworkImpl::attend_words(const torch::Tensor& features, const torch::Tensor& mask,
                                           const torch::Tensor& queries, const torch::Tensor& pair_news,
                                           const torch::Tensor& pair_query) {
  const int64_t news = features.size(0), length = features.size(1), filters = features.size(2);
  const int64_t readers = queries.size(0), pairs = pair_news.size(0);
  const auto index_options = torch::TensorOptions().dtype(torch::kLong).device(features.device());
  auto words = features.view({news * length, filters});
  // Every word of every news against every reader's query: [U * T, R]. A batch's readers are few (its rows), so
  // this is cheaper than gathering each pair's [T, F] features; then each pair picks its own column.
  auto all_logits = torch::mm(words, queries.t());
  auto word_rows = pair_news.unsqueeze(1) * length + torch::arange(length, index_options).unsqueeze(0);  // [P, T]
  auto logits = all_logits.view({-1}).index_select(0, (word_rows * readers + pair_query.unsqueeze(1)).view({-1}));
  auto weights = masked_softmax(logits.view({pairs, length}), mask.index_select(0, pair_news), 1);
  // sum_t alpha_pt c_{news(p), t} as a weighted bag of the features' rows: no [P, T, F] copy of the features.
  auto offsets = torch::arange(pairs, index_options) * length;
  return std::get<0>(torch::embedding_bag(words, word_rows.view({-1}), offsets, /*scale_grad_by_freq=*/false,
                                          /*mode=sum*/ 0, /*sparse=*/false, weights.view({-1})));
}

torch::Tensor NpaNetworkImpl::encode_news(const NewsInput& news, const torch::Tensor& rows,
                                          const torch::Tensor& pair_news, const torch::Tensor& pair_reader) {
  auto features = word_features(news);
  auto mask = news.word_mask().narrow(1, 0, features.size(1));
  auto vectors = attend_words(features, mask, word_queries(rows), pair_news, pair_reader);
  if (category_encoder)
    vectors = vectors + category_encoder(news.categories, news.subcategories).index_select(0, pair_news);
  return vectors;
}

torch::Tensor NpaNetworkImpl::encode_user(const torch::Tensor& history, const torch::Tensor& mask,
                                          const torch::Tensor& queries) {
  auto values = torch::dropout(history, config.news.dropout, is_training());
  auto logits = torch::bmm(values, queries.unsqueeze(2)).squeeze(2);
  auto weights = masked_softmax(logits, mask, 1);
  auto pooled = torch::bmm(weights.unsqueeze(1), values).squeeze(1);
  return torch::where(mask.any(1, /*keepdim=*/true), pooled, queries);
}

Npa::Npa(const NpaConfig& config, const ModelContext& context)
    : NewsModel(config.news, context, "npa"), config_(config) {
  network_ = NpaNetwork(config_, *content_, context.user_count);
  if (context.split != nullptr && context.split->impressions) {
    auto known = network_->known_users.accessor<bool, 1>();
    for (int32_t user : context.split->impressions->train.user)
      if (user >= 0 && user < context.user_count) known[user] = true;
  }
  network_->to(context.device);
}

torch::Tensor Npa::user_rows(const torch::Tensor& users) const {
  const torch::Tensor& known_users = network_->known_users;
  const int64_t user_count = known_users.size(0);
  if (user_count == 0) return torch::zeros_like(users);
  auto in_range = users.ge(0).logical_and(users.lt(user_count));
  auto known = known_users.index_select(0, users.clamp(0, user_count - 1)).logical_and(in_range);
  return torch::where(known, users + 1, torch::zeros_like(users));
}

torch::Tensor Npa::read_news(const torch::Tensor& ids, const torch::Tensor& rows) {
  const int64_t batch = ids.size(0), slots = ids.size(1);
  const UniqueNews unique = unique_news(ids);
  auto readers = torch::arange(batch, rows.options()).unsqueeze(1).expand({batch, slots}).reshape({-1});
  auto vectors = network_->encode_news(items_.gather(unique.ids), rows, unique.inverse.reshape({-1}), readers);
  return vectors.view({batch, slots, config_.filters});
}

torch::Tensor Npa::candidate_scores(const TensorBatch& batch) {
  const int64_t length = batch.input.size(1), candidates = batch.candidates.size(1);
  auto rows = user_rows(batch.users);
  if (network_->is_training() && config_.unknown_user_rate > 0) {
    auto drop = torch::rand({rows.size(0)}, torch::TensorOptions().device(rows.device())).lt(config_.unknown_user_rate);
    rows = rows.masked_fill(drop, 0);
  }
  auto vectors = read_news(torch::cat({batch.input, batch.candidates}, 1), rows);
  auto user = network_->encode_user(vectors.narrow(1, 0, length), batch.input.gt(0), network_->news_queries(rows));
  return torch::bmm(vectors.narrow(1, length, candidates), user.unsqueeze(2)).squeeze(2);
}

torch::Tensor Npa::news_vectors(const NewsInput& news) {
  const auto options = torch::TensorOptions().dtype(torch::kLong).device(news.titles.device());
  const int64_t count = news.size();
  return network_->encode_news(news, torch::zeros({1}, options), torch::arange(count, options),
                               torch::zeros({count}, options));
}

torch::Tensor Npa::user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) {
  return encode_users(histories, users, count, /*unknown=*/false);
}

torch::Tensor Npa::encode_fresh_user(const data::Sequences& history) {
  const int32_t user = 0;
  return encode_users(history, &user, 1, /*unknown=*/true);
}

torch::Tensor Npa::encode_users(const data::Sequences& histories, const int32_t* users, int32_t count, bool unknown) {
  require_items("user vectors");
  // Each block reads its users' news with their own queries: about encode_batch news per forward pass.
  const int64_t batch_users = std::max<int64_t>(1, common_.encode_batch / common_.history);
  return encode_user_blocks(histories, users, count, batch_users,
                            [&](const torch::Tensor& input, const torch::Tensor& ids) {
                              auto rows = unknown ? torch::zeros_like(ids) : user_rows(ids);
                              auto vectors = read_news(input, rows);
                              return network_->encode_user(vectors, input.gt(0), network_->news_queries(rows));
                            });
}

EMBREC_REGISTER_MODEL("npa", Npa);

}  // namespace embrec::models
