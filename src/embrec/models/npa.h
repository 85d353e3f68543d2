// NPA (Wu et al., "NPA: Neural News Recommendation with Personalized Attention", KDD 2019): titles encoded by a CNN
// and a word attention whose query comes from the user's id embedding, users by a news attention with a second
// id-derived query over their clicked news; trained by softmax cross-entropy over each click's 1 + npratio candidates.
//
// Deviation from the paper, for serving: in the paper a news vector depends on the user who reads it (the word
// attention's query is the reader's), so there is no single vector per news for an item index. Here the item side --
// item_vectors(), fresh_item_vector(), and so the exported index and every evaluation that scores by item_vectors() --
// encodes each news with the query of the reserved unknown user (embedding row 0). Training follows the paper: the
// history and the candidates of a batch row are encoded with that row's user's query, and so does user_vectors(): a
// known user's clicked news are read with the user's own word query, then pooled with the user's news query.
// unknown_user_rate trains row 0 (a share of training rows is encoded as the unknown user), so that the item side's
// query is one learned for reading news for anyone rather than the untrained initial row.
//
// Users: row u + 1 of the user embedding for a user with training impressions (a buffer of the module, so a served
// export has it), row 0 for everyone else -- users without training impressions and every fresh (served) history.
#pragma once

#include "embrec/models/news_layers.h"

namespace embrec::models {

// Defaults as Microsoft Recommenders' npa.yaml (word_emb_dim 300, filter_num 400, window_size 3, user_emb_dim 50,
// attention_hidden_dim 200, dropout 0.2, his_size 50, npratio 4) and the paper.
struct NpaConfig {
  NewsModelConfig news;
  int64_t filters = 400;  // CNN filters: news and user vectors have this many entries // check = > 0
  int64_t window = 3;     // CNN window, "same" padding // check = > 0, odd
  int64_t user_dim = 50;  // user id embedding // check = > 0
  // Share of training rows encoded as the unknown user (row 0), which the item side reads news with. // check = [0, 1)
  double unknown_user_rate = 0.1;

  static NpaConfig from(ConfigTable& table);
};

// The parameters. News (paper sec. 3.1): word embedding -> dropout -> CNN (ReLU) -> dropout -> personalised word
// attention: q_w = ReLU(V_w e_u + v_w), alpha_i = softmax_i(c_i^T tanh(W_w q_w + b_w)) over the title's words (padding
// masked), r = sum_i alpha_i c_i; plus the projected category and subcategory embeddings with categories = true
// (CategoryEncoder). User (sec. 3.2): q_d = ReLU(V_d e_u + v_d), alpha_j = softmax_j(r_j^T tanh(W_d q_d + b_d)) over
// the clicked news (dropout on r_j, padding masked), u = sum_j alpha_j r_j; a user without clicked news gets the
// query itself, tanh(W_d q_d + b_d).
struct NpaNetworkImpl : torch::nn::Module {
  NpaNetworkImpl(const NpaConfig& config, const data::NewsContent& vocabularies, int32_t user_count);
  // The CNN's word features [N, T', filters] of N news, T' their longest title (computed in groups of similar title
  // length, encode_by_title_length).
  torch::Tensor word_features(const NewsInput& news);
  // The same in one pass over titles [N, T] as given: [N, T, filters].
  torch::Tensor convolve(const torch::Tensor& titles);
  // The projected word / news queries tanh(W q + b) of user rows [R] (0 = unknown user, u + 1 = user u): [R, filters].
  torch::Tensor word_queries(const torch::Tensor& rows);
  torch::Tensor news_queries(const torch::Tensor& rows);
  // Personalised word attention of P (news, reader) pairs: features [U, T, F] of U news with word mask [U, T],
  // queries [R, F]; pair p reads news pair_news[p] with query pair_query[p] -> [P, F]. Each news' features are
  // computed once however many readers it has.
  torch::Tensor attend_words(const torch::Tensor& features, const torch::Tensor& mask, const torch::Tensor& queries,
                             const torch::Tensor& pair_news, const torch::Tensor& pair_query);
  // News vectors [P, F] of pairs (news index into `news`, user row): the CNN once per news, then attend_words, plus
  // the projected category embeddings. pair_news and pair_reader [P] int64.
  torch::Tensor encode_news(const NewsInput& news, const torch::Tensor& rows, const torch::Tensor& pair_news,
                            const torch::Tensor& pair_reader);
  // history [B, H, F], mask [B, H], news queries [B, F] -> [B, F].
  torch::Tensor encode_user(const torch::Tensor& history, const torch::Tensor& mask, const torch::Tensor& queries);

  NpaConfig config;
  torch::nn::Embedding word_embedding{nullptr};
  torch::nn::Conv1d cnn{nullptr};
  torch::nn::Embedding user_embedding{nullptr};  // [user_count + 1, user_dim], row 0 the unknown user
  torch::nn::Linear word_query{nullptr}, word_query_projection{nullptr};
  torch::nn::Linear news_query{nullptr}, news_query_projection{nullptr};
  CategoryEncoder category_encoder{nullptr};  // only with categories = true
  torch::Tensor known_users;                  // [user_count] bool buffer: users with training impressions
};
TORCH_MODULE(NpaNetwork);

class Npa final : public NewsModel {
 public:
  using Config = NpaConfig;
  Npa(const NpaConfig& config, const ModelContext& context);
  std::string name() const override { return "npa"; }
  torch::nn::Module& module() override { return *network_; }
  int64_t dim() const override { return config_.filters; }
  // Each user's clicked news read with the user's own word query (the unknown user's for users without training
  // impressions), in blocks of about encode_batch news.
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;

  torch::Tensor candidate_scores(const TensorBatch& batch) override;
  // The item side: every news read with the unknown user's word query (see the header comment).
  torch::Tensor news_vectors(const NewsInput& news) override;
  // The embedding rows of internal user ids [n] (0 for users without training impressions and out-of-range ids).
  torch::Tensor user_rows(const torch::Tensor& users) const;
  NpaNetwork& network() { return network_; }

 protected:
  torch::Tensor encode_fresh_user(const data::Sequences& history) override;

 private:
  // user_vectors() with the given rows per user (unknown = every user is the unknown user).
  torch::Tensor encode_users(const data::Sequences& histories, const int32_t* users, int32_t count, bool unknown);
  // The news of `ids` (ids + 1, [B, S]) as row b's user reads them, rows [B]: [B, S, filters].
  torch::Tensor read_news(const torch::Tensor& ids, const torch::Tensor& rows);

  NpaConfig config_;
  NpaNetwork network_{nullptr};
};

}  // namespace embrec::models
