// The dataset cache round-trips everything and refuses anything stale or damaged, saying why.
#include "embrec/data/cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "embrec/data/demo.h"
#include "embrec/util/files.h"

namespace embrec::data {
namespace {

namespace fs = std::filesystem;

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() / ("embrec-cache-" + std::to_string(::getpid()) + ".bin")).string();
    DemoOptions options;
    options.users = 50;
    options.items = 40;
    dataset_ = generate_demo(options);
    dataset_.interactions.ratings.assign(dataset_.interactions.items.size(), 2.5f);
    write_cache(path_, dataset_, 111, 222);
  }
  void TearDown() override { fs::remove(path_); }
  std::string reason(uint64_t source = 111, uint64_t options = 222) {
    std::string why;
    EXPECT_FALSE(read_cache(path_, source, options, &why).has_value());
    return why;
  }
  void rewrite(const std::function<void(std::string&)>& change) {
    std::string bytes = read_file(path_);
    change(bytes);
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
  }
  std::string path_;
  Dataset dataset_;
};

TEST_F(CacheTest, RoundTripsTheWholeDataset) {
  std::optional<Dataset> back = read_cache(path_, 111, 222);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->name, dataset_.name);
  EXPECT_EQ(back->users.externals(), dataset_.users.externals());
  EXPECT_EQ(back->items.externals(), dataset_.items.externals());
  EXPECT_EQ(back->items.find("i3"), dataset_.items.find("i3"));
  EXPECT_EQ(back->interactions.offsets, dataset_.interactions.offsets);
  EXPECT_EQ(back->interactions.items, dataset_.interactions.items);
  EXPECT_EQ(back->interactions.ratings, dataset_.interactions.ratings);
  EXPECT_EQ(back->interactions.timestamps, dataset_.interactions.timestamps);
}

TEST_F(CacheTest, StaleCachesAreRejected) {
  EXPECT_EQ(reason(999, 222), "the source file changed");
  EXPECT_EQ(reason(111, 999), "the preparation options changed");
  fs::remove(path_);
  EXPECT_EQ(reason(), "no cache file");
}

TEST_F(CacheTest, DamagedCachesAreRejected) {
  rewrite([](std::string& bytes) { bytes.resize(bytes.size() - 7); });
  EXPECT_EQ(reason(), "truncated (payload size does not match the header)");
  write_cache(path_, dataset_, 111, 222);
  rewrite([](std::string& bytes) { bytes[bytes.size() / 2] ^= 0x20; });
  EXPECT_EQ(reason(), "corrupt (payload checksum does not match)");
  write_cache(path_, dataset_, 111, 222);
  rewrite([](std::string& bytes) { bytes[8] = 99; });  // the version field follows the 8-byte magic
  EXPECT_EQ(reason(), "cache format version 99, this embrec reads 1");
  rewrite([](std::string& bytes) { bytes[0] = 'X'; });
  EXPECT_EQ(reason(), "not an embrec dataset cache");
}

}  // namespace
}  // namespace embrec::data
