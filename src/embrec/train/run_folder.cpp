// Run folder -> the loaded run, its evaluation, its cluster report, its export, and its model as a HistoryEncoder.
#include "embrec/train/run_folder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>

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

eval::EvalResult evaluate_run(const std::string& run_dir, bool test_stage) {
  Experiment experiment = load_run(run_dir);
  set_threads(experiment.train_config);
  models::Model& model = *experiment.model;
  const eval::UserGroups groups =
      eval::head_tail_groups(experiment.data.split.train, experiment.train_config.head_share);
  const data::EvalTask task = data::make_eval_task(experiment.data.split, test_stage);
  eval::EvalResult result =
      models::evaluate_model(model, task, experiment.data.dataset.item_count(), experiment.eval_config, &groups);
  write_file_atomic(run_dir + (test_stage ? "/eval-test.json" : "/eval-valid.json"), result.to_json().dump(2) + "\n");
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

class RunEncoder final : public serve::HistoryEncoder {
 public:
  explicit RunEncoder(const std::string& run_dir) : experiment_(load_run(run_dir)) {
    if (experiment_.model->dim() <= 0 || !experiment_.model->encodes_histories())
      fail("{}: model '{}' does not encode histories into user vectors", run_dir, experiment_.model->name());
  }
  std::vector<float> encode(const std::vector<int32_t>& items) override {
    data::Sequences history;
    history.push_user(items.data(), static_cast<int64_t>(items.size()));
    const int32_t user = 0;
    std::lock_guard<std::mutex> lock(mutex_);
    return to_vector(experiment_.model->user_vectors(history, &user, 1));
  }

 private:
  Experiment experiment_;
  std::mutex mutex_;
};

}  // namespace

index::Manifest export_run(const std::string& run_dir, const std::string& out_dir,
                           const index::ExportOptions& options) {
  Experiment experiment = load_run(run_dir);
  models::Model& model = *experiment.model;
  if (model.dim() <= 0) fail("{}: model '{}' has no item and user vectors to export", run_dir, model.name());
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
  // Models of user ids have no history encoder: the service answers 501 on the history route for them.
  if (model.encodes_histories()) data.encoder = std::filesystem::absolute(run_dir).lexically_normal().string();
  index::Manifest manifest = index::write_export(data, out_dir, options);
  spdlog::info("exported {} ({} items, {} users, dim {}) to {}", model.name(), dataset.item_count(), users, data.dim,
               out_dir);
  return manifest;
}

std::unique_ptr<serve::HistoryEncoder> load_run_encoder(const std::string& run_dir) {
  return std::make_unique<RunEncoder>(run_dir);
}

serve::EncoderFactory run_encoder_factory() {
  return [](const index::LoadedExport& loaded) -> std::unique_ptr<serve::HistoryEncoder> {
    if (loaded.manifest.encoder.empty()) return nullptr;
    return load_run_encoder(loaded.manifest.encoder);
  };
}

}  // namespace embrec::train
