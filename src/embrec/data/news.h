// News as a dataset ([data] format = "mind"): the MIND folders (data/mind.h) turned into the Dataset and Split every
// model, trainer and evaluator works on, plus what only news models read -- the encoded text of every item
// (NewsContent, on Dataset::news) and the impressions of each stage (ImpressionSplit, on Split::impressions).
//
// Items are the news of the train folder's news.tsv (file order), then those only in the dev folder's; users those of
// train's behaviors.tsv (order of first appearance), then those only in dev's. The stages:
//   train  impressions of the train folder before its last `valid_days` days (the samples news models train on)
//   valid  impressions of the train folder's last `valid_days` days (model selection, early stopping)
//   test   impressions of the dev folder (MIND's dev set, as Microsoft Recommenders reports)
// A user's history at a stage is the click history its impressions there carry (MIND gives every impression of a
// user in one file the same history; a file where a user's histories differ is an error naming both lines).
// Split::train per user: the train folder's history, then the clicks of the user's training impressions in time
// order (what popularity counts and head / tail users are measured on); Split::valid / Split::test: the clicks of
// the stage's impressions. No torch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "embrec/data/dataset.h"
#include "embrec/data/mind.h"

namespace embrec::data {

// What a news model reads of each item (row = internal item id), with the vocabularies built from the training news
// only, so that a word first seen in dev news is unknown as it would be for news written after training.
struct NewsContent {
  Vocabulary words;
  NameVocabulary categories;
  NameVocabulary subcategories;
  EncodedNews encoded;             // titles [item_count x title_length], categories, subcategories
  PretrainedEmbedding pretrained;  // dimension 0 when no word vectors were given

  int32_t title_length() const { return encoded.title_length; }
  const int32_t* title(int32_t item) const {
    return encoded.titles.data() + static_cast<int64_t>(item) * encoded.title_length;
  }
};

// A news article as a request or a file gives it, before encoding (the service's POST /v1/news).
struct NewsText {
  std::string title;
  std::string category;     // may be empty: unknown
  std::string subcategory;  // may be empty: unknown
};

// The impressions of one stage on internal ids (CSR as data::Impressions; labels 1 clicked, 0 not).
struct ImpressionSet {
  std::vector<int32_t> user;
  std::vector<int64_t> times;
  std::vector<int64_t> candidate_offsets{0};
  std::vector<int32_t> candidates;
  std::vector<int8_t> labels;

  int64_t size() const { return static_cast<int64_t>(user.size()); }
  int64_t candidate_count(int64_t i) const { return candidate_offsets[i + 1] - candidate_offsets[i]; }
};

struct ImpressionSplit {
  ImpressionSet train, valid, test;
  // Per user (Dataset::users), the click history the stage's impressions carry (empty when the user has none there).
  Sequences train_history;  // the train folder's: training and valid impressions
  Sequences test_history;   // the dev folder's
  // Per item, 1 when it is a candidate of some impression of the stage: the news "of the day" the retrieval view
  // ranks (EvalTask::rankable).
  std::vector<uint8_t> valid_news, test_news;
};

struct MindOptions {
  std::string train_folder;  // holds news.tsv and behaviors.tsv
  std::string dev_folder;
  int32_t valid_days = 1;      // the train folder's last days that are the valid stage // check = >= 1
  int32_t title_length = 30;   // words kept of a title (Microsoft Recommenders' NRMS: 30) // check = >= 1
  VocabularyOptions vocabulary;
  std::string word_vectors;    // GloVe text file (optional): initial word embeddings
  WordVectorOptions word_vector_options;
};

struct NewsData {
  Dataset dataset;  // dataset.news set
  Split split;      // split.impressions set, method "impressions"
};

// Reads both folders; errors name the file, line and field (data/mind.h), and a history that differs between two
// impressions of one user names both lines.
NewsData load_mind(const MindOptions& options);

// A title and its category names as a news model's input: `title_length` word indices (padded), category and
// subcategory indices (0 = unknown).
struct EncodedArticle {
  std::vector<int32_t> title;
  int32_t category = 0;
  int32_t subcategory = 0;
};
EncodedArticle encode_article(const NewsContent& content, const NewsText& text);

// The vocabularies of a NewsContent as JSON text (what a news model's encoder_state() writes into an export) and
// back (encoded and pretrained left empty: a served model encodes articles through encode_article).
std::string vocabularies_to_json(const NewsContent& content);
NewsContent vocabularies_from_json(const std::string& text);

}  // namespace embrec::data
