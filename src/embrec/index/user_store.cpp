// UserStore: RocksDB keys and values for user vectors, seen items and id maps; batched writes, read-only reads.
#include "embrec/index/user_store.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <cstdarg>
#include <cstring>
#include <filesystem>

#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::index {

namespace {

// RocksDB writes a LOG file into the database folder by default, even when opened read-only (it renames the old
// one); an export folder should hold data only and may live on a read-only volume, so its messages are dropped.
class SilentLogger final : public rocksdb::Logger {
 public:
  SilentLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::HEADER_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

std::string padded(int32_t id) { return fmt::format("{:010d}", id); }

std::string user_vector_key(int32_t user) { return "u/vec/" + padded(user); }
std::string user_seen_key(int32_t user) { return "u/seen/" + padded(user); }
std::string user_external_key(std::string_view external) { return "map/user/ext/" + std::string(external); }
std::string user_internal_key(int32_t user) { return "map/user/int/" + padded(user); }
std::string item_external_key(std::string_view external) { return "map/item/ext/" + std::string(external); }
std::string item_internal_key(int32_t item) { return "map/item/int/" + padded(item); }
constexpr std::string_view kItemInternalPrefix = "map/item/int/";

std::string int32_bytes(int32_t value) { return std::string(reinterpret_cast<const char*>(&value), sizeof(value)); }

rocksdb::Options base_options() {
  rocksdb::Options options;
  options.info_log = std::make_shared<SilentLogger>();
  return options;
}

void check(const rocksdb::Status& status, const std::string& dir, std::string_view what) {
  if (!status.ok()) fail("{}: RocksDB {}: {}", dir, what, status.ToString());
}

int32_t parse_count(const std::optional<std::string>& value, const std::string& dir, std::string_view key) {
  if (!value) fail("{}: missing key '{}' (not a user store, or an unfinished one)", dir, key);
  try {
    size_t used = 0;
    const long long number = std::stoll(*value, &used);
    if (used == value->size() && number >= 0 && number <= INT32_MAX) return static_cast<int32_t>(number);
  } catch (const std::exception&) {
  }
  fail("{}: key '{}' holds '{}', expected a non-negative integer", dir, key, *value);
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// UserStoreWriter

UserStoreWriter::UserStoreWriter(const std::string& dir, int32_t dim, int32_t batch_users)
    : dir_(dir), dim_(dim), batch_users_(batch_users > 0 ? batch_users : 1024) {
  if (dim <= 0) fail("{}: user store dimension must be positive, got {}", dir, dim);
  if (std::filesystem::exists(dir)) fail("{}: already exists; a user store is written into a new folder", dir);
  rocksdb::Options options = base_options();
  options.create_if_missing = true;
  options.error_if_exists = true;
  rocksdb::DB* db = nullptr;
  check(rocksdb::DB::Open(options, dir, &db), dir, "create");
  db_.reset(db);
  batch_ = std::make_unique<rocksdb::WriteBatch>();
}

UserStoreWriter::~UserStoreWriter() = default;

void UserStoreWriter::commit_batch() {
  if (batch_->Count() == 0) return;
  rocksdb::WriteOptions options;
  options.disableWAL = true;  // finish() flushes; an unfinished store is discarded with its temporary folder
  check(db_->Write(options, batch_.get()), dir_, "write batch");
  batch_->Clear();
  pending_ = 0;
}

int32_t UserStoreWriter::add_user(std::string_view external_id, const float* vector, const int32_t* seen_items,
                                  size_t seen_count) {
  if (!db_) fail("{}: user store already finished", dir_);
  if (!user_externals_.emplace(external_id).second) fail("{}: user id '{}' added twice", dir_, external_id);
  const int32_t user = user_count_++;
  batch_->Put(user_vector_key(user),
              rocksdb::Slice(reinterpret_cast<const char*>(vector), sizeof(float) * static_cast<size_t>(dim_)));
  batch_->Put(user_seen_key(user),
              rocksdb::Slice(reinterpret_cast<const char*>(seen_items), sizeof(int32_t) * seen_count));
  batch_->Put(user_external_key(external_id), int32_bytes(user));
  batch_->Put(user_internal_key(user), rocksdb::Slice(external_id.data(), external_id.size()));
  if (++pending_ >= batch_users_) commit_batch();
  return user;
}

int32_t UserStoreWriter::add_item(std::string_view external_id) {
  if (!db_) fail("{}: user store already finished", dir_);
  if (!item_externals_.emplace(external_id).second) fail("{}: item id '{}' added twice", dir_, external_id);
  const int32_t item = item_count_++;
  batch_->Put(item_external_key(external_id), int32_bytes(item));
  batch_->Put(item_internal_key(item), rocksdb::Slice(external_id.data(), external_id.size()));
  if (++pending_ >= batch_users_) commit_batch();
  return item;
}

void UserStoreWriter::finish() {
  if (!db_) fail("{}: user store already finished", dir_);
  batch_->Put("meta/format", std::to_string(kUserStoreFormat));
  batch_->Put("meta/dim", std::to_string(dim_));
  batch_->Put("meta/user_count", std::to_string(user_count_));
  batch_->Put("meta/item_count", std::to_string(item_count_));
  commit_batch();
  rocksdb::FlushOptions flush;
  flush.wait = true;
  check(db_->Flush(flush), dir_, "flush");
  check(db_->Close(), dir_, "close");
  db_.reset();
}

// ---------------------------------------------------------------------------------------------------------------
// UserStore

UserStore::UserStore() = default;
UserStore::UserStore(UserStore&&) noexcept = default;
UserStore& UserStore::operator=(UserStore&&) noexcept = default;
UserStore::~UserStore() = default;

UserStore UserStore::open_read_only(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) fail("{}: user store folder not found", dir);
  rocksdb::Options options = base_options();
  options.max_open_files = -1;
  rocksdb::DB* db = nullptr;
  check(rocksdb::DB::OpenForReadOnly(options, dir, &db), dir, "open read-only");
  UserStore store;
  store.dir_ = dir;
  store.db_.reset(db);
  const std::optional<std::string> format = store.get("meta/format");
  if (!format) fail("{}: missing key 'meta/format' (not a user store, or an unfinished one)", dir);
  if (*format != std::to_string(kUserStoreFormat))
    fail("{}: user store format '{}', this build reads format {}", dir, *format, kUserStoreFormat);
  store.dim_ = parse_count(store.get("meta/dim"), dir, "meta/dim");
  store.user_count_ = parse_count(store.get("meta/user_count"), dir, "meta/user_count");
  store.item_count_ = parse_count(store.get("meta/item_count"), dir, "meta/item_count");
  return store;
}

std::optional<std::string> UserStore::get(const std::string& key) const {
  if (!db_) fail("user store: not open");
  std::string value;
  const rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), key, &value);
  if (status.IsNotFound()) return std::nullopt;
  check(status, dir_, fmt::format("get '{}'", key));
  return value;
}

std::optional<int32_t> UserStore::user_id(std::string_view external_id) const {
  const std::string key = user_external_key(external_id);
  const std::optional<std::string> value = get(key);
  if (!value) return std::nullopt;
  if (value->size() != sizeof(int32_t)) fail("{}: key '{}' holds {} bytes, expected 4", dir_, key, value->size());
  int32_t user = 0;
  std::memcpy(&user, value->data(), sizeof(user));
  return user;
}

std::optional<std::string> UserStore::user_external_id(int32_t user) const {
  if (user < 0) return std::nullopt;
  return get(user_internal_key(user));
}

std::optional<int32_t> UserStore::item_id(std::string_view external_id) const {
  const std::string key = item_external_key(external_id);
  const std::optional<std::string> value = get(key);
  if (!value) return std::nullopt;
  if (value->size() != sizeof(int32_t)) fail("{}: key '{}' holds {} bytes, expected 4", dir_, key, value->size());
  int32_t item = 0;
  std::memcpy(&item, value->data(), sizeof(item));
  return item;
}

std::optional<std::string> UserStore::item_external_id(int32_t item) const {
  if (item < 0) return std::nullopt;
  return get(item_internal_key(item));
}

std::optional<std::vector<float>> UserStore::user_vector(int32_t user) const {
  if (user < 0) return std::nullopt;
  const std::string key = user_vector_key(user);
  const std::optional<std::string> value = get(key);
  if (!value) return std::nullopt;
  if (value->size() != sizeof(float) * static_cast<size_t>(dim_))
    fail("{}: key '{}' holds {} bytes, expected {} floats ({} bytes)", dir_, key, value->size(), dim_,
         sizeof(float) * static_cast<size_t>(dim_));
  std::vector<float> vector(static_cast<size_t>(dim_));
  std::memcpy(vector.data(), value->data(), value->size());
  return vector;
}

std::optional<std::vector<int32_t>> UserStore::seen_items(int32_t user) const {
  if (user < 0) return std::nullopt;
  const std::string key = user_seen_key(user);
  const std::optional<std::string> value = get(key);
  if (!value) return std::nullopt;
  if (value->size() % sizeof(int32_t) != 0)
    fail("{}: key '{}' holds {} bytes, not a whole number of int32 item ids", dir_, key, value->size());
  std::vector<int32_t> items(value->size() / sizeof(int32_t));
  if (!items.empty()) std::memcpy(items.data(), value->data(), value->size());
  return items;
}

std::vector<std::string> UserStore::item_external_ids() const {
  if (!db_) fail("user store: not open");
  std::vector<std::string> externals;
  externals.reserve(static_cast<size_t>(item_count_));
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(rocksdb::Slice(kItemInternalPrefix.data(), kItemInternalPrefix.size()));
       it->Valid() && it->key().starts_with(rocksdb::Slice(kItemInternalPrefix.data(), kItemInternalPrefix.size()));
       it->Next()) {
    const std::string expected = item_internal_key(static_cast<int32_t>(externals.size()));
    if (it->key().ToString() != expected)
      fail("{}: item id map has a gap: found key '{}' where '{}' was expected", dir_, it->key().ToString(), expected);
    externals.push_back(it->value().ToString());
  }
  check(it->status(), dir_, "iterate item ids");
  if (static_cast<int32_t>(externals.size()) != item_count_)
    fail("{}: item id map holds {} items but meta/item_count says {}", dir_, externals.size(), item_count_);
  return externals;
}

std::string UserStore::content_checksum() const {
  if (!db_) fail("user store: not open");
  rocksdb::ReadOptions options;
  options.verify_checksums = true;
  options.fill_cache = false;  // one pass over everything; keep the block cache for serving lookups
  Sha256 hash;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(options));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    for (const rocksdb::Slice& part : {it->key(), it->value()}) {
      const uint64_t length = part.size();
      hash.update(std::string_view(reinterpret_cast<const char*>(&length), sizeof(length)));
      hash.update(std::string_view(part.data(), part.size()));
    }
  }
  check(it->status(), dir_, "iterate for checksum");
  return hash.hex();
}

}  // namespace embrec::index
