// Training-epoch seconds, full-ranking evaluation seconds and peak RSS on a real sequence dataset.
//   bench_sasrec_epoch DATA_FILE [--loss softmax|bce] [--layers N] [--epochs N] [--threads N] [--no-bucketing]
//   bench_sasrec_epoch --config FILE [--epochs N] [--threads N] [--no-bucketing]     any model's config (S4Rec, CL4SRec, ICLRec, ...)
// Skips (exit 0, with a message) when the data file is absent.
#include <sys/resource.h>

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <string>

#include "embrec/models/evaluate.h"
#include "embrec/train/experiment.h"
#include "embrec/train/trainer.h"
#include "embrec/util/allocator.h"
#include "embrec/util/error.h"

using namespace embrec;

static double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

int main(int argc, char** argv) {
  const bool tuned = embrec::tune_allocator();
  std::printf("allocator: %s\n", tuned ? "tcmalloc, release rate 0" : "default malloc");
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DATA_FILE|--config FILE [--loss softmax|bce] [--layers N] [--epochs N] [--threads N] [--no-bucketing]\n",
                 argv[0]);
    return 2;
  }
  std::string data_file = argv[1], config_file;
  std::string loss = "bce";
  int layers = 2, epochs = 1, threads = 2;
  bool bucketing = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i == 1 && arg != "--config") continue;
    if (arg == "--config" && i + 1 < argc) config_file = argv[++i];
    else if (arg == "--loss" && i + 1 < argc) loss = argv[++i];
    else if (arg == "--layers" && i + 1 < argc) layers = std::stoi(argv[++i]);
    else if (arg == "--epochs" && i + 1 < argc) epochs = std::stoi(argv[++i]);
    else if (arg == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (arg == "--no-bucketing") bucketing = false;
    else { std::fprintf(stderr, "unknown argument %s\n", arg.c_str()); return 2; }
  }
  if (config_file.empty() && !std::filesystem::exists(data_file)) {
    std::printf("SKIPPED: %s not found\n", data_file.c_str());
    return 0;
  }
  const std::string config = fmt::format(R"(
[data]
path = "{}"
format = "seq"
[model]
name = "sasrec"
dim = 64
layers = {}
heads = 2
max_length = 50
loss = "{}"
[train]
epochs = {}
batch_size = 256
threads = {}
length_bucketing = {}
eval_every = 1000000
patience = 1000000
)", std::filesystem::absolute(data_file).string(), layers, loss, epochs, threads, bucketing ? "true" : "false");
  train::Experiment experiment;
  if (config_file.empty()) {
    ConfigTable root = ConfigTable::parse_string(config, "<bench>");
    experiment = train::load_experiment(root);
  } else {
    try {
      std::vector<std::string> overrides = {fmt::format("train.epochs={}", epochs),
                                            fmt::format("train.threads={}", threads), "train.eval_every=1000000",
                                            "train.patience=1000000"};
      if (!bucketing) overrides.push_back("train.length_bucketing=false");  // else the config's own setting
      experiment = train::load_experiment_file(config_file, overrides);
    } catch (const Error& error) {
      std::printf("SKIPPED: %s\n", error.what());
      return 0;
    }
    loss = experiment.model->name() + " (" + config_file + ")";
  }
  const auto folder = std::filesystem::temp_directory_path() / ("embrec-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(folder);
  train::TrainSummary summary = train::train(experiment, {folder.string(), false, -1});
  // metrics.jsonl has the per-epoch seconds.
  std::FILE* lines = std::fopen((folder / "metrics.jsonl").c_str(), "r");
  char buffer[4096];
  while (lines && std::fgets(buffer, sizeof buffer, lines)) std::printf("epoch: %s", buffer);
  if (lines) std::fclose(lines);

  // Encoding alone: every user's test-stage history through the model.
  const auto encode_start = std::chrono::steady_clock::now();
  {
    const auto stage = data::make_eval_task(experiment.data.split, true);
    std::vector<int32_t> all(stage.history.user_count());
    std::iota(all.begin(), all.end(), 0);
    experiment.model->module().eval();
    auto vectors = experiment.model->user_vectors(stage.history, all.data(), static_cast<int32_t>(all.size()));
  }
  const double encode_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - encode_start).count();
  std::printf("encoding all users alone: %.3f s\n", encode_seconds);

  // A second, separately timed full-ranking evaluation of every test user.
  const auto task = data::make_eval_task(experiment.data.split, true);
  const auto start = std::chrono::steady_clock::now();
  auto result = models::evaluate_model(*experiment.model, task, experiment.data.dataset.item_count(),
                                       experiment.eval_config);
  const double eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("loss=%s layers=%d threads=%d bucketing=%d: train %.2f s for %d epoch(s) = %.2f s/epoch; "
              "full-ranking eval of %lld users incl. encoding %.3f s (as reported %.3f s); peak RSS %.0f MiB\n",
              loss.c_str(), layers, threads, bucketing, summary.train_seconds, epochs, summary.train_seconds / epochs,
              static_cast<long long>(result.all().users), eval_seconds, result.seconds, peak_rss_mib());
  std::filesystem::remove_all(folder);
  return 0;
}
