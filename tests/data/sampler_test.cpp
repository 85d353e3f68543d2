// SequenceSampler and fill_histories: layout, determinism, negatives, bucketing.
#include "embrec/data/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace embrec::data {
namespace {

Sequences three_users() {
  Sequences train;
  const int32_t a[] = {0, 1, 2, 3};  // pairs: 0->1, 1->2, 2->3
  const int32_t b[] = {5};           // one item: no pair, not sampled
  const int32_t c[] = {4, 6};        // pair: 4->6
  train.push_user(a, 4);
  train.push_user(b, 1);
  train.push_user(c, 2);
  return train;
}

TEST(Sampler, BatchesAreRightAlignedInputsWithNextItemTargets) {
  Sequences train = three_users();
  SamplerOptions options;
  options.batch_size = 8;
  options.max_length = 5;
  SequenceSampler sampler(train, 10, options);
  EXPECT_EQ(sampler.training_users(), 2);
  SequenceBatch batch;
  sampler.fill({0, 2}, 0, 0, batch);
  ASSERT_EQ(batch.size, 2);
  ASSERT_EQ(batch.length, 3);  // the longest user has 3 pairs
  // Ids are shifted by one; padding (0) on the left.
  EXPECT_EQ(batch.input, (std::vector<int64_t>{1, 2, 3, 0, 0, 5}));
  EXPECT_EQ(batch.target, (std::vector<int64_t>{2, 3, 4, 0, 0, 7}));
  EXPECT_TRUE(batch.negative.empty());
}

TEST(Sampler, LongHistoriesKeepTheirLastPairs) {
  Sequences train = three_users();
  SamplerOptions options;
  options.max_length = 2;
  SequenceSampler sampler(train, 10, options);
  SequenceBatch batch;
  sampler.fill({0}, 0, 0, batch);
  EXPECT_EQ(batch.input, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(batch.target, (std::vector<int64_t>{3, 4}));
}

TEST(Sampler, NegativesAvoidTheUsersItemsAndAreSeeded) {
  Sequences train = three_users();
  SamplerOptions options;
  options.negatives = true;
  SequenceSampler sampler(train, 8, options);
  SequenceBatch first, second, other_epoch;
  sampler.fill({0, 2}, 3, 1, first);
  sampler.fill({0, 2}, 3, 1, second);
  sampler.fill({0, 2}, 4, 1, other_epoch);
  EXPECT_EQ(first.negative, second.negative);
  const std::set<int64_t> user_a = {1, 2, 3, 4};  // shifted ids of items 0..3
  for (int j = 0; j < first.length; ++j) {
    const int64_t negative = first.negative[j];
    if (first.target[j] == 0) {
      EXPECT_EQ(negative, 0);
    } else {
      EXPECT_EQ(user_a.count(negative), 0u) << negative;
      EXPECT_GE(negative, 1);
      EXPECT_LE(negative, 8);
    }
  }
  std::vector<int64_t> many_a, many_b;
  for (int b = 0; b < 20; ++b) {
    sampler.fill({0}, 3, b, first);
    sampler.fill({0}, 4, b, other_epoch);
    many_a.insert(many_a.end(), first.negative.begin(), first.negative.end());
    many_b.insert(many_b.end(), other_epoch.negative.begin(), other_epoch.negative.end());
  }
  EXPECT_NE(many_a, many_b);
}

TEST(Sampler, EpochPlansAreDeterministicPermutations) {
  Sequences train;
  for (int32_t u = 0; u < 100; ++u) {
    std::vector<int32_t> items(2 + u % 7, u % 10);
    train.push_user(items.data(), static_cast<int64_t>(items.size()));
  }
  for (bool bucketing : {false, true}) {
    SamplerOptions options;
    options.batch_size = 16;
    options.length_bucketing = bucketing;
    SequenceSampler sampler(train, 10, options);
    auto plan = sampler.epoch_plan(5);
    EXPECT_EQ(plan, sampler.epoch_plan(5));
    EXPECT_NE(plan, sampler.epoch_plan(6));
    std::vector<int32_t> all;
    for (auto& batch : plan) all.insert(all.end(), batch.begin(), batch.end());
    std::sort(all.begin(), all.end());
    std::vector<int32_t> expected(100);
    for (int32_t u = 0; u < 100; ++u) expected[u] = u;
    EXPECT_EQ(all, expected);
    EXPECT_EQ(plan.size(), 7u);  // ceil(100 / 16)
  }
}

TEST(Sampler, HistoriesAreLeftPaddedToTheLongestInTheBlock) {
  Sequences histories = three_users();
  const int32_t users[] = {1, 0};
  std::vector<int64_t> out;
  EXPECT_EQ(fill_histories(histories, users, 2, 3, out), 3);
  EXPECT_EQ(out, (std::vector<int64_t>{0, 0, 6, 2, 3, 4}));
}

TEST(Sampler, AllItemsMakesEveryTrainingItemATargetWithItsRating) {
  // MF's layout: no next-item shift, so user 0's first item and user 1's single item are targets too, and the
  // whole list is kept although max_length is 2.
  Sequences train;
  const int32_t a[] = {0, 1, 2, 3}, b[] = {5}, c[] = {4, 6};
  const float ra[] = {5, 4, 3, 2}, rb[] = {1}, rc[] = {4.5f, 3.5f};
  train.push_user(a, 4, ra);
  train.push_user(b, 1, rb);
  train.push_user(c, 2, rc);
  SamplerOptions options;
  options.max_length = 2;
  options.all_items = true;
  options.ratings = true;
  SequenceSampler sampler(train, 10, options);
  EXPECT_EQ(sampler.training_users(), 3);
  SequenceBatch batch;
  sampler.fill({0, 1, 2}, 0, 0, batch);
  ASSERT_EQ(batch.length, 4);
  EXPECT_EQ(batch.target, (std::vector<int64_t>{1, 2, 3, 4, 0, 0, 0, 6, 0, 0, 5, 7}));
  EXPECT_EQ(batch.input, batch.target);
  EXPECT_EQ(batch.rating, (std::vector<float>{5, 4, 3, 2, 0, 0, 0, 1, 0, 0, 4.5f, 3.5f}));
}

TEST(Sampler, RatingsWithoutRatingDataAreAnError) {
  SamplerOptions options;
  options.ratings = true;
  try {
    SequenceSampler sampler(three_users(), 10, options);
    FAIL() << "expected an error";
  } catch (const std::exception& error) {
    EXPECT_NE(std::string(error.what()).find("ratings"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace embrec::data
