// SHA-256 through OpenSSL's EVP interface (which uses the CPU's SHA extensions where present: ~2 GB/s here).
#include "embrec/util/checksum.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec {

namespace {

std::string hex_digits(const unsigned char* digest, unsigned int length) {
  static const char* const kDigits = "0123456789abcdef";
  std::string text(2 * length, '0');
  for (unsigned int i = 0; i < length; ++i) {
    text[2 * i] = kDigits[digest[i] >> 4];
    text[2 * i + 1] = kDigits[digest[i] & 15];
  }
  return text;
}

// A file's digest under `algorithm`, read in 1 MiB blocks.
std::string file_digest_hex(const std::string& path, const EVP_MD* algorithm, const char* name) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail("{}: cannot open for reading: {}", path, std::strerror(errno));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), algorithm, nullptr) != 1) {
    std::fclose(file);
    fail("{}: cannot initialise OpenSSL's digest", name);
  }
  std::vector<char> block(1 << 20);
  size_t read = 0;
  bool updated = true;
  while (updated && (read = std::fread(block.data(), 1, block.size(), file)) > 0)
    updated = EVP_DigestUpdate(context.get(), block.data(), read) == 1;
  const bool failed = std::ferror(file) != 0;
  std::fclose(file);
  if (failed) fail("{}: read error", path);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!updated || EVP_DigestFinal_ex(context.get(), digest, &length) != 1) fail("{}: digest failed", name);
  return hex_digits(digest, length);
}

}  // namespace

struct Sha256::State {
  EVP_MD_CTX* context = nullptr;
  bool finished = false;
};

Sha256::Sha256() : state_(std::make_unique<State>()) {
  state_->context = EVP_MD_CTX_new();
  if (!state_->context || EVP_DigestInit_ex(state_->context, EVP_sha256(), nullptr) != 1)
    fail("sha256: cannot initialise OpenSSL's digest");
}

Sha256::~Sha256() { EVP_MD_CTX_free(state_->context); }

Sha256& Sha256::update(std::string_view bytes) {
  if (state_->finished) fail("sha256: update() after hex()");
  if (EVP_DigestUpdate(state_->context, bytes.data(), bytes.size()) != 1) fail("sha256: digest update failed");
  return *this;
}

std::string Sha256::hex() {
  if (state_->finished) fail("sha256: hex() called twice");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(state_->context, digest, &length) != 1) fail("sha256: digest finalisation failed");
  state_->finished = true;
  return hex_digits(digest, length);
}

std::string sha256_hex(std::string_view bytes) { return Sha256().update(bytes).hex(); }

std::string sha256_file_hex(const std::string& path) { return file_digest_hex(path, EVP_sha256(), "sha256"); }

std::string md5_file_hex(const std::string& path) { return file_digest_hex(path, EVP_md5(), "md5"); }

std::string checksummed(std::string_view kind, std::string_view payload) {
  std::string bytes = fmt::format("{} sha256 {}\n", kind, sha256_hex(payload));
  bytes.append(payload);
  return bytes;
}

std::string read_checksummed(const std::string& path, std::string_view kind, std::string_view legacy_magic) {
  std::string bytes = read_file(path);
  if (!legacy_magic.empty() && bytes.rfind(legacy_magic, 0) == 0) {
    spdlog::warn("{}: written before embrec checksummed this kind of file; loaded unverified", path);
    return bytes;
  }
  const std::string prefix = fmt::format("{} sha256 ", kind);
  const std::string_view format = kind.substr(0, kind.find(' '));
  if (bytes.rfind(prefix, 0) != 0) {
    if (bytes.rfind(std::string(format) + " ", 0) == 0)
      fail("{}: header '{}' is not what this embrec reads ('{}<sha256>')", path,
           bytes.substr(0, std::min(bytes.find('\n'), size_t{100})), prefix);
    fail("{}: not an {} file (no '{}' header line)", path, format, format);
  }
  constexpr size_t kDigest = 64;
  const size_t payload_start = prefix.size() + kDigest + 1;
  if (bytes.size() < payload_start || bytes[payload_start - 1] != '\n') fail("{}: truncated header", path);
  const std::string expected = bytes.substr(prefix.size(), kDigest);
  bytes.erase(0, payload_start);
  const std::string actual = sha256_hex(bytes);
  if (actual != expected)
    fail("{}: SHA-256 {} does not match the checksum in its header ({}); the file is damaged or was edited", path,
         actual, expected);
  return bytes;
}

}  // namespace embrec
