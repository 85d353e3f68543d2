// Model -> ScoreSource adapters: a model evaluated by the one full-ranking evaluator.
#include "embrec/models/evaluate.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <numeric>

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
  } else {
    ModelScoreSource source(model, task.history, item_count);
    result = eval::evaluate(source, task, config, groups);
  }
  add_rating_metrics(model, task, result);
  return timed(std::move(result));
}

}  // namespace embrec::models
