// From a trained run folder to a serving export (item index, user store, manifest), and the online encoder that
// turns a fresh history into a user vector with the run's model for the server.
#pragma once

#include <memory>
#include <string>

#include "embrec/index/export.h"
#include "embrec/serve/encoder.h"

namespace embrec::train {

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
