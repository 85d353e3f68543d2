// Data-parallel training on LibTorch's own c10d with its Gloo backend (the library under PyTorch's
// DistributedDataParallel): the processes of one job ("ranks") meet through a TCPStore at MASTER_ADDR:MASTER_PORT and
// then average their gradients by all-reduce. No communication code of embrec's own: this file only chooses what to
// send. A World of size 1 (WORLD_SIZE unset) is the ordinary single process, every call a no-op.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "embrec/models/batch_gather.h"
#include "embrec/models/model.h"
#include "embrec/util/share.h"

namespace embrec::train {

// Where a rank finds the others: torchrun's variable names, so an existing launcher (torchrun-style scripts, Slurm,
// Kubernetes jobs) can start `embrec train` unchanged; `embrec train --nproc N` sets them for N local ranks.
struct WorldSettings {
  int rank = 0;
  int size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // How long a rank waits for the others (rendezvous, every collective) before the job fails with an error naming
  // what it waited for; a killed rank is noticed at once (its connections close).
  double timeout_seconds = 300;
};

// Reads RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT; WORLD_SIZE unset (or 1) is one process. A bad value is an
// Error naming the variable.
WorldSettings world_settings_from_environment(double timeout_seconds);

class World {
 public:
  World();  // one process
  explicit World(const WorldSettings& settings);  // joins the job: blocks until every rank has arrived
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return settings_.rank; }
  int size() const { return settings_.size; }
  bool is_main() const { return settings_.rank == 0; }

  // Waits until every rank has reached this call (`what` names the point in the error if one never does).
  void barrier(const std::string& what);
  // Rank 0's parameters and buffers into every rank's module (so all start identical).
  void broadcast(torch::nn::Module& module);
  // Rank 0's values into `tensor` on every rank (same shape and type everywhere), in place.
  void broadcast(torch::Tensor& tensor);
  // What Model::begin_epoch may use of this job: rank, size, gather and broadcast.
  models::EpochWorld epoch_world();
  // Rank 0's value of a flag (e.g. "stop early"), the same on every rank afterwards.
  bool broadcast_flag(bool value);
  // Element-wise sums of `values` over the ranks (every rank passes the same number).
  std::vector<double> sum(const std::vector<double>& values);

  // The backward pass of this rank's loss on its share of a global batch (local_count of its sequences; gradients
  // zeroed before), with the all-reduce overlapped: the module's trainable parameters lie in buckets in reverse
  // order (backward finishes the last layers first), a hook on each parameter copies its gradient into its bucket,
  // and a bucket whose gradients are all there is all-reduced asynchronously while backward goes on (PyTorch's DDP
  // does the same through the same public hooks). Buckets go out strictly in order, so every rank issues the same
  // collectives in the same order. reduce_gradients must follow. One process: loss.backward().
  void backward(const torch::Tensor& loss, torch::nn::Module& module, int64_t local_count);

  // After every rank's backward pass on its share of a global batch (local_count of its sequences; 0 when its share
  // is empty): replaces each gradient by the global-batch gradient, sum over ranks of (local_count / global count) x
  // the rank's gradient, all-reduced in buckets (those that World::backward started, and the rest now). That equals
  // one process's gradient on the whole batch when the loss is a mean over sequences (or over equally many positions
  // per sequence). A gradient absent on every rank stays absent (the optimiser then skips that parameter, as in one
  // process); one absent on some ranks counts as zero there. Returns false, reducing nothing, when any rank passed
  // stop = true: all ranks then stop at the same batch.
  bool reduce_gradients(torch::nn::Module& module, int64_t local_count, bool stop);

  // The last reduce_gradients: how many buckets it sent, and how many of them went out during the backward pass.
  struct Reduction {
    int64_t buckets = 0;
    int64_t during_backward = 0;
  };
  Reduction last_reduction() const { return last_reduction_; }

  // Every rank's rows of `local` ([rows, ...], rows may differ between ranks; the other dimensions may not), in rank
  // order; gradient flows back into this rank's rows only (TensorBatch::gather).
  models::Gathered gather(const torch::Tensor& local);

  // This rank's share of `count` items (a batch's users): share_of(count, rank(), size()).
  std::pair<int64_t, int64_t> share(int64_t count) const { return share_of(count, rank(), size()); }

 private:
  struct Group;
  class Reducer;
  Reducer& reducer_for(torch::nn::Module& module);

  WorldSettings settings_;
  std::unique_ptr<Group> group_;  // null for one process
  std::unique_ptr<Reducer> reducer_;  // the buckets of the module last reduced (their hooks live as long as it)
  Reduction last_reduction_;
};

}  // namespace embrec::train
