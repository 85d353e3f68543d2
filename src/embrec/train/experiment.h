// A config file loaded: [data], [model], [train], [eval] and, for a model that registered a pre-training stage,
// [pretrain] read and checked (every key, before any data is read), then the data loaded and the model built. The
// [train] table is TrainConfig, read here because the experiment's device and seed come from it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "embrec/data/load.h"
#include "embrec/eval/evaluator.h"
#include "embrec/models/model.h"
#include "embrec/util/config.h"

namespace embrec::train {

// The optimiser: Adam, or Adagrad (GRU4Rec's).
enum class OptimizerKind { Adam, Adagrad };
inline const Names<OptimizerKind> kOptimizerNames = {{"adam", OptimizerKind::Adam}, {"adagrad", OptimizerKind::Adagrad}};

// The [train] table: the training loop's settings, and the device, seed and threads of the whole experiment.
struct TrainConfig {
  int64_t epochs = 200;
  int64_t batch_size = 256;
  OptimizerKind optimizer = OptimizerKind::Adam;
  double learning_rate = 1e-3;
  double weight_decay = 0.0;  // L2 added to the gradient, as torch.optim.Adam does
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  int64_t seed = 42;
  int64_t eval_every = 1;    // validate every N epochs
  int64_t patience = 10;     // validations without improvement before stopping
  int64_t threads = 0;       // torch intra-op threads per process; 0 = default_threads()
  bool length_bucketing = true;
  std::string device = "cpu";  // cpu | cuda | cuda:N
  double head_share = 0.2;     // share of users (longest training histories) reported as "head"

  static TrainConfig from(ConfigTable& table);
};

// The thread count `threads = 0` stands for, from the machine's logical cores: 1 on up to 2 (measured on a 2-vCPU
// machine: SASRec trains 1.4-1.8x and S4Rec 1.9-2.4x faster per epoch on one thread than on two, bench/RESULTS.md
// "Threads and processes"), else half of them (one per physical core where cores come in SMT pairs; not measured).
int default_threads(unsigned logical_cores);

// Sets torch's intra-op threads as config.threads asks (0 = default_threads of this machine).
void set_threads(const TrainConfig& config);

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

// A config read and checked, every key of every table, before any data is read: a typo fails in milliseconds.
struct CheckedConfig {
  data::DataConfig data_config;
  eval::EvalConfig eval_config;
  TrainConfig train_config;
  models::ModelBuilder build_model;  // makes the model once the data is known
};
CheckedConfig check_config(ConfigTable& root);

// check_config, then the data loaded and the model built; unknown keys anywhere are errors naming the key and the
// file, raised before the data is loaded.
Experiment load_experiment(ConfigTable& root);
// `overrides` are "section.key=value" assignments applied on top of the file (see apply_override).
Experiment load_experiment_file(const std::string& config_path, const std::vector<std::string>& overrides = {});

}  // namespace embrec::train
