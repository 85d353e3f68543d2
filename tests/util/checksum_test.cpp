// SHA-256: the FIPS 180-2 test vectors, incremental equal to one-shot, and a file's digest equal to its bytes'; MD5
// of a file (for downloads with only an MD5 published): the RFC 1321 test vectors.
#include "embrec/util/checksum.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "error_of.h"

namespace embrec {
namespace {

TEST(Sha256, MatchesTheStandardTestVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalEqualsOneShotAndFinishesOnce) {
  const std::string text = "the quick brown fox jumps over the lazy dog, more than one block of it. ";
  Sha256 hash;
  for (char c : text) hash.update(std::string_view(&c, 1));
  EXPECT_EQ(hash.hex(), sha256_hex(text));
  EXPECT_THROW(hash.hex(), Error);
  EXPECT_THROW(hash.update("x"), Error);
}

TEST(Sha256, AFilesDigestIsThatOfItsBytesAndAMissingFileIsNamed) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("embrec-sha-" + std::to_string(::getpid()))).string();
  std::string bytes(3 << 20, '\0');  // three of the reader's 1 MiB blocks, and not all alike
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 4096);
  write_file_atomic(path, bytes);
  EXPECT_EQ(sha256_file_hex(path), sha256_hex(bytes));
  std::filesystem::remove(path);
  const std::string message = error_of([&] { (void)sha256_file_hex(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
}

TEST(Md5, AFilesDigestMatchesTheStandardTestVectors) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("embrec-md5-" + std::to_string(::getpid()))).string();
  write_file_atomic(path, "");
  EXPECT_EQ(md5_file_hex(path), "d41d8cd98f00b204e9800998ecf8427e");
  write_file_atomic(path, "abc");
  EXPECT_EQ(md5_file_hex(path), "900150983cd24fb0d6963f7d28e17f72");
  write_file_atomic(path, "12345678901234567890123456789012345678901234567890123456789012345678901234567890");
  EXPECT_EQ(md5_file_hex(path), "57edf4a22be3c955ac49da2e2107b67a");
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace embrec
