// Helpers shared by the news model tests (NRMS, NPA): a tiny hand-made news dataset, generated MIND folders loaded as
// news data, impression training batches, training, the mean impression AUC of a model, and copying a model's state.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "embrec/data/mind_generator.h"
#include "embrec/data/news.h"
#include "embrec/eval/impression_metrics.h"
#include "embrec/models/news_layers.h"
#include "embrec/util/error.h"

namespace embrec::models::testing {

// A dataset of hand-written news (title, category, subcategory) for `users` users, the vocabulary built from all
// titles (every word kept); users in `trained_users` have a training impression.
struct TinyNews {
  data::Dataset dataset;
  data::Split split;
};

inline TinyNews tiny_news(const std::vector<std::vector<std::string>>& news, int32_t users,
                          const std::vector<int32_t>& trained_users = {}, int32_t title_length = 6) {
  data::NewsCatalog catalog;
  for (size_t n = 0; n < news.size(); ++n) {
    catalog.ids.get_or_add("N" + std::to_string(n + 1));
    catalog.titles.push_back(news[n][0]);
    catalog.categories.push_back(news[n].size() > 1 ? news[n][1] : "");
    catalog.subcategories.push_back(news[n].size() > 2 ? news[n][2] : "");
    catalog.abstracts.emplace_back();
    catalog.lines.push_back(static_cast<int64_t>(n + 1));
  }
  auto content = std::make_shared<data::NewsContent>();
  data::VocabularyOptions vocabulary_options;
  vocabulary_options.min_count = 1;
  content->words = data::Vocabulary::build(catalog, vocabulary_options);
  content->categories = data::NameVocabulary::build(catalog.categories);
  content->subcategories = data::NameVocabulary::build(catalog.subcategories);
  content->encoded =
      data::encode_news(catalog, content->words, content->categories, content->subcategories, title_length);
  TinyNews out;
  out.dataset.name = "tiny-news";
  for (int32_t n = 0; n < catalog.size(); ++n) out.dataset.items.get_or_add(catalog.ids.external(n));
  for (int32_t u = 0; u < users; ++u) out.dataset.users.get_or_add("U" + std::to_string(u + 1));
  out.dataset.news = content;
  auto impressions = std::make_shared<data::ImpressionSplit>();
  for (int32_t user : trained_users) {
    impressions->train.user.push_back(user);
    impressions->train.times.push_back(0);
    impressions->train.candidates.push_back(0);
    impressions->train.labels.push_back(1);
    impressions->train.candidate_offsets.push_back(static_cast<int64_t>(impressions->train.candidates.size()));
  }
  out.split.impressions = impressions;
  return out;
}

// The model a `[model]` table's text describes on this data, as type M; torch's generator seeded first.
template <typename M>
std::unique_ptr<M> make_news_model(const std::string& toml_text, const data::Dataset& dataset, const data::Split& split,
                                   uint64_t torch_seed = 1) {
  ConfigTable table = ConfigTable::parse_string(toml_text, "test.toml");
  ModelContext context;
  context.item_count = dataset.item_count();
  context.user_count = dataset.user_count();
  context.dataset = &dataset;
  context.split = &split;
  torch::manual_seed(torch_seed);
  std::unique_ptr<Model> model = create_model(table, context);
  table.finish();
  return std::unique_ptr<M>(dynamic_cast<M*>(model.release()));
}

// The same model type rebuilt as a served export does: no data, the encoder state, the weights copied.
template <typename M>
std::unique_ptr<M> rebuild_from_encoder_state(M& model, const std::string& toml_text, int32_t item_count,
                                              int32_t user_count) {
  ConfigTable table = ConfigTable::parse_string(toml_text, "test.toml");
  ModelContext context;
  context.item_count = item_count;
  context.user_count = user_count;
  context.encoder_state = model.encoder_state();
  torch::manual_seed(99);  // different initial weights: the copy must bring the trained ones
  std::unique_ptr<Model> built = create_model(table, context);
  table.finish();
  std::unique_ptr<M> out(dynamic_cast<M*>(built.release()));
  torch::serialize::OutputArchive archive;
  model.module().save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  torch::serialize::InputArchive input;
  const std::string text = bytes.str();
  input.load_from(text.data(), text.size());
  out->module().load(input);
  return out;
}

// Generated MIND folders (data/mind_generator.h) written into `folder`, loaded as news data, and removed.
inline data::NewsData generated_mind(const data::MindGeneratorOptions& generator, const std::string& folder,
                                     int32_t title_length) {
  data::generate_mind(generator, folder);
  data::MindOptions options;
  options.train_folder = folder + "/train";
  options.dev_folder = folder + "/dev";
  options.title_length = title_length;
  options.vocabulary.min_count = 1;
  data::NewsData out = data::load_mind(options);
  std::filesystem::remove_all(folder);  // all of it is in memory now
  return out;
}

// One training row per click of a training impression: the user, its history, the click then `npratio` unclicked
// news of the impression (drawn with replacement when it has fewer), as ids + 1.
struct ImpressionRow {
  int64_t user = 0;
  std::vector<int64_t> history;     // the last `history_length`, right-aligned when batched
  std::vector<int64_t> candidates;  // 1 + npratio
};

inline std::vector<ImpressionRow> impression_rows(const data::ImpressionSplit& impressions, int64_t history_length,
                                                  int64_t npratio, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<ImpressionRow> rows;
  const data::ImpressionSet& set = impressions.train;
  for (int64_t i = 0; i < set.size(); ++i) {
    const int32_t user = set.user[i];
    std::vector<int64_t> clicked, unclicked;
    for (int64_t c = set.candidate_offsets[i]; c < set.candidate_offsets[i + 1]; ++c)
      (set.labels[c] == 1 ? clicked : unclicked).push_back(set.candidates[c] + 1);
    if (unclicked.empty()) continue;
    const data::Sequences& histories = impressions.train_history;
    const int32_t* end = histories.end(user);
    const int32_t* begin = end - std::min(histories.length(user), history_length);
    for (int64_t click : clicked) {
      ImpressionRow row;
      row.user = user;
      for (const int32_t* it = begin; it != end; ++it) row.history.push_back(*it + 1);
      row.candidates.push_back(click);
      for (int64_t k = 0; k < npratio; ++k)
        row.candidates.push_back(unclicked[std::uniform_int_distribution<size_t>(0, unclicked.size() - 1)(random)]);
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

// Three impression rows over the tiny news of tiny_news (ids + 1): histories (the last row has none) and a click
// with two unclicked candidates each.
inline TensorBatch tiny_impression_batch() {
  TensorBatch batch;
  batch.users = torch::tensor({0, 1, 2}, torch::kLong);
  batch.input = torch::tensor({{0, 1, 3}, {2, 4, 6}, {0, 0, 0}}, torch::kLong);
  batch.candidates = torch::tensor({{3, 5, 2}, {1, 2, 3}, {6, 5, 4}}, torch::kLong);
  return batch;
}

// rows[first, first + count) as a training batch, histories right-aligned to the batch's longest (at least 1).
inline TensorBatch impression_batch(const std::vector<ImpressionRow>& rows, size_t first, size_t count) {
  int64_t length = 1;
  for (size_t r = first; r < first + count; ++r) length = std::max<int64_t>(length, rows[r].history.size());
  const int64_t width = static_cast<int64_t>(rows[first].candidates.size());
  auto users = torch::zeros({static_cast<int64_t>(count)}, torch::kLong);
  auto input = torch::zeros({static_cast<int64_t>(count), length}, torch::kLong);
  auto candidates = torch::zeros({static_cast<int64_t>(count), width}, torch::kLong);
  for (size_t k = 0; k < count; ++k) {
    const ImpressionRow& row = rows[first + k];
    const int64_t n = static_cast<int64_t>(k);
    users[n] = row.user;
    const int64_t used = static_cast<int64_t>(row.history.size());
    if (used > 0) input[n].narrow(0, length - used, used).copy_(torch::tensor(row.history, torch::kLong));
    candidates[n].copy_(torch::tensor(row.candidates, torch::kLong));
  }
  TensorBatch batch;
  batch.users = users;
  batch.input = input;
  batch.candidates = candidates;
  return batch;
}

// `steps` Adam steps over shuffled batches of `rows`.
inline void train_steps(Model& model, const std::vector<ImpressionRow>& all_rows, int64_t steps, size_t batch_size,
                        double learning_rate, uint64_t seed) {
  std::vector<ImpressionRow> rows = all_rows;
  std::mt19937_64 random(seed);
  torch::optim::Adam optimizer(model.module().parameters(), torch::optim::AdamOptions(learning_rate));
  model.module().train();
  size_t next = rows.size();
  for (int64_t step = 0; step < steps; ++step) {
    if (next + batch_size > rows.size()) {
      std::shuffle(rows.begin(), rows.end(), random);
      next = 0;
    }
    optimizer.zero_grad();
    model.loss(impression_batch(rows, next, batch_size)).total.backward();
    optimizer.step();
    next += batch_size;
  }
}

// The mean AUC over `set`'s impressions of scores user vector . item vector, users encoded from `histories`.
inline double mean_auc(Model& model, const data::ImpressionSet& set, const data::Sequences& histories) {
  const int32_t users = histories.user_count();
  std::vector<int32_t> ids(users);
  for (int32_t u = 0; u < users; ++u) ids[u] = u;
  const torch::Tensor user_vectors = model.user_vectors(histories, ids.data(), users).contiguous();
  const torch::Tensor item_vectors = model.item_vectors().contiguous();
  const int64_t dim = item_vectors.size(1);
  const float* user_data = user_vectors.data_ptr<float>();
  const float* item_data = item_vectors.data_ptr<float>();
  std::vector<float> scores(set.candidates.size());
  for (int64_t i = 0; i < set.size(); ++i)
    for (int64_t c = set.candidate_offsets[i]; c < set.candidate_offsets[i + 1]; ++c) {
      const float* u = user_data + static_cast<int64_t>(set.user[i]) * dim;
      const float* v = item_data + static_cast<int64_t>(set.candidates[c]) * dim;
      float score = 0.0f;
      for (int64_t k = 0; k < dim; ++k) score += u[k] * v[k];
      scores[c] = score;
    }
  return eval::mean_impression_metrics(set.candidate_offsets.data(), set.size(), set.labels.data(), scores.data()).auc;
}

// A fresh folder under the test temporary directory.
inline std::string news_test_folder(const std::string& name) {
  const std::string folder = ::testing::TempDir() + "embrec-news-" + name + "-" + std::to_string(::getpid());
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  return folder;
}

// The learning test both news models share: a fresh model of type M (`toml`) on generated MIND (1,000 users, 3,000
// news), `steps` impression batches of 32 at learning rate `lr`; the dev AUC must end above 0.6 and 0.05 above the
// untrained model's.
template <typename M>
void expect_learns_on_generated_mind(const std::string& name, const std::string& toml, int64_t steps, double lr) {
  const auto start = std::chrono::steady_clock::now();
  data::MindGeneratorOptions generator;
  generator.users = 1000;
  generator.news = 3000;
  const data::NewsData mind = generated_mind(generator, news_test_folder(name), 12);
  auto model = make_news_model<M>(toml, mind.dataset, mind.split);
  const data::ImpressionSplit& impressions = *mind.split.impressions;
  const double untrained = mean_auc(*model, impressions.test, impressions.test_history);
  const std::vector<ImpressionRow> rows = impression_rows(impressions, 10, 4, 7);
  train_steps(*model, rows, steps, 32, lr, 3);
  const double trained = mean_auc(*model, impressions.test, impressions.test_history);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s on generated MIND: %zu training rows, dev AUC %.3f untrained -> %.3f after %lld steps (%.1f s)\n",
              name.c_str(), rows.size(), untrained, trained, static_cast<long long>(steps), seconds);
  EXPECT_GT(trained, 0.6);
  EXPECT_GT(trained, untrained + 0.05);
}

}  // namespace embrec::models::testing
