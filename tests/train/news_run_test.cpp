// A news model end to end: NRMS trained on generated MIND-format data by the trainer (impression batches,
// per-impression validation and results), exported with every news indexed (their vectors come from their text), and
// served: an article posted to POST /v1/news is encoded by the export's own encoder and recommendable at once,
// scored exactly as the catalogue's news with the same text.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "embrec/data/news.h"
#include "embrec/serve/service.h"
#include "embrec/train/run_folder.h"
#include "embrec/train/trainer.h"
#include "train_fixtures.h"

namespace embrec::train {
namespace {

using json = nlohmann::json;

serve::HttpRequest post(const std::string& path, const json& body) {
  serve::HttpRequest request;
  request.method = "POST";
  request.path = path;
  request.body = body.dump();
  request.remote_address = "127.0.0.1";
  return request;
}

TEST(NewsRun, TrainedNrmsExportsEveryNewsAndServesAnArticlePostedLive) {
  const std::string run_dir = temporary_folder("news-run"), out = temporary_folder("news-export") + "/export";
  Experiment experiment = experiment_from(R"(
[data]
demo = "mind"
title_length = 12
[data.demo_options]
users = 200
items = 800
seed = 5
[model]
name = "nrms"
word_dim = 16
heads = 2
head_dim = 8
attention_hidden = 16
history = 10
dropout = 0.0
[train]
epochs = 1
batch_size = 32
learning_rate = 0.001
threads = 1
seed = 3
[eval]
ks = [10]
metrics = ["recall", "ndcg"]
select = "auc"
)");
  const TrainSummary summary = train(experiment, {run_dir, false, -1});
  for (const eval::EvalResult* stage : {&summary.valid, &summary.test}) {
    const double auc = stage->value("auc");
    EXPECT_TRUE(auc > 0.0 && auc < 1.0) << auc;
    EXPECT_GT(stage->value("impressions"), 0.0);
    EXPECT_TRUE(std::isfinite(stage->value("impression_ndcg@10")));
  }

  // Every news is indexed: most were never clicked in training, yet their vectors come from their text.
  const index::Manifest manifest = export_run(run_dir, out, index::ExportOptions());
  const data::Dataset& dataset = experiment.data.dataset;
  EXPECT_EQ(manifest.item_count, dataset.item_count());
  serve::ServeConfig config;
  config.max_k = dataset.item_count() + 1;  // the whole ranking, to find both the article and its twin in it
  serve::Service service(config, out, export_encoder_factory());
  EXPECT_EQ(service.bundle()->data.index.size(), dataset.item_count());

  // A twin of a catalogue news: the same title (rebuilt from its words), category and subcategory.
  const data::NewsContent& news = *dataset.news;
  int32_t twin = -1;
  std::string title;
  for (int32_t item = 0; item < dataset.item_count() && twin < 0; ++item) {
    const int32_t* words = news.title(item);
    std::string text;
    bool known = true;
    for (int32_t w = 0; w < news.title_length() && words[w] != data::Vocabulary::kPadding; ++w) {
      known &= words[w] != data::Vocabulary::kUnknown;
      text += (text.empty() ? "" : " ") + news.words.word(words[w]);
    }
    if (known && !text.empty()) {
      twin = item;
      title = text;
    }
  }
  ASSERT_GE(twin, 0);
  const json article = {{"id", "FRESH1"},
                        {"title", title},
                        {"category", news.categories.names[news.encoded.categories[twin]]},
                        {"subcategory", news.subcategories.names[news.encoded.subcategories[twin]]}};
  const serve::HttpResponse added = service.handle(post("/v1/news", article));
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(service.handle(post("/v1/news", article)).status, 409);

  // Recommended at once, with its twin's score, for a history of catalogue news.
  const std::string twin_id = dataset.items.external(twin);
  const json request = {{"history", {dataset.items.external(1), dataset.items.external(2)}},
                        {"k", dataset.item_count() + 1},
                        {"exclude_seen", false}};
  const serve::HttpResponse ranked = service.handle(post("/v1/recommendations", request));
  ASSERT_EQ(ranked.status, 200) << ranked.body;
  double fresh_score = NAN, twin_score = NAN;
  const json ranking = json::parse(ranked.body);
  for (const json& hit : ranking["items"]) {
    if (hit["item"] == "FRESH1") fresh_score = hit["score"].get<double>();
    if (hit["item"] == twin_id) twin_score = hit["score"].get<double>();
  }
  EXPECT_EQ(ranking["items"].size(), static_cast<size_t>(dataset.item_count() + 1));
  EXPECT_NEAR(fresh_score, twin_score, 1e-4 * std::max(1.0, std::abs(twin_score)));
  // A title without a word the model knows is refused, naming why.
  const serve::HttpResponse unknown =
      service.handle(post("/v1/news", {{"id", "FRESH2"}, {"title", "zzzq xxqv"}, {"category", "news"}}));
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  const serve::HttpResponse typo =
      service.handle(post("/v1/news", {{"id", "FRESH3"}, {"title", title}, {"category", "sprots"}}));
  EXPECT_EQ(typo.status, 400) << typo.body;
  EXPECT_NE(typo.body.find("unknown category 'sprots' (known: "), std::string::npos) << typo.body;
  service.stop();
  std::filesystem::remove_all(run_dir);
  std::filesystem::remove_all(std::filesystem::path(out).parent_path());
}

}  // namespace
}  // namespace embrec::train
