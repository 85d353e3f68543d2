// NRMS: news and user encoders of self-attention and additive attention; candidate scores of impression batches.
#include "embrec/models/nrms.h"

namespace embrec::models {

NrmsConfig NrmsConfig::from(ConfigTable& table) {
  NrmsConfig c;
  c.news = NewsModelConfig::from(table);
  c.heads = table.get_positive("heads", c.heads);
  c.head_dim = table.get_positive("head_dim", c.head_dim);
  return c;
}

NrmsNetworkImpl::NrmsNetworkImpl(const NrmsConfig& config_in, const data::NewsContent& vocabularies)
    : config(config_in) {
  const int64_t d = config.heads * config.head_dim;
  const data::PretrainedEmbedding* pretrained =
      vocabularies.pretrained.dimension > 0 ? &vocabularies.pretrained : nullptr;
  word_embedding = register_module(
      "word_embedding", make_word_embedding(vocabularies.words.size(), config.news.word_dim, pretrained, "nrms"));
  word_self_attention = register_module("word_self_attention",
                                        MultiHeadSelfAttention(config.news.word_dim, config.heads, config.head_dim));
  word_attention = register_module("word_attention", AdditiveAttention(d, config.news.attention_hidden));
  if (config.news.categories)
    category_encoder =
        register_module("category_encoder",
                        CategoryEncoder(std::max(vocabularies.categories.size(), 1),
                                        std::max(vocabularies.subcategories.size(), 1), config.news.category_dim, d));
  news_self_attention =
      register_module("news_self_attention", MultiHeadSelfAttention(d, config.heads, config.head_dim));
  news_attention = register_module("news_attention", AdditiveAttention(d, config.news.attention_hidden));
}

torch::Tensor NrmsNetworkImpl::encode_news(const NewsInput& news) {
  return encode_by_title_length(news, [this](const NewsInput& part) { return encode_titles(part); });
}

torch::Tensor NrmsNetworkImpl::encode_titles(const NewsInput& news) {
  const double p = config.news.dropout;
  auto mask = news.word_mask();
  auto words = torch::dropout(word_embedding(news.titles), p, is_training());
  auto contextual = torch::dropout(word_self_attention(words, mask), p, is_training());
  auto vector = word_attention(contextual, mask);
  if (category_encoder) vector = vector + category_encoder(news.categories, news.subcategories);
  return vector;
}

torch::Tensor NrmsNetworkImpl::encode_user(const torch::Tensor& history, const torch::Tensor& mask) {
  return news_attention(news_self_attention(history, mask), mask);
}

Nrms::Nrms(const NrmsConfig& config, const ModelContext& context)
    : NewsModel(config.news, context, "nrms"), config_(config) {
  network_ = NrmsNetwork(config_, *content_);
  network_->to(context.device);
}

torch::Tensor Nrms::candidate_scores(const TensorBatch& batch) {
  const int64_t rows = batch.input.size(0), length = batch.input.size(1), candidates = batch.candidates.size(1);
  // History and candidates of a batch repeat news (popular ones, a user's several clicks): encode each once.
  const UniqueNews unique = unique_news(torch::cat({batch.input, batch.candidates}, 1));
  auto vectors = network_->encode_news(items_.gather(unique.ids));
  auto slots = vectors.index_select(0, unique.inverse.reshape({-1})).view({rows, length + candidates, dim()});
  auto user = network_->encode_user(slots.narrow(1, 0, length), batch.input.gt(0));
  return torch::bmm(slots.narrow(1, length, candidates), user.unsqueeze(2)).squeeze(2);
}

torch::Tensor Nrms::user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) {
  require_items("user vectors");
  auto [table, rows_of] = history_news_table(histories, users, count);
  return encode_user_blocks(histories, users, count, common_.encode_batch,
                            [&](const torch::Tensor& input, const torch::Tensor&) {
                              auto rows = rows_of.index_select(0, input.reshape({-1}));
                              auto history = table.index_select(0, rows).view({input.size(0), input.size(1), dim()});
                              return network_->encode_user(history, input.gt(0));
                            });
}

EMBREC_REGISTER_MODEL("nrms", Nrms);

}  // namespace embrec::models
