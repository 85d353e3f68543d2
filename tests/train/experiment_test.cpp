// Loading an experiment: the whole config, model table included, is checked before any data is read, and every
// shipped config passes those checks.
#include "embrec/train/experiment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::train {
namespace {

namespace fs = std::filesystem;

std::string load_error(const std::string& text) {
  return error_of([&] {
    ConfigTable root = ConfigTable::parse_string(text, "e.toml");
    load_experiment(root);
  });
}

// The data file does not exist, so any error other than the config's own means the data was read first.
TEST(Experiment, DefaultThreadsAreOneOnUpToTwoCoresElseHalfTheCores) {
  EXPECT_EQ(default_threads(0), 1);  // hardware_concurrency() may not know
  EXPECT_EQ(default_threads(1), 1);
  EXPECT_EQ(default_threads(2), 1);
  EXPECT_EQ(default_threads(4), 2);
  EXPECT_EQ(default_threads(16), 8);
}

TEST(Experiment, ModelKeysAreCheckedBeforeTheDataIsRead) {
  const std::string data = "[data]\npath = '/nonexistent/embrec/log.txt'\n";
  EXPECT_EQ(load_error(data + "[model]\nname = 'sasrec'\ndim = 0\n"), "e.toml: key 'model.dim' must be positive, got 0");
  EXPECT_EQ(load_error(data + "[model]\nname = 's4rec'\nclustering = 'spectral'\n"),
            "e.toml: key 'model.clustering' must be one of {sinkhorn, kmeans, none}, got 'spectral'");
  EXPECT_EQ(load_error(data + "[model]\nname = 'sasrec'\nlos = 'bce'\n"), "e.toml: unknown key 'model.los'");
  EXPECT_EQ(load_error(data + "[model]\nname = 'mf'\nloss = 'bpr'\ntemperature = 0.1\n"),
            "e.toml: key 'model.temperature' applies only to loss = \"softmax\"");
  EXPECT_EQ(load_error(data + "[model]\nname = 'sasrec'\n[train]\nepoch = 3\n"), "e.toml: unknown key 'train.epoch'");
  // With a valid config, the missing file is the first error.
  EXPECT_EQ(load_error(data + "[model]\nname = 'sasrec'\n"), "/nonexistent/embrec/log.txt: no such file");
}

std::vector<fs::path> shipped_configs() {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(fs::path(EMBREC_SOURCE_DIR) / "configs"))
    // configs/bases/ holds what several configs share (no [model]): checked as part of the configs extending it.
    if (entry.path().extension() == ".toml" && entry.path().parent_path().filename() != "bases")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Experiment, EveryShippedConfigPassesItsChecksAndEveryModelHasOne) {
  std::set<std::string> configured;
  const std::vector<fs::path> files = shipped_configs();
  ASSERT_GT(files.size(), 10u);
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    ConfigTable root = ConfigTable::parse_file(file.string());
    EXPECT_EQ(error_of([&] { check_config(root); }), "(no error)");
    configured.insert(root.sub("model").get("name", std::string()));
  }
  for (const std::string& name : models::model_names()) {
    if (name.size() > 5 && name.compare(name.size() - 5, 5, "_test") == 0) continue;  // registered by tests
    EXPECT_EQ(configured.count(name), 1u) << "model '" << name << "' has no config in configs/";
  }
}

}  // namespace
}  // namespace embrec::train
