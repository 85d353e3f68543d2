// Reading a run folder's files for a report.
#include "embrec/report/run_record.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "embrec/util/config.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::report {

namespace {

namespace fs = std::filesystem;

std::map<std::string, double> numbers(const nlohmann::json& object) {
  std::map<std::string, double> out;
  if (!object.is_object()) return out;
  for (const auto& [key, value] : object.items())
    if (value.is_number()) out[key] = value.get<double>();
  return out;
}

std::vector<EpochRecord> read_epochs(const std::string& path) {
  std::vector<EpochRecord> epochs;
  if (!file_exists(path)) return epochs;  // count-based models train no epochs
  std::istringstream lines(read_file(path));
  std::string line;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (line.empty()) continue;
    try {
      const nlohmann::json json = nlohmann::json::parse(line);
      EpochRecord epoch;
      epoch.epoch = json.at("epoch").get<int64_t>();
      epoch.seconds = json.value("seconds", 0.0);
      epoch.loss = json.value("loss", 0.0);
      if (json.contains("parts")) epoch.parts = numbers(json["parts"]);
      if (json.contains("valid")) epoch.valid = numbers(json["valid"]);
      epochs.push_back(std::move(epoch));
    } catch (const nlohmann::json::exception& error) {
      fail("{}:{}: not a metrics line ({})", path, number, error.what());
    }
  }
  return epochs;
}

}  // namespace

RunRecord read_run_record(const std::string& dir) {
  RunRecord run;
  run.dir = dir;
  fs::path folder = fs::absolute(dir).lexically_normal();
  if (folder.filename().empty()) folder = folder.parent_path();  // "runs/x/"
  run.name = folder.filename().string();
  const std::string config_path = dir + "/config.toml", results_path = dir + "/results.json";
  if (!fs::is_directory(dir)) fail("{}: no such run folder", dir);
  if (!file_exists(config_path)) fail("{}: not a run folder (no config.toml)", dir);
  if (!file_exists(results_path))
    fail("{}: the run has not finished (no results.json): train it to the end first (embrec train --resume)", dir);
  run.config_toml = read_file(config_path);
  ConfigTable root = ConfigTable::parse_string(run.config_toml, config_path);
  run.eval_config = eval::EvalConfig::from(root.sub("eval"));
  try {
    const nlohmann::json results = nlohmann::json::parse(read_file(results_path));
    run.model = results.at("model").get<std::string>();
    run.dataset = results.at("dataset").get<std::string>();
    run.best_epoch = results.value("best_epoch", int64_t{0});
    run.epochs_run = results.value("epochs_run", int64_t{0});
    run.train_seconds = results.value("train_seconds", 0.0);
    run.valid = eval::EvalResult::from_json(results.at("valid"));
    run.test = eval::EvalResult::from_json(results.at("test"));
  } catch (const nlohmann::json::exception& error) {
    fail("{}: not a results file ({})", results_path, error.what());
  }
  run.epochs = read_epochs(dir + "/metrics.jsonl");
  if (file_exists(dir + "/clusters.svg")) run.clusters_svg = read_file(dir + "/clusters.svg");
  return run;
}

}  // namespace embrec::report
