// The one training loop: Adam, seeded per-epoch shuffling, validation every N epochs with early stopping on a
// chosen metric, atomic checkpoints with the resolved config, --resume, NaN/inf guard, progress and JSONL curves.
#pragma once

#include <memory>
#include <string>

#include "embrec/data/load.h"
#include "embrec/eval/evaluator.h"
#include "embrec/models/model.h"
#include "embrec/util/config.h"

namespace embrec::train {

struct TrainConfig {
  int64_t epochs = 200;
  int64_t batch_size = 256;
  double learning_rate = 1e-3;
  double weight_decay = 0.0;  // L2 added to the gradient, as torch.optim.Adam does
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  int64_t seed = 42;
  int64_t eval_every = 1;    // validate every N epochs
  int64_t patience = 10;     // validations without improvement before stopping
  int64_t threads = 0;       // torch intra-op threads; 0 = all cores
  bool length_bucketing = true;
  std::string device = "cpu";  // cpu | cuda | cuda:N
  double head_share = 0.2;     // share of users (longest training histories) reported as "head"

  static TrainConfig from(ConfigTable& table);
};

// Everything one config file describes, loaded: data, split, model, evaluation and training settings.
struct Experiment {
  std::string config_source;
  data::DataConfig data_config;
  data::LoadedData data;
  eval::EvalConfig eval_config;
  TrainConfig train_config;
  std::unique_ptr<models::Model> model;
  std::string resolved_toml;  // the fully resolved config, written next to every checkpoint and result
};

// Reads [data], [model], [train], [eval]; unknown keys anywhere are errors naming the key and the file.
Experiment load_experiment(ConfigTable& root);
// `overrides` are "section.key=value" assignments applied on top of the file (see apply_override).
Experiment load_experiment_file(const std::string& config_path, const std::vector<std::string>& overrides = {});

struct TrainOptions {
  std::string run_dir;
  bool resume = false;
  // For tests of --resume: stop (as if killed) after this many epochs of this call; -1 = no limit.
  int64_t stop_after_epochs = -1;
};

struct TrainSummary {
  eval::EvalResult valid;
  eval::EvalResult test;
  int64_t epochs_run = 0;
  int64_t best_epoch = 0;
  bool stopped_early = false;
  bool interrupted = false;  // stop_after_epochs reached before the end
  double train_seconds = 0.0;
};

// Trains (or fits) the model into run_dir, then evaluates the best checkpoint on valid and test, writes
// results.json and returns the results. run_dir holds: config.toml, checkpoint.pt (latest), best.pt,
// metrics.jsonl (one line per epoch), results.json.
TrainSummary train(Experiment& experiment, const TrainOptions& options);

// Loads run_dir's config, its data and its best checkpoint (model fitted and in eval mode).
Experiment load_run(const std::string& run_dir);

// Loads run_dir's config and best checkpoint and evaluates the test stage (or valid); writes results.json.
eval::EvalResult evaluate_run(const std::string& run_dir, bool test_stage = true);

// For models with clusters: each user's cluster, as clusters.json (head/tail counts per cluster) and clusters.svg.
void write_cluster_report(models::Model& model, const data::Split& split, double head_share,
                          const std::string& dataset_name, const std::string& run_dir);

// The table printed after training and by `embrec eval`.
std::string results_table(const eval::EvalResult& result, const eval::EvalConfig& config);

}  // namespace embrec::train
