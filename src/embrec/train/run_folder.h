// A finished run folder (config.toml, best.pt, results.json, ...) put to use: loaded and evaluated again, its
// cluster report, its serving export (item index, user store, manifest), and the online encoder that turns a fresh
// history into a user vector with the run's model for the server.
#pragma once

#include <memory>
#include <string>

#include "embrec/data/dataset.h"
#include "embrec/eval/evaluator.h"
#include "embrec/index/export.h"
#include "embrec/models/model.h"
#include "embrec/serve/encoder.h"
#include "embrec/train/experiment.h"

namespace embrec::train {

// Loads run_dir's config, its data and its best checkpoint (model fitted and in eval mode).
Experiment load_run(const std::string& run_dir);

// The stages a run is evaluated on: valid, test, and with cold items held out ([data.split] cold_item_ratio) the
// cold-start stage (data::make_cold_task).
enum class EvalStage { Valid, Test, Cold };
inline const Names<EvalStage> kEvalStageNames = {
    {"valid", EvalStage::Valid}, {"test", EvalStage::Test}, {"cold", EvalStage::Cold}};

// Loads run_dir's config and best checkpoint and evaluates one stage; writes eval-<stage>.json. The cold stage of
// a run without cold items is an Error.
eval::EvalResult evaluate_run(const std::string& run_dir, EvalStage stage = EvalStage::Test);

// For models with clusters: each user's cluster, from the user's training history as during training; -1 for users
// without one.
std::vector<int32_t> user_clusters(models::Model& model, const data::Sequences& train);

// For models with clusters: each user's cluster, as clusters.json (head/tail counts per cluster) and clusters.svg.
void write_cluster_report(models::Model& model, const data::Split& split, double head_share,
                          const std::string& dataset_name, const std::string& run_dir);

// The table printed after training and by `embrec eval`.
std::string results_table(const eval::EvalResult& result, const eval::EvalConfig& config);

// Exports run_dir's best model: item vectors into the index, one vector per known user computed from the user's
// whole known history (train + valid + test) with those items as "seen", the id maps, and for models that encode
// histories the resolved config and weights as the export's encoder, so the server can encode new histories
// without the run folder. Models without vectors are an Error. Items with no training interactions (cold items,
// an item seen only in a valid or test target) stay known (ids, histories) but are left out of the index: their
// vectors are untrained. `cold_items` indexes them too, for models that place them by features
// (Model::places_untrained_items; an Error for others).
index::Manifest export_run(const std::string& run_dir, const std::string& out_dir, const index::ExportOptions& options,
                           bool cold_items = false);

// The history encoder in an export's encoder folder (index/export.h): the model built from its config.toml for
// `item_count` items and `user_count` users, with model.pt's weights (verified, finite). No data is read.
// Thread-safe: requests are serialised on one model, without autograd. A model that does not encode histories is
// an Error.
std::unique_ptr<serve::HistoryEncoder> load_encoder(const std::string& encoder_dir, int64_t item_count,
                                                    int64_t user_count);

// For the server: load_encoder of each export loaded; null for an export without an encoder.
serve::EncoderFactory export_encoder_factory();

}  // namespace embrec::train
