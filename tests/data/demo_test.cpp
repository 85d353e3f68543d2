// The demo generator: sizes, determinism, head/tail lengths and the sequential signal it promises.
#include "embrec/data/demo.h"

#include <gtest/gtest.h>

#include <map>

namespace embrec::data {
namespace {

TEST(Demo, HasTheRequestedShapeAndIsDeterministic) {
  DemoOptions options;
  options.users = 500;
  options.items = 200;
  Dataset a = generate_demo(options);
  Dataset b = generate_demo(options);
  EXPECT_EQ(a.user_count(), 500);
  EXPECT_EQ(a.item_count(), 200);
  EXPECT_EQ(a.interactions.items, b.interactions.items);
  options.seed += 1;
  EXPECT_NE(generate_demo(options).interactions.items, a.interactions.items);
  int head = 0;
  for (int32_t u = 0; u < a.user_count(); ++u) {
    const int64_t length = a.interactions.length(u);
    EXPECT_TRUE((length >= options.tail_min_length && length <= options.tail_max_length) ||
                (length >= options.head_min_length && length <= options.head_max_length))
        << length;
    head += length >= options.head_min_length;
  }
  EXPECT_NEAR(head / 500.0, options.head_share, 0.06);
}

TEST(Demo, NextItemsFollowTransitionsMoreOftenThanPopularityExplains) {
  // The most frequent successor of an item should carry far more than its popularity share: that is the
  // sequential signal SASRec learns and popularity cannot.
  Dataset demo = generate_demo(DemoOptions{});
  std::map<std::pair<int32_t, int32_t>, int> pairs;
  std::map<int32_t, int> from;
  for (int32_t u = 0; u < demo.user_count(); ++u)
    for (const int32_t* it = demo.interactions.begin(u); it + 1 < demo.interactions.end(u); ++it) {
      ++pairs[{it[0], it[1]}];
      ++from[it[0]];
    }
  std::map<int32_t, int> best;
  for (auto& [pair, count] : pairs) best[pair.first] = std::max(best[pair.first], count);
  int64_t followed = 0, total = 0;
  for (auto& [item, count] : from) {
    followed += best[item];
    total += count;
  }
  EXPECT_GT(static_cast<double>(followed) / total, 0.5);
}

TEST(Demo, RejectsImpossibleShapes) {
  DemoOptions options;
  options.items = 3;
  EXPECT_THROW(generate_demo(options), std::exception);
}

}  // namespace
}  // namespace embrec::data
