// Figures for the capacity plan (100M users x 10M items x 64-d), measured at the sizes given: writing and reading
// the user store (RocksDB, through UserStoreWriter / UserStore) and building and searching the ivfpq item index
// (through ItemIndex). Prints Markdown table rows with the exact parameters (no torch).
//
// Usage:
//   bench_scale --store USERS [--seen 20] [--catalogue 10000000] [--lookups 100000] [--dir DIR] [--keep]
//   bench_scale --ivfpq ITEMS [--factory ivfpq|"IVF4000,PQ32"] [--queries 1000] [--seconds 2] [--dir DIR] [--keep]
// The capacity-plan runs (bench/RESULTS.md):
//   build/bench/bench_scale --store 10000000
//   build/bench/bench_scale --ivfpq 1000000
//   build/bench/bench_scale --ivfpq 10000000
// --dir (default $TMPDIR or /tmp, embrec-bench-scale-<pid>) must not exist yet: it is created, and removed at the
// end unless --keep.
//
// --store writes USERS users (seeded standard-normal 64-d vectors, `--seen` items each drawn uniformly from
// `--catalogue` item ids; external ids "u0", "u1", ...; no item id maps) into a new store, then times lookups of
// random existing users as the service makes them per request (serve/service.cpp): user_id(external id),
// user_vector, seen_items. The write time excludes generating the data. The reader is UserStore::open_read_only,
// which sets no table options, so RocksDB's default block cache serves it (an 8 MiB LRU cache); the store's files
// stay in the OS page cache after writing (dropping it needs root), so lookups read memory, not the disk.
// --ivfpq builds the "ivfpq" preset (IndexSpec{"ivfpq", cosine}: the preset's own list count for ITEMS), or the
// --factory index, on ITEMS clustered vectors (tests/index/synthetic.h, sqrt(ITEMS) clusters, seed 42, as
// bench_shards), writes it with ItemIndex::save, and measures recall@10 against exact search (brute force through
// Faiss' BLAS kernel) and single-query queries/s at nprobe 16 and 64, for `--queries` queries drawn from the same
// clusters.
//
// Threads: OMP_NUM_THREADS and OPENBLAS_NUM_THREADS change the figures: the ivfpq build (k-means, adding) runs on
// OpenMP and the exact search on BLAS; single queries run on one thread, as ItemIndex always runs them. On cores
// busy with other work, OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 spares the threads' waits on each other (--ivfpq
// 50000 on the loaded 2-core development machine: build 26.0 s with the default threads, 6.8 s with one).
#include <faiss/utils/distances.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "embrec/index/item_index.h"
#include "embrec/index/user_store.h"
#include "embrec/util/error.h"
#include "../tests/index/synthetic.h"  // the clustered vectors the index tests draw
#include "timing.h"

namespace {

namespace fs = std::filesystem;
using embrec::fail;
using embrec::index::IndexSpec;
using embrec::index::ItemIndex;
using embrec::index::Metric;
using embrec::index::ScoredItem;
using embrec::bench::Clock;
using embrec::bench::seconds_since;

constexpr int32_t kDim = 64;
constexpr int64_t kK = 10;
constexpr int32_t kStoreBatchUsers = 1024;  // UserStoreWriter's default, as the export uses it
constexpr int64_t kWriteChunkUsers = 4096;  // users generated ahead of each timed run of add_user calls

struct Options {
  int64_t store_users = 0;
  int64_t ivfpq_items = 0;
  int32_t seen = 20;                  // items per user
  int64_t catalogue = 10'000'000;     // item ids the seen items are drawn from
  int64_t lookups = 100'000;          // per thread
  int64_t queries = 1000;
  std::string factory = "ivfpq";      // --ivfpq: the preset, or a Faiss factory string such as "IVF4000,PQ32"
  double seconds = 2.0;               // minimum timing per nprobe
  std::string dir;
  bool keep = false;
};

double mib(double bytes) { return bytes / (1 << 20); }

int64_t peak_resident_bytes() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;
}

int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident_pages = 0;
  statm >> pages >> resident_pages;
  return resident_pages * sysconf(_SC_PAGESIZE);
}

int64_t folder_bytes(const fs::path& dir) {
  int64_t total = 0;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) total += static_cast<int64_t>(entry.file_size());
  return total;
}

std::string threads_text() {
  const auto env = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value != nullptr ? value : "unset");
  };
  return fmt::format("{} cores, OMP_NUM_THREADS={}, OPENBLAS_NUM_THREADS={}", std::thread::hardware_concurrency(),
                     env("OMP_NUM_THREADS"), env("OPENBLAS_NUM_THREADS"));
}

// The --dir folder: must not exist; removed at the end (also after an error) unless --keep.
class ScratchFolder {
 public:
  ScratchFolder(const std::string& path, bool keep) : path_(path), keep_(keep) {
    if (fs::exists(path_))
      fail("--dir {}: already exists; give a folder that does not exist yet (bench_scale creates it{})", path_,
           keep_ ? "" : " and removes it at the end");
  }
  ~ScratchFolder() {
    std::error_code ignored;
    if (!keep_) fs::remove_all(path_, ignored);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool keep_;
};

struct LatencySummary {
  double p50_us, p99_us, mean_us;
};

LatencySummary summarise(std::vector<double> latencies_us) {
  std::sort(latencies_us.begin(), latencies_us.end());
  const auto at = [&](double share) {
    return latencies_us[std::min(latencies_us.size() - 1, static_cast<size_t>(share * latencies_us.size()))];
  };
  double sum = 0;
  for (double value : latencies_us) sum += value;
  return {at(0.50), at(0.99), sum / static_cast<double>(latencies_us.size())};
}

void print_table_head() {
  fmt::print("| figure | value | notes |\n|---|---|---|\n");
}

void row(const std::string& figure, const std::string& value, const std::string& notes = "") {
  fmt::print("| {} | {} | {} |\n", figure, value, notes);
  std::fflush(stdout);
}

// ----------------------------------------------------------------------------------------------------------------
// --store

// Writes `o.store_users` users; returns the seconds spent in add_user (generation excluded) and in finish().
std::pair<double, double> write_store(const Options& o, const std::string& dir) {
  std::mt19937_64 generator(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int32_t> any_item(0, static_cast<int32_t>(o.catalogue - 1));
  std::vector<float> vectors(static_cast<size_t>(kWriteChunkUsers * kDim));
  std::vector<int32_t> seen(static_cast<size_t>(kWriteChunkUsers * o.seen));
  std::vector<std::string> externals(static_cast<size_t>(kWriteChunkUsers));

  embrec::index::UserStoreWriter writer(dir, kDim, kStoreBatchUsers);
  double add_seconds = 0;
  for (int64_t first = 0; first < o.store_users; first += kWriteChunkUsers) {
    const int64_t count = std::min(kWriteChunkUsers, o.store_users - first);
    for (float& value : vectors) value = normal(generator);
    for (int32_t& item : seen) item = any_item(generator);
    for (int64_t i = 0; i < count; ++i) externals[i] = "u" + std::to_string(first + i);
    const Clock::time_point start = Clock::now();
    for (int64_t i = 0; i < count; ++i)
      writer.add_user(externals[i], vectors.data() + i * kDim, seen.data() + i * o.seen, static_cast<size_t>(o.seen));
    add_seconds += seconds_since(start);
  }
  const Clock::time_point start = Clock::now();
  writer.finish();
  return {add_seconds, seconds_since(start)};
}

struct LookupKeys {
  std::vector<int32_t> users;          // internal ids: users are written in order, so the number in the external id
  std::vector<std::string> externals;  // "u{user}"
};

// `count` random existing users (seeded), made before timing so the timed loop holds lookups only.
LookupKeys random_users(int64_t users, int64_t count, uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::uniform_int_distribution<int32_t> any_user(0, static_cast<int32_t>(users - 1));
  LookupKeys keys;
  for (int64_t i = 0; i < count; ++i) {
    keys.users.push_back(any_user(generator));
    keys.externals.push_back("u" + std::to_string(keys.users.back()));
  }
  return keys;
}

// One lookup per key as the service makes it per request; microseconds each. Wrong or missing data is an Error.
std::vector<double> time_lookups(const embrec::index::UserStore& store, const LookupKeys& keys, int32_t seen) {
  std::vector<double> latencies_us(keys.users.size());
  for (size_t i = 0; i < keys.users.size(); ++i) {
    const Clock::time_point start = Clock::now();
    const std::optional<int32_t> user = store.user_id(keys.externals[i]);
    const std::optional<std::vector<float>> vector = user ? store.user_vector(*user) : std::nullopt;
    const std::optional<std::vector<int32_t>> items = user ? store.seen_items(*user) : std::nullopt;
    latencies_us[i] = 1e6 * seconds_since(start);
    if (!user || *user != keys.users[i] || !vector || !items || items->size() != static_cast<size_t>(seen))
      fail("{}: lookup of user '{}' returned wrong or missing data", store.dir(), keys.externals[i]);
  }
  return latencies_us;
}

void run_store(const Options& o) {
  const ScratchFolder folder(o.dir, o.keep);
  fmt::print("## bench_scale --store {}: {} users x {}-d float32, {} seen items each from {} item ids, "
             "WriteBatch of {} users, no WAL; lookups of random users ({}); folder {}\n\n",
             o.store_users, o.store_users, kDim, o.seen, o.catalogue, kStoreBatchUsers, threads_text(), o.dir);
  print_table_head();

  const auto [add_seconds, finish_seconds] = write_store(o, o.dir);
  const double users = static_cast<double>(o.store_users);
  row("write (add_user calls)", fmt::format("{:.2f} s", add_seconds), "excludes generating the data");
  row("write rate", fmt::format("{:.0f} users/s", users / add_seconds),
      fmt::format("{:.0f} users/s including finish()", users / (add_seconds + finish_seconds)));
  row("finish() (flush, close)", fmt::format("{:.2f} s", finish_seconds));
  row("peak resident memory after writing", fmt::format("{:.0f} MiB", mib(peak_resident_bytes())),
      "includes the writer's set of external ids");
  const int64_t store_bytes = folder_bytes(o.dir);
  row("store size on disk", fmt::format("{:.1f} MiB", mib(store_bytes)), "sum of file sizes in the folder");
  row("bytes per user", fmt::format("{:.1f}", static_cast<double>(store_bytes) / users),
      fmt::format("payload {} (vector {} + seen items {})", 4 * kDim + 4 * o.seen, 4 * kDim, 4 * o.seen));

  Clock::time_point start = Clock::now();
  const embrec::index::UserStore store = embrec::index::UserStore::open_read_only(o.dir);
  row("open_read_only", fmt::format("{:.3f} s", seconds_since(start)), "block cache: RocksDB default, 8 MiB LRU");

  const LookupKeys one_keys = random_users(o.store_users, o.lookups, 2);
  start = Clock::now();
  const LatencySummary one = summarise(time_lookups(store, one_keys, o.seen));
  const double one_seconds = seconds_since(start);
  const std::string lookup = "user_id + user_vector + seen_items";
  row(fmt::format("lookup latency, 1 thread, {} random users", o.lookups),
      fmt::format("p50 {:.1f} µs, p99 {:.1f} µs, mean {:.1f} µs", one.p50_us, one.p99_us, one.mean_us), lookup);
  row("lookup rate, 1 thread", fmt::format("{:.0f} lookups/s", static_cast<double>(o.lookups) / one_seconds),
      "wall clock");

  constexpr int kThreads = 2;
  std::vector<LookupKeys> thread_keys;
  for (int t = 0; t < kThreads; ++t) thread_keys.push_back(random_users(o.store_users, o.lookups, 3 + t));
  std::vector<std::vector<double>> per_thread(kThreads);
  start = Clock::now();
  {
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> errors(kThreads);
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        try {
          per_thread[t] = time_lookups(store, thread_keys[t], o.seen);
        } catch (...) {
          errors[t] = std::current_exception();
        }
      });
    for (std::thread& thread : threads) thread.join();
    for (const std::exception_ptr& error : errors)
      if (error) std::rethrow_exception(error);
  }
  const double two_seconds = seconds_since(start);
  std::vector<double> all;
  for (const auto& latencies : per_thread) all.insert(all.end(), latencies.begin(), latencies.end());
  const LatencySummary two = summarise(std::move(all));
  row(fmt::format("lookup latency, {} threads, {} random users each", kThreads, o.lookups),
      fmt::format("p50 {:.1f} µs, p99 {:.1f} µs, mean {:.1f} µs", two.p50_us, two.p99_us, two.mean_us), lookup);
  row(fmt::format("lookup rate, {} threads", kThreads),
      fmt::format("{:.0f} lookups/s", static_cast<double>(kThreads * o.lookups) / two_seconds),
      "wall clock, both threads' lookups over the time until both finish");
  row("peak resident memory", fmt::format("{:.0f} MiB", mib(peak_resident_bytes())));
}

// ----------------------------------------------------------------------------------------------------------------
// --ivfpq

double recall_at_k(const std::vector<std::vector<ScoredItem>>& found, const std::vector<int64_t>& exact_labels) {
  int64_t hits = 0;
  for (size_t q = 0; q < found.size(); ++q) {
    const std::set<int64_t> truth(exact_labels.begin() + q * kK, exact_labels.begin() + (q + 1) * kK);
    for (const ScoredItem& hit : found[q]) hits += static_cast<int64_t>(truth.count(hit.item));
  }
  return static_cast<double>(hits) / static_cast<double>(found.size() * kK);
}

void run_ivfpq(const Options& o) {
  const int64_t items = o.ivfpq_items;
  const IndexSpec spec{o.factory, Metric::kCosine};
  const std::string factory = embrec::index::resolve_factory(spec.factory, items, kDim);  // fails early if too few
  const ScratchFolder folder(o.dir, o.keep);
  fs::create_directories(o.dir);
  const int32_t clusters = static_cast<int32_t>(std::lround(std::sqrt(static_cast<double>(items))));
  fmt::print("## bench_scale --ivfpq {}: {} items x {}-d, {} clusters (seed 42), index {} = {}, cosine; "
             "{} queries from the same clusters, k {}; {}; folder {}\n\n",
             items, items, kDim, clusters, o.factory, factory, o.queries, kK, threads_text(), o.dir);
  print_table_head();

  // One buffer: the items, then the queries (2.56 GB at 10M items); build and exact search read it in place.
  Clock::time_point start = Clock::now();
  std::vector<float> vectors = embrec::testing::clustered_vectors(items + o.queries, kDim, clusters, 42);
  const float* queries = vectors.data() + items * kDim;
  row("generate vectors", fmt::format("{:.1f} s", seconds_since(start)));
  const double flat_bytes = static_cast<double>(items) * kDim * sizeof(float);
  row("flat memory of the item vectors", fmt::format("{:.1f} MiB", mib(flat_bytes)), "items x 64 x 4 bytes");

  const int64_t resident_before = resident_bytes();
  start = Clock::now();
  ItemIndex index = ItemIndex::build(vectors.data(), items, kDim, spec);
  row("build (train + add)", fmt::format("{:.1f} s", seconds_since(start)), index.description());
  row("resident memory growth across the build", fmt::format("{:.1f} MiB", mib(resident_bytes() - resident_before)),
      "about the index in memory (codes, ids, lists, direct map)");

  const std::string path = o.dir + "/items.faiss";
  start = Clock::now();
  index.save(path);
  const double save_seconds = seconds_since(start);
  const double file_bytes = static_cast<double>(fs::file_size(path));
  row("index file size", fmt::format("{:.1f} MiB", mib(file_bytes)),
      fmt::format("{:.1f} bytes/item, {:.1f}x smaller than flat; ItemIndex::save {:.2f} s", file_bytes / items,
                  flat_bytes / file_bytes, save_seconds));

  // Exact cosine top k: normalise everything in place (the index normalises its own copy, so searching it with
  // unit queries changes nothing) and take the inner-product top k.
  start = Clock::now();
  faiss::fvec_renorm_L2(kDim, items + o.queries, vectors.data());
  std::vector<float> exact_scores(static_cast<size_t>(o.queries * kK));
  std::vector<int64_t> exact_labels(static_cast<size_t>(o.queries * kK));
  faiss::knn_inner_product(queries, vectors.data(), kDim, o.queries, items, kK, exact_scores.data(),
                           exact_labels.data());
  row("exact top 10 (brute force)", fmt::format("{:.1f} s", seconds_since(start)),
      fmt::format("{} queries, {:.0f} GFLOP", o.queries, 2.0 * o.queries * items * kDim / 1e9));

  for (const int32_t nprobe : {16, 64}) {
    index.set_search_parameters(nprobe, 0);
    std::vector<std::vector<ScoredItem>> found(static_cast<size_t>(o.queries));
    int64_t done = 0;
    start = Clock::now();
    for (int64_t q = 0; q < o.queries; ++q) found[q] = index.search(queries + q * kDim, kK);
    done += o.queries;
    while (seconds_since(start) < o.seconds) {
      for (int64_t q = 0; q < o.queries; ++q) (void)index.search(queries + q * kDim, kK);
      done += o.queries;
    }
    const double qps = static_cast<double>(done) / seconds_since(start);
    row(fmt::format("nprobe {}", nprobe),
        fmt::format("recall@10 {:.4f}, {:.0f} queries/s", recall_at_k(found, exact_labels), qps),
        fmt::format("single queries, 1 thread, {} searches", done));
  }
  row("peak resident memory", fmt::format("{:.0f} MiB", mib(peak_resident_bytes())));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Capacity-plan figures: user store write/lookup, ivfpq build/recall/queries per second"};
  Options o;
  CLI::Option* store = app.add_option("--store", o.store_users, "users to write into a new user store")
                           ->check(CLI::Range(int64_t{1}, int64_t{INT32_MAX}));
  CLI::Option* ivfpq = app.add_option("--ivfpq", o.ivfpq_items, "items to build the ivfpq preset on")
                           ->check(CLI::Range(int64_t{1}, int64_t{INT32_MAX}));
  store->excludes(ivfpq);
  app.add_option("--seen", o.seen, "seen items per user (--store)")
      ->capture_default_str()->check(CLI::Range(0, 100000));
  app.add_option("--catalogue", o.catalogue, "item ids the seen items are drawn from (--store)")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{INT32_MAX}));
  app.add_option("--lookups", o.lookups, "random lookups per thread (--store)")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000}));
  app.add_option("--factory", o.factory, "index to build (--ivfpq): the ivfpq preset or a Faiss factory string")
      ->capture_default_str();
  app.add_option("--queries", o.queries, "queries for recall and speed (--ivfpq)")
      ->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  app.add_option("--seconds", o.seconds, "minimum timing per nprobe (--ivfpq)")
      ->capture_default_str()->check(CLI::Range(0.0, 3600.0));
  app.add_option("--dir", o.dir, "folder to create for the store or index (must not exist)");
  app.add_flag("--keep", o.keep, "keep --dir at the end");
  CLI11_PARSE(app, argc, argv);
  if (store->count() == 0 && ivfpq->count() == 0) {
    fmt::print(stderr, "bench_scale: give --store USERS or --ivfpq ITEMS (--help for the options)\n");
    return 2;
  }
  if (o.dir.empty())
    o.dir = (fs::temp_directory_path() / fmt::format("embrec-bench-scale-{}", ::getpid())).string();

  try {
    if (o.store_users > 0) run_store(o);
    else run_ivfpq(o);
  } catch (const std::exception& error) {
    fmt::print(stderr, "bench_scale: {}\n", error.what());
    return 1;
  }
  return 0;
}
