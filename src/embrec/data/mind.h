// MIND (Microsoft News Dataset, https://msnews.github.io) as read from its files: news.tsv into a NewsCatalog,
// behaviors.tsv into Impressions, titles into word indices through a Vocabulary built from the training news, and
// pre-trained word vectors (GloVe text format) for that vocabulary. No torch: the news models build on these.
//
// The files (MINDsmall_train/, MINDsmall_dev/, MINDlarge_test/ ...), tab-separated, no header:
//   news.tsv       N55528  lifestyle  lifestyleroyals  <title>  <abstract>  <url>  <title entities>  <abstract entities>
//   behaviors.tsv  1  U13740  11/11/2019 9:05:58 AM  N55189 N42782 ...  N55689-1 N35729-0
// (impression id, user id, time, click history oldest first, candidates with click labels; MIND's test set has
// candidates without labels).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "embrec/data/dataset.h"
#include "embrec/data/text.h"

namespace embrec::data {

// A read-only view of `size` consecutive values (a CSR row of Impressions).
template <typename T>
struct Slice {
  const T* data = nullptr;
  int64_t size = 0;
  const T* begin() const { return data; }
  const T* end() const { return data + size; }
  const T& operator[](int64_t i) const { return data[i]; }
};

// ---- news.tsv ------------------------------------------------------------------------------------------------

// The news of one news.tsv, indexed 0..size()-1 in file order. URL and entity columns are not kept (the entity JSON
// is most of MINDlarge's bytes and no model here uses it). Index 0 is a real news item, not padding: a model that
// pads histories marks padding itself (a mask, or an index it reserves).
struct NewsCatalog {
  std::string source;  // the path, for messages
  IdMap ids;           // news id as written (N55528) <-> index
  std::vector<std::string> categories;
  std::vector<std::string> subcategories;
  std::vector<std::string> titles;
  std::vector<std::string> abstracts;  // may be empty strings: MIND leaves some abstracts blank
  std::vector<int64_t> lines;          // the 1-based source line of each news item

  int32_t size() const { return ids.size(); }
  // -1 when the id is not in the catalog.
  int32_t find(std::string_view news_id) const { return ids.find(news_id); }
};

// Reads news.tsv. Errors name file and line: "news.tsv:17: expected 8 tab-separated fields, got 5",
// "news.tsv:9: news id 'N1' appears on line 2 too", "news.tsv:3: field 'news id': empty". Blank lines are skipped;
// an empty file is an error.
NewsCatalog read_news(const std::string& path);

// ---- behaviors.tsv -------------------------------------------------------------------------------------------

// "11/15/2019 8:55:22 AM" (month/day/year, 12-hour clock) as Unix seconds, read as UTC (MIND does not say which zone
// its times are in; UTC keeps them reproducible on any machine). 12 AM is midnight, 12 PM noon. Anything else is
// "<file>:<line>: field 'time': cannot parse '<text>' as a time like '11/15/2019 8:55:22 AM' (<what is wrong>)".
int64_t parse_mind_time(std::string_view text, const LineContext& where);
// The inverse, in MIND's own spelling (no leading zeros on month, day and hour; two-digit minutes and seconds).
std::string format_mind_time(int64_t unix_seconds);

struct BehaviorsOptions {
  // false for MIND's test set, whose candidates are bare news ids ("N123", not "N123-1"); every label is then -1.
  bool labels = true;
};

// The impressions of one behaviors.tsv in file order. History, candidates and labels are CSR rows: impression i owns
// history[history_offsets[i] .. history_offsets[i + 1]) and candidates / labels[candidate_offsets[i] .. +1).
// News are indices into the NewsCatalog the file was read with.
struct Impressions {
  std::string source;  // the path, for messages
  std::vector<int64_t> impression_ids;
  IdMap users;                 // user id as written (U13740) <-> index, in order of first appearance
  std::vector<int32_t> user;   // per impression, into `users`
  std::vector<int64_t> times;  // per impression, Unix seconds (UTC)
  std::vector<int64_t> history_offsets{0};
  std::vector<int32_t> history;  // clicked news before the impression, oldest first (as MIND writes them)
  std::vector<int64_t> candidate_offsets{0};
  std::vector<int32_t> candidates;
  std::vector<int8_t> labels;  // 1 clicked, 0 shown and not clicked, -1 unknown (read with labels = false)
  std::vector<int64_t> lines;  // per impression, the 1-based source line

  int64_t size() const { return static_cast<int64_t>(impression_ids.size()); }
  const std::string& user_id(int64_t i) const { return users.external(user[i]); }
  Slice<int32_t> history_of(int64_t i) const {
    return {history.data() + history_offsets[i], history_offsets[i + 1] - history_offsets[i]};
  }
  Slice<int32_t> candidates_of(int64_t i) const {
    return {candidates.data() + candidate_offsets[i], candidate_offsets[i + 1] - candidate_offsets[i]};
  }
  Slice<int8_t> labels_of(int64_t i) const {
    return {labels.data() + candidate_offsets[i], candidate_offsets[i + 1] - candidate_offsets[i]};
  }
};

// Reads behaviors.tsv against the catalog of the same split. Errors name file, line and field:
//   "behaviors.tsv:4: expected 5 tab-separated fields, got 4"
//   "behaviors.tsv:4: field 'time': cannot parse '13/15/2019 8:55:22 AM' as a time like ... (month 13 is not 1-12)"
//   "behaviors.tsv:4: field 'history': unknown news id 'N999' (not in news.tsv)"
//   "behaviors.tsv:4: field 'impressions': candidate 2 'N12-x': expected '<news id>-1' or '<news id>-0'"
//   "behaviors.tsv:4: field 'impressions': no candidates"
//   "behaviors.tsv:9: impression id 5 appears on line 4 too"
// An empty history is allowed (MIND has users without clicks before the window); blank lines are skipped.
Impressions read_behaviors(const std::string& path, const NewsCatalog& news, const BehaviorsOptions& options = {});

// ---- words -------------------------------------------------------------------------------------------------

// The tokens of a title or abstract, after Microsoft Recommenders' newsrec word_tokenize (the regex
// `[\w]+|[.,!?;|]` over the lowercased text): maximal runs of word characters, and each of . , ! ? ; | as a token
// of its own; everything else (spaces, quotes, hyphens, apostrophes) separates. Word characters are ASCII letters,
// digits and '_', and non-ASCII letters; the common non-ASCII punctuation (U+00A0-U+00BF, U+2000-U+206F: curly
// quotes, dashes, ellipsis) separates like its ASCII kin, so "Trump’s" gives "trump", "s" as in Python. Lowercasing
// covers ASCII and Latin-1 (À-Þ); other scripts are kept as written.
std::vector<std::string> tokenize(std::string_view text);
// The same into `tokens` (cleared first), reusing its storage.
void tokenize(std::string_view text, std::vector<std::string>& tokens);

struct VocabularyOptions {
  // Words seen fewer times in the training news map to unknown, so that the unknown word's vector is trained on
  // real rare words and means something for the unseen words of dev and test news. // check = >= 1
  int32_t min_count = 3;
  // NRMS and NPA read titles only; abstracts would add rows no model reads.
  bool include_abstracts = false;
};

// Word -> index for the embedding table: 0 is padding, 1 an unknown word, then the kept words by descending count
// (ties alphabetical), so the table's first rows are the frequent words.
class Vocabulary {
 public:
  static constexpr int32_t kPadding = 0;
  static constexpr int32_t kUnknown = 1;

  // Counts the tokens of the training news only: words that appear only in dev or test news must stay unknown, as
  // they would be for news published after training.
  static Vocabulary build(const NewsCatalog& training_news, const VocabularyOptions& options = {});
  // The vocabulary whose words, in index order, are `words` (padding and unknown first, as word() lists them), with
  // their training counts: how an export's stored vocabulary is read back. A repeated word is an Error.
  static Vocabulary from_words(std::vector<std::string> words, std::vector<int64_t> counts);

  int32_t size() const { return static_cast<int32_t>(words_.size()); }  // padding and unknown included
  const std::string& word(int32_t index) const { return words_[index]; }
  int64_t count(int32_t index) const { return counts_[index]; }  // training count; 0 for padding and unknown
  // kUnknown when the word is not in the vocabulary.
  int32_t index(std::string_view word) const;

  // The first `max_length` tokens of `text` as indices, padded with kPadding to exactly max_length (truncation keeps
  // the start, as the reference code does: a title's first words carry its topic).
  std::vector<int32_t> encode(std::string_view text, int32_t max_length) const;
  void encode(std::string_view text, int32_t max_length, int32_t* out) const;

 private:
  std::vector<std::string> words_;
  std::vector<int64_t> counts_;
  std::unordered_map<std::string, int32_t> index_;
};

// Name -> index for categories, subcategories and users: 0 is padding and unknown (a category or user not in the
// training data), then the names sorted, from 1.
struct NameVocabulary {
  std::vector<std::string> names;  // names[0] is "" (padding / unknown)
  std::unordered_map<std::string, int32_t> index;

  // The distinct non-empty names, sorted (so the indices do not depend on file order).
  static NameVocabulary build(const std::vector<std::string>& names);
  int32_t size() const { return static_cast<int32_t>(names.size()); }
  int32_t find(std::string_view name) const;  // 0 when unknown
};

// Every news item of a catalog encoded for a model: row i is catalog index i.
struct EncodedNews {
  int32_t title_length = 0;
  int32_t abstract_length = 0;
  std::vector<int32_t> titles;     // size() x title_length, row-major
  std::vector<int32_t> abstracts;  // size() x abstract_length (empty when abstract_length is 0)
  std::vector<int32_t> categories;
  std::vector<int32_t> subcategories;
};

// Encodes a catalog (of any split) with vocabularies built from the training split.
EncodedNews encode_news(const NewsCatalog& news, const Vocabulary& words, const NameVocabulary& categories,
                        const NameVocabulary& subcategories, int32_t title_length, int32_t abstract_length = 0);

// ---- pre-trained word vectors ------------------------------------------------------------------------------

struct WordVectorOptions {
  // 0: taken from the first vector line. // check = >= 0
  int32_t dimension = 0;
  // glove.840B.300d has a few "words" with spaces in them (". . ."); true takes the last `dimension` fields of a
  // longer line as the vector and the rest as the word. Needs `dimension` set: the first line cannot tell.
  bool words_with_spaces = false;
};

// Vectors of a GloVe text file (`word v1 v2 ... vd` per line, separated by single spaces). A first line of exactly
// two integers (`count dimension`, word2vec / fastText .vec) is read as a header. When a word appears twice, the
// first vector is kept.
struct WordVectors {
  int32_t dimension = 0;
  IdMap words;
  std::vector<float> values;  // words.size() x dimension
  const float* vector(int32_t word) const { return values.data() + static_cast<int64_t>(word) * dimension; }
};

// Reads word vectors; with `keep_only`, only the vocabulary's words are kept (GloVe 840B has 2.2 M words, the MIND
// vocabulary some 30 k: the values of the other lines are not parsed, their value count is still checked).
// "glove.txt:7: expected 300 values (dimension 300), got 299"; "glove.txt:7: value 3: cannot parse 'x' as a number".
WordVectors read_word_vectors(const std::string& path, const Vocabulary* keep_only = nullptr,
                              const WordVectorOptions& options = {});

// The initial embedding table of a vocabulary: row w is the pre-trained vector of word w when there is one
// (found[w] = 1), else zeros with found[w] = 0 for the model to initialise and learn. Padding and unknown are never
// found.
struct PretrainedEmbedding {
  int32_t dimension = 0;
  std::vector<float> values;   // vocabulary.size() x dimension
  std::vector<uint8_t> found;  // per vocabulary row
  int32_t found_count = 0;
};
PretrainedEmbedding pretrained_embedding(const Vocabulary& vocabulary, const WordVectors& vectors);

}  // namespace embrec::data
