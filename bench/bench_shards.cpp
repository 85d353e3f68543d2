// The sharded item index and the ivfpq preset on 200,000 clustered 64-d items (seeded, cosine): queries/s of exact
// Flat search in 1, 2 and 4 shards, one query at a time (as the server runs them) and in batches, with the sharded
// top 10 checked against one shard's; and recall@10 and queries/s of the ivfpq preset against exact Flat search.
//
// Usage: bench_shards [Google Benchmark flags, e.g. --benchmark_filter=Flat]
// Queries/s are wall-clock (`queries_per_s`): a sharded single query runs its shards on up to min(shards, cores)
// OpenMP threads, and batches use OpenMP's default team, so CPU time would hide the parallelism.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "embrec/index/item_index.h"
#include "../tests/index/synthetic.h"  // the clustered vectors the index tests draw
#include "timing.h"

namespace {

using embrec::index::IndexSpec;
using embrec::index::ItemIndex;
using embrec::index::Metric;
using embrec::index::ScoredItem;
using embrec::bench::Clock;
using embrec::bench::seconds_since;

constexpr int64_t kItems = 200000;
constexpr int32_t kDim = 64;
constexpr int64_t kQueries = 1000;
constexpr int64_t kK = 10;
constexpr int64_t kBatch = 250;  // queries per search_batch call

struct Problem {
  std::vector<float> items, queries;
  std::map<int32_t, std::unique_ptr<ItemIndex>> flat;  // by shard count
  std::vector<std::vector<ScoredItem>> exact;          // 1-shard Flat top kK per query
  std::unique_ptr<ItemIndex> ivfpq;
  double ivfpq_build_s = 0;

  Problem() {
    const std::vector<float> all =
        embrec::testing::clustered_vectors(kItems + kQueries, kDim,
                                           static_cast<int32_t>(std::lround(std::sqrt(double{kItems}))), 42);
    items.assign(all.begin(), all.begin() + kItems * kDim);
    queries.assign(all.begin() + kItems * kDim, all.end());
    exact = flat_index(1).search_batch(queries.data(), kQueries, kK);
  }

  const ItemIndex& flat_index(int32_t shards) {
    auto& slot = flat[shards];
    if (!slot) {
      const IndexSpec spec{"Flat", Metric::kCosine};
      slot = std::make_unique<ItemIndex>(ItemIndex::build(items.data(), kItems, kDim, spec, shards));
    }
    return *slot;
  }

  ItemIndex& ivfpq_index() {
    if (!ivfpq) {
      const Clock::time_point start = Clock::now();
      ivfpq = std::make_unique<ItemIndex>(ItemIndex::build(items.data(), kItems, kDim, {"ivfpq", Metric::kCosine}));
      ivfpq_build_s = seconds_since(start);
    }
    return *ivfpq;
  }

  double recall_at_k(const ItemIndex& index) const {
    const auto found = index.search_batch(queries.data(), kQueries, kK);
    int64_t hits = 0;
    for (int64_t q = 0; q < kQueries; ++q) {
      std::set<int32_t> truth;
      for (const ScoredItem& hit : exact[q]) truth.insert(hit.item);
      for (const ScoredItem& hit : found[q]) hits += static_cast<int64_t>(truth.count(hit.item));
    }
    return static_cast<double>(hits) / static_cast<double>(kQueries * kK);
  }
};

Problem& problem() {
  static Problem instance;
  return instance;
}

// One query at a time, cycling through the queries, as the server runs them; sets queries_per_s.
void single_queries(benchmark::State& state, const ItemIndex& index, const std::vector<float>& queries) {
  int64_t q = 0, done = 0;
  const Clock::time_point start = Clock::now();
  for (auto _ : state) {
    benchmark::DoNotOptimize(index.search(queries.data() + q * kDim, kK));
    q = (q + 1) % kQueries;
    ++done;
  }
  state.counters["queries_per_s"] = static_cast<double>(done) / seconds_since(start);
}

// One query at a time, round robin over the query set; `matches_1_shard` is the share of the first 200 queries whose
// sharded top 10 (ids and scores) equals one shard's.
void FlatSingleQuery(benchmark::State& state) {
  Problem& p = problem();
  const ItemIndex& index = p.flat_index(static_cast<int32_t>(state.range(0)));
  int64_t same = 0;
  for (int64_t q = 0; q < 200; ++q) {
    const std::vector<ScoredItem> hits = index.search(p.queries.data() + q * kDim, kK);
    bool equal = hits.size() == p.exact[q].size();
    for (size_t i = 0; equal && i < hits.size(); ++i)
      equal = hits[i].item == p.exact[q][i].item && std::fabs(hits[i].score - p.exact[q][i].score) < 1e-5f;
    same += equal;
  }
  single_queries(state, index, p.queries);
  state.counters["matches_1_shard"] = static_cast<double>(same) / 200.0;
}
BENCHMARK(FlatSingleQuery)->ArgName("shards")->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)
    ->MinTime(3.0)->UseRealTime();

// kBatch queries per search_batch call (OpenMP's default team: the machine's cores).
void FlatBatch(benchmark::State& state) {
  Problem& p = problem();
  const ItemIndex& index = p.flat_index(static_cast<int32_t>(state.range(0)));
  int64_t first = 0, done = 0;
  const Clock::time_point start = Clock::now();
  for (auto _ : state) {
    benchmark::DoNotOptimize(index.search_batch(p.queries.data() + first * kDim, kBatch, kK));
    first = (first + kBatch) % kQueries;
    done += kBatch;
  }
  state.counters["queries_per_s"] = static_cast<double>(done) / seconds_since(start);
}
BENCHMARK(FlatBatch)->ArgName("shards")->Arg(1)->Arg(2)->Arg(4)->Unit(benchmark::kMillisecond)->MinTime(3.0)
    ->UseRealTime();

// The ivfpq preset (IVF1789,PQ8np for 200,000 x 64) at nprobe 16 (IndexSpec's default) and 64, one query at a time;
// recall@10 over all 1,000 queries against exact Flat search.
void IvfPqSingleQuery(benchmark::State& state) {
  Problem& p = problem();
  ItemIndex& index = p.ivfpq_index();
  index.set_search_parameters(static_cast<int32_t>(state.range(0)), 0);
  const double recall = p.recall_at_k(index);
  single_queries(state, index, p.queries);
  state.counters["recall_at_10"] = recall;
  state.counters["build_s"] = p.ivfpq_build_s;
  state.counters["index_MiB"] = static_cast<double>(index.serialize().size()) / (1 << 20);
  state.counters["flat_MiB"] = static_cast<double>(p.flat_index(1).serialize().size()) / (1 << 20);
  state.SetLabel(index.description());
}
BENCHMARK(IvfPqSingleQuery)->ArgName("nprobe")->Arg(16)->Arg(64)->Unit(benchmark::kMillisecond)->MinTime(3.0)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
