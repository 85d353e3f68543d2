// UserStore: what the writer puts in comes back read-only, unknown ids are empty, and damage or misuse is an
// error that names the store.
#include "embrec/index/user_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "embrec/util/error.h"
#include "synthetic.h"
#include "../util/error_of.h"

namespace embrec::index {
namespace {

namespace fs = std::filesystem;

class UserStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = embrec::testing::temp_path("store"); }
  void TearDown() override { fs::remove_all(dir_); }

  // Five users in batches of two (three WriteBatches), three items; user "" and an item id with a slash.
  void write_small_store(const std::string& dir) {
    UserStoreWriter writer(dir, 3, /*batch_users=*/2);
    EXPECT_EQ(writer.add_item("B00X"), 0);
    EXPECT_EQ(writer.add_item("a/b"), 1);
    EXPECT_EQ(writer.add_item("42"), 2);
    for (int32_t user = 0; user < 5; ++user) {
      const float vector[3] = {float(user), float(user) + 0.5f, -float(user)};
      std::vector<int32_t> seen;
      for (int32_t i = 0; i < user; ++i) seen.push_back((user + i) % 3);
      const std::string external = user == 4 ? "" : "user-" + std::to_string(user);
      EXPECT_EQ(writer.add_user(external, vector, seen.data(), seen.size()), user);
    }
    writer.finish();
  }
  std::string dir_;
};

TEST_F(UserStoreTest, ReadsBackVectorsSeenItemsAndBothIdMaps) {
  write_small_store(dir_);
  const UserStore store = UserStore::open_read_only(dir_);
  EXPECT_EQ(store.dim(), 3);
  EXPECT_EQ(store.user_count(), 5);
  EXPECT_EQ(store.item_count(), 3);
  EXPECT_EQ(store.user_id("user-3"), 3);
  EXPECT_EQ(store.user_id(""), 4);
  EXPECT_EQ(store.user_external_id(2), "user-2");
  EXPECT_EQ(store.item_id("a/b"), 1);
  EXPECT_EQ(store.item_id("42"), 2);
  EXPECT_EQ(store.item_external_id(0), "B00X");
  EXPECT_EQ(store.user_vector(3), (std::vector<float>{3.0f, 3.5f, -3.0f}));
  EXPECT_EQ(store.seen_items(3), (std::vector<int32_t>{0, 1, 2}));  // (3+0)%3, (3+1)%3, (3+2)%3, oldest first
  EXPECT_EQ(store.seen_items(0), std::vector<int32_t>{});           // known user, nothing seen
  EXPECT_EQ(store.item_external_ids(), (std::vector<std::string>{"B00X", "a/b", "42"}));
}

TEST_F(UserStoreTest, UnknownIdsAreEmpty) {
  write_small_store(dir_);
  const UserStore store = UserStore::open_read_only(dir_);
  EXPECT_FALSE(store.user_id("user-9").has_value());
  EXPECT_FALSE(store.user_id("user-").has_value());
  EXPECT_FALSE(store.item_id("B00").has_value());
  EXPECT_FALSE(store.user_vector(5).has_value());
  EXPECT_FALSE(store.user_vector(-1).has_value());
  EXPECT_FALSE(store.seen_items(17).has_value());
  EXPECT_FALSE(store.user_external_id(5).has_value());
  EXPECT_FALSE(store.item_external_id(3).has_value());
}

TEST_F(UserStoreTest, ChecksumIsStableAndChangesWithOneFloat) {
  write_small_store(dir_);
  const std::string first = UserStore::open_read_only(dir_).content_checksum();
  EXPECT_EQ(first.size(), 64u);
  EXPECT_EQ(UserStore::open_read_only(dir_).content_checksum(), first);
  const std::string other = dir_ + "-other";
  {
    UserStoreWriter writer(other, 3, 2);
    writer.add_item("B00X");
    writer.add_item("a/b");
    writer.add_item("42");
    for (int32_t user = 0; user < 5; ++user) {
      const float vector[3] = {float(user), float(user) + (user == 2 ? 0.25f : 0.5f), -float(user)};
      std::vector<int32_t> seen;
      for (int32_t i = 0; i < user; ++i) seen.push_back((user + i) % 3);
      writer.add_user(user == 4 ? "" : "user-" + std::to_string(user), vector, seen.data(), seen.size());
    }
    writer.finish();
  }
  EXPECT_NE(UserStore::open_read_only(other).content_checksum(), first);
  fs::remove_all(other);
}

TEST_F(UserStoreTest, MisuseIsAnErrorNamingTheStore) {
  {
    UserStoreWriter writer(dir_, 2);
    const float vector[2] = {1, 2};
    writer.add_user("alice", vector, nullptr, 0);
    const std::string twice = error_of([&] { writer.add_user("alice", vector, nullptr, 0); });
    EXPECT_NE(twice.find("'alice' added twice"), std::string::npos) << twice;
    writer.finish();
    EXPECT_THROW(writer.add_item("late"), Error);
  }
  EXPECT_THROW(UserStoreWriter(dir_, 2), Error);  // never writes into an existing folder
  const std::string missing = error_of([&] { (void)UserStore::open_read_only(dir_ + "-missing"); });
  EXPECT_NE(missing.find(dir_ + "-missing"), std::string::npos) << missing;
}

TEST_F(UserStoreTest, UnfinishedStoreIsRefused) {
  {
    UserStoreWriter writer(dir_, 2);
    const float vector[2] = {1, 2};
    writer.add_user("alice", vector, nullptr, 0);
    // destroyed without finish(): no meta keys, nothing flushed
  }
  const std::string message = error_of([&] { (void)UserStore::open_read_only(dir_); });
  EXPECT_NE(message.find("meta/format"), std::string::npos) << message;
}

}  // namespace
}  // namespace embrec::index
