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

// Loads run_dir's config and best checkpoint and evaluates the test stage (or valid); writes eval-test.json (or
// eval-valid.json).
eval::EvalResult evaluate_run(const std::string& run_dir, bool test_stage = true);

// For models with clusters: each user's cluster, from the user's training history as during training; -1 for users
// without one.
std::vector<int32_t> user_clusters(models::Model& model, const data::Sequences& train);

// For models with clusters: each user's cluster, as clusters.json (head/tail counts per cluster) and clusters.svg.
void write_cluster_report(models::Model& model, const data::Split& split, double head_share,
                          const std::string& dataset_name, const std::string& run_dir);

// The table printed after training and by `embrec eval`.
std::string results_table(const eval::EvalResult& result, const eval::EvalConfig& config);

// Exports run_dir's best model: item vectors into the index, one vector per known user computed from the user's
// whole known history (train + valid + test) with those items as "seen", the id maps, and run_dir (absolute) as
// the manifest's encoder so the server can encode new histories. Models without vectors are an Error.
index::Manifest export_run(const std::string& run_dir, const std::string& out_dir,
                           const index::ExportOptions& options);

// The encoder of a run folder's model; thread-safe (requests are serialised on one model, without autograd).
std::unique_ptr<serve::HistoryEncoder> load_run_encoder(const std::string& run_dir);

// For the server: builds load_run_encoder(manifest.encoder) for each export loaded; null when it names none.
serve::EncoderFactory run_encoder_factory();

}  // namespace embrec::train
