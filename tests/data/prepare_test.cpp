// prepare_dataset: k-core fixpoint, rating threshold, dedup policies, time ordering, empty results.
#include "embrec/data/prepare.h"

#include <gtest/gtest.h>

#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::data {
namespace {

RawLog make_log(const std::vector<std::tuple<std::string, std::string, float, int64_t>>& rows) {
  RawLog log;
  log.source = "/data/test.log";
  log.has_rating = log.has_timestamp = true;
  int64_t line = 0;
  for (const auto& [user, item, rating, time] : rows) {
    log.user.push_back(log.users.get_or_add(user));
    log.item.push_back(log.items.get_or_add(item));
    log.rating.push_back(rating);
    log.timestamp.push_back(time);
    log.line.push_back(++line);
  }
  return log;
}

TEST(KCore, NeedsMoreThanOnePassToReachTheFixpoint) {
  // 2-core. Users a,b,c; items x,y,z.
  //   a: x y      b: x y      c: z x
  // Pass 1: item z has 1 interaction -> removed. Then user c has 1 left (x) -> removed in pass 2.
  // Then item x has 2 (a, b), y has 2: stable. One pass alone would keep c's x.
  const std::vector<int32_t> user{0, 0, 1, 1, 2, 2}, item{0, 1, 0, 1, 2, 0};
  const std::vector<bool> keep = kcore_mask(user, item, 3, 3, 2, 2);
  EXPECT_EQ(keep, (std::vector<bool>{true, true, true, true, false, false}));
}

TEST(KCore, ResultIsAFixpoint) {
  // Every kept user and item has at least k kept interactions, on a chain that unravels completely at k = 3.
  std::vector<int32_t> user, item;
  for (int32_t u = 0; u < 10; ++u)
    for (int32_t j = 0; j < 3; ++j) {
      user.push_back(u);
      item.push_back(u + j);
    }
  const std::vector<bool> keep = kcore_mask(user, item, 10, 12, 3, 3);
  std::vector<int> user_degree(10), item_degree(12);
  for (size_t i = 0; i < keep.size(); ++i)
    if (keep[i]) ++user_degree[user[i]], ++item_degree[item[i]];
  for (int d : user_degree) EXPECT_TRUE(d == 0 || d >= 3);
  for (int d : item_degree) EXPECT_TRUE(d == 0 || d >= 3);
}

TEST(KCore, UserAndItemThresholdsApplySeparately) {
  // Users a: x y z, b: x. Items x: 2, y: 1, z: 1.
  const std::vector<int32_t> user{0, 0, 0, 1}, item{0, 1, 2, 0};
  // user_core 2 alone drops b; item x then has 1, but no item threshold is set.
  EXPECT_EQ(kcore_mask(user, item, 2, 3, 2, 0), (std::vector<bool>{true, true, true, false}));
  // item_core 2 alone drops y and z; user a then has 1, but no user threshold is set.
  EXPECT_EQ(kcore_mask(user, item, 2, 3, 0, 2), (std::vector<bool>{true, false, false, true}));
  // Both at 2: dropping y, z leaves a with 1 -> dropped; then x has 1 -> dropped; then b has 0. Nothing is left.
  EXPECT_EQ(kcore_mask(user, item, 2, 3, 2, 2), (std::vector<bool>{false, false, false, false}));
}

TEST(Prepare, KCoreRenumbersTheSurvivorsInFirstAppearanceOrder) {
  // The 2-core of the two-pass example above, through prepare_dataset: c and z go, ids stay contiguous, and the
  // survivors keep the order in which they first appear in the file (y before x: y is on the first line).
  Dataset d = prepare_dataset(make_log({{"c", "z", 1, 1},
                                        {"a", "y", 1, 2},
                                        {"c", "x", 1, 3},
                                        {"a", "x", 1, 4},
                                        {"b", "x", 1, 5},
                                        {"b", "y", 1, 6}}),
                              [] {
                                PrepareOptions options;
                                options.user_core = 2;
                                options.item_core = 2;
                                return options;
                              }());
  EXPECT_EQ(d.users.externals(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.items.externals(), (std::vector<std::string>{"y", "x"}));
  EXPECT_EQ(d.interactions.offsets, (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(d.interactions.items, (std::vector<int32_t>{0, 1, 1, 0}));
  EXPECT_EQ(d.interactions.timestamps, (std::vector<int64_t>{2, 4, 5, 6}));
}

TEST(Prepare, SortsEachUserByTimeKeepingFileOrderOnTies) {
  Dataset d = prepare_dataset(make_log({{"u", "a", 1, 30}, {"u", "b", 1, 10}, {"u", "c", 1, 10}, {"v", "a", 1, 5}}),
                              PrepareOptions{});
  ASSERT_EQ(d.user_count(), 2);
  std::vector<std::string> u_items;
  for (const int32_t* it = d.interactions.begin(0); it != d.interactions.end(0); ++it)
    u_items.push_back(d.items.external(*it));
  EXPECT_EQ(u_items, (std::vector<std::string>{"b", "c", "a"}));
  EXPECT_EQ(d.name, "test");
}

TEST(Prepare, RatingThresholdMakesImplicitFeedback) {
  PrepareOptions options;
  options.has_min_rating = true;
  options.min_rating = 4;
  Dataset d = prepare_dataset(make_log({{"u", "a", 5, 1}, {"u", "b", 3, 2}, {"v", "b", 4, 3}}), options);
  EXPECT_EQ(d.interactions.size(), 2);  // 4 is kept: the threshold is inclusive
  EXPECT_EQ(d.items.externals(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(d.interactions.ratings, (std::vector<float>{5, 4}));
}

TEST(Prepare, DedupTiesInTimeKeepFileOrder) {
  auto log = make_log({{"u", "a", 1, 10}, {"u", "a", 2, 10}, {"u", "a", 3, 10}});
  PrepareOptions options;
  options.dedup = Dedup::First;
  EXPECT_EQ(prepare_dataset(log, options).interactions.ratings, (std::vector<float>{1}));
  options.dedup = Dedup::Last;
  EXPECT_EQ(prepare_dataset(log, options).interactions.ratings, (std::vector<float>{3}));
}

TEST(Prepare, DedupPolicies) {
  auto log = make_log({{"u", "a", 1, 20}, {"u", "b", 2, 15}, {"u", "a", 3, 10}});
  PrepareOptions options;
  EXPECT_EQ(prepare_dataset(log, options).interactions.size(), 3);
  options.dedup = Dedup::First;
  Dataset first = prepare_dataset(log, options);
  EXPECT_EQ(first.interactions.ratings, (std::vector<float>{3, 2}));  // a at t=10 kept, then b at 15
  options.dedup = Dedup::Last;
  Dataset last = prepare_dataset(log, options);
  EXPECT_EQ(last.interactions.ratings, (std::vector<float>{2, 1}));  // b at 15, then a at 20
}

TEST(Prepare, FilteringThatEmptiesTheDatasetIsAnError) {
  PrepareOptions options;
  options.user_core = 5;
  EXPECT_EQ(error_of([&] { prepare_dataset(make_log({{"u", "a", 1, 1}, {"v", "b", 1, 2}}), options); }),
            "test.log: k-core filtering (user_core = 5, item_core = 0) removed every interaction");
  PrepareOptions threshold;
  threshold.has_min_rating = true;
  threshold.min_rating = 10;
  EXPECT_EQ(error_of([&] { prepare_dataset(make_log({{"u", "a", 1, 1}}), threshold); }),
            "test.log: no interactions left after the rating threshold (min_rating = 10)");
}

}  // namespace
}  // namespace embrec::data
