// The export folder: what a trained model hands to the server, self-contained (it serves without the run folder
// that made it, from any path it is copied to). write_export builds the item index and the user store from plain
// arrays, copies in the history encoder, and swaps the new version in atomically; load_export checks every file
// against the manifest.
//
// Layout: OUT is a symbolic link to OUT.versions/<id>, a complete version folder holding
//   manifest.json        what the folder holds and how to check it (fields: see Manifest)
//   items.faiss          the item index (faiss::write_index format): every item, or only the flagged ones (see
//                        ExportData::item_indexed) behind Faiss' id map
//   items.{s}.faiss      instead of items.faiss when ExportOptions::shards > 1: shard s = 0, 1, ... of the index, one
//                        Faiss file each over a contiguous item-id range (see ItemIndex), listed in the manifest
//   store/               the RocksDB user store (see user_store.h)
//   encoder/config.toml  the model's resolved config, and encoder/model.pt its weights (a checkpoint file), for
//   encoder/model.pt     models that encode fresh histories; absent for the others
// A new export is written to OUT.versions/<id>.tmp, renamed to <id>, and OUT's link replaced by rename(2): at
// every instant OUT names a complete version. The previous version is kept (a server that has not reloaded yet
// still reads it), older ones removed. Copy an export with `cp -rL OUT elsewhere` (a plain folder loads too).
//
// Checksums are SHA-256 (util/checksum.h), written "sha256:<64 hex digits>": `index_checksum` and the encoder's over
// the files' bytes (`sha256sum` reproduces them), `store_checksum` over every key and value of the store (user
// vectors, seen items, id maps; see UserStore::content_checksum). A sharded index has one per shard file
// (`index_checksums`), and `index_checksum` is then the checksum of those. They catch damage and replaced files, not
// tampering.
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

inline constexpr int kExportFormat = 2;  // 2: SHA-256, encoder inside, versioned folders (1: FNV, encoder = run path)
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kIndexFile = "items.faiss";
inline constexpr const char* kStoreDir = "store";
inline constexpr const char* kEncoderDir = "encoder";
inline constexpr const char* kEncoderConfigFile = "config.toml";  // in kEncoderDir
inline constexpr const char* kEncoderWeightsFile = "model.pt";     // in kEncoderDir
inline constexpr const char* kEncoderStateFile = "state.json";    // in kEncoderDir, for models that have one
inline constexpr const char* kVersionsSuffix = ".versions";

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
  // Which items go into the index: empty = every item (an index file byte-for-byte as without the field);
  // otherwise one flag per item, non-zero = indexed, at least one. Items left out (e.g. never trained on, whose
  // vectors are noise) are never recommended but stay known everywhere else: id maps, seen items, histories.
  std::vector<uint8_t> item_indexed;
  // Models that encode fresh histories: the resolved config (TOML text) and a checkpoint file's bytes with the
  // weights, written into encoder/ (opaque to this layer; the torch side reads them back). Both empty for the
  // others: the service then answers 501 on the history route.
  std::string encoder_config;
  std::string encoder_weights;
  // What the model needs besides config and weights to be rebuilt (e.g. the two-tower model's feature vocabularies),
  // written as encoder/state.json; empty for models without one (and for exports without an encoder).
  std::string encoder_state;
};

struct ExportOptions {
  IndexSpec index;
  // Item index shards (check = >= 1 and at most the indexed items): contiguous item-id ranges of about equal size,
  // one Faiss file each, searched in parallel and merged (ItemIndex); presets are sized for the smallest shard.
  // 1 writes the one items.faiss exports always wrote, byte for byte.
  int32_t shards = 1;
  int32_t store_batch_users = 1024;  // users per RocksDB WriteBatch
};

// The index file names of an export of `shards` shards, in id order: {kIndexFile} for one, items.{s}.faiss else.
std::vector<std::string> index_file_names(int32_t shards);

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
  // Items in the index: item_count, or fewer when it holds a subset. Written to manifest.json only then; absent on
  // read = item_count, so exports without it read unchanged.
  int64_t indexed_item_count = 0;
  int64_t user_count = 0;
  std::string created_utc;  // ISO-8601, e.g. 2024-05-01T12:00:00Z
  // Shards of the item index. Written to manifest.json only when > 1, with `index_files` (index_file_names, in place
  // of `index_file`) and `index_checksums`; absent on read = 1, so exports without it read unchanged.
  int32_t index_shards = 1;
  // The index file's checksum; of a sharded index, the SHA-256 of index_checksums' lines ("sha256:...\n" each), so
  // version() covers every shard as it covers the one file.
  std::string index_checksum;
  std::vector<std::string> index_checksums;  // one per shard file, in id order; empty when index_shards == 1
  std::string store_checksum;
  std::string encoder;  // kEncoderDir, or empty when the model encodes no histories
  std::string encoder_config_checksum;   // of kEncoderConfigFile; empty without an encoder
  std::string encoder_weights_checksum;  // of kEncoderWeightsFile; empty without an encoder
  std::string encoder_state_checksum;    // of kEncoderStateFile; empty (and not written) without one

  // A short identity of the exported content (16 hex digits of a SHA-256 over all checksums): the "model version"
  // the server reports. Two exports of identical vectors, ids, indexed items and encoder share it; any change to
  // them changes it (the indexed set through the index file's checksum: its id map is in the file).
  std::string version() const;
  nlohmann::json to_json() const;
  // `source` (the manifest's path) is named in errors; a missing field or wrong type names the field.
  static Manifest from_json(const nlohmann::json& json, const std::string& source);
};

// Writes a new version of the export `out_dir` and points `out_dir` at it (see the layout above), after
// recover_export(out_dir). The data is validated (shapes, id ranges, finite values, unique ids) before anything is
// written. An `out_dir` that is a plain folder (an export of format 1, or a copy) is moved into the versions
// folder first. Returns the manifest written. One export at a time per `out_dir`.
Manifest write_export(const ExportData& data, const std::string& out_dir, const ExportOptions& options = {});

// Tidies what interrupted exports of `dir` left behind, and says what it did (one line per action): unfinished
// version folders of processes that are gone and stray links are removed; when `dir` itself is missing or a
// dangling link, it is pointed at the newest complete version (or an older export's ".old.<pid>" folder is moved
// back). Run by every export and by `embrec serve` at start-up. Never touches a complete version in use.
std::vector<std::string> recover_export(const std::string& dir);

struct LoadedExport {
  std::string dir;  // the version folder read (the link resolved once, so one load reads one version)
  Manifest manifest;
  ItemIndex index;
  UserStore store;
  // Item id maps in memory: every response converts k internal ids back, so they are kept out of RocksDB's path.
  std::vector<std::string> item_external_ids;
  std::unordered_map<std::string, int32_t> item_ids;

  std::optional<int32_t> item_id(const std::string& external_id) const;
  // The encoder folder (kEncoderConfigFile and kEncoderWeightsFile, checksums verified), or "" without one.
  std::string encoder_dir() const;
};

// Loads and verifies an export: manifest format version, index (every shard file's), store and encoder checksums,
// dimension (manifest == index == store), item count (manifest == store, and every indexed id below it), indexed
// item count (manifest == index) and user count (manifest == store). Any mismatch, or a missing shard file, is an
// Error naming the file and the manifest field, e.g. "runs/x/export/items.faiss: dimension 32 does not match
// manifest.json field 'dimension' (64)".
LoadedExport load_export(const std::string& dir);

// "2024-05-01T12:00:00Z" for now.
std::string utc_now_iso8601();

}  // namespace embrec::index
