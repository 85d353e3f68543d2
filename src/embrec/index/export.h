// The export folder: what a trained model hands to the server. write_export builds the item index and the user
// store from plain arrays and swaps the folder into place whole; load_export checks it against its manifest.
//
// Layout of an export folder:
//   manifest.json   what the folder holds and how to check it (fields: see Manifest)
//   items.faiss     the item index (faiss::write_index format)
//   store/          the RocksDB user store (see user_store.h)
//
// Checksums are 64-bit FNV-1a (util/files.h), written "fnv1a64:<16 hex digits>": `index_checksum` over the bytes
// of items.faiss (which hold the item vectors), `store_checksum` over every key and value of the store (user
// vectors, seen items, id maps; see UserStore::content_checksum). They catch truncation and edits, not tampering.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "embrec/index/item_index.h"
#include "embrec/index/user_store.h"

namespace embrec::index {

inline constexpr int kExportFormat = 1;
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kIndexFile = "items.faiss";
inline constexpr const char* kStoreDir = "store";

// Plain arrays from the training side; internal ids are row numbers.
struct ExportData {
  std::string model_name;
  std::string dataset_name;
  int32_t dim = 0;
  std::vector<float> item_vectors;                   // [item_count x dim], row i = internal item i
  std::vector<float> user_vectors;                   // [user_count x dim], row u = internal user u
  std::vector<std::vector<int32_t>> user_seen_items;  // per user, internal item ids oldest first; empty = none at all
  std::vector<std::string> user_external_ids;        // user_count original ids
  std::vector<std::string> item_external_ids;        // item_count original ids
  // Opaque to this layer: where the torch side finds what it needs to encode new histories online (a run folder
  // or checkpoint path); empty when the model cannot encode histories.
  std::string encoder;
};

struct ExportOptions {
  IndexSpec index;
  int32_t store_batch_users = 1024;  // users per RocksDB WriteBatch
};

struct Manifest {
  int format_version = kExportFormat;
  std::string model;
  std::string dataset;
  int32_t dimension = 0;
  std::string metric;         // ip | cosine | l2
  std::string index_factory;  // the Faiss factory string the index was built from (presets resolved)
  int32_t nprobe = 0;         // the search parameters the index was built with
  int32_t ef_search = 0;
  int64_t item_count = 0;
  int64_t user_count = 0;
  std::string created_utc;  // ISO-8601, e.g. 2024-05-01T12:00:00Z
  std::string index_checksum;
  std::string store_checksum;
  std::string encoder;

  // A short identity of the exported content (16 hex digits from both checksums): the "model version" the
  // server reports. Two exports of identical vectors and ids share it; any change to them changes it.
  std::string version() const;
  nlohmann::json to_json() const;
  // `source` (the manifest's path) is named in errors; a missing field or wrong type names the field.
  static Manifest from_json(const nlohmann::json& json, const std::string& source);
};

// Writes the export into `out_dir + ".tmp.<pid>"`, then moves it into place: an existing `out_dir` is renamed to
// `out_dir + ".old.<pid>"`, the new folder renamed in, the old one removed. A killed export leaves only a
// `.tmp.<pid>` (or, between the two renames, a `.old.<pid>`) folder, which load_export refuses by name; an
// `out_dir` that exists is always complete. The data is validated (shapes, id ranges, finite values, unique ids)
// before anything is written. Returns the manifest written.
Manifest write_export(const ExportData& data, const std::string& out_dir, const ExportOptions& options = {});

struct LoadedExport {
  std::string dir;
  Manifest manifest;
  ItemIndex index;
  UserStore store;
  // Item id maps in memory: every response converts k internal ids back, so they are kept out of RocksDB's path.
  std::vector<std::string> item_external_ids;
  std::unordered_map<std::string, int32_t> item_ids;

  std::optional<int32_t> item_id(const std::string& external_id) const;
};

// Loads and verifies an export: manifest format version, index and store checksums, dimension (manifest == index
// == store), item count (manifest == index == store) and user count (manifest == store). Any mismatch is an Error
// naming the file and the manifest field, e.g. "runs/x/export/items.faiss: dimension 32 does not match
// manifest.json field 'dimension' (64)".
LoadedExport load_export(const std::string& dir);

// "2024-05-01T12:00:00Z" for now.
std::string utc_now_iso8601();

}  // namespace embrec::index
