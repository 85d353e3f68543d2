// load_data and the [data] section: path resolution, cache use and rebuild, config errors.
#include "embrec/data/load.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "embrec/util/error.h"

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
  std::string error_of(const std::string& text) {
    try {
      config(text);
    } catch (const Error& error) {
      return error.what();
    }
    return "(no error)";
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

TEST_F(LoadTest, ConfigErrorsNameTheKeyAndFile) {
  const std::string file = (folder_ / "configs" / "c.toml").string();
  EXPECT_EQ(error_of("[data]\nformat = 'seq'\n"),
            file + ": missing key 'data.path' (the interaction log; or demo = \"default\")");
  EXPECT_EQ(error_of("[data]\npath = 'x'\nformat = 'parquet'\n"),
            file + ": key 'data.format' must be one of {seq, movielens, udata, csv, tsv}, got 'parquet'");
  EXPECT_EQ(error_of("[data]\npath = 'x'\n[data.split]\nmethod = 'loo'\n"),
            file + ": key 'data.split.method' must be one of {leave_one_out, chrono, stratified, random}, got 'loo'");
  EXPECT_EQ(error_of("[data]\npath = 'x'\nusercore = 5\n"), file + ": unknown key 'data.usercore'");
  EXPECT_EQ(error_of("[data]\npath = 'x'\ndelimiter = ';;'\n"),
            file + ": key 'data.delimiter' must be a single character, got ';;'");
  EXPECT_EQ(error_of("[data]\npath = 'x'\nuser_core = '5'\n"),
            file + ": key 'data.user_core' must be an integer, got a string");
}

TEST_F(LoadTest, AMissingFileIsAnErrorNamingIt) {
  DataConfig c = config("[data]\npath = '../nothing.txt'\n");
  try {
    load_data(c);
    FAIL();
  } catch (const Error& error) {
    EXPECT_EQ(std::string(error.what()), (folder_ / "nothing.txt").string() + ": no such file");
  }
}

}  // namespace
}  // namespace embrec::data
