// Model -> ScoreSource adapters: a model evaluated by the one full-ranking evaluator.
#include "embrec/models/evaluate.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <numeric>

#include "embrec/eval/impression_metrics.h"
#include "embrec/eval/metrics.h"
#include "embrec/index/item_index.h"

namespace embrec::models {

namespace {
// Count-based models fill their own blocks.
class ModelScoreSource final : public eval::ScoreSource {
 public:
  ModelScoreSource(Model& model, const data::Sequences& histories, int32_t item_count)
      : model_(model), histories_(histories), item_count_(item_count) {}
  int32_t item_count() const override { return item_count_; }
  void score_block(const int32_t* users, int32_t count, float* out) override {
    model_.score_block(histories_, users, count, out);
  }

 private:
  Model& model_;
  const data::Sequences& histories_;
  int32_t item_count_;
};

// Embedding models searched through embrec's Faiss item index: each user's row holds the scores of the items the
// index returns (the top max_k plus as many as the user's history, so that max_k remain after the evaluator's
// exclusion) and -infinity elsewhere; a target the index does not return is a miss.
class IndexScoreSource final : public eval::ScoreSource {
 public:
  IndexScoreSource(const torch::Tensor& user_vectors, const torch::Tensor& item_vectors,
                   const data::Sequences& histories, const eval::EvalConfig& config)
      : user_vectors_(user_vectors),
        histories_(histories),
        index_(index::ItemIndex::build(item_vectors.data_ptr<float>(), item_vectors.size(0),
                                       static_cast<int32_t>(item_vectors.size(1)),
                                       index::IndexSpec{index::resolve_factory(config.index, item_vectors.size(0)),
                                                        index::parse_metric(config.index_metric)})),
        max_k_(*std::max_element(config.ks.begin(), config.ks.end())) {}
  int32_t item_count() const override { return static_cast<int32_t>(index_.size()); }
  void score_block(const int32_t* users, int32_t count, float* out) override {
    const int64_t items = index_.size();
    std::fill(out, out + count * items, -std::numeric_limits<float>::infinity());
    for (int32_t row = 0; row < count; ++row) {
      const int32_t u = users[row];
      const int64_t depth = std::min<int64_t>(items, max_k_ + histories_.length(u));
      for (const index::ScoredItem& hit : index_.search(user_vectors_[u].data_ptr<float>(), depth))
        out[row * items + hit.item] = hit.score;
    }
  }

 private:
  torch::Tensor user_vectors_;
  const data::Sequences& histories_;
  index::ItemIndex index_;
  int64_t max_k_;
};

}  // namespace

void add_rating_metrics(Model& model, const data::EvalTask& task, eval::EvalResult& result) {
  const data::Sequences& targets = task.targets;
  if (!model.predicts_ratings() || !targets.has_ratings() || targets.size() == 0) return;
  std::vector<int32_t> users(static_cast<size_t>(targets.size()));
  for (int32_t u = 0; u < targets.user_count(); ++u)
    std::fill(users.begin() + targets.offsets[u], users.begin() + targets.offsets[u + 1], u);
  std::vector<float> predicted(users.size());
  model.predict_ratings(users.data(), targets.items.data(), targets.size(), predicted.data());
  const float* truth = targets.ratings.data();
  std::map<std::string, double>& values = result.groups.front().values;
  values["rmse"] = eval::rmse(truth, predicted.data(), targets.size());
  values["mae"] = eval::mae(truth, predicted.data(), targets.size());
  values["r2"] = eval::r_squared(truth, predicted.data(), targets.size());
  values["explained_variance"] = eval::explained_variance(truth, predicted.data(), targets.size());
}

void add_impression_metrics(Model& model, const data::EvalTask& task, const torch::Tensor& user_vectors,
                            const torch::Tensor& item_vectors, int32_t item_count, eval::EvalResult& result) {
  if (!task.impressions) return;
  const data::ImpressionSet& impressions = *task.impressions;
  std::vector<float> scores(impressions.candidates.size());
  if (user_vectors.defined()) {
    const float* users = user_vectors.data_ptr<float>();
    const float* items = item_vectors.data_ptr<float>();
    const int64_t dim = user_vectors.size(1);
    for (int64_t i = 0; i < impressions.size(); ++i) {
      const float* user = users + impressions.user[i] * dim;
      for (int64_t c = impressions.candidate_offsets[i]; c < impressions.candidate_offsets[i + 1]; ++c) {
        const float* item = items + static_cast<int64_t>(impressions.candidates[c]) * dim;
        scores[c] = static_cast<float>(std::inner_product(user, user + dim, item, 0.0));
      }
    }
  } else {  // count-based: the users' score blocks, a chunk of users at a time
    std::vector<int32_t> users(impressions.user);
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());
    const int32_t chunk = 256;
    std::vector<float> block(static_cast<size_t>(chunk) * item_count);
    std::vector<std::vector<int64_t>> by_user(static_cast<size_t>(task.history.user_count()));
    for (int64_t i = 0; i < impressions.size(); ++i) by_user[impressions.user[i]].push_back(i);
    for (size_t begin = 0; begin < users.size(); begin += chunk) {
      const int32_t count = static_cast<int32_t>(std::min<size_t>(chunk, users.size() - begin));
      model.score_block(task.history, users.data() + begin, count, block.data());
      for (int32_t row = 0; row < count; ++row)
        for (const int64_t i : by_user[users[begin + row]])
          for (int64_t c = impressions.candidate_offsets[i]; c < impressions.candidate_offsets[i + 1]; ++c)
            scores[c] = block[static_cast<size_t>(row) * item_count + impressions.candidates[c]];
    }
  }
  const eval::ImpressionMetrics metrics = eval::mean_impression_metrics(
      impressions.candidate_offsets.data(), impressions.size(), impressions.labels.data(), scores.data());
  eval::add_impression_values(metrics, result.groups.front().values);
}

eval::EvalResult evaluate_model(Model& model, const data::EvalTask& task, int32_t item_count,
                                const eval::EvalConfig& config, const eval::UserGroups* groups) {
  // Reported seconds cover the whole evaluation: encoding the users as well as ranking.
  const auto start = std::chrono::steady_clock::now();
  auto timed = [&](eval::EvalResult result) {
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return result;
  };
  eval::EvalResult result;
  if (model.dim() > 0) {
    const int32_t users = task.history.user_count();
    std::vector<int32_t> all(users);
    std::iota(all.begin(), all.end(), 0);
    torch::Tensor user_vectors = model.user_vectors(task.history, all.data(), users).contiguous();
    torch::Tensor item_vectors = model.item_vectors().contiguous();
    if (config.search == eval::Search::Index) {
      IndexScoreSource source(user_vectors, item_vectors, task.history, config);
      result = eval::evaluate(source, task, config, groups);
    } else {
      eval::EmbeddingScorer scorer(user_vectors.data_ptr<float>(), users, item_vectors.data_ptr<float>(),
                                   static_cast<int32_t>(item_vectors.size(0)), static_cast<int32_t>(model.dim()));
      result = eval::evaluate(scorer, task, config, groups);
    }
    add_impression_metrics(model, task, user_vectors, item_vectors, item_count, result);
  } else {
    ModelScoreSource source(model, task.history, item_count);
    result = eval::evaluate(source, task, config, groups);
    add_impression_metrics(model, task, torch::Tensor(), torch::Tensor(), item_count, result);
  }
  add_rating_metrics(model, task, result);
  return timed(std::move(result));
}

}  // namespace embrec::models
