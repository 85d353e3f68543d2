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

AtomicFileWriter::AtomicFileWriter(std::string path)
    : path_(std::move(path)), temporary_(path_ + ".tmp." + std::to_string(::getpid())) {
  file_ = std::fopen(temporary_.c_str(), "wb");
  if (!file_) fail("{}: cannot open for writing: {}", temporary_, std::strerror(errno));
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!file_) return;
  std::fclose(file_);
  std::remove(temporary_.c_str());
}

void AtomicFileWriter::write(std::string_view bytes) {
  if (!file_) fail("{}: write after commit", path_);
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size())
    fail("{}: write failed: {}", temporary_, std::strerror(errno));
}

void AtomicFileWriter::commit() {
  if (!file_) fail("{}: committed twice", path_);
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const int flush_error = errno;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) {
    std::remove(temporary_.c_str());
    fail("{}: write failed: {}", temporary_, std::strerror(flushed ? errno : flush_error));
  }
  if (std::rename(temporary_.c_str(), path_.c_str()) != 0) {
    const int rename_error = errno;
    std::remove(temporary_.c_str());
    fail("{}: rename from {} failed: {}", path_, temporary_, std::strerror(rename_error));
  }
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFileWriter writer(path);
  writer.write(contents);
  writer.commit();
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
