// The dataset cache: a damaged file is refused (nullopt), never trusted or crashed on. The first input byte picks
// what is fuzzed: the whole file as is, or a payload behind a valid header (its SHA-256 filled in), so the payload
// parser is reached past the checksum.
#include <cstring>

#include "embrec/data/cache.h"
#include "embrec/util/checksum.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace embrec;
  if (size == 0) return 0;
  static const std::string source = sha256_hex("source"), options = sha256_hex("options");
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string bytes;
  if (data[0] & 1) {
    bytes = std::string(rest);
  } else {
    bytes.append("EMBRECDS", 8);
    const uint32_t version = data::kCacheFormatVersion;
    bytes.append(reinterpret_cast<const char*>(&version), sizeof version);
    bytes += source;
    bytes += options;
    const uint64_t payload_size = rest.size();
    bytes.append(reinterpret_cast<const char*>(&payload_size), sizeof payload_size);
    bytes += sha256_hex(rest);
    bytes += rest;
  }
  const std::string& path = fuzz::write_input("cache", bytes);
  fuzz::expect_only_errors([&] { (void)data::read_cache(path, source, options); });
  return 0;
}
