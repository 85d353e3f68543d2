// Item index speed and quality: Flat / IVF / HNSW recall@k against exact search and single-query queries/s on
// clustered synthetic vectors, each measured through ItemIndex and through Faiss directly (the wrapper's overhead).
//
// Usage: bench_ann [--items 100000] [--dim 64] [--queries 1000] [--k 20] [--exclude 10] [--seconds 1.0]
//                  [--export DIR]
// --export DIR takes real model vectors instead: the export's item vectors as items and its first `--queries`
// users' vectors as queries (cosine here too, so every row is comparable with the synthetic ones).
// Queries run one at a time on one thread, as the server runs them. `--exclude` items per query (random ones) go
// through ItemIndex's filter; the direct Faiss call fetches k only, so the gap ("time/query", the wrapper's extra
// time per query) is the wrapper's cost plus fetching and filtering the excluded items. HNSW through ItemIndex
// explores at least k + |exclude| candidates (efSearch is raised to the fetch size), Faiss alone efSearch.
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>
#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "embrec/index/export.h"
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

struct Options {
  int64_t items = 100000;
  int32_t dim = 64;
  int64_t queries = 1000;
  int64_t k = 20;
  int64_t exclude = 10;
  double seconds = 1.0;  // minimum measuring time per configuration
  std::string export_dir;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const char* value = argv[i + 1];
    if (name == "--items") o.items = std::stoll(value);
    else if (name == "--export") o.export_dir = value;
    else if (name == "--dim") o.dim = std::stoi(value);
    else if (name == "--queries") o.queries = std::stoll(value);
    else if (name == "--k") o.k = std::stoll(value);
    else if (name == "--exclude") o.exclude = std::stoll(value);
    else if (name == "--seconds") o.seconds = std::stod(value);
    else {
      fmt::print(stderr, "unknown option {}\n", name);
      std::exit(2);
    }
  }
  return o;
}

// Queries per second of `one(q)` cycling through the queries for at least `seconds`.
template <typename Fn>
double queries_per_second(int64_t queries, double seconds, Fn&& one) {
  int64_t done = 0;
  const Clock::time_point start = Clock::now();
  do {
    for (int64_t q = 0; q < queries; ++q) one(q);
    done += queries;
  } while (seconds_since(start) < seconds);
  return static_cast<double>(done) / seconds_since(start);
}

struct Row {
  std::string name;
  double build_seconds;
  double recall;
  double wrapper_qps;
  double faiss_qps;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  omp_set_num_threads(1);  // a server's view: one query, one thread; builds are single-threaded too
  int32_t clusters = static_cast<int32_t>(std::sqrt(static_cast<double>(o.items)));
  std::vector<float> items, queries;
  if (o.export_dir.empty()) {
    const std::vector<float> all = embrec::testing::clustered_vectors(o.items + o.queries, o.dim, clusters, 1);
    items.assign(all.begin(), all.begin() + o.items * o.dim);
    queries.assign(all.begin() + o.items * o.dim, all.end());
  } else {
    const embrec::index::LoadedExport loaded = embrec::index::load_export(o.export_dir);
    o.items = loaded.index.size();
    o.dim = loaded.index.dim();
    o.queries = std::min<int64_t>(o.queries, loaded.store.user_count());
    clusters = 0;
    for (int64_t item = 0; item < o.items; ++item) {
      const std::vector<float> vector = loaded.index.item_vector(static_cast<int32_t>(item));
      items.insert(items.end(), vector.begin(), vector.end());
    }
    for (int64_t user = 0; user < o.queries; ++user) {
      const std::vector<float> vector = loaded.store.user_vector(static_cast<int32_t>(user)).value();
      queries.insert(queries.end(), vector.begin(), vector.end());
    }
    fmt::print("real vectors from {} ({})\n", o.export_dir, loaded.manifest.model);
  }
  faiss::fvec_renorm_L2(o.dim, o.queries, queries.data());  // cosine: the raw Faiss path gets unit queries too
  std::mt19937_64 generator(2);
  std::uniform_int_distribution<int32_t> any_item(0, static_cast<int32_t>(o.items - 1));
  std::vector<std::vector<int32_t>> excludes(static_cast<size_t>(o.queries));
  for (auto& list : excludes)
    for (int64_t i = 0; i < o.exclude; ++i) list.push_back(any_item(generator));

  fmt::print("items {} x dim {}, {} clusters, {} queries, k {}, {} excluded per query, cosine, 1 thread\n", o.items,
             o.dim, clusters, o.queries, o.k, o.exclude);
  const ItemIndex exact = ItemIndex::build(items.data(), o.items, o.dim, {"Flat", Metric::kCosine});
  std::vector<std::vector<ScoredItem>> truth(static_cast<size_t>(o.queries));
  for (int64_t q = 0; q < o.queries; ++q) truth[q] = exact.search(queries.data() + q * o.dim, o.k, excludes[q]);

  const int64_t nlist = static_cast<int64_t>(4 * std::sqrt(static_cast<double>(o.items)));
  struct Config {
    std::string factory;
    int32_t nprobe;
    int32_t ef_search;
  };
  std::vector<Config> configs{{"Flat", 0, 0}};
  for (int32_t nprobe : {1, 4, 16, 64}) configs.push_back({fmt::format("IVF{},Flat", nlist), nprobe, 0});
  for (int32_t ef : {16, 32, 64, 128}) configs.push_back({"HNSW32", 0, ef});

  std::vector<Row> rows;
  std::string built_factory;
  std::unique_ptr<ItemIndex> index;
  std::unique_ptr<faiss::Index> raw;
  double build_seconds = 0;
  for (const Config& config : configs) {
    if (config.factory != built_factory) {
      IndexSpec spec{config.factory, Metric::kCosine};
      const Clock::time_point start = Clock::now();
      index = std::make_unique<ItemIndex>(ItemIndex::build(items.data(), o.items, o.dim, spec));
      build_seconds = seconds_since(start);
      // The same index, deserialised as a bare Faiss object for the direct calls.
      const std::string bytes = index->serialize();
      faiss::VectorIOReader reader;
      reader.data.assign(bytes.begin(), bytes.end());
      raw.reset(faiss::read_index(&reader));
      built_factory = config.factory;
    }
    index->set_search_parameters(config.nprobe, config.ef_search);
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(raw.get())) ivf->nprobe = static_cast<size_t>(config.nprobe);
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(raw.get())) hnsw->hnsw.efSearch = config.ef_search;

    double recall = 0;
    for (int64_t q = 0; q < o.queries; ++q) {
      const std::vector<ScoredItem> found = index->search(queries.data() + q * o.dim, o.k, excludes[q]);
      std::set<int32_t> expected;
      for (const ScoredItem& hit : truth[q]) expected.insert(hit.item);
      for (const ScoredItem& hit : found) recall += expected.count(hit.item);
    }
    recall /= static_cast<double>(o.queries * o.k);
    const double wrapper_qps = queries_per_second(o.queries, o.seconds, [&](int64_t q) {
      (void)index->search(queries.data() + q * o.dim, o.k, excludes[q]);
    });
    std::vector<float> distances(static_cast<size_t>(o.k));
    std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(o.k));
    const double faiss_qps = queries_per_second(o.queries, o.seconds, [&](int64_t q) {
      raw->search(1, queries.data() + q * o.dim, o.k, distances.data(), labels.data());
    });
    std::string name = config.factory;
    if (config.nprobe > 0) name += fmt::format(" nprobe={}", config.nprobe);
    if (config.ef_search > 0) name += fmt::format(" efSearch={}", config.ef_search);
    rows.push_back({name, build_seconds, recall, wrapper_qps, faiss_qps});
    fmt::print("{:<30} build {:7.2f} s  recall@{} {:.4f}  ItemIndex {:9.0f} q/s  Faiss {:9.0f} q/s  time/query {:+5.1f} %\n",
               name, build_seconds, o.k, recall, wrapper_qps, faiss_qps, 100.0 * (faiss_qps / wrapper_qps - 1.0));
    std::fflush(stdout);
  }

  // Batch search (many queries per Faiss call, all cores): what offline evaluation would use.
  omp_set_num_threads(omp_get_num_procs());
  const Clock::time_point start = Clock::now();
  const auto batch = exact.search_batch(queries.data(), o.queries, o.k, excludes, omp_get_num_procs());
  fmt::print("Flat batch of {} queries on {} threads: {:.0f} q/s\n", o.queries, omp_get_num_procs(),
             static_cast<double>(o.queries) / seconds_since(start));
  return batch.size() == static_cast<size_t>(o.queries) ? 0 : 1;
}
