// A fresh folder for the files a data test writes, removed after the test; and lines of the MovieLens files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <initializer_list>
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

// A MovieLens 100K u.item line: id, title, release date, an empty video date, a URL, then the 19 genre flags with the
// given ones set.
inline std::string uitem_line(int id, const std::string& title, std::initializer_list<int> genres,
                              const std::string& release_date = "01-Jan-1995") {
  std::string line = std::to_string(id) + "|" + title + "|" + release_date + "||http://us.imdb.com/M/title-exact?x";
  for (int g = 0; g < 19; ++g) line += std::find(genres.begin(), genres.end(), g) != genres.end() ? "|1" : "|0";
  return line + "\n";
}

}  // namespace embrec::data::testing
