// Checkpoint files: a round trip, the header's SHA-256 reproducible from the bytes, and every damaged, edited,
// foreign or non-finite file refused with an Error that names it; a bare LibTorch archive from before the header
// still loads.
#include "embrec/train/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "train_fixtures.h"
#include "../util/error_of.h"

namespace embrec::train {
namespace {

struct Small : torch::nn::Module {
  Small() {
    weight = register_parameter("weight", torch::arange(12, torch::kFloat32).reshape({3, 4}));
    counts = register_buffer("counts", torch::ones({5}, torch::kFloat64));
  }
  torch::Tensor weight, counts;
};

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temporary_folder("checkpoint");
    std::filesystem::create_directories(dir_);
    path_ = dir_ + "/best.pt";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string load_error(const std::string& path) {
    Small target;
    return error_of([&] { load_module(target, path); });
  }
  std::string dir_, path_;
};

TEST_F(CheckpointTest, RoundTripsAndItsHeaderHoldsTheSha256OfTheArchive) {
  Small source;
  source.weight.data().mul_(-2.5);
  save_module(source, path_);
  Small target;
  load_module(target, path_);
  EXPECT_TRUE(torch::equal(target.weight, source.weight));
  EXPECT_TRUE(torch::equal(target.counts, source.counts));
  const std::string bytes = read_file(path_);
  const size_t newline = bytes.find('\n');
  ASSERT_NE(newline, std::string::npos);
  // What `tail -n +2 best.pt | sha256sum` prints.
  EXPECT_EQ(bytes.substr(0, newline), "embrec-checkpoint 1 sha256 " + sha256_hex(bytes.substr(newline + 1)));
  EXPECT_EQ(bytes.substr(newline + 1, 2), "PK");  // a LibTorch (zip) archive follows
}

TEST_F(CheckpointTest, AnyFlippedByteIsRefusedNamingTheFile) {
  Small source;
  save_module(source, path_);
  const std::string original = read_file(path_);
  // Flipped bytes in the archive: 64 of them spread over it, then each region alone.
  for (size_t at = original.find('\n') + 1; at < original.size(); at += original.size() / 97 + 1) {
    std::string bytes = original;
    bytes[at] ^= 0x10;
    write_file_atomic(path_, bytes);
    const std::string message = load_error(path_);
    ASSERT_NE(message.find(path_ + ": SHA-256"), std::string::npos) << "byte " << at << ": " << message;
    ASSERT_NE(message.find("damaged or was edited"), std::string::npos) << message;
  }
  write_file_atomic(path_, original.substr(0, original.size() - 10));
  EXPECT_NE(load_error(path_).find("does not match"), std::string::npos);
  write_file_atomic(path_, original.substr(0, 30));
  EXPECT_NE(load_error(path_).find(path_ + ": truncated header"), std::string::npos) << load_error(path_);
  write_file_atomic(path_, "embrec-checkpoint 7 sha256 " + original.substr(27));
  EXPECT_NE(load_error(path_).find("is not what this embrec reads"), std::string::npos) << load_error(path_);
  write_file_atomic(path_, "{\"not\": \"a checkpoint\"}");
  EXPECT_NE(load_error(path_).find(path_ + ": not an embrec-checkpoint file"), std::string::npos)
      << load_error(path_);
  EXPECT_NE(load_error(dir_ + "/missing.pt").find("missing.pt: cannot open"), std::string::npos);
}

TEST_F(CheckpointTest, NonFiniteWeightsAreRefusedNamingTheTensor) {
  Small source;
  source.weight.data()[1][2] = std::nanf("");
  save_module(source, path_);
  EXPECT_NE(load_error(path_).find(path_ + ": 'weight' holds non-finite values"), std::string::npos)
      << load_error(path_);
  Small other;
  other.counts.data()[3] = std::numeric_limits<double>::infinity();
  save_module(other, path_);
  EXPECT_NE(load_error(path_).find("'counts' holds non-finite values"), std::string::npos) << load_error(path_);
  // The trainer's checkpoint too.
  save_checkpoint(source, nullptr, TrainerState{}, path_);
  Small target;
  EXPECT_THROW(load_checkpoint(target, nullptr, path_), Error);
}

TEST_F(CheckpointTest, ABareLibTorchArchiveStillLoadsAndADamagedOneSaysSoWithoutTorchBoilerplate) {
  Small source;
  source.weight.data().add_(1.0);
  torch::serialize::OutputArchive archive;
  source.save(archive);
  archive.save_to(path_);  // what embrec wrote before checkpoints had a header
  Small target;
  load_module(target, path_);
  EXPECT_TRUE(torch::equal(target.weight, source.weight));
  // A damaged pickle inside such an archive (the checksum cannot catch it): the file is named, LibTorch's
  // "report a bug to PyTorch" is not shown.
  std::string bytes = read_file(path_);
  const size_t record = bytes.find("data.pkl");  // the pickle's local zip header; its bytes follow, stored as is
  ASSERT_NE(record, std::string::npos);
  const size_t pickle = bytes.find(std::string("\x80\x02", 2), record);  // pickle protocol 2 opens it
  ASSERT_NE(pickle, std::string::npos);
  for (size_t at = pickle + 2; at < pickle + 40; ++at) bytes[at] = '\xff';
  write_file_atomic(path_, bytes);
  const std::string message = load_error(path_);
  EXPECT_NE(message.find(path_ + ": cannot load checkpoint: "), std::string::npos) << message;
  EXPECT_EQ(message.find("report a bug"), std::string::npos) << message;
  EXPECT_EQ(message.find("INTERNAL ASSERT"), std::string::npos) << message;
}

}  // namespace
}  // namespace embrec::train
