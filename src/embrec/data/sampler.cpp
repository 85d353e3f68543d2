// SequenceSampler: seeded epoch plans with optional length bucketing, and batch filling without reallocation.
#include "embrec/data/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_set>

#include "embrec/util/error.h"
#include "embrec/util/seed.h"

namespace embrec::data {

PopularitySampler::PopularitySampler(const Sequences& train, int32_t item_count, double alpha) {
  if (item_count <= 0) fail("sampler: no items to draw negatives from");
  if (!(alpha >= 0.0)) fail("sampler: negative_alpha must be >= 0, got {}", alpha);
  std::vector<double> counts(static_cast<size_t>(item_count), 0.0);
  for (int32_t item : train.items) counts[static_cast<size_t>(item)] += 1.0;
  cumulative_.resize(counts.size());
  double total = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    total += alpha == 0.0 ? 1.0 : std::pow(counts[i], alpha);
    cumulative_[i] = total;
  }
  if (total <= 0.0) fail("sampler: no training interactions to draw popular negatives from");
  for (double& c : cumulative_) c /= total;
  cumulative_.back() = 1.0;
}

void PopularitySampler::draw(uint64_t seed, int32_t count, std::vector<int64_t>& out) const {
  std::mt19937_64 random(seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  out.resize(static_cast<size_t>(count));
  for (int64_t& item : out) {
    // The first item whose cumulative probability exceeds u (items of probability 0 are never chosen).
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), uniform(random));
    item = std::min<int64_t>(it - cumulative_.begin(), static_cast<int64_t>(cumulative_.size()) - 1) + 1;
  }
}

std::vector<double> PopularitySampler::probabilities() const {
  std::vector<double> p(cumulative_.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = cumulative_[i] - (i == 0 ? 0.0 : cumulative_[i - 1]);
  return p;
}

namespace {
// Users with at least `least` training items, or an error.
std::vector<int32_t> users_with(const Sequences& train, const SamplerOptions& options, int64_t least) {
  if (options.batch_size <= 0) fail("sampler: batch_size must be positive, got {}", options.batch_size);
  if (options.max_length <= 0) fail("sampler: max_length must be positive, got {}", options.max_length);
  std::vector<int32_t> users;
  for (int32_t u = 0; u < train.user_count(); ++u)
    if (train.length(u) >= least) users.push_back(u);
  if (users.empty()) fail("sampler: no user has {} or more training interactions", least);
  return users;
}

// The batch's shared negatives, when asked for, seeded apart from the per-row negatives.
void draw_shared_negatives(const PopularitySampler& sampler, const SamplerOptions& options, int64_t epoch,
                           int64_t batch_index, SequenceBatch& out) {
  out.shared_negative.clear();
  if (options.shared_negatives > 0)
    sampler.draw(
        mix_seed(options.seed ^ 0x5A5A5A5AULL, static_cast<uint64_t>(epoch), static_cast<uint64_t>(batch_index)),
        options.shared_negatives, out.shared_negative);
}
}  // namespace

SequenceSampler::SequenceSampler(const Sequences& train, int32_t item_count, const SamplerOptions& options)
    : train_(train),
      item_count_(item_count),
      options_(options),
      users_(users_with(train, options, options.all_items ? 1 : 2)),
      negatives_(train, item_count, options.negative_alpha) {
  if (options.ratings && !train.has_ratings())
    fail("sampler: ratings are asked for (a rating loss) but the training data has none (its format has no rating "
         "column)");
}

std::vector<std::vector<int32_t>> SequenceSampler::epoch_plan(int64_t epoch) const {
  std::mt19937_64 random(mix_seed(options_.seed, static_cast<uint64_t>(epoch)));
  std::vector<int32_t> order = users_;
  std::shuffle(order.begin(), order.end(), random);
  const size_t batch = static_cast<size_t>(options_.batch_size);
  if (options_.length_bucketing) {
    // Sort windows of 64 batches by (clipped) length: batches come out of similar length, yet each window is a
    // random sample of users, so consecutive epochs still see different company.
    const size_t window = batch * 64;
    const int64_t cap = options_.all_items ? std::numeric_limits<int64_t>::max() : options_.max_length + 1LL;
    for (size_t lo = 0; lo < order.size(); lo += window) {
      const size_t hi = std::min(order.size(), lo + window);
      std::stable_sort(order.begin() + lo, order.begin() + hi, [&](int32_t a, int32_t b) {
        return std::min(train_.length(a), cap) < std::min(train_.length(b), cap);
      });
    }
  }
  std::vector<std::vector<int32_t>> plan;
  for (size_t lo = 0; lo < order.size(); lo += batch)
    plan.emplace_back(order.begin() + lo, order.begin() + std::min(order.size(), lo + batch));
  if (options_.length_bucketing) std::shuffle(plan.begin(), plan.end(), random);
  return plan;
}

void SequenceSampler::fill(const std::vector<int32_t>& users, int64_t epoch, int64_t batch_index,
                           SequenceBatch& out) const {
  // Targets per user: the next-item layout pairs each item with its successor (length - 1 pairs, the last
  // max_length of them); all_items makes every item a target and keeps the whole list.
  const bool all_items = options_.all_items;
  auto target_count = [&](int32_t u) {
    return all_items ? train_.length(u) : std::min<int64_t>(train_.length(u) - 1, options_.max_length);
  };
  int32_t length = 1;
  for (int32_t u : users) length = std::max<int32_t>(length, static_cast<int32_t>(target_count(u)));
  out.size = static_cast<int32_t>(users.size());
  out.length = length;
  out.users.assign(users.begin(), users.end());
  out.input.assign(static_cast<size_t>(out.size) * length, 0);
  out.target.assign(static_cast<size_t>(out.size) * length, 0);
  if (options_.negatives) {
    out.negative.assign(static_cast<size_t>(out.size) * length, 0);
  } else {
    out.negative.clear();
  }
  if (options_.ratings) {
    out.rating.assign(static_cast<size_t>(out.size) * length, 0.0f);
  } else {
    out.rating.clear();
  }
  out.reset.clear();
  draw_shared_negatives(negatives_, options_, epoch, batch_index, out);
  std::mt19937_64 random(mix_seed(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(batch_index) + 1));
  std::uniform_int_distribution<int32_t> any_item(0, item_count_ - 1);
  std::unordered_set<int32_t> seen;
  for (int32_t row = 0; row < out.size; ++row) {
    const int32_t u = users[row];
    const int32_t* items = train_.begin(u);
    const int64_t pairs = target_count(u);
    const int64_t first_target = train_.length(u) - pairs;  // index of the first target used
    const int64_t first = all_items ? first_target : first_target - 1;  // first input index used
    int64_t* input = out.input.data() + static_cast<size_t>(row) * length + (length - pairs);
    int64_t* target = out.target.data() + static_cast<size_t>(row) * length + (length - pairs);
    for (int64_t j = 0; j < pairs; ++j) {
      input[j] = items[first + j] + 1;
      target[j] = items[first_target + j] + 1;
    }
    if (options_.ratings) {
      const float* ratings = train_.ratings.data() + train_.offsets[u] + first_target;
      std::copy(ratings, ratings + pairs, out.rating.data() + static_cast<size_t>(row) * length + (length - pairs));
    }
    if (options_.negatives) {
      seen.clear();
      seen.insert(train_.begin(u), train_.end(u));
      int64_t* negative = out.negative.data() + static_cast<size_t>(row) * length + (length - pairs);
      const bool can_avoid = static_cast<int64_t>(seen.size()) < item_count_;
      for (int64_t j = 0; j < pairs; ++j) {
        int32_t candidate = any_item(random);
        while (can_avoid && seen.count(candidate)) candidate = any_item(random);
        negative[j] = candidate + 1;
      }
    }
  }
}

SessionParallelSampler::SessionParallelSampler(const Sequences& train, int32_t item_count,
                                               const SamplerOptions& options)
    : train_(train),
      options_(options),
      users_(users_with(train, options, 2)),
      negatives_(train, item_count, options.negative_alpha) {
  if (options.steps <= 0) fail("sampler: steps must be positive, got {}", options.steps);
  if (options.negatives || options.all_items || options.ratings)
    fail("sampler: session-parallel batches have no per-position negatives, all_items or ratings");
}

int64_t SessionParallelSampler::begin_epoch(int64_t epoch) {
  epoch_ = epoch;
  std::mt19937_64 random(mix_seed(options_.seed, static_cast<uint64_t>(epoch)));
  std::vector<int32_t> queue = users_;
  std::shuffle(queue.begin(), queue.end(), random);
  const size_t slots = static_cast<size_t>(options_.batch_size);
  // Per slot: its user (-1 idle) and the index of its next pair's input item.
  std::vector<int32_t> user(slots, -1);
  std::vector<int64_t> next(slots, 0), end(slots, 0);
  size_t queued = 0;
  step_input_.clear(), step_target_.clear(), step_user_.clear(), step_reset_.clear();
  step_count_ = 0;
  for (;;) {
    bool any = false;
    for (size_t s = 0; s < slots; ++s) {
      uint8_t reset = 0;
      if (user[s] < 0 || next[s] >= end[s]) {  // the slot's sequence has ended: the next user starts here
        user[s] = -1;
        if (queued < queue.size()) {
          user[s] = queue[queued++];
          const int64_t length = train_.length(user[s]);
          const int64_t pairs = std::min<int64_t>(length - 1, options_.max_length);
          next[s] = length - 1 - pairs;
          end[s] = length - 1;
          reset = 1;
        }
      }
      if (user[s] < 0) {
        step_input_.push_back(0), step_target_.push_back(0), step_user_.push_back(-1), step_reset_.push_back(0);
        continue;
      }
      any = true;
      const int32_t* items = train_.begin(user[s]);
      step_input_.push_back(items[next[s]] + 1);
      step_target_.push_back(items[next[s] + 1] + 1);
      step_user_.push_back(user[s]);
      step_reset_.push_back(reset);
      ++next[s];
    }
    if (!any) {  // the step just laid out is idle everywhere: drop it
      for (size_t s = 0; s < slots; ++s)
        step_input_.pop_back(), step_target_.pop_back(), step_user_.pop_back(), step_reset_.pop_back();
      break;
    }
    ++step_count_;
  }
  return (step_count_ + options_.steps - 1) / options_.steps;
}

void SessionParallelSampler::fill(int64_t batch_index, SequenceBatch& out) const {
  const int64_t slots = options_.batch_size;
  const int64_t first = batch_index * options_.steps;
  if (batch_index < 0 || first >= step_count_) fail("sampler: batch {} is past the epoch's end", batch_index);
  const int64_t length = std::min<int64_t>(options_.steps, step_count_ - first);
  out.size = static_cast<int32_t>(slots);
  out.length = static_cast<int32_t>(length);
  out.users.assign(static_cast<size_t>(slots), 0);
  out.input.resize(static_cast<size_t>(slots * length));
  out.target.resize(out.input.size());
  out.reset.resize(out.input.size());
  out.negative.clear();
  out.rating.clear();
  for (int64_t s = 0; s < slots; ++s) {
    for (int64_t t = 0; t < length; ++t) {
      const size_t from = static_cast<size_t>((first + t) * slots + s), to = static_cast<size_t>(s * length + t);
      out.input[to] = step_input_[from];
      out.target[to] = step_target_[from];
      out.reset[to] = step_reset_[from];
      if (step_user_[from] >= 0) out.users[static_cast<size_t>(s)] = step_user_[from];
    }
  }
  draw_shared_negatives(negatives_, options_, epoch_, batch_index, out);
}

ImpressionSampler::ImpressionSampler(const ImpressionSet& impressions, const Sequences& histories,
                                     const SamplerOptions& options)
    : impressions_(impressions), histories_(histories), options_(options) {
  if (options.batch_size <= 0) fail("sampler: batch_size must be positive, got {}", options.batch_size);
  if (options.max_length <= 0) fail("sampler: max_length must be positive, got {}", options.max_length);
  if (options.npratio <= 0) fail("sampler: npratio must be positive, got {}", options.npratio);
  for (int64_t i = 0; i < impressions.size(); ++i) {
    const int64_t begin = impressions.candidate_offsets[i], end = impressions.candidate_offsets[i + 1];
    const int64_t clicked = std::count(impressions.labels.begin() + begin, impressions.labels.begin() + end, 1);
    if (clicked == 0 || clicked == end - begin) continue;
    for (int64_t c = begin; c < end; ++c)
      if (impressions.labels[c] == 1) {
        impression_.push_back(i);
        click_.push_back(c - begin);
      }
  }
  if (impression_.empty())
    fail("sampler: no training impression has both a clicked and an unclicked candidate to train on");
  if (impression_.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    fail("sampler: {} training clicks are more than a plan of int32 sample indices holds", impression_.size());
}

std::vector<std::vector<int32_t>> ImpressionSampler::epoch_plan(int64_t epoch) const {
  std::mt19937_64 random(mix_seed(options_.seed, static_cast<uint64_t>(epoch)));
  std::vector<int32_t> order(impression_.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), random);
  const size_t batch = static_cast<size_t>(options_.batch_size);
  std::vector<std::vector<int32_t>> plan;
  for (size_t lo = 0; lo < order.size(); lo += batch)
    plan.emplace_back(order.begin() + lo, order.begin() + std::min(order.size(), lo + batch));
  return plan;
}

void ImpressionSampler::fill(const std::vector<int32_t>& samples, int64_t epoch, int64_t /*batch_index*/,
                             SequenceBatch& out) const {
  const int32_t count = static_cast<int32_t>(samples.size());
  const int32_t width = 1 + options_.npratio;
  out.size = count;
  out.users.resize(samples.size());
  std::vector<int32_t> users(samples.size());
  for (int32_t r = 0; r < count; ++r) users[r] = impressions_.user[impression_[samples[r]]];
  out.length = fill_histories(histories_, users.data(), count, options_.max_length, out.input);
  out.candidate_count = width;
  out.candidates.resize(static_cast<size_t>(count) * width);
  out.target.clear();
  out.negative.clear();
  out.rating.clear();
  out.shared_negative.clear();
  out.reset.clear();
  std::vector<int32_t> unclicked;
  for (int32_t r = 0; r < count; ++r) {
    const int64_t sample = samples[r], impression = impression_[sample];
    out.users[r] = users[r];
    const int64_t begin = impressions_.candidate_offsets[impression];
    const int64_t end = impressions_.candidate_offsets[impression + 1];
    unclicked.clear();
    for (int64_t c = begin; c < end; ++c)
      if (impressions_.labels[c] != 1) unclicked.push_back(impressions_.candidates[c]);
    std::mt19937_64 random(
        mix_seed(options_.seed ^ 0x1A2B3C4DULL, static_cast<uint64_t>(epoch), static_cast<uint64_t>(sample)));
    int64_t* row = out.candidates.data() + static_cast<size_t>(r) * width;
    row[0] = impressions_.candidates[begin + click_[sample]] + 1;
    // A partial Fisher-Yates over the unclicked, restarted each time they run out.
    const int64_t pool = static_cast<int64_t>(unclicked.size());
    for (int32_t k = 0; k < options_.npratio; ++k) {
      const int64_t taken = k % pool;  // drawn in this pass over the pool, kept at its front
      const int64_t pick = taken + static_cast<int64_t>(random() % static_cast<uint64_t>(pool - taken));
      std::swap(unclicked[taken], unclicked[pick]);
      row[1 + k] = unclicked[taken] + 1;
    }
  }
}

int32_t fill_histories(const Sequences& histories, const int32_t* users, int32_t count, int32_t max_length,
                       std::vector<int64_t>& out) {
  int32_t length = 1;
  for (int32_t i = 0; i < count; ++i)
    length = std::max<int32_t>(length, std::min<int64_t>(histories.length(users[i]), max_length));
  out.assign(static_cast<size_t>(count) * length, 0);
  for (int32_t i = 0; i < count; ++i) {
    const int32_t u = users[i];
    const int64_t used = std::min<int64_t>(histories.length(u), length);
    const int32_t* items = histories.end(u) - used;
    int64_t* row = out.data() + static_cast<size_t>(i) * length + (length - used);
    for (int64_t j = 0; j < used; ++j) row[j] = items[j] + 1;
  }
  return length;
}

}  // namespace embrec::data
