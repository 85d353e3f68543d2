// Splits: no leakage, counts, time order, determinism and seeds, Microsoft Recommenders' rounding.
#include "embrec/data/split.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "embrec/data/demo.h"
#include "embrec/util/error.h"

namespace embrec::data {
namespace {

Dataset demo_dataset() {
  DemoOptions options;
  options.users = 200;
  options.items = 80;
  return generate_demo(options);
}

// Per user, the three parts together are exactly the user's interactions (as a multiset with timestamps), and each
// part is in time order.
void expect_partition(const Dataset& d, const Split& s) {
  for (int32_t u = 0; u < d.user_count(); ++u) {
    std::vector<std::pair<int64_t, int32_t>> all, parts;
    for (int64_t p = d.interactions.offsets[u]; p < d.interactions.offsets[u + 1]; ++p)
      all.emplace_back(d.interactions.timestamps[p], d.interactions.items[p]);
    for (const Sequences* part : {&s.train, &s.valid, &s.test}) {
      ASSERT_EQ(part->user_count(), d.user_count());
      for (int64_t p = part->offsets[u]; p < part->offsets[u + 1]; ++p) {
        parts.emplace_back(part->timestamps[p], part->items[p]);
        if (p > part->offsets[u]) EXPECT_LE(part->timestamps[p - 1], part->timestamps[p]);
      }
    }
    std::sort(all.begin(), all.end());
    std::sort(parts.begin(), parts.end());
    EXPECT_EQ(all, parts) << "user " << u;
  }
}

TEST(Split, LeaveOneOutHoldsOutTheLastTwoByTime) {
  Dataset d = demo_dataset();
  Split s = make_split(d, SplitOptions{});
  expect_partition(d, s);
  for (int32_t u = 0; u < d.user_count(); ++u) {
    const int64_t n = d.interactions.length(u);
    ASSERT_EQ(s.valid.length(u), 1);
    ASSERT_EQ(s.test.length(u), 1);
    EXPECT_EQ(s.test.items[u], d.interactions.items[d.interactions.offsets[u] + n - 1]);
    EXPECT_EQ(s.valid.items[u], d.interactions.items[d.interactions.offsets[u] + n - 2]);
    EXPECT_EQ(s.train.length(u), n - 2);
    // No leakage in time: everything in train precedes the valid item, which precedes the test item.
    EXPECT_LE(s.train.timestamps[s.train.offsets[u + 1] - 1], s.valid.timestamps[u]);
    EXPECT_LE(s.valid.timestamps[u], s.test.timestamps[u]);
  }
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
  Dataset d = demo_dataset();
  SplitOptions options;
  options.method = "chrono";
  options.drop_unseen = false;
  Split s = make_split(d, options);
  expect_partition(d, s);
  for (int32_t u = 0; u < d.user_count(); ++u) {
    const int64_t n = d.interactions.length(u);
    EXPECT_EQ(s.train.length(u), static_cast<int64_t>(std::nearbyint(0.75 * n)));
    if (s.test.length(u) > 0) EXPECT_LE(s.train.timestamps[s.train.offsets[u + 1] - 1], s.test.timestamps[s.test.offsets[u]]);
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
    options.method = "chrono";
    options.drop_unseen = false;
    EXPECT_EQ(make_split(d, options).train.length(0), expected) << n;
  }
}

TEST(Split, StratifiedAndRandomAreSeededAndDeterministic) {
  Dataset d = demo_dataset();
  for (const char* method : {"stratified", "random"}) {
    SplitOptions options;
    options.method = method;
    options.drop_unseen = false;
    Split a = make_split(d, options), b = make_split(d, options);
    expect_partition(d, a);
    EXPECT_EQ(a.train.items, b.train.items) << method;
    EXPECT_EQ(a.test.items, b.test.items) << method;
    options.seed = 43;
    EXPECT_NE(make_split(d, options).test.items, a.test.items) << method;
    const double share = static_cast<double>(a.train.size()) / d.interactions.size();
    EXPECT_NEAR(share, 0.75, 0.02) << method;
  }
}

TEST(Split, StratifiedGivesEveryUserTheirShare) {
  Dataset d = demo_dataset();
  SplitOptions options;
  options.method = "stratified";
  options.drop_unseen = false;
  Split s = make_split(d, options);
  for (int32_t u = 0; u < d.user_count(); ++u)
    EXPECT_EQ(s.train.length(u), static_cast<int64_t>(std::nearbyint(0.75 * d.interactions.length(u))));
}

TEST(Split, ValidIsCarvedFromTrain) {
  Dataset d = demo_dataset();
  SplitOptions options;
  options.method = "chrono";
  options.valid_ratio = 0.15;
  options.drop_unseen = false;
  Split s = make_split(d, options);
  expect_partition(d, s);
  for (int32_t u = 0; u < d.user_count(); ++u) {
    const double n = static_cast<double>(d.interactions.length(u));
    EXPECT_EQ(s.train.length(u), static_cast<int64_t>(std::nearbyint(0.6 * n)));
    EXPECT_EQ(s.train.length(u) + s.valid.length(u), static_cast<int64_t>(std::nearbyint(0.75 * n)));
  }
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
  options.method = "chrono";
  Split s = make_split(d, options);
  // Train: u {a,b,c}, v {a,b,c}; tests: u {d} (never in train: dropped), v {b} (kept).
  EXPECT_EQ(s.test.length(0), 0);
  EXPECT_EQ(s.test.length(1), 1);
}

TEST(Split, BadOptionsAreErrors) {
  Dataset d = demo_dataset();
  SplitOptions options;
  options.method = "chrono";
  options.train_ratio = 1.5;
  EXPECT_THROW(make_split(d, options), Error);
  options.method = "sideways";
  options.train_ratio = 0.5;
  EXPECT_THROW(make_split(d, options), Error);
}

}  // namespace
}  // namespace embrec::data
