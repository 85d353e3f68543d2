// Binary cache of a prepared Dataset. The header holds a magic, the format version, a checksum of the source file
// and of the preparation options, and a checksum of the payload; anything stale or corrupt is rebuilt, never trusted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "embrec/data/dataset.h"

namespace embrec::data {

inline constexpr uint32_t kCacheFormatVersion = 1;

// Written atomically (temporary file + rename).
void write_cache(const std::string& path, const Dataset& dataset, uint64_t source_checksum, uint64_t options_checksum);

// nullopt when the file is missing, of another version, made from another source or options, truncated or
// corrupt; `why` (when given) says which.
std::optional<Dataset> read_cache(const std::string& path, uint64_t source_checksum, uint64_t options_checksum,
                                  std::string* why = nullptr);

}  // namespace embrec::data
