// The pre-training stage ([pretrain], S3-Rec on the demo data with attributes from a file): it runs before the
// training epochs and keeps its progress in checkpoint.pt, a run interrupted during it (or right after it) and
// resumed equals an uninterrupted one, fine-tuning starts from its weights, and its table is checked by name.
#include "embrec/train/trainer.h"

#include "train_fixtures.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "embrec/models/pretrain.h"
#include "embrec/train/checkpoint.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "../util/error_of.h"

namespace embrec::train {
namespace {

namespace fs = std::filesystem;

// Item attributes of the demo's items i1..i100 (`item|attr|attr` text), written once per process and removed at
// its end.
struct AttributeFile {
  std::string folder = temporary_folder("s3rec-attributes");
  std::string path = folder + "/items.txt";
  AttributeFile() {
    fs::create_directories(folder);
    std::ofstream out(path);
    for (int i = 1; i <= 100; ++i) out << "i" << i << "|c" << i % 5 << "|d" << i % 3 << "\n";
  }
  ~AttributeFile() { fs::remove_all(folder); }
};

const std::string& attribute_file() {
  static const AttributeFile file;
  return file.path;
}

std::string s3rec_config(const std::string& pretrain_table = "[pretrain]\nepochs = 3\nbatch_size = 64\n",
                         int64_t train_epochs = 2) {
  const std::string model = fmt::format(
      "name = \"s3rec\"\ndim = 8\nheads = 1\nlayers = 1\nmax_length = 6\n{}\n[data.item_features]\npath = \"{}\"\n"
      "format = \"attributes\"\n",
      pretrain_table, attribute_file());
  return small_config(model, train_epochs, 100, 100);
}

std::vector<nlohmann::json> json_lines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream text(read_file(path));
  for (std::string line; std::getline(text, line);) {
    nlohmann::json value = nlohmann::json::parse(line);
    value.erase("seconds");  // the only field that may differ between equal runs
    value.erase("eval_seconds");
    out.push_back(value);
  }
  return out;
}

// The parameters checkpoint.pt holds, by name, loaded into `experiment`'s model.
std::vector<std::pair<std::string, torch::Tensor>> checkpoint_parameters(Experiment& experiment,
                                                                         const std::string& path) {
  (void)load_checkpoint(experiment.model->module(), nullptr, path);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& entry : experiment.model->module().named_parameters())
    out.emplace_back(entry.key(), entry.value().detach().clone());
  return out;
}

void expect_same_parameters(const std::string& a, const std::string& b) {
  Experiment reader = experiment_from(s3rec_config());
  const auto left = checkpoint_parameters(reader, a), right = checkpoint_parameters(reader, b);
  ASSERT_EQ(left.size(), right.size());
  for (size_t p = 0; p < left.size(); ++p)
    EXPECT_TRUE(torch::equal(left[p].second, right[p].second)) << left[p].first;
}

TEST(Pretrain, RunsBeforeTrainingAndKeepsItsProgressInTheCheckpoint) {
  const std::string dir = temporary_folder("pretrain-progress");
  Experiment experiment = experiment_from(s3rec_config());
  // Stopped (as if killed) after two of the three pre-training epochs.
  const TrainSummary stopped = train(experiment, {dir, false, 2});
  EXPECT_TRUE(stopped.interrupted);
  EXPECT_EQ(stopped.pretrain_epochs_run, 2);
  const TrainerState state = load_checkpoint(experiment.model->module(), nullptr, dir + "/checkpoint.pt");
  EXPECT_EQ(state.pretrain_next_epoch, 2);
  EXPECT_EQ(state.next_epoch, 0);
  EXPECT_FALSE(fs::exists(dir + "/metrics.jsonl"));  // no training epoch yet
  const std::vector<nlohmann::json> lines = json_lines(dir + "/pretrain.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  for (const char* part : {"aap", "mip", "map", "sp"}) EXPECT_GT(lines[1]["parts"][part].get<double>(), 0.0) << part;

  Experiment again = experiment_from(s3rec_config());
  const TrainSummary resumed = train(again, {dir, true, -1});
  EXPECT_FALSE(resumed.interrupted);
  EXPECT_EQ(resumed.pretrain_epochs_run, 3);
  EXPECT_EQ(resumed.epochs_run, 2);
  EXPECT_EQ(json_lines(dir + "/pretrain.jsonl").size(), 3u);
  EXPECT_EQ(json_lines(dir + "/metrics.jsonl").size(), 2u);
  const nlohmann::json results = nlohmann::json::parse(read_file(dir + "/results.json"));
  EXPECT_EQ(results["pretrain_epochs"].get<int64_t>(), 3);
  fs::remove_all(dir);
}

TEST(Pretrain, ARunResumedDuringOrRightAfterPretrainingEqualsAnUninterruptedOne) {
  const std::string straight_dir = temporary_folder("pretrain-straight");
  Experiment straight = experiment_from(s3rec_config());
  const TrainSummary straight_summary = train(straight, {straight_dir, false, -1});
  // Stops after pre-training epoch 2 (during the stage) and after epoch 3 (the stage done, no training epoch yet).
  for (int64_t stop_after : {2, 3}) {
    SCOPED_TRACE(stop_after);
    const std::string dir = temporary_folder("pretrain-resumed");
    Experiment first = experiment_from(s3rec_config());
    EXPECT_TRUE(train(first, {dir, false, stop_after}).interrupted);
    Experiment second = experiment_from(s3rec_config());
    const TrainSummary resumed = train(second, {dir, true, -1});
    EXPECT_EQ(resumed.test.value("ndcg@10"), straight_summary.test.value("ndcg@10"));
    EXPECT_EQ(json_lines(dir + "/pretrain.jsonl"), json_lines(straight_dir + "/pretrain.jsonl"));
    EXPECT_EQ(json_lines(dir + "/metrics.jsonl"), json_lines(straight_dir + "/metrics.jsonl"));
    expect_same_parameters(dir + "/checkpoint.pt", straight_dir + "/checkpoint.pt");
    fs::remove_all(dir);
  }
  fs::remove_all(straight_dir);
}

TEST(Pretrain, FineTuningStartsFromThePretrainedWeights) {
  const std::string dir = temporary_folder("pretrain-handover");
  Experiment experiment = experiment_from(s3rec_config());
  torch::nn::Module& module = experiment.model->module();
  std::vector<torch::Tensor> initial;
  for (const torch::Tensor& parameter : module.parameters()) initial.push_back(parameter.detach().clone());
  const models::Pretrainable* stage = models::pretrain_stage(*experiment.model);
  ASSERT_NE(stage, nullptr);
  const int64_t pretrain_batches = 3 * ((stage->pretrain_sample_count() + 63) / 64);
  // stop_requested is asked before every batch: the call after the last pre-training batch comes before the first
  // training step. checkpoint.pt then holds the last pre-training epoch.
  Experiment reader = experiment_from(s3rec_config());  // built here: building one reseeds torch
  int64_t calls = 0;
  bool compared = false;
  TrainOptions options{dir, false, -1};
  options.stop_requested = [&] {
    if (++calls != pretrain_batches + 1) return false;
    const auto pretrained = checkpoint_parameters(reader, dir + "/checkpoint.pt");
    const std::vector<torch::Tensor> live = module.parameters();
    EXPECT_EQ(live.size(), pretrained.size());
    bool moved = false;
    for (size_t p = 0; p < live.size() && p < pretrained.size(); ++p) {
      EXPECT_TRUE(torch::equal(live[p], pretrained[p].second)) << pretrained[p].first;
      moved = moved || !torch::equal(live[p], initial[p]);
    }
    EXPECT_TRUE(moved) << "pre-training left the weights where they started";
    compared = true;
    return false;
  };
  const TrainSummary summary = train(experiment, options);
  EXPECT_TRUE(compared);
  EXPECT_EQ(summary.epochs_run, 2);
  fs::remove_all(dir);
}

TEST(Pretrain, DefaultsApplyWithoutTheTableAndZeroEpochsSkipTheStage) {
  Experiment defaults = experiment_from(s3rec_config(""));
  const models::Pretrainable* stage = models::pretrain_stage(*defaults.model);
  ASSERT_NE(stage, nullptr);
  EXPECT_EQ(stage->pretrain_schedule().epochs, 100);
  EXPECT_EQ(stage->pretrain_schedule().batch_size, 100);
  EXPECT_NE(defaults.resolved_toml.find("[pretrain]"), std::string::npos) << defaults.resolved_toml;

  const std::string dir = temporary_folder("pretrain-none");
  Experiment none = experiment_from(s3rec_config("[pretrain]\nepochs = 0\n", 1));
  const TrainSummary summary = train(none, {dir, false, -1});
  EXPECT_EQ(summary.pretrain_epochs_run, 0);
  EXPECT_EQ(summary.epochs_run, 1);
  EXPECT_FALSE(fs::exists(dir + "/pretrain.jsonl"));
  fs::remove_all(dir);
}

std::string check_error(const std::string& text) {
  return error_of([&] {
    ConfigTable root = ConfigTable::parse_string(text, "p.toml");
    (void)check_config(root);
  });
}

TEST(Pretrain, ItsTableIsAnErrorForAModelWithoutAStageAndBadKeysAreNamed) {
  const std::string data = "[data]\ndemo = 'default'\n";
  EXPECT_EQ(check_error(data + "[model]\nname = 'sasrec'\n[pretrain]\nepochs = 3\n"),
            "p.toml: [pretrain] applies only to models with a pre-training stage (s3rec); model 'sasrec' has none");
  const std::string s3rec = data + "[model]\nname = 's3rec'\n[pretrain]\n";
  EXPECT_EQ(check_error(s3rec + "epoch = 3\n"), "p.toml: unknown key 'pretrain.epoch'");
  EXPECT_EQ(check_error(s3rec + "batch_size = 0\n"), "p.toml: key 'pretrain.batch_size' must be positive, got 0");
  EXPECT_NE(check_error(s3rec + "mask_p = 1.5\n").find("'pretrain.mask_p'"), std::string::npos);
  EXPECT_NE(check_error(s3rec + "sp_weight = 'high'\n").find("'pretrain.sp_weight'"), std::string::npos);
  EXPECT_EQ(check_error(s3rec + "epochs = 2\nmask_p = 0.3\n"), "(no error)");
}

}  // namespace
}  // namespace embrec::train
