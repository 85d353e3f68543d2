// Run folder -> the loaded run, its evaluation, its cluster report, its export, and its model as a HistoryEncoder.
#include "embrec/train/run_folder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>

#include "embrec/data/features.h"
#include "embrec/eval/per_user.h"
#include "embrec/models/evaluate.h"
#include "embrec/report/cluster_histogram.h"
#include "embrec/train/checkpoint.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::train {

Experiment load_run(const std::string& run_dir) {
  const std::string config_path = run_dir + "/config.toml";
  if (!file_exists(config_path)) fail("{}: not a run folder (no config.toml)", run_dir);
  Experiment experiment = load_experiment_file(config_path);
  const std::string best_path = run_dir + "/best.pt";
  if (!file_exists(best_path)) fail("{}: no trained model yet (no best.pt)", run_dir);
  models::Model& model = *experiment.model;
  model.restore(experiment.data.split);
  load_module(model.module(), best_path);
  model.module().eval();
  return experiment;
}

eval::EvalResult evaluate_run(const std::string& run_dir, EvalStage stage) {
  Experiment experiment = load_run(run_dir);
  set_threads(experiment.train_config);
  models::Model& model = *experiment.model;
  const data::Split& split = experiment.data.split;
  const eval::UserGroups groups = eval::result_groups(split.train, experiment.train_config.head_share,
                                                      experiment.data.dataset.item_count(), experiment.eval_config);
  if (stage == EvalStage::Cold && split.cold.size() == 0)
    fail("{}: no cold-start stage (its [data.split] holds out no items: cold_item_ratio = 0)", run_dir);
  const data::EvalTask task =
      stage == EvalStage::Cold ? data::make_cold_task(split) : data::make_eval_task(split, stage == EvalStage::Test);
  eval::EvalConfig config = experiment.eval_config;
  config.per_user = true;
  eval::EvalResult result = models::evaluate_model(model, task, experiment.data.dataset.item_count(), config, &groups);
  const std::string stage_name = name_of(kEvalStageNames, stage);
  write_file_atomic(fmt::format("{}/eval-{}.json", run_dir, stage_name), result.to_json().dump(2) + "\n");
  eval::write_per_user(fmt::format("{}/per-user-{}.tsv", run_dir, stage_name), result.per_user,
                       experiment.data.dataset.users);
  return result;
}

std::vector<int32_t> user_clusters(models::Model& model, const data::Sequences& train) {
  std::vector<int32_t> users;
  for (int32_t u = 0; u < train.user_count(); ++u)
    if (train.length(u) > 0) users.push_back(u);
  const std::vector<int32_t> assigned = model.cluster_assignments(train, users.data(), static_cast<int32_t>(users.size()));
  std::vector<int32_t> assignment(static_cast<size_t>(train.user_count()), -1);
  for (size_t i = 0; i < users.size(); ++i) assignment[users[i]] = assigned[i];
  return assignment;
}

void write_cluster_report(models::Model& model, const data::Split& split, double head_share,
                          const std::string& dataset_name, const std::string& run_dir) {
  const report::ClusterHistogram histogram = report::cluster_histogram(
      user_clusters(model, split.train), data::head_users(split.train, head_share), model.cluster_count());
  write_file_atomic(run_dir + "/clusters.json", histogram.to_json().dump(2) + "\n");
  write_file_atomic(run_dir + "/clusters.svg",
                    report::cluster_histogram_svg(
                        histogram, fmt::format("{} on {}: cluster assignments of head and tail users", model.name(),
                                               dataset_name)));
  spdlog::info("cluster histogram of head and tail users: {}/clusters.svg", run_dir);
}

std::string results_table(const eval::EvalResult& result, const eval::EvalConfig& config) {
  return result.to_table(config.ks, config.metrics);
}

namespace {

std::vector<float> to_vector(const torch::Tensor& tensor) {
  auto contiguous = tensor.to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(contiguous.data_ptr<float>(), contiguous.data_ptr<float>() + contiguous.numel());
}

class ExportEncoder final : public serve::HistoryEncoder {
 public:
  explicit ExportEncoder(std::unique_ptr<models::Model> model) : model_(std::move(model)) {}
  std::vector<float> encode(const std::vector<int32_t>& items) override { return encode_user(items, {}); }
  std::vector<float> encode_user(const std::vector<int32_t>& items,
                                 const std::map<std::string, std::vector<std::string>>& features) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return to_vector(model_->fresh_user_vector(items, features));
  }
  bool takes_features() const override { return model_->takes_user_features(); }
  bool encodes_items() const override { return model_->encodes_items(); }
  // The model's InputError (a title without a word it knows) passes through unchanged: the service answers it 400.
  std::vector<float> encode_item(const data::NewsText& article) override {
    std::lock_guard<std::mutex> lock(mutex_);
    return to_vector(model_->fresh_item_vector(article));
  }

 private:
  std::unique_ptr<models::Model> model_;
  std::mutex mutex_;
};

}  // namespace

index::Manifest export_run(const std::string& run_dir, const std::string& out_dir, const index::ExportOptions& options,
                           bool cold_items) {
  Experiment experiment = load_run(run_dir);
  models::Model& model = *experiment.model;
  if (model.dim() <= 0) fail("{}: model '{}' has no item and user vectors to export", run_dir, model.name());
  if (cold_items && !model.places_untrained_items())
    fail("{}: --cold-items needs a model that places items never trained on by their features (two_tower with item "
         "features); model '{}' would index their untrained vectors", run_dir, model.name());
  const data::Dataset& dataset = experiment.data.dataset;
  const data::Sequences& all = dataset.interactions;
  const int32_t users = dataset.user_count();
  std::vector<int32_t> ids(users);
  std::iota(ids.begin(), ids.end(), 0);

  index::ExportData data;
  data.model_name = model.name();
  data.dataset_name = dataset.name;
  data.dim = static_cast<int32_t>(model.dim());
  data.item_vectors = to_vector(model.item_vectors());
  data.user_vectors = to_vector(model.user_vectors(all, ids.data(), users));
  data.user_seen_items.resize(users);
  for (int32_t u = 0; u < users; ++u) data.user_seen_items[u].assign(all.begin(u), all.end(u));
  data.user_external_ids = dataset.users.externals();
  data.item_external_ids = dataset.items.externals();
  const std::vector<uint8_t> trained = data::items_in(experiment.data.split.train, dataset.item_count());
  const int64_t untrained = std::count(trained.begin(), trained.end(), uint8_t{0});
  // News models place every item by its text, which is what they are for (an article is recommended before it has
  // clicks): their exports index untrained items without being asked.
  if (untrained > 0 && !cold_items && !model.encodes_items()) {
    data.item_indexed = trained;
    spdlog::info("{} items with no training interactions are left out of the index ({})", untrained,
                 model.places_untrained_items() ? "--cold-items indexes them by their features"
                                                : "their vectors are untrained");
  }
  // Models of user ids have no history encoder: the service answers 501 on the history route for them.
  if (model.encodes_histories()) {
    data.encoder_config = experiment.resolved_toml;
    data.encoder_weights = module_checkpoint_bytes(model.module());
    data.encoder_state = model.encoder_state();
  }
  index::Manifest manifest = index::write_export(data, out_dir, options);
  spdlog::info("exported {} ({} items, {} users, dim {}) to {}", model.name(), dataset.item_count(), users, data.dim,
               out_dir);
  return manifest;
}

std::unique_ptr<serve::HistoryEncoder> load_encoder(const std::string& encoder_dir, int64_t item_count,
                                                    int64_t user_count) {
  const std::string config_path = encoder_dir + "/" + index::kEncoderConfigFile;
  ConfigTable root = ConfigTable::parse_file(config_path);
  CheckedConfig checked = check_config(root);
  models::ModelContext context;
  context.item_count = static_cast<int32_t>(item_count);
  context.user_count = static_cast<int32_t>(user_count);
  context.device = torch::Device(checked.train_config.device);
  context.seed = static_cast<uint64_t>(checked.train_config.seed);
  const std::string state_path = encoder_dir + "/" + index::kEncoderStateFile;
  if (std::filesystem::exists(state_path)) context.encoder_state = read_file(state_path);
  std::unique_ptr<models::Model> model = checked.build_model(context);
  if (model->dim() <= 0 || !model->encodes_histories())
    fail("{}: model '{}' does not encode histories into user vectors", config_path, model->name());
  load_module(model->module(), encoder_dir + "/" + index::kEncoderWeightsFile);
  model->module().eval();
  return std::make_unique<ExportEncoder>(std::move(model));
}

serve::EncoderFactory export_encoder_factory() {
  return [](const index::LoadedExport& loaded) -> std::unique_ptr<serve::HistoryEncoder> {
    if (loaded.encoder_dir().empty()) return nullptr;
    return load_encoder(loaded.encoder_dir(), loaded.manifest.item_count, loaded.manifest.user_count);
  };
}

}  // namespace embrec::train
