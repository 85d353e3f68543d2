// SHA-256 (OpenSSL's libcrypto), the one checksum embrec writes and checks: the dataset cache, checkpoints and
// every file of an export (and MD5, only to check a download against a publisher's MD5 sum). Written as 64
// lowercase hex digits, so `sha256sum FILE` reproduces a file's checksum.
// It catches truncation, flipped bits and replaced files; it is not a signature (anyone can recompute it).
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace embrec {

// Incremental: update() any number of times, then hex() once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  Sha256& update(std::string_view bytes);
  // The digest of everything passed to update(), as 64 hex digits; the object cannot be updated afterwards.
  std::string hex();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The SHA-256 of `bytes` as 64 hex digits.
std::string sha256_hex(std::string_view bytes);

// The SHA-256 of a file's bytes, read in blocks (no whole-file copy); an Error names the file when it cannot be read.
std::string sha256_file_hex(const std::string& path);

// The MD5 of a file's bytes as 32 hex digits (`md5sum FILE`). Only for downloads whose publisher gives nothing
// better (data/fetch.cpp): it catches damage, not a deliberately forged file. Never use it for a new checksum.
std::string md5_file_hex(const std::string& path);

// A checksummed file: one header line "<kind> sha256 <64 hex digits>\n", then the payload whose SHA-256 the header
// holds (`tail -n +2 FILE | sha256sum` reproduces it). `kind` names the format and its version, e.g.
// "embrec-checkpoint 1"; writing is the caller's (atomically, util/files.h).
std::string checksummed(std::string_view kind, std::string_view payload);

// The verified payload of a checksummed file of `kind`. A file that begins with `legacy_magic` (when non-empty)
// predates the header and is returned whole with a warning. Every other failure is an Error naming the file: not
// this kind, another version of it, a truncated header, or a checksum that does not match (damaged or edited).
std::string read_checksummed(const std::string& path, std::string_view kind, std::string_view legacy_magic = {});

}  // namespace embrec
