// Run folder -> export folder, and the run's model as a HistoryEncoder.
#include "embrec/train/export_run.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <mutex>
#include <numeric>

#include "embrec/train/trainer.h"
#include "embrec/util/error.h"

namespace embrec::train {

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
