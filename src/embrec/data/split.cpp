// Splits. Every output list stays in time order; all randomness comes from the seed.
//
// leave_one_out: per user with n >= 3 interactions, the last is test, the second-last valid, the rest train (the
//   SASRec / ICLRec / S4Rec protocol); users with fewer keep everything in train.
// chrono and stratified (Microsoft Recommenders' python_chrono_split / python_stratified_split): per user (or per
//   item with stratify_by = "item", their filter_by), rank the group's interactions (by time for chrono, by a
//   seeded shuffle for stratified), then rank r (1-based) goes to train when
//   r <= round((train_ratio - valid_ratio) * n), to valid when r <= round(train_ratio * n), else to test. round() is
//   half-to-even, as numpy's is, so counts match theirs.
// random: the same thresholds over one seeded shuffle of all interactions.
// user (the GRU4Rec-with-Faiss protocol of the seed material): users are shuffled (seeded) and dealt into train,
//   valid and test by user_ratios (counts rounded half-to-even, test takes the rest). A train user's whole sequence
//   is train; a valid or test user's first round(input_ratio * n) items (at least 1, at most n - 1) are their
//   eval_input and the rest their valid or test targets, so those users are never trained on. Held-out users with
//   fewer than 2 interactions cannot be cut and stay in train. Nothing is dropped.
// Shuffles are Fisher-Yates over std::mt19937_64 with our own unbiased bounded draw, not std::shuffle /
// std::uniform_int_distribution, whose algorithms differ between standard libraries: a seed gives the same split
// with libstdc++ and libc++. numpy's generator is not reproduced: counts match Microsoft Recommenders, members not.
// drop_unseen (not leave_one_out): valid/test interactions whose item is not in train are dropped, and so are those of
//   users with no train interaction (as Microsoft Recommenders' notebooks filter test users and items by train).
#include "embrec/data/split.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "embrec/util/error.h"

namespace embrec::data {

namespace {

// std::nearbyint rounds half to even in the default rounding mode, which nothing in embrec changes.
int64_t round_half_even(double value) { return static_cast<int64_t>(std::nearbyint(value)); }

// Uniform in [0, bound), bound > 0: Lemire's multiply-shift with rejection (unbiased, one draw almost always).
uint64_t uniform_below(std::mt19937_64& random, uint64_t bound) {
  unsigned __int128 product = static_cast<unsigned __int128>(random()) * bound;
  uint64_t low = static_cast<uint64_t>(product);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;
    while (low < threshold) {
      product = static_cast<unsigned __int128>(random()) * bound;
      low = static_cast<uint64_t>(product);
    }
  }
  return static_cast<uint64_t>(product >> 64);
}

template <typename T>
void shuffle(std::vector<T>& values, std::mt19937_64& random) {
  for (size_t i = values.size(); i > 1; --i) std::swap(values[i - 1], values[uniform_below(random, i)]);
}

// part[p] for each position p of dataset.interactions: 0 train, 1 valid, 2 test, 3 eval_input (user split).
Split assemble(const Dataset& dataset, const std::vector<int8_t>& part, SplitMethod method, bool drop_unseen) {
  const Sequences& all = dataset.interactions;
  std::vector<bool> in_train(dataset.item_count(), false);
  for (size_t p = 0; p < part.size(); ++p)
    if (part[p] == 0) in_train[all.items[p]] = true;
  Split split;
  split.method = name_of(kSplitMethodNames, method);
  std::vector<Sequences*> outputs = {&split.train, &split.valid, &split.test};
  if (method == SplitMethod::User) outputs.push_back(&split.eval_input);
  for (Sequences* out : outputs) {
    out->offsets.assign(1, 0);
    out->items.clear();
  }
  for (int32_t u = 0; u < all.user_count(); ++u) {
    bool user_in_train = false;
    for (int64_t p = all.offsets[u]; p < all.offsets[u + 1]; ++p) user_in_train = user_in_train || part[p] == 0;
    for (int64_t p = all.offsets[u]; p < all.offsets[u + 1]; ++p) {
      const int which = part[p];
      if ((which == 1 || which == 2) && drop_unseen && (!user_in_train || !in_train[all.items[p]])) continue;
      Sequences& out = *outputs[which];
      out.items.push_back(all.items[p]);
      if (all.has_ratings()) out.ratings.push_back(all.ratings[p]);
      if (all.has_timestamps()) out.timestamps.push_back(all.timestamps[p]);
    }
    for (Sequences* out : outputs) out->offsets.push_back(static_cast<int64_t>(out->items.size()));
  }
  return split;
}

void check_ratios(const SplitOptions& options) {
  if (!(options.train_ratio > 0 && options.train_ratio <= 1))
    fail("split: train_ratio must be in (0, 1], got {}", options.train_ratio);
  if (!(options.valid_ratio >= 0 && options.valid_ratio < options.train_ratio))
    fail("split: valid_ratio must be in [0, train_ratio), got {}", options.valid_ratio);
}

int8_t part_of_rank(int64_t rank, int64_t count, const SplitOptions& options) {
  if (rank <= round_half_even((options.train_ratio - options.valid_ratio) * static_cast<double>(count))) return 0;
  if (rank <= round_half_even(options.train_ratio * static_cast<double>(count))) return 1;
  return 2;
}

Split split_by_user(const Dataset& dataset, const SplitOptions& options) {
  const Sequences& all = dataset.interactions;
  const std::vector<double>& ratios = options.user_ratios;
  if (const std::string problem = user_ratios_problem(ratios); !problem.empty()) fail("split: user_ratios{}", problem);
  if (!(options.input_ratio > 0 && options.input_ratio < 1))
    fail("split: input_ratio must be in (0, 1), got {}", options.input_ratio);
  std::vector<int32_t> users(static_cast<size_t>(all.user_count()));
  std::iota(users.begin(), users.end(), 0);
  std::mt19937_64 random(options.seed);
  shuffle(users, random);
  const int64_t count = static_cast<int64_t>(users.size());
  const int64_t train_users = round_half_even(ratios[0] * static_cast<double>(count));
  const int64_t valid_users = round_half_even(ratios[1] * static_cast<double>(count));
  std::vector<int8_t> part(all.items.size(), 0);
  for (int64_t rank = train_users; rank < count; ++rank) {
    const int32_t u = users[static_cast<size_t>(rank)];
    const int64_t n = all.length(u);
    if (n < 2) continue;
    const int64_t cut = std::clamp<int64_t>(round_half_even(options.input_ratio * static_cast<double>(n)), 1, n - 1);
    const int8_t target_part = rank < train_users + valid_users ? 1 : 2;
    for (int64_t i = 0; i < n; ++i) part[static_cast<size_t>(all.offsets[u] + i)] = i < cut ? 3 : target_part;
  }
  return assemble(dataset, part, SplitMethod::User, false);
}

}  // namespace

std::string user_ratios_problem(const std::vector<double>& ratios) {
  double sum = 0.0;
  bool negative = false;
  for (double r : ratios) sum += r, negative = negative || !(r >= 0);
  if (ratios.size() != 3 || negative || std::abs(sum - 1.0) > 1e-9)
    return ": must be three shares (train, valid and test users) >= 0 that sum to 1";
  return "";
}

namespace {
Split split_warm(const Dataset& dataset, const SplitOptions& options);
}  // namespace

// With cold items: the split of the dataset without them, and their interactions kept apart as Split::cold.
Split make_split(const Dataset& dataset, const SplitOptions& options) {
  if (options.cold_item_ratio <= 0) return split_warm(dataset, options);
  if (options.cold_item_ratio >= 1) fail("split: cold_item_ratio must be in [0, 1), got {}", options.cold_item_ratio);
  const int32_t items = dataset.item_count();
  std::vector<int32_t> order(static_cast<size_t>(items));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 random(options.seed ^ 0xC01DC01DULL);
  std::shuffle(order.begin(), order.end(), random);
  std::vector<uint8_t> cold(static_cast<size_t>(items), 0);
  const int64_t count = std::llround(options.cold_item_ratio * items);
  for (int64_t i = 0; i < count; ++i) cold[order[i]] = 1;
  Dataset warm;
  warm.name = dataset.name;
  Sequences cold_part;
  const Sequences& all = dataset.interactions;
  for (int32_t u = 0; u < all.user_count(); ++u) {
    for (int64_t p = all.offsets[u]; p < all.offsets[u + 1]; ++p) {
      Sequences& out = cold[all.items[p]] ? cold_part : warm.interactions;
      out.items.push_back(all.items[p]);
      if (all.has_ratings()) out.ratings.push_back(all.ratings[p]);
      if (all.has_timestamps()) out.timestamps.push_back(all.timestamps[p]);
    }
    warm.interactions.offsets.push_back(static_cast<int64_t>(warm.interactions.items.size()));
    cold_part.offsets.push_back(static_cast<int64_t>(cold_part.items.size()));
  }
  // The split reads only the interactions and the id counts; the id maps stay the dataset's.
  warm.users = IdMap::from_externals(std::vector<std::string>(dataset.users.externals()));
  warm.items = IdMap::from_externals(std::vector<std::string>(dataset.items.externals()));
  Split split = split_warm(warm, options);
  split.cold = std::move(cold_part);
  return split;
}

namespace {

Split split_warm(const Dataset& dataset, const SplitOptions& options) {
  const Sequences& all = dataset.interactions;
  std::vector<int8_t> part(all.items.size(), 0);
  if (options.method == SplitMethod::LeaveOneOut) {
    for (int32_t u = 0; u < all.user_count(); ++u) {
      if (all.length(u) < 3) continue;
      part[all.offsets[u + 1] - 2] = 1;
      part[all.offsets[u + 1] - 1] = 2;
    }
    return assemble(dataset, part, options.method, false);
  }
  if (options.method == SplitMethod::User) return split_by_user(dataset, options);
  check_ratios(options);
  std::mt19937_64 random(options.seed);
  if (options.method == SplitMethod::Chrono || options.method == SplitMethod::Stratified) {
    // Each group's interaction positions, in log order (a user's are time-ordered already).
    std::vector<std::vector<int64_t>> groups;
    if (options.stratify_by == StratifyBy::User) {
      groups.resize(all.user_count());
      for (int32_t u = 0; u < all.user_count(); ++u) {
        groups[u].resize(all.length(u));
        std::iota(groups[u].begin(), groups[u].end(), all.offsets[u]);
      }
    } else {
      groups.resize(dataset.item_count());
      for (size_t p = 0; p < all.items.size(); ++p) groups[all.items[p]].push_back(static_cast<int64_t>(p));
      if (options.method == SplitMethod::Chrono && all.has_timestamps())
        for (auto& order : groups)
          std::stable_sort(order.begin(), order.end(),
                           [&](int64_t a, int64_t b) { return all.timestamps[a] < all.timestamps[b]; });
    }
    for (std::vector<int64_t>& order : groups) {
      const int64_t count = static_cast<int64_t>(order.size());
      if (options.method == SplitMethod::Stratified) shuffle(order, random);
      for (int64_t r = 0; r < count; ++r) part[order[r]] = part_of_rank(r + 1, count, options);
    }
  } else {  // SplitMethod::Random
    std::vector<int64_t> order(all.items.size());
    std::iota(order.begin(), order.end(), 0);
    shuffle(order, random);
    const int64_t count = static_cast<int64_t>(order.size());
    for (int64_t r = 0; r < count; ++r) part[order[r]] = part_of_rank(r + 1, count, options);
  }
  return assemble(dataset, part, options.method, options.drop_unseen);
}

}  // namespace

}  // namespace embrec::data
