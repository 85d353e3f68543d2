// MIND folders as a Dataset and Split (see news.h for the layout of items, users and stages).
#include "embrec/data/news.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <utility>

#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::data {

namespace {

constexpr int64_t kDay = 86400;

struct MindFolder {
  NewsCatalog news;
  Impressions behaviors;
};

MindFolder read_folder(const std::string& folder) {
  for (const char* file : {"news.tsv", "behaviors.tsv"})
    if (!file_exists(folder + "/" + file)) fail("{}: no {} (a MIND folder holds news.tsv and behaviors.tsv)", folder, file);
  MindFolder read;
  read.news = read_news(folder + "/news.tsv");
  read.behaviors = read_behaviors(folder + "/behaviors.tsv", read.news);
  return read;
}

// The dataset's name: the train folder's, or its parent's when the folder is just "train".
std::string dataset_name(const std::string& train_folder) {
  std::filesystem::path path = std::filesystem::path(train_folder).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();
  if (path.filename() == "train" && path.has_parent_path() && path.parent_path().has_filename())
    return path.parent_path().filename().string();
  return path.filename().string();
}

// Per user of `users`, the history the file's impressions carry, on internal item ids; a user whose impressions carry
// different histories is an error naming both lines.
Sequences histories_of(const Impressions& behaviors, const std::vector<int32_t>& item_of, const IdMap& users) {
  std::vector<int64_t> first(users.size(), -1);  // per user, the first impression (row) that carries its history
  for (int64_t i = 0; i < behaviors.size(); ++i) {
    const int32_t user = users.find(behaviors.user_id(i));
    int64_t& seen = first[user];
    if (seen < 0) {
      seen = i;
      continue;
    }
    const Slice<int32_t> a = behaviors.history_of(seen), b = behaviors.history_of(i);
    if (a.size != b.size || !std::equal(a.begin(), a.end(), b.begin()))
      fail("{}:{}: user {}'s click history differs from the one on line {} (embrec keeps one history per user and "
           "file, as MIND writes it)",
           display_name(behaviors.source), behaviors.lines[i], behaviors.user_id(i), behaviors.lines[seen]);
  }
  Sequences histories;
  std::vector<int32_t> row;
  for (int32_t user = 0; user < users.size(); ++user) {
    row.clear();
    if (first[user] >= 0)
      for (const int32_t news : behaviors.history_of(first[user])) row.push_back(item_of[news]);
    histories.push_user(row.data(), static_cast<int64_t>(row.size()));
  }
  return histories;
}

// Appends impression i of `behaviors` to `set` on internal ids.
void add_impression(const Impressions& behaviors, int64_t i, const std::vector<int32_t>& item_of, int32_t user,
                    ImpressionSet& set) {
  set.user.push_back(user);
  set.times.push_back(behaviors.times[i]);
  for (const int32_t news : behaviors.candidates_of(i)) set.candidates.push_back(item_of[news]);
  const Slice<int8_t> labels = behaviors.labels_of(i);
  set.labels.insert(set.labels.end(), labels.begin(), labels.end());
  set.candidate_offsets.push_back(static_cast<int64_t>(set.candidates.size()));
}

// Per user, the clicked candidates of `set` in time order (ties in impression order).
Sequences clicks_of(const ImpressionSet& set, int32_t user_count) {
  std::vector<int64_t> order(static_cast<size_t>(set.size()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return set.times[a] < set.times[b]; });
  std::vector<std::vector<int32_t>> per_user(static_cast<size_t>(user_count));
  for (const int64_t i : order)
    for (int64_t c = set.candidate_offsets[i]; c < set.candidate_offsets[i + 1]; ++c)
      if (set.labels[c] == 1) per_user[set.user[i]].push_back(set.candidates[c]);
  Sequences clicks;
  for (const std::vector<int32_t>& row : per_user) clicks.push_user(row.data(), static_cast<int64_t>(row.size()));
  return clicks;
}

std::vector<uint8_t> candidate_mask(const ImpressionSet& set, int32_t item_count) {
  std::vector<uint8_t> mask(static_cast<size_t>(item_count), 0);
  for (const int32_t item : set.candidates) mask[item] = 1;
  return mask;
}

}  // namespace

NewsData load_mind(const MindOptions& options) {
  if (options.valid_days < 1) fail("mind: valid_days must be >= 1, got {}", options.valid_days);
  if (options.title_length < 1) fail("mind: title_length must be >= 1, got {}", options.title_length);
  const MindFolder train = read_folder(options.train_folder);
  const MindFolder dev = read_folder(options.dev_folder);
  for (const Impressions* behaviors : {&train.behaviors, &dev.behaviors})
    if (behaviors->size() == 0) fail("{}: no impressions", behaviors->source);

  NewsData out;
  Dataset& dataset = out.dataset;
  dataset.name = dataset_name(options.train_folder);
  // Items: the train folder's news in file order (so its catalog index is the item id), then the dev folder's new
  // ones; the union catalog is what encode_news reads.
  NewsCatalog all = train.news;
  for (const std::string& id : train.news.ids.externals()) dataset.items.get_or_add(id);
  std::vector<int32_t> train_item(static_cast<size_t>(train.news.size()));
  std::iota(train_item.begin(), train_item.end(), 0);
  std::vector<int32_t> dev_item(static_cast<size_t>(dev.news.size()));
  for (int32_t n = 0; n < dev.news.size(); ++n) {
    const std::string& id = dev.news.ids.external(n);
    const int32_t known = dataset.items.find(id);
    if (known >= 0) {
      dev_item[n] = known;
      continue;
    }
    dev_item[n] = dataset.items.get_or_add(id);
    all.ids.get_or_add(id);
    all.categories.push_back(dev.news.categories[n]);
    all.subcategories.push_back(dev.news.subcategories[n]);
    all.titles.push_back(dev.news.titles[n]);
    all.abstracts.push_back(dev.news.abstracts[n]);
    all.lines.push_back(dev.news.lines[n]);
  }
  for (const Impressions* behaviors : {&train.behaviors, &dev.behaviors})
    for (const std::string& user : behaviors->users.externals()) dataset.users.get_or_add(user);

  auto content = std::make_shared<NewsContent>();
  content->words = Vocabulary::build(train.news, options.vocabulary);
  content->categories = NameVocabulary::build(train.news.categories);
  content->subcategories = NameVocabulary::build(train.news.subcategories);
  content->encoded =
      encode_news(all, content->words, content->categories, content->subcategories, options.title_length);
  if (!options.word_vectors.empty()) {
    content->pretrained = pretrained_embedding(
        content->words, read_word_vectors(options.word_vectors, &content->words, options.word_vector_options));
    spdlog::info("{}: vectors for {} of {} words", options.word_vectors, content->pretrained.found_count,
                 content->words.size() - 2);
  }

  // Stages: the train folder's last valid_days (UTC) days are valid.
  auto impressions = std::make_shared<ImpressionSplit>();
  const int64_t last_day = *std::max_element(train.behaviors.times.begin(), train.behaviors.times.end()) / kDay;
  const int64_t first_day = *std::min_element(train.behaviors.times.begin(), train.behaviors.times.end()) / kDay;
  if (last_day - first_day + 1 <= options.valid_days)
    fail("{}: impressions span {} day(s); valid_days = {} leaves none to train on", train.behaviors.source,
         last_day - first_day + 1, options.valid_days);
  for (int64_t i = 0; i < train.behaviors.size(); ++i) {
    const bool valid = train.behaviors.times[i] / kDay > last_day - options.valid_days;
    add_impression(train.behaviors, i, train_item, dataset.users.find(train.behaviors.user_id(i)),
                   valid ? impressions->valid : impressions->train);
  }
  for (int64_t i = 0; i < dev.behaviors.size(); ++i)
    add_impression(dev.behaviors, i, dev_item, dataset.users.find(dev.behaviors.user_id(i)), impressions->test);
  impressions->train_history = histories_of(train.behaviors, train_item, dataset.users);
  impressions->test_history = histories_of(dev.behaviors, dev_item, dataset.users);
  impressions->valid_news = candidate_mask(impressions->valid, dataset.item_count());
  impressions->test_news = candidate_mask(impressions->test, dataset.item_count());

  Split& split = out.split;
  split.method = "impressions";
  split.train = Sequences::concat(impressions->train_history, clicks_of(impressions->train, dataset.user_count()));
  split.valid = clicks_of(impressions->valid, dataset.user_count());
  split.test = clicks_of(impressions->test, dataset.user_count());
  dataset.interactions = Sequences::concat(Sequences::concat(split.train, split.valid), split.test);
  spdlog::info("{}: {} news, {} users, impressions train {} / valid {} / test {}", dataset.name,
               dataset.item_count(), dataset.user_count(), impressions->train.size(), impressions->valid.size(),
               impressions->test.size());
  dataset.news = std::move(content);
  split.impressions = std::move(impressions);
  return out;
}

EncodedArticle encode_article(const NewsContent& content, const NewsText& text) {
  EncodedArticle article;
  article.title = content.words.encode(text.title, content.title_length());
  article.category = content.categories.find(text.category);
  article.subcategory = content.subcategories.find(text.subcategory);
  return article;
}

std::string vocabularies_to_json(const NewsContent& content) {
  nlohmann::json words = nlohmann::json::array(), counts = nlohmann::json::array();
  for (int32_t w = 0; w < content.words.size(); ++w) {
    words.push_back(content.words.word(w));
    counts.push_back(content.words.count(w));
  }
  const nlohmann::json json = {{"title_length", content.title_length()},
                               {"words", words},
                               {"word_counts", counts},
                               {"categories", content.categories.names},
                               {"subcategories", content.subcategories.names}};
  return json.dump();
}

NewsContent vocabularies_from_json(const std::string& text) {
  NewsContent content;
  try {
    const nlohmann::json json = nlohmann::json::parse(text);
    content.encoded.title_length = json.at("title_length").get<int32_t>();
    content.words = Vocabulary::from_words(json.at("words").get<std::vector<std::string>>(),
                                           json.at("word_counts").get<std::vector<int64_t>>());
    for (auto [key, names] : {std::pair<const char*, NameVocabulary*>{"categories", &content.categories},
                              {"subcategories", &content.subcategories}}) {
      names->names = json.at(key).get<std::vector<std::string>>();
      for (int32_t i = 1; i < names->size(); ++i) names->index.emplace(names->names[i], i);
    }
  } catch (const nlohmann::json::exception& error) {
    fail("news vocabularies: {}", error.what());
  }
  return content;
}

}  // namespace embrec::data
