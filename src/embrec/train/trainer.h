// The one training loop: Adam, seeded per-epoch shuffling, validation every N epochs with early stopping on a
// chosen metric, atomic checkpoints with the resolved config, --resume, NaN/inf guard, progress and JSONL curves.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "embrec/eval/evaluator.h"
#include "embrec/train/experiment.h"

namespace embrec::train {

class World;

struct TrainOptions {
  std::string run_dir;
  bool resume = false;
  // For tests of --resume: stop (as if killed) after this many epochs of this call, pre-training epochs counted
  // first; -1 = no limit.
  int64_t stop_after_epochs = -1;
  // Asked before every batch (Ctrl-C in the CLI and the Python module): when it returns true, training stops there.
  // The epoch under way is dropped; checkpoint.pt still holds the last finished one, so --resume continues from it.
  std::function<bool()> stop_requested;
  // The ranks of a data-parallel job (train/world.h); null = this process alone. Every rank calls train() with the
  // same config and run folder: each trains on its share of every batch, rank 0 alone writes the run folder,
  // validates and decides early stopping; the others return no results.
  World* world = nullptr;
};

struct TrainSummary {
  eval::EvalResult valid;
  eval::EvalResult test;
  eval::EvalResult cold;  // the cold-start stage, with [data.split] cold_item_ratio > 0; else no groups
  int64_t epochs_run = 0;
  int64_t best_epoch = 0;
  bool stopped_early = false;
  bool interrupted = false;  // stopped before the end (stop_after_epochs, stop_requested); no results then
  double train_seconds = 0.0;
  int64_t pretrain_epochs_run = 0;  // models with a pre-training stage ([pretrain]): its epochs and their time
  double pretrain_seconds = 0.0;
};

// Trains (or fits) the model into run_dir, then evaluates the best checkpoint on valid and test, writes
// results.json and returns the results. run_dir holds: config.toml, checkpoint.pt (latest), best.pt,
// metrics.jsonl (one line per epoch), results.json; for models with clusters also clusters.json and clusters.svg;
// for models with a pre-training stage pretrain.jsonl (one line per pre-training epoch, run before the training
// epochs; checkpoint.pt holds its progress, so --resume continues it or, when it finished, skips it).
TrainSummary train(Experiment& experiment, const TrainOptions& options);

}  // namespace embrec::train
