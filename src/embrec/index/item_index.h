// Item vectors in a Faiss index (Flat / IVF / IVF-PQ / HNSW, inner product / cosine / L2), of every item or of a subset
// with explicit ids, whole or split into shards by item-id range: top-k search that skips excluded items and still
// returns exactly k, batch search, save and load.
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
  // Faiss' minimum of 39 training points), "ivfpq" (the same lists holding 8-bit product-quantiser codes instead of
  // floats: see resolve_factory), "hnsw" (HNSW32). In a sharded index the item count is the smallest shard's.
  std::string factory = "Flat";
  Metric metric = Metric::kInnerProduct;
  int32_t nprobe = 16;           // IVF: inverted lists visited per query
  int32_t ef_search = 64;        // HNSW: candidate list size per query (raised to the fetch size when larger)
  int32_t ef_construction = 40;  // HNSW: candidate list size while inserting (Faiss' default)
};

// Resolves a preset ("flat", "ivf", "ivfpq", "hnsw") to the Faiss factory string built for `item_count` items of
// `dim` floats; other strings are returned unchanged, and so is "ivfpq" while `dim` is 0 (unknown: the build, which
// knows it, resolves it then).
//
// "ivfpq" is "IVF{n},PQ{m}np": n lists as "ivf" chooses them; m sub-quantizers of 256 codes (one byte each), m the
// divisor of `dim` whose dim / m (dimensions per sub-quantizer) is closest to 8 within [4, 16], ties to the larger m
// (more bytes, better recall). About 8 dimensions per byte is Faiss' usual operating point (64-d -> PQ8, 128-d ->
// PQ16): a vector costs dim / 8 bytes instead of 4 * dim, 32x less, for a recall that bench/bench_shards measures.
// "np" skips Faiss' polysemous training, which only renumbers each codebook for Hamming-distance pre-filtering
// (polysemous_ht, never turned on here) and took 15.8 s of a 16.9 s build of 20,000 x 32 items (1.2 s without).
// An Error names the dimension when it has no such divisor (a prime above 16, or below 4), and the item count when
// it is below 256, the codes each sub-quantizer's k-means must learn.
std::string resolve_factory(const std::string& factory, int64_t item_count, int32_t dim = 0);

// Items in the smallest of `shards` shards of `item_count` items: the count presets are sized for, so every shard
// trains on at least as many rows as its factory string assumes.
int64_t smallest_shard_size(int64_t item_count, int32_t shards);

struct ScoredItem {
  int32_t item = 0;  // internal item id: the row of the vectors the index was built from, or its entry in `ids`
  float score = 0;   // bigger is better: inner product (ip, cosine) or minus the squared L2 distance (l2)
};

// Thread safety: search() and search_batch() may run concurrently from many threads (Faiss' CPU search is
// read-only); build, load, set_search_parameters and add must not overlap with them. add() changes the Faiss
// objects, the sizes and the id maps that every const method reads, so a caller that adds while serving holds a
// readers-writer lock: every const call (search, search_batch, item_vector, contains, size, ...) shared, add
// exclusive (the service's Bundle::items_lock).
//
// Threads: a single-query search of an unsharded index runs Faiss with one OpenMP thread (set per call and
// restored), because a server calls it from many worker threads at once and a parallel region per request would
// only oversubscribe the cores; search_batch uses `threads` OpenMP threads (0 = OpenMP's current default).
//
// Shards: an index built with `shards` > 1 holds that many Faiss indexes over contiguous item-id ranges of about
// equal size (each trains on its own rows), so no single Faiss object must hold the catalogue and one query's scan
// can be spread over cores. A query searches every shard (in parallel: one OpenMP thread per shard, up to OpenMP's
// thread count, OMP_NUM_THREADS or the cores) for its own top k, the exclusions falling in it taken out, and the
// shard lists are merged: for an exact (Flat) index the result equals the unsharded index's, ids, scores and ties
// (lower item id first). nprobe and efSearch apply to every shard. Files: one Faiss file per shard (save_shards;
// Faiss 1.7.3 cannot write its own IndexShards), in id order, which is what gives a plain shard's rows their ids.
class ItemIndex {
 public:
  ItemIndex();
  ItemIndex(ItemIndex&&) noexcept;
  ItemIndex& operator=(ItemIndex&&) noexcept;
  ~ItemIndex();

  // Builds from `vectors` [count x dim] row-major (row i = internal item id i); trains first when the index
  // type needs it (IVF trains its coarse quantiser on all rows, of each shard its own). `shards` (>= 1, at most
  // `count`): shard s holds rows [s * count / shards, (s + 1) * count / shards).
  static ItemIndex build(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                         int32_t shards = 1);

  // Builds from a subset of the items: `vectors` [count x dim] holds the rows of the items `ids` (count of them,
  // strictly increasing internal ids; the others stay out of the index). Faiss' IndexIDMap2 wraps the factory-built
  // index and maps its rows to the ids (and back, for item_vector); IVF trains on these rows only. Searches return
  // the ids, never an id outside `ids`. With `shards` the rows are split as above, each shard its own id map.
  static ItemIndex build(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                         const std::vector<int32_t>& ids, int32_t shards = 1);

  // Adds `count` items [count x dim()] row-major to the built index, as items first_id, first_id + 1, ... (-1 =
  // item_id_end(), where the numbering stops now), and returns the first id given. An index of every item numbers
  // its items by row, so its new ones must continue at item_id_end(); a subset's (built with ids) may start anywhere
  // above its largest id (e.g. after items that exist but are left out of it). Cosine normalises the rows as build
  // does. Sharded: the rows go to the last shard, whose id range is the open-ended one.
  //
  // Every kind built here takes new rows: Flat stores them; IVF and IVF-PQ file them in their nearest trained
  // list (the coarse quantiser and the codebooks are not retrained, so rows far from the training data are
  // placed, and for PQ encoded, less well); HNSW links them into its graph, which also rewires existing nodes'
  // neighbour lists, so an approximate search may then rank old items slightly differently. A Faiss kind that
  // refuses rows after it is built (e.g. NSG: it checks before writing any) is an Error naming the kind, and so
  // are ids that would break the numbering. Not thread-safe: see the class comment.
  int32_t add(const float* vectors, int64_t count, int64_t first_id = -1);

  // Top-k items for one query of dim() floats, best first (ties by lower item id), never an item in `exclude`
  // (internal ids, any order; duplicates and ids not in the index ignored). Returns exactly
  // min(k, size() - indexed ids excluded) items: it fetches k + |exclude| candidates and, when the filter leaves
  // fewer than k, fetches more (doubling), for IVF widens nprobe and for HNSW efSearch (doubling, up to all lists /
  // all items) until enough remain. An empty result when k <= 0. Sharded: each shard does the same for the
  // exclusions in its id range, and its lists are merged.
  std::vector<ScoredItem> search(const float* query, int64_t k, const std::vector<int32_t>& exclude = {}) const;

  // One search per row of `queries` [count x dim()]; `excludes` is empty (exclude nothing) or holds one list per
  // query. Same guarantees as search(). Sharded: the batch is cut into (shard, block of queries) pieces spread over
  // the `threads` team, so shards run in parallel however the team compares with the shard count.
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
  // Faiss indexes the items are split into: 1 for an unsharded index.
  int32_t shard_count() const { return static_cast<int32_t>(shards_.size()); }

  // IVF nprobe and HNSW efSearch used by later searches; values <= 0 keep the current ones.
  void set_search_parameters(int32_t nprobe, int32_t ef_search);
  int32_t nprobe() const { return nprobe_; }
  int32_t ef_search() const { return ef_search_; }

  // Faiss' own serialisation (faiss::write_index / read_index); a subset's ids travel inside (IndexIDMap2). `metric`
  // is not stored by Faiss in a way that tells cosine from inner product: the caller (the export's manifest)
  // supplies it; a Faiss metric that disagrees with it is an Error naming the file, as is an id map that build()
  // could not have written (ids outside the int32 range or not strictly increasing).
  // save, serialize: of an unsharded index (an Error for a sharded one: use the _shards forms).
  void save(const std::string& path) const;
  static ItemIndex load(const std::string& path, Metric metric);
  std::string serialize() const;
  static ItemIndex deserialize(std::string_view bytes, Metric metric, const std::string& source);

  // One Faiss file (bytes) per shard, in id order: what the export writes. `paths` / `sources` name them, one per
  // shard. Reading joins the shards as join_shards does.
  std::string serialize_shard(int32_t shard) const;
  void save_shards(const std::vector<std::string>& paths) const;
  static ItemIndex load_shards(const std::vector<std::string>& paths, Metric metric);
  // Joins unsharded indexes, each read from one shard's file (`sources`, named in errors), into one sharded index.
  // A plain shard's rows take the ids after the previous shards' items; id-mapped shards (a subset) keep their ids,
  // which must lie above the previous shard's. Every shard must be the same kind of index (description()), of the
  // same dimension and all plain or all id-mapped; search parameters are the first shard's.
  static ItemIndex join_shards(std::vector<ItemIndex> shards, const std::vector<std::string>& sources);

  // Items in the index (of a subset: ids.size()).
  int64_t size() const;
  int32_t dim() const;
  Metric metric() const { return metric_; }
  // "Flat", "IVF{nlist},Flat", "IVF{nlist},PQ{m}", "HNSW{M}" as read from the Faiss object (for a subset, the index
  // inside the id map), or the Faiss class for other types; a sharded index adds " x {shards} shards".
  std::string description() const;
  bool empty() const { return shards_.empty(); }

 private:
  struct Shard {
    std::unique_ptr<faiss::Index> index;  // factory-built, or a subset's IndexIDMap2 around the factory-built one
    // The shard's smallest item id. A plain shard's row r is item first_id + r; an id-mapped shard's labels come
    // from its map (first_id only routes ids to it).
    int64_t first_id = 0;
    int64_t nlist = 0;  // > 0 when the shard is an IVF whose nprobe we control per call
  };

  static ItemIndex build_rows(const float* vectors, int64_t count, int32_t dim, const IndexSpec& spec,
                              const std::vector<int32_t>* ids, int32_t shards);
  static Shard build_shard(const float* rows, int64_t count, int32_t dim, const std::string& factory,
                           const IndexSpec& spec, const int32_t* ids);
  void prepare_after_load();
  // The factory-built index of a shard: the shard's index itself, or the one inside a subset's id map. Searches
  // and settings go to it.
  static faiss::Index* inner(const Shard& shard);
  // The shard whose id range holds `item` (any id: the caller checks membership).
  size_t shard_of(int64_t item) const;
  // Sorted, unique copy of `exclude` holding only ids in the index, so its size is exactly what the filter removes.
  void prepare_excluded(const std::vector<int32_t>& exclude, std::vector<int32_t>& out) const;
  // Raw Faiss search of one shard for n queries (already normalised for cosine) with explicit per-call parameters;
  // labels are item ids (a plain shard's rows offset by its first id, a subset's rows translated through its id
  // map), -1 for padding.
  void faiss_search(const Shard& shard, int64_t n, const float* queries, int64_t fetch, int32_t nprobe,
                    int64_t ef_search, float* distances, int64_t* labels) const;
  // One shard's top min(k, its items - excluded) for one query, `excluded` (sorted) the exclusions in its range.
  std::vector<ScoredItem> search_shard(const Shard& shard, const float* query, int64_t k,
                                       const int32_t* excluded_begin, const int32_t* excluded_end,
                                       std::vector<float>& distances, std::vector<int64_t>& labels) const;
  // The sorted exclusions `excluded` split at the shards' first ids: shard s's are [bounds[s], bounds[s + 1]).
  std::vector<size_t> excluded_bounds(const std::vector<int32_t>& excluded) const;
  float score_of(float distance) const;

  std::vector<Shard> shards_;
  Metric metric_ = Metric::kInnerProduct;
  int32_t nprobe_ = 16;
  int32_t ef_search_ = 64;
  bool is_hnsw_ = false;
  int64_t size_ = 0;
  int64_t item_id_end_ = 0;
};

}  // namespace embrec::index
