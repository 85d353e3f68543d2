// load_data and the [data] section: path resolution, cache use and rebuild, config errors.
#include "embrec/data/load.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::data {
namespace {

namespace fs = std::filesystem;

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = fs::temp_directory_path() / ("embrec-load-" + std::to_string(::getpid()));
    fs::create_directories(folder_ / "configs");
    std::ofstream(folder_ / "log.txt") << "1 10 11 12 13\n2 10 12 14\n3 11 13 14 10 12\n";
  }
  void TearDown() override { fs::remove_all(folder_); }
  DataConfig config(const std::string& text) {
    const std::string file = (folder_ / "configs" / "c.toml").string();
    std::ofstream(file) << text;
    ConfigTable root = ConfigTable::parse_file(file);
    DataConfig result = DataConfig::from(root.sub("data"));
    root.finish();
    return result;
  }
  std::string config_error(const std::string& text) {
    return error_of([&] { config(text); });
  }
  fs::path folder_;
};

TEST_F(LoadTest, RelativePathsAreResolvedAgainstTheConfigFolder) {
  DataConfig c = config("[data]\npath = '../log.txt'\ncache_dir = '../cache'\n");
  EXPECT_EQ(c.path, (folder_ / "log.txt").string());
  LoadedData loaded = load_data(c);
  EXPECT_EQ(loaded.dataset.user_count(), 3);
  EXPECT_EQ(loaded.dataset.interactions.size(), 12);
  EXPECT_EQ(loaded.split.test.size(), 3);
}

TEST_F(LoadTest, TheCacheIsWrittenReusedAndRebuiltWhenTheSourceChanges) {
  DataConfig c = config("[data]\npath = '../log.txt'\ncache_dir = '../cache'\n");
  load_data(c);
  std::vector<fs::path> files;
  for (auto& entry : fs::directory_iterator(folder_ / "cache")) files.push_back(entry.path());
  ASSERT_EQ(files.size(), 1u);
  const auto written = fs::last_write_time(files[0]);
  EXPECT_EQ(load_data(c).dataset.user_count(), 3);
  EXPECT_EQ(fs::last_write_time(files[0]), written);  // reused, not rewritten
  std::ofstream(folder_ / "log.txt", std::ios::app) << "4 10 11 12\n";
  EXPECT_EQ(load_data(c).dataset.user_count(), 4);  // stale cache rebuilt
}

TEST_F(LoadTest, EveryKeyIsRead) {
  DataConfig c = config(
      "[data]\npath = '/abs/ratings.csv'\nformat = 'csv'\nuser_column = 'u'\nitem_column = 'i'\n"
      "rating_column = 'r'\ntimestamp_column = 't'\ndelimiter = ';'\nmin_rating = 3.5\ndedup = 'last'\n"
      "user_core = 5\nitem_core = 4\ncache_dir = 'cache'\n"
      "[data.split]\nmethod = 'stratified'\ntrain_ratio = 0.8\nvalid_ratio = 0.1\nseed = 7\ndrop_unseen = false\n");
  EXPECT_EQ(c.path, "/abs/ratings.csv");
  EXPECT_EQ(c.read.format, LogFormat::Csv);
  EXPECT_EQ(c.read.user_column, "u");
  EXPECT_EQ(c.read.item_column, "i");
  EXPECT_EQ(c.read.rating_column, "r");
  EXPECT_EQ(c.read.timestamp_column, "t");
  EXPECT_EQ(c.read.delimiter, ';');
  EXPECT_TRUE(c.prepare.has_min_rating);
  EXPECT_EQ(c.prepare.min_rating, 3.5);
  EXPECT_EQ(c.prepare.dedup, Dedup::Last);
  EXPECT_EQ(c.prepare.user_core, 5);
  EXPECT_EQ(c.prepare.item_core, 4);
  EXPECT_EQ(c.cache_dir, (folder_ / "configs" / "cache").string());
  EXPECT_EQ(c.split.method, SplitMethod::Stratified);
  EXPECT_EQ(c.split.train_ratio, 0.8);
  EXPECT_EQ(c.split.valid_ratio, 0.1);
  EXPECT_EQ(c.split.seed, 7u);
  EXPECT_FALSE(c.split.drop_unseen);
}

TEST_F(LoadTest, DefaultsWhenOnlyThePathIsGiven) {
  DataConfig c = config("[data]\npath = 'log.txt'\n");
  EXPECT_EQ(c.path, (folder_ / "configs" / "log.txt").string());
  EXPECT_EQ(c.read.format, LogFormat::Seq);
  EXPECT_EQ(c.read.delimiter, 0);
  EXPECT_FALSE(c.prepare.has_min_rating);
  EXPECT_EQ(c.prepare.dedup, Dedup::Keep);
  EXPECT_TRUE(c.cache_dir.empty());
  EXPECT_EQ(c.split.method, SplitMethod::LeaveOneOut);
}

TEST_F(LoadTest, TheDemoIsChosenByNameWithItsOptions) {
  DataConfig c = config("[data]\ndemo = 'default'\n[data.demo_options]\nusers = 40\nitems = 30\nseed = 9\n");
  EXPECT_EQ(c.demo, "default");
  EXPECT_TRUE(c.path.empty());
  EXPECT_EQ(c.demo_options.users, 40);
  EXPECT_EQ(c.demo_options.items, 30);
  EXPECT_EQ(c.demo_options.seed, 9u);
}

TEST_F(LoadTest, ChangedOptionsGetTheirOwnCacheAndTheirOwnDataset) {
  DataConfig plain = config("[data]\npath = '../log.txt'\ncache_dir = '../cache'\n");
  DataConfig cored = config("[data]\npath = '../log.txt'\ncache_dir = '../cache'\nuser_core = 4\n");
  EXPECT_EQ(load_data(plain).dataset.user_count(), 3);
  EXPECT_EQ(load_data(cored).dataset.user_count(), 2);  // user 2 has only 3 items
  EXPECT_EQ(std::distance(fs::directory_iterator(folder_ / "cache"), fs::directory_iterator()), 2);
  EXPECT_EQ(load_data(plain).dataset.user_count(), 3);  // each options set reads back its own file
  EXPECT_EQ(load_data(cored).dataset.user_count(), 2);
}

TEST_F(LoadTest, ACorruptCacheIsRebuiltNotTrusted) {
  DataConfig c = config("[data]\npath = '../log.txt'\ncache_dir = '../cache'\n");
  const LoadedData first = load_data(c);
  const fs::path file = fs::directory_iterator(folder_ / "cache")->path();
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  bytes[bytes.size() - 3] ^= 0x40;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  const LoadedData second = load_data(c);
  EXPECT_EQ(second.dataset.interactions.items, first.dataset.interactions.items);
  EXPECT_EQ(second.split.test.items, first.split.test.items);
  std::ifstream in(file, std::ios::binary);
  const std::string rewritten((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(rewritten, bytes);  // the bad file was replaced
}

TEST_F(LoadTest, ConfigErrorsNameTheKeyAndFile) {
  const std::string file = (folder_ / "configs" / "c.toml").string();
  EXPECT_EQ(config_error("[data]\nformat = 'seq'\n"),
            file + ": missing key 'data.path' (the interaction log; or demo = \"default\")");
  EXPECT_EQ(config_error("[data]\npath = 'x'\nformat = 'parquet'\n"),
            file + ": key 'data.format' must be one of {seq, movielens, udata, csv, tsv, mind}, got 'parquet'");
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.split]\nmethod = 'loo'\n"),
            file + ": key 'data.split.method' must be one of {leave_one_out, chrono, stratified, random, user}, got "
                   "'loo'");
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.split]\nmethod = 'user'\nuser_ratios = [0.5, 0.2]\n"),
            file + ": key 'data.split.user_ratios': must be three shares (train, valid and test users) >= 0 that sum "
                   "to 1");
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.split]\ninput_ratio = 0.5\n"),
            file + ": key 'data.split.input_ratio' applies only to method = \"user\"");
  EXPECT_EQ(config_error("[data]\npath = 'x'\nusercore = 5\n"), file + ": unknown key 'data.usercore'");
  EXPECT_EQ(config_error("[data]\npath = 'x'\ndelimiter = ';;'\n"),
            file + ": key 'data.delimiter' must be a single character, got ';;'");
  EXPECT_EQ(config_error("[data]\npath = 'x'\nuser_core = '5'\n"),
            file + ": key 'data.user_core' must be an integer, got a string");
  EXPECT_EQ(config_error("[data]\npath = 'x'\ndemo = 'default'\n"),
            file + ": keys 'data.path' and 'data.demo' exclude each other");
  EXPECT_EQ(config_error("[data]\ndemo = 'big'\n"),
            file + ": key 'data.demo' must be \"default\" or \"mind\", got 'big'");
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.split]\ntrain_ratio = 0\n"),
            file + ": key 'data.split.train_ratio' must be in (0, 1], got 0");
}

TEST_F(LoadTest, FeatureTablesAreReadWithTheirKeysAndAbsentTablesMeanNoFeatures) {
  std::ofstream(folder_ / "movies.dat") << "1::Heat (1995)::Action\n";
  std::ofstream(folder_ / "map.tsv") << "10\t1\n";
  std::ofstream(folder_ / "users.csv") << "uid,langs\n1,en;fr\n";
  DataConfig c = config(
      "[data]\npath = '../log.txt'\n"
      "[data.item_features]\npath = '../movies.dat'\nformat = 'movies'\nitem_map = '../map.tsv'\n"
      "[data.user_features]\npath = '../users.csv'\nid_column = 'uid'\nmulti_columns = ['langs']\nseparator = ';'\n");
  EXPECT_EQ(c.item_features.path, (folder_ / "movies.dat").string());
  EXPECT_EQ(c.item_features.read.format, FeatureFormat::Movies);
  EXPECT_EQ(c.item_features.read.item_map, (folder_ / "map.tsv").string());
  EXPECT_EQ(c.user_features.read.format, FeatureFormat::Auto);  // a .csv path reads as csv
  EXPECT_EQ(c.user_features.read.id_column, "uid");
  EXPECT_EQ(c.user_features.read.multi_columns, (std::vector<std::string>{"langs"}));
  EXPECT_EQ(c.user_features.read.separator, ";");
  const Dataset d = load_data(c).dataset;
  ASSERT_EQ(d.item_features.entity_count(), d.item_count());
  const int32_t item = d.items.find("10");
  EXPECT_EQ(std::vector<std::string>(d.item_features.begin(item, 0), d.item_features.end(item, 0)),
            (std::vector<std::string>{"Action"}));
  EXPECT_EQ(d.item_features.value_count(d.items.find("11"), 0), 0);  // no row in the map
  const int32_t user = d.users.find("1");
  EXPECT_EQ(std::vector<std::string>(d.user_features.begin(user, 0), d.user_features.end(user, 0)),
            (std::vector<std::string>{"en", "fr"}));
  const DataConfig plain = config("[data]\npath = '../log.txt'\n");
  EXPECT_FALSE(plain.item_features.configured());
  EXPECT_TRUE(load_data(plain).dataset.user_features.empty());
}

TEST_F(LoadTest, FeaturesAreCachedAndRebuiltWhenAFeatureFileChanges) {
  std::ofstream(folder_ / "items.tsv") << "item_id\tcolour\n10\tred\n";
  DataConfig c =
      config("[data]\npath = '../log.txt'\ncache_dir = '../cache'\n[data.item_features]\npath = '../items.tsv'\n");
  const auto colour_of_10 = [&]() {
    const Dataset d = load_data(c).dataset;
    const int32_t item = d.items.find("10");
    return d.item_features.value_count(item, 0) ? *d.item_features.begin(item, 0) : std::string("(none)");
  };
  EXPECT_EQ(colour_of_10(), "red");
  const fs::path file = fs::directory_iterator(folder_ / "cache")->path();
  const auto written = fs::last_write_time(file);
  EXPECT_EQ(colour_of_10(), "red");
  EXPECT_EQ(fs::last_write_time(file), written);  // reused, features included
  std::ofstream(folder_ / "items.tsv") << "item_id\tcolour\n10\tblue\n";
  EXPECT_EQ(colour_of_10(), "blue");  // a changed feature file rebuilds the same cache file
  EXPECT_EQ(std::distance(fs::directory_iterator(folder_ / "cache"), fs::directory_iterator()), 1);
  // Other feature options are another dataset, with its own cache file.
  DataConfig multi = config(
      "[data]\npath = '../log.txt'\ncache_dir = '../cache'\n[data.item_features]\npath = '../items.tsv'\n"
      "multi_columns = ['colour']\n");
  EXPECT_TRUE(load_data(multi).dataset.item_features.multi_valued[0]);
  EXPECT_EQ(std::distance(fs::directory_iterator(folder_ / "cache"), fs::directory_iterator()), 2);
}

TEST_F(LoadTest, FeatureConfigErrorsNameTheKeyAndFile) {
  const std::string file = (folder_ / "configs" / "c.toml").string();
  std::ofstream(folder_ / "movies.dat") << "1::Heat (1995)::Action\n";
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.item_features]\npath = '../nothing.dat'\n"),
            file + ": key 'data.item_features.path': no such file " + (folder_ / "nothing.dat").string());
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.item_features]\npath = '../movies.dat'\nitem_map = 'm.tsv'\n"),
            file + ": key 'data.item_features.item_map': no such file " + (folder_ / "configs" / "m.tsv").string());
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.item_features]\nformat = 'movies'\n"),
            file + ": missing key 'data.item_features.path' (the feature file)");
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.user_features]\npath = '../movies.dat'\nformat = 'movies'\n"),
            file + ": key 'data.user_features.format' must describe users (auto, users, uuser, csv or tsv), got "
                   "'movies'");
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.item_features]\npath = '../movies.dat'\nformat = 'xml'\n"),
            file + ": key 'data.item_features.format' must be one of {auto, movies, uitem, attributes, users, uuser, "
                   "csv, tsv}, got 'xml'");
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.item_features]\npath = '../movies.dat'\nid_column = 'id'\n"),
            file + ": key 'data.item_features.id_column' applies only to format = \"csv\" or \"tsv\" (or a .csv or "
                   ".tsv path)");
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.user_features]\npath = '../movies.dat'\nitem_map = 'm.tsv'\n"),
            file + ": key 'data.user_features.item_map' applies only to item features of format movies or uitem");
  EXPECT_EQ(config_error("[data]\npath = 'x'\n[data.item_features]\npath = '../movies.dat'\nmovie_map = 'm'\n"),
            file + ": unknown key 'data.item_features.movie_map'");
}

TEST_F(LoadTest, AMissingFileIsAnErrorNamingIt) {
  DataConfig c = config("[data]\npath = '../nothing.txt'\n");
  EXPECT_EQ(error_of([&] { load_data(c); }), (folder_ / "nothing.txt").string() + ": no such file");
}

}  // namespace
}  // namespace embrec::data
