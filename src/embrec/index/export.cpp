// Export folders: validation, a version folder (index, store, encoder, manifest) written under a temporary name and
// renamed, the export's link swapped to it, recovery after interrupted exports, and loading with every manifest
// field and checksum checked.
#include "embrec/index/export.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <tuple>
#include <unordered_map>

#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::index {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string checksum_text(const std::string& hex) { return "sha256:" + hex; }

// The folder path without a trailing separator, so "x/" and "x" name the same export and its ".tmp" sibling.
std::string normalised_dir(const std::string& dir) {
  std::string path = fs::path(dir).lexically_normal().string();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

void validate(const ExportData& data) {
  const size_t dim = data.dim > 0 ? static_cast<size_t>(data.dim) : 0;
  if (dim == 0) fail("export: dimension must be positive, got {}", data.dim);
  const size_t items = data.item_external_ids.size();
  const size_t users = data.user_external_ids.size();
  if (items == 0) fail("export: no items");
  if (items > static_cast<size_t>(INT32_MAX) || users > static_cast<size_t>(INT32_MAX))
    fail("export: {} items / {} users exceed the int32 id range", items, users);
  if (data.item_vectors.size() != items * dim)
    fail("export: item_vectors holds {} floats, expected {} items x {} = {}", data.item_vectors.size(), items, dim,
         items * dim);
  if (data.user_vectors.size() != users * dim)
    fail("export: user_vectors holds {} floats, expected {} users x {} = {}", data.user_vectors.size(), users, dim,
         users * dim);
  if (!data.user_seen_items.empty() && data.user_seen_items.size() != users)
    fail("export: user_seen_items has {} lists for {} users", data.user_seen_items.size(), users);
  if (!data.item_indexed.empty()) {
    if (data.item_indexed.size() != items)
      fail("export: item_indexed has {} flags for {} items (one per item, or none to index every item)",
           data.item_indexed.size(), items);
    if (std::none_of(data.item_indexed.begin(), data.item_indexed.end(), [](uint8_t flag) { return flag != 0; }))
      fail("export: item_indexed flags none of the {} items; at least one must be indexed", items);
  }
  for (size_t i = 0; i < data.item_vectors.size(); ++i)
    if (!std::isfinite(data.item_vectors[i])) fail("export: item {} has a non-finite value at {}", i / dim, i % dim);
  for (size_t i = 0; i < data.user_vectors.size(); ++i)
    if (!std::isfinite(data.user_vectors[i])) fail("export: user {} has a non-finite value at {}", i / dim, i % dim);
  auto check_unique = [](const std::vector<std::string>& ids, const char* kind) {
    std::unordered_map<std::string_view, size_t> first_row;
    first_row.reserve(ids.size());
    for (size_t row = 0; row < ids.size(); ++row) {
      auto [it, added] = first_row.emplace(ids[row], row);
      if (!added) fail("export: {} id '{}' appears twice (rows {} and {})", kind, ids[row], it->second, row);
    }
  };
  check_unique(data.item_external_ids, "item");
  check_unique(data.user_external_ids, "user");
  for (size_t user = 0; user < data.user_seen_items.size(); ++user)
    for (int32_t item : data.user_seen_items[user])
      if (item < 0 || static_cast<size_t>(item) >= items)
        fail("export: user {} ('{}') has seen item {}, outside [0, {})", user, data.user_external_ids[user], item,
             items);
}

void fsync_directory(const std::string& dir) {
  // Makes the renames inside `dir` durable; best effort (some file systems refuse fsync on directories).
  if (FILE* handle = std::fopen(dir.c_str(), "r")) {
    ::fsync(::fileno(handle));
    std::fclose(handle);
  }
}

template <typename T>
T field_value(const json::const_iterator& it, const char* field, const std::string& source) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) fail("{}: field '{}' must be a string, got {}", source, field, it->dump());
  } else {
    if (!it->is_number_integer()) fail("{}: field '{}' must be an integer, got {}", source, field, it->dump());
  }
  return it->get<T>();
}

template <typename T>
T required(const json& object, const char* field, const std::string& source) {
  auto it = object.find(field);
  if (it == object.end()) fail("{}: missing field '{}'", source, field);
  return field_value<T>(it, field, source);
}

template <typename T>
std::optional<T> optional_field(const json& object, const char* field, const std::string& source) {
  auto it = object.find(field);
  if (it == object.end()) return std::nullopt;
  return field_value<T>(it, field, source);
}

// The internal ids of the flagged items, or none when every item is flagged: an index of every item is then the
// plain one, byte-for-byte what an export without flags writes.
std::vector<int32_t> indexed_item_ids(const ExportData& data) {
  std::vector<int32_t> ids;
  for (size_t item = 0; item < data.item_indexed.size(); ++item)
    if (data.item_indexed[item] != 0) ids.push_back(static_cast<int32_t>(item));
  if (ids.size() == data.item_indexed.size()) ids.clear();
  return ids;
}

// The index of every item, or of the items `ids` alone (their rows gathered, the ids kept through Faiss' id map).
ItemIndex build_item_index(const ExportData& data, const std::vector<int32_t>& ids, const IndexSpec& spec,
                           int32_t shards) {
  const int64_t item_count = static_cast<int64_t>(data.item_external_ids.size());
  if (ids.empty()) return ItemIndex::build(data.item_vectors.data(), item_count, data.dim, spec, shards);
  const size_t dim = static_cast<size_t>(data.dim);
  std::vector<float> rows(ids.size() * dim);
  for (size_t row = 0; row < ids.size(); ++row)
    std::copy_n(data.item_vectors.begin() + static_cast<size_t>(ids[row]) * dim, dim, rows.begin() + row * dim);
  return ItemIndex::build(rows.data(), static_cast<int64_t>(ids.size()), data.dim, spec, ids, shards);
}

// A sharded index's `index_checksum`: the checksum of its shard files' checksums, one per line.
std::string combined_checksum(const std::vector<std::string>& shard_checksums) {
  std::string lines;
  for (const std::string& checksum : shard_checksums) lines += checksum + "\n";
  return checksum_text(sha256_hex(lines));
}

// A manifest field holding `count` strings.
std::vector<std::string> required_strings(const json& object, const char* field, size_t count,
                                          const std::string& source) {
  auto it = object.find(field);
  if (it == object.end()) fail("{}: missing field '{}'", source, field);
  if (!it->is_array() || it->size() != count ||
      !std::all_of(it->begin(), it->end(), [](const json& value) { return value.is_string(); }))
    fail("{}: field '{}' must be an array of {} strings, got {}", source, field, count, it->dump());
  return it->get<std::vector<std::string>>();
}

}  // namespace

std::vector<std::string> index_file_names(int32_t shards) {
  if (shards <= 1) return {kIndexFile};
  std::vector<std::string> names;
  for (int32_t shard = 0; shard < shards; ++shard) names.push_back(fmt::format("items.{}.faiss", shard));
  return names;
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string Manifest::version() const {
  // The state's checksum only when there is one: exports without it keep the versions they always had.
  return sha256_hex(fmt::format("{}\n{}\n{}\n{}\n", index_checksum, store_checksum, encoder_config_checksum,
                                encoder_weights_checksum) +
                    (encoder_state_checksum.empty() ? "" : encoder_state_checksum + "\n"))
      .substr(0, 16);
}

json Manifest::to_json() const {
  json object{{"format_version", format_version}, {"model", model},
              {"dataset", dataset},               {"dimension", dimension},
              {"metric", metric},                 {"index_factory", index_factory},
              {"nprobe", nprobe},                 {"ef_search", ef_search},
              {"item_count", item_count},         {"user_count", user_count},
              {"created_utc", created_utc},       {"index_file", kIndexFile},
              {"store_dir", kStoreDir},           {"index_checksum", index_checksum},
              {"store_checksum", store_checksum}, {"encoder", encoder},
              {"encoder_config_checksum", encoder_config_checksum},
              {"encoder_weights_checksum", encoder_weights_checksum}};
  // Only for a subset: an export of every item keeps the manifest older readers know.
  if (indexed_item_count != item_count) object["indexed_item_count"] = indexed_item_count;
  if (!encoder_state_checksum.empty()) object["encoder_state_checksum"] = encoder_state_checksum;
  // Only for a sharded index, whose files replace the one index_file: an unsharded export's manifest is unchanged.
  if (index_shards > 1) {
    object.erase("index_file");
    object["index_shards"] = index_shards;
    object["index_files"] = index_file_names(index_shards);
    object["index_checksums"] = index_checksums;
  }
  return object;
}

Manifest Manifest::from_json(const json& object, const std::string& source) {
  if (!object.is_object()) fail("{}: expected a JSON object", source);
  Manifest m;
  m.format_version = required<int>(object, "format_version", source);
  if (m.format_version != kExportFormat)
    fail("{}: field 'format_version' is {}, this build reads format {}{}", source, m.format_version, kExportFormat,
         m.format_version < kExportFormat ? "; export the run again with this embrec" : "");
  m.model = required<std::string>(object, "model", source);
  m.dataset = required<std::string>(object, "dataset", source);
  m.dimension = required<int32_t>(object, "dimension", source);
  m.metric = required<std::string>(object, "metric", source);
  try {
    (void)parse_metric(m.metric);
  } catch (const Error& error) {
    fail("{}: field 'metric': {}", source, error.what());
  }
  m.index_factory = required<std::string>(object, "index_factory", source);
  m.nprobe = required<int32_t>(object, "nprobe", source);
  m.ef_search = required<int32_t>(object, "ef_search", source);
  m.item_count = required<int64_t>(object, "item_count", source);
  const std::optional<int64_t> indexed_item_count = optional_field<int64_t>(object, "indexed_item_count", source);
  m.indexed_item_count = indexed_item_count.value_or(m.item_count);
  m.user_count = required<int64_t>(object, "user_count", source);
  m.created_utc = required<std::string>(object, "created_utc", source);
  m.index_checksum = required<std::string>(object, "index_checksum", source);
  m.store_checksum = required<std::string>(object, "store_checksum", source);
  m.encoder = required<std::string>(object, "encoder", source);
  m.encoder_config_checksum = required<std::string>(object, "encoder_config_checksum", source);
  m.encoder_weights_checksum = required<std::string>(object, "encoder_weights_checksum", source);
  m.encoder_state_checksum = optional_field<std::string>(object, "encoder_state_checksum", source).value_or("");
  if (!m.encoder_state_checksum.empty() && m.encoder.empty())
    fail("{}: field 'encoder_state_checksum' needs an encoder (field 'encoder' is empty)", source);
  if (!m.encoder.empty() && m.encoder != kEncoderDir)
    fail("{}: field 'encoder' must be '{}' or empty, got '{}'", source, kEncoderDir, m.encoder);
  const std::optional<int64_t> index_shards = optional_field<int64_t>(object, "index_shards", source);
  if (index_shards) {
    if (*index_shards < 2 || *index_shards > INT32_MAX)
      fail("{}: field 'index_shards' must be at least 2 (an unsharded export has no such field), got {}", source,
           *index_shards);
    m.index_shards = static_cast<int32_t>(*index_shards);
    if (object.contains("index_file"))
      fail("{}: fields 'index_file' and 'index_shards' both present; a sharded export lists its files in "
           "'index_files'",
           source);
    const std::vector<std::string> expected = index_file_names(m.index_shards);
    if (required_strings(object, "index_files", expected.size(), source) != expected)
      fail("{}: field 'index_files' must be {}", source, json(expected).dump());
    m.index_checksums = required_strings(object, "index_checksums", expected.size(), source);
  } else if (required<std::string>(object, "index_file", source) != kIndexFile) {
    fail("{}: field 'index_file' must be '{}'", source, kIndexFile);
  }
  if (required<std::string>(object, "store_dir", source) != kStoreDir)
    fail("{}: field 'store_dir' must be '{}'", source, kStoreDir);
  if (m.dimension <= 0) fail("{}: field 'dimension' must be positive, got {}", source, m.dimension);
  if (indexed_item_count && (*indexed_item_count <= 0 || *indexed_item_count > m.item_count))
    fail("{}: field 'indexed_item_count' must be in [1, item_count = {}], got {}", source, m.item_count,
         *indexed_item_count);
  return m;
}

namespace {

bool process_alive(long pid) { return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM); }

// "20261130T062731.123456Z-<pid>": version ids sort by creation time, and two exports never share one.
std::string new_version_id(const std::string& versions) {
  for (;;) {
    const auto now = std::chrono::system_clock::now();
    const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
    std::tm parts{};
    gmtime_r(&seconds, &parts);
    char text[32];
    std::strftime(text, sizeof(text), "%Y%m%dT%H%M%S", &parts);
    const std::string id = fmt::format("{}.{:06d}Z-{}", text, micros, ::getpid());
    if (!fs::exists(versions + "/" + id) && !fs::exists(versions + "/" + id + ".tmp")) return id;
  }
}

// The pid in a name ending "-<pid>.tmp" or ".<pid>"; -1 when there is none.
long trailing_pid(const std::string& name) {
  static const std::regex pattern(R"(.*[-.]([0-9]+)(\.tmp)?$)");
  std::smatch match;
  if (!std::regex_match(name, match, pattern)) return -1;
  return std::stol(match[1].str());
}

bool complete(const fs::path& folder) { return fs::exists(folder / kManifestFile); }

bool unfinished_version(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
}

// Complete version folders of `versions`, oldest first.
std::vector<std::string> complete_versions(const fs::path& versions) {
  std::vector<std::string> names;
  std::error_code error;
  if (!fs::is_directory(versions, error)) return names;
  for (const auto& entry : fs::directory_iterator(versions, error)) {
    const std::string name = entry.path().filename().string();
    if (!unfinished_version(name) && entry.is_directory() && complete(entry.path())) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Points `link` at `target` (relative to the link's folder) by renaming a fresh link over it: atomic.
void point_link(const std::string& link, const std::string& target) {
  const std::string fresh = link + ".link." + std::to_string(::getpid());
  std::error_code ignored;
  fs::remove(fresh, ignored);
  std::error_code error;
  fs::create_symlink(target, fresh, error);
  if (error) fail("{}: cannot create the link to {}: {}", fresh, target, error.message());
  fs::rename(fresh, link, error);
  if (error) {
    fs::remove(fresh, ignored);
    fail("{}: cannot point the export at {}: {}", link, target, error.message());
  }
}

}  // namespace

std::vector<std::string> recover_export(const std::string& dir_in) {
  const std::string dir = normalised_dir(dir_in);
  const fs::path path(dir);
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const std::string base = path.filename().string();
  const fs::path versions = dir + kVersionsSuffix;
  std::vector<std::string> actions;
  std::error_code error;
  if (!fs::is_directory(parent, error)) return actions;

  // Our own leftovers beside the export: links being swapped, and the two folders of format 1's swap.
  std::vector<fs::path> old_folders;
  for (const auto& entry : fs::directory_iterator(parent, error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(base + ".", 0) != 0) continue;
    const std::string rest = name.substr(base.size() + 1);
    const long pid = trailing_pid(name);
    static const std::regex leftover(R"((link|tmp|old)\.[0-9]+)");
    const bool ours = std::regex_match(rest, leftover);
    if (!ours || (pid != ::getpid() && process_alive(pid))) continue;
    if (rest.rfind("old.", 0) == 0 && entry.is_directory() && complete(entry.path())) {
      old_folders.push_back(entry.path());
      continue;
    }
    fs::remove_all(entry.path(), error);
    actions.push_back(fmt::format("removed {}, left by an interrupted export", entry.path().string()));
  }
  // Unfinished versions of processes that are gone.
  if (fs::is_directory(versions, error))
    for (const auto& entry : fs::directory_iterator(versions, error)) {
      const std::string name = entry.path().filename().string();
      if (!unfinished_version(name)) continue;
      const long pid = trailing_pid(name);
      if (pid != ::getpid() && process_alive(pid)) continue;
      fs::remove_all(entry.path(), error);
      actions.push_back(fmt::format("removed {}, an unfinished export", entry.path().string()));
    }

  const bool dangling = fs::is_symlink(path, error) && !fs::exists(path, error);
  if (dangling || !fs::exists(fs::symlink_status(path, error))) {
    const std::vector<std::string> complete_ones = complete_versions(versions);
    if (!complete_ones.empty()) {
      point_link(dir, versions.filename().string() + "/" + complete_ones.back());
      actions.push_back(fmt::format("pointed {} at its newest complete version {}", dir, complete_ones.back()));
    } else if (!old_folders.empty()) {
      if (dangling) fs::remove(path, error);
      fs::rename(old_folders.back(), path, error);
      if (error) fail("{}: cannot move {} back: {}", dir, old_folders.back().string(), error.message());
      actions.push_back(fmt::format("moved {} back to {}", old_folders.back().string(), dir));
      old_folders.pop_back();
    }
  }
  for (const fs::path& old : old_folders) {
    fs::remove_all(old, error);
    actions.push_back(fmt::format("removed {}, left by an interrupted export", old.string()));
  }
  return actions;
}

Manifest write_export(const ExportData& data, const std::string& out_dir, const ExportOptions& options) {
  validate(data);
  if (data.encoder_config.empty() != data.encoder_weights.empty())
    fail("export: an encoder needs both its config and its weights");
  if (!data.encoder_state.empty() && data.encoder_config.empty())
    fail("export: an encoder state without an encoder (config and weights)");
  const int64_t item_count = static_cast<int64_t>(data.item_external_ids.size());
  const std::vector<int32_t> indexed_ids = indexed_item_ids(data);
  const int64_t indexed_count = indexed_ids.empty() ? item_count : static_cast<int64_t>(indexed_ids.size());
  if (options.shards < 1 || options.shards > indexed_count)
    fail("export: shards must be in [1, {}] (at most one per indexed item), got {}", indexed_count, options.shards);
  const std::string final_dir = normalised_dir(out_dir);
  const fs::path parent = fs::path(final_dir).parent_path();
  if (!parent.empty()) make_directories(parent.string());
  for (const std::string& action : recover_export(final_dir)) spdlog::info("export: {}", action);
  const std::string versions = final_dir + kVersionsSuffix;
  make_directories(versions);
  const std::string id = new_version_id(versions);
  const std::string version_dir = versions + "/" + id;
  const std::string temporary = version_dir + ".tmp";
  std::error_code ignored;
  fs::remove_all(temporary, ignored);
  make_directories(temporary);

  Manifest manifest;
  try {
    const int64_t user_count = static_cast<int64_t>(data.user_external_ids.size());
    IndexSpec spec = options.index;
    // IVF's lists sized for the items each shard trains on; ivfpq's sub-quantizers for the dimension.
    spec.factory = resolve_factory(spec.factory, smallest_shard_size(indexed_count, options.shards), data.dim);
    const ItemIndex index = build_item_index(data, indexed_ids, spec, options.shards);
    const std::vector<std::string> index_files = index_file_names(options.shards);
    for (int32_t shard = 0; shard < options.shards; ++shard) {
      const std::string index_bytes = index.serialize_shard(shard);  // one shard's bytes in memory at a time
      write_file_atomic(temporary + "/" + index_files[static_cast<size_t>(shard)], index_bytes);
      manifest.index_checksums.push_back(checksum_text(sha256_hex(index_bytes)));
    }
    manifest.index_shards = options.shards;
    if (options.shards == 1) {
      manifest.index_checksum = manifest.index_checksums[0];
      manifest.index_checksums.clear();
    } else {
      manifest.index_checksum = combined_checksum(manifest.index_checksums);
    }

    const std::string store_dir = temporary + "/" + kStoreDir;
    {
      UserStoreWriter writer(store_dir, data.dim, options.store_batch_users);
      for (const std::string& item : data.item_external_ids) writer.add_item(item);
      for (int64_t user = 0; user < user_count; ++user) {
        const std::vector<int32_t>* seen = data.user_seen_items.empty() ? nullptr : &data.user_seen_items[user];
        writer.add_user(data.user_external_ids[user], data.user_vectors.data() + user * data.dim,
                        seen ? seen->data() : nullptr, seen ? seen->size() : 0);
      }
      writer.finish();
    }

    if (!data.encoder_config.empty()) {
      make_directories(temporary + "/" + kEncoderDir);
      const std::string encoder_dir = temporary + "/" + kEncoderDir + "/";
      write_file_atomic(encoder_dir + kEncoderConfigFile, data.encoder_config);
      write_file_atomic(encoder_dir + kEncoderWeightsFile, data.encoder_weights);
      manifest.encoder = kEncoderDir;
      manifest.encoder_config_checksum = checksum_text(sha256_hex(data.encoder_config));
      manifest.encoder_weights_checksum = checksum_text(sha256_hex(data.encoder_weights));
      if (!data.encoder_state.empty()) {
        write_file_atomic(encoder_dir + kEncoderStateFile, data.encoder_state);
        manifest.encoder_state_checksum = checksum_text(sha256_hex(data.encoder_state));
      }
    }

    manifest.model = data.model_name;
    manifest.dataset = data.dataset_name;
    manifest.dimension = data.dim;
    manifest.metric = metric_name(spec.metric);
    manifest.index_factory = spec.factory;
    manifest.nprobe = index.nprobe();
    manifest.ef_search = index.ef_search();
    manifest.item_count = item_count;
    manifest.indexed_item_count = indexed_count;
    manifest.user_count = user_count;
    manifest.created_utc = utc_now_iso8601();
    manifest.store_checksum = checksum_text(UserStore::open_read_only(store_dir).content_checksum());
    // Written last: a folder with a manifest is complete, one without never was.
    write_file_atomic(temporary + "/" + kManifestFile, manifest.to_json().dump(2) + "\n");
    fsync_directory(temporary);
    std::error_code error;
    fs::rename(temporary, version_dir, error);
    if (error) fail("{}: cannot rename the finished export to {}: {}", temporary, version_dir, error.message());
    fsync_directory(versions);
  } catch (...) {
    fs::remove_all(temporary, ignored);
    throw;
  }

  // The version the export pointed at before: kept for a server that has not reloaded yet.
  std::string previous;
  std::error_code error;
  if (fs::is_symlink(final_dir, error)) {
    previous = fs::read_symlink(final_dir, error).filename().string();
  } else if (fs::exists(final_dir, error)) {
    // A plain folder (format 1, or a copy): moved into the versions folder, then replaced by the link. Until the
    // link is in (microseconds), the export is missing; recover_export points it at the newest version.
    previous = "0-previous-" + id;  // sorts before every version id: it is older than them
    fs::rename(final_dir, versions + "/" + previous, error);
    if (error) fail("{}: cannot move the previous export into {}: {}", final_dir, versions, error.message());
  }
  point_link(final_dir, fs::path(versions).filename().string() + "/" + id);
  if (!parent.empty()) fsync_directory(parent.string());

  for (const auto& entry : fs::directory_iterator(versions, error)) {
    const std::string name = entry.path().filename().string();
    if (name == id || name == previous || unfinished_version(name)) continue;
    fs::remove_all(entry.path(), ignored);
  }
  return manifest;
}

std::optional<int32_t> LoadedExport::item_id(const std::string& external_id) const {
  auto it = item_ids.find(external_id);
  if (it == item_ids.end()) return std::nullopt;
  return it->second;
}

std::string LoadedExport::encoder_dir() const { return manifest.encoder.empty() ? "" : dir + "/" + kEncoderDir; }

LoadedExport load_export(const std::string& dir_in) {
  const std::string named = normalised_dir(dir_in);
  static const std::regex unfinished(R"(.*(\.(tmp|old|link)\.[0-9]+|\.tmp)$)");
  if (std::regex_match(fs::path(named).filename().string(), unfinished))
    fail("{}: the temporary folder of an interrupted or running export, not an export; load the folder it was "
         "meant to replace",
         named);
  std::error_code error;
  if (fs::is_symlink(named, error) && !fs::exists(named, error))
    fail("{}: export folder not found (a link to {}, which is missing)", named, fs::read_symlink(named).string());
  if (!fs::is_directory(named)) fail("{}: export folder not found", named);
  // The link resolved once: every file below comes from the same version, even if an export swaps it meanwhile.
  const std::string dir = fs::canonical(named).string();
  const std::string manifest_path = dir + "/" + kManifestFile;
  if (!fs::exists(manifest_path)) fail("{}: missing (not an export folder, or an unfinished one)", manifest_path);
  json manifest_json;
  try {
    manifest_json = json::parse(read_file(manifest_path));
  } catch (const json::exception& error) {
    fail("{}: not valid JSON: {}", manifest_path, error.what());
  }

  LoadedExport loaded;
  loaded.dir = dir;
  loaded.manifest = Manifest::from_json(manifest_json, manifest_path);
  const Manifest& m = loaded.manifest;

  // One file, or one per shard, each checked before Faiss reads it; a shard's bytes are dropped once read.
  const std::vector<std::string> index_files = index_file_names(m.index_shards);
  const std::string index_path = m.index_shards == 1
                                     ? dir + "/" + kIndexFile
                                     : fmt::format("{}/items.{{0..{}}}.faiss", dir, m.index_shards - 1);
  std::vector<ItemIndex> shards;
  std::vector<std::string> shard_paths;
  for (size_t shard = 0; shard < index_files.size(); ++shard) {
    const std::string path = dir + "/" + index_files[shard];
    if (m.index_shards > 1 && !fs::exists(path))
      fail("{}: missing, but {} field 'index_shards' says {} shards", path, kManifestFile, m.index_shards);
    const std::string bytes = read_file(path);
    const std::string checksum = checksum_text(sha256_hex(bytes));
    if (m.index_shards == 1 && checksum != m.index_checksum)
      fail("{}: checksum {} does not match {} field 'index_checksum' ({}); the file is damaged or was replaced", path,
           checksum, kManifestFile, m.index_checksum);
    if (m.index_shards > 1 && checksum != m.index_checksums[shard])
      fail("{}: checksum {} does not match {} field 'index_checksums' [{}] ({}); the file is damaged or was replaced",
           path, checksum, kManifestFile, shard, m.index_checksums[shard]);
    shards.push_back(ItemIndex::deserialize(bytes, parse_metric(m.metric), path));
    shard_paths.push_back(path);
  }
  if (m.index_shards > 1 && combined_checksum(m.index_checksums) != m.index_checksum)
    fail("{}: field 'index_checksum' ({}) is not the checksum of field 'index_checksums' ({}); the manifest was "
         "edited",
         manifest_path, m.index_checksum, combined_checksum(m.index_checksums));
  loaded.index = ItemIndex::join_shards(std::move(shards), shard_paths);
  if (loaded.index.dim() != m.dimension)
    fail("{}: dimension {} does not match {} field 'dimension' ({})", index_path, loaded.index.dim(), kManifestFile,
         m.dimension);
  if (loaded.index.size() != m.indexed_item_count)
    fail("{}: holds {} items but {} field '{}' says {}", index_path, loaded.index.size(), kManifestFile,
         m.indexed_item_count != m.item_count ? "indexed_item_count" : "item_count", m.indexed_item_count);
  // Every result is turned into an external id through the item id map: an id beyond it would index past its end.
  if (loaded.index.item_id_end() > m.item_count)
    fail("{}: holds item id {} but {} field 'item_count' says {}", index_path, loaded.index.item_id_end() - 1,
         kManifestFile, m.item_count);
  if (m.nprobe > 0 || m.ef_search > 0) loaded.index.set_search_parameters(m.nprobe, m.ef_search);

  const std::string store_path = dir + "/" + kStoreDir;
  loaded.store = UserStore::open_read_only(store_path);
  if (loaded.store.dim() != m.dimension)
    fail("{}: user vectors have {} floats but {} field 'dimension' says {}", store_path, loaded.store.dim(),
         kManifestFile, m.dimension);
  if (loaded.store.item_count() != m.item_count)
    fail("{}: holds {} items but {} field 'item_count' says {}", store_path, loaded.store.item_count(), kManifestFile,
         m.item_count);
  if (loaded.store.user_count() != m.user_count)
    fail("{}: holds {} users but {} field 'user_count' says {}", store_path, loaded.store.user_count(), kManifestFile,
         m.user_count);
  const std::string store_checksum = checksum_text(loaded.store.content_checksum());
  if (store_checksum != m.store_checksum)
    fail("{}: checksum {} does not match {} field 'store_checksum' ({}); the store is damaged or was replaced",
         store_path, store_checksum, kManifestFile, m.store_checksum);

  if (!m.encoder.empty()) {
    for (const auto& [file, field, expected] :
         {std::tuple<const char*, const char*, const std::string*>{kEncoderConfigFile, "encoder_config_checksum",
                                                                  &m.encoder_config_checksum},
          {kEncoderWeightsFile, "encoder_weights_checksum", &m.encoder_weights_checksum},
          {kEncoderStateFile, "encoder_state_checksum", &m.encoder_state_checksum}}) {
      if (expected == &m.encoder_state_checksum && expected->empty()) continue;  // the one optional file
      const std::string path = fmt::format("{}/{}/{}", dir, kEncoderDir, file);
      if (!fs::exists(path)) fail("{}: missing, but {} names an encoder", path, kManifestFile);
      const std::string actual = checksum_text(sha256_file_hex(path));
      if (actual != *expected)
        fail("{}: checksum {} does not match {} field '{}' ({}); the file is damaged or was replaced", path, actual,
             kManifestFile, field, *expected);
    }
  }

  loaded.item_external_ids = loaded.store.item_external_ids();
  loaded.item_ids.reserve(loaded.item_external_ids.size());
  for (size_t item = 0; item < loaded.item_external_ids.size(); ++item)
    loaded.item_ids.emplace(loaded.item_external_ids[item], static_cast<int32_t>(item));
  return loaded;
}

}  // namespace embrec::index
