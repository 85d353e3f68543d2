// User data in RocksDB: each user's vector and seen items, and the external <-> internal id maps of users and
// items. Written once in batches by UserStoreWriter, then opened read-only for serving.
//
// Keys (one RocksDB key space, prefixed by kind; ids are zero-padded decimal so keys sort by id):
//   meta/format          "1"                        the layout version below
//   meta/dim             decimal text               floats per user vector
//   meta/user_count      decimal text
//   meta/item_count      decimal text
//   u/vec/<user>         dim x float32              the user's vector
//   u/seen/<user>        n x int32                  internal item ids the user interacted with, oldest first
//   map/user/ext/<ext>   int32                      external user id -> internal id
//   map/user/int/<user>  bytes                      internal user id -> external id
//   map/item/ext/<ext>   int32                      external item id -> internal id
//   map/item/int/<item>  bytes                      internal item id -> external id
// Numbers are stored in the machine's byte order (little-endian on x86-64 and arm64, the platforms we export on).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace rocksdb {
class DB;
class WriteBatch;
}  // namespace rocksdb

namespace embrec::index {

inline constexpr int kUserStoreFormat = 1;

// Creates a new store in `dir` (which must not exist yet) and fills it. Internal ids are assigned in call order:
// the n-th add_user gets user id n, the n-th add_item item id n. Writes go to RocksDB in WriteBatches of
// `batch_users` users without a write-ahead log: finish() flushes everything to table files, and an unfinished
// store is never used (the export that holds it is only renamed into place after finish()).
class UserStoreWriter {
 public:
  UserStoreWriter(const std::string& dir, int32_t dim, int32_t batch_users = 1024);
  ~UserStoreWriter();
  UserStoreWriter(const UserStoreWriter&) = delete;
  UserStoreWriter& operator=(const UserStoreWriter&) = delete;

  // `vector` holds dim floats; a repeated external id is an Error naming it.
  int32_t add_user(std::string_view external_id, const float* vector, const int32_t* seen_items, size_t seen_count);
  int32_t add_item(std::string_view external_id);
  // Writes the counts, flushes and closes. Nothing may be added afterwards.
  void finish();

 private:
  void commit_batch();

  std::string dir_;
  int32_t dim_;
  int32_t batch_users_;
  int32_t user_count_ = 0;
  int32_t item_count_ = 0;
  int32_t pending_ = 0;
  std::unordered_set<std::string> user_externals_;
  std::unordered_set<std::string> item_externals_;
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<rocksdb::WriteBatch> batch_;
};

// A store opened read-only. Lookups of unknown ids return std::nullopt; a damaged value (wrong size) is an Error
// naming the store and the key. All methods are safe to call from many threads at once.
class UserStore {
 public:
  // Opens with every table file held open (max_open_files = -1), so a serving process keeps reading the store even
  // after a newer export has replaced and deleted its folder.
  static UserStore open_read_only(const std::string& dir);

  UserStore();
  UserStore(UserStore&&) noexcept;
  UserStore& operator=(UserStore&&) noexcept;
  ~UserStore();

  int32_t dim() const { return dim_; }
  int32_t user_count() const { return user_count_; }
  int32_t item_count() const { return item_count_; }
  const std::string& dir() const { return dir_; }

  std::optional<int32_t> user_id(std::string_view external_id) const;
  std::optional<std::string> user_external_id(int32_t user) const;
  std::optional<int32_t> item_id(std::string_view external_id) const;
  std::optional<std::string> item_external_id(int32_t item) const;
  std::optional<std::vector<float>> user_vector(int32_t user) const;
  std::optional<std::vector<int32_t>> seen_items(int32_t user) const;

  // Every item's external id by internal id (for an in-memory map while serving); an Error when ids have gaps.
  std::vector<std::string> item_external_ids() const;

  // SHA-256 (hex) over every key and value in key order, each preceded by its length as 8 little-endian bytes:
  // the store's content checksum (independent of how RocksDB laid the data out in files).
  std::string content_checksum() const;

 private:
  std::optional<std::string> get(const std::string& key) const;

  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  int32_t dim_ = 0;
  int32_t user_count_ = 0;
  int32_t item_count_ = 0;
};

}  // namespace embrec::index
