// Checkpoints, written atomically: a module's tensors alone (best.pt), or with the optimiser and the trainer's
// state (checkpoint.pt, what --resume continues from); and whether a run may be resumed under a given config.
//
// A checkpoint file is a LibTorch archive behind the checksummed header line "embrec-checkpoint 1 sha256 <hex>"
// (models::read_checkpoint_archive). Loading verifies it and refuses a model with NaN or infinite weights; every failure is an Error
// naming the file. A bare LibTorch archive (written before the header existed) loads with a warning.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace embrec::train {

// What the training loop carries across a --resume, saved in checkpoint.pt beside the module and the optimiser.
struct TrainerState {
  int64_t next_epoch = 0;  // epochs completed
  double best_value = -1.0;
  int64_t best_epoch = 0;
  int64_t bad_evaluations = 0;
  bool finished = false;
  bool stopped_early = false;
  double train_seconds = 0.0;
  // Models with a pre-training stage ([pretrain], models/pretrain.h): its epochs completed and their time. Training
  // epochs start once pretrain_next_epoch reaches the schedule's epochs.
  int64_t pretrain_next_epoch = 0;
  double pretrain_seconds = 0.0;
};

void save_module(torch::nn::Module& module, const std::string& path);
// What save_module writes, as bytes (an export copies a model's weights this way).
std::string module_checkpoint_bytes(torch::nn::Module& module);
// Loads `path` into `module` (same structure); then checks every parameter and buffer is finite.
void load_module(torch::nn::Module& module, const std::string& path);

// `optimizer` may be null (count-based models have none); a checkpoint without one loads into any optimiser
// unchanged. `pretrain_optimizer`: the pre-training stage's own optimiser, saved while that stage is under way
// (null otherwise), and loaded when the checkpoint holds one.
void save_checkpoint(torch::nn::Module& module, torch::optim::Optimizer* optimizer, const TrainerState& state,
                     const std::string& path, torch::optim::Optimizer* pretrain_optimizer = nullptr);
TrainerState load_checkpoint(torch::nn::Module& module, torch::optim::Optimizer* optimizer, const std::string& path,
                             torch::optim::Optimizer* pretrain_optimizer = nullptr);

// Empty when a run begun with the resolved config `saved` may go on under `current`; else what differs. [train]
// threads changes speed, not the run; a key only `current` has is an option added since the run began, whose
// default is the old behaviour (the rule for adding keys), so it does not count either.
std::string config_difference(const std::string& saved, const std::string& current);

}  // namespace embrec::train
