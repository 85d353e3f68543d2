// Augmentation operators keep their invariants: reorder keeps the multiset, mask ratio, crop contiguity, insert and
// substitute draw from the pool; views are deterministic in the generator's seed.
#include "embrec/data/augment.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::data {
namespace {

std::vector<int32_t> range(int32_t n) {
  std::vector<int32_t> v(n);
  for (int32_t i = 0; i < n; ++i) v[i] = 100 + i;
  return v;
}

TEST(Augment, ReorderKeepsTheMultisetAndShufflesOneWindow) {
  std::mt19937_64 random(1);
  const auto sequence = range(20);
  for (int trial = 0; trial < 50; ++trial) {
    auto out = reorder_items(sequence, 0.2, random);
    auto sorted = out;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, sequence);
    // Only a window of floor(0.2 * 20) = 4 positions may move.
    std::vector<int> moved;
    for (int i = 0; i < 20; ++i)
      if (out[i] != sequence[i]) moved.push_back(i);
    if (!moved.empty()) EXPECT_LE(moved.back() - moved.front(), 3);
  }
}

TEST(Augment, MaskReplacesExactlyTheRatio) {
  std::mt19937_64 random(2);
  const auto sequence = range(10);
  auto out = mask_items(sequence, 0.3, -7, random);
  ASSERT_EQ(out.size(), sequence.size());
  EXPECT_EQ(std::count(out.begin(), out.end(), -7), 3);
  for (size_t i = 0; i < out.size(); ++i)
    if (out[i] != -7) EXPECT_EQ(out[i], sequence[i]);
  // At least one item is masked even when the ratio rounds to zero.
  auto short_out = mask_items(range(2), 0.3, -7, random);
  EXPECT_EQ(std::count(short_out.begin(), short_out.end(), -7), 1);
}

TEST(Augment, CropIsOneContiguousWindowOfTheKeptLength) {
  std::mt19937_64 random(3);
  const auto sequence = range(10);
  for (int trial = 0; trial < 30; ++trial) {
    auto out = crop_items(sequence, 0.8, random);  // removes 8, keeps 2 contiguous
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(out[1], out[0] + 1);
  }
  EXPECT_EQ(crop_items(range(3), 0.8, random).size(), 1u);  // floor(2.4) = 2 removed
  EXPECT_EQ(crop_items(range(1), 0.8, random).size(), 1u);  // never empty
}

TEST(Augment, InsertAndSubstituteDrawFromThePool) {
  std::mt19937_64 random(4);
  ItemPool pool({7, 8});
  auto inserted = insert_items(range(10), 0.2, pool, random);
  EXPECT_EQ(inserted.size(), 12u);
  EXPECT_EQ(std::count_if(inserted.begin(), inserted.end(), [](int32_t x) { return x == 7 || x == 8; }), 2);
  // The original items keep their relative order.
  std::vector<int32_t> rest;
  for (int32_t x : inserted)
    if (x >= 100) rest.push_back(x);
  EXPECT_EQ(rest, range(10));
  auto substituted = substitute_items(range(10), 0.2, pool, random);
  EXPECT_EQ(substituted.size(), 10u);
  EXPECT_EQ(std::count_if(substituted.begin(), substituted.end(), [](int32_t x) { return x == 7 || x == 8; }), 2);
}

TEST(Augment, SameSeedSameViewAndUnknownOperatorsAreErrors) {
  AugmentOptions options;
  options.mask_token = 0;
  ItemPool pool({1, 2, 3});
  std::mt19937_64 a(99), b(99);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(augment(range(9), options, pool, a), augment(range(9), options, pool, b));
  ConfigTable table = ConfigTable::parse_string("augmentations = ['mask', 'shuffle']\n", "s4rec.toml");
  const std::string message = error_of([&] { AugmentOptions::from(table); });
  EXPECT_NE(message.find("unknown operator 'shuffle'"), std::string::npos) << message;
}

}  // namespace
}  // namespace embrec::data
