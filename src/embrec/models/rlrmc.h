// RLRMC, Riemannian low-rank matrix completion (Jawanpuria & Mishra, ICML 2018, in Microsoft Recommenders' variant,
// recommenders/models/rlrmc/): the mean-centred rating matrix as U B Vᵀ with U, V on Stiefel manifolds and B
// symmetric positive definite, fitted by Riemannian conjugate gradients on the observed entries' squared error.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "embrec/models/model.h"

namespace embrec::models {

namespace rlrmc {

// A point of St(rows, r) × St(columns, r) × SPD(r), the matrix U B Vᵀ, or a tangent vector at one (same shapes).
// All float64 on one device.
struct Factors {
  torch::Tensor u;  // [rows, r]; a point's columns are orthonormal
  torch::Tensor v;  // [columns, r]; a point's columns are orthonormal
  torch::Tensor b;  // [r, r] symmetric; a point's is positive definite
};

// a · x + c · y, part by part (tangent vectors at one point).
Factors combine(double a, const Factors& x, double c, const Factors& y);

// The observed entries of a rows × columns matrix and MS's cost on them (RLRMCalgorithm._cost):
//   f(U, V, B) = ½ Σ_(i,j)∈Ω ((U B Vᵀ)_ij − y_ij)² + ½ C ‖B‖²_F.
// MS's C penalises only the core B (U and V have unit columns, so ‖U B Vᵀ‖_F = ‖B‖_F: it is the Frobenius norm of
// the completed matrix). Entries are visited in chunks, so no rows × columns matrix is ever formed.
class Problem {
 public:
  // rows, columns: int64 [observed]; values: float64 [observed], all on the device the factors will live on.
  Problem(torch::Tensor rows, torch::Tensor columns, torch::Tensor values, int64_t row_count, int64_t column_count,
          double regularization);
  int64_t row_count() const { return row_count_; }
  int64_t column_count() const { return column_count_; }
  int64_t observed() const { return values_.numel(); }
  double regularization() const { return regularization_; }
  const torch::Tensor& values() const { return values_; }

  // (U B Vᵀ)_ij − y_ij over Ω, [observed].
  torch::Tensor residual(const Factors& x) const;
  double cost(const Factors& x) const;
  // The Euclidean gradient (MS's _egrad, S = the residual as a sparse matrix on Ω): ∂f/∂U = S V B,
  // ∂f/∂V = Sᵀ U B, ∂f/∂B = sym(Uᵀ S V) + C B.
  Factors euclidean_gradient(const Factors& x) const;
  // The Riemannian gradient: the Euclidean one through to_riemannian_gradient().
  Factors gradient(const Factors& x) const;

  // S M and Sᵀ M for the sparse matrix S with `entry_values` on Ω ([observed]); M dense float64.
  torch::Tensor sparse_times(const torch::Tensor& entry_values, const torch::Tensor& dense) const;
  torch::Tensor sparse_transpose_times(const torch::Tensor& entry_values, const torch::Tensor& dense) const;

 private:
  torch::Tensor rows_, columns_, values_;
  int64_t row_count_, column_count_;
  double regularization_;
};

// The geometry of St × St × SPD (Absil, Mahony & Sepulchre 2008; Bhatia 2007 ch. 6; pymanopt's Stiefel and
// SymmetricPositiveDefinite, which MS's code uses):
//   metric     ⟨ξ, η⟩ = tr(ξ_Uᵀ η_U) + tr(ξ_Vᵀ η_V) + tr(B⁻¹ ξ_B B⁻¹ η_B)  (Euclidean on St, affine-invariant on SPD);
//   tangents   Uᵀ ξ_U skew, Vᵀ ξ_V skew, ξ_B symmetric;
//   gradient   G_U − U sym(Uᵀ G_U), G_V − V sym(Vᵀ G_V), B sym(G_B) B;
//   retraction Q of the QR of U + ξ_U with R's diagonal made positive (likewise V); the SPD exponential
//              B^½ exp(B^-½ ξ_B B^-½) B^½ (= B exp(B⁻¹ ξ_B), pymanopt's retr, computed symmetrically by eigh);
//   transport  projection onto the new tangent space on St, identity on SPD.
double inner(const Factors& x, const Factors& a, const Factors& c);
Factors project(const Factors& x, const Factors& ambient);
Factors to_riemannian_gradient(const Factors& x, const Factors& euclidean_gradient);
Factors retract(const Factors& x, const Factors& direction, double step);
Factors transport(const Factors& to, const Factors& vector);

// pymanopt's rand(): U, V the Q of the QR of Gaussian matrices, B = Q diag(1 + uniform[0, 1)) Qᵀ.
Factors random_point(int64_t row_count, int64_t column_count, int64_t rank, uint64_t seed,
                     const torch::Device& device);
// MS's initialize_flag = "svd" (scipy's svds(train, k = rank)): the top `rank` singular triplets of the sparse
// matrix of the problem's values, U = left vectors, V = right vectors, B = diag(σ). Found by subspace iteration on
// the sparse matrix with `rank` + 10 columns and Rayleigh-Ritz, until the top singular values change by < 1e-12
// relative (or 1000 rounds); σ below 1e-10 σ_max is raised to it so that B is positive definite.
Factors svd_point(const Problem& problem, int64_t rank, uint64_t seed);

// MS's ConjugateGradientMS (a copy of pymanopt's conjugate gradients) with pymanopt's LineSearchBackTracking and
// the stopping rules of pymanopt's Solver.
struct SolverOptions {
  int64_t max_iterations = 100;       // steps taken at most
  double max_seconds = 1000.0;        // MS max_time
  double min_gradient_norm = 1e-6;    // pymanopt mingradnorm
  double min_step_size = 1e-10;       // pymanopt minstepsize: the norm of the last accepted step
  int64_t log_every = 0;              // an info line every this many iterations (0 = none)
  // Called with every iterate, the start (iteration 0) included.
  std::function<void(int64_t iteration, const Factors& x)> on_iterate;
};

struct SolverTrace {
  std::vector<double> costs;           // f at iterate 0, 1, ..., iterations
  std::vector<double> gradient_norms;  // ‖grad f‖ at the same iterates
  int64_t iterations = 0;
  int64_t cost_evaluations = 0;
  std::string stop_reason;
  double seconds = 0.0;
};

// Minimises problem.cost from `start` (Hestenes-Stiefel β clipped at 0, restart on a non-descent direction;
// backtracking: first step of norm 1, later ones 2 · 2 · (f_k − f_(k−1)) / ⟨grad, d⟩, halved until Armijo's
// sufficient decrease with c = 1e-4, at most 25 halvings, a step that does not lower the cost is refused and ends
// the run). Every accepted iterate has a cost <= the previous one.
Factors conjugate_gradient(const Problem& problem, Factors start, const SolverOptions& options, SolverTrace* trace);

}  // namespace rlrmc

enum class RlrmcInitialization { Svd, Random };
inline const Names<RlrmcInitialization> kRlrmcInitializationNames = {{"svd", RlrmcInitialization::Svd},
                                                                     {"random", RlrmcInitialization::Random}};

struct RlrmcConfig {
  int64_t rank = 10;                  // r, the rank of U B Vᵀ
  double regularization = 0.001;      // MS's C: ½ C ‖B‖²_F in the cost
  RlrmcInitialization initialization = RlrmcInitialization::Svd;  // svd (MS's notebooks) | random (MS's default)
  int64_t max_iterations = 100;       // conjugate-gradient steps
  double max_seconds = 1000.0;        // wall-clock limit of the solver (MS max_time)
  double min_gradient_norm = 1e-6;
  double min_step_size = 1e-10;
  bool mean_center = true;            // MS's RLRMCdataset mean_center: fit ratings minus their training mean
  int64_t log_every = 10;             // a progress line every this many iterations (0 = only the summary)
  static RlrmcConfig from(ConfigTable& table);
};

// The model: fit() runs the whole optimisation on the training ratings (users are rows, items columns, as in MS's
// RLRMCdataset), the factors are buffers so the run checkpoints like every model. r̂_ui = μ + (U B)_u · V_i.
class Rlrmc final : public Model {
 public:
  using Config = RlrmcConfig;
  Rlrmc(const RlrmcConfig& config, const ModelContext& context);
  std::string name() const override { return "rlrmc"; }
  // An error when the training data has no ratings.
  void fit(const data::Split& split) override;
  // The factors and the mean are all checkpointed buffers: loading a run needs no new optimisation.
  void restore(const data::Split&) override {}
  torch::nn::Module& module() override { return module_; }

  // Ranking by inner product: user vector (U B)_u, item vector V_i, whose product is r̂_ui − μ; a user's items are
  // ordered exactly as their predicted ratings.
  int64_t dim() const override { return config_.rank; }
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;
  torch::Tensor item_vectors() override;

  bool predicts_ratings() const override { return true; }
  void predict_ratings(const int32_t* users, const int32_t* items, int64_t count, float* out) override;

  // The fitted factors (a point of the manifold) and the solver's record of the last fit().
  rlrmc::Factors factors() const { return {user_basis_, item_basis_, core_}; }
  double global_mean() const { return global_mean_.item<double>(); }
  const rlrmc::SolverTrace& trace() const { return trace_; }

 private:
  RlrmcConfig config_;
  ModelContext context_;
  torch::nn::Module module_;
  torch::Tensor user_basis_;   // U [user_count, rank] float64
  torch::Tensor item_basis_;   // V [item_count, rank] float64
  torch::Tensor core_;         // B [rank, rank] float64
  torch::Tensor global_mean_;  // μ [] float64 (0 with mean_center = false)
  rlrmc::SolverTrace trace_;
};

}  // namespace embrec::models
