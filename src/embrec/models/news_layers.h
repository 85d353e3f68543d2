// What the news models (NRMS, NPA) share: masked softmax, additive attention and masked multi-head self-attention
// (padding gets weight exactly 0), the word embedding initialised from pre-trained vectors, category embeddings, the
// items' encoded text on the device, and NewsModel, the base that turns a model's news and user encoders into the
// Model interface (impression batches, the candidates' cross-entropy, item and user vectors, fresh articles).
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "embrec/models/model.h"

namespace embrec::models {

// ---- layers ------------------------------------------------------------------------------------------------

// Softmax over `dim` of the positions where `mask` (bool, broadcastable to logits) is true: exactly 0 where it is
// false, and 0 everywhere in a slice without any true position (an empty history or an all-padding title gives
// zeros, never NaN).
torch::Tensor masked_softmax(const torch::Tensor& logits, const torch::Tensor& mask, int64_t dim);

// Additive attention (NRMS eq. 3 and 6; Microsoft Recommenders' AttLayer2): a_i = q^T tanh(V h_i + v), weights the
// masked softmax of a over the sequence, output sum_i alpha_i h_i. An all-masked row gives a zero vector.
struct AdditiveAttentionImpl : torch::nn::Module {
  AdditiveAttentionImpl(int64_t input_dim, int64_t hidden);
  // values [N, L, D], mask [N, L] bool (true = a real position) -> weights [N, L].
  torch::Tensor weights(const torch::Tensor& values, const torch::Tensor& mask);
  // -> [N, D].
  torch::Tensor forward(const torch::Tensor& values, const torch::Tensor& mask);

  torch::nn::Linear projection{nullptr};  // V, v
  torch::nn::Linear query{nullptr};       // q, no bias
};
TORCH_MODULE(AdditiveAttention);

// Multi-head self-attention (NRMS eq. 1-2; Vaswani et al.): per head softmax(Q K^T / sqrt(head_dim)) V with Q, K, V
// linear maps without bias (as the reference), heads concatenated. Masked positions are never attended to (weight
// exactly 0); their own outputs, and every output of a sequence without a real position (finite), are left for the
// caller to mask (the additive attention that follows does).
struct MultiHeadSelfAttentionImpl : torch::nn::Module {
  MultiHeadSelfAttentionImpl(int64_t input_dim, int64_t heads, int64_t head_dim);
  // input [N, L, input_dim], mask [N, L] bool -> [N, L, heads * head_dim].
  torch::Tensor forward(const torch::Tensor& input, const torch::Tensor& mask);

  int64_t heads = 0;
  int64_t head_dim = 0;
  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
};
TORCH_MODULE(MultiHeadSelfAttention);

// The word embedding [vocabulary, dim], row 0 (padding) zero and never trained. With pre-trained vectors (dimension
// > 0), the rows of found words start from them and the others (unknown word included) from N(0, sigma^2), sigma the
// standard deviation of the found values, so they start on the same scale; without, every row starts from
// N(0, 0.1^2). A pre-trained dimension other than `dim` is an Error naming `model_name`'s key word_dim.
torch::nn::Embedding make_word_embedding(int64_t vocabulary_size, int64_t dim,
                                         const data::PretrainedEmbedding* pretrained, const std::string& model_name);

// The categories option of both models: a news item's category and subcategory embeddings, each projected to the
// news vector's size and added to the title's vector (NAML attends such views; adding keeps the title encoder and
// the user encoder exactly as the papers give them, and a news with unknown category and subcategory -- index 0,
// a zero embedding -- gets only the projections' biases, a constant shift). category_dim as NAML's.
struct CategoryEncoderImpl : torch::nn::Module {
  CategoryEncoderImpl(int64_t categories, int64_t subcategories, int64_t category_dim, int64_t output_dim);
  // categories, subcategories [N] int64 -> [N, output_dim].
  torch::Tensor forward(const torch::Tensor& categories, const torch::Tensor& subcategories);

  torch::nn::Embedding category{nullptr}, subcategory{nullptr};
  torch::nn::Linear category_projection{nullptr}, subcategory_projection{nullptr};
};
TORCH_MODULE(CategoryEncoder);

// ---- the items' text -------------------------------------------------------------------------------------

// N news as a model's input: titles [N, T] word indices (0 = padding), categories and subcategories [N]; int64 on
// the model's device.
struct NewsInput {
  torch::Tensor titles;
  torch::Tensor categories;
  torch::Tensor subcategories;
  int64_t size() const { return titles.size(0); }
  torch::Tensor word_mask() const { return titles.gt(0); }
  // The news of `rows` with titles cut to their first `length` words; all the news cut so.
  NewsInput rows(const torch::Tensor& rows, int64_t length) const;
  NewsInput cut(int64_t length) const;
};

// encode(news) in groups of similar title length, each group cut to its longest title, then put back in order (word
// outputs [n, L, ...] padded with zeros to the longest title of all): the models mask padded words everywhere, so
// this computes what one padded pass does (up to summation order) from fewer words -- MIND titles have 11 words on
// average in a window of 30. A lone pass over the news cut to the longest title when groups would save under a
// quarter of the words.
torch::Tensor encode_by_title_length(const NewsInput& news,
                                     const std::function<torch::Tensor(const NewsInput&)>& encode);

// Every item's encoded text on the device, row = item id + 1 and row 0 an all-padding news, so batches (ids + 1,
// 0 = padding) index it directly. Not module state: checkpoints hold weights only, and a served encoder gets its
// items from the export's encoder state (to_json / from_json), where they cannot go stale.
class NewsItems {
 public:
  NewsItems() = default;
  NewsItems(const data::NewsContent& content, int32_t item_count, torch::Device device);

  bool empty() const { return !titles_.defined(); }
  int32_t item_count() const { return empty() ? 0 : static_cast<int32_t>(titles_.size(0) - 1); }
  int64_t title_length() const { return titles_.size(1); }
  // The news of `ids` (ids + 1, any shape, on the device), flattened to N = ids.numel().
  NewsInput gather(const torch::Tensor& ids) const;

  // {"title_length": T, "titles": [...], "categories": [...], "subcategories": [...]} of items 0..item_count-1.
  nlohmann::json to_json() const;
  static NewsItems from_json(const nlohmann::json& json, int32_t item_count, torch::Device device,
                             const std::string& model_name);

 private:
  torch::Tensor titles_;         // [item_count + 1, T] int64
  torch::Tensor categories_;     // [item_count + 1] int64
  torch::Tensor subcategories_;  // [item_count + 1] int64
};

// The distinct values of `ids` (ids + 1, any shape) with 0 (padding) always the first, and for each entry of `ids`
// its row among them (same shape): a batch's history and candidates repeat news, and each is encoded once.
struct UniqueNews {
  torch::Tensor ids;      // [U] int64, ids[0] == 0
  torch::Tensor inverse;  // ids.sizes() int64
};
UniqueNews unique_news(const torch::Tensor& ids);

// ---- the base ----------------------------------------------------------------------------------------------

// The keys NRMS and NPA share; defaults as Microsoft Recommenders' hparams (nrms.yaml, npa.yaml).
struct NewsModelConfig {
  int64_t word_dim = 300;          // check = > 0; the pre-trained vectors' dimension when they are given
  int64_t history = 50;            // clicked news a user is encoded from (his_size) // check = > 0
  int64_t npratio = 4;             // unclicked candidates per click in training // check = > 0
  double dropout = 0.2;            // check = [0, 1)
  int64_t attention_hidden = 200;  // the additive attention's hidden size; NPA's query size // check = > 0
  bool categories = false;         // add category and subcategory embeddings to the news vector
  int64_t category_dim = 100;      // only with categories = true // check = > 0
  int64_t encode_batch = 256;      // news per forward pass of item_vectors(); users per block of user_vectors()

  static NewsModelConfig from(ConfigTable& table);
};

// What NRMS and NPA share, as RecBole's SequentialRecommender: the impression sampler's options, the loss (softmax
// cross-entropy over each click's 1 + npratio candidates, label 0, as both papers and Microsoft Recommenders train),
// the items' text and vocabularies (from the dataset, or from an export's encoder state), item vectors, serving a
// fresh article from its text, and the encoder state. A model supplies the candidates' scores of a batch and the
// item side's news encoder.
class NewsModel : public Model {
 public:
  bool trainable() const override { return true; }
  data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const override;
  LossParts loss(const TensorBatch& batch) override;
  bool encodes_histories() const override { return true; }
  torch::Tensor fresh_user_vector(const std::vector<int32_t>& history, const data::FeatureValues& features) override;
  torch::Tensor item_vectors() override;
  // A news item's vector comes from its text, trained on or not (dev news, articles added to a served index).
  bool places_untrained_items() const override { return true; }
  bool encodes_items() const override { return true; }
  torch::Tensor fresh_item_vector(const data::NewsText& article) override;
  // The vocabularies (data::vocabularies_to_json) and every item's encoded text: a served encoder has no dataset,
  // and user_vectors() needs the text of the history's news.
  std::string encoder_state() const override;

  // A training batch's click scores [B, 1 + npratio] (batch.input the histories, batch.candidates the candidates).
  virtual torch::Tensor candidate_scores(const TensorBatch& batch) = 0;
  // The item side's vectors [N, dim] of N news, in the module's current mode.
  virtual torch::Tensor news_vectors(const NewsInput& news) = 0;

  const NewsItems& items() const { return items_; }
  const data::NewsContent& vocabularies() const { return *content_; }

 protected:
  NewsModel(const NewsModelConfig& common, const ModelContext& context, std::string model_name);
  // The vector of a served user's history (checked: non-empty, known items), one user of `history`. By default
  // user_vectors() of user 0; a model of user ids (NPA) uses its unknown user instead.
  virtual torch::Tensor encode_fresh_user(const data::Sequences& history);
  // `count` users' histories (internal ids, the last `history` of each) as [count, dim] float32 CPU, in blocks of
  // `batch_users` users taken in order of history length (each block padded to its longest): encode(input [n, L]
  // ids + 1 right-aligned, users [n] int64 internal ids) -> [n, dim], called in eval mode without autograd.
  torch::Tensor encode_user_blocks(
      const data::Sequences& histories, const int32_t* users, int32_t count, int64_t batch_users,
      const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& encode);
  // The item-side vectors of the distinct news in the last `history` items of the users' histories, as a table
  // [U + 1, dim] (row 0 zeros) on the device and a map [item_count + 1] from ids + 1 to its rows (0 -> 0): the news
  // of a user_vectors() call are encoded once, however many histories hold them.
  std::pair<torch::Tensor, torch::Tensor> history_news_table(const data::Sequences& histories, const int32_t* users,
                                                             int32_t count);
  // Throws Error when there is no item text (a served encoder built without its state).
  void require_items(const char* what) const;

  NewsModelConfig common_;
  ModelContext context_;  // dataset and split cleared: they are valid only while the model is built
  std::string model_name_;
  std::shared_ptr<const data::NewsContent> content_;  // vocabularies (and with a dataset the encoded items)
  NewsItems items_;
};

}  // namespace embrec::models
