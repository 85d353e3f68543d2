// The binary dataset cache: header (magic, version, source/options/payload checksums, payload size) + payload (ids,
// interactions, item and user features).
#include "embrec/data/cache.h"

#include <cstring>

#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::data {

namespace {

constexpr char kMagic[8] = {'E', 'M', 'B', 'R', 'E', 'C', 'D', 'S'};
constexpr size_t kDigest = 64;  // hex digits of a SHA-256
constexpr size_t kHeaderSize = 8 + 4 + 3 * kDigest + 8;

class Writer {
 public:
  template <typename T>
  void scalar(T value) {
    bytes.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  template <typename T>
  void array(const std::vector<T>& values) {
    scalar<uint64_t>(values.size());
    bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  }
  void text(const std::string& value) {
    scalar<uint64_t>(value.size());
    bytes.append(value);
  }
  std::string bytes;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  T scalar() {
    T value;
    take(&value, sizeof value);
    return value;
  }
  template <typename T>
  std::vector<T> array() {
    const uint64_t count = scalar<uint64_t>();
    if (count > (bytes_.size() - position_) / sizeof(T)) throw std::out_of_range("array");
    std::vector<T> values(count);
    take(values.data(), count * sizeof(T));
    return values;
  }
  std::string fixed(size_t size) {
    if (size > bytes_.size() - position_) throw std::out_of_range("fixed");
    std::string value(bytes_.substr(position_, size));
    position_ += size;
    return value;
  }
  std::string text() {
    const uint64_t size = scalar<uint64_t>();
    if (size > bytes_.size() - position_) throw std::out_of_range("text");
    std::string value(bytes_.substr(position_, size));
    position_ += size;
    return value;
  }
  bool done() const { return position_ == bytes_.size(); }

 private:
  void take(void* out, size_t size) {
    if (size == 0) return;  // an empty array: out may be null, which memcpy must not get
    if (size > bytes_.size() - position_) throw std::out_of_range("scalar");
    std::memcpy(out, bytes_.data() + position_, size);
    position_ += size;
  }
  std::string_view bytes_;
  size_t position_ = 0;
};

void write_sequences(Writer& writer, const Sequences& sequences) {
  writer.array(sequences.offsets);
  writer.array(sequences.items);
  writer.array(sequences.ratings);
  writer.array(sequences.timestamps);
}

Sequences read_sequences(Reader& reader) {
  Sequences sequences;
  sequences.offsets = reader.array<int64_t>();
  sequences.items = reader.array<int32_t>();
  sequences.ratings = reader.array<float>();
  sequences.timestamps = reader.array<int64_t>();
  return sequences;
}

void write_strings(Writer& writer, const std::vector<std::string>& values) {
  writer.scalar<uint64_t>(values.size());
  for (const std::string& value : values) writer.text(value);
}

std::vector<std::string> read_strings(Reader& reader, size_t payload_size) {
  const uint64_t count = reader.scalar<uint64_t>();
  if (count > payload_size) throw std::out_of_range("string count");
  std::vector<std::string> values;
  values.reserve(count);
  for (uint64_t i = 0; i < count; ++i) values.push_back(reader.text());
  return values;
}

void write_features(Writer& writer, const Features& features) {
  write_strings(writer, features.fields);
  writer.array(features.multi_valued);
  writer.array(features.offsets);
  write_strings(writer, features.values);
}

Features read_features(Reader& reader, size_t payload_size) {
  Features features;
  features.fields = read_strings(reader, payload_size);
  features.multi_valued = reader.array<uint8_t>();
  features.offsets = reader.array<int64_t>();
  features.values = read_strings(reader, payload_size);
  return features;
}

// No fields and no entities, or one value list per (entity, field) cell for each of `entity_count` entities, with
// at most one value in a single-valued field.
bool consistent(const Features& f, int32_t entity_count) {
  if (f.fields.empty())
    return f.multi_valued.empty() && f.offsets.size() == 1 && f.offsets.front() == 0 && f.values.empty();
  const size_t cells = static_cast<size_t>(entity_count) * f.fields.size();
  if (f.multi_valued.size() != f.fields.size() || f.offsets.size() != cells + 1 || f.offsets.front() != 0 ||
      f.offsets.back() != static_cast<int64_t>(f.values.size()))
    return false;
  for (size_t c = 0; c < cells; ++c) {
    const int64_t count = f.offsets[c + 1] - f.offsets[c];
    if (count < 0 || (count > 1 && !f.multi_valued[c % f.fields.size()])) return false;
  }
  return true;
}

bool consistent(const Sequences& s, int32_t item_count) {
  if (s.offsets.empty() || s.offsets.front() != 0 || s.offsets.back() != static_cast<int64_t>(s.items.size()))
    return false;
  for (size_t u = 1; u < s.offsets.size(); ++u)
    if (s.offsets[u] < s.offsets[u - 1]) return false;
  if (!s.ratings.empty() && s.ratings.size() != s.items.size()) return false;
  if (!s.timestamps.empty() && s.timestamps.size() != s.items.size()) return false;
  for (int32_t item : s.items)
    if (item < 0 || item >= item_count) return false;
  return true;
}

}  // namespace

void write_cache(const std::string& path, const Dataset& dataset, const std::string& source_checksum,
                 const std::string& options_checksum) {
  if (source_checksum.size() != kDigest || options_checksum.size() != kDigest)
    fail("{}: cache checksums must be SHA-256 hex digests", path);
  Writer payload;
  payload.text(dataset.name);
  for (const IdMap* map : {&dataset.users, &dataset.items}) write_strings(payload, map->externals());
  write_sequences(payload, dataset.interactions);
  write_features(payload, dataset.item_features);
  write_features(payload, dataset.user_features);
  Writer header;
  header.bytes.append(kMagic, sizeof kMagic);
  header.scalar<uint32_t>(kCacheFormatVersion);
  header.bytes.append(source_checksum);
  header.bytes.append(options_checksum);
  header.scalar<uint64_t>(payload.bytes.size());
  header.bytes.append(sha256_hex(payload.bytes));
  write_file_atomic(path, header.bytes + payload.bytes);
}

std::optional<Dataset> read_cache(const std::string& path, const std::string& source_checksum,
                                  const std::string& options_checksum, std::string* why) {
  auto reject = [&](const std::string& reason) -> std::optional<Dataset> {
    if (why) *why = reason;
    return std::nullopt;
  };
  if (!file_exists(path)) return reject("no cache file");
  std::string bytes;
  try {
    bytes = read_file(path);
  } catch (const Error& error) {
    return reject(error.what());
  }
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    return reject("not an embrec dataset cache");
  if (bytes.size() < kHeaderSize) return reject("truncated (shorter than the header)");
  Reader header(std::string_view(bytes).substr(sizeof kMagic, kHeaderSize - sizeof kMagic));
  const uint32_t version = header.scalar<uint32_t>();
  if (version != kCacheFormatVersion)
    return reject(fmt::format("cache format version {}, this embrec reads {}", version, kCacheFormatVersion));
  if (header.fixed(kDigest) != source_checksum) return reject("the source file changed");
  if (header.fixed(kDigest) != options_checksum) return reject("the preparation options changed");
  const uint64_t payload_size = header.scalar<uint64_t>();
  const std::string payload_checksum = header.fixed(kDigest);
  const std::string_view payload = std::string_view(bytes).substr(kHeaderSize);
  if (payload.size() != payload_size) return reject("truncated (payload size does not match the header)");
  if (sha256_hex(payload) != payload_checksum) return reject("corrupt (payload checksum does not match)");
  try {
    Reader reader(payload);
    Dataset dataset;
    dataset.name = reader.text();
    for (IdMap* map : {&dataset.users, &dataset.items})
      *map = IdMap::from_externals(read_strings(reader, payload.size()));
    dataset.interactions = read_sequences(reader);
    dataset.item_features = read_features(reader, payload.size());
    dataset.user_features = read_features(reader, payload.size());
    if (!reader.done() || dataset.interactions.user_count() != dataset.users.size() ||
        !consistent(dataset.interactions, dataset.items.size()) ||
        !consistent(dataset.item_features, dataset.items.size()) ||
        !consistent(dataset.user_features, dataset.users.size()))
      return reject("corrupt payload: inconsistent dataset");
    return dataset;
  } catch (const std::exception& error) {
    return reject(std::string("corrupt payload: ") + error.what());
  }
}

}  // namespace embrec::data
