// Loading an experiment: the whole config is read and checked, then the data is loaded and the model built.
#include "embrec/train/experiment.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <thread>

#include "embrec/index/item_index.h"
#include "embrec/models/pretrain.h"
#include "embrec/util/error.h"

namespace embrec::train {

namespace fs = std::filesystem;

TrainConfig TrainConfig::from(ConfigTable& table) {
  TrainConfig c;
  c.epochs = table.get_at_least("epochs", c.epochs, int64_t{0});
  c.batch_size = table.get_positive("batch_size", c.batch_size);
  c.optimizer = table.get_one_of("optimizer", c.optimizer, kOptimizerNames);
  c.learning_rate = table.get_positive("learning_rate", c.learning_rate);
  c.weight_decay = table.get_at_least("weight_decay", c.weight_decay, 0.0);
  auto adam = table.only(c.optimizer == OptimizerKind::Adam, "to optimizer = \"adam\"");
  c.adam_beta1 = adam.get("adam_beta1", c.adam_beta1);
  c.adam_beta2 = adam.get("adam_beta2", c.adam_beta2);
  c.seed = table.get("seed", c.seed);
  c.eval_every = table.get_positive("eval_every", c.eval_every);
  c.patience = table.get_positive("patience", c.patience);
  c.threads = table.get_at_least("threads", c.threads, int64_t{0});
  c.length_bucketing = table.get("length_bucketing", c.length_bucketing);
  c.device = table.get("device", c.device);
  c.head_share = table.get_in_range("head_share", c.head_share, "(0, 1)");
  try {
    (void)torch::Device(c.device);
  } catch (const std::exception&) {
    table.fail_key("device", fmt::format("names an unknown device '{}' (cpu, cuda, cuda:N)", c.device));
  }
  return c;
}

int default_threads(unsigned logical_cores) { return logical_cores <= 2 ? 1 : static_cast<int>(logical_cores / 2); }

void set_threads(const TrainConfig& config) {
  const int threads = config.threads > 0 ? static_cast<int>(config.threads)
                                         : default_threads(std::thread::hardware_concurrency());
  torch::set_num_threads(threads);
}

namespace {

// The resolved config as written next to every checkpoint and result. Paths are written absolute so the run
// folder's config works from anywhere.
// The files the data reads, written absolute: the run folder's config.toml lives elsewhere than the config it came
// from, and a relative path would point somewhere else from there.
std::string resolved_toml(const ConfigTable& root, const data::DataConfig& data_config) {
  toml::table resolved = root.resolved();
  const auto absolute = [](toml::table& table, const char* key, const std::string& path) {
    if (!path.empty()) table.insert_or_assign(key, fs::absolute(path).lexically_normal().string());
  };
  if (auto* data_table = resolved["data"].as_table()) {
    absolute(*data_table, "path", data_config.path);
    absolute(*data_table, "dev_path", data_config.mind.dev_folder);
    absolute(*data_table, "word_vectors", data_config.mind.word_vectors);
    for (const auto& [name, source] : {std::pair<const char*, const data::FeatureSource&>{"item_features",
                                                                                         data_config.item_features},
                                       {"user_features", data_config.user_features}}) {
      auto* features = (*data_table)[name].as_table();
      if (!features) continue;
      absolute(*features, "path", source.path);
      absolute(*features, "item_map", source.read.item_map);
      absolute(*features, "genre_names", source.read.genre_names);
    }
  }
  std::ostringstream text;
  text << resolved << '\n';
  return text.str();
}

// [pretrain]: read by the reader the model registered for it (its schedule and objective keys, defaults applied
// when the table is absent), and handed to the model once it is built. A model without a pre-training stage
// refuses the table.
models::ModelBuilder with_pretrain_stage(ConfigTable& root, models::ModelBuilder build_model) {
  const std::string model_name = root.sub("model").require_string("name");
  const models::PretrainReader* reader = models::find_pretrain_reader(model_name);
  if (!reader) {
    if (root.has("pretrain")) {
      std::string known;
      for (const std::string& name : models::pretrain_model_names()) known += (known.empty() ? "" : ", ") + name;
      fail("{}: [pretrain] applies only to models with a pre-training stage ({}); model '{}' has none",
           root.origin("pretrain"), known, model_name);
    }
    return build_model;
  }
  models::PretrainApply apply = (*reader)(root.sub("pretrain"));
  return [build_model = std::move(build_model), apply = std::move(apply)](const models::ModelContext& context) {
    std::unique_ptr<models::Model> model = build_model(context);
    apply(*model);
    return model;
  };
}

}  // namespace

CheckedConfig check_config(ConfigTable& root) {
  CheckedConfig checked;
  checked.data_config = data::DataConfig::from(root.sub("data"));
  checked.train_config = TrainConfig::from(root.sub("train"));
  checked.eval_config = eval::EvalConfig::from(root.sub("eval"));
  try {
    (void)index::parse_metric(checked.eval_config.index_metric);
  } catch (const Error& error) {
    root.sub("eval").fail_key("index_metric", fmt::format(": {}", error.what()));
  }
  if (!root.has("model")) fail("{}: missing [model] table (with name = \"sasrec\", \"pop\", ...)", root.source());
  checked.build_model = with_pretrain_stage(root, models::configure_model(root.sub("model")));
  root.finish();
  return checked;
}

Experiment load_experiment(ConfigTable& root) {
  CheckedConfig checked = check_config(root);
  Experiment experiment;
  experiment.config_source = root.source();
  experiment.data_config = std::move(checked.data_config);
  experiment.train_config = std::move(checked.train_config);
  experiment.eval_config = std::move(checked.eval_config);
  experiment.data = data::load_data(experiment.data_config);
  models::ModelContext context;
  context.item_count = experiment.data.dataset.item_count();
  context.user_count = experiment.data.dataset.user_count();
  context.device = torch::Device(experiment.train_config.device);
  context.seed = static_cast<uint64_t>(experiment.train_config.seed);
  context.dataset = &experiment.data.dataset;
  context.split = &experiment.data.split;
  torch::manual_seed(context.seed);
  experiment.model = checked.build_model(context);
  experiment.resolved_toml = resolved_toml(root, experiment.data_config);
  return experiment;
}

Experiment load_experiment_file(const std::string& config_path, const std::vector<std::string>& overrides) {
  if (overrides.empty()) {
    ConfigTable root = ConfigTable::parse_file(config_path);
    return load_experiment(root);
  }
  ConfigDocument document = read_config_document(config_path);
  for (const std::string& assignment : overrides) apply_override(document.table, assignment);
  ConfigTable root = ConfigTable::from_document(std::move(document), config_path);
  return load_experiment(root);
}

}  // namespace embrec::train
