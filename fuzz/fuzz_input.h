// What every fuzz target shares: the input written to a file in memory (the readers take paths), and the rule
// that a reader may only fail with embrec's Error (a message naming the file); anything else -- another exception,
// a crash, a sanitizer report -- is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "embrec/util/error.h"

namespace embrec::fuzz {

// A per-process file under /dev/shm (or /tmp), rewritten for each input.
inline const std::string& input_path(const char* name) {
  static const std::string path = [name] {
    const char* folder = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(folder) + "/embrec-fuzz-" + name + "-" + std::to_string(::getpid());
  }();
  return path;
}

inline const std::string& write_input(const char* name, std::string_view bytes) {
  const std::string& path = input_path(name);
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) std::abort();
  std::fwrite(bytes.data(), 1, bytes.size(), file);
  std::fclose(file);
  return path;
}

// Runs `read`; an embrec::Error is the expected way to refuse bad input.
template <typename F>
void expect_only_errors(F&& read) {
  try {
    read();
  } catch (const Error&) {
  }
}

}  // namespace embrec::fuzz
