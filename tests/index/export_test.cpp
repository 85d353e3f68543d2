// Export folders: everything written comes back from load_export, any edit or truncation is refused naming the
// file and the manifest field, and interrupted exports never load.
#include "embrec/index/export.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <regex>

#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "synthetic.h"

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

  // The message of the Error load_export(dir) throws ("" when it loads).
  std::string load_error(const std::string& dir) {
    try {
      (void)load_export(dir);
    } catch (const Error& error) {
      return error.what();
    }
    return "";
  }
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
  EXPECT_EQ(m.encoder, "runs/fake");
  EXPECT_TRUE(std::regex_match(m.created_utc, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"))) << m.created_utc;
  EXPECT_TRUE(std::regex_match(m.index_checksum, std::regex("fnv1a64:[0-9a-f]{16}"))) << m.index_checksum;
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
  EXPECT_EQ(root_entries(), std::vector<std::string>{"model"});  // no .tmp or .old left behind
}

TEST_F(ExportTest, ReexportReplacesTheFolderWholeAndChangesTheVersion) {
  const Manifest first = write_export(data_, dir_, options_);
  data_.user_vectors[0] += 1.0f;
  const Manifest second = write_export(data_, dir_ + "/", options_);  // trailing slash: the same export
  EXPECT_EQ(second.index_checksum, first.index_checksum);  // items unchanged
  EXPECT_NE(second.store_checksum, first.store_checksum);
  EXPECT_NE(second.version(), first.version());
  EXPECT_EQ(load_export(dir_).manifest.version(), second.version());
  EXPECT_EQ(root_entries(), std::vector<std::string>{"model"});
}

TEST_F(ExportTest, FailedExportLeavesThePreviousOneServing) {
  const Manifest first = write_export(data_, dir_, options_);
  options_.index.factory = "Bogus";
  EXPECT_THROW(write_export(data_, dir_, options_), Error);
  EXPECT_EQ(load_export(dir_).manifest.version(), first.version());
  EXPECT_EQ(root_entries(), std::vector<std::string>{"model"});
}

TEST_F(ExportTest, InvalidDataIsRefusedBeforeAnythingIsWritten) {
  auto expect_refused = [&](const ExportData& bad, const std::string& needle) {
    try {
      write_export(bad, dir_, options_);
      ADD_FAILURE() << "expected an error about " << needle;
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(needle), std::string::npos) << error.what();
    }
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
  edit_manifest([](json& m) { m["format_version"] = 2; });
  message = load_error(dir_);
  EXPECT_NE(message.find("manifest.json: field 'format_version' is 2"), std::string::npos) << message;

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m.erase("metric"); });
  EXPECT_NE(load_error(dir_).find("manifest.json: missing field 'metric'"), std::string::npos);

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["dimension"] = "8"; });
  EXPECT_NE(load_error(dir_).find("field 'dimension' must be an integer"), std::string::npos);

  write_export(data_, dir_, options_);
  edit_manifest([](json& m) { m["store_checksum"] = "fnv1a64:0000000000000000"; });
  message = load_error(dir_);
  EXPECT_NE(message.find("store: checksum"), std::string::npos) << message;
  EXPECT_NE(message.find("field 'store_checksum'"), std::string::npos) << message;

  write_export(data_, dir_, options_);
  std::ofstream(dir_ + "/manifest.json", std::ios::trunc) << "{\"format_version\": 1,";
  EXPECT_NE(load_error(dir_).find("manifest.json: not valid JSON"), std::string::npos);
}

TEST_F(ExportTest, TruncatedOrReplacedIndexIsAChecksumErrorNamingTheFile) {
  write_export(data_, dir_, options_);
  const std::string index_path = dir_ + "/items.faiss";
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

TEST_F(ExportTest, LeftoverTemporaryFolderNeverLoads) {
  write_export(data_, dir_, options_);
  // A killed export: a complete-looking temporary folder beside a missing target, and one without a manifest.
  const std::string leftover = dir_ + ".tmp.4242";
  fs::rename(dir_, leftover);
  EXPECT_NE(load_error(dir_).find("export folder not found"), std::string::npos);
  EXPECT_NE(load_error(leftover).find("temporary folder of an interrupted"), std::string::npos);
  EXPECT_NE(load_error(dir_ + ".old.4242/").find("temporary folder"), std::string::npos);
  fs::remove(leftover + "/manifest.json");
  fs::rename(leftover, dir_);
  EXPECT_NE(load_error(dir_).find("manifest.json: missing"), std::string::npos);
  // The next export over it succeeds and loads.
  write_export(data_, dir_, options_);
  EXPECT_EQ(load_error(dir_), "");
}

}  // namespace
}  // namespace embrec::index
