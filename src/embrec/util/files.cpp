// File helpers: whole-file reads and atomic writes.
#include "embrec/util/files.h"

#include <fcntl.h>
#include <sys/file.h>
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

FolderLock::FolderLock(const std::string& folder, const std::string& what) {
  const std::string path = folder + "/.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("{}: cannot open for {}: {}", path, what, std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[32] = {0};
    const ssize_t n = ::pread(fd_, holder, sizeof(holder) - 1, 0);
    std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : std::string("?");
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK)
      fail("{}: another process (pid {}) is {} this folder now; wait for it to end, or use another folder", folder,
           pid, what);
    fail("{}: cannot lock for {}: {}", path, what, std::strerror(error));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The pid is only for the message of a process that finds the folder locked: the lock itself holds.
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

void make_directories(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) fail("{}: cannot create directory: {}", path, error.message());
}

}  // namespace embrec
