// Binary cache of a prepared Dataset, its features included. The header holds a magic, the format version, the SHA-256 (util/checksum.h) of
// the source file and of the preparation options, and the payload's size and SHA-256; anything stale or corrupt is
// rebuilt, never trusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "embrec/data/dataset.h"

namespace embrec::data {

inline constexpr uint32_t kCacheFormatVersion = 3;  // 3: item and user features; 2: SHA-256 checksums; 1: FNV

// Written atomically (temporary file + rename).
// The checksums are SHA-256 hex digests (64 characters).
void write_cache(const std::string& path, const Dataset& dataset, const std::string& source_checksum,
                 const std::string& options_checksum);

// nullopt when the file is missing, of another version, made from another source or options, truncated or
// corrupt; `why` (when given) says which.
std::optional<Dataset> read_cache(const std::string& path, const std::string& source_checksum,
                                  const std::string& options_checksum, std::string* why = nullptr);

}  // namespace embrec::data
