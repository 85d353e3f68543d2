// Splits: no leakage, counts, time order, determinism and seeds, Microsoft Recommenders' rounding.
#include "embrec/data/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "embrec/data/prepare.h"
#include "embrec/util/error.h"

namespace embrec::data {
namespace {

// 200 users with 1..15 interactions (so some have fewer than 3), 40 items, ratings, strictly increasing timestamps
// per user: (timestamp, item, rating) then names one position, so multiset equality below is position equality.
Dataset synthetic_dataset() {
  Dataset d;
  d.name = "synthetic";
  for (int32_t i = 0; i < 40; ++i) d.items.get_or_add("i" + std::to_string(i));
  for (int32_t u = 0; u < 200; ++u) {
    d.users.get_or_add("u" + std::to_string(u));
    const int32_t length = 1 + (u * 7) % 15;
    std::vector<int32_t> items;
    std::vector<float> ratings;
    std::vector<int64_t> times;
    for (int32_t j = 0; j < length; ++j) {
      items.push_back((u * 13 + j * j * 5 + j) % 40);
      ratings.push_back(static_cast<float>(1 + (u + j) % 5));
      times.push_back(1000LL * u + 10 * j);
    }
    d.interactions.push_user(items.data(), length, ratings.data(), times.data());
  }
  return d;
}

// Per user, the three parts are disjoint and together exactly the user's interactions (positions are named by their
// unique timestamps), each part is in time order, and ratings and timestamps travel with their items.
void expect_partition(const Dataset& d, const Split& s) {
  std::vector<const Sequences*> all_parts = {&s.train, &s.valid, &s.test};
  if (s.method == "user") all_parts.push_back(&s.eval_input);
  for (const Sequences* part : all_parts) {
    ASSERT_EQ(part->user_count(), d.user_count());
    ASSERT_EQ(part->ratings.size(), part->items.size());
    ASSERT_EQ(part->timestamps.size(), part->items.size());
  }
  for (int32_t u = 0; u < d.user_count(); ++u) {
    std::vector<std::tuple<int64_t, int32_t, float>> all, parts;
    for (int64_t p = d.interactions.offsets[u]; p < d.interactions.offsets[u + 1]; ++p)
      all.emplace_back(d.interactions.timestamps[p], d.interactions.items[p], d.interactions.ratings[p]);
    for (const Sequences* part : all_parts) {
      for (int64_t p = part->offsets[u]; p < part->offsets[u + 1]; ++p) {
        parts.emplace_back(part->timestamps[p], part->items[p], part->ratings[p]);
        if (p > part->offsets[u]) EXPECT_LT(part->timestamps[p - 1], part->timestamps[p]);
      }
    }
    std::sort(all.begin(), all.end());
    std::sort(parts.begin(), parts.end());
    EXPECT_EQ(all, parts) << "user " << u;  // equal as sets of unique positions: disjoint, and the union is all
  }
}

TEST(Split, LeaveOneOutHoldsOutTheLastTwoByTime) {
  Dataset d = synthetic_dataset();
  Split s = make_split(d, SplitOptions{});
  EXPECT_EQ(s.method, "leave_one_out");
  expect_partition(d, s);
  int32_t short_users = 0;
  for (int32_t u = 0; u < d.user_count(); ++u) {
    const int64_t n = d.interactions.length(u);
    const int64_t last = d.interactions.offsets[u] + n - 1;
    if (n < 3) {
      ++short_users;
      EXPECT_EQ(s.train.length(u), n);
      EXPECT_EQ(s.valid.length(u) + s.test.length(u), 0);
      continue;
    }
    ASSERT_EQ(s.valid.length(u), 1);
    ASSERT_EQ(s.test.length(u), 1);
    EXPECT_EQ(*s.test.begin(u), d.interactions.items[last]);
    EXPECT_EQ(*s.valid.begin(u), d.interactions.items[last - 1]);
    EXPECT_EQ(s.train.length(u), n - 2);
    // No leakage in time: everything in train precedes the valid item, which precedes the test item.
    EXPECT_LT(s.train.timestamps[s.train.offsets[u + 1] - 1], s.valid.timestamps[s.valid.offsets[u]]);
    EXPECT_LT(s.valid.timestamps[s.valid.offsets[u]], s.test.timestamps[s.test.offsets[u]]);
  }
  EXPECT_GT(short_users, 0);  // the dataset does exercise the short-user rule
}

TEST(Split, LeaveOneOutPicksTheLatestByTimeNotByFileOrder) {
  // u.data is not sorted: user 7's lines come as t = 30, 10, 40, 20. The test target is the t = 40 item (c), valid
  // is the t = 30 item (a), train is b then d (t = 10, 20).
  RawLog log;
  log.source = "u.data";
  log.has_rating = log.has_timestamp = true;
  const std::vector<std::pair<std::string, int64_t>> rows{{"a", 30}, {"b", 10}, {"c", 40}, {"d", 20}};
  for (const auto& [item, time] : rows) {
    log.user.push_back(log.users.get_or_add("7"));
    log.item.push_back(log.items.get_or_add(item));
    log.rating.push_back(1);
    log.timestamp.push_back(time);
    log.line.push_back(log.size());
  }
  Dataset d = prepare_dataset(log, PrepareOptions{});
  Split s = make_split(d, SplitOptions{});
  auto names = [&](const Sequences& part) {
    std::vector<std::string> out;
    for (const int32_t* it = part.begin(0); it != part.end(0); ++it) out.push_back(d.items.external(*it));
    return out;
  };
  EXPECT_EQ(names(s.train), (std::vector<std::string>{"b", "d"}));
  EXPECT_EQ(names(s.valid), (std::vector<std::string>{"a"}));
  EXPECT_EQ(names(s.test), (std::vector<std::string>{"c"}));
  EXPECT_EQ(s.test.timestamps, (std::vector<int64_t>{40}));
  EXPECT_EQ(s.test.ratings.size(), 1u);
}

TEST(Split, LeaveOneOutKeepsShortUsersInTrain) {
  Dataset d;
  d.users.get_or_add("a");
  d.users.get_or_add("b");
  for (int i = 0; i < 3; ++i) d.items.get_or_add(std::to_string(i));
  const int32_t a[] = {0, 1}, b[] = {0, 1, 2};
  const int64_t ta[] = {1, 2}, tb[] = {1, 2, 3};
  d.interactions.push_user(a, 2, nullptr, ta);
  d.interactions.push_user(b, 3, nullptr, tb);
  Split s = make_split(d, SplitOptions{});
  EXPECT_EQ(s.train.length(0), 2);
  EXPECT_EQ(s.valid.length(0) + s.test.length(0), 0);
  EXPECT_EQ(s.train.length(1), 1);
}

TEST(Split, ChronoPutsTheEarliestShareInTrain) {
  Dataset d = synthetic_dataset();
  SplitOptions options;
  options.method = SplitMethod::Chrono;
  options.drop_unseen = false;
  Split s = make_split(d, options);
  expect_partition(d, s);
  for (int32_t u = 0; u < d.user_count(); ++u) {
    const int64_t n = d.interactions.length(u);
    const int64_t train_count = static_cast<int64_t>(std::nearbyint(0.75 * n));
    ASSERT_EQ(s.train.length(u), train_count);
    // Exactly the user's earliest train_count interactions, and the rest (later in time) in test.
    const int64_t* times = d.interactions.timestamps.data() + d.interactions.offsets[u];
    EXPECT_TRUE(std::equal(times, times + train_count, s.train.timestamps.data() + s.train.offsets[u]));
    EXPECT_TRUE(std::equal(times + train_count, times + n, s.test.timestamps.data() + s.test.offsets[u]));
  }
}

TEST(Split, RoundingIsHalfToEvenAsInNumpy) {
  // 10 interactions at 0.75: 7.5 -> 8 (even); 6 interactions: 4.5 -> 4 (even); 2 at 0.75 = 1.5 -> 2.
  for (auto [n, expected] : std::vector<std::pair<int, int>>{{10, 8}, {6, 4}, {2, 2}}) {
    Dataset d;
    d.users.get_or_add("u");
    std::vector<int32_t> items(n);
    std::vector<int64_t> times(n);
    for (int i = 0; i < n; ++i) {
      items[i] = d.items.get_or_add(std::to_string(i));
      times[i] = i;
    }
    d.interactions.push_user(items.data(), n, nullptr, times.data());
    SplitOptions options;
    options.method = SplitMethod::Chrono;
    options.drop_unseen = false;
    EXPECT_EQ(make_split(d, options).train.length(0), expected) << n;
  }
}

TEST(Split, StratifiedAndRandomAreSeededAndDeterministic) {
  Dataset d = synthetic_dataset();
  for (SplitMethod method : {SplitMethod::Stratified, SplitMethod::Random}) {
    SplitOptions options;
    options.method = method;
    options.drop_unseen = false;
    Split a = make_split(d, options), b = make_split(d, options);
    expect_partition(d, a);
    EXPECT_EQ(a.train.items, b.train.items) << name_of(kSplitMethodNames, method);
    EXPECT_EQ(a.test.items, b.test.items) << name_of(kSplitMethodNames, method);
    options.seed = 43;
    EXPECT_NE(make_split(d, options).test.items, a.test.items) << name_of(kSplitMethodNames, method);
    const double share = static_cast<double>(a.train.size()) / d.interactions.size();
    EXPECT_NEAR(share, 0.75, 0.02) << name_of(kSplitMethodNames, method);
  }
}

TEST(Split, StratifiedGivesEveryUserTheirShare) {
  Dataset d = synthetic_dataset();
  SplitOptions options;
  options.method = SplitMethod::Stratified;
  options.drop_unseen = false;
  Split s = make_split(d, options);
  for (int32_t u = 0; u < d.user_count(); ++u)
    EXPECT_EQ(s.train.length(u), static_cast<int64_t>(std::nearbyint(0.75 * d.interactions.length(u))));
}

TEST(Split, ByItemGivesEveryItemItsShareInTimeOrderForChrono) {
  Dataset d = synthetic_dataset();
  const Sequences& all = d.interactions;
  // Each item's interactions (timestamps name them uniquely), in time order.
  std::vector<std::vector<int64_t>> item_times(d.item_count());
  for (size_t p = 0; p < all.items.size(); ++p) item_times[all.items[p]].push_back(all.timestamps[p]);
  for (auto& times : item_times) std::sort(times.begin(), times.end());
  for (SplitMethod method : {SplitMethod::Stratified, SplitMethod::Chrono}) {
    SplitOptions options;
    options.method = method;
    options.stratify_by = StratifyBy::Item;
    options.drop_unseen = false;
    Split s = make_split(d, options);
    expect_partition(d, s);  // still a partition of every user's interactions, each part in time order
    std::vector<std::vector<int64_t>> train_times(d.item_count());
    for (size_t p = 0; p < s.train.items.size(); ++p) train_times[s.train.items[p]].push_back(s.train.timestamps[p]);
    for (int32_t i = 0; i < d.item_count(); ++i) {
      const int64_t n = static_cast<int64_t>(item_times[i].size());
      ASSERT_EQ(static_cast<int64_t>(train_times[i].size()), static_cast<int64_t>(std::nearbyint(0.75 * n)))
          << name_of(kSplitMethodNames, method) << " item " << i;
      if (method == SplitMethod::Chrono) {
        std::sort(train_times[i].begin(), train_times[i].end());
        EXPECT_TRUE(std::equal(train_times[i].begin(), train_times[i].end(), item_times[i].begin())) << "item " << i;
      }
    }
  }
  // Per user the shares now vary: some user gets a train share other than round(0.75 n).
  SplitOptions options;
  options.method = SplitMethod::Stratified;
  options.stratify_by = StratifyBy::Item;
  Split s = make_split(d, options);
  bool some_user_differs = false;
  for (int32_t u = 0; u < d.user_count(); ++u)
    some_user_differs |= s.train.length(u) != static_cast<int64_t>(std::nearbyint(0.75 * all.length(u)));
  EXPECT_TRUE(some_user_differs);
}

TEST(Split, ValidIsCarvedFromTrain) {
  Dataset d = synthetic_dataset();
  SplitOptions options;
  options.method = SplitMethod::Chrono;
  options.valid_ratio = 0.15;
  options.drop_unseen = false;
  Split s = make_split(d, options);
  expect_partition(d, s);
  for (int32_t u = 0; u < d.user_count(); ++u) {
    const double n = static_cast<double>(d.interactions.length(u));
    EXPECT_EQ(s.train.length(u), static_cast<int64_t>(std::nearbyint(0.6 * n)));
    EXPECT_EQ(s.train.length(u) + s.valid.length(u), static_cast<int64_t>(std::nearbyint(0.75 * n)));
    // Valid is the end of the old train: after every train interaction and before every test one.
    if (s.valid.length(u) > 0 && s.train.length(u) > 0)
      EXPECT_LT(s.train.timestamps[s.train.offsets[u + 1] - 1], s.valid.timestamps[s.valid.offsets[u]]);
    if (s.valid.length(u) > 0 && s.test.length(u) > 0)
      EXPECT_LT(s.valid.timestamps[s.valid.offsets[u + 1] - 1], s.test.timestamps[s.test.offsets[u]]);
  }
}

TEST(Split, RandomPutsTheRoundedShareOfAllInteractionsInTrain) {
  Dataset d = synthetic_dataset();
  SplitOptions options;
  options.method = SplitMethod::Random;
  options.valid_ratio = 0.1;
  options.drop_unseen = false;
  Split s = make_split(d, options);
  expect_partition(d, s);
  const double n = static_cast<double>(d.interactions.size());
  EXPECT_EQ(s.train.size(), static_cast<int64_t>(std::nearbyint(0.65 * n)));
  EXPECT_EQ(s.train.size() + s.valid.size(), static_cast<int64_t>(std::nearbyint(0.75 * n)));
  EXPECT_EQ(s.train.size() + s.valid.size() + s.test.size(), d.interactions.size());
}

TEST(Split, ASeedGivesTheSameSplitOnEveryStandardLibrary) {
  // Pinned output of the portable Fisher-Yates over mt19937_64 (seed 42): if this changes, every published split
  // changes with it. Eight interactions of one user, stratified 50/50.
  Dataset d;
  d.users.get_or_add("u");
  std::vector<int32_t> items(8);
  std::vector<int64_t> times(8);
  for (int32_t i = 0; i < 8; ++i) {
    items[i] = d.items.get_or_add(std::to_string(i));
    times[i] = i;
  }
  d.interactions.push_user(items.data(), 8, nullptr, times.data());
  SplitOptions options;
  options.method = SplitMethod::Stratified;
  options.train_ratio = 0.5;
  options.drop_unseen = false;
  Split s = make_split(d, options);
  EXPECT_EQ(s.train.items, (std::vector<int32_t>{1, 2, 3, 5}));
  EXPECT_EQ(s.test.items, (std::vector<int32_t>{0, 4, 6, 7}));
  EXPECT_FALSE(s.train.has_ratings());  // the dataset has none, so neither has the split
}

TEST(Split, DropUnseenRemovesTargetsWhoseItemIsNotInTrain) {
  Dataset d;
  d.users.get_or_add("u");
  d.users.get_or_add("v");
  for (const char* item : {"a", "b", "c", "d"}) d.items.get_or_add(item);
  const int32_t u[] = {0, 1, 2, 3}, v[] = {0, 1, 2, 1};
  const int64_t t[] = {1, 2, 3, 4};
  d.interactions.push_user(u, 4, nullptr, t);
  d.interactions.push_user(v, 4, nullptr, t);
  SplitOptions options;
  options.method = SplitMethod::Chrono;
  Split s = make_split(d, options);
  // Train: u {a,b,c}, v {a,b,c}; tests: u {d} (never in train: dropped), v {b} (kept).
  EXPECT_EQ(s.test.length(0), 0);
  EXPECT_EQ(s.test.length(1), 1);
  options.drop_unseen = false;
  EXPECT_EQ(make_split(d, options).test.length(0), 1);
}

TEST(Split, DropUnseenRemovesTargetsOfUsersWithoutTrain) {
  // At train_ratio 0.5 a one-interaction user gets round(0.5) = 0 in train: no history, so no target either,
  // even though the item (a) is in another user's train.
  Dataset d;
  d.users.get_or_add("u");
  d.users.get_or_add("v");
  for (const char* item : {"a", "b"}) d.items.get_or_add(item);
  const int32_t u[] = {0}, v[] = {0, 1};
  const int64_t t[] = {1, 2};
  d.interactions.push_user(u, 1, nullptr, t);
  d.interactions.push_user(v, 2, nullptr, t);
  SplitOptions options;
  options.method = SplitMethod::Chrono;
  options.train_ratio = 0.5;
  Split s = make_split(d, options);
  EXPECT_EQ(s.train.length(0), 0);
  EXPECT_EQ(s.test.length(0), 0);
  EXPECT_EQ(s.train.length(1), 1);
  options.drop_unseen = false;
  EXPECT_EQ(make_split(d, options).test.length(0), 1);
}

TEST(Split, TestStageHistoriesKeepRatingsAndTimesWhenTheValidStageIsEmpty) {
  Dataset d = synthetic_dataset();
  SplitOptions options;
  options.method = SplitMethod::Stratified;
  options.valid_ratio = 0.0;
  Split s = make_split(d, options);
  ASSERT_TRUE(s.valid.items.empty());
  const EvalTask task = make_eval_task(s, /*test_stage=*/true);
  EXPECT_EQ(task.history.items, s.train.items);
  EXPECT_EQ(task.history.ratings, s.train.ratings);
  EXPECT_EQ(task.history.timestamps, s.train.timestamps);
}

TEST(Split, ColdItemsAreHeldOutEntirelyAndTheRestIsSplitWithoutThem) {
  const Dataset d = synthetic_dataset();
  SplitOptions options;
  options.cold_item_ratio = 0.1;  // 4 of 40 items
  const Split s = make_split(d, options);
  std::vector<uint8_t> cold(40, 0);
  for (int32_t item : s.cold.items) cold[item] = 1;
  EXPECT_EQ(std::count(cold.begin(), cold.end(), 1), 4);
  for (const Sequences* part : {&s.train, &s.valid, &s.test})
    for (int32_t item : part->items) EXPECT_FALSE(cold[item]) << "cold item " << item << " outside the cold stage";
  int64_t expected_cold = 0;
  for (int32_t u = 0; u < 200; ++u) {
    // The cold part is the user's cold-item interactions in time order; the rest is split as a dataset without them.
    std::vector<int32_t> warm, mine;
    std::vector<int64_t> cold_times;
    for (int64_t p = d.interactions.offsets[u]; p < d.interactions.offsets[u + 1]; ++p) {
      if (cold[d.interactions.items[p]]) {
        mine.push_back(d.interactions.items[p]);
        cold_times.push_back(d.interactions.timestamps[p]);
      } else {
        warm.push_back(d.interactions.items[p]);
      }
    }
    expected_cold += static_cast<int64_t>(mine.size());
    EXPECT_EQ(std::vector<int32_t>(s.cold.begin(u), s.cold.end(u)), mine) << "user " << u;
    EXPECT_EQ(std::vector<int64_t>(s.cold.timestamps.begin() + s.cold.offsets[u],
                                   s.cold.timestamps.begin() + s.cold.offsets[u + 1]),
              cold_times);
    if (warm.size() >= 3) {
      EXPECT_EQ(*s.test.begin(u), warm.back()) << "user " << u;
      EXPECT_EQ(*s.valid.begin(u), warm[warm.size() - 2]) << "user " << u;
    }
  }
  EXPECT_EQ(s.cold.size(), expected_cold);
  EXPECT_GT(expected_cold, 0);
  // The cold stage ranks the cold items against everything the user is known to have.
  const EvalTask task = make_cold_task(s);
  EXPECT_EQ(task.targets.items, s.cold.items);
  EXPECT_EQ(task.history.size(), s.train.size() + s.valid.size() + s.test.size());
  // Seeded: the same items again, other items with another seed; none without the option.
  EXPECT_EQ(make_split(d, options).cold.items, s.cold.items);
  options.seed = 7;
  EXPECT_NE(make_split(d, options).cold.items, s.cold.items);
  EXPECT_EQ(make_split(d, SplitOptions{}).cold.size(), 0);
}

TEST(Split, BadOptionsAreErrors) {
  Dataset d = synthetic_dataset();
  SplitOptions options;
  options.method = SplitMethod::Chrono;
  options.train_ratio = 1.5;
  EXPECT_THROW(make_split(d, options), Error);
  options.train_ratio = 0.5;
  options.valid_ratio = 0.5;  // must be below train_ratio
  EXPECT_THROW(make_split(d, options), Error);
}

TEST(Split, ByUserDealsUsersAndCutsEachHeldOutSequenceByTime) {
  Dataset d = synthetic_dataset();
  SplitOptions options;
  options.method = SplitMethod::User;
  Split s = make_split(d, options);
  expect_partition(d, s);
  int valid_users = 0, test_users = 0, train_users = 0;
  for (int32_t u = 0; u < d.user_count(); ++u) {
    const int64_t n = d.interactions.length(u), input = s.eval_input.length(u);
    const int64_t held = s.valid.length(u) + s.test.length(u);
    // A user is in exactly one part: all of them in train, or input + valid, or input + test.
    if (input == 0) {
      EXPECT_EQ(held, 0) << "user " << u;
      EXPECT_EQ(s.train.length(u), n);
      ++train_users;
      continue;
    }
    EXPECT_EQ(s.train.length(u), 0) << "a held-out user is never trained on: user " << u;
    EXPECT_TRUE(s.valid.length(u) == 0 || s.test.length(u) == 0) << "user " << u;
    (s.valid.length(u) > 0 ? valid_users : test_users) += 1;
    // The first round(0.8 n) items (1 .. n - 1) are the input; every input item comes before every target.
    EXPECT_EQ(input, std::clamp<int64_t>(std::llrint(0.8 * static_cast<double>(n)), 1, n - 1)) << "user " << u;
    const Sequences& targets = s.valid.length(u) > 0 ? s.valid : s.test;
    EXPECT_LT(s.eval_input.timestamps[s.eval_input.offsets[u + 1] - 1], targets.timestamps[targets.offsets[u]]);
  }
  // 160 train users; 20 valid and 20 test users, less those with a single interaction, which stay in train.
  int short_held_out = 0;
  for (int32_t u = 0; u < d.user_count(); ++u) short_held_out += d.interactions.length(u) == 1 ? 1 : 0;
  EXPECT_EQ(valid_users + test_users + train_users, 200);
  EXPECT_GE(train_users, 160);
  EXPECT_LE(train_users, 160 + short_held_out);
  EXPECT_GE(valid_users, 20 - short_held_out);
  EXPECT_LE(valid_users, 20);
  EXPECT_LE(test_users, 20);
  // Both stages condition on the held-out users' inputs.
  for (bool test_stage : {false, true}) {
    const EvalTask task = make_eval_task(s, test_stage);
    EXPECT_EQ(task.history.items, s.eval_input.items);
    EXPECT_EQ(task.targets.items, (test_stage ? s.test : s.valid).items);
  }
}

TEST(Split, ByUserIsSeeded) {
  Dataset d = synthetic_dataset();
  SplitOptions options;
  options.method = SplitMethod::User;
  const Split a = make_split(d, options), b = make_split(d, options);
  EXPECT_EQ(a.eval_input.offsets, b.eval_input.offsets);
  EXPECT_EQ(a.test.items, b.test.items);
  options.seed = 7;
  EXPECT_NE(make_split(d, options).eval_input.offsets, a.eval_input.offsets);
}

TEST(Split, ByUserRejectsBadShares) {
  Dataset d = synthetic_dataset();
  SplitOptions options;
  options.method = SplitMethod::User;
  options.user_ratios = {0.8, 0.1, 0.2};
  EXPECT_THROW(make_split(d, options), Error);
  EXPECT_EQ(user_ratios_problem({0.8, 0.1}), ": must be three shares (train, valid and test users) >= 0 that sum to 1");
  EXPECT_EQ(user_ratios_problem({0.5, 0.5, 0.0}), "");
  options.user_ratios = {0.8, 0.1, 0.1};
  options.input_ratio = 1.0;
  EXPECT_THROW(make_split(d, options), Error);
}

}  // namespace
}  // namespace embrec::data
