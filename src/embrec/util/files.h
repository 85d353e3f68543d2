// File helpers: whole-file reads and atomic writes (temporary file + rename), so a crash never leaves half a file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace embrec {

// Reads a whole file; throws Error naming the path when it cannot be opened.
std::string read_file(const std::string& path);

// Writes `contents` to `path` through `path.tmp.<pid>` and rename(2): readers see the old file or the new one.
void write_file_atomic(const std::string& path, std::string_view contents);

// A file written in pieces through `path.tmp.<pid>`; commit() flushes, fsyncs and renames it over `path`. Destroyed
// without commit() (an error midway), it removes the temporary file: readers see the old file, or none.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(std::string_view bytes);
  void commit();

 private:
  std::string path_;
  std::string temporary_;
  std::FILE* file_ = nullptr;
};

// Appends one line (a '\n' is added) to `path`, creating it when missing.
void append_line(const std::string& path, std::string_view line);

// An exclusive lock on a folder while this object lives: flock(2) on FOLDER/.lock, which also ends when the process
// ends however it ends (killed, crashed), so a stale lock never blocks. The holder's pid is written into the file.
// Held by another process (or another FolderLock of this one): an Error naming the folder, `what` it is used for
// and the holder's pid. The run folder of `embrec train` takes one, so that two processes never train one folder.
class FolderLock {
 public:
  FolderLock(const std::string& folder, const std::string& what);
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

bool file_exists(const std::string& path);
void make_directories(const std::string& path);

}  // namespace embrec
