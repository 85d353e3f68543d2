// Small experiments on the built-in demo data, shared by the train/ tests.
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "embrec/train/experiment.h"

namespace embrec::train {

// A fresh, empty folder under the system temporary directory, unique to this process.
inline std::string temporary_folder(const std::string& name) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / ("embrec-trainer-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(path);
  return path.string();
}

inline std::string small_config(const std::string& model, int64_t epochs, int users = 300, int items = 100) {
  return fmt::format(R"(
[data]
demo = "default"
[data.demo_options]
users = {}
items = {}
[model]
{}
[train]
epochs = {}
batch_size = 64
threads = 1
eval_every = 1
patience = 100
seed = 11
[eval]
ks = [10]
metrics = ["hr", "ndcg"]
select = "ndcg@10"
)",
                     users, items, model, epochs);
}

inline Experiment experiment_from(const std::string& text) {
  ConfigTable root = ConfigTable::parse_string(text, "test.toml");
  return load_experiment(root);
}

}  // namespace embrec::train
