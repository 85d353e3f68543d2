// The dataset cache round-trips everything and refuses anything stale or damaged, saying why.
#include "embrec/data/cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "embrec/util/checksum.h"
#include "embrec/util/files.h"

namespace embrec::data {
namespace {

namespace fs = std::filesystem;

const std::string kSource = sha256_hex("the source file");
const std::string kOptions = sha256_hex("the preparation options");
const std::string kOther = sha256_hex("something else");

// Three users (one with an empty list), ids that are not numbers, ratings and timestamps: every field of a Dataset.
Dataset small_dataset() {
  Dataset d;
  d.name = "beauty-5core";
  for (const char* user : {"A1YJEY40YUW4SE", "alice", "bob with spaces"}) d.users.get_or_add(user);
  for (const char* item : {"B004756YJA", "i3", "x,y", ""}) d.items.get_or_add(item);
  const int32_t first[] = {0, 1, 2, 1}, third[] = {3, 0};
  const float first_ratings[] = {5, 4.5f, 1, 3}, third_ratings[] = {2, 2.5f};
  const int64_t first_times[] = {978300760, 978300761, 978300761, 1700000000000}, third_times[] = {-5, 0};
  d.interactions.push_user(first, 4, first_ratings, first_times);
  d.interactions.push_user(nullptr, 0, nullptr, nullptr);
  d.interactions.push_user(third, 2, third_ratings, third_times);
  return d;
}

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (fs::temp_directory_path() / ("embrec-cache-" + std::to_string(::getpid()) + ".bin")).string();
    dataset_ = small_dataset();
    write_cache(path_, dataset_, kSource, kOptions);
  }
  void TearDown() override { fs::remove(path_); }
  std::string reason(const std::string& source = kSource, const std::string& options = kOptions) {
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
  std::optional<Dataset> back = read_cache(path_, kSource, kOptions);
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

TEST_F(CacheTest, RoundTripsItemAndUserFeatures) {
  // Items: a multi-valued genre and a single-valued year; item 1 has two genres and no year, item 3 has no row.
  Features& items = dataset_.item_features;
  items.fields = {"genre", "year"};
  items.multi_valued = {1, 0};
  items.values = {"Drama", "1999", "Comedy", "War", "Action", "1995"};
  items.offsets = {0, 1, 2, 4, 4, 5, 6, 6, 6};
  Features& users = dataset_.user_features;
  users.fields = {"age"};
  users.multi_valued = {0};
  users.values = {"18", "56"};
  users.offsets = {0, 1, 1, 2};
  write_cache(path_, dataset_, kSource, kOptions);
  std::optional<Dataset> back = read_cache(path_, kSource, kOptions);
  ASSERT_TRUE(back.has_value());
  for (const auto& [written, read] : {std::pair{&dataset_.item_features, &back->item_features},
                                      std::pair{&dataset_.user_features, &back->user_features}}) {
    EXPECT_EQ(read->fields, written->fields);
    EXPECT_EQ(read->multi_valued, written->multi_valued);
    EXPECT_EQ(read->offsets, written->offsets);
    EXPECT_EQ(read->values, written->values);
  }
  EXPECT_EQ(back->item_features.value_count(1, 0), 2);
  EXPECT_EQ(*back->item_features.begin(2, 1), "1995");
  EXPECT_EQ(back->user_features.entity_count(), 3);
}

TEST_F(CacheTest, FeaturesThatDoNotFitTheIdsAreRejected) {
  dataset_.user_features.fields = {"age"};
  dataset_.user_features.multi_valued = {0};
  dataset_.user_features.values = {"18", "25"};
  dataset_.user_features.offsets = {0, 2, 2, 2};  // two values in a single-valued field
  write_cache(path_, dataset_, kSource, kOptions);
  EXPECT_EQ(reason(), "corrupt payload: inconsistent dataset");
  dataset_.user_features.offsets = {0, 1, 2};  // two users' cells for three users
  write_cache(path_, dataset_, kSource, kOptions);
  EXPECT_EQ(reason(), "corrupt payload: inconsistent dataset");
}

TEST_F(CacheTest, ADatasetWithoutRatingsRoundTripsWithoutThem) {
  dataset_.interactions.ratings.clear();
  write_cache(path_, dataset_, kSource, kOptions);
  std::optional<Dataset> back = read_cache(path_, kSource, kOptions);
  ASSERT_TRUE(back.has_value());
  EXPECT_FALSE(back->interactions.has_ratings());
  EXPECT_EQ(back->interactions.timestamps, dataset_.interactions.timestamps);
}

TEST_F(CacheTest, StaleCachesAreRejected) {
  EXPECT_EQ(reason(kOther, kOptions), "the source file changed");
  EXPECT_EQ(reason(kSource, kOther), "the preparation options changed");
  fs::remove(path_);
  EXPECT_EQ(reason(), "no cache file");
}

TEST_F(CacheTest, DamagedCachesAreRejected) {
  rewrite([](std::string& bytes) { bytes.resize(bytes.size() - 7); });
  EXPECT_EQ(reason(), "truncated (payload size does not match the header)");
  write_cache(path_, dataset_, kSource, kOptions);
  rewrite([](std::string& bytes) { bytes[bytes.size() / 2] ^= 0x20; });
  EXPECT_EQ(reason(), "corrupt (payload checksum does not match)");
  write_cache(path_, dataset_, kSource, kOptions);
  rewrite([](std::string& bytes) { bytes[8] = 99; });  // the version field follows the 8-byte magic
  EXPECT_EQ(reason(), "cache format version 99, this embrec reads " + std::to_string(kCacheFormatVersion));
  rewrite([](std::string& bytes) { bytes[0] = 'X'; });
  EXPECT_EQ(reason(), "not an embrec dataset cache");
  write_cache(path_, dataset_, kSource, kOptions);
  rewrite([](std::string& bytes) { bytes.resize(20); });  // cut inside the header
  EXPECT_EQ(reason(), "truncated (shorter than the header)");
  rewrite([](std::string& bytes) { bytes.clear(); });
  EXPECT_EQ(reason(), "not an embrec dataset cache");
}

TEST_F(CacheTest, EveryFlippedPayloadByteIsCaught) {
  // The payload checksum covers every byte: no single flip anywhere after the header yields a Dataset.
  const std::string original = read_file(path_);
  for (size_t at = 8 + 4 + 3 * 64 + 8; at < original.size(); ++at) {  // after the header
    std::string bytes = original;
    bytes[at] ^= 0x01;
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
    std::string why;
    ASSERT_FALSE(read_cache(path_, kSource, kOptions, &why).has_value()) << "byte " << at;
    EXPECT_EQ(why, "corrupt (payload checksum does not match)") << "byte " << at;
  }
}

TEST_F(CacheTest, TheWriteIsAtomicAndLeavesNoTemporaryFile) {
  write_cache(path_, dataset_, kSource, kOptions);
  for (const auto& entry : fs::directory_iterator(fs::path(path_).parent_path()))
    EXPECT_EQ(entry.path().string().find(path_ + ".tmp"), std::string::npos) << entry.path();
}

}  // namespace
}  // namespace embrec::data
