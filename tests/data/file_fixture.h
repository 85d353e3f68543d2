// A fresh folder for the files a data test writes, removed after the test.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace embrec::data::testing {

class FileTest : public ::testing::Test {
 protected:
  explicit FileTest(std::string name) : name_(std::move(name)) {}
  void SetUp() override {
    folder_ = std::filesystem::temp_directory_path() / ("embrec-" + name_ + "-" + std::to_string(::getpid()));
    std::filesystem::create_directories(folder_);
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }
  // Writes `text` as the file `file` of the folder (bytes as given) and returns its path.
  std::string write(const std::string& file, const std::string& text) {
    const std::string path = (folder_ / file).string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  std::filesystem::path folder_;

 private:
  std::string name_;
};

}  // namespace embrec::data::testing
