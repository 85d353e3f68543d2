// Export folders: validation, index + store + manifest written to a temporary folder and renamed into place,
// and loading with every manifest field checked.
#include "embrec/index/export.h"

#include <unistd.h>

#include <cmath>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <unordered_map>

#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::index {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string checksum_text(uint64_t hash) { return fmt::format("fnv1a64:{:016x}", hash); }

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
T required(const json& object, const char* field, const std::string& source) {
  auto it = object.find(field);
  if (it == object.end()) fail("{}: missing field '{}'", source, field);
  if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) fail("{}: field '{}' must be a string, got {}", source, field, it->dump());
  } else {
    if (!it->is_number_integer()) fail("{}: field '{}' must be an integer, got {}", source, field, it->dump());
  }
  return it->get<T>();
}

}  // namespace

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

std::string Manifest::version() const {
  return fmt::format("{:016x}", fnv1a64(store_checksum, fnv1a64(index_checksum)));
}

json Manifest::to_json() const {
  return json{{"format_version", format_version}, {"model", model},
              {"dataset", dataset},               {"dimension", dimension},
              {"metric", metric},                 {"index_factory", index_factory},
              {"nprobe", nprobe},                 {"ef_search", ef_search},
              {"item_count", item_count},         {"user_count", user_count},
              {"created_utc", created_utc},       {"index_file", kIndexFile},
              {"store_dir", kStoreDir},           {"index_checksum", index_checksum},
              {"store_checksum", store_checksum}, {"encoder", encoder}};
}

Manifest Manifest::from_json(const json& object, const std::string& source) {
  if (!object.is_object()) fail("{}: expected a JSON object", source);
  Manifest m;
  m.format_version = required<int>(object, "format_version", source);
  if (m.format_version != kExportFormat)
    fail("{}: field 'format_version' is {}, this build reads format {}", source, m.format_version, kExportFormat);
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
  m.user_count = required<int64_t>(object, "user_count", source);
  m.created_utc = required<std::string>(object, "created_utc", source);
  m.index_checksum = required<std::string>(object, "index_checksum", source);
  m.store_checksum = required<std::string>(object, "store_checksum", source);
  m.encoder = required<std::string>(object, "encoder", source);
  if (required<std::string>(object, "index_file", source) != kIndexFile)
    fail("{}: field 'index_file' must be '{}'", source, kIndexFile);
  if (required<std::string>(object, "store_dir", source) != kStoreDir)
    fail("{}: field 'store_dir' must be '{}'", source, kStoreDir);
  if (m.dimension <= 0) fail("{}: field 'dimension' must be positive, got {}", source, m.dimension);
  return m;
}

Manifest write_export(const ExportData& data, const std::string& out_dir, const ExportOptions& options) {
  validate(data);
  const std::string final_dir = normalised_dir(out_dir);
  const std::string pid = std::to_string(::getpid());
  const std::string temporary = final_dir + ".tmp." + pid;
  const fs::path parent = fs::path(final_dir).parent_path();
  if (!parent.empty()) make_directories(parent.string());
  std::error_code ignored;
  fs::remove_all(temporary, ignored);  // our own leftover from an earlier failed call with this pid
  make_directories(temporary);

  Manifest manifest;
  try {
    const int64_t item_count = static_cast<int64_t>(data.item_external_ids.size());
    const int64_t user_count = static_cast<int64_t>(data.user_external_ids.size());
    IndexSpec spec = options.index;
    spec.factory = resolve_factory(spec.factory, item_count);
    const ItemIndex index = ItemIndex::build(data.item_vectors.data(), item_count, data.dim, spec);
    const std::string index_bytes = index.serialize();
    write_file_atomic(temporary + "/" + kIndexFile, index_bytes);

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
    const uint64_t store_checksum = UserStore::open_read_only(store_dir).content_checksum();

    manifest.model = data.model_name;
    manifest.dataset = data.dataset_name;
    manifest.dimension = data.dim;
    manifest.metric = metric_name(spec.metric);
    manifest.index_factory = spec.factory;
    manifest.nprobe = index.nprobe();
    manifest.ef_search = index.ef_search();
    manifest.item_count = item_count;
    manifest.user_count = user_count;
    manifest.created_utc = utc_now_iso8601();
    manifest.index_checksum = checksum_text(fnv1a64(index_bytes));
    manifest.store_checksum = checksum_text(store_checksum);
    manifest.encoder = data.encoder;
    // Written last: a temporary folder with a manifest is complete, one without never was.
    write_file_atomic(temporary + "/" + kManifestFile, manifest.to_json().dump(2) + "\n");
    fsync_directory(temporary);
  } catch (...) {
    fs::remove_all(temporary, ignored);
    throw;
  }

  const std::string old = final_dir + ".old." + pid;
  const bool replacing = fs::exists(final_dir);
  if (replacing) {
    fs::remove_all(old, ignored);
    std::error_code error;
    fs::rename(final_dir, old, error);
    if (error) fail("{}: cannot move the previous export aside to {}: {}", final_dir, old, error.message());
  }
  std::error_code error;
  fs::rename(temporary, final_dir, error);
  if (error) {
    if (replacing) fs::rename(old, final_dir, ignored);
    fail("{}: cannot move the new export in from {}: {}", final_dir, temporary, error.message());
  }
  if (!parent.empty()) fsync_directory(parent.string());
  if (replacing) fs::remove_all(old, ignored);
  return manifest;
}

std::optional<int32_t> LoadedExport::item_id(const std::string& external_id) const {
  auto it = item_ids.find(external_id);
  if (it == item_ids.end()) return std::nullopt;
  return it->second;
}

LoadedExport load_export(const std::string& dir_in) {
  const std::string dir = normalised_dir(dir_in);
  static const std::regex unfinished(R"(.*\.(tmp|old)\.[0-9]+$)");
  if (std::regex_match(fs::path(dir).filename().string(), unfinished))
    fail("{}: the temporary folder of an interrupted or running export, not an export; load the folder it was "
         "meant to replace",
         dir);
  if (!fs::is_directory(dir)) fail("{}: export folder not found", dir);
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

  const std::string index_path = dir + "/" + kIndexFile;
  const std::string index_bytes = read_file(index_path);
  const std::string index_checksum = checksum_text(fnv1a64(index_bytes));
  if (index_checksum != m.index_checksum)
    fail("{}: checksum {} does not match {} field 'index_checksum' ({}); the file is damaged or was replaced",
         index_path, index_checksum, kManifestFile, m.index_checksum);
  loaded.index = ItemIndex::deserialize(index_bytes, parse_metric(m.metric), index_path);
  if (loaded.index.dim() != m.dimension)
    fail("{}: dimension {} does not match {} field 'dimension' ({})", index_path, loaded.index.dim(), kManifestFile,
         m.dimension);
  if (loaded.index.size() != m.item_count)
    fail("{}: holds {} items but {} field 'item_count' says {}", index_path, loaded.index.size(), kManifestFile,
         m.item_count);
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

  loaded.item_external_ids = loaded.store.item_external_ids();
  loaded.item_ids.reserve(loaded.item_external_ids.size());
  for (size_t item = 0; item < loaded.item_external_ids.size(); ++item)
    loaded.item_ids.emplace(loaded.item_external_ids[item], static_cast<int32_t>(item));
  return loaded;
}

}  // namespace embrec::index
