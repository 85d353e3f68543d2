// A trained run exports to a loadable index and user store, and the export's own encoder reproduces the exported
// (offline) user vectors from the same histories, after the run folder is gone and the export has moved.
#include "embrec/train/run_folder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "embrec/data/features.h"
#include "embrec/train/trainer.h"
#include "embrec/util/error.h"
#include "train_fixtures.h"
#include "../util/error_of.h"

namespace embrec::train {
namespace {

TEST(RunFolder, ARunWithFeaturesAndRelativePathsLoadsFromItsOwnFolder) {
  // A config beside its data, naming every file relatively; the run folder is elsewhere.
  const std::filesystem::path folder = temporary_folder("features-config");
  std::filesystem::create_directories(folder / "data");
  std::string log, items, users;
  for (int u = 0; u < 30; ++u)
    for (int j = 0; j < 6; ++j) log += fmt::format("u{}\ti{}\t{}\n", u, (u + 3 * j) % 12, j);
  for (int i = 0; i < 12; ++i) items += fmt::format("i{}\tc{}|d{}\n", i, i % 3, i % 2);
  for (int u = 0; u < 30; ++u) users += fmt::format("u{}\tg{}\n", u, u % 2);
  std::ofstream(folder / "data" / "log.tsv") << "user_id\titem_id\ttimestamp\n" << log;
  std::ofstream(folder / "data" / "items.tsv") << "item_id\ttags\n" << items;
  std::ofstream(folder / "data" / "users.tsv") << "user_id\tgroup\n" << users;
  std::ofstream(folder / "config.toml") << R"([data]
path = "data/log.tsv"
format = "tsv"
timestamp_column = "timestamp"
[data.item_features]
path = "data/items.tsv"
multi_columns = ["tags"]
[data.user_features]
path = "data/users.tsv"
[data.split]
cold_item_ratio = 0.2
[model]
name = "two_tower"
dim = 8
embedding_dim = 4
hidden = []
[train]
epochs = 1
threads = 1
[eval]
ks = [5]
metrics = ["recall"]
select = "recall@5"
item_groups = true
)";
  const std::string run_dir = temporary_folder("features-run");
  Experiment experiment = load_experiment_file((folder / "config.toml").string());
  EXPECT_EQ(experiment.data.dataset.item_features.field_count(), 1);
  EXPECT_EQ(experiment.data.dataset.user_features.field_count(), 1);
  const TrainSummary summary = train(experiment, {run_dir, false, -1});
  EXPECT_FALSE(summary.cold.groups.empty());
  EXPECT_EQ(summary.test.group_names,
            (std::vector<std::string>{"all", "head", "tail", "head_items", "tail_items"}));
  // From the run folder alone, wherever the current directory is.
  const eval::EvalResult cold = evaluate_run(run_dir, EvalStage::Cold);
  EXPECT_EQ(cold.all().values.at("recall@5"), summary.cold.all().values.at("recall@5"));

  // The export leaves the cold items (no training interactions) out of the index unless asked; both serve a fresh
  // user from user features through the export's own encoder (vocabularies in encoder/state.json).
  const std::vector<uint8_t> trained = data::items_in(experiment.data.split.train, experiment.data.dataset.item_count());
  const int64_t trained_count = std::count(trained.begin(), trained.end(), uint8_t{1});
  ASSERT_LT(trained_count, experiment.data.dataset.item_count());
  for (const bool cold_items : {false, true}) {
    const index::Manifest manifest = export_run(run_dir, run_dir + "/export", {}, cold_items);
    index::LoadedExport loaded = index::load_export(run_dir + "/export");
    EXPECT_EQ(loaded.manifest.item_count, experiment.data.dataset.item_count());
    EXPECT_EQ(loaded.index.size(), cold_items ? experiment.data.dataset.item_count() : trained_count);
    for (int32_t item = 0; item < experiment.data.dataset.item_count(); ++item)
      EXPECT_EQ(loaded.index.contains(item), cold_items || trained[item]) << item;
    EXPECT_FALSE(manifest.encoder_state_checksum.empty());
    auto encoder = export_encoder_factory()(loaded);
    ASSERT_TRUE(encoder);
    EXPECT_TRUE(encoder->takes_features());
    EXPECT_EQ(encoder->encode_user({}, {{"group", {"g1"}}}).size(), 8u);
    EXPECT_NE(encoder->encode_user({}, {{"group", {"g1"}}}), encoder->encode_user({}, {{"group", {"g0"}}}));
    EXPECT_THROW(encoder->encode_user({0}, {{"age", {"30"}}}), InputError);
  }
  std::filesystem::remove_all(folder);
  std::filesystem::remove_all(run_dir);
}

TEST(ExportRun, OnlineEncodingEqualsTheExportedUserVectors) {
  const std::string run_dir = temporary_folder("export-run"), out = temporary_folder("export-out") + "/export";
  const std::string moved = temporary_folder("export-moved");
  for (const char* model : {"name = 'sasrec'\ndim = 16\nheads = 1\nlayers = 1\nmax_length = 20",
                            "name = 's4rec'\ndim = 16\nheads = 1\nlayers = 1\nmax_length = 20\nclusters = 4",
                            "name = 'gru4rec'\ndim = 16\nmax_length = 20",
                            "name = 'bert4rec'\ndim = 16\nheads = 1\nlayers = 1\nmax_length = 20",
                            "name = 'caser'\ndim = 8\nuser_embedding = false"}) {
    std::filesystem::remove_all(run_dir);
    Experiment experiment = experiment_from(small_config(model, 1));
    train(experiment, {run_dir, false, -1});
    index::ExportOptions options;
    // Their item vectors are embeddings: an item never trained on would be indexed with its random start.
    EXPECT_THROW(export_run(run_dir, out, options, /*cold_items=*/true), Error);
    index::Manifest manifest = export_run(run_dir, out, options);
    // Self-contained: it serves without the run folder, from another place.
    std::filesystem::remove_all(run_dir);
    std::filesystem::remove_all(moved);
    std::filesystem::copy(out, moved, std::filesystem::copy_options::recursive);
    index::LoadedExport loaded = index::load_export(moved);
    EXPECT_EQ(loaded.manifest.model, manifest.model);
    EXPECT_EQ(loaded.manifest.user_count, experiment.data.dataset.user_count());
    EXPECT_EQ(loaded.manifest.item_count, experiment.data.dataset.item_count());

    auto encoder = export_encoder_factory()(loaded);
    ASSERT_TRUE(encoder);
    const data::Sequences& all = experiment.data.dataset.interactions;
    for (int32_t user : {0, 7, 123, 299}) {
      const std::string& external = experiment.data.dataset.users.external(user);
      const auto internal = loaded.store.user_id(external);
      ASSERT_TRUE(internal.has_value()) << external;
      const auto stored = loaded.store.user_vector(*internal);
      ASSERT_TRUE(stored.has_value());
      const std::vector<int32_t> history(all.begin(user), all.end(user));
      const std::vector<float> online = encoder->encode(history);
      ASSERT_EQ(online.size(), stored->size());
      for (size_t d = 0; d < online.size(); ++d) EXPECT_NEAR(online[d], (*stored)[d], 1e-5) << external << " dim " << d;
      // Seen items are the whole known history.
      EXPECT_EQ(loaded.store.seen_items(*internal).value_or(std::vector<int32_t>{}).size(), history.size());
    }
  }
  std::filesystem::remove_all(run_dir);
  std::filesystem::remove_all(std::filesystem::path(out).parent_path());
  std::filesystem::remove_all(moved);
}

TEST(ExportRun, UserIdModelsExportTheirVectorsButNoHistoryEncoder) {
  // MF's user vectors belong to user ids: the export serves known users (vectors equal the model's), and carries
  // no encoder, so a fresh history is refused rather than answered with some other user's vector.
  const std::string run_dir = temporary_folder("export-mf"), out = run_dir + "/export";
  Experiment experiment = experiment_from(small_config("name = 'mf'\nloss = 'bpr'\ndim = 8", 1));
  train(experiment, {run_dir, false, -1});
  export_run(run_dir, out, {});
  index::LoadedExport loaded = index::load_export(out);
  EXPECT_EQ(loaded.manifest.dimension, 9);  // 8 factors and the item bias
  EXPECT_TRUE(loaded.manifest.encoder.empty());
  EXPECT_FALSE(export_encoder_factory()(loaded));
  Experiment reloaded = load_run(run_dir);
  const int32_t user = 5;
  const torch::Tensor expected = reloaded.model->user_vectors({}, &user, 1);
  const auto internal = loaded.store.user_id(experiment.data.dataset.users.external(user));
  ASSERT_TRUE(internal.has_value());
  const auto stored = loaded.store.user_vector(*internal);
  ASSERT_TRUE(stored.has_value());
  for (int64_t d = 0; d < expected.size(1); ++d) EXPECT_FLOAT_EQ((*stored)[d], expected[0][d].item<float>());
  // An encoder folder holding such a model is refused, naming its config.
  std::filesystem::create_directories(run_dir + "/encoder");
  std::filesystem::copy_file(run_dir + "/config.toml", run_dir + "/encoder/config.toml");
  std::filesystem::copy_file(run_dir + "/best.pt", run_dir + "/encoder/model.pt");
  const std::string message =
      error_of([&] { load_encoder(run_dir + "/encoder", loaded.manifest.item_count, loaded.manifest.user_count); });
  EXPECT_NE(message.find("encoder/config.toml: model 'mf' does not encode histories"), std::string::npos) << message;
  std::filesystem::remove_all(run_dir);
}

TEST(ExportRun, CountBasedModelsHaveNothingToExport) {
  const std::string run_dir = temporary_folder("export-pop");
  Experiment experiment = experiment_from(small_config("name = 'pop'", 1));
  train(experiment, {run_dir, false, -1});
  const std::string message = error_of([&] { export_run(run_dir, run_dir + "/export", {}); });
  EXPECT_NE(message.find("has no item and user vectors"), std::string::npos) << message;
  std::filesystem::remove_all(run_dir);
}

}  // namespace
}  // namespace embrec::train
