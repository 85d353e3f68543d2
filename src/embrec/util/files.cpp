// File helpers: whole-file reads and atomic writes.
#include "embrec/util/files.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "embrec/util/error.h"

namespace embrec {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open for reading: {}", path, std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail("{}: read error", path);
  return buffer.str();
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::FILE* file = std::fopen(temporary.c_str(), "wb");
    if (!file) fail("{}: cannot open for writing: {}", temporary, std::strerror(errno));
    const size_t written = std::fwrite(contents.data(), 1, contents.size(), file);
    const bool flushed = std::fflush(file) == 0 && ::fsync(::fileno(file)) == 0;
    std::fclose(file);
    if (written != contents.size() || !flushed) {
      std::remove(temporary.c_str());
      fail("{}: write failed: {}", temporary, std::strerror(errno));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    fail("{}: rename from {} failed: {}", path, temporary, std::strerror(errno));
  }
}

void append_line(const std::string& path, std::string_view line) {
  std::ofstream out(path, std::ios::app);
  if (!out) fail("{}: cannot open for appending: {}", path, std::strerror(errno));
  out << line << '\n';
  if (!out) fail("{}: write failed", path);
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

void make_directories(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) fail("{}: cannot create directory: {}", path, error.message());
}

}  // namespace embrec
