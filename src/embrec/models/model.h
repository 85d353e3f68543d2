// The model interface and the registry: a model turns a batch into named loss parts, turns histories into user
// vectors and exposes item vectors (embedding models), or fills a score block directly (count-based models).
// `model = "sasrec"` in a config is all a user writes; see pop.cpp for the smallest model to copy.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "embrec/data/dataset.h"
#include "embrec/data/features.h"
#include "embrec/data/news.h"
#include "embrec/data/sampler.h"
#include "embrec/models/batch_gather.h"
#include "embrec/util/config.h"
#include "embrec/util/share.h"

namespace embrec::models {

// What every model may know when it is created.
struct ModelContext {
  int32_t item_count = 0;
  int32_t user_count = 0;
  torch::Device device = torch::kCPU;
  uint64_t seed = 42;
  // The prepared data and its split, for models that size themselves by it (the two-tower model's feature
  // vocabularies). Valid only while the model is constructed (the experiment holding them may move afterwards);
  // null when an export's encoder is rebuilt from its config alone.
  const data::Dataset* dataset = nullptr;
  const data::Split* split = nullptr;
  // When an export's encoder is rebuilt: what Model::encoder_state() wrote at export (e.g. feature vocabularies);
  // empty otherwise.
  std::string encoder_state;
};

// The loss of one batch: the total that is minimised and its named parts for logs and curves ("sr", "clust", ...).
struct LossParts {
  torch::Tensor total;
  std::vector<std::pair<std::string, torch::Tensor>> parts;
};

// The ranks of a data-parallel job as Model::begin_epoch sees them, so that work over all users is split among them
// and done once (ICLRec's k-means). One process: rank 0 of 1, nothing to gather or broadcast.
struct EpochWorld {
  int rank = 0;
  int size = 1;
  BatchGather gather;                                // every rank's rows of a tensor, in rank order
  std::function<void(torch::Tensor&)> broadcast;     // rank 0's values into the tensor on every rank

  // This rank's share [begin, end) of `count` items (util/share.h).
  std::pair<int64_t, int64_t> share(int64_t count) const { return share_of(count, rank, size); }
};

// A training batch as tensors on the model's device (see data::SequenceBatch for the layout).
struct TensorBatch {
  torch::Tensor users;     // [B] int64
  torch::Tensor input;     // [B, L] int64, 0 = padding
  torch::Tensor target;    // [B, L] int64, 0 = no target
  torch::Tensor negative;  // [B, L] int64 or undefined
  torch::Tensor rating;    // [B, L] float32, the target's rating (0 where no target), or undefined unless asked for
  torch::Tensor shared_negative;  // [S] int64, negatives shared by the batch, or undefined unless asked for
  torch::Tensor reset;     // [B, L] bool, session-parallel batches only: the slot's state restarts at this column
  torch::Tensor candidates;  // [B, 1 + npratio] int64, impression batches only: the clicked news first
  int32_t max_length = 0;  // the model's window; column j is window position max_length - L + j
  int64_t epoch = 0;        // with batch_index: seeds a model's own randomness (augmentations) reproducibly
  int64_t batch_index = 0;
  // Data-parallel jobs: this tensor batch is one rank's share of the global batch, whose rows begin at first_row
  // (seed per-row randomness by first_row + row to draw what one process draws); gather gives the losses that
  // compare rows with each other the whole batch (models/batch_gather.h). One process: 0 and empty.
  int64_t first_row = 0;
  BatchGather gather;
};

// The sampler's arrays as tensors on `device`. On the CPU they borrow the arrays (no copy): use the batch up (loss
// and backward) before the arrays change.
TensorBatch tensor_batch(const data::SequenceBatch& batch, int32_t max_length, torch::Device device);

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string name() const = 0;

  // Count-based models learn here, once, from the training split; embedding models may read statistics.
  virtual void fit(const data::Split& /*split*/) {}
  // Called when a trained run is loaded (eval, export, serve), before its checkpoint: rebuilds what the model keeps
  // from the training split besides its checkpointed tensors (NCF's training items, RBM's training ratings). By
  // default fit() again, cheap for counting models; a model whose fit() is a long optimisation kept entirely in
  // buffers (RLRMC) restores nothing.
  virtual void restore(const data::Split& split) { fit(split); }
  // Whether the trainer runs gradient epochs on this model (then loss() is what it minimises).
  virtual bool trainable() const { return false; }
  // What the sampler must provide (window length, negatives).
  virtual data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const { return defaults; }

  // The parameters' owner: train/eval mode, optimiser, checkpoints. Count-based models return an empty module
  // holding their statistics as buffers so they checkpoint the same way.
  virtual torch::nn::Module& module() = 0;

  // Called by the trainer before each training epoch (ICLRec-style models re-cluster all users here), on every rank
  // of a data-parallel job with the same parameters.
  virtual void begin_epoch(int64_t /*epoch*/, const EpochWorld& /*world*/ = {}) {}

  // The loss of a batch; count-based models (trainable() false) have none.
  virtual LossParts loss(const TensorBatch& batch);

  // Embedding models: vector dimension (> 0), user vectors for `count` users' histories ([count, dim] float32 on
  // CPU) and item vectors ([item_count, dim] float32 on CPU), scored by inner product. Count-based: dim() == 0.
  virtual int64_t dim() const { return 0; }
  virtual torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count);
  virtual torch::Tensor item_vectors();
  // Whether user_vectors() encodes the histories it is given (sequence models), so that a fresh history can be
  // served; false for models whose user vectors are learned per user id (MF, NCF, RLRMC): they serve known users.
  // Such a model's user_vectors() must need only its config and module (no fit()): the export's encoder is built
  // without any data.
  virtual bool encodes_histories() const { return false; }
  // The serving path of a user the model never trained on (encodes_histories() models): one vector [1, dim] from a
  // history (internal item ids, oldest first; may be empty when features are given) and named user features
  // (field -> values). The default encodes the history by user_vectors() (history models ignore the user id) and
  // refuses features; a bad feature name or value is an InputError naming it.
  virtual torch::Tensor fresh_user_vector(const std::vector<int32_t>& history, const data::FeatureValues& features);
  virtual bool takes_user_features() const { return false; }
  // What a served model needs besides its config and weights to be rebuilt (e.g. feature vocabularies), as text:
  // the export writes it beside the encoder's weights and hands it back in ModelContext::encoder_state. Empty =
  // nothing.
  virtual std::string encoder_state() const { return {}; }
  // Whether item_vectors() places an item never trained on by something other than its untrained embedding (the
  // two-tower item tower from features): only then may an export index such items (`embrec export --cold-items`).
  virtual bool places_untrained_items() const { return false; }
  // News models: whether an article never trained on gets its vector from its text (fresh_item_vector, [1, dim]),
  // so that the service can add it to the live index; a title without a known word is an InputError.
  virtual bool encodes_items() const { return false; }
  virtual torch::Tensor fresh_item_vector(const data::NewsText& article);

  // Rating models (MF with loss = "mse"): predicted ratings of (users[k], items[k]) pairs (internal ids) into
  // out[count]; the evaluator reports RMSE/MAE/R² on the held-out ratings when predicts_ratings() is true.
  virtual bool predicts_ratings() const { return false; }
  virtual void predict_ratings(const int32_t* users, const int32_t* items, int64_t count, float* out);

  // Models with clusters (S4Rec, ICLRec): the number of clusters (0 = none) and each user's assigned cluster.
  virtual int64_t cluster_count() const { return 0; }
  virtual std::vector<int32_t> cluster_assignments(const data::Sequences& histories, const int32_t* users,
                                                   int32_t count);

  // Count-based models: scores for `count` users into out[count x item_count].
  virtual void score_block(const data::Sequences& histories, const int32_t* users, int32_t count, float* out);
};

// User vectors of a sequence model for `count` users' histories: the last `window` items of each, right-aligned
// (ids + 1, 0 = padding), encoded by `encode` ([n, length] -> [n, dim]) in blocks of `batch_users` users taken in
// order of history length, so each block is padded only to its own longest (on Beauty, mean 8.9 of a 50 window,
// this cuts the tokens of a full pass ~5x). `module` runs in eval mode without autograd. Rows come back in the
// callers order, as [count, dim] float32 on the CPU.
torch::Tensor encode_history_blocks(const data::Sequences& histories, const int32_t* users, int32_t count,
                                    int64_t window, int64_t batch_users, int64_t dim, torch::Device device,
                                    torch::nn::Module& module,
                                    const std::function<torch::Tensor(const torch::Tensor&)>& encode);

// Checkpoint files (best.pt, checkpoint.pt; written by train/checkpoint.h): a LibTorch archive behind the header
// line "embrec-checkpoint 1 sha256 <hex>" (util/checksum.h). read_checkpoint_archive returns the verified archive
// bytes (InputArchive::load_from(data, size) reads them); a bare archive from before the header loads with a warning.
inline constexpr std::string_view kCheckpointKind = "embrec-checkpoint 1";
std::string read_checkpoint_archive(const std::string& path);

// A model in two steps, so that a config is checked before any data is read: the factory reads and checks the
// model's table (no data needed) and returns the builder, which makes the model once the data is known.
using ModelBuilder = std::function<std::unique_ptr<Model>(const ModelContext& context)>;
using ModelFactory = std::function<ModelBuilder(ConfigTable& table)>;

// Registers a factory under `name`; returns true so it can initialise a static. Duplicate names abort at start-up.
bool register_model(const std::string& name, ModelFactory factory);
// The factory of a model class M with a nested `Config` (a struct with `static Config from(ConfigTable&)`) and a
// constructor M(const Config&, const ModelContext&).
template <typename M>
ModelFactory factory_of() {
  return [](ConfigTable& table) -> ModelBuilder {
    typename M::Config config = M::Config::from(table);
    return [config](const ModelContext& context) -> std::unique_ptr<Model> { return std::make_unique<M>(config, context); };
  };
}

// Reads and checks the table of the model named by its `name` key; an unknown name is an Error naming the key,
// the file and the known names. The table's other keys are the model's own (unknown ones are errors at finish()).
ModelBuilder configure_model(ConfigTable& table);
// Both steps at once: configure_model(table)(context).
std::unique_ptr<Model> create_model(ConfigTable& table, const ModelContext& context);
std::vector<std::string> model_names();

}  // namespace embrec::models

// In the model's .cpp: EMBREC_REGISTER_MODEL("pop", Pop);
#define EMBREC_REGISTER_MODEL(NAME, MODEL) \
  static const bool embrec_registered_##MODEL = ::embrec::models::register_model(NAME, ::embrec::models::factory_of<MODEL>())
