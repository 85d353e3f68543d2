// News data: MIND folders as a Dataset and Split (ids, stages by day, histories, clicks, the news of each stage),
// the impression sampler (npratio, one click per row, negatives from the same impression), the [data] keys of news
// data and their errors, and the vocabularies an export keeps.
#include "embrec/data/news.h"

#include <gtest/gtest.h>

#include <set>

#include "embrec/data/load.h"
#include "embrec/data/sampler.h"
#include "file_fixture.h"
#include "../util/error_of.h"

namespace embrec::data {
namespace {

// Train: news N1-N5; U1 and U2 on 11/9 (day 1) and U1 again on 11/10 (day 2, the valid day). Dev: N1 and the new N6.
const char* const kTrainNews =
    "N1\tsports\tnfl\tBills win again\t\t\t[]\t[]\n"
    "N2\tnews\tus\tStorm hits the coast\t\t\t[]\t[]\n"
    "N3\tsports\tnba\tLakers sign a star\t\t\t[]\t[]\n"
    "N4\tnews\tworld\tElection day nears\t\t\t[]\t[]\n"
    "N5\tfinance\tmarkets\tStocks fall again\t\t\t[]\t[]\n";
const char* const kTrainBehaviors =
    "1\tU1\t11/9/2019 9:00:00 AM\tN1 N2\tN3-1 N4-0 N5-0\n"
    "2\tU2\t11/9/2019 10:00:00 AM\t\tN1-0 N3-1 N5-1\n"
    "3\tU1\t11/9/2019 8:00:00 AM\tN1 N2\tN5-1 N4-0\n"
    "4\tU1\t11/10/2019 9:00:00 AM\tN1 N2\tN4-1 N3-0\n";
const char* const kDevNews =
    "N1\tsports\tnfl\tBills win again\t\t\t[]\t[]\n"
    "N2\tnews\tus\tStorm hits the coast\t\t\t[]\t[]\n"
    "N3\tsports\tnba\tLakers sign a star\t\t\t[]\t[]\n"
    "N6\tsports\tnewcat\tA brand new story\t\t\t[]\t[]\n";
const char* const kDevBehaviors =
    "1\tU3\t11/11/2019 9:00:00 AM\tN1\tN6-1 N1-0\n"
    "2\tU1\t11/11/2019 9:30:00 AM\tN1 N2 N3\tN1-0 N6-1\n";

class NewsData : public testing::FileTest {
 protected:
  NewsData() : FileTest("news-data") {}
  MindOptions write_folders(const std::string& train_behaviors = kTrainBehaviors) {
    std::filesystem::create_directories(folder_ / "train");
    std::filesystem::create_directories(folder_ / "dev");
    write("train/news.tsv", kTrainNews);
    write("train/behaviors.tsv", train_behaviors);
    write("dev/news.tsv", kDevNews);
    write("dev/behaviors.tsv", kDevBehaviors);
    MindOptions options;
    options.train_folder = (folder_ / "train").string();
    options.dev_folder = (folder_ / "dev").string();
    options.vocabulary.min_count = 1;
    options.title_length = 4;
    return options;
  }
  static std::vector<std::string> items_of(const Dataset& dataset, const Sequences& lists, int32_t user) {
    std::vector<std::string> out;
    for (const int32_t* it = lists.begin(user); it != lists.end(user); ++it) out.push_back(dataset.items.external(*it));
    return out;
  }
};

using Names = std::vector<std::string>;

TEST_F(NewsData, ItemsUsersStagesAndHistoriesFollowTheFolders) {
  const data::NewsData loaded = load_mind(write_folders());
  const Dataset& dataset = loaded.dataset;
  const Split& split = loaded.split;
  EXPECT_EQ(dataset.name, "embrec-news-data-" + std::to_string(::getpid()));  // the parent of a folder named train
  EXPECT_EQ(dataset.items.externals(), (Names{"N1", "N2", "N3", "N4", "N5", "N6"}));
  EXPECT_EQ(dataset.users.externals(), (Names{"U1", "U2", "U3"}));
  ASSERT_TRUE(split.impressions);
  const ImpressionSplit& stages = *split.impressions;
  // 11/10 is the train folder's last day: the valid stage.
  EXPECT_EQ(stages.train.size(), 3);
  EXPECT_EQ(stages.valid.size(), 1);
  EXPECT_EQ(stages.test.size(), 2);
  EXPECT_EQ(stages.valid.user, (std::vector<int32_t>{0}));
  EXPECT_EQ(stages.valid.candidates, (std::vector<int32_t>{3, 2}));
  EXPECT_EQ(stages.valid.labels, (std::vector<int8_t>{1, 0}));
  // Dev candidates on the union ids: N1 is item 0, N6 the new item 5.
  EXPECT_EQ(stages.test.candidates, (std::vector<int32_t>{5, 0, 0, 5}));
  EXPECT_EQ(items_of(dataset, stages.train_history, 0), (Names{"N1", "N2"}));
  EXPECT_EQ(items_of(dataset, stages.train_history, 1), Names{});
  EXPECT_EQ(items_of(dataset, stages.train_history, 2), Names{});  // U3 is only in dev
  EXPECT_EQ(items_of(dataset, stages.test_history, 0), (Names{"N1", "N2", "N3"}));
  EXPECT_EQ(items_of(dataset, stages.test_history, 2), (Names{"N1"}));
  // Split::train: the history, then the training clicks by time (line 3's 8:00 click before line 1's 9:00).
  EXPECT_EQ(items_of(dataset, split.train, 0), (Names{"N1", "N2", "N5", "N3"}));
  EXPECT_EQ(items_of(dataset, split.train, 1), (Names{"N3", "N5"}));
  EXPECT_EQ(items_of(dataset, split.valid, 0), (Names{"N4"}));
  EXPECT_EQ(items_of(dataset, split.test, 0), (Names{"N6"}));
  EXPECT_EQ(items_of(dataset, split.test, 2), (Names{"N6"}));
  EXPECT_EQ(stages.valid_news, (std::vector<uint8_t>{0, 0, 1, 1, 0, 0}));
  EXPECT_EQ(stages.test_news, (std::vector<uint8_t>{1, 0, 0, 0, 0, 1}));

  // The stages as evaluation tasks: each its own histories, impressions and news of the day.
  const EvalTask valid = make_eval_task(split, false), test = make_eval_task(split, true);
  EXPECT_EQ(items_of(dataset, valid.history, 0), (Names{"N1", "N2"}));
  EXPECT_EQ(items_of(dataset, test.history, 0), (Names{"N1", "N2", "N3"}));
  EXPECT_EQ(valid.impressions.get(), &stages.valid);
  EXPECT_EQ(test.impressions.get(), &stages.test);
  EXPECT_EQ(test.rankable, stages.test_news);

  // Vocabularies from training news only: "brand" (dev only) is unknown; the new subcategory too.
  const NewsContent& news = *dataset.news;
  EXPECT_EQ(news.words.index("brand"), Vocabulary::kUnknown);
  EXPECT_NE(news.words.index("stocks"), Vocabulary::kUnknown);
  EXPECT_EQ(news.encoded.subcategories[5], 0);
  EXPECT_EQ(news.encoded.categories[5], news.categories.find("sports"));
  EXPECT_EQ(news.title_length(), 4);
}

TEST_F(NewsData, AUserWhoseHistoriesDifferIsAnErrorNamingBothLines) {
  const std::string behaviors = std::string(kTrainBehaviors) + "5\tU2\t11/9/2019 11:00:00 AM\tN4\tN1-1 N2-0\n";
  const std::string error = error_of([&] { load_mind(write_folders(behaviors)); });
  EXPECT_NE(error.find("behaviors.tsv:5: user U2's click history differs from the one on line 2"), std::string::npos)
      << error;
}

TEST_F(NewsData, ValidDaysThatLeaveNothingToTrainOnAreAnError) {
  MindOptions options = write_folders();
  options.valid_days = 2;
  EXPECT_NE(error_of([&] { load_mind(options); }).find("impressions span 2 day(s); valid_days = 2 leaves none"),
            std::string::npos);
  options.valid_days = 1;
  std::filesystem::remove(folder_ / "dev" / "behaviors.tsv");
  EXPECT_NE(error_of([&] { load_mind(options); }).find("dev: no behaviors.tsv"), std::string::npos);
}

TEST_F(NewsData, ImpressionSamplerPairsEachClickWithUnclickedNewsOfItsImpression) {
  const data::NewsData loaded = load_mind(write_folders());
  const ImpressionSplit& stages = *loaded.split.impressions;
  SamplerOptions options;
  options.impressions = true;
  options.npratio = 4;
  options.max_length = 1;
  options.batch_size = 2;
  const ImpressionSampler sampler(stages.train, stages.train_history, options);
  // Clicks of impressions with an unclicked candidate: N3 (line 1), N3 and N5 (line 2), N5 (line 3).
  ASSERT_EQ(sampler.sample_count(), 4);
  const std::vector<std::vector<int32_t>> plan = sampler.epoch_plan(0);
  ASSERT_EQ(plan.size(), 2u);
  std::multiset<int32_t> all;
  for (const auto& batch : plan) all.insert(batch.begin(), batch.end());
  EXPECT_EQ(all, (std::multiset<int32_t>{0, 1, 2, 3}));

  SequenceBatch batch;
  sampler.fill({0, 1, 2, 3}, 0, 0, batch);
  ASSERT_EQ(batch.candidate_count, 5);
  EXPECT_TRUE(batch.target.empty() && batch.negative.empty());
  EXPECT_EQ(batch.users, (std::vector<int64_t>{0, 1, 1, 0}));
  // The last max_length = 1 history item, ids + 1: U1's N2, U2 has none (padding).
  EXPECT_EQ(batch.length, 1);
  EXPECT_EQ(batch.input, (std::vector<int64_t>{2, 0, 0, 2}));
  auto row = [&](int r) {
    return std::vector<int64_t>(batch.candidates.begin() + r * 5, batch.candidates.begin() + (r + 1) * 5);
  };
  // Sample 0: N3 clicked; N4 and N5 unclicked, four draws pass over them twice: each twice.
  const std::vector<int64_t> first = row(0);
  EXPECT_EQ(first[0], 3);
  const std::multiset<int64_t> negatives(first.begin() + 1, first.end());
  EXPECT_EQ(negatives, (std::multiset<int64_t>{4, 4, 5, 5}));
  // Samples 1 and 2: one impression, two clicks; the only unclicked (N1) fills every negative.
  EXPECT_EQ(row(1), (std::vector<int64_t>{3, 1, 1, 1, 1}));
  EXPECT_EQ(row(2), (std::vector<int64_t>{5, 1, 1, 1, 1}));
  EXPECT_EQ(row(3), (std::vector<int64_t>{5, 4, 4, 4, 4}));

  // A sample draws the same negatives in any batch (data-parallel shares), and others in another epoch.
  SequenceBatch alone;
  sampler.fill({0}, 0, 7, alone);
  EXPECT_EQ(std::vector<int64_t>(alone.candidates.begin(), alone.candidates.end()), row(0));
  options.npratio = 2;
  const ImpressionSampler two(stages.train, stages.train_history, options);
  std::set<int64_t> first_negatives;
  for (int64_t epoch = 0; epoch < 20; ++epoch) {
    two.fill({0}, epoch, 0, alone);
    EXPECT_NE(alone.candidates[1], alone.candidates[2]);  // without replacement when the impression has enough
    first_negatives.insert(alone.candidates[1]);
  }
  EXPECT_EQ(first_negatives, (std::set<int64_t>{4, 5}));  // epochs draw anew
}

TEST_F(NewsData, WordVectorsGivenInTheOptionsInitialiseTheWordsTheyHave) {
  MindOptions options = write_folders();
  options.word_vectors = write("glove.txt", "stocks 0.5 -1\nnosuchword 1 1\nlakers 2 3\n");
  const data::NewsData loaded = load_mind(options);
  const PretrainedEmbedding& pretrained = loaded.dataset.news->pretrained;
  const Vocabulary& words = loaded.dataset.news->words;
  EXPECT_EQ(pretrained.dimension, 2);
  EXPECT_EQ(pretrained.found_count, 2);
  const int32_t stocks = words.index("stocks");
  EXPECT_EQ(pretrained.found[stocks], 1);
  EXPECT_EQ(pretrained.values[stocks * 2 + 1], -1.0f);
  EXPECT_EQ(pretrained.found[words.index("storm")], 0);  // learnt from scratch
  options.word_vectors = write("bad.txt", "stocks 0.5 -1\nlakers 2\n");
  EXPECT_NE(error_of([&] { load_mind(options); }).find("bad.txt:2:"), std::string::npos);
}

TEST_F(NewsData, VocabulariesRoundTripThroughTheExportsJson) {
  const data::NewsData loaded = load_mind(write_folders());
  const NewsContent& news = *loaded.dataset.news;
  const NewsContent back = vocabularies_from_json(vocabularies_to_json(news));
  ASSERT_EQ(back.words.size(), news.words.size());
  for (int32_t w = 0; w < news.words.size(); ++w) {
    EXPECT_EQ(back.words.word(w), news.words.word(w));
    EXPECT_EQ(back.words.count(w), news.words.count(w));
    EXPECT_EQ(back.words.index(news.words.word(w)), w < 2 ? Vocabulary::kUnknown : w);
  }
  EXPECT_EQ(back.categories.names, news.categories.names);
  EXPECT_EQ(back.subcategories.find("nba"), news.subcategories.find("nba"));
  EXPECT_EQ(back.title_length(), 4);
  // An article encodes as the catalog's row of the same text.
  const EncodedArticle article = encode_article(back, {"Stocks fall again", "finance", "markets"});
  EXPECT_EQ(article.title, std::vector<int32_t>(news.title(4), news.title(4) + 4));
  EXPECT_EQ(article.category, news.encoded.categories[4]);
  EXPECT_EQ(article.subcategory, news.encoded.subcategories[4]);
  EXPECT_EQ(encode_article(back, {"x", "nosuchcategory", ""}).category, 0);
  EXPECT_NE(error_of([] { vocabularies_from_json("{\"words\": 3}"); }).find("news vocabularies:"), std::string::npos);
}

class NewsConfig : public testing::FileTest {
 protected:
  NewsConfig() : FileTest("news-config") {}
  DataConfig config(const std::string& text) {
    ConfigTable root = ConfigTable::parse_file(write("c.toml", text));
    DataConfig result = DataConfig::from(root.sub("data"));
    root.finish();
    return result;
  }
  std::string error(const std::string& text) {
    return error_of([&] { config(text); });
  }
};

TEST_F(NewsConfig, NewsKeysAndLogKeysExcludeEachOther) {
  const DataConfig c = config("[data]\nformat = 'mind'\npath = 'train'\ndev_path = 'dev'\nvalid_days = 2\n");
  EXPECT_TRUE(c.news());
  EXPECT_EQ(c.mind.train_folder, (folder_ / "train").string());
  EXPECT_EQ(c.mind.dev_folder, (folder_ / "dev").string());
  EXPECT_EQ(c.mind.valid_days, 2);
  EXPECT_NE(error("[data]\nformat = 'mind'\npath = 'train'\n").find("missing key 'data.dev_path'"), std::string::npos);
  EXPECT_NE(error("[data]\nformat = 'mind'\npath = 't'\ndev_path = 'd'\nuser_core = 5\n")
                .find("'data.user_core' applies only to interaction logs"),
            std::string::npos);
  EXPECT_NE(error("[data]\nformat = 'mind'\npath = 't'\ndev_path = 'd'\n[data.split]\nmethod = 'random'\n")
                .find("news data is split by its folders"),
            std::string::npos);
  EXPECT_NE(error("[data]\npath = 'log.txt'\ntitle_length = 20\n").find("applies only to news data"),
            std::string::npos);
  EXPECT_NE(error("[data]\ndemo = 'mind'\n[data.demo_options]\nintents = 3\n").find("applies only to demo = \"default\""),
            std::string::npos);
}

TEST_F(NewsConfig, TheMindDemoGeneratesLoadsAndCleansUp) {
  const DataConfig c = config("[data]\ndemo = 'mind'\n[data.demo_options]\nusers = 150\nitems = 600\nseed = 3\n");
  const LoadedData loaded = load_data(c);
  EXPECT_EQ(loaded.dataset.name, "mind-demo");
  EXPECT_EQ(static_cast<size_t>(loaded.dataset.item_count()), loaded.dataset.news->encoded.categories.size());
  ASSERT_TRUE(loaded.split.impressions);
  EXPECT_GT(loaded.split.impressions->train.size(), 0);
  EXPECT_GT(loaded.split.impressions->valid.size(), 0);
  EXPECT_GT(loaded.split.impressions->test.size(), 0);
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::temp_directory_path() /
                                       ("embrec-mind-demo-" + std::to_string(::getpid()) + "-3")));
}

}  // namespace
}  // namespace embrec::data
