// ItemIndex: Faiss index construction from a factory string (of every item, or of a subset behind Faiss' id map),
// filtered top-k search, serialisation.
#include "embrec/index/item_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <typeinfo>

#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::index {

namespace {

// Sets this thread's OpenMP team size for one call and restores it: omp_set_num_threads changes a per-thread
// setting, so concurrent callers on other threads are unaffected.
class OmpThreadsForCall {
 public:
  explicit OmpThreadsForCall(int threads) : previous_(omp_get_max_threads()) {
    if (threads > 0) omp_set_num_threads(threads);
  }
  ~OmpThreadsForCall() { omp_set_num_threads(previous_); }
  OmpThreadsForCall(const OmpThreadsForCall&) = delete;
  OmpThreadsForCall& operator=(const OmpThreadsForCall&) = delete;

 private:
  int previous_;
};

faiss::MetricType faiss_metric(Metric metric) {
  return metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

bool better(const ScoredItem& a, const ScoredItem& b) {
  return a.score != b.score ? a.score > b.score : a.item < b.item;
}

// A file's id map must be what build() writes: an IndexIDMap2 (its reverse map answers item_vector and
// membership) of one id per row, strictly increasing internal item ids, so every search result names one item and
// ties break by lower id.
void check_item_ids(const faiss::Index& index, const std::string& source) {
  const auto* mapped = dynamic_cast<const faiss::IndexIDMap2*>(&index);
  if (mapped == nullptr)
    fail("{}: an IndexIDMap without the reverse map embrec needs (it writes IndexIDMap2)", source);
  const int64_t rows = mapped->index != nullptr ? mapped->index->ntotal : -1;
  if (static_cast<int64_t>(mapped->id_map.size()) != rows || mapped->ntotal != rows)
    fail("{}: the id map holds {} ids for {} rows of the index inside it", source, mapped->id_map.size(), rows);
  for (size_t row = 0; row < mapped->id_map.size(); ++row) {
    const int64_t id = mapped->id_map[row];
    if (id < 0 || id > INT32_MAX)
      fail("{}: row {} has item id {}, outside the int32 item id range", source, row, id);
    if (row > 0 && id <= mapped->id_map[row - 1])
      fail("{}: the id map is not strictly increasing: row {} has item id {} after {}", source, row, id,
           mapped->id_map[row - 1]);
  }
}

}  // namespace

Metric parse_metric(std::string_view name) {
  if (name == "ip") return Metric::kInnerProduct;
  if (name == "cosine") return Metric::kCosine;
  if (name == "l2") return Metric::kL2;
  fail("unknown metric '{}' (expected ip, cosine or l2)", name);
}

std::string metric_name(Metric metric) {
  switch (metric) {
    case Metric::kInnerProduct: return "ip";
    case Metric::kCosine: return "cosine";
    case Metric::kL2: return "l2";
  }
  return "?";
}

std::string resolve_factory(const std::string& factory, int64_t item_count) {
  if (factory == "flat") return "Flat";
  if (factory == "hnsw") return "HNSW32";
  if (factory == "ivf") {
    const int64_t rule_of_thumb = std::llround(4.0 * std::sqrt(static_cast<double>(std::max<int64_t>(item_count, 1))));
    const int64_t nlist = std::max<int64_t>(1, std::min(rule_of_thumb, item_count / 39));
    return fmt::format("IVF{},Flat", nlist);
  }
  return factory;
}

ItemIndex::ItemIndex() = default;
ItemIndex::ItemIndex(ItemIndex&&) noexcept = default;
ItemIndex& ItemIndex::operator=(ItemIndex&&) noexcept = default;
ItemIndex::~ItemIndex() = default;

ItemIndex ItemIndex::build(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec) {
  return build_rows(vectors, count, dim, spec, nullptr);
}

ItemIndex ItemIndex::build(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                           const std::vector<int32_t>& ids) {
  if (static_cast<int64_t>(ids.size()) != count)
    fail("index build: {} ids for {} item vectors (one id per row)", ids.size(), count);
  // Increasing ids keep Faiss' row order the id order, so its tie-break (lower row first) is "lower item id first"
  // as for an index of every item; it also makes every id unique, which the id map's reverse lookup needs.
  for (size_t row = 0; row < ids.size(); ++row) {
    if (ids[row] < 0) fail("index build: ids[{}] is {}; item ids are non-negative", row, ids[row]);
    if (row > 0 && ids[row] <= ids[row - 1])
      fail("index build: ids must be strictly increasing, but ids[{}] = {} follows ids[{}] = {}", row, ids[row],
           row - 1, ids[row - 1]);
  }
  return build_rows(vectors, count, dim, spec, &ids);
}

ItemIndex ItemIndex::build_rows(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                                const std::vector<int32_t>* ids) {
  if (dim <= 0) fail("index build: dimension must be positive, got {}", dim);
  if (count <= 0) fail("index build: no item vectors");
  if (count > INT32_MAX) fail("index build: {} items exceed the int32 item id range", count);
  const std::string factory = resolve_factory(spec.factory, count);
  ItemIndex result;
  result.metric_ = spec.metric;
  result.nprobe_ = spec.nprobe > 0 ? spec.nprobe : 1;
  result.ef_search_ = spec.ef_search > 0 ? spec.ef_search : 16;
  std::vector<float> normalised;
  const float* data = vectors;
  if (spec.metric == Metric::kCosine) {
    normalised.assign(vectors, vectors + count * dim);
    faiss::fvec_renorm_L2(dim, count, normalised.data());
    data = normalised.data();
  }
  try {
    std::unique_ptr<faiss::Index> built(faiss::index_factory(dim, factory.c_str(), faiss_metric(spec.metric)));
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(built.get()))
      hnsw->hnsw.efConstruction = spec.ef_construction > 0 ? spec.ef_construction : 40;
    if (!built->is_trained) built->train(count, data);
    if (ids != nullptr) {
      // IndexIDMap2 rather than IndexIDMap: its reverse map gives reconstruct-by-id (item_vector) and membership.
      auto mapped = std::make_unique<faiss::IndexIDMap2>(built.get());
      mapped->own_fields = true;
      built.release();
      const std::vector<int64_t> labels(ids->begin(), ids->end());
      mapped->add_with_ids(count, data, labels.data());
      result.index_ = std::move(mapped);
    } else {
      built->add(count, data);
      result.index_ = std::move(built);
    }
  } catch (const std::exception& error) {
    fail("index build (factory '{}', {} x {}): {}", factory, count, dim, error.what());
  }
  result.prepare_after_load();
  result.set_search_parameters(result.nprobe_, result.ef_search_);
  return result;
}

faiss::Index* ItemIndex::inner() const {
  if (auto* mapped = dynamic_cast<faiss::IndexIDMap*>(index_.get())) return mapped->index;
  return index_.get();
}

bool ItemIndex::has_item_ids() const { return dynamic_cast<const faiss::IndexIDMap2*>(index_.get()) != nullptr; }

bool ItemIndex::contains(int32_t item) const {
  if (!index_ || item < 0) return false;
  if (auto* mapped = dynamic_cast<const faiss::IndexIDMap2*>(index_.get())) return mapped->rev_map.count(item) > 0;
  return item < index_->ntotal;
}

void ItemIndex::prepare_excluded(const std::vector<int32_t>& exclude, std::vector<int32_t>& out) const {
  out.clear();
  const auto* mapped = dynamic_cast<const faiss::IndexIDMap2*>(index_.get());
  for (int32_t item : exclude) {
    // Only ids the index holds count: an excluded item outside it removes nothing from the results, and counting
    // it would make the search settle for fewer than k.
    const bool held = item >= 0 && (mapped ? mapped->rev_map.count(item) > 0 : item < index_->ntotal);
    if (held) out.push_back(item);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

void ItemIndex::prepare_after_load() {
  nlist_ = 0;
  is_hnsw_ = false;
  faiss::Index* searched = inner();
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(searched)) {
    nlist_ = static_cast<int64_t>(ivf->nlist);
    // reconstruct() on an IVF needs the row -> list map; rows are added once, so the array form is exact.
    ivf->make_direct_map(true);
  } else if (auto* nested = faiss::ivflib::try_extract_index_ivf(searched)) {
    nested->make_direct_map(true);
  }
  is_hnsw_ = dynamic_cast<faiss::IndexHNSW*>(searched) != nullptr;
  item_id_end_ = index_->ntotal;
  // Ids are strictly increasing (build's contract, checked on load): the last is the largest.
  if (auto* mapped = dynamic_cast<const faiss::IndexIDMap2*>(index_.get()))
    item_id_end_ = mapped->id_map.empty() ? 0 : mapped->id_map.back() + 1;
}

void ItemIndex::set_search_parameters(int32_t nprobe, int32_t ef_search) {
  if (nprobe > 0) nprobe_ = nprobe;
  if (ef_search > 0) ef_search_ = ef_search;
  if (!index_) return;
  // Also written into the Faiss object, so a saved index carries them and wrapped IVFs (searched without
  // per-call parameters) use them.
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(inner())) ivf->nprobe = static_cast<size_t>(nprobe_);
  if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(inner())) hnsw->hnsw.efSearch = ef_search_;
}

int64_t ItemIndex::size() const { return index_ ? index_->ntotal : 0; }
int32_t ItemIndex::dim() const { return index_ ? static_cast<int32_t>(index_->d) : 0; }

std::string ItemIndex::description() const {
  if (!index_) return "empty";
  const faiss::Index* searched = inner();
  if (dynamic_cast<const faiss::IndexFlat*>(searched)) return "Flat";
  if (auto* ivf = dynamic_cast<const faiss::IndexIVFFlat*>(searched)) return fmt::format("IVF{},Flat", ivf->nlist);
  if (auto* hnsw = dynamic_cast<const faiss::IndexHNSWFlat*>(searched))
    return fmt::format("HNSW{}", hnsw->hnsw.nb_neighbors(1));
  return typeid(*searched).name();
}

float ItemIndex::score_of(float distance) const { return metric_ == Metric::kL2 ? -distance : distance; }

void ItemIndex::faiss_search(int64_t n, const float* queries, int64_t fetch, int32_t nprobe, int64_t ef_search,
                             float* distances, int64_t* labels) const {
  // A subset's id map is searched through the index inside it: Faiss 1.7.3's IndexIDMap::search refuses per-call
  // parameters (and setting nprobe / efSearch on the shared object would race between concurrent searches), so
  // its rows are translated through the map's own id_map below, as IndexIDMap::search does.
  const faiss::Index* searched = inner();
  try {
    if (nlist_ > 0) {
      faiss::SearchParametersIVF parameters;
      parameters.nprobe = static_cast<size_t>(std::min<int64_t>(nprobe, nlist_));
      searched->search(n, queries, fetch, distances, labels, &parameters);
    } else if (is_hnsw_) {
      // Faiss' HNSW stops after efSearch expansion steps whatever k is: below the fetch size it returns fewer.
      faiss::SearchParametersHNSW parameters;
      parameters.efSearch = static_cast<int>(std::min<int64_t>(std::max<int64_t>(ef_search, fetch), INT32_MAX));
      searched->search(n, queries, fetch, distances, labels, &parameters);
    } else {
      searched->search(n, queries, fetch, distances, labels);
    }
  } catch (const std::exception& error) {
    fail("index search ({} queries, k {}): {}", n, fetch, error.what());
  }
  if (auto* mapped = dynamic_cast<const faiss::IndexIDMap*>(index_.get()))
    for (int64_t i = 0; i < n * fetch; ++i)
      if (labels[i] >= 0) labels[i] = mapped->id_map[static_cast<size_t>(labels[i])];
}

std::vector<ScoredItem> ItemIndex::search_prepared(const float* query, int64_t k, std::vector<int32_t>& excluded,
                                                   std::vector<float>& distances,
                                                   std::vector<int64_t>& labels) const {
  const int64_t total = size();
  const int64_t want = std::min<int64_t>(k, total - static_cast<int64_t>(excluded.size()));
  std::vector<ScoredItem> kept;
  if (want <= 0) return kept;
  kept.reserve(static_cast<size_t>(want));
  int64_t fetch = std::min<int64_t>(total, k + static_cast<int64_t>(excluded.size()));
  int32_t nprobe = nprobe_;
  int64_t ef_search = ef_search_;
  for (;;) {
    distances.resize(static_cast<size_t>(fetch));
    labels.resize(static_cast<size_t>(fetch));
    faiss_search(1, query, fetch, nprobe, ef_search, distances.data(), labels.data());
    kept.clear();
    int64_t returned = 0;
    for (int64_t i = 0; i < fetch; ++i) {
      const int64_t label = labels[i];
      if (label < 0) continue;  // Faiss pads with -1 when the probed lists or graph hold fewer than fetch
      ++returned;
      if (std::binary_search(excluded.begin(), excluded.end(), static_cast<int32_t>(label))) continue;
      kept.push_back({static_cast<int32_t>(label), score_of(distances[i])});
    }
    if (static_cast<int64_t>(kept.size()) >= want) break;
    if (returned < fetch && nlist_ > 0 && nprobe < nlist_) {
      nprobe = static_cast<int32_t>(std::min<int64_t>(nlist_, int64_t{nprobe} * 2));
    } else if (returned < fetch && is_hnsw_ && ef_search < total) {
      ef_search = std::min(total, std::max(ef_search, fetch) * 2);
    } else if (returned == fetch && fetch < total) {
      fetch = std::min(total, fetch * 2);
    } else {
      break;  // the index cannot reach more items (an HNSW graph with unreachable nodes): return what it found
    }
  }
  std::sort(kept.begin(), kept.end(), better);
  if (static_cast<int64_t>(kept.size()) > want) kept.resize(static_cast<size_t>(want));
  return kept;
}

std::vector<ScoredItem> ItemIndex::search(const float* query, int64_t k, const std::vector<int32_t>& exclude) const {
  if (!index_) fail("index search: the index is empty (not built or loaded)");
  if (k <= 0) return {};
  OmpThreadsForCall one_thread(1);
  std::vector<float> normalised;
  if (metric_ == Metric::kCosine) {
    normalised.assign(query, query + dim());
    faiss::fvec_renorm_L2(dim(), 1, normalised.data());
    query = normalised.data();
  }
  std::vector<int32_t> excluded;
  prepare_excluded(exclude, excluded);
  std::vector<float> distances;
  std::vector<int64_t> labels;
  return search_prepared(query, k, excluded, distances, labels);
}

std::vector<std::vector<ScoredItem>> ItemIndex::search_batch(const float* queries, int64_t count, int64_t k,
                                                             const std::vector<std::vector<int32_t>>& excludes,
                                                             int threads) const {
  if (!index_) fail("index search: the index is empty (not built or loaded)");
  if (!excludes.empty() && static_cast<int64_t>(excludes.size()) != count)
    fail("index search: {} exclusion lists for {} queries", excludes.size(), count);
  std::vector<std::vector<ScoredItem>> results(static_cast<size_t>(std::max<int64_t>(count, 0)));
  if (count <= 0 || k <= 0) return results;
  OmpThreadsForCall team(threads);
  const int32_t d = dim();
  std::vector<float> normalised;
  if (metric_ == Metric::kCosine) {
    normalised.assign(queries, queries + count * d);
    faiss::fvec_renorm_L2(d, count, normalised.data());
    queries = normalised.data();
  }
  std::vector<std::vector<int32_t>> excluded(static_cast<size_t>(count));
  size_t most_excluded = 0;
  for (int64_t q = 0; q < count && !excludes.empty(); ++q) {
    prepare_excluded(excludes[q], excluded[q]);
    most_excluded = std::max(most_excluded, excluded[q].size());
  }
  // One Faiss call for the whole batch with room for the largest exclusion list; the rare query the filter
  // leaves short (an approximate index missing candidates) is redone alone through the growing single search.
  const int64_t total = size();
  const int64_t fetch = std::min<int64_t>(total, k + static_cast<int64_t>(most_excluded));
  std::vector<float> distances(static_cast<size_t>(count * fetch));
  std::vector<int64_t> labels(static_cast<size_t>(count * fetch));
  faiss_search(count, queries, fetch, nprobe_, ef_search_, distances.data(), labels.data());
  std::vector<float> retry_distances;
  std::vector<int64_t> retry_labels;
  for (int64_t q = 0; q < count; ++q) {
    const int64_t want = std::min<int64_t>(k, total - static_cast<int64_t>(excluded[q].size()));
    std::vector<ScoredItem>& kept = results[q];
    for (int64_t i = 0; i < fetch && static_cast<int64_t>(kept.size()) < want; ++i) {
      const int64_t label = labels[q * fetch + i];
      if (label < 0 || std::binary_search(excluded[q].begin(), excluded[q].end(), static_cast<int32_t>(label)))
        continue;
      kept.push_back({static_cast<int32_t>(label), score_of(distances[q * fetch + i])});
    }
    if (static_cast<int64_t>(kept.size()) < want) {
      OmpThreadsForCall one_thread(1);
      kept = search_prepared(queries + q * d, k, excluded[q], retry_distances, retry_labels);
    }
    std::sort(kept.begin(), kept.end(), better);
  }
  return results;
}

std::vector<float> ItemIndex::item_vector(int32_t item) const {
  if (!index_) fail("index: the index is empty (not built or loaded)");
  if (!contains(item)) {
    if (has_item_ids())
      fail("index: item {} is not in the index (it holds {} chosen items, ids below {})", item, size(),
           item_id_end_);
    fail("index: item {} out of range [0, {})", item, size());
  }
  std::vector<float> vector(static_cast<size_t>(dim()));
  try {
    index_->reconstruct(item, vector.data());
  } catch (const std::exception& error) {
    fail("index ({}): cannot reconstruct item {}: {}", description(), item, error.what());
  }
  return vector;
}

std::string ItemIndex::serialize() const {
  if (!index_) fail("index: cannot save an empty index");
  faiss::VectorIOWriter writer;
  try {
    faiss::write_index(index_.get(), &writer);
  } catch (const std::exception& error) {
    fail("index: serialisation failed: {}", error.what());
  }
  return std::string(reinterpret_cast<const char*>(writer.data.data()), writer.data.size());
}

ItemIndex ItemIndex::deserialize(std::string_view bytes, Metric metric, const std::string& source) {
  faiss::VectorIOReader reader;
  reader.data.assign(reinterpret_cast<const uint8_t*>(bytes.data()),
                     reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size());
  ItemIndex result;
  try {
    result.index_.reset(faiss::read_index(&reader));
  } catch (const std::exception& error) {
    fail("{}: not a readable Faiss index ({} bytes): {}", source, bytes.size(), error.what());
  }
  if (dynamic_cast<faiss::IndexIDMap*>(result.index_.get()) != nullptr) check_item_ids(*result.index_, source);
  // The index inside a subset's id map is the one that ranks (searches go to it): its metric is the one checked.
  const faiss::Index* searched = result.inner();
  if (searched->metric_type != faiss_metric(metric))
    fail("{}: the index ranks by {} but metric '{}' was asked for", source,
         searched->metric_type == faiss::METRIC_L2 ? "L2 distance" : "inner product", metric_name(metric));
  result.metric_ = metric;
  if (auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(searched)) result.ef_search_ = hnsw->hnsw.efSearch;
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(result.inner()))
    result.nprobe_ = static_cast<int32_t>(std::max<size_t>(ivf->nprobe, 1));
  result.prepare_after_load();
  return result;
}

void ItemIndex::save(const std::string& path) const { write_file_atomic(path, serialize()); }

ItemIndex ItemIndex::load(const std::string& path, Metric metric) {
  return deserialize(read_file(path), metric, path);
}

}  // namespace embrec::index
