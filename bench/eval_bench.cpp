// Full-ranking evaluation at Beauty's size: 22,363 users x 12,101 items, dim 64, one target per user and histories
// of Beauty's length distribution (mean ~8.9) excluded. Random vectors: this measures speed, not quality.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <random>

#include "embrec/eval/evaluator.h"

namespace {

struct Problem {
  int32_t users = 22363, items = 12101, dim = 64;
  std::vector<float> user_vectors, item_vectors;
  embrec::data::EvalTask task;

  Problem() {
    std::mt19937 random(1);
    std::normal_distribution<float> normal(0.f, 1.f);
    user_vectors.resize(static_cast<size_t>(users) * dim);
    item_vectors.resize(static_cast<size_t>(items) * dim);
    for (float& v : user_vectors) v = normal(random);
    for (float& v : item_vectors) v = normal(random);
    std::geometric_distribution<int> extra(1.0 / 5.0);
    std::uniform_int_distribution<int32_t> any_item(0, items - 1);
    std::vector<int32_t> history;
    for (int32_t u = 0; u < users; ++u) {
      history.assign(4 + std::min(extra(random), 200), 0);
      for (int32_t& item : history) item = any_item(random);
      task.history.push_user(history.data(), static_cast<int64_t>(history.size()));
      const int32_t target = any_item(random);
      task.targets.push_user(&target, 1);
    }
  }
};

void FullRankingBeautySize(benchmark::State& state) {
  static Problem problem;
  embrec::eval::EvalConfig config;
  config.chunk_users = static_cast<int32_t>(state.range(0));
  for (auto _ : state) {
    embrec::eval::EmbeddingScorer scorer(problem.user_vectors.data(), problem.users, problem.item_vectors.data(),
                                         problem.items, problem.dim);
    auto result = embrec::eval::evaluate(scorer, problem.task, config);
    benchmark::DoNotOptimize(result.all().values);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  state.counters["peak_rss_MiB"] = usage.ru_maxrss / 1024.0;
  state.counters["users"] = problem.users;
}
BENCHMARK(FullRankingBeautySize)->Arg(64)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
