// ItemIndex: Faiss index construction from a factory string (of every item, or of a subset behind Faiss' id map,
// whole or in shards by item-id range), filtered top-k search merged across shards, serialisation.
#include "embrec/index/item_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <numeric>
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

// The best `want` of the shards' lists: each shard returned its own top min(k, its items left), so the top `want`
// of their union is the top of the whole index, ties by lower item id as in one index.
std::vector<ScoredItem> merge_shard_lists(std::vector<std::vector<ScoredItem>>& lists, int64_t want) {
  if (lists.size() == 1) {
    std::vector<ScoredItem>& only = lists[0];
    if (static_cast<int64_t>(only.size()) > want) only.resize(static_cast<size_t>(std::max<int64_t>(want, 0)));
    return std::move(only);
  }
  std::vector<ScoredItem> merged;
  for (const std::vector<ScoredItem>& list : lists) merged.insert(merged.end(), list.begin(), list.end());
  std::sort(merged.begin(), merged.end(), better);
  if (static_cast<int64_t>(merged.size()) > want) merged.resize(static_cast<size_t>(std::max<int64_t>(want, 0)));
  return merged;
}

// Runs body(i) for i in [0, count) on `threads` OpenMP threads, each giving Faiss' own parallel regions one thread
// (the pieces are the parallelism). An exception must not leave an OpenMP region: the first is rethrown after it.
template <typename Body>
void parallel_for(int64_t count, int threads, const Body& body) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(count));
#pragma omp parallel for num_threads(std::max(threads, 1)) schedule(dynamic, 1)
  for (int64_t i = 0; i < count; ++i) {
    OmpThreadsForCall one_thread(1);
    try {
      body(i);
    } catch (...) {
      errors[static_cast<size_t>(i)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& error : errors)
    if (error) std::rethrow_exception(error);
}

// "Flat", "IVF{nlist},Flat", "IVF{nlist},PQ{m}", "HNSW{M}", or the Faiss class.
std::string describe(const faiss::Index& index) {
  if (dynamic_cast<const faiss::IndexFlat*>(&index)) return "Flat";
  if (auto* ivf = dynamic_cast<const faiss::IndexIVFFlat*>(&index)) return fmt::format("IVF{},Flat", ivf->nlist);
  if (auto* ivfpq = dynamic_cast<const faiss::IndexIVFPQ*>(&index))
    return fmt::format("IVF{},PQ{}{}", ivfpq->nlist, ivfpq->pq.M,
                       ivfpq->pq.nbits == 8 ? "" : fmt::format("x{}", ivfpq->pq.nbits));
  if (auto* hnsw = dynamic_cast<const faiss::IndexHNSWFlat*>(&index))
    return fmt::format("HNSW{}", hnsw->hnsw.nb_neighbors(1));
  return typeid(index).name();
}

// The "ivf" preset's list count: 4 * sqrt(items), at most items / 39 (Faiss' minimum training points per list).
int64_t ivf_list_count(int64_t item_count) {
  const int64_t rule_of_thumb = std::llround(4.0 * std::sqrt(static_cast<double>(std::max<int64_t>(item_count, 1))));
  return std::max<int64_t>(1, std::min(rule_of_thumb, item_count / 39));
}

// The "ivfpq" preset's sub-quantizer count (see resolve_factory), or 0 when `dim` has no divisor in range.
int32_t pq_sub_quantizer_count(int32_t dim) {
  int32_t best = 0;
  int32_t best_gap = INT32_MAX;
  for (int32_t m = 1; m <= dim; ++m) {
    if (dim % m != 0 || dim / m < 4 || dim / m > 16) continue;
    const int32_t gap = std::abs(dim / m - 8);
    if (gap <= best_gap) {  // m grows: a tie goes to the larger m
      best = m;
      best_gap = gap;
    }
  }
  return best;
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

std::string resolve_factory(const std::string& factory, int64_t item_count, int32_t dim) {
  if (factory == "flat") return "Flat";
  if (factory == "hnsw") return "HNSW32";
  if (factory == "ivf") return fmt::format("IVF{},Flat", ivf_list_count(item_count));
  if (factory == "ivfpq" && dim > 0) {
    const int32_t m = pq_sub_quantizer_count(dim);
    if (m == 0)
      fail("index preset 'ivfpq': dimension {} has no divisor m with 4 to 16 dimensions per sub-quantizer (dimension "
           "/ m); give a factory string such as \"IVF{},PQ{{m}}\" with m dividing {}",
           dim, ivf_list_count(item_count), dim);
    // Faiss' k-means refuses fewer training points than codes (256 per sub-quantizer).
    if (item_count < 256)
      fail("index preset 'ivfpq': {} items (per shard) are too few to train 256 codes per sub-quantizer; it needs at "
           "least 256 (use 'ivf' or 'flat')",
           item_count);
    return fmt::format("IVF{},PQ{}np", ivf_list_count(item_count), m);
  }
  return factory;
}

int64_t smallest_shard_size(int64_t item_count, int32_t shards) {
  return shards > 1 ? item_count / shards : item_count;
}

ItemIndex::ItemIndex() = default;
ItemIndex::ItemIndex(ItemIndex&&) noexcept = default;
ItemIndex& ItemIndex::operator=(ItemIndex&&) noexcept = default;
ItemIndex::~ItemIndex() = default;

ItemIndex ItemIndex::build(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                           int32_t shards) {
  return build_rows(vectors, count, dim, spec, nullptr, shards);
}

ItemIndex ItemIndex::build(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                           const std::vector<int32_t>& ids, int32_t shards) {
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
  return build_rows(vectors, count, dim, spec, &ids, shards);
}

ItemIndex ItemIndex::build_rows(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                                const std::vector<int32_t>* ids, int32_t shards) {
  if (dim <= 0) fail("index build: dimension must be positive, got {}", dim);
  if (count <= 0) fail("index build: no item vectors");
  if (count > INT32_MAX) fail("index build: {} items exceed the int32 item id range", count);
  if (shards < 1 || shards > count)
    fail("index build: {} shards for {} items (at least 1, at most one per item)", shards, count);
  const std::string factory = resolve_factory(spec.factory, smallest_shard_size(count, shards), dim);
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
  // Shards one after another: Faiss' training and adding already spread each over the cores.
  result.shards_.reserve(static_cast<size_t>(shards));
  for (int32_t shard = 0; shard < shards; ++shard) {
    const int64_t begin = count * shard / shards;
    const int64_t end = count * (shard + 1) / shards;
    result.shards_.push_back(build_shard(data + begin * dim, end - begin, dim, factory, spec,
                                         ids != nullptr ? ids->data() + begin : nullptr));
  }
  result.prepare_after_load();
  result.set_search_parameters(result.nprobe_, result.ef_search_);
  return result;
}

ItemIndex::Shard ItemIndex::build_shard(const float* rows, int64_t count, int32_t dim, const std::string& factory,
                                        const IndexSpec& spec, const int32_t* ids) {
  Shard shard;
  try {
    std::unique_ptr<faiss::Index> built(faiss::index_factory(dim, factory.c_str(), faiss_metric(spec.metric)));
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(built.get()))
      hnsw->hnsw.efConstruction = spec.ef_construction > 0 ? spec.ef_construction : 40;
    if (!built->is_trained) built->train(count, rows);
    if (ids != nullptr) {
      // IndexIDMap2 rather than IndexIDMap: its reverse map gives reconstruct-by-id (item_vector) and membership.
      auto mapped = std::make_unique<faiss::IndexIDMap2>(built.get());
      mapped->own_fields = true;
      built.release();
      const std::vector<int64_t> labels(ids, ids + count);
      mapped->add_with_ids(count, rows, labels.data());
      shard.index = std::move(mapped);
    } else {
      built->add(count, rows);
      shard.index = std::move(built);
    }
  } catch (const std::exception& error) {
    fail("index build (factory '{}', {} x {}): {}", factory, count, dim, error.what());
  }
  return shard;
}

int32_t ItemIndex::add(const float* vectors, int64_t count, int64_t first_id) {
  if (empty()) fail("index add: the index is empty (not built or loaded)");
  if (count < 0) fail("index add: {} items", count);
  if (first_id < 0) first_id = item_id_end_;
  const bool mapped = has_item_ids();
  if (first_id < item_id_end_)
    fail("index add: new items must take ids from {} on (the index holds ids below it), got first id {}",
         item_id_end_, first_id);
  if (!mapped && first_id != item_id_end_)
    fail("index add: an index of every item numbers its items by row, so new ones continue at id {}, not {}",
         item_id_end_, first_id);
  if (first_id + count - 1 > INT32_MAX)
    fail("index add: ids {} to {} exceed the int32 item id range", first_id, first_id + count - 1);
  if (count == 0) return static_cast<int32_t>(first_id);
  const int32_t d = dim();
  std::vector<float> normalised;
  const float* rows = vectors;
  if (metric_ == Metric::kCosine) {
    normalised.assign(vectors, vectors + count * d);
    faiss::fvec_renorm_L2(d, count, normalised.data());
    rows = normalised.data();
  }
  // The last shard's range is the open-ended one; a plain shard's new rows continue its numbering, an id-mapped
  // shard's take the ids given (strictly increasing after its last, as build's are, so ties still go to the lower id).
  Shard& shard = shards_.back();
  try {
    if (auto* ids = dynamic_cast<faiss::IndexIDMap2*>(shard.index.get())) {
      std::vector<int64_t> labels(static_cast<size_t>(count));
      std::iota(labels.begin(), labels.end(), first_id);
      ids->add_with_ids(count, rows, labels.data());
    } else {
      shard.index->add(count, rows);
    }
  } catch (const std::exception& error) {
    fail("index add ({}): Faiss cannot add {} item(s) to this kind of index: {}", description(), count,
         error.what());
  }
  size_ += count;
  item_id_end_ = first_id + count;
  return static_cast<int32_t>(first_id);
}

faiss::Index* ItemIndex::inner(const Shard& shard) {
  if (auto* mapped = dynamic_cast<faiss::IndexIDMap*>(shard.index.get())) return mapped->index;
  return shard.index.get();
}

bool ItemIndex::has_item_ids() const {
  return !shards_.empty() && dynamic_cast<const faiss::IndexIDMap2*>(shards_[0].index.get()) != nullptr;
}

size_t ItemIndex::shard_of(int64_t item) const {
  // The last shard whose first id is at most `item`: shards hold increasing id ranges.
  const auto after = std::upper_bound(shards_.begin(), shards_.end(), item,
                                      [](int64_t id, const Shard& shard) { return id < shard.first_id; });
  return after == shards_.begin() ? 0 : static_cast<size_t>(after - shards_.begin()) - 1;
}

bool ItemIndex::contains(int32_t item) const {
  if (shards_.empty() || item < 0) return false;
  const Shard& shard = shards_[shard_of(item)];
  if (auto* mapped = dynamic_cast<const faiss::IndexIDMap2*>(shard.index.get())) return mapped->rev_map.count(item) > 0;
  return item >= shard.first_id && item < shard.first_id + shard.index->ntotal;
}

void ItemIndex::prepare_excluded(const std::vector<int32_t>& exclude, std::vector<int32_t>& out) const {
  out.clear();
  // Only ids the index holds count: an excluded item outside it removes nothing from the results, and counting
  // it would make the search settle for fewer than k.
  for (int32_t item : exclude)
    if (contains(item)) out.push_back(item);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

std::vector<size_t> ItemIndex::excluded_bounds(const std::vector<int32_t>& excluded) const {
  std::vector<size_t> bounds(shards_.size() + 1, 0);
  for (size_t shard = 1; shard < shards_.size(); ++shard)
    bounds[shard] = static_cast<size_t>(
        std::lower_bound(excluded.begin(), excluded.end(), shards_[shard].first_id) - excluded.begin());
  bounds[shards_.size()] = excluded.size();
  return bounds;
}

void ItemIndex::prepare_after_load() {
  is_hnsw_ = false;
  size_ = 0;
  int64_t next_id = 0;
  for (Shard& shard : shards_) {
    shard.nlist = 0;
    faiss::Index* searched = inner(shard);
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(searched)) {
      shard.nlist = static_cast<int64_t>(ivf->nlist);
      // reconstruct() on an IVF needs the row -> list map; rows are added once, so the array form is exact.
      ivf->make_direct_map(true);
    } else if (auto* nested = faiss::ivflib::try_extract_index_ivf(searched)) {
      nested->make_direct_map(true);
    }
    size_ += shard.index->ntotal;
    // Ids are strictly increasing within and across shards (build's contract, checked on load): a mapped shard
    // starts at its first id and ends after its last; a plain one continues where the previous ended.
    if (auto* mapped = dynamic_cast<const faiss::IndexIDMap2*>(shard.index.get())) {
      shard.first_id = mapped->id_map.empty() ? next_id : mapped->id_map.front();
      if (!mapped->id_map.empty()) next_id = mapped->id_map.back() + 1;
    } else {
      shard.first_id = next_id;
      next_id += shard.index->ntotal;
    }
  }
  if (!shards_.empty()) is_hnsw_ = dynamic_cast<faiss::IndexHNSW*>(inner(shards_[0])) != nullptr;
  item_id_end_ = next_id;
}

void ItemIndex::set_search_parameters(int32_t nprobe, int32_t ef_search) {
  if (nprobe > 0) nprobe_ = nprobe;
  if (ef_search > 0) ef_search_ = ef_search;
  // Also written into the Faiss objects, so a saved index carries them and wrapped IVFs (searched without
  // per-call parameters) use them.
  for (const Shard& shard : shards_) {
    if (auto* ivf = faiss::ivflib::try_extract_index_ivf(inner(shard))) ivf->nprobe = static_cast<size_t>(nprobe_);
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(inner(shard))) hnsw->hnsw.efSearch = ef_search_;
  }
}

int64_t ItemIndex::size() const { return size_; }
int32_t ItemIndex::dim() const { return shards_.empty() ? 0 : static_cast<int32_t>(shards_[0].index->d); }

std::string ItemIndex::description() const {
  if (shards_.empty()) return "empty";
  const std::string kind = describe(*inner(shards_[0]));
  return shards_.size() == 1 ? kind : fmt::format("{} x {} shards", kind, shards_.size());
}

float ItemIndex::score_of(float distance) const { return metric_ == Metric::kL2 ? -distance : distance; }

void ItemIndex::faiss_search(const Shard& shard, int64_t n, const float* queries, int64_t fetch, int32_t nprobe,
                             int64_t ef_search, float* distances, int64_t* labels) const {
  // A subset's id map is searched through the index inside it: Faiss 1.7.3's IndexIDMap::search refuses per-call
  // parameters (and setting nprobe / efSearch on the shared object would race between concurrent searches), so
  // its rows are translated through the map's own id_map below, as IndexIDMap::search does.
  const faiss::Index* searched = inner(shard);
  try {
    if (shard.nlist > 0) {
      faiss::SearchParametersIVF parameters;
      parameters.nprobe = static_cast<size_t>(std::min<int64_t>(nprobe, shard.nlist));
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
  if (auto* mapped = dynamic_cast<const faiss::IndexIDMap*>(shard.index.get())) {
    for (int64_t i = 0; i < n * fetch; ++i)
      if (labels[i] >= 0) labels[i] = mapped->id_map[static_cast<size_t>(labels[i])];
  } else if (shard.first_id != 0) {
    for (int64_t i = 0; i < n * fetch; ++i)
      if (labels[i] >= 0) labels[i] += shard.first_id;
  }
}

std::vector<ScoredItem> ItemIndex::search_shard(const Shard& shard, const float* query, int64_t k,
                                                const int32_t* excluded_begin, const int32_t* excluded_end,
                                                std::vector<float>& distances, std::vector<int64_t>& labels) const {
  const int64_t total = shard.index->ntotal;
  const int64_t excluded_count = excluded_end - excluded_begin;
  const int64_t want = std::min<int64_t>(k, total - excluded_count);
  std::vector<ScoredItem> kept;
  if (want <= 0) return kept;
  kept.reserve(static_cast<size_t>(want));
  int64_t fetch = std::min<int64_t>(total, k + excluded_count);
  int32_t nprobe = nprobe_;
  int64_t ef_search = ef_search_;
  for (;;) {
    distances.resize(static_cast<size_t>(fetch));
    labels.resize(static_cast<size_t>(fetch));
    faiss_search(shard, 1, query, fetch, nprobe, ef_search, distances.data(), labels.data());
    kept.clear();
    int64_t returned = 0;
    for (int64_t i = 0; i < fetch; ++i) {
      const int64_t label = labels[i];
      if (label < 0) continue;  // Faiss pads with -1 when the probed lists or graph hold fewer than fetch
      ++returned;
      if (std::binary_search(excluded_begin, excluded_end, static_cast<int32_t>(label))) continue;
      kept.push_back({static_cast<int32_t>(label), score_of(distances[i])});
    }
    if (static_cast<int64_t>(kept.size()) >= want) break;
    if (returned < fetch && shard.nlist > 0 && nprobe < shard.nlist) {
      nprobe = static_cast<int32_t>(std::min<int64_t>(shard.nlist, int64_t{nprobe} * 2));
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
  if (empty()) fail("index search: the index is empty (not built or loaded)");
  if (k <= 0) return {};
  // The caller's OpenMP thread count (OMP_NUM_THREADS, else the cores) bounds the shards searched at once.
  const int shard_threads = static_cast<int>(std::min<int64_t>(static_cast<int64_t>(shards_.size()),
                                                               std::max(omp_get_max_threads(), 1)));
  OmpThreadsForCall one_thread(1);
  std::vector<float> normalised;
  if (metric_ == Metric::kCosine) {
    normalised.assign(query, query + dim());
    faiss::fvec_renorm_L2(dim(), 1, normalised.data());
    query = normalised.data();
  }
  std::vector<int32_t> excluded;
  prepare_excluded(exclude, excluded);
  const int64_t want = std::min<int64_t>(k, size_ - static_cast<int64_t>(excluded.size()));
  const std::vector<size_t> bounds = excluded_bounds(excluded);
  const int64_t shard_count = static_cast<int64_t>(shards_.size());
  std::vector<std::vector<ScoredItem>> found(shards_.size());
  auto search_one = [&](int64_t shard) {
    std::vector<float> distances;
    std::vector<int64_t> labels;
    found[shard] = search_shard(shards_[shard], query, k, excluded.data() + bounds[shard],
                                excluded.data() + bounds[shard + 1], distances, labels);
  };
  if (shard_count == 1) {
    search_one(0);
  } else {
    // One OpenMP thread per shard, up to the caller's thread count: the point of shards for one query is to spread
    // its scan, and OpenMP keeps its team alive between calls (a region costs microseconds, a std::thread per shard
    // per query tens). Faiss' threaded IndexShards cannot serve here: in 1.7.3 its search refuses per-call
    // parameters (nprobe, efSearch), its merge breaks ties by heap order rather than item id, and each shard has one
    // worker thread, so concurrent requests would queue behind each other on it. OMP_NUM_THREADS=1 searches the
    // shards one after another (bench/RESULTS.md: on cores already busy, the parallel search is the slower one).
    parallel_for(shard_count, shard_threads, search_one);
  }
  return merge_shard_lists(found, want);
}

std::vector<std::vector<ScoredItem>> ItemIndex::search_batch(const float* queries, int64_t count, int64_t k,
                                                             const std::vector<std::vector<int32_t>>& excludes,
                                                             int threads) const {
  if (empty()) fail("index search: the index is empty (not built or loaded)");
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
  const size_t shard_count = shards_.size();
  std::vector<std::vector<int32_t>> excluded(static_cast<size_t>(count));
  std::vector<std::vector<size_t>> bounds(static_cast<size_t>(count));
  std::vector<int64_t> most_excluded(shard_count, 0);  // per shard, over the queries
  for (int64_t q = 0; q < count; ++q) {
    if (!excludes.empty()) prepare_excluded(excludes[q], excluded[q]);
    bounds[q] = excluded_bounds(excluded[q]);
    for (size_t shard = 0; shard < shard_count; ++shard)
      most_excluded[shard] =
          std::max(most_excluded[shard], static_cast<int64_t>(bounds[q][shard + 1] - bounds[q][shard]));
  }
  // One Faiss call per shard for the whole batch with room for the largest exclusion list in it; the rare query the
  // filter leaves short in a shard (an approximate index missing candidates) is redone there alone through the
  // growing single search.
  std::vector<int64_t> fetch(shard_count);
  std::vector<std::vector<float>> distances(shard_count);
  std::vector<std::vector<int64_t>> labels(shard_count);
  for (size_t shard = 0; shard < shard_count; ++shard) {
    fetch[shard] = std::min<int64_t>(shards_[shard].index->ntotal, k + most_excluded[shard]);
    distances[shard].resize(static_cast<size_t>(count * fetch[shard]));
    labels[shard].resize(static_cast<size_t>(count * fetch[shard]));
  }
  if (shard_count == 1) {
    faiss_search(shards_[0], count, queries, fetch[0], nprobe_, ef_search_, distances[0].data(), labels[0].data());
  } else {
    // (shard, block of queries) pieces over the team, each a single-threaded Faiss call: the shards run in
    // parallel, and with fewer shards than threads each shard's queries are split too, so every thread has work.
    const int team_size = std::max(omp_get_max_threads(), 1);
    const int64_t blocks = std::min<int64_t>(count, (team_size + static_cast<int64_t>(shard_count) - 1) /
                                                        static_cast<int64_t>(shard_count));
    parallel_for(static_cast<int64_t>(shard_count) * blocks, team_size, [&](int64_t piece) {
      const size_t shard = static_cast<size_t>(piece / blocks);
      const int64_t block = piece % blocks;
      const int64_t first = count * block / blocks;
      const int64_t last = count * (block + 1) / blocks;
      if (last == first) return;
      faiss_search(shards_[shard], last - first, queries + first * d, fetch[shard], nprobe_, ef_search_,
                   distances[shard].data() + first * fetch[shard], labels[shard].data() + first * fetch[shard]);
    });
  }
  std::vector<float> retry_distances;
  std::vector<int64_t> retry_labels;
  std::vector<std::vector<ScoredItem>> found(shard_count);
  for (int64_t q = 0; q < count; ++q) {
    for (size_t shard = 0; shard < shard_count; ++shard) {
      const int32_t* excluded_begin = excluded[q].data() + bounds[q][shard];
      const int32_t* excluded_end = excluded[q].data() + bounds[q][shard + 1];
      const int64_t want = std::min<int64_t>(k, shards_[shard].index->ntotal - (excluded_end - excluded_begin));
      std::vector<ScoredItem>& kept = found[shard];
      kept.clear();
      const int64_t* shard_labels = labels[shard].data() + q * fetch[shard];
      const float* shard_distances = distances[shard].data() + q * fetch[shard];
      for (int64_t i = 0; i < fetch[shard] && static_cast<int64_t>(kept.size()) < want; ++i) {
        const int64_t label = shard_labels[i];
        if (label < 0 || std::binary_search(excluded_begin, excluded_end, static_cast<int32_t>(label))) continue;
        kept.push_back({static_cast<int32_t>(label), score_of(shard_distances[i])});
      }
      if (static_cast<int64_t>(kept.size()) < want) {
        OmpThreadsForCall one_thread(1);
        kept = search_shard(shards_[shard], queries + q * d, k, excluded_begin, excluded_end, retry_distances,
                            retry_labels);
      }
      std::sort(kept.begin(), kept.end(), better);
    }
    results[q] = merge_shard_lists(found, std::min<int64_t>(k, size_ - static_cast<int64_t>(excluded[q].size())));
  }
  return results;
}

std::vector<float> ItemIndex::item_vector(int32_t item) const {
  if (empty()) fail("index: the index is empty (not built or loaded)");
  if (!contains(item)) {
    if (has_item_ids())
      fail("index: item {} is not in the index (it holds {} chosen items, ids below {})", item, size(),
           item_id_end_);
    fail("index: item {} out of range [0, {})", item, size());
  }
  std::vector<float> vector(static_cast<size_t>(dim()));
  const Shard& shard = shards_[shard_of(item)];
  // A plain shard reconstructs by row; an id map (IndexIDMap2) by id, through its reverse map.
  const int64_t key = has_item_ids() ? item : item - shard.first_id;
  try {
    shard.index->reconstruct(key, vector.data());
  } catch (const std::exception& error) {
    fail("index ({}): cannot reconstruct item {}: {}", description(), item, error.what());
  }
  return vector;
}

std::string ItemIndex::serialize() const {
  if (shards_.size() > 1)
    fail("index: a sharded index ({} shards) is written one Faiss file per shard (serialize_shard, save_shards)",
         shards_.size());
  return serialize_shard(0);
}

std::string ItemIndex::serialize_shard(int32_t shard) const {
  if (empty()) fail("index: cannot save an empty index");
  if (shard < 0 || shard >= shard_count()) fail("index: no shard {} (it has {})", shard, shard_count());
  faiss::VectorIOWriter writer;
  try {
    faiss::write_index(shards_[static_cast<size_t>(shard)].index.get(), &writer);
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
  Shard shard;
  try {
    shard.index.reset(faiss::read_index(&reader));
  } catch (const std::exception& error) {
    fail("{}: not a readable Faiss index ({} bytes): {}", source, bytes.size(), error.what());
  }
  if (dynamic_cast<faiss::IndexIDMap*>(shard.index.get()) != nullptr) check_item_ids(*shard.index, source);
  // The index inside a subset's id map is the one that ranks (searches go to it): its metric is the one checked.
  const faiss::Index* searched = inner(shard);
  if (searched->metric_type != faiss_metric(metric))
    fail("{}: the index ranks by {} but metric '{}' was asked for", source,
         searched->metric_type == faiss::METRIC_L2 ? "L2 distance" : "inner product", metric_name(metric));
  result.metric_ = metric;
  if (auto* hnsw = dynamic_cast<const faiss::IndexHNSW*>(searched)) result.ef_search_ = hnsw->hnsw.efSearch;
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(inner(shard)))
    result.nprobe_ = static_cast<int32_t>(std::max<size_t>(ivf->nprobe, 1));
  result.shards_.push_back(std::move(shard));
  result.prepare_after_load();
  return result;
}

ItemIndex ItemIndex::join_shards(std::vector<ItemIndex> shards, const std::vector<std::string>& sources) {
  if (shards.empty()) fail("index: no shards to join");
  if (sources.size() != shards.size()) fail("index: {} names for {} shards", sources.size(), shards.size());
  if (shards.size() == 1) return std::move(shards[0]);
  // The first shard's properties, read before its Faiss object moves into the result.
  const std::string kind = shards[0].description();
  const int32_t dim = shards[0].dim();
  const Metric metric = shards[0].metric_;
  const bool mapped = shards[0].has_item_ids();
  ItemIndex result;
  result.metric_ = metric;
  result.nprobe_ = shards[0].nprobe_;
  result.ef_search_ = shards[0].ef_search_;
  int64_t previous_end = 0;  // one past the previous id-mapped shard's largest id
  for (size_t part = 0; part < shards.size(); ++part) {
    ItemIndex& shard = shards[part];
    const std::string& source = sources[part];
    if (shard.shard_count() != 1)
      fail("{}: {} shards in what should be one shard's file", source, shard.shard_count());
    if (shard.dim() != dim)
      fail("{}: dimension {}, but the first shard ({}) has {}", source, shard.dim(), sources[0], dim);
    if (shard.metric_ != metric)
      fail("{}: metric '{}', but the first shard ({}) has '{}'", source, metric_name(shard.metric_), sources[0],
           metric_name(metric));
    if (shard.description() != kind)
      fail("{}: a {} index, but the first shard ({}) is {}; every shard must be the same kind", source,
           shard.description(), sources[0], kind);
    if (shard.has_item_ids() != mapped)
      fail("{}: {} id map, unlike the first shard ({}); the shards of one index are all a subset's or all plain",
           source, shard.has_item_ids() ? "has an" : "has no", sources[0]);
    if (mapped && shard.size() > 0) {
      if (shard.shards_[0].first_id < previous_end)
        fail("{}: its smallest item id {} is not above the previous shard's largest ({}); shards hold increasing "
             "id ranges",
             source, shard.shards_[0].first_id, previous_end - 1);
      previous_end = shard.item_id_end();
    }
    result.shards_.push_back(std::move(shard.shards_[0]));
  }
  result.prepare_after_load();
  result.set_search_parameters(result.nprobe_, result.ef_search_);
  return result;
}

void ItemIndex::save(const std::string& path) const { write_file_atomic(path, serialize()); }

ItemIndex ItemIndex::load(const std::string& path, Metric metric) {
  return deserialize(read_file(path), metric, path);
}

void ItemIndex::save_shards(const std::vector<std::string>& paths) const {
  if (static_cast<int64_t>(paths.size()) != shard_count())
    fail("index: {} paths for {} shards (one file per shard)", paths.size(), shard_count());
  for (int32_t shard = 0; shard < shard_count(); ++shard)
    write_file_atomic(paths[static_cast<size_t>(shard)], serialize_shard(shard));
}

ItemIndex ItemIndex::load_shards(const std::vector<std::string>& paths, Metric metric) {
  std::vector<ItemIndex> shards;
  shards.reserve(paths.size());
  for (const std::string& path : paths) shards.push_back(load(path, metric));
  return join_shards(std::move(shards), paths);
}

}  // namespace embrec::index
