// Export folders: everything written comes back from load_export, any edit or truncation is refused naming the
// file and the manifest field, an export moves and copies whole, and interrupted exports never load and are
// recovered; an export whose index holds only the flagged items keeps every item known and loads with them alone
// in the index; a sharded export writes one checked file per shard and serves what the unsharded one does.
#include "embrec/index/export.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>

#include <signal.h>

#include <cerrno>

#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "synthetic.h"
#include "../util/error_of.h"

namespace embrec::index {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = embrec::testing::temp_path("export");
    dir_ = root_ + "/model";
    data_ = embrec::testing::small_export_data(40, 120, 8, 5);
    options_.index = {"Flat", Metric::kInnerProduct};
  }
  void TearDown() override { fs::remove_all(root_); }

  // The message of the Error load_export(dir) throws ("(no error)" when it loads).
  std::string load_error(const std::string& dir) { return error_of([&] { (void)load_export(dir); }); }
  void edit_manifest(const std::function<void(json&)>& change) {
    json manifest = json::parse(read_file(dir_ + "/manifest.json"));
    change(manifest);
    std::ofstream(dir_ + "/manifest.json", std::ios::trunc) << manifest.dump(2);
  }
  std::vector<std::string> root_entries() {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(root_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string root_, dir_;
  ExportData data_;
  ExportOptions options_;
};

TEST_F(ExportTest, RoundTripGivesIdenticalVectorsSeenListsIdMapsAndManifest) {
  const Manifest written = write_export(data_, dir_, options_);
  const LoadedExport loaded = load_export(dir_);
  const Manifest& m = loaded.manifest;
  EXPECT_EQ(m.format_version, kExportFormat);
  EXPECT_EQ(m.model, "fake");
  EXPECT_EQ(m.dataset, "synthetic");
  EXPECT_EQ(m.dimension, 8);
  EXPECT_EQ(m.metric, "ip");
  EXPECT_EQ(m.index_factory, "Flat");
  EXPECT_EQ(m.item_count, 120);
  EXPECT_EQ(m.user_count, 40);
  EXPECT_EQ(m.encoder, "encoder");
  EXPECT_EQ(read_file(loaded.encoder_dir() + "/config.toml"), data_.encoder_config);
  EXPECT_EQ(read_file(loaded.encoder_dir() + "/model.pt"), data_.encoder_weights);
  EXPECT_EQ(m.encoder_weights_checksum, "sha256:" + sha256_hex(data_.encoder_weights));
  EXPECT_TRUE(std::regex_match(m.created_utc, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"))) << m.created_utc;
  // The standard tool reproduces the file checksums.
  EXPECT_EQ(m.index_checksum, "sha256:" + sha256_file_hex(dir_ + "/items.faiss"));
  EXPECT_TRUE(std::regex_match(m.store_checksum, std::regex("sha256:[0-9a-f]{64}"))) << m.store_checksum;
  EXPECT_EQ(m.index_checksum, written.index_checksum);
  EXPECT_EQ(m.store_checksum, written.store_checksum);
  EXPECT_EQ(m.version(), written.version());
  EXPECT_EQ(m.version().size(), 16u);

  EXPECT_EQ(loaded.index.size(), 120);
  EXPECT_EQ(loaded.index.dim(), 8);
  for (int32_t item = 0; item < 120; ++item) {
    const std::vector<float> expected(data_.item_vectors.begin() + item * 8, data_.item_vectors.begin() + item * 8 + 8);
    ASSERT_EQ(loaded.index.item_vector(item), expected) << item;
    ASSERT_EQ(loaded.item_external_ids[item], data_.item_external_ids[item]);
    ASSERT_EQ(loaded.item_id(data_.item_external_ids[item]), item);
    ASSERT_EQ(loaded.store.item_id(data_.item_external_ids[item]), item);
  }
  for (int32_t user = 0; user < 40; ++user) {
    const std::vector<float> expected(data_.user_vectors.begin() + user * 8, data_.user_vectors.begin() + user * 8 + 8);
    ASSERT_EQ(loaded.store.user_vector(user), expected) << user;
    ASSERT_EQ(loaded.store.seen_items(user), data_.user_seen_items[user]) << user;
    ASSERT_EQ(loaded.store.user_id(data_.user_external_ids[user]), user);
    ASSERT_EQ(loaded.store.user_external_id(user), data_.user_external_ids[user]);
  }
  EXPECT_FALSE(loaded.item_id("99").has_value());
  EXPECT_EQ(root_entries(), (std::vector<std::string>{"model", "model.versions"}));  // nothing else left behind
  EXPECT_TRUE(fs::is_symlink(dir_));
  EXPECT_EQ(loaded.dir, fs::canonical(dir_).string());
}

TEST_F(ExportTest, ReexportReplacesTheFolderWholeAndChangesTheVersion) {
  const Manifest first = write_export(data_, dir_, options_);
  data_.user_vectors[0] += 1.0f;
  const Manifest second = write_export(data_, dir_ + "/", options_);  // trailing slash: the same export
  EXPECT_EQ(second.index_checksum, first.index_checksum);  // items unchanged
  EXPECT_NE(second.store_checksum, first.store_checksum);
  EXPECT_NE(second.version(), first.version());
  EXPECT_EQ(load_export(dir_).manifest.version(), second.version());
  EXPECT_EQ(root_entries(), (std::vector<std::string>{"model", "model.versions"}));
  // The previous version stays (a server that has not reloaded still reads it); older ones go.
  auto version_count = [&] {
    return std::distance(fs::directory_iterator(dir_ + ".versions"), fs::directory_iterator());
  };
  EXPECT_EQ(version_count(), 2);
  write_export(data_, dir_, options_);
  EXPECT_EQ(version_count(), 2);
}

TEST_F(ExportTest, TheVersionCoversTheEncoderAndAnExportWithoutOneHasNone) {
  const Manifest first = write_export(data_, dir_, options_);
  data_.encoder_weights += " (another run's)";
  const Manifest second = write_export(data_, dir_, options_);
  EXPECT_EQ(second.index_checksum, first.index_checksum);
  EXPECT_EQ(second.store_checksum, first.store_checksum);
  EXPECT_NE(second.version(), first.version());
  data_.encoder_config.clear();
  data_.encoder_weights.clear();
  write_export(data_, dir_, options_);
  const LoadedExport loaded = load_export(dir_);
  EXPECT_EQ(loaded.manifest.encoder, "");
  EXPECT_EQ(loaded.encoder_dir(), "");
  EXPECT_FALSE(fs::exists(dir_ + "/encoder"));
  data_.encoder_config = "[model]\n";
  EXPECT_THROW(write_export(data_, dir_, options_), Error);  // a config without weights
}

TEST_F(ExportTest, AnEncoderStateIsWrittenCheckedAndCoveredByTheVersion) {
  const Manifest without = write_export(data_, dir_, options_);
  EXPECT_EQ(without.encoder_state_checksum, "");
  EXPECT_FALSE(fs::exists(load_export(dir_).encoder_dir() + "/state.json"));
  EXPECT_FALSE(nlohmann::json::parse(read_file(dir_ + "/manifest.json")).contains("encoder_state_checksum"));
  data_.encoder_state = R"({"user_fields": []})";
  const Manifest with = write_export(data_, dir_, options_);
  EXPECT_NE(with.version(), without.version());
  const LoadedExport loaded = load_export(dir_);
  EXPECT_EQ(loaded.manifest.encoder_state_checksum, with.encoder_state_checksum);
  EXPECT_EQ(read_file(loaded.encoder_dir() + "/state.json"), data_.encoder_state);
  // A damaged state is refused, naming the file and the field.
  const std::string state = fs::canonical(dir_).string() + "/encoder/state.json";
  fs::permissions(state, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(state, std::ios::trunc) << R"({"user_fields": [1]})";
  const std::string message = error_of([&] { load_export(dir_); });
  EXPECT_NE(message.find("state.json"), std::string::npos) << message;
  EXPECT_NE(message.find("encoder_state_checksum"), std::string::npos) << message;
  // A state needs an encoder.
  data_.encoder_config.clear();
  data_.encoder_weights.clear();
  EXPECT_THROW(write_export(data_, dir_, options_), Error);
}

TEST_F(ExportTest, AnExportCopiedOrMovedElsewhereLoadsAndServesTheSame) {
  const Manifest written = write_export(data_, dir_, options_);
  fs::copy(dir_, root_ + "/copy", fs::copy_options::recursive);  // cp -rL: the link followed
  fs::rename(fs::canonical(dir_), root_ + "/moved");
  fs::remove(dir_);
  const LoadedExport copied = load_export(root_ + "/copy");
  const LoadedExport moved = load_export(root_ + "/moved");
  EXPECT_EQ(copied.manifest.version(), written.version());
  EXPECT_EQ(moved.manifest.version(), written.version());
  EXPECT_EQ(read_file(copied.encoder_dir() + "/model.pt"), data_.encoder_weights);
  EXPECT_EQ(copied.index.item_vector(7), moved.index.item_vector(7));
  // A copy is a plain folder; exporting over it keeps it as the previous version and puts the link in.
  write_export(data_, root_ + "/copy", options_);
  EXPECT_TRUE(fs::is_symlink(root_ + "/copy"));
  EXPECT_EQ(load_export(root_ + "/copy").manifest.index_checksum, written.index_checksum);
}

TEST_F(ExportTest, FailedExportLeavesThePreviousOneServing) {
  const Manifest first = write_export(data_, dir_, options_);
  options_.index.factory = "Bogus";
  EXPECT_THROW(write_export(data_, dir_, options_), Error);
  EXPECT_EQ(load_export(dir_).manifest.version(), first.version());
  EXPECT_EQ(root_entries(), (std::vector<std::string>{"model", "model.versions"}));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ + ".versions"), fs::directory_iterator()), 1);
}

TEST_F(ExportTest, InvalidDataIsRefusedBeforeAnythingIsWritten) {
  auto expect_refused = [&](const ExportData& bad, const std::string& needle) {
    const std::string message = error_of([&] { write_export(bad, dir_, options_); });
    EXPECT_NE(message.find(needle), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(root_)) << needle;
  };
  ExportData bad = data_;
  bad.item_vectors.pop_back();
  expect_refused(bad, "item_vectors holds 959 floats");
  bad = data_;
  bad.user_seen_items[3].push_back(120);
  expect_refused(bad, "user 3 ('u3') has seen item 120");
  bad = data_;
  bad.user_vectors[17] = std::nanf("");
  expect_refused(bad, "user 2 has a non-finite value at 1");
  bad = data_;
  bad.item_external_ids[5] = bad.item_external_ids[6];
  expect_refused(bad, "item id '106' appears twice (rows 5 and 6)");
  bad = data_;
  bad.item_indexed.assign(119, 1);
  expect_refused(bad, "item_indexed has 119 flags for 120 items");
  bad = data_;
  bad.item_indexed.assign(120, 0);
  expect_refused(bad, "item_indexed flags none of the 120 items");
}

TEST_F(ExportTest, EditedManifestIsAnErrorNamingTheFileAndField) {
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["dimension"] = 16; });
  std::string message = load_error(dir_);
  EXPECT_NE(message.find("items.faiss"), std::string::npos) << message;
  EXPECT_NE(message.find("manifest.json field 'dimension'"), std::string::npos) << message;

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["item_count"] = 119; });
  message = load_error(dir_);
  EXPECT_NE(message.find("field 'item_count' says 119"), std::string::npos) << message;

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["user_count"] = 41; });
  message = load_error(dir_);
  EXPECT_NE(message.find("store"), std::string::npos) << message;
  EXPECT_NE(message.find("field 'user_count' says 41"), std::string::npos) << message;

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["format_version"] = 1; });
  message = load_error(dir_);
  EXPECT_NE(message.find("manifest.json: field 'format_version' is 1, this build reads format 2; export the run "
                         "again"),
            std::string::npos)
      << message;

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m.erase("metric"); });
  EXPECT_NE(load_error(dir_).find("manifest.json: missing field 'metric'"), std::string::npos);

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["dimension"] = "8"; });
  EXPECT_NE(load_error(dir_).find("field 'dimension' must be an integer"), std::string::npos);

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["store_checksum"] = "sha256:" + std::string(64, '0'); });
  message = load_error(dir_);
  EXPECT_NE(message.find("store: checksum"), std::string::npos) << message;
  EXPECT_NE(message.find("field 'store_checksum'"), std::string::npos) << message;

  write_export(data_, dir_, options_);
  std::ofstream(dir_ + "/manifest.json", std::ios::trunc) << "{\"format_version\": 1,";
  EXPECT_NE(load_error(dir_).find("manifest.json: not valid JSON"), std::string::npos);

  // The encoder's files are checked like the index: another run's weights put in place are refused.
  write_export(data_, dir_, options_);
  std::ofstream(dir_ + "/encoder/model.pt", std::ios::trunc) << "other weights";
  message = load_error(dir_);
  EXPECT_NE(message.find("encoder/model.pt: checksum"), std::string::npos) << message;
  EXPECT_NE(message.find("field 'encoder_weights_checksum'"), std::string::npos) << message;
  write_export(data_, dir_, options_);
  fs::remove(dir_ + "/encoder/config.toml");
  EXPECT_NE(load_error(dir_).find("encoder/config.toml: missing"), std::string::npos);
}

TEST_F(ExportTest, TruncatedOrReplacedIndexIsAChecksumErrorNamingTheFile) {
  write_export(data_, dir_, options_);
  // Errors name the version folder read (the link resolved).
  const std::string index_path = fs::canonical(dir_).string() + "/items.faiss";
  const std::string bytes = read_file(index_path);
  std::ofstream(index_path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  std::string message = load_error(dir_);
  EXPECT_NE(message.find(index_path + ": checksum"), std::string::npos) << message;
  EXPECT_NE(message.find("field 'index_checksum'"), std::string::npos) << message;

  // Another export's valid index of another dimension, with the checksum fixed up: the dimension check catches it.
  ExportData other = embrec::testing::small_export_data(40, 120, 4, 6);
  write_export(other, root_ + "/other", options_);
  fs::copy_file(root_ + "/other/items.faiss", index_path, fs::copy_options::overwrite_existing);
  const std::string other_checksum = load_export(root_ + "/other").manifest.index_checksum;
  edit_manifest([&](json& m) { m["index_checksum"] = other_checksum; });
  message = load_error(dir_);
  EXPECT_NE(message.find(index_path + ": dimension 4 does not match manifest.json field 'dimension' (8)"),
            std::string::npos)
      << message;
}

TEST_F(ExportTest, AnExportIndexingSomeItemsRoundTripsWithOnlyThoseInTheIndexAndEveryItemKnown) {
  data_.item_indexed = embrec::testing::indexed_flags(120, 3);  // items 0, 3, ..., 117 left out: 80 indexed
  const Manifest written = write_export(data_, dir_, options_);
  EXPECT_EQ(written.indexed_item_count, 80);
  EXPECT_EQ(json::parse(read_file(dir_ + "/manifest.json")).at("indexed_item_count"), 80);
  const LoadedExport loaded = load_export(dir_);
  const Manifest& m = loaded.manifest;
  EXPECT_EQ(m.item_count, 120);
  EXPECT_EQ(m.indexed_item_count, 80);
  EXPECT_EQ(m.version(), written.version());
  EXPECT_EQ(loaded.index.size(), 80);
  EXPECT_TRUE(loaded.index.has_item_ids());
  EXPECT_EQ(loaded.index.item_id_end(), 119 + 1);
  for (int32_t item = 0; item < 120; ++item) {
    SCOPED_TRACE(item);
    const bool indexed = item % 3 != 0;
    ASSERT_EQ(loaded.index.contains(item), indexed);
    if (indexed) {
      const std::vector<float> expected(data_.item_vectors.begin() + item * 8,
                                        data_.item_vectors.begin() + item * 8 + 8);
      ASSERT_EQ(loaded.index.item_vector(item), expected);
    } else {
      ASSERT_THROW((void)loaded.index.item_vector(item), Error);
    }
    // Left-out items keep their place in the id maps.
    ASSERT_EQ(loaded.item_external_ids[item], data_.item_external_ids[item]);
    ASSERT_EQ(loaded.item_id(data_.item_external_ids[item]), item);
    ASSERT_EQ(loaded.store.item_id(data_.item_external_ids[item]), item);
  }
  ASSERT_EQ(data_.user_seen_items[0], std::vector<int32_t>{0});  // a left-out item
  for (int32_t user = 0; user < 40; ++user) {
    SCOPED_TRACE(user);
    const std::vector<int32_t> seen = loaded.store.seen_items(user).value_or(std::vector<int32_t>{});
    ASSERT_EQ(seen, data_.user_seen_items[user]);
    // Seen lists mix indexed and left-out items: still exactly k, none seen, none left out.
    const std::vector<ScoredItem> hits = loaded.index.search(data_.user_vectors.data() + user * 8, 30, seen);
    ASSERT_EQ(hits.size(), 30u);
    for (const ScoredItem& hit : hits) {
      ASSERT_NE(hit.item % 3, 0) << hit.item;
      ASSERT_EQ(std::count(seen.begin(), seen.end(), hit.item), 0) << hit.item;
    }
  }
}

TEST_F(ExportTest, AnExportOfEveryItemWritesNoIndexedItemCountAndTheIndexFileItAlwaysWrote) {
  const Manifest plain = write_export(data_, dir_, options_);
  EXPECT_EQ(plain.indexed_item_count, 120);
  EXPECT_FALSE(json::parse(read_file(dir_ + "/manifest.json")).contains("indexed_item_count"));
  const LoadedExport loaded = load_export(dir_);
  EXPECT_EQ(loaded.manifest.indexed_item_count, 120);  // absent: item_count
  EXPECT_FALSE(loaded.index.has_item_ids());
  // Byte-for-byte the file exports wrote before item_indexed: the plain index of every row, no id map.
  const ItemIndex reference = ItemIndex::build(data_.item_vectors.data(), 120, 8, options_.index);
  EXPECT_EQ(read_file(dir_ + "/items.faiss"), reference.serialize());
  // Every item flagged is the same export: the plain index, no field, the same version.
  data_.item_indexed.assign(120, 1);
  const Manifest flagged = write_export(data_, dir_, options_);
  EXPECT_EQ(flagged.indexed_item_count, 120);
  EXPECT_FALSE(json::parse(read_file(dir_ + "/manifest.json")).contains("indexed_item_count"));
  EXPECT_EQ(flagged.index_checksum, plain.index_checksum);
  EXPECT_EQ(flagged.version(), plain.version());
}

TEST_F(ExportTest, TheVersionChangesWhenTheIndexedItemsChange) {
  const Manifest every = write_export(data_, dir_, options_);
  data_.item_indexed = embrec::testing::indexed_flags(120, 3);
  const Manifest some = write_export(data_, dir_, options_);
  EXPECT_EQ(some.store_checksum, every.store_checksum);  // ids, vectors and seen lists unchanged
  EXPECT_NE(some.index_checksum, every.index_checksum);
  EXPECT_NE(some.version(), every.version());
  EXPECT_EQ(write_export(data_, dir_, options_).version(), some.version());  // the same flags: the same version
  data_.item_indexed[0] = 1;  // one item more
  const Manifest more = write_export(data_, dir_, options_);
  EXPECT_EQ(more.indexed_item_count, 81);
  EXPECT_NE(more.version(), some.version());
  EXPECT_EQ(load_export(dir_).manifest.version(), more.version());
}

TEST_F(ExportTest, AnIvfPresetIsSizedForTheIndexedItems) {
  // 80 indexed items: at most 80 / 39 = 2 lists so each trains on Faiss' minimum; all 120 would allow 3.
  options_.index.factory = "ivf";
  data_.item_indexed = embrec::testing::indexed_flags(120, 3);
  const Manifest written = write_export(data_, dir_, options_);
  EXPECT_EQ(written.index_factory, "IVF2,Flat");
  const LoadedExport loaded = load_export(dir_);
  EXPECT_EQ(loaded.index.description(), "IVF2,Flat");
  const std::vector<ScoredItem> hits = loaded.index.search(data_.user_vectors.data(), 80);
  ASSERT_EQ(hits.size(), 80u);
  for (const ScoredItem& hit : hits) ASSERT_NE(hit.item % 3, 0) << hit.item;
}

TEST_F(ExportTest, AnIndexedItemCountThatDisagreesWithTheIndexIsAnErrorNamingTheField) {
  data_.item_indexed = embrec::testing::indexed_flags(120, 3);  // 80 indexed
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["indexed_item_count"] = 79; });
  std::string message = load_error(dir_);
  EXPECT_NE(message.find("items.faiss: holds 80 items but manifest.json field 'indexed_item_count' says 79"),
            std::string::npos)
      << message;

  // Without the field the manifest says every item is indexed, which an index of 80 contradicts.
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m.erase("indexed_item_count"); });
  message = load_error(dir_);
  EXPECT_NE(message.find("items.faiss: holds 80 items but manifest.json field 'item_count' says 120"),
            std::string::npos)
      << message;

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["indexed_item_count"] = 121; });
  message = load_error(dir_);
  EXPECT_NE(message.find("manifest.json: field 'indexed_item_count' must be in [1, item_count = 120], got 121"),
            std::string::npos)
      << message;

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["indexed_item_count"] = "80"; });
  message = load_error(dir_);
  EXPECT_NE(message.find("field 'indexed_item_count' must be an integer"), std::string::npos) << message;

  // The index holds ids up to 119: an item id map of 100 could not name them.
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["item_count"] = 100; });
  message = load_error(dir_);
  EXPECT_NE(message.find("items.faiss: holds item id 119 but manifest.json field 'item_count' says 100"),
            std::string::npos)
      << message;

  // An export of every item given the field afterwards.
  data_.item_indexed.clear();
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["indexed_item_count"] = 119; });
  message = load_error(dir_);
  EXPECT_NE(message.find("items.faiss: holds 120 items but manifest.json field 'indexed_item_count' says 119"),
            std::string::npos)
      << message;
}

TEST_F(ExportTest, OneShardWritesTheManifestAndTheIndexFileExportsAlwaysWrote) {
  options_.shards = 1;
  const Manifest written = write_export(data_, dir_, options_);
  const json manifest = json::parse(read_file(dir_ + "/manifest.json"));
  EXPECT_EQ(manifest.at("index_file"), "items.faiss");
  for (const char* field : {"index_shards", "index_files", "index_checksums"})
    EXPECT_FALSE(manifest.contains(field)) << field;
  EXPECT_EQ(written.index_shards, 1);
  EXPECT_TRUE(written.index_checksums.empty());
  EXPECT_EQ(written.index_checksum, "sha256:" + sha256_file_hex(dir_ + "/items.faiss"));
  EXPECT_EQ(read_file(dir_ + "/items.faiss"),
            ItemIndex::build(data_.item_vectors.data(), 120, 8, options_.index).serialize());
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(fs::canonical(dir_))) files.push_back(entry.path().filename());
  std::sort(files.begin(), files.end());
  EXPECT_EQ(files, (std::vector<std::string>{"encoder", "items.faiss", "manifest.json", "store"}));
  const LoadedExport loaded = load_export(dir_);
  EXPECT_EQ(loaded.manifest.index_shards, 1);
  EXPECT_EQ(loaded.index.shard_count(), 1);
  EXPECT_EQ(loaded.index.description(), "Flat");
}

TEST_F(ExportTest, AShardedExportWritesOneCheckedFilePerShardAndServesWhatTheUnshardedOneDoes) {
  const Manifest whole = write_export(data_, root_ + "/whole", options_);
  options_.shards = 3;
  const Manifest written = write_export(data_, dir_, options_);
  EXPECT_EQ(written.index_shards, 3);
  const json manifest = json::parse(read_file(dir_ + "/manifest.json"));
  EXPECT_EQ(manifest.at("index_shards"), 3);
  EXPECT_EQ(manifest.at("index_files"), json({"items.0.faiss", "items.1.faiss", "items.2.faiss"}));
  EXPECT_FALSE(manifest.contains("index_file"));
  EXPECT_FALSE(fs::exists(dir_ + "/items.faiss"));
  // Each shard's checksum is the file's (sha256sum reproduces it); index_checksum is the checksum of their lines.
  std::string lines;
  for (int shard = 0; shard < 3; ++shard) {
    const std::string checksum = "sha256:" + sha256_file_hex(fmt::format("{}/items.{}.faiss", dir_, shard));
    EXPECT_EQ(manifest.at("index_checksums")[shard], checksum);
    lines += checksum + "\n";
  }
  EXPECT_EQ(written.index_checksum, "sha256:" + sha256_hex(lines));
  EXPECT_EQ(manifest.at("index_checksum"), written.index_checksum);
  EXPECT_EQ(written.store_checksum, whole.store_checksum);
  EXPECT_NE(written.version(), whole.version());

  const LoadedExport loaded = load_export(dir_);
  const LoadedExport reference = load_export(root_ + "/whole");
  EXPECT_EQ(loaded.manifest.index_shards, 3);
  EXPECT_EQ(loaded.manifest.index_checksums, written.index_checksums);
  EXPECT_EQ(loaded.manifest.version(), written.version());
  EXPECT_EQ(loaded.index.shard_count(), 3);
  EXPECT_EQ(loaded.index.size(), 120);
  EXPECT_EQ(loaded.index.description(), "Flat x 3 shards");
  for (int32_t item = 0; item < 120; ++item)
    ASSERT_EQ(loaded.index.item_vector(item), reference.index.item_vector(item)) << item;
  for (int32_t user = 0; user < 40; ++user) {
    SCOPED_TRACE(user);
    const float* vector = data_.user_vectors.data() + user * 8;
    const std::vector<int32_t>& seen = data_.user_seen_items[user];
    const std::vector<ScoredItem> hits = loaded.index.search(vector, 30, seen);
    const std::vector<ScoredItem> expected = reference.index.search(vector, 30, seen);
    ASSERT_EQ(hits.size(), 30u);
    for (size_t i = 0; i < hits.size(); ++i) {
      ASSERT_EQ(hits[i].item, expected[i].item) << i;
      ASSERT_EQ(hits[i].score, expected[i].score) << i;
    }
  }
  // The same export again: the same shard files, the same version.
  EXPECT_EQ(write_export(data_, dir_, options_).version(), written.version());
}

TEST_F(ExportTest, AShardedExportOfSomeItemsKeepsTheirIdsInEveryShard) {
  data_.item_indexed = embrec::testing::indexed_flags(120, 3);  // items 0, 3, ..., 117 left out: 80 indexed
  const Manifest whole = write_export(data_, root_ + "/whole", options_);
  options_.shards = 4;
  const Manifest written = write_export(data_, dir_, options_);
  EXPECT_EQ(written.indexed_item_count, 80);
  const LoadedExport loaded = load_export(dir_);
  const LoadedExport reference = load_export(root_ + "/whole");
  EXPECT_EQ(loaded.index.shard_count(), 4);
  EXPECT_EQ(loaded.index.size(), 80);
  EXPECT_TRUE(loaded.index.has_item_ids());
  EXPECT_EQ(loaded.index.item_id_end(), 120);
  for (int32_t item = 0; item < 120; ++item) {
    ASSERT_EQ(loaded.index.contains(item), item % 3 != 0) << item;
    if (item % 3 != 0) ASSERT_EQ(loaded.index.item_vector(item), reference.index.item_vector(item)) << item;
  }
  for (int32_t user = 0; user < 40; ++user) {
    SCOPED_TRACE(user);
    const float* vector = data_.user_vectors.data() + user * 8;
    const std::vector<int32_t>& seen = data_.user_seen_items[user];
    const std::vector<ScoredItem> hits = loaded.index.search(vector, 30, seen);
    ASSERT_EQ(hits.size(), 30u);
    const std::vector<ScoredItem> expected = reference.index.search(vector, 30, seen);
    for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].item, expected[i].item) << i;
  }
}

TEST_F(ExportTest, AMissingDamagedOrReorderedShardIsRefusedNamingTheFile) {
  options_.shards = 3;
  write_export(data_, dir_, options_);
  std::string version = fs::canonical(dir_).string();
  std::string bytes = read_file(version + "/items.1.faiss");
  bytes[bytes.size() / 2] ^= 1;
  std::ofstream(version + "/items.1.faiss", std::ios::binary | std::ios::trunc) << bytes;
  std::string message = load_error(dir_);
  EXPECT_NE(message.find(version + "/items.1.faiss: checksum"), std::string::npos) << message;
  EXPECT_NE(message.find("field 'index_checksums' [1]"), std::string::npos) << message;

  write_export(data_, dir_, options_);
  version = fs::canonical(dir_).string();
  fs::remove(version + "/items.2.faiss");
  message = load_error(dir_);
  EXPECT_NE(message.find(version + "/items.2.faiss: missing, but manifest.json field 'index_shards' says 3"),
            std::string::npos)
      << message;

  // Two shards swapped: the files no longer match their places' checksums; with the checksums swapped too, each
  // file matches, but the order is part of index_checksum (a plain shard's ids come from its place).
  write_export(data_, dir_, options_);
  version = fs::canonical(dir_).string();
  fs::rename(version + "/items.0.faiss", version + "/swap");
  fs::rename(version + "/items.2.faiss", version + "/items.0.faiss");
  fs::rename(version + "/swap", version + "/items.2.faiss");
  message = load_error(dir_);
  EXPECT_NE(message.find(version + "/items.0.faiss: checksum"), std::string::npos) << message;
  edit_manifest([](json& m) { std::swap(m["index_checksums"][0], m["index_checksums"][2]); });
  message = load_error(dir_);
  EXPECT_NE(message.find("manifest.json: field 'index_checksum'"), std::string::npos) << message;
  EXPECT_NE(message.find("the manifest was edited"), std::string::npos) << message;

  // Manifest fields that do not describe the files.
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["index_shards"] = 2; });
  EXPECT_NE(load_error(dir_).find("field 'index_files' must be an array of 2 strings"), std::string::npos)
      << load_error(dir_);
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["index_shards"] = 1; });
  EXPECT_NE(load_error(dir_).find("field 'index_shards' must be at least 2"), std::string::npos) << load_error(dir_);
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["index_files"][1] = "../elsewhere.faiss"; });
  EXPECT_NE(load_error(dir_).find(
                R"(field 'index_files' must be ["items.0.faiss","items.1.faiss","items.2.faiss"])"),
            std::string::npos)
      << load_error(dir_);
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["index_file"] = "items.faiss"; });
  EXPECT_NE(load_error(dir_).find("fields 'index_file' and 'index_shards' both present"), std::string::npos);
  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m.erase("index_checksums"); });
  EXPECT_NE(load_error(dir_).find("manifest.json: missing field 'index_checksums'"), std::string::npos);
}

TEST_F(ExportTest, ShardsOutsideOneToTheIndexedItemCountAreRefusedBeforeAnythingIsWritten) {
  auto expect_refused = [&](int32_t shards, const std::string& needle) {
    options_.shards = shards;
    const std::string message = error_of([&] { write_export(data_, dir_, options_); });
    EXPECT_NE(message.find(needle), std::string::npos) << message;
    EXPECT_FALSE(fs::exists(root_)) << shards;
  };
  expect_refused(0, "shards must be in [1, 120] (at most one per indexed item), got 0");
  expect_refused(121, "shards must be in [1, 120]");
  data_.item_indexed = embrec::testing::indexed_flags(120, 3);
  expect_refused(81, "shards must be in [1, 80]");
}

TEST_F(ExportTest, TheIvfPqPresetIsSizedForEachShardAndTheDimension) {
  data_ = embrec::testing::small_export_data(40, 600, 16, 7);
  options_.index.factory = "ivfpq";
  options_.shards = 2;
  // 300 items a shard: 4 * sqrt(300) = 69 lists, capped at 300 / 39 = 7; 16 dimensions: 2 sub-quantizers of 8.
  const Manifest written = write_export(data_, dir_, options_);
  EXPECT_EQ(written.index_factory, "IVF7,PQ2np");
  const LoadedExport loaded = load_export(dir_);
  EXPECT_EQ(loaded.index.description(), "IVF7,PQ2 x 2 shards");
  for (int32_t user = 0; user < 40; ++user) {
    const std::vector<int32_t>& seen = data_.user_seen_items[user];
    const std::vector<ScoredItem> hits = loaded.index.search(data_.user_vectors.data() + user * 16, 30, seen);
    ASSERT_EQ(hits.size(), 30u) << user;
    for (const ScoredItem& hit : hits) ASSERT_EQ(std::count(seen.begin(), seen.end(), hit.item), 0) << hit.item;
  }
  // 3 shards of 200 items cannot train 256 codes; 17 dimensions have no divisor giving 4 to 16 per sub-quantizer.
  options_.shards = 3;
  const std::string per_shard = error_of([&] { write_export(data_, dir_, options_); });
  EXPECT_NE(per_shard.find("200 items (per shard)"), std::string::npos) << per_shard;
  options_.shards = 1;
  data_ = embrec::testing::small_export_data(40, 600, 17, 8);
  const std::string dimension = error_of([&] { write_export(data_, dir_, options_); });
  EXPECT_NE(dimension.find("dimension 17"), std::string::npos) << dimension;
  EXPECT_EQ(load_export(dir_).manifest.index_factory, "IVF7,PQ2np");  // the failed exports left it serving
}

// A pid no process has: leftovers named with it belong to an export that died.
std::string dead_pid() {
  for (long pid = 4194000;; --pid)
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return std::to_string(pid);
}

TEST_F(ExportTest, LeftoverTemporaryFoldersNeverLoadAndTheNextExportRemovesThem) {
  write_export(data_, dir_, options_);
  const std::string version = fs::read_symlink(dir_).filename().string();
  const std::string unfinished = dir_ + ".versions/20990101T000000.000000Z-" + dead_pid() + ".tmp";
  fs::copy(dir_ + ".versions/" + version, unfinished, fs::copy_options::recursive);
  EXPECT_NE(load_error(unfinished).find("temporary folder of an interrupted"), std::string::npos);
  EXPECT_NE(load_error(dir_ + ".old.4242/").find("temporary folder"), std::string::npos);
  EXPECT_NE(load_error(dir_ + ".link.4242").find("temporary folder"), std::string::npos);
  const std::string stray_link = dir_ + ".link." + dead_pid();
  fs::create_symlink("model.versions/" + version, stray_link);
  write_export(data_, dir_, options_);
  EXPECT_FALSE(fs::exists(unfinished));
  EXPECT_FALSE(fs::exists(fs::symlink_status(stray_link)));
  EXPECT_EQ(root_entries(), (std::vector<std::string>{"model", "model.versions"}));
  EXPECT_EQ(load_error(dir_), "(no error)");
}

TEST_F(ExportTest, AKilledExportAlwaysLeavesALoadableExportAndRecoveryRestoresTheLink) {
  // Killed before the link was swapped: the old version still serves, the new one is complete but unused.
  const Manifest first = write_export(data_, dir_, options_);
  data_.user_vectors[0] += 1.0f;
  const Manifest second = write_export(data_, root_ + "/scratch", options_);
  const std::string scratch_version = fs::read_symlink(root_ + "/scratch").filename().string();
  fs::rename(root_ + "/scratch.versions/" + scratch_version, dir_ + ".versions/29990101T000000.000000Z-1");
  EXPECT_EQ(load_export(dir_).manifest.version(), first.version());
  // The link lost (a plain folder moved aside by the format-1 migration, killed before the link went in): the
  // export is missing until recovery points it at the newest complete version.
  fs::remove(dir_);
  EXPECT_NE(load_error(dir_).find("export folder not found"), std::string::npos);
  const std::vector<std::string> actions = recover_export(dir_);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_NE(actions[0].find("newest complete version 29990101T000000.000000Z-1"), std::string::npos) << actions[0];
  EXPECT_EQ(load_export(dir_).manifest.version(), second.version());
  // A dangling link is recovered the same way.
  fs::remove(dir_);
  fs::create_symlink("model.versions/gone", dir_);
  EXPECT_NE(load_error(dir_).find("which is missing"), std::string::npos);
  EXPECT_EQ(recover_export(dir_).size(), 1u);
  EXPECT_EQ(load_export(dir_).manifest.version(), second.version());
  EXPECT_TRUE(recover_export(dir_).empty());  // nothing left to do
}

TEST_F(ExportTest, AFormatOneSwapKilledBetweenItsRenamesIsUndone) {
  // embrec's earlier exports moved the old folder to ".old.<pid>" before renaming the new one in.
  const Manifest first = write_export(data_, root_ + "/scratch", options_);
  fs::copy(root_ + "/scratch", dir_ + ".old." + dead_pid(), fs::copy_options::recursive);
  fs::create_directories(dir_ + ".tmp." + dead_pid());
  fs::create_symlink("model.versions/gone", dir_);  // and a link to nothing in its place
  const std::vector<std::string> actions = recover_export(dir_);
  EXPECT_EQ(actions.size(), 2u);
  EXPECT_EQ(load_export(dir_).manifest.version(), first.version());
  EXPECT_EQ(root_entries(), (std::vector<std::string>{"model", "scratch", "scratch.versions"}));
}

}  // namespace
}  // namespace embrec::index
