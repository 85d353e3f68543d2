// What a report reads of a finished run folder: the resolved config, the results of the best model, the curves
// of metrics.jsonl and the cluster picture. Plain files only: no model is loaded here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "embrec/eval/evaluator.h"

namespace embrec::report {

// One line of metrics.jsonl: an epoch's seconds, loss and loss parts, and its validation metrics when it was an
// evaluation point.
struct EpochRecord {
  int64_t epoch = 0;
  double seconds = 0.0;
  double loss = 0.0;
  std::map<std::string, double> parts;
  std::map<std::string, double> valid;
};

struct RunRecord {
  std::string dir;
  std::string name;         // the folder's own name, for tables and legends
  std::string config_toml;  // the resolved config
  std::string model, dataset;
  eval::EvalConfig eval_config;
  eval::EvalResult valid, test;
  int64_t best_epoch = 0, epochs_run = 0;
  double train_seconds = 0.0;
  std::vector<EpochRecord> epochs;
  std::string clusters_svg;  // the cluster histogram; empty for models without clusters
};

// Reads dir's config.toml, results.json, metrics.jsonl (absent for count-based models) and clusters.svg. A folder
// that is not a run, or a run that has not finished, is an Error that says what is missing.
RunRecord read_run_record(const std::string& dir);

}  // namespace embrec::report
