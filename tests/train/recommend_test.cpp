// Recommendations from a loaded run: the exact top-k of the model's scores with the user's known items left out,
// for known users and fresh histories; models of user ids refuse fresh histories.
#include "embrec/train/recommend.h"

#include "train_fixtures.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>

#include "../util/error_of.h"

namespace embrec::train {
namespace {

// The top k by brute force: every item's score, known items out, ties by lower id.
std::vector<int32_t> brute_force(const std::vector<float>& scores, const std::set<int32_t>& known, int64_t k) {
  std::vector<int32_t> order;
  for (int32_t i = 0; i < static_cast<int32_t>(scores.size()); ++i)
    if (!known.count(i)) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return scores[a] > scores[b]; });
  order.resize(static_cast<size_t>(k));
  return order;
}

std::vector<int32_t> items_of(const std::vector<index::ScoredItem>& found) {
  std::vector<int32_t> out;
  for (const auto& hit : found) out.push_back(hit.item);
  return out;
}

TEST(Recommend, KnownUsersAndFreshHistoriesGetTheExactTopKWithoutTheirItems) {
  Experiment experiment = experiment_from(small_config("name = 'sasrec'\ndim = 16\nheads = 1\nlayers = 1", 1));
  models::Model& model = *experiment.model;
  model.module().eval();
  const data::Sequences& all = experiment.data.dataset.interactions;
  const torch::Tensor items = model.item_vectors();
  for (int32_t user : {0, 7, 123}) {
    const Recommendations found = recommend_users(experiment, {user}, 10, true);
    const torch::Tensor vector = model.user_vectors(all, &user, 1);
    const torch::Tensor scores = torch::matmul(items, vector[0]).contiguous();
    const std::vector<float> row(scores.data_ptr<float>(), scores.data_ptr<float>() + scores.numel());
    const std::set<int32_t> known(all.begin(user), all.end(user));
    EXPECT_EQ(items_of(found[0]), brute_force(row, known, 10)) << "user " << user;
    EXPECT_EQ(items_of(recommend_users(experiment, {user}, 10, false)[0]), brute_force(row, {}, 10));
  }
  // A fresh history equal to user 7's whole history gets user 7's list.
  data::Sequences history;
  history.push_user(all.begin(7), all.length(7));
  EXPECT_EQ(items_of(recommend_histories(experiment, history, 10, true)[0]),
            items_of(recommend_users(experiment, {7}, 10, true)[0]));
  EXPECT_EQ(error_of([&] { recommend_users(experiment, {100000}, 5, true); }),
            "recommend: internal user id 100000 out of range");
}

TEST(Recommend, CountModelsRankTheirScoresAndIdModelsRefuseFreshHistories) {
  Experiment pop = experiment_from(small_config("name = 'pop'", 1));
  pop.model->fit(pop.data.split);
  const data::Sequences& all = pop.data.dataset.interactions;
  std::vector<float> counts(static_cast<size_t>(pop.data.dataset.item_count()), 0.0f);
  for (int32_t item : pop.data.split.train.items) counts[item] += 1.0f;
  const Recommendations found = recommend_users(pop, {3}, 5, true);
  const std::set<int32_t> known(all.begin(3), all.end(3));
  EXPECT_EQ(items_of(found[0]), brute_force(counts, known, 5));

  Experiment mf = experiment_from(small_config("name = 'mf'\nloss = 'bpr'\ndim = 8", 1));
  data::Sequences history;
  history.push_user(all.begin(0), 3);
  EXPECT_NE(error_of([&] { recommend_histories(mf, history, 5, true); }).find("model 'mf' learns a vector per known user"),
            std::string::npos);
}

}  // namespace
}  // namespace embrec::train
