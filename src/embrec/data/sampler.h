// Training batches for sequence models as plain arrays (train/ wraps them as tensors): left-padded inputs with
// next-item targets, optional sampled negatives, seeded per (seed, epoch) so a resumed run sees the same batches.
#pragma once

#include <cstdint>
#include <vector>

#include "embrec/data/dataset.h"

namespace embrec::data {

struct SamplerOptions {
  int32_t batch_size = 256;
  int32_t max_length = 50;
  bool negatives = false;  // one sampled negative per target position (the SASRec paper's BCE loss)
  // Every training item of a user is a target (no next-item shift, input = target), and the row holds the whole
  // list whatever max_length says: models of (user, item) pairs (MF) then see each interaction once an epoch,
  // including each user's first and users with a single training item, which the next-item layout never targets.
  bool all_items = false;
  // Fill SequenceBatch::rating from the training ratings (an error when the data has none).
  bool ratings = false;
  // Group users of similar history length into the same batch (batch order still shuffled), so padding is cut to
  // each batch's longest sequence. Beauty's mean length is 8.9 against a window of 50: most of a padded batch is
  // padding. Off reproduces plain shuffled batches.
  bool length_bucketing = true;
  uint64_t seed = 42;
};

// One batch. Item ids are shifted by one (0 is padding). Rows are right-aligned: column j of a batch of length L
// is window position (max_length - L + j), so positions match a full max_length window exactly.
struct SequenceBatch {
  int32_t size = 0;    // rows
  int32_t length = 0;  // columns, <= max_length
  std::vector<int64_t> users;     // [size] internal user ids
  std::vector<int64_t> input;     // [size x length]
  std::vector<int64_t> target;    // [size x length], 0 where there is no target
  std::vector<int64_t> negative;  // [size x length] when negatives are asked for, else empty
  std::vector<float> rating;      // [size x length] the target's rating when ratings are asked for (0 where no
                                  // target), else empty
};

class SequenceSampler {
 public:
  // Users whose training list has at least 2 items take part (one input -> target pair at least); with all_items,
  // every user with at least one.
  SequenceSampler(const Sequences& train, int32_t item_count, const SamplerOptions& options);

  // The batches of one epoch as lists of users; deterministic in (seed, epoch).
  std::vector<std::vector<int32_t>> epoch_plan(int64_t epoch) const;
  // Fills `out` (its vectors are reused) for the given users; negatives seeded by (seed, epoch, batch_index).
  void fill(const std::vector<int32_t>& users, int64_t epoch, int64_t batch_index, SequenceBatch& out) const;

  int64_t training_users() const { return static_cast<int64_t>(users_.size()); }
  const SamplerOptions& options() const { return options_; }

 private:
  const Sequences& train_;
  int32_t item_count_;
  SamplerOptions options_;
  std::vector<int32_t> users_;
};

// Left-pads the last `max_length` items of each user's history (ids + 1, right-aligned as above) into
// `out` [count x length]; returns length (the longest history in the block, at least 1).
int32_t fill_histories(const Sequences& histories, const int32_t* users, int32_t count, int32_t max_length,
                       std::vector<int64_t>& out);

}  // namespace embrec::data
