// Item vectors in a Faiss index (Flat / IVF / HNSW, inner product / cosine / L2), of every item or of a subset with
// explicit ids: top-k search that skips excluded items and still returns exactly k, batch search, save and load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace faiss {
struct Index;
}

namespace embrec::index {

// kCosine L2-normalises the items at build and every query at search, then ranks by inner product.
enum class Metric { kInnerProduct, kCosine, kL2 };

// "ip" | "cosine" | "l2"; anything else is an Error listing the choices.
Metric parse_metric(std::string_view name);
std::string metric_name(Metric metric);

struct IndexSpec {
  // A Faiss factory string ("Flat", "IVF256,Flat", "HNSW32", "IVF1024,PQ16", ...) or a preset: "flat", "ivf"
  // (IVF with 4 * sqrt(item count) lists, the usual rule of thumb, at most item count / 39 so every list gets
  // Faiss' minimum of 39 training points), "hnsw" (HNSW32).
  std::string factory = "Flat";
  Metric metric = Metric::kInnerProduct;
  int32_t nprobe = 16;           // IVF: inverted lists visited per query
  int32_t ef_search = 64;        // HNSW: candidate list size per query (raised to the fetch size when larger)
  int32_t ef_construction = 40;  // HNSW: candidate list size while inserting (Faiss' default)
};

// Resolves a preset ("flat", "ivf", "hnsw") to the Faiss factory string built for `item_count` items; other
// strings are returned unchanged.
std::string resolve_factory(const std::string& factory, int64_t item_count);

struct ScoredItem {
  int32_t item = 0;  // internal item id: the row of the vectors the index was built from, or its entry in `ids`
  float score = 0;   // bigger is better: inner product (ip, cosine) or minus the squared L2 distance (l2)
};

// Thread safety: search() and search_batch() may run concurrently from many threads (Faiss' CPU search is
// read-only); build, load and set_search_parameters must not overlap with them.
//
// Threads: a single-query search runs Faiss with one OpenMP thread (set per call and restored), because a server
// calls it from many worker threads at once and a parallel region per request would only oversubscribe the cores;
// search_batch uses `threads` OpenMP threads (0 = OpenMP's current default).
class ItemIndex {
 public:
  ItemIndex();
  ItemIndex(ItemIndex&&) noexcept;
  ItemIndex& operator=(ItemIndex&&) noexcept;
  ~ItemIndex();

  // Builds from `vectors` [count x dim] row-major (row i = internal item id i); trains first when the index
  // type needs it (IVF trains its coarse quantiser on all rows).
  static ItemIndex build(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec);

  // Builds from a subset of the items: `vectors` [count x dim] holds the rows of the items `ids` (count of them,
  // strictly increasing internal ids; the others stay out of the index). Faiss' IndexIDMap2 wraps the factory-built
  // index and maps its rows to the ids (and back, for item_vector); IVF trains on these rows only. Searches return
  // the ids, never an id outside `ids`.
  static ItemIndex build(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                         const std::vector<int32_t>& ids);

  // Top-k items for one query of dim() floats, best first (ties by lower item id), never an item in `exclude`
  // (internal ids, any order; duplicates and ids not in the index ignored). Returns exactly
  // min(k, size() - indexed ids excluded) items: it fetches k + |exclude| candidates and, when the filter leaves
  // fewer than k, fetches more (doubling), for IVF widens nprobe and for HNSW efSearch (doubling, up to all lists /
  // all items) until enough remain. An empty result when k <= 0.
  std::vector<ScoredItem> search(const float* query, int64_t k, const std::vector<int32_t>& exclude = {}) const;

  // One search per row of `queries` [count x dim()]; `excludes` is empty (exclude nothing) or holds one list per
  // query. Same guarantees as search().
  std::vector<std::vector<ScoredItem>> search_batch(const float* queries, int64_t count, int64_t k,
                                                    const std::vector<std::vector<int32_t>>& excludes = {},
                                                    int threads = 0) const;

  // The stored vector of one item (after normalisation for cosine); an Error for an id not in the index or an
  // index type that cannot reconstruct (e.g. PQ codes are lossy but still reconstruct approximately).
  std::vector<float> item_vector(int32_t item) const;

  // Whether `item` is in the index: [0, size()) for an index of every item, one of the build's `ids` for a subset.
  bool contains(int32_t item) const;
  // One past the largest item id in the index (size() for an index of every item): the item count the index needs
  // its id maps to cover.
  int64_t item_id_end() const { return item_id_end_; }
  // Whether the index holds a subset of the items with explicit ids (built with `ids`, or loaded from such a file).
  bool has_item_ids() const;

  // IVF nprobe and HNSW efSearch used by later searches; values <= 0 keep the current ones.
  void set_search_parameters(int32_t nprobe, int32_t ef_search);
  int32_t nprobe() const { return nprobe_; }
  int32_t ef_search() const { return ef_search_; }

  // Faiss' own serialisation (faiss::write_index / read_index); a subset's ids travel inside (IndexIDMap2). `metric`
  // is not stored by Faiss in a way that tells cosine from inner product: the caller (the export's manifest)
  // supplies it; a Faiss metric that disagrees with it is an Error naming the file, as is an id map that build()
  // could not have written (ids outside the int32 range or not strictly increasing).
  void save(const std::string& path) const;
  static ItemIndex load(const std::string& path, Metric metric);
  std::string serialize() const;
  static ItemIndex deserialize(std::string_view bytes, Metric metric, const std::string& source);

  // Items in the index (of a subset: ids.size()).
  int64_t size() const;
  int32_t dim() const;
  Metric metric() const { return metric_; }
  // "Flat", "IVF{nlist},Flat", "HNSW{M}" as read from the Faiss object (for a subset, the index inside the id map),
  // or the Faiss class for other types.
  std::string description() const;
  bool empty() const { return index_ == nullptr; }

 private:
  static ItemIndex build_rows(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                              const std::vector<int32_t>* ids);
  void prepare_after_load();
  // The factory-built index: index_ itself, or the one inside a subset's id map. Searches and settings go to it.
  faiss::Index* inner() const;
  // Sorted, unique copy of `exclude` holding only ids in the index, so its size is exactly what the filter removes.
  void prepare_excluded(const std::vector<int32_t>& exclude, std::vector<int32_t>& out) const;
  // Raw Faiss search of n queries (already normalised for cosine) with explicit per-call parameters; labels are
  // item ids (a subset's rows translated through its id map), -1 for padding.
  void faiss_search(int64_t n, const float* queries, int64_t fetch, int32_t nprobe, int64_t ef_search,
                    float* distances, int64_t* labels) const;
  std::vector<ScoredItem> search_prepared(const float* query, int64_t k, std::vector<int32_t>& excluded,
                                          std::vector<float>& distances, std::vector<int64_t>& labels) const;
  float score_of(float distance) const;

  std::unique_ptr<faiss::Index> index_;
  Metric metric_ = Metric::kInnerProduct;
  int32_t nprobe_ = 16;
  int32_t ef_search_ = 64;
  int64_t nlist_ = 0;  // > 0 when the index is an IVF whose nprobe we control per call
  bool is_hnsw_ = false;
  int64_t item_id_end_ = 0;
};

}  // namespace embrec::index
