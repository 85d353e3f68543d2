// SAR (Smart Adaptive Recommendations, Microsoft Recommenders' sar_singlenode.py): item similarity from binarised
// co-occurrence, time-decayed user affinity, score = affinity x similarity; plus the sparse pieces ItemKNN reuses.
#pragma once

#include <string>
#include <vector>

#include "embrec/models/model.h"

namespace embrec::models {

// A sparse matrix in compressed sparse rows: row r owns positions [offsets[r], offsets[r + 1]), columns ascending.
struct CsrMatrix {
  int32_t column_count = 0;
  std::vector<int64_t> offsets{0};
  std::vector<int32_t> columns;
  std::vector<float> values;

  int32_t row_count() const { return static_cast<int32_t>(offsets.size()) - 1; }
  int64_t nonzeros() const { return static_cast<int64_t>(columns.size()); }
  // The entry at (row, column); 0 when it is not stored.
  float at(int32_t row, int32_t column) const;
};

// A CsrMatrix kept as three buffers of a module (<name>_offsets int64, <name>_columns int32, <name>_values float32),
// so checkpoints carry it; loading a checkpoint resizes them. Count-based models score straight from these views.
class CsrBuffers {
 public:
  CsrBuffers(torch::nn::Module& module, const std::string& name);
  void assign(const CsrMatrix& matrix);
  // 0 before assign() or a checkpoint load.
  int64_t row_count() const { return offsets_.numel() > 0 ? offsets_.numel() - 1 : 0; }
  const int64_t* offsets() const { return offsets_.data_ptr<int64_t>(); }
  const int32_t* columns() const { return columns_.data_ptr<int32_t>(); }
  const float* values() const { return values_.data_ptr<float>(); }

 private:
  torch::Tensor offsets_;
  torch::Tensor columns_;
  torch::Tensor values_;
};

// C = A^T A for the 0/1 users x items matrix A of `train` (an item repeated in a user's list counts once), keeping
// only entries >= support_threshold, the diagonal included: MS's compute_cooccurrence_matrix. Built per item from
// inverted lists (work = sum over users of their item count squared), rows in parallel.
CsrMatrix item_cooccurrence(const data::Sequences& train, int32_t item_count, int64_t support_threshold);

enum class SarSimilarity { Jaccard, Lift, Cooccurrence };
inline const Names<SarSimilarity> kSarSimilarityNames = {
    {"jaccard", SarSimilarity::Jaccard}, {"lift", SarSimilarity::Lift}, {"cooccurrence", SarSimilarity::Cooccurrence}};

// MS's similarity_type on a (thresholded) co-occurrence, diagonal kept as they keep it:
//   "cooccurrence": c_ij;  "jaccard": c_ij / (c_ii + c_jj - c_ij);  "lift": c_ij / (c_ii c_jj).
// Entries below the threshold are 0 (MS's dense division leaves 0/0 = NaN between two items that are both below
// it; a stored c_ij >= threshold implies c_ii, c_jj >= threshold, so stored entries never divide by 0).
CsrMatrix sar_similarity(const CsrMatrix& cooccurrence, SarSimilarity similarity);

// MS's exponential_decay: 2^(-(latest - timestamp) / half_life), capped at 1 for events after `latest`.
double time_decay_weight(int64_t timestamp_seconds, int64_t latest_seconds, double half_life_seconds);

// Where SAR keeps the similarity's rows: dense, sparse (CSR), or auto (dense when dense enough, see Sar::fit).
enum class SarStorage { Auto, Dense, Sparse };
inline const Names<SarStorage> kSarStorageNames = {
    {"auto", SarStorage::Auto}, {"dense", SarStorage::Dense}, {"sparse", SarStorage::Sparse}};

struct SarConfig {
  SarSimilarity similarity = SarSimilarity::Jaccard;  // jaccard | lift | cooccurrence
  int64_t support_threshold = 1;       // co-occurrences below it are dropped (MS `threshold`)
  bool use_ratings = true;             // event weight = rating when the data has ratings, else 1
  bool time_decay = false;             // MS `timedecay_formula` (off by default there too)
  double time_decay_days = 30.0;       // MS `time_decay_coefficient`: the half-life in days; timestamps in seconds
  SarStorage storage = SarStorage::Auto;  // similarity rows: dense | sparse (CSR) | auto (dense when dense enough)

  static SarConfig from(ConfigTable& table);
};

// User affinity rows (users x items): per (user, item), the sum over its training events of weight x decay, with
// decay measured from the latest timestamp in `train` (MS's compute_time_decay: time_now = max timestamp, then
// group-by-sum). A time decay on data without timestamps is an Error.
CsrMatrix sar_affinity(const data::Sequences& train, int32_t item_count, const SarConfig& config);

// score(user, j) = sum_i affinity(user, i) similarity(i, j), MS's recommend_k_items. The affinity is the training
// split's, learned in fit() and checkpointed: score_block ignores the histories it is given (at the test stage of a
// split with a validation part, valid events do not enter the affinity, as MS has no such stage). MS's
// remove_seen = true is the evaluator's exclude = "history", not done here; MS's `normalize` rescales each user's
// scores by a positive affine map, which leaves rankings unchanged, so it is not offered.
class Sar final : public Model {
 public:
  using Config = SarConfig;
  Sar(const SarConfig& config, const ModelContext& context);
  std::string name() const override { return "sar"; }
  void fit(const data::Split& split) override;
  torch::nn::Module& module() override { return module_; }
  void score_block(const data::Sequences& histories, const int32_t* users, int32_t count, float* out) override;

  // Whether the fitted (or loaded) similarity is held as dense rows rather than CSR.
  bool dense_similarity() const { return similarity_dense_.numel() > 0; }

 private:
  SarConfig config_;
  int32_t item_count_;
  torch::nn::Module module_;
  CsrBuffers similarity_;           // item_count x item_count when sparse, else empty
  torch::Tensor similarity_dense_;  // [item_count, item_count] float32 when dense, else empty
  CsrBuffers affinity_;             // training users x item_count
};

}  // namespace embrec::models
