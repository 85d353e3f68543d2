// File helpers: whole-file reads and atomic writes (temporary file + rename), so a crash never leaves half a file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace embrec {

// Reads a whole file; throws Error naming the path when it cannot be opened.
std::string read_file(const std::string& path);

// Writes `contents` to `path` through `path.tmp.<pid>` and rename(2): readers see the old file or the new one.
void write_file_atomic(const std::string& path, std::string_view contents);

// Appends one line (a '\n' is added) to `path`, creating it when missing.
void append_line(const std::string& path, std::string_view line);

bool file_exists(const std::string& path);
void make_directories(const std::string& path);

}  // namespace embrec
