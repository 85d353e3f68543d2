// S4Rec and its ablations: the loss parts of paper Eq. 14 over a shared SASRec encoder.
#include "embrec/models/s4rec.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <numeric>

#include "embrec/models/losses/distill.h"
#include "embrec/models/losses/grad_reverse.h"
#include "embrec/models/losses/info_nce.h"
#include "embrec/models/losses/sinkhorn.h"
#include "embrec/util/error.h"

namespace embrec::models {

namespace F = torch::nn::functional;

S4recConfig S4recConfig::from(ConfigTable& table) {
  S4recConfig c;
  c.encoder = SasrecConfig::from(table);
  c.clustering = table.get_one_of("clustering", c.clustering, kClusteringNames);
  c.clusters = table.get_at_least("clusters", c.clusters, int64_t{2});
  c.alpha = table.get_at_least("alpha", c.alpha, 0.0);
  c.beta1 = table.get_at_least("beta1", c.beta1, 0.0);
  c.beta2 = table.get_at_least("beta2", c.beta2, 0.0);
  c.lambda = table.get_at_least("lambda", c.lambda, 0.0);
  c.icl_weight = table.get_at_least("icl_weight", c.icl_weight, 0.0);
  c.tau1 = table.get_positive("tau1", c.tau1);
  c.tau2 = table.get_positive("tau2", c.tau2);
  c.tau3 = table.get_positive("tau3", c.tau3);
  c.ckd_space = table.only(c.beta2 > 0, "when beta2 > 0 (L_CKD is on)").get_one_of("ckd_space", c.ckd_space, kCkdSpaceNames);
  c.sinkhorn_epsilon = table.get_positive("sinkhorn_epsilon", c.sinkhorn_epsilon);
  c.sinkhorn_iterations = table.get_at_least("sinkhorn_iterations", c.sinkhorn_iterations, int64_t{1});
  c.prototype_negatives = table.get("prototype_negatives", c.prototype_negatives);
  c.similarity = table.get_one_of("similarity", c.similarity, kSimilarityNames);
  c.grl_scale = table.get_at_least("grl_scale", c.grl_scale, 0.0);
  c.head_share = table.get_in_range("head_share", c.head_share, "(0, 1)");
  c.kmeans_iterations = table.get_at_least("kmeans_iterations", c.kmeans_iterations, int64_t{1});
  c.augment = data::AugmentOptions::from(table);

  const bool has_clusters = c.clustering != Clustering::None;
  table.check(has_clusters || (c.alpha == 0 && c.beta2 == 0 && c.icl_weight == 0), "clustering",
              "is \"none\", but alpha, beta2 and icl_weight need clusters (set them to 0)");
  table.check(has_clusters || !(c.prototype_negatives && c.beta1 > 0), "prototype_negatives",
              "needs clusters (clustering = \"none\"): set it to false");
  table.check(c.clustering == Clustering::Sinkhorn || c.alpha == 0, "alpha",
              "(L_Clust) trains online prototypes and needs clustering = \"sinkhorn\"; set it to 0 for k-means");
  return c;
}

S4recModuleImpl::S4recModuleImpl(const S4recConfig& config, int32_t item_count) {
  const bool mask_token = config.uses_views() && config.augment.uses(data::AugmentOperator::Mask);
  encoder = register_module("encoder", SasrecEncoder(config.encoder, item_count, mask_token ? 1 : 0));
  if (config.clustering == Clustering::Sinkhorn) {
    prototypes = register_parameter("prototypes", torch::randn({config.clusters, config.encoder.dim}) *
                                                      config.encoder.initializer_range);
  } else if (config.clustering == Clustering::Kmeans) {
    prototypes = register_buffer("centroids", torch::zeros({config.clusters, config.encoder.dim}));
  }
  if (config.lambda > 0) {
    classifier = register_module("classifier", torch::nn::Linear(config.encoder.dim, 2));
  }
}

S4rec::S4rec(const S4recConfig& config, const ModelContext& context)
    : SasrecBase(config.encoder, context), config_(config) {
  module_ = S4recModule(config_, context.item_count);
  module_->to(context.device);
  set_encoder(module_->encoder);
  config_.augment.mask_token = context.item_count + 1;  // the extra embedding row (shifted ids: items are 1..I)
}

void S4rec::fit(const data::Split& split) {
  train_ = split.train;
  std::vector<int32_t> items(split.train.items.begin(), split.train.items.end());
  for (int32_t& item : items) item += 1;
  pool_ = data::ItemPool(std::move(items));
  const std::vector<uint8_t> head = data::head_users(split.train, config_.head_share);
  head_labels_ = torch::empty({static_cast<int64_t>(head.size())}, torch::kLong);
  auto* labels = head_labels_.data_ptr<int64_t>();
  for (size_t u = 0; u < head.size(); ++u) labels[u] = head[u] ? 0 : 1;
  head_labels_ = head_labels_.to(context_.device);
}

torch::Tensor S4rec::cluster_space(const torch::Tensor& z) const {
  return config_.clustering == Clustering::Sinkhorn ? F::normalize(z, F::NormalizeFuncOptions().dim(1)) : z;
}

torch::Tensor S4rec::cluster_centers() const {
  return config_.clustering == Clustering::Sinkhorn
             ? F::normalize(module_->prototypes, F::NormalizeFuncOptions().dim(1))
             : module_->prototypes;
}

int64_t S4rec::cluster_count() const { return config_.clustering == Clustering::None ? 0 : config_.clusters; }

void S4rec::begin_epoch(int64_t epoch, const EpochWorld& world) {
  if (config_.clustering != Clustering::Kmeans || !config_.uses_views()) return;
  if (train_.user_count() == 0) fail("s4rec: begin_epoch before fit");
  // ICLRec's E-step: represent every user by the encoder (eval mode) and cluster them with Faiss' k-means; the
  // centroids stay fixed through the epoch. Users represent their training input (all but the last item). In a
  // data-parallel job each rank encodes its share of the users, rank 0 clusters them all once and broadcasts.
  std::vector<int32_t> clustered;
  for (int32_t u = 0; u < train_.user_count(); ++u)
    if (train_.length(u) >= 2) clustered.push_back(u);
  const auto [begin, end] = world.share(static_cast<int64_t>(clustered.size()));
  data::Sequences inputs;
  std::vector<int32_t> ids;
  for (int64_t k = begin; k < end; ++k) {
    const int32_t u = clustered[static_cast<size_t>(k)];
    inputs.push_user(train_.begin(u), train_.length(u) - 1);
    ids.push_back(static_cast<int32_t>(ids.size()));
  }
  const torch::Tensor local = encode_histories(*module_->encoder, inputs, ids.data(), static_cast<int32_t>(ids.size()),
                                               config_.encoder.encode_batch, context_.device);
  const torch::Tensor z = gather_rows(world.gather, local).all.contiguous();
  if (world.rank == 0) cluster(z, epoch);
  if (world.broadcast) world.broadcast(module_->prototypes);
}

void S4rec::cluster(const torch::Tensor& z, int64_t epoch) {
  const int64_t d = config_.encoder.dim, n = z.size(0);
  faiss::ClusteringParameters parameters;
  parameters.niter = static_cast<int>(config_.kmeans_iterations);
  parameters.seed = static_cast<int>(context_.seed * 7919 + static_cast<uint64_t>(epoch));
  parameters.max_points_per_centroid = 1 << 20;  // use every user, as ICLRec does
  // Faiss warns on stderr at every call when a cluster gets fewer than 39 points on average (the threshold only
  // warns: nothing else depends on it), which repeated the same line each epoch of e.g. ICLRec on ML-1M (6,040 users,
  // 256 clusters); the run's log says it once instead.
  constexpr int kFaissAdvisedPointsPerCluster = 39;
  parameters.min_points_per_centroid = 1;
  if (!warned_sparse_clusters_ && n < config_.clusters * kFaissAdvisedPointsPerCluster) {
    spdlog::warn("k-means of {} users into {} clusters: {:.1f} users per cluster, fewer than the {} Faiss advises",
                 n, config_.clusters, static_cast<double>(n) / static_cast<double>(config_.clusters),
                 kFaissAdvisedPointsPerCluster);
    warned_sparse_clusters_ = true;
  }
  parameters.verbose = false;
  faiss::Clustering clustering(static_cast<int>(d), static_cast<int>(config_.clusters), parameters);
  faiss::IndexFlatL2 index(d);
  clustering.train(n, z.data_ptr<float>(), index);
  torch::NoGradGuard no_grad;
  auto centroids = torch::from_blob(clustering.centroids.data(), {config_.clusters, d}, torch::kFloat32);
  module_->prototypes.copy_(centroids.to(module_->prototypes.device()));
}

torch::Tensor S4rec::make_views(const TensorBatch& batch) const {
  const auto input = batch.input.to(torch::kCPU).contiguous();
  const int64_t rows = input.size(0), length = input.size(1), window = config_.encoder.max_length;
  const int64_t* data = input.data_ptr<int64_t>();
  std::vector<std::vector<int32_t>> views(2 * rows);
  std::vector<int32_t> sequence;
  int64_t longest = 1;
  for (int64_t r = 0; r < rows; ++r) {
    sequence.clear();
    for (int64_t j = 0; j < length; ++j)
      if (data[r * length + j] > 0) sequence.push_back(static_cast<int32_t>(data[r * length + j]));
    for (int64_t v = 0; v < 2; ++v) {
      // One generator per (seed, epoch, batch, row, view): a resumed run draws the same views.
      std::seed_seq seed{static_cast<uint64_t>(context_.seed), static_cast<uint64_t>(batch.epoch),
                         static_cast<uint64_t>(batch.batch_index), static_cast<uint64_t>(batch.first_row + r),
                         static_cast<uint64_t>(v)};
      std::mt19937_64 random(seed);
      std::vector<int32_t> view = data::augment(sequence, config_.augment, pool_, random);
      if (static_cast<int64_t>(view.size()) > window) view.erase(view.begin(), view.end() - window);
      longest = std::max<int64_t>(longest, static_cast<int64_t>(view.size()));
      views[v * rows + r] = std::move(view);
    }
  }
  auto out = torch::zeros({2 * rows, longest}, torch::kLong);
  int64_t* o = out.data_ptr<int64_t>();
  for (int64_t r = 0; r < 2 * rows; ++r) {
    const auto& view = views[r];
    std::copy(view.begin(), view.end(), o + r * longest + (longest - static_cast<int64_t>(view.size())));
  }
  return out.to(batch.input.device());
}

LossParts S4rec::loss(const TensorBatch& batch) {
  SasrecEncoderImpl& encoder = *module_->encoder;
  auto hidden = encoder.forward(batch.input);
  auto sr = next_item_loss(config_.encoder, encoder, hidden, batch);
  LossParts out{sr, {{"sr", sr}}};
  auto add = [&](const char* name, double weight, const torch::Tensor& part) {
    out.total = out.total + weight * part;
    out.parts.emplace_back(name, part);
  };
  const int64_t rows = batch.input.size(0);
  auto z = hidden.select(1, hidden.size(1) - 1);  // z_u: the representation of the whole input sequence

  torch::Tensor centers, assignment;  // [K, d] and h(u) [B]
  if (config_.clustering == Clustering::Sinkhorn) {
    centers = cluster_centers();
    auto scores = torch::matmul(cluster_space(z), centers.t());  // [B, K]
    // Q of Eq. 5-7 over the whole batch (every rank's rows in a data-parallel job), rows rescaled to sum to 1;
    // h(u) is the equipartitioned assignment.
    const Gathered all_scores = gather_rows(batch.gather, scores.detach());
    const int64_t total = all_scores.all.size(0);
    auto targets = losses::sinkhorn(all_scores.all, config_.sinkhorn_epsilon, config_.sinkhorn_iterations)
                       .narrow(0, all_scores.offset, rows) *
                   static_cast<double>(total);
    assignment = targets.argmax(1);
    if (config_.alpha > 0) add("clust", config_.alpha, losses::clustering_cross_entropy(scores, targets, config_.tau1));
  } else if (config_.clustering == Clustering::Kmeans && config_.uses_views()) {
    centers = cluster_centers();
    torch::NoGradGuard no_grad;
    assignment = torch::cdist(z.detach(), centers).argmin(1);
  }

  if (config_.uses_views()) {
    auto view_z = encoder.encode_last(make_views(batch));
    auto z1 = view_z.narrow(0, 0, rows), z2 = view_z.narrow(0, rows, rows);
    if (config_.beta1 > 0) {
      losses::InfoNceOptions options;
      options.temperature = config_.tau2;
      options.similarity = config_.similarity;
      options.gather = batch.gather;
      torch::Tensor extra, exclude;
      if (config_.prototype_negatives && centers.defined()) {
        extra = centers;
        exclude = F::one_hot(assignment, config_.clusters).to(torch::kBool);  // k' != h(u)
      }
      // Eq. 9-10, symmetric in the two views.
      auto scl = losses::info_nce(z1, z2, options, extra, exclude) + losses::info_nce(z2, z1, options, extra, exclude);
      add("scl", config_.beta1, scl);
    }
    if (config_.beta2 > 0) {
      // Eq. 11 on the raw prototype and representations (k-means centroids are raw either way), or on both as
      // the clustering sees them (ckd_space = "normalized").
      const bool raw = config_.ckd_space == CkdSpace::Raw;
      auto teacher = (raw ? module_->prototypes : centers).index_select(0, assignment);
      auto student = [&](const torch::Tensor& view) { return raw ? view : cluster_space(view); };
      auto ckd = losses::distill_kl(teacher, student(z1), config_.tau3) +
                 losses::distill_kl(teacher, student(z2), config_.tau3);  // Eq. 12
      add("ckd", config_.beta2, ckd);
    }
    if (config_.icl_weight > 0) {
      // ICLRec: each view against its user's intent, the other users' intents as negatives, users of the same
      // intent not counted as negatives (its "de-noise" option).
      losses::InfoNceOptions options;
      options.temperature = config_.tau2;
      options.similarity = config_.similarity;
      options.gather = batch.gather;
      auto intents = centers.index_select(0, assignment);
      auto same_intent = assignment.unsqueeze(1).eq(gather_rows(batch.gather, assignment).all.unsqueeze(0));
      auto icl = (losses::info_nce(z1, intents, options, {}, {}, same_intent) +
                  losses::info_nce(z2, intents, options, {}, {}, same_intent)) * 0.5;
      add("icl", config_.icl_weight, icl);
    }
  }

  if (config_.lambda > 0) {
    if (!head_labels_.defined()) fail("s4rec: the adversary needs fit() before training (head/tail labels)");
    auto logits = module_->classifier(losses::grad_reverse(z, config_.grl_scale));
    auto labels = head_labels_.index_select(0, batch.users);
    add("adv", config_.lambda, F::cross_entropy(logits, labels));  // Eq. 13
  }
  return out;
}

std::vector<int32_t> S4rec::cluster_assignments(const data::Sequences& histories, const int32_t* users,
                                                int32_t count) {
  if (config_.clustering == Clustering::None) return Model::cluster_assignments(histories, users, count);
  torch::NoGradGuard no_grad;
  auto z = user_vectors(histories, users, count).to(context_.device);
  auto centers = cluster_centers();
  auto nearest = config_.clustering == Clustering::Sinkhorn ? torch::matmul(cluster_space(z), centers.t()).argmax(1)
                                                  : torch::cdist(z, centers).argmin(1);
  nearest = nearest.to(torch::kCPU, torch::kInt32).contiguous();
  return std::vector<int32_t>(nearest.data_ptr<int32_t>(), nearest.data_ptr<int32_t>() + count);
}

EMBREC_REGISTER_MODEL("s4rec", S4rec);

}  // namespace embrec::models
