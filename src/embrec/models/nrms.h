// NRMS (Wu et al., "Neural News Recommendation with Multi-Head Self-Attention", EMNLP 2019): titles encoded by word
// self-attention and additive attention, users by the same two layers over their clicked news; click score = the
// dot product of user and news vectors, trained by softmax cross-entropy over each click's 1 + npratio candidates.
#pragma once

#include "embrec/models/news_layers.h"

namespace embrec::models {

// Defaults as Microsoft Recommenders' nrms.yaml (word_emb_dim 300, head_num 20, head_dim 20, attention_hidden_dim
// 200, dropout 0.2, his_size 50, npratio 4).
struct NrmsConfig {
  NewsModelConfig news;
  int64_t heads = 20;     // check = > 0
  int64_t head_dim = 20;  // check = > 0; news and user vectors have heads * head_dim entries

  static NrmsConfig from(ConfigTable& table);
};

// The parameters. News encoder (paper sec. 3.1): word embedding -> dropout -> multi-head self-attention over the
// title's words -> dropout -> additive attention -> r (heads * head_dim), plus the projected category and subcategory
// embeddings with categories = true (CategoryEncoder).
// User encoder (sec. 3.2): multi-head self-attention over the clicked news' vectors -> additive attention -> u.
// Padded words and padded history slots are masked everywhere: an empty history gives u = 0.
struct NrmsNetworkImpl : torch::nn::Module {
  NrmsNetworkImpl(const NrmsConfig& config, const data::NewsContent& vocabularies);
  // [N, heads * head_dim], in groups of similar title length (encode_by_title_length).
  torch::Tensor encode_news(const NewsInput& news);
  // The same in one pass over the titles as given.
  torch::Tensor encode_titles(const NewsInput& news);
  // history [B, H, d] news vectors, mask [B, H] bool (true = a clicked news) -> [B, d].
  torch::Tensor encode_user(const torch::Tensor& history, const torch::Tensor& mask);

  NrmsConfig config;
  torch::nn::Embedding word_embedding{nullptr};
  MultiHeadSelfAttention word_self_attention{nullptr};
  AdditiveAttention word_attention{nullptr};
  CategoryEncoder category_encoder{nullptr};  // only with categories = true
  MultiHeadSelfAttention news_self_attention{nullptr};
  AdditiveAttention news_attention{nullptr};
};
TORCH_MODULE(NrmsNetwork);

class Nrms final : public NewsModel {
 public:
  using Config = NrmsConfig;
  Nrms(const NrmsConfig& config, const ModelContext& context);
  std::string name() const override { return "nrms"; }
  torch::nn::Module& module() override { return *network_; }
  int64_t dim() const override { return config_.heads * config_.head_dim; }
  // The history's news are encoded once per call (each distinct news once), then each block of users.
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;

  torch::Tensor candidate_scores(const TensorBatch& batch) override;
  torch::Tensor news_vectors(const NewsInput& news) override { return network_->encode_news(news); }
  NrmsNetwork& network() { return network_; }

 private:
  NrmsConfig config_;
  NrmsNetwork network_{nullptr};
};

}  // namespace embrec::models
