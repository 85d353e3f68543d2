// Training batches for sequence models as plain arrays (train/ wraps them as tensors): left-padded inputs with
// next-item targets, optional sampled negatives, seeded per (seed, epoch) so a resumed run sees the same batches.
#pragma once

#include <cstdint>
#include <vector>

#include "embrec/data/dataset.h"
#include "embrec/data/news.h"

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
  // Extra negatives shared by the whole batch (GRU4Rec's sampled losses): `shared_negatives` items drawn per batch
  // with probability proportional to (training count)^negative_alpha -- 0 uniform over all items, 1 by popularity.
  int32_t shared_negatives = 0;
  double negative_alpha = 0.0;
  // Session-parallel mini-batches (GRU4Rec; SessionParallelSampler): batch_size slots side by side, each running
  // through one user's sequence after another, `steps` time steps per batch (1 in the GRU4Rec paper).
  bool session_parallel = false;
  int32_t steps = 1;
  // Impression batches (news models; ImpressionSampler): one row per click of a training impression, its user's
  // history (the last max_length clicks) as input and as candidates the clicked news then `npratio` news shown in
  // the same impression and not clicked.
  bool impressions = false;
  int32_t npratio = 4;
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
  std::vector<int64_t> shared_negative;  // [shared_negatives] ids + 1, drawn for this batch, when asked for
  // Session-parallel batches only: [size x length], 1 where the row's slot starts a new sequence at that column (the
  // model zeroes the slot's hidden state first). Rows are slots, kept in the same order from batch to batch, and
  // users[row] is the slot's user at the batch's last column that has one (0 for an idle slot).
  std::vector<uint8_t> reset;
  // Impression batches only: [size x candidate_count] ids + 1, the clicked news first (target and negative are
  // empty).
  std::vector<int64_t> candidates;
  int32_t candidate_count = 0;
};

// Items drawn with probability proportional to (training count)^alpha: alpha = 0 is uniform over all items
// (items never seen in training included), alpha = 1 follows popularity.
class PopularitySampler {
 public:
  PopularitySampler(const Sequences& train, int32_t item_count, double alpha);
  // `count` independent draws into `out`, as ids + 1 (as batches hold items), from a generator seeded by `seed`.
  void draw(uint64_t seed, int32_t count, std::vector<int64_t>& out) const;
  // The probability of each item.
  std::vector<double> probabilities() const;

 private:
  std::vector<double> cumulative_;  // normalised, last entry 1
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
  PopularitySampler negatives_;
};

// GRU4Rec's session-parallel mini-batches. An epoch's users (those with 2+ training items, shuffled by (seed,
// epoch)) are queued; each of batch_size slots takes the next user when its current one ends and walks through that
// user's (input, target) pairs one time step at a time -- the last max_length pairs, the same pairs the padded
// layout of SequenceSampler trains on. A slot with nobody left stays idle (input and target 0) until every slot is
// idle, which ends the epoch. Batch b holds time steps [b * steps, (b + 1) * steps) of every slot.
class SessionParallelSampler {
 public:
  SessionParallelSampler(const Sequences& train, int32_t item_count, const SamplerOptions& options);
  // Lays out the epoch; returns its number of batches.
  int64_t begin_epoch(int64_t epoch);
  void fill(int64_t batch_index, SequenceBatch& out) const;

 private:
  const Sequences& train_;
  SamplerOptions options_;
  std::vector<int32_t> users_;
  PopularitySampler negatives_;
  int64_t epoch_ = 0;
  // The epoch's time steps, slot-major within a step: [steps_ x batch_size].
  int64_t step_count_ = 0;
  std::vector<int64_t> step_input_, step_target_;
  std::vector<int32_t> step_user_;  // -1 where the slot is idle
  std::vector<uint8_t> step_reset_;
};

// Impression batches for news models (SamplerOptions::impressions). The samples are the clicks of the training
// impressions (an impression whose candidates were all clicked has no negative to pair with and gives none); an
// epoch is their order shuffled by (seed, epoch) cut into batches of batch_size. A row: the sample's user, the
// user's history (the last max_length items of `histories`, as fill_histories lays them out) as input, and as
// candidates the click, then npratio of the impression's unclicked news drawn without replacement; when it has
// fewer, the draws pass over them again (each as often as the others, give or take one; Microsoft Recommenders'
// newsample also repeats the pool). Seeded by (seed, epoch, sample), so a sample draws the same negatives whichever
// batch or rank holds it.
class ImpressionSampler {
 public:
  ImpressionSampler(const ImpressionSet& impressions, const Sequences& histories, const SamplerOptions& options);
  std::vector<std::vector<int32_t>> epoch_plan(int64_t epoch) const;
  void fill(const std::vector<int32_t>& samples, int64_t epoch, int64_t batch_index, SequenceBatch& out) const;
  int64_t sample_count() const { return static_cast<int64_t>(impression_.size()); }

 private:
  const ImpressionSet& impressions_;
  const Sequences& histories_;
  SamplerOptions options_;
  std::vector<int64_t> impression_;  // per sample: its impression
  std::vector<int64_t> click_;       // per sample: the position of its click in the impression's candidates
};

// Left-pads the last `max_length` items of each user's history (ids + 1, right-aligned as above) into
// `out` [count x length]; returns length (the longest history in the block, at least 1).
int32_t fill_histories(const Sequences& histories, const int32_t* users, int32_t count, int32_t max_length,
                       std::vector<int64_t>& out);

}  // namespace embrec::data
