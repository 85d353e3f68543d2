// The training loop: resume equals an uninterrupted run, NaN stops training keeping the last good checkpoint,
// run folders refuse to be overwritten, and SASRec learns the demo data's signal far better than popularity.
#include "embrec/train/trainer.h"

#include "train_fixtures.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "embrec/models/rlrmc.h"
#include "embrec/train/checkpoint.h"
#include "embrec/train/run_folder.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "../util/error_of.h"

namespace embrec::train {
namespace {

namespace fs = std::filesystem;

const char* kSmallSasrec = "name = 'sasrec'\ndim = 16\nheads = 1\nlayers = 1\nmax_length = 20";

// S4Rec with every part on: augmented views, Sinkhorn, the adversary; the k-means variant re-clusters each epoch.
const char* kSmallS4rec =
    "name = 's4rec'\ndim = 16\nheads = 1\nlayers = 1\nmax_length = 20\nclusters = 4\ngrl_scale = 0.1";
const char* kSmallIclrec =
    "name = 's4rec'\ndim = 16\nheads = 1\nlayers = 1\nmax_length = 20\nclusters = 4\nclustering = 'kmeans'\n"
    "alpha = 0.0\nbeta2 = 0.0\nlambda = 0.0\nicl_weight = 0.1\nprototype_negatives = false";

// `train_keys` are extra lines of the [train] table.
void expect_resume_equals_uninterrupted(const std::string& model_text, const std::string& train_keys = "") {
  std::string text = small_config(model_text, 4);
  text.replace(text.find("[train]\n"), 8, "[train]\n" + train_keys);
  const std::string straight_dir = temporary_folder("straight"), resumed_dir = temporary_folder("resumed");

  Experiment straight = experiment_from(text);
  TrainSummary straight_summary = train(straight, {straight_dir, false, -1});

  Experiment first_half = experiment_from(text);
  TrainSummary interrupted = train(first_half, {resumed_dir, false, 2});
  EXPECT_TRUE(interrupted.interrupted);
  EXPECT_EQ(interrupted.epochs_run, 2);
  // As if killed after epoch 3's log line but before its checkpoint: the resumed run logs epoch 3 once, anew.
  append_line(resumed_dir + "/metrics.jsonl", R"({"epoch": 3, "loss": 123.0, "seconds": 1.0})");
  Experiment second_half = experiment_from(text);
  TrainSummary resumed = train(second_half, {resumed_dir, true, -1});

  EXPECT_EQ(resumed.epochs_run, 4);
  EXPECT_EQ(resumed.best_epoch, straight_summary.best_epoch);
  auto a = straight.model->module().parameters();
  auto b = second_half.model->module().parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  EXPECT_EQ(straight_summary.test.value("ndcg@10"), resumed.test.value("ndcg@10"));
  // The per-epoch logs agree line by line on losses and validation metrics (timings differ, of course).
  auto lines = [](const std::string& path) {
    std::vector<nlohmann::json> out;
    std::istringstream text(read_file(path));
    for (std::string line; std::getline(text, line);) {
      auto json = nlohmann::json::parse(line);
      out.push_back({{"epoch", json["epoch"]}, {"loss", json["loss"]}, {"valid", json["valid"]}});
    }
    return out;
  };
  EXPECT_EQ(lines(straight_dir + "/metrics.jsonl"), lines(resumed_dir + "/metrics.jsonl"));
  EXPECT_EQ(lines(resumed_dir + "/metrics.jsonl").size(), 4u);
  fs::remove_all(straight_dir);
  fs::remove_all(resumed_dir);
}

TEST(Trainer, ResumeReachesTheSameResultAsAnUninterruptedRun) { expect_resume_equals_uninterrupted(kSmallSasrec); }

TEST(Trainer, AStopRequestedMidEpochDropsThatEpochAndResumeEqualsAnUninterruptedRun) {
  const std::string text = small_config(kSmallSasrec, 3);
  const std::string straight_dir = temporary_folder("straight-stop"), stopped_dir = temporary_folder("stopped");
  Experiment straight = experiment_from(text);
  const TrainSummary straight_summary = train(straight, {straight_dir, false, -1});

  // Asked before every batch: yes before the third batch of the second epoch (once epoch 1's checkpoint exists).
  int64_t asked_in_epoch_two = 0;
  const auto stop = [&] { return fs::exists(stopped_dir + "/checkpoint.pt") && ++asked_in_epoch_two >= 3; };
  Experiment first = experiment_from(text);
  const TrainSummary stopped = train(first, {stopped_dir, false, -1, stop});
  EXPECT_TRUE(stopped.interrupted);
  EXPECT_EQ(asked_in_epoch_two, 3);  // asked before each batch, and nothing more once it said yes
  EXPECT_EQ(stopped.epochs_run, 1);  // the epoch under way is dropped, the checkpoint holds epoch 1
  EXPECT_FALSE(fs::exists(stopped_dir + "/results.json"));
  Experiment probe = experiment_from(text);
  EXPECT_EQ(load_checkpoint(probe.model->module(), nullptr, stopped_dir + "/checkpoint.pt").next_epoch, 1);

  Experiment second = experiment_from(text);
  const TrainSummary resumed = train(second, {stopped_dir, true, -1});
  EXPECT_EQ(resumed.epochs_run, 3);
  auto a = straight.model->module().parameters();
  auto b = second.model->module().parameters();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  EXPECT_EQ(straight_summary.test.value("ndcg@10"), resumed.test.value("ndcg@10"));
  fs::remove_all(straight_dir);
  fs::remove_all(stopped_dir);
}

TEST(Trainer, ResumeIsExactForS4recAndItsKmeansVariant) {
  expect_resume_equals_uninterrupted(kSmallS4rec);
  expect_resume_equals_uninterrupted(kSmallIclrec);
}

TEST(Trainer, ResumeIsExactForGru4recInBothBatchingModesAndWithAdagrad) {
  // Session-parallel batches carry each slot's state from batch to batch; an epoch starts afresh, so a resumed
  // run replays exactly. Adagrad's accumulators travel in the checkpoint as Adam's moments do.
  expect_resume_equals_uninterrupted("name = 'gru4rec'\ndim = 8\nloss = 'bpr_max'\nshared_negatives = 16",
                                     "optimizer = 'adagrad'\nlearning_rate = 0.05\n");
  expect_resume_equals_uninterrupted("name = 'gru4rec'\ndim = 8\nbatching = 'padded'\nmax_length = 20");
}

TEST(Trainer, ResumeIsExactForBert4recAndCaserWhoseLossesDraw) {
  // The cloze masks and Caser's negatives come from torch's generator, seeded per epoch by the trainer.
  expect_resume_equals_uninterrupted("name = 'bert4rec'\ndim = 8\nheads = 1\nlayers = 1\nmax_length = 20");
  expect_resume_equals_uninterrupted("name = 'caser'\ndim = 8");
}

TEST(Trainer, S4recWritesTheClusterHistogramOfHeadAndTailUsers) {
  const std::string dir = temporary_folder("clusters");
  Experiment experiment = experiment_from(small_config(kSmallS4rec, 1));
  train(experiment, {dir, false, -1});
  const auto histogram = nlohmann::json::parse(read_file(dir + "/clusters.json"));
  ASSERT_EQ(histogram["clusters"].size(), 4u);
  int64_t head = 0, tail = 0;
  for (const auto& cluster : histogram["clusters"]) {
    head += cluster["head"].get<int64_t>();
    tail += cluster["tail"].get<int64_t>();
  }
  // 300 demo users, all with a training history; 20 % of them head.
  EXPECT_EQ(head, 60);
  EXPECT_EQ(tail, 240);
  EXPECT_NE(read_file(dir + "/clusters.svg").find("</svg>"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Trainer, RefusesToOverwriteARunAndToResumeNothing) {
  const std::string text = small_config("name = 'pop'", 1);
  const std::string dir = temporary_folder("overwrite");
  Experiment first = experiment_from(text);
  train(first, {dir, false, -1});
  Experiment second = experiment_from(text);
  const std::string overwrite = error_of([&] { train(second, {dir, false, -1}); });
  EXPECT_NE(overwrite.find("already holds a run"), std::string::npos) << overwrite;
  Experiment third = experiment_from(text);
  const std::string empty = temporary_folder("empty");
  const std::string resume = error_of([&] { train(third, {empty, true, -1}); });
  EXPECT_NE(resume.find("nothing to resume"), std::string::npos) << resume;
  fs::remove_all(dir);
  fs::remove_all(empty);
}

TEST(Trainer, AFolderThatAnotherProcessTrainsIsRefusedAndLeftAsItIs) {
  const std::string text = small_config("name = 'pop'", 1);
  const std::string dir = temporary_folder("locked");
  Experiment first = experiment_from(text);
  train(first, {dir, false, -1});
  const std::string results = read_file(dir + "/results.json");
  {
    const FolderLock held(dir, "training");  // as a second `embrec train` on the folder would find it
    Experiment again = experiment_from(text);
    const std::string message = error_of([&] { train(again, {dir, true, -1}); });
    EXPECT_NE(message.find(fmt::format("another process (pid {}) is training this folder now", ::getpid())),
              std::string::npos)
        << message;
    EXPECT_EQ(read_file(dir + "/results.json"), results);
  }
  Experiment after = experiment_from(text);
  EXPECT_EQ(error_of([&] { train(after, {dir, true, -1}); }), "(no error)") << "the lock ends with its holder";
  fs::remove_all(dir);
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(Trainer, ResumeAcceptsAnotherThreadCountAndNewOptionsAndNamesAnyOtherChange) {
  const std::string text = small_config(kSmallSasrec, 3);
  const std::string dir = temporary_folder("resume-config");
  Experiment first = experiment_from(text);
  train(first, {dir, false, 1});
  Experiment more_threads = experiment_from(replace_once(text, "threads = 1", "threads = 2"));
  EXPECT_EQ(train(more_threads, {dir, true, 1}).epochs_run, 2);
  Experiment other_rate = experiment_from(replace_once(text, "batch_size = 64", "batch_size = 64\nlearning_rate = 0.01"));
  const std::string message = error_of([&] { train(other_rate, {dir, true, -1}); });
  EXPECT_NE(message.find("differs from the run's config.toml"), std::string::npos) << message;
  EXPECT_NE(message.find("train.learning_rate: the run has 0.001, this config 0.01"), std::string::npos) << message;
  // A key the run's config.toml lacks is an option added since the run began: resuming takes its default.
  std::string saved = read_file(dir + "/config.toml");
  const size_t at = saved.find("length_bucketing = true\n");
  ASSERT_NE(at, std::string::npos) << saved;
  write_file_atomic(dir + "/config.toml", saved.erase(at, std::string("length_bucketing = true\n").size()));
  Experiment newer = experiment_from(text);
  EXPECT_EQ(train(newer, {dir, true, -1}).epochs_run, 3);
  fs::remove_all(dir);
}

TEST(Trainer, WithoutAValidStageTheLastEpochIsKept) {
  const std::string text =
      small_config("name = 'mf'\nloss = 'bpr'\ndim = 8", 3) + "[data.split]\nmethod = 'stratified'\nvalid_ratio = 0.0\n";
  const std::string dir = temporary_folder("no-valid");
  Experiment experiment = experiment_from(text);
  const TrainSummary summary = train(experiment, {dir, false, -1});
  EXPECT_EQ(summary.best_epoch, 3);
  std::istringstream lines(read_file(dir + "/metrics.jsonl"));
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) EXPECT_FALSE(nlohmann::json::parse(line).contains("valid"));
  EXPECT_EQ(count, 3);
  EXPECT_GT(summary.test.value("ndcg@10"), 0.0);
  fs::remove_all(dir);
}

TEST(Trainer, SelectingARatingMetricNeedsARatingModel) {
  const std::string text = replace_once(small_config("name = 'pop'", 1), "select = \"ndcg@10\"", "select = \"rmse\"");
  const std::string dir = temporary_folder("rating-select");
  Experiment experiment = experiment_from(text);
  const std::string message = error_of([&] { train(experiment, {dir, false, -1}); });
  EXPECT_NE(message.find("predicts ratings"), std::string::npos) << message;
  fs::remove_all(dir);
}

TEST(Trainer, LoadingAnRlrmcRunRestoresItsFactorsWithoutOptimisingAgain) {
  // A small rated log (u.data format: user, item, rating, time), 30 users x 12 items, each user rating 8 items.
  const std::string dir = temporary_folder("rlrmc-load"), log = dir + ".data";
  {
    std::string text;
    for (int u = 0; u < 30; ++u)
      for (int j = 0; j < 8; ++j)
        text += fmt::format("{}\t{}\t{}\t{}\n", u + 1, (u + 3 * j) % 12 + 1, 1 + (u + j) % 5, 1000 + 10 * j);
    write_file_atomic(log, text);
  }
  const std::string config = fmt::format(R"(
[data]
path = "{}"
format = "udata"
[data.split]
method = "stratified"
valid_ratio = 0.0
[model]
name = "rlrmc"
rank = 2
max_iterations = 5
log_every = 0
[train]
threads = 1
[eval]
ks = [5]
metrics = ["ndcg"]
select = "ndcg@5"
)", log);
  Experiment experiment = experiment_from(config);
  const TrainSummary summary = train(experiment, {dir, false, -1});
  EXPECT_GT(dynamic_cast<models::Rlrmc&>(*experiment.model).trace().iterations, 0);
  Experiment loaded = load_run(dir);
  EXPECT_EQ(dynamic_cast<models::Rlrmc&>(*loaded.model).trace().iterations, 0);  // restored, not re-fitted
  const eval::EvalResult again = evaluate_run(dir, EvalStage::Test);
  EXPECT_DOUBLE_EQ(again.value("rmse"), summary.test.value("rmse"));
  EXPECT_DOUBLE_EQ(again.value("ndcg@5"), summary.test.value("ndcg@5"));
  fs::remove_all(dir);
  fs::remove(log);
}

// A model whose loss turns NaN at its seventh batch, to exercise the guard.
class NanModel final : public models::Model {
 public:
  struct Config {
    static Config from(ConfigTable&) { return {}; }
  };
  NanModel(const Config&, const models::ModelContext&) {
    weight_ = module_.register_parameter("weight", torch::ones({1}));
  }
  std::string name() const override { return "nan_test"; }
  bool trainable() const override { return true; }
  torch::nn::Module& module() override { return module_; }
  models::LossParts loss(const models::TensorBatch&) override {
    auto value = (weight_ * weight_).sum();
    if (++calls_ >= 7) value = value * std::numeric_limits<double>::quiet_NaN();
    return {value, {{"sr", value}}};
  }
  int64_t dim() const override { return 1; }
  torch::Tensor user_vectors(const data::Sequences&, const int32_t*, int32_t count) override {
    return torch::ones({count, 1});
  }
  torch::Tensor item_vectors() override { return torch::ones({100, 1}); }

 private:
  torch::nn::Module module_;
  torch::Tensor weight_;
  int calls_ = 0;
};
EMBREC_REGISTER_MODEL("nan_test", NanModel);

TEST(Trainer, NonFiniteLossStopsWithAClearMessageAndKeepsTheLastCheckpoint) {
  // 300 users in batches of 64: 5 batches an epoch, so epoch 1 completes and batch 2 of epoch 2 meets the NaN.
  const std::string text = small_config("name = 'nan_test'", 3);
  const std::string dir = temporary_folder("nan");
  Experiment experiment = experiment_from(text);
  const std::string message = error_of([&] { train(experiment, {dir, false, -1}); });
  EXPECT_NE(message.find("loss is nan"), std::string::npos) << message;
  EXPECT_NE(message.find("epoch 2 batch 2"), std::string::npos) << message;
  EXPECT_NE(message.find("last good checkpoint is kept"), std::string::npos) << message;
  EXPECT_TRUE(file_exists(dir + "/config.toml"));
  // Epoch 1's checkpoint is intact: resuming from it starts at epoch 2 (a fresh NaN model fails at its 7th batch,
  // which is now batch 2 of epoch 3).
  ASSERT_TRUE(file_exists(dir + "/checkpoint.pt"));
  Experiment again = experiment_from(text);
  const std::string resumed = error_of([&] { train(again, {dir, true, -1}); });
  EXPECT_NE(resumed.find("epoch 3 batch 2"), std::string::npos) << resumed;
  fs::remove_all(dir);
}

TEST(Trainer, SasrecBeatsPopularityOnTheDemoDataByAWideMargin) {
  const std::string pop_dir = temporary_folder("pop"), sasrec_dir = temporary_folder("sasrec");
  Experiment pop = experiment_from(small_config("name = 'pop'", 1, 1000, 300));
  const double pop_hr = train(pop, {pop_dir, false, -1}).test.value("hr@10");
  Experiment sasrec = experiment_from(
      small_config("name = 'sasrec'\ndim = 32\nheads = 2\nlayers = 1\nmax_length = 30\ndropout = 0.1\n"
                   "attention_dropout = 0.1",
                   12, 1000, 300));
  const double sasrec_hr = train(sasrec, {sasrec_dir, false, -1}).test.value("hr@10");
  EXPECT_GT(sasrec_hr, 2.0 * pop_hr) << "sasrec " << sasrec_hr << " vs pop " << pop_hr;
  EXPECT_GT(sasrec_hr - pop_hr, 0.15) << "sasrec " << sasrec_hr << " vs pop " << pop_hr;
  fs::remove_all(pop_dir);
  fs::remove_all(sasrec_dir);
}

}  // namespace
}  // namespace embrec::train
