// ItemIndex: exact search equals hand-computed top-k for every metric, exclusions never leak and never shorten the
// list, approximate indexes keep their recall, and an index survives save and load.
#include "embrec/index/item_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <set>

#include "embrec/util/error.h"
#include "synthetic.h"

namespace embrec::index {
namespace {

using embrec::testing::clustered_vectors;
using embrec::testing::random_vectors;

// Top-k by hand loops: the reference every index is held to.
std::vector<ScoredItem> brute_force(const std::vector<float>& items, int32_t dim, const float* query, int64_t k,
                                    Metric metric, const std::set<int32_t>& exclude = {}) {
  const int64_t count = static_cast<int64_t>(items.size()) / dim;
  double query_norm = 0;
  for (int32_t d = 0; d < dim; ++d) query_norm += double{query[d]} * query[d];
  query_norm = std::sqrt(query_norm);
  std::vector<ScoredItem> all;
  for (int64_t i = 0; i < count; ++i) {
    if (exclude.count(static_cast<int32_t>(i))) continue;
    double dot = 0, norm = 0, distance = 0;
    for (int32_t d = 0; d < dim; ++d) {
      const double x = items[i * dim + d], q = query[d];
      dot += x * q;
      norm += x * x;
      distance += (x - q) * (x - q);
    }
    double score = dot;
    if (metric == Metric::kCosine) score = dot / (std::sqrt(norm) * query_norm);
    if (metric == Metric::kL2) score = -distance;
    all.push_back({static_cast<int32_t>(i), static_cast<float>(score)});
  }
  std::sort(all.begin(), all.end(), [](const ScoredItem& a, const ScoredItem& b) {
    return a.score != b.score ? a.score > b.score : a.item < b.item;
  });
  if (static_cast<int64_t>(all.size()) > k) all.resize(static_cast<size_t>(k));
  return all;
}

std::vector<int32_t> ids(const std::vector<ScoredItem>& hits) {
  std::vector<int32_t> out;
  for (const ScoredItem& hit : hits) out.push_back(hit.item);
  return out;
}

void expect_same_hits(const std::vector<ScoredItem>& actual, const std::vector<ScoredItem>& expected) {
  ASSERT_EQ(ids(actual), ids(expected));
  for (size_t i = 0; i < actual.size(); ++i)
    EXPECT_NEAR(actual[i].score, expected[i].score, 1e-4 * std::max(1.0f, std::fabs(expected[i].score))) << i;
}

double recall(const std::vector<ScoredItem>& approximate, const std::vector<ScoredItem>& exact) {
  std::set<int32_t> truth;
  for (const ScoredItem& hit : exact) truth.insert(hit.item);
  int64_t found = 0;
  for (const ScoredItem& hit : approximate) found += truth.count(hit.item);
  return static_cast<double>(found) / static_cast<double>(exact.size());
}

class FlatIndex : public ::testing::TestWithParam<Metric> {};

TEST_P(FlatIndex, SearchEqualsBruteForceTopK) {
  const int32_t dim = 16;
  const std::vector<float> items = random_vectors(500, dim, 7);
  const std::vector<float> queries = random_vectors(20, dim, 8);
  const ItemIndex index = ItemIndex::build(items.data(), 500, dim, {"Flat", GetParam()});
  EXPECT_EQ(index.size(), 500);
  EXPECT_EQ(index.dim(), dim);
  for (int q = 0; q < 20; ++q) {
    SCOPED_TRACE(q);
    expect_same_hits(index.search(queries.data() + q * dim, 10),
                     brute_force(items, dim, queries.data() + q * dim, 10, GetParam()));
  }
}

TEST_P(FlatIndex, BatchSearchEqualsOneQueryAtATime) {
  const int32_t dim = 16;
  const std::vector<float> items = random_vectors(400, dim, 9);
  const std::vector<float> queries = random_vectors(12, dim, 10);
  const ItemIndex index = ItemIndex::build(items.data(), 400, dim, {"Flat", GetParam()});
  std::vector<std::vector<int32_t>> excludes(12);
  for (int q = 0; q < 12; ++q)
    excludes[q] = ids(brute_force(items, dim, queries.data() + q * dim, 5 * q, GetParam()));  // 0..55 of its best
  const auto batch = index.search_batch(queries.data(), 12, 15, excludes);
  ASSERT_EQ(batch.size(), 12u);
  for (int q = 0; q < 12; ++q) {
    SCOPED_TRACE(q);
    expect_same_hits(batch[q], index.search(queries.data() + q * dim, 15, excludes[q]));
    EXPECT_EQ(batch[q].size(), 15u);
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, FlatIndex, ::testing::Values(Metric::kInnerProduct, Metric::kCosine, Metric::kL2),
                         [](const auto& info) { return metric_name(info.param); });

TEST(ItemIndex, ExcludedItemsNeverReturnedAndExactlyKRemain) {
  const int32_t dim = 8;
  const std::vector<float> items = random_vectors(500, dim, 11);
  const std::vector<float> query = random_vectors(1, dim, 12);
  const ItemIndex index = ItemIndex::build(items.data(), 500, dim, {"Flat", Metric::kInnerProduct});
  // The 40 best items plus some others, in scrambled order with a duplicate and out-of-range ids.
  std::vector<int32_t> exclude = ids(brute_force(items, dim, query.data(), 40, Metric::kInnerProduct));
  std::reverse(exclude.begin(), exclude.end());
  exclude.insert(exclude.end(), {499, 0, 499, -3, 100000});
  const std::set<int32_t> excluded(exclude.begin(), exclude.end());
  const std::vector<ScoredItem> hits = index.search(query.data(), 10, exclude);
  ASSERT_EQ(hits.size(), 10u);
  for (const ScoredItem& hit : hits) EXPECT_EQ(excluded.count(hit.item), 0u) << hit.item;
  expect_same_hits(hits, brute_force(items, dim, query.data(), 10, Metric::kInnerProduct, excluded));
}

TEST(ItemIndex, AllButTenExcludedReturnsExactlyTheTenLeft) {
  const int32_t dim = 8;
  const std::vector<float> items = random_vectors(500, dim, 13);
  const std::vector<float> query = random_vectors(1, dim, 14);
  const ItemIndex index = ItemIndex::build(items.data(), 500, dim, {"Flat", Metric::kCosine});
  std::vector<int32_t> exclude(490);
  std::iota(exclude.begin(), exclude.end(), 5);  // keeps 0..4 and 495..499
  const std::vector<ScoredItem> hits = index.search(query.data(), 20, exclude);
  EXPECT_EQ(hits.size(), 10u);  // k = 20 but only 10 are left
  std::vector<int32_t> got = ids(hits);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int32_t>{0, 1, 2, 3, 4, 495, 496, 497, 498, 499}));
  EXPECT_TRUE(std::is_sorted(hits.begin(), hits.end(),
                             [](const ScoredItem& a, const ScoredItem& b) { return a.score > b.score; }));
  EXPECT_EQ(index.search(query.data(), 3, exclude).size(), 3u);
  EXPECT_TRUE(index.search(query.data(), 0).empty());
}

// An IVF probing one list holds far fewer than k + |exclude| candidates: the search must widen nprobe until k
// non-excluded items are found, and HNSW must fetch deeper than efSearch.
TEST(ItemIndex, ApproximateIndexesStillReturnExactlyKWhenTheirTopIsExcluded) {
  const int32_t dim = 16;
  const std::vector<float> items = clustered_vectors(3000, dim, 20, 15);
  const std::vector<float> queries = clustered_vectors(10, dim, 20, 15);
  for (const char* factory : {"IVF40,Flat", "HNSW16"}) {
    SCOPED_TRACE(factory);
    IndexSpec spec{factory, Metric::kL2};
    spec.nprobe = 1;
    spec.ef_search = 16;
    const ItemIndex index = ItemIndex::build(items.data(), 3000, dim, spec);
    for (int q = 0; q < 10; ++q) {
      const std::vector<int32_t> exclude = ids(brute_force(items, dim, queries.data() + q * dim, 300, Metric::kL2));
      const std::set<int32_t> excluded(exclude.begin(), exclude.end());
      const std::vector<ScoredItem> hits = index.search(queries.data() + q * dim, 50, exclude);
      ASSERT_EQ(hits.size(), 50u) << q;
      for (const ScoredItem& hit : hits) ASSERT_EQ(excluded.count(hit.item), 0u) << hit.item;
    }
  }
}

// 20,000 clustered 32-d items, 200 queries from the same clusters, cosine: recall@20 against exact search.
class ApproximateRecall : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::vector<float> all = clustered_vectors(kItems + kQueries, kDim, 100, 21);
    items_ = new std::vector<float>(all.begin(), all.begin() + static_cast<int64_t>(kItems) * kDim);
    queries_ = new std::vector<float>(all.begin() + static_cast<int64_t>(kItems) * kDim, all.end());
    const ItemIndex exact = ItemIndex::build(items_->data(), kItems, kDim, {"Flat", Metric::kCosine});
    exact_ = new std::vector<std::vector<ScoredItem>>(exact.search_batch(queries_->data(), kQueries, 20));
  }
  static void TearDownTestSuite() {
    delete items_;
    delete queries_;
    delete exact_;
  }
  static double mean_recall(const ItemIndex& index) {
    const auto approximate = index.search_batch(queries_->data(), kQueries, 20);
    double total = 0;
    for (int q = 0; q < kQueries; ++q) total += recall(approximate[q], (*exact_)[q]);
    return total / kQueries;
  }
  static constexpr int32_t kItems = 20000, kDim = 32, kQueries = 200;
  static std::vector<float>* items_;
  static std::vector<float>* queries_;
  static std::vector<std::vector<ScoredItem>>* exact_;
};
std::vector<float>* ApproximateRecall::items_ = nullptr;
std::vector<float>* ApproximateRecall::queries_ = nullptr;
std::vector<std::vector<ScoredItem>>* ApproximateRecall::exact_ = nullptr;

TEST_F(ApproximateRecall, Ivf128Nprobe16RecallAt20AtLeast90Percent) {
  IndexSpec spec{"IVF128,Flat", Metric::kCosine};
  spec.nprobe = 16;
  const ItemIndex index = ItemIndex::build(items_->data(), kItems, kDim, spec);
  const double value = mean_recall(index);
  RecordProperty("recall_at_20", std::to_string(value));
  EXPECT_GE(value, 0.9);
  // nprobe set after build changes the search: probing every list is exact.
  ItemIndex widened = ItemIndex::build(items_->data(), kItems, kDim, spec);
  widened.set_search_parameters(128, 0);
  EXPECT_GE(mean_recall(widened), 0.999);
}

TEST_F(ApproximateRecall, Hnsw32EfSearch64RecallAt20AtLeast90Percent) {
  IndexSpec spec{"HNSW32", Metric::kCosine};
  spec.ef_search = 64;
  const ItemIndex index = ItemIndex::build(items_->data(), kItems, kDim, spec);
  const double value = mean_recall(index);
  RecordProperty("recall_at_20", std::to_string(value));
  EXPECT_GE(value, 0.9);
}

TEST(ItemIndex, SaveAndLoadGiveTheSameResultsAndKeepSearchParameters) {
  const int32_t dim = 16;
  const std::vector<float> items = clustered_vectors(2000, dim, 10, 31);
  const std::vector<float> queries = random_vectors(5, dim, 32);
  const std::string path = embrec::testing::temp_path("index-save") + ".faiss";
  for (const char* factory : {"Flat", "IVF32,Flat", "HNSW16"}) {
    SCOPED_TRACE(factory);
    IndexSpec spec{factory, Metric::kCosine};
    spec.nprobe = 4;
    spec.ef_search = 32;
    const ItemIndex built = ItemIndex::build(items.data(), 2000, dim, spec);
    built.save(path);
    ItemIndex loaded = ItemIndex::load(path, Metric::kCosine);
    EXPECT_EQ(loaded.size(), 2000);
    EXPECT_EQ(loaded.dim(), dim);
    EXPECT_EQ(loaded.description(), built.description());
    if (std::string(factory) == "IVF32,Flat") EXPECT_EQ(loaded.nprobe(), 4);
    if (std::string(factory) == "HNSW16") EXPECT_EQ(loaded.ef_search(), 32);
    for (int q = 0; q < 5; ++q) expect_same_hits(loaded.search(queries.data() + q * dim, 10),
                                                 built.search(queries.data() + q * dim, 10));
    loaded.set_search_parameters(9, 99);
    if (std::string(factory) == "IVF32,Flat") EXPECT_EQ(loaded.nprobe(), 9);
    if (std::string(factory) == "HNSW16") EXPECT_EQ(loaded.ef_search(), 99);
  }
  // Faiss knows inner product from L2: loading a cosine index as l2 is refused, naming the file.
  try {
    (void)ItemIndex::load(path, Metric::kL2);
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(path), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("'l2'"), std::string::npos) << error.what();
  }
  std::filesystem::remove(path);
}

TEST(ItemIndex, ItemVectorIsTheStoredRowNormalisedForCosine) {
  const std::vector<float> items{3, 4, 0, 0, 0, 2};  // two 3-d items
  const ItemIndex ip = ItemIndex::build(items.data(), 2, 3, {"Flat", Metric::kInnerProduct});
  EXPECT_EQ(ip.item_vector(0), (std::vector<float>{3, 4, 0}));
  const ItemIndex cosine = ItemIndex::build(items.data(), 2, 3, {"IVF1,Flat", Metric::kCosine});
  const std::vector<float> unit = cosine.item_vector(0);
  EXPECT_NEAR(unit[0], 0.6f, 1e-6);
  EXPECT_NEAR(unit[1], 0.8f, 1e-6);
  EXPECT_THROW(ip.item_vector(2), Error);
}

TEST(ItemIndex, L2ScoresAreMinusSquaredDistanceBestFirst) {
  const std::vector<float> items{0, 0, 1, 0, 3, 4};  // distances² from (0,0): 0, 1, 25
  const std::vector<float> query{0, 0};
  const ItemIndex index = ItemIndex::build(items.data(), 3, 2, {"Flat", Metric::kL2});
  const std::vector<ScoredItem> hits = index.search(query.data(), 3);
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(ids(hits), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_FLOAT_EQ(hits[0].score, 0.0f);
  EXPECT_FLOAT_EQ(hits[1].score, -1.0f);
  EXPECT_FLOAT_EQ(hits[2].score, -25.0f);
}

TEST(ItemIndex, PresetsResolveToFactoryStrings) {
  EXPECT_EQ(resolve_factory("flat", 100), "Flat");
  EXPECT_EQ(resolve_factory("hnsw", 100), "HNSW32");
  EXPECT_EQ(resolve_factory("ivf", 1000000), "IVF4000,Flat");  // 4 * sqrt(1e6)
  EXPECT_EQ(resolve_factory("ivf", 10000), "IVF256,Flat");     // 4 * sqrt = 400, capped at 10000 / 39
  EXPECT_EQ(resolve_factory("ivf", 10), "IVF1,Flat");
  EXPECT_EQ(resolve_factory("IVF64,PQ8", 10), "IVF64,PQ8");
  EXPECT_EQ(parse_metric("cosine"), Metric::kCosine);
  EXPECT_THROW(parse_metric("dot"), Error);
}

TEST(ItemIndex, BadFactoryStringIsAnErrorNamingIt) {
  const std::vector<float> items = random_vectors(10, 4, 1);
  try {
    (void)ItemIndex::build(items.data(), 10, 4, {"Bogus17", Metric::kL2});
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("'Bogus17'"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace embrec::index
