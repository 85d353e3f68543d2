// SequenceSampler and fill_histories: layout, determinism, negatives, bucketing.
#include "embrec/data/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

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

// Users A = {0,1,2,3} (3 pairs), C = {4,6} (1 pair) and D = {7,8,9} (2 pairs), and B = {5} (no pair).
Sequences four_users() {
  Sequences train = three_users();  // A, B, C
  const int32_t d[] = {7, 8, 9};
  train.push_user(d, 3);
  return train;
}

// The seed whose epoch 0 queues A, C, D for two slots (searched: the shuffle is the sampler's own).
uint64_t seed_queuing_a_c_d(const Sequences& train) {
  SamplerOptions options;
  options.batch_size = 2;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    options.seed = seed;
    SessionParallelSampler probe(train, 10, options);
    probe.begin_epoch(0);
    SequenceBatch first, second;
    probe.fill(0, first);
    probe.fill(1, second);
    if (first.users == std::vector<int64_t>{0, 2} && second.users == std::vector<int64_t>{0, 3}) return seed;
  }
  ADD_FAILURE() << "no seed queues A, C, D";
  return 0;
}

TEST(SessionParallel, SlotsResetsAndTargetsOnAHandWorkedEpoch) {
  // Two slots, one step a batch. Slot 0 runs A (1->2, 2->3, 3->4); slot 1 runs C (5->7), a sequence of length 2
  // that ends after one step, and D (8->9, 9->10) starts there with a reset. Step 3 would be idle everywhere: the
  // epoch has 3 steps.
  Sequences train = four_users();
  SamplerOptions options;
  options.batch_size = 2;
  options.seed = seed_queuing_a_c_d(train);
  SessionParallelSampler sampler(train, 10, options);
  ASSERT_EQ(sampler.begin_epoch(0), 3);
  SequenceBatch batch;
  std::vector<int64_t> inputs, targets;
  std::vector<uint8_t> resets;
  for (int64_t b = 0; b < 3; ++b) {
    sampler.fill(b, batch);
    ASSERT_EQ(batch.size, 2);
    ASSERT_EQ(batch.length, 1);
    inputs.insert(inputs.end(), batch.input.begin(), batch.input.end());
    targets.insert(targets.end(), batch.target.begin(), batch.target.end());
    resets.insert(resets.end(), batch.reset.begin(), batch.reset.end());
  }
  // (slot 0, slot 1) per step.
  EXPECT_EQ(inputs, (std::vector<int64_t>{1, 5, 2, 8, 3, 9}));
  EXPECT_EQ(targets, (std::vector<int64_t>{2, 7, 3, 9, 4, 10}));
  EXPECT_EQ(resets, (std::vector<uint8_t>{1, 1, 0, 1, 0, 0}));
}

TEST(SessionParallel, StepsPerBatchAreColumnsOfTheSameSlots) {
  // The same epoch with two steps a batch: C ends mid-batch and D starts in the same row; batch 1 is the shorter
  // last one (step 2).
  Sequences train = four_users();
  SamplerOptions options;
  options.batch_size = 2;
  options.seed = seed_queuing_a_c_d(train);
  options.steps = 2;
  SessionParallelSampler sampler(train, 10, options);
  ASSERT_EQ(sampler.begin_epoch(0), 2);
  SequenceBatch batch;
  sampler.fill(0, batch);
  ASSERT_EQ(batch.length, 2);
  EXPECT_EQ(batch.input, (std::vector<int64_t>{1, 2, 5, 8}));  // row = slot, column = step
  EXPECT_EQ(batch.target, (std::vector<int64_t>{2, 3, 7, 9}));
  EXPECT_EQ(batch.reset, (std::vector<uint8_t>{1, 0, 1, 1}));
  EXPECT_EQ(batch.users, (std::vector<int64_t>{0, 3}));  // the slot's user at its last step
  sampler.fill(1, batch);
  ASSERT_EQ(batch.length, 1);
  EXPECT_EQ(batch.input, (std::vector<int64_t>{3, 9}));
  EXPECT_EQ(batch.target, (std::vector<int64_t>{4, 10}));
  EXPECT_EQ(batch.reset, (std::vector<uint8_t>{0, 0}));
}

TEST(SessionParallel, EveryPairOnceInOrderAndIdleSlotsCarryNothing) {
  // Three slots for three users of unequal length: slots fall idle one by one; each user's pairs (the last
  // max_length of them) appear once, in order, in one slot, whatever the seed.
  Sequences train = four_users();
  SamplerOptions options;
  options.batch_size = 3;
  options.max_length = 2;  // A keeps its last 2 pairs: 2->3, 3->4 (ids + 1)
  for (uint64_t seed : {1, 2, 3}) {
    options.seed = seed;
    SessionParallelSampler sampler(train, 10, options);
    const int64_t batches = sampler.begin_epoch(7);
    EXPECT_EQ(batches, 2);  // the longest kept sequence has 2 pairs
    std::vector<std::vector<std::pair<int64_t, int64_t>>> by_slot(3);
    SequenceBatch batch;
    for (int64_t b = 0; b < batches; ++b) {
      sampler.fill(b, batch);
      for (int s = 0; s < 3; ++s) {
        if (batch.target[s] == 0) {
          EXPECT_EQ(batch.input[s], 0);
          EXPECT_EQ(batch.reset[s], 0);
          continue;
        }
        by_slot[s].emplace_back(batch.input[s], batch.target[s]);
      }
    }
    std::multiset<std::vector<std::pair<int64_t, int64_t>>> seen(by_slot.begin(), by_slot.end());
    const std::multiset<std::vector<std::pair<int64_t, int64_t>>> expected = {
        {{2, 3}, {3, 4}}, {{5, 7}}, {{8, 9}, {9, 10}}};
    EXPECT_EQ(seen, expected) << "seed " << seed;
  }
}

TEST(SessionParallel, EpochsAreSeededAndDiffer) {
  SamplerOptions options;
  options.batch_size = 1;
  const Sequences train = four_users();  // the samplers keep a reference to it
  SessionParallelSampler a(train, 10, options), b(train, 10, options);
  std::vector<int64_t> first, again, other;
  SequenceBatch batch;
  for (auto [sampler, epoch, out] : {std::tuple{&a, 0, &first}, std::tuple{&b, 0, &again}, std::tuple{&a, 1, &other}}) {
    const int64_t batches = sampler->begin_epoch(epoch);
    for (int64_t i = 0; i < batches; ++i) {
      sampler->fill(i, batch);
      out->push_back(batch.input[0]);
    }
  }
  EXPECT_EQ(first, again);
  EXPECT_EQ(first.size(), 6u);
  bool differs = false;
  for (uint64_t epoch = 1; epoch < 6 && !differs; ++epoch) {
    std::vector<int64_t> inputs;
    const int64_t batches = a.begin_epoch(static_cast<int64_t>(epoch));
    for (int64_t i = 0; i < batches; ++i) a.fill(i, batch), inputs.push_back(batch.input[0]);
    differs = inputs != first;
  }
  EXPECT_TRUE(differs) << "five epochs in the same user order";
}

TEST(PopularitySampler, FrequenciesFollowCountsToThePowerAlpha) {
  // Training counts: item 0 x6, item 1 x3, item 2 x1, item 3 never (4 items).
  Sequences train;
  const int32_t a[] = {0, 0, 0, 1, 1, 2};
  const int32_t b[] = {0, 0, 0, 1};
  train.push_user(a, 6);
  train.push_user(b, 4);
  const int32_t draws = 200000;
  for (double alpha : {0.0, 0.5, 1.0}) {
    PopularitySampler sampler(train, 4, alpha);
    std::vector<double> expected = {std::pow(6.0, alpha), std::pow(3.0, alpha), 1.0, alpha == 0.0 ? 1.0 : 0.0};
    double total = 0;
    for (double e : expected) total += e;
    std::vector<int64_t> out;
    sampler.draw(11, draws, out);
    std::vector<double> frequency(4, 0.0);
    for (int64_t id : out) {
      ASSERT_GE(id, 1);
      ASSERT_LE(id, 4);
      frequency[static_cast<size_t>(id - 1)] += 1.0 / draws;
    }
    for (size_t i = 0; i < 4; ++i) {
      EXPECT_NEAR(sampler.probabilities()[i], expected[i] / total, 1e-12) << "alpha " << alpha << " item " << i;
      // Four standard deviations of a binomial share at 200,000 draws is under 0.005.
      EXPECT_NEAR(frequency[i], expected[i] / total, 0.005) << "alpha " << alpha << " item " << i;
    }
  }
}

TEST(PopularitySampler, SharedNegativesAreDrawnPerBatchAndSeeded) {
  SamplerOptions options;
  options.shared_negatives = 16;
  options.negative_alpha = 1.0;
  const Sequences train = three_users();
  SequenceSampler sampler(train, 10, options);
  SequenceBatch first, again, other;
  sampler.fill({0, 2}, 0, 0, first);
  sampler.fill({0, 2}, 0, 0, again);
  sampler.fill({0, 2}, 0, 1, other);
  ASSERT_EQ(first.shared_negative.size(), 16u);
  EXPECT_EQ(first.shared_negative, again.shared_negative);
  EXPECT_NE(first.shared_negative, other.shared_negative);
  // By popularity: only items seen in training (0..6 except none; ids + 1) are drawn.
  const std::set<int64_t> trained = {1, 2, 3, 4, 5, 6, 7};
  for (int64_t id : first.shared_negative) EXPECT_TRUE(trained.count(id)) << id;
}

}  // namespace
}  // namespace embrec::data
