// RLRMC: the cost on the observed entries, the geometry of St × St × SPD, the SVD and random starts, the Riemannian
// conjugate-gradient solver, and the model that fits it once and serves ratings and ranking vectors.
#include "embrec/models/rlrmc.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <utility>

#include "embrec/util/error.h"

namespace embrec::models {

namespace rlrmc {

namespace {

// Observed entries per chunk: bounds the [chunk, r] gathers (8 MiB per factor at r = 4, 80 MiB at r = 40).
constexpr int64_t kEntryChunk = int64_t{1} << 18;

torch::Tensor sym(const torch::Tensor& a) { return 0.5 * (a + a.t()); }

// The Stiefel tangent projection Z − X sym(Xᵀ Z).
torch::Tensor stiefel_project(const torch::Tensor& x, const torch::Tensor& z) { return z - x.mm(sym(x.t().mm(z))); }

// The Q factor of a thin QR with R's diagonal made non-negative (pymanopt's sign(sign(diag R) + 0.5)): the
// retraction does not depend on the LAPACK sign convention.
torch::Tensor stiefel_qr(const torch::Tensor& a) {
  auto [q, r] = torch::linalg::qr(a, "reduced");
  const torch::Tensor signs = 1.0 - 2.0 * (r.diagonal() < 0).to(q.scalar_type());
  return q * signs.unsqueeze(0);
}

// B^½ exp(B^-½ ξ B^-½) B^½ through two symmetric eigendecompositions, so the result is symmetric positive definite
// by construction (B exp(B⁻¹ ξ) with a general expm is the same matrix up to rounding, but only nearly symmetric).
torch::Tensor spd_exp(const torch::Tensor& b, const torch::Tensor& xi) {
  auto [lambda, q] = torch::linalg::eigh(b, "L");
  const torch::Tensor root_lambda = lambda.sqrt();
  const torch::Tensor root = (q * root_lambda).mm(q.t());
  const torch::Tensor inverse_root = (q / root_lambda).mm(q.t());
  auto [mu, p] = torch::linalg::eigh(sym(inverse_root.mm(xi).mm(inverse_root)), "L");
  return sym(root.mm((p * mu.exp()).mm(p.t())).mm(root));
}

torch::Tensor gaussian(int64_t rows, int64_t columns, std::mt19937_64& random) {
  torch::Tensor out = torch::empty({rows, columns}, torch::kFloat64);
  std::normal_distribution<double> normal(0.0, 1.0);
  double* data = out.data_ptr<double>();
  for (int64_t k = 0; k < rows * columns; ++k) data[k] = normal(random);
  return out;
}

}  // namespace

Factors combine(double a, const Factors& x, double c, const Factors& y) {
  return {a * x.u + c * y.u, a * x.v + c * y.v, a * x.b + c * y.b};
}

Problem::Problem(torch::Tensor rows, torch::Tensor columns, torch::Tensor values, int64_t row_count,
                 int64_t column_count, double regularization)
    : rows_(std::move(rows)),
      columns_(std::move(columns)),
      values_(std::move(values)),
      row_count_(row_count),
      column_count_(column_count),
      regularization_(regularization) {
  if (rows_.dim() != 1 || columns_.dim() != 1 || values_.dim() != 1 || rows_.numel() != values_.numel() ||
      columns_.numel() != values_.numel())
    fail("rlrmc: rows, columns and values must be vectors of one length");
  rows_ = rows_.to(torch::kLong);
  columns_ = columns_.to(torch::kLong);
  values_ = values_.to(torch::kFloat64);
}

torch::Tensor Problem::residual(const Factors& x) const {
  const torch::Tensor left = x.u.mm(x.b);
  const int64_t observed = values_.numel();
  torch::Tensor out = torch::empty({observed}, values_.options());
  for (int64_t start = 0; start < observed; start += kEntryChunk) {
    const int64_t length = std::min(kEntryChunk, observed - start);
    const torch::Tensor predicted = (left.index_select(0, rows_.narrow(0, start, length)) *
                                     x.v.index_select(0, columns_.narrow(0, start, length)))
                                        .sum(1);
    out.narrow(0, start, length).copy_(predicted - values_.narrow(0, start, length));
  }
  return out;
}

double Problem::cost(const Factors& x) const {
  const torch::Tensor r = residual(x);
  return (0.5 * r.dot(r) + 0.5 * regularization_ * x.b.pow(2).sum()).item<double>();
}

torch::Tensor Problem::sparse_times(const torch::Tensor& entry_values, const torch::Tensor& dense) const {
  torch::Tensor out = torch::zeros({row_count_, dense.size(1)}, dense.options());
  const int64_t observed = values_.numel();
  for (int64_t start = 0; start < observed; start += kEntryChunk) {
    const int64_t length = std::min(kEntryChunk, observed - start);
    out.index_add_(0, rows_.narrow(0, start, length),
                   dense.index_select(0, columns_.narrow(0, start, length)) *
                       entry_values.narrow(0, start, length).unsqueeze(1));
  }
  return out;
}

torch::Tensor Problem::sparse_transpose_times(const torch::Tensor& entry_values, const torch::Tensor& dense) const {
  torch::Tensor out = torch::zeros({column_count_, dense.size(1)}, dense.options());
  const int64_t observed = values_.numel();
  for (int64_t start = 0; start < observed; start += kEntryChunk) {
    const int64_t length = std::min(kEntryChunk, observed - start);
    out.index_add_(0, columns_.narrow(0, start, length),
                   dense.index_select(0, rows_.narrow(0, start, length)) *
                       entry_values.narrow(0, start, length).unsqueeze(1));
  }
  return out;
}

Factors Problem::euclidean_gradient(const Factors& x) const {
  const torch::Tensor r = residual(x);
  const torch::Tensor s_v = sparse_times(r, x.v);
  Factors g;
  g.u = s_v.mm(x.b);
  g.v = sparse_transpose_times(r, x.u.mm(x.b));
  g.b = sym(x.u.t().mm(s_v)) + regularization_ * x.b;
  return g;
}

Factors Problem::gradient(const Factors& x) const { return to_riemannian_gradient(x, euclidean_gradient(x)); }

double inner(const Factors& x, const Factors& a, const Factors& c) {
  const torch::Tensor b_inverse = torch::linalg::inv(x.b);
  const torch::Tensor spd = (b_inverse.mm(a.b) * b_inverse.mm(c.b).t()).sum();
  return ((a.u * c.u).sum() + (a.v * c.v).sum() + spd).item<double>();
}

Factors project(const Factors& x, const Factors& ambient) {
  return {stiefel_project(x.u, ambient.u), stiefel_project(x.v, ambient.v), sym(ambient.b)};
}

Factors to_riemannian_gradient(const Factors& x, const Factors& euclidean_gradient) {
  return {stiefel_project(x.u, euclidean_gradient.u), stiefel_project(x.v, euclidean_gradient.v),
          x.b.mm(sym(euclidean_gradient.b)).mm(x.b)};
}

Factors retract(const Factors& x, const Factors& direction, double step) {
  return {stiefel_qr(x.u + step * direction.u), stiefel_qr(x.v + step * direction.v),
          spd_exp(x.b, step * direction.b)};
}

Factors transport(const Factors& to, const Factors& vector) {
  return {stiefel_project(to.u, vector.u), stiefel_project(to.v, vector.v), vector.b};
}

Factors random_point(int64_t row_count, int64_t column_count, int64_t rank, uint64_t seed,
                     const torch::Device& device) {
  std::mt19937_64 random(seed);
  Factors x;
  x.u = std::get<0>(torch::linalg::qr(gaussian(row_count, rank, random), "reduced"));
  x.v = std::get<0>(torch::linalg::qr(gaussian(column_count, rank, random), "reduced"));
  const torch::Tensor rotation = std::get<0>(torch::linalg::qr(gaussian(rank, rank, random), "reduced"));
  torch::Tensor eigenvalues = torch::empty({rank}, torch::kFloat64);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  double* eigenvalue_data = eigenvalues.data_ptr<double>();
  for (int64_t k = 0; k < rank; ++k) eigenvalue_data[k] = 1.0 + uniform(random);
  x.b = sym((rotation * eigenvalues).mm(rotation.t()));
  return {x.u.to(device), x.v.to(device), x.b.to(device)};
}

Factors svd_point(const Problem& problem, int64_t rank, uint64_t seed) {
  const int64_t rows = problem.row_count(), columns = problem.column_count();
  if (rank <= 0 || rank > std::min(rows, columns))
    fail("rlrmc: rank {} must lie in [1, {}] for a {} x {} matrix", rank, std::min(rows, columns), rows, columns);
  const torch::Tensor& values = problem.values();
  const int64_t width = std::min(rank + 10, std::min(rows, columns));
  std::mt19937_64 random(seed);
  torch::Tensor q = std::get<0>(torch::linalg::qr(
      problem.sparse_times(values, gaussian(columns, width, random).to(values.device())), "reduced"));
  torch::Tensor left, right, singular, previous;
  for (int pass = 0; pass < 1000; ++pass) {
    // Rayleigh-Ritz on span(Q): Qᵀ A = Zᵀ with Z = Aᵀ Q = W Σ P, so A ≈ Q Pᵀ Σ Wᵀ.
    const torch::Tensor z = problem.sparse_transpose_times(values, q);
    auto [w, sigma, p] = torch::linalg::svd(z, /*full_matrices=*/false, c10::nullopt);
    left = q.mm(p.t().narrow(1, 0, rank));
    right = w.narrow(1, 0, rank);
    singular = sigma.narrow(0, 0, rank);
    if (previous.defined() &&
        (singular - previous).abs().max().item<double>() <= 1e-12 * std::max(sigma[0].item<double>(), 1e-300))
      break;
    previous = singular;
    q = std::get<0>(torch::linalg::qr(problem.sparse_times(values, w), "reduced"));
  }
  const double largest = singular.max().item<double>();
  const double floor = largest > 0 ? 1e-10 * largest : 1.0;
  return {left.contiguous(), right.contiguous(), torch::diag(singular.clamp_min(floor))};
}

namespace {

// pymanopt's LineSearchBackTracking defaults, as MS constructs it.
constexpr double kContraction = 0.5, kOptimism = 2.0, kSufficientDecrease = 1e-4;
constexpr int kMaxHalvings = 25;

// pymanopt Solver._check_stopping_criterion's order; empty while none holds. (MS passes iter + 1 there, so its
// maxiter = 100 takes 99 steps; here max_iterations counts steps.)
std::string stop_reason(const SolverOptions& options, double seconds, int64_t iteration, double gradient_norm,
                        double step_size) {
  if (seconds >= options.max_seconds) return fmt::format("max time {} s reached", options.max_seconds);
  if (iteration >= options.max_iterations) return fmt::format("max iterations {} reached", options.max_iterations);
  if (gradient_norm < options.min_gradient_norm)
    return fmt::format("gradient norm {:.3e} < {}", gradient_norm, options.min_gradient_norm);
  if (step_size < options.min_step_size) return fmt::format("step size {:.3e} < {}", step_size, options.min_step_size);
  return "";
}

// The cost of a line-search candidate. A retraction is SPD in exact arithmetic, but with a large C the optimum
// pushes B towards 0 and its eigenvalues can underflow: such a candidate counts as a NaN cost, so the line search
// backtracks from it.
double candidate_cost(const Problem& problem, const Factors& at) {
  const torch::Tensor eigenvalues = torch::linalg::eigvalsh(at.b, "L");
  const double smallest = eigenvalues.min().item<double>(), largest = eigenvalues.max().item<double>();
  if (!(smallest > 1e-12 * largest) || !std::isfinite(largest)) return std::numeric_limits<double>::quiet_NaN();
  return problem.cost(at);
}

struct Step {
  Factors point;
  double cost = 0.0;
  double alpha = 0.0;
};

// Backtracking (pymanopt's LineSearchBackTracking, manopt's linesearch.m) along `direction` from `alpha`, halving
// until the Armijo condition holds or kMaxHalvings is reached.
Step backtrack(const Problem& problem, const Factors& x, const Factors& direction, double alpha, double cost,
               double slope, int64_t& cost_evaluations) {
  Step step{retract(x, direction, alpha), 0.0, alpha};
  step.cost = candidate_cost(problem, step.point);
  ++cost_evaluations;
  // Written as !(a <= b) so that a NaN cost (an overflowing exponential) also backtracks.
  for (int halvings = 0;
       !(step.cost <= cost + kSufficientDecrease * step.alpha * slope) && halvings < kMaxHalvings; ++halvings) {
    step.alpha *= kContraction;
    step.point = retract(x, direction, step.alpha);
    step.cost = candidate_cost(problem, step.point);
    ++cost_evaluations;
  }
  return step;
}

// The next search direction at `point`: Hestenes-Stiefel β = ⟨g₊, g₊ − T g⟩ / ⟨g₊ − T g, T d⟩, clipped at 0 (MS's
// default beta_type, no Powell restart: orth_value = inf). A zero or non-finite denominator restarts with β = 0.
Factors conjugate_direction(const Factors& point, const Factors& new_gradient, const Factors& gradient,
                            const Factors& direction) {
  const Factors moved_direction = transport(point, direction);
  const Factors difference = combine(1.0, new_gradient, -1.0, transport(point, gradient));
  const double denominator = inner(point, difference, moved_direction);
  double beta = 0.0;
  if (denominator != 0.0 && std::isfinite(denominator))
    beta = std::max(0.0, inner(point, new_gradient, difference) / denominator);
  if (!std::isfinite(beta)) beta = 0.0;
  return combine(-1.0, new_gradient, beta, moved_direction);
}

}  // namespace

Factors conjugate_gradient(const Problem& problem, Factors start, const SolverOptions& options, SolverTrace* trace) {
  SolverTrace local;
  SolverTrace& out = trace != nullptr ? *trace : local;
  out = SolverTrace{};
  const auto begin = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count(); };

  Factors x = std::move(start);
  double cost = problem.cost(x);
  out.cost_evaluations = 1;
  Factors gradient = problem.gradient(x);
  double gradient_norm = std::sqrt(inner(x, gradient, gradient));
  Factors direction = combine(-1.0, gradient, 0.0, gradient);
  double step_size = std::numeric_limits<double>::infinity();
  double previous_cost = std::numeric_limits<double>::quiet_NaN();
  const double observed = static_cast<double>(std::max<int64_t>(1, problem.observed()));
  auto train_rmse = [&](double f, const Factors& at) {
    const double penalty = 0.5 * problem.regularization() * at.b.pow(2).sum().item<double>();
    return std::sqrt(std::max(0.0, 2.0 * (f - penalty) / observed));
  };

  for (int64_t iteration = 0;; ++iteration) {
    out.costs.push_back(cost);
    out.gradient_norms.push_back(gradient_norm);
    out.iterations = iteration;
    if (options.on_iterate) options.on_iterate(iteration, x);
    if (options.log_every > 0 && iteration % options.log_every == 0)
      spdlog::info("rlrmc: iteration {:>4}  cost {:.6e}  |grad| {:.3e}  train RMSE {:.4f}  ({:.2f} s)", iteration,
                   cost, gradient_norm, train_rmse(cost, x), elapsed());
    out.stop_reason = stop_reason(options, elapsed(), iteration, gradient_norm, step_size);
    if (!out.stop_reason.empty()) break;

    double slope = inner(x, gradient, direction);
    if (!(slope < 0)) {
      // Not a descent direction: restart from the negative gradient, forgetting the conjugate memory.
      direction = combine(-1.0, gradient, 0.0, gradient);
      slope = -gradient_norm * gradient_norm;
    }
    const double direction_norm = std::sqrt(inner(x, direction, direction));
    if (!(direction_norm > 0)) {
      // Only with min_gradient_norm = 0 and a gradient that is exactly zero: nothing to step along.
      out.stop_reason = "zero gradient";
      break;
    }
    const double alpha = std::isnan(previous_cost) ? 1.0 / direction_norm
                                                   : 2.0 * (cost - previous_cost) / slope * kOptimism;
    Step step = backtrack(problem, x, direction, alpha, cost, slope, out.cost_evaluations);
    previous_cost = cost;
    if (!(step.cost <= cost)) {
      // No decrease found: the step is refused, the iterate kept, and the step-size rule ends the run.
      step_size = 0.0;
      continue;
    }
    step_size = step.alpha * direction_norm;

    Factors new_gradient = problem.gradient(step.point);
    const double new_gradient_norm = std::sqrt(inner(step.point, new_gradient, new_gradient));
    direction = conjugate_direction(step.point, new_gradient, gradient, direction);
    x = std::move(step.point);
    cost = step.cost;
    gradient = std::move(new_gradient);
    gradient_norm = new_gradient_norm;
  }
  out.seconds = elapsed();
  if (options.log_every > 0)
    spdlog::info("rlrmc: stopped after {} iterations ({}): cost {:.6e}, |grad| {:.3e}, train RMSE {:.4f}, "
                 "{} cost evaluations, {:.2f} s",
                 out.iterations, out.stop_reason, cost, gradient_norm, train_rmse(cost, x), out.cost_evaluations,
                 out.seconds);
  return x;
}

}  // namespace rlrmc

RlrmcConfig RlrmcConfig::from(ConfigTable& table) {
  RlrmcConfig c;
  c.rank = table.get_positive("rank", c.rank);
  c.regularization = table.get_at_least("regularization", c.regularization, 0.0);
  c.initialization = table.get_one_of("initialization", c.initialization, kRlrmcInitializationNames);
  c.max_iterations = table.get_positive("max_iterations", c.max_iterations);
  c.max_seconds = table.get_positive("max_seconds", c.max_seconds);
  c.min_gradient_norm = table.get_at_least("min_gradient_norm", c.min_gradient_norm, 0.0);
  c.min_step_size = table.get_at_least("min_step_size", c.min_step_size, 0.0);
  c.mean_center = table.get("mean_center", c.mean_center);
  c.log_every = table.get_at_least("log_every", c.log_every, int64_t{0});
  return c;
}

Rlrmc::Rlrmc(const RlrmcConfig& config, const ModelContext& context) : config_(config), context_(context) {
  if (context.user_count <= 0 || context.item_count <= 0)
    fail("model 'rlrmc': needs users and items, got {} users and {} items", context.user_count, context.item_count);
  if (config.rank > std::min(context.user_count, context.item_count))
    fail("model 'rlrmc': key 'rank' = {} exceeds min(users, items) = min({}, {})", config.rank, context.user_count,
         context.item_count);
  const auto options = torch::TensorOptions().dtype(torch::kFloat64).device(context.device);
  user_basis_ = module_.register_buffer("user_basis", torch::zeros({context.user_count, config.rank}, options));
  item_basis_ = module_.register_buffer("item_basis", torch::zeros({context.item_count, config.rank}, options));
  core_ = module_.register_buffer("core", torch::zeros({config.rank, config.rank}, options));
  global_mean_ = module_.register_buffer("global_mean", torch::zeros({}, options));
}

void Rlrmc::fit(const data::Split& split) {
  const data::Sequences& train = split.train;
  if (!train.has_ratings() || train.ratings.empty())
    fail("model 'rlrmc': completes a rating matrix, but the training data has no ratings");
  if (train.user_count() > context_.user_count)
    fail("model 'rlrmc': the training data has {} users, the model {}", train.user_count(), context_.user_count);
  const auto start_time = std::chrono::steady_clock::now();
  const int64_t observed = static_cast<int64_t>(train.items.size());
  torch::Tensor rows = torch::empty({observed}, torch::kLong);
  torch::Tensor columns = torch::empty({observed}, torch::kLong);
  torch::Tensor values = torch::empty({observed}, torch::kFloat64);
  int64_t* row_data = rows.data_ptr<int64_t>();
  int64_t* column_data = columns.data_ptr<int64_t>();
  double* value_data = values.data_ptr<double>();
  double sum = 0.0;
  for (int32_t u = 0; u < train.user_count(); ++u) {
    for (int64_t p = train.offsets[u]; p < train.offsets[u + 1]; ++p) {
      const int32_t item = train.items[p];
      if (item < 0 || item >= context_.item_count)
        fail("model 'rlrmc': item {} outside the {} items", item, context_.item_count);
      row_data[p] = u;
      column_data[p] = item;
      value_data[p] = train.ratings[p];
      sum += train.ratings[p];
    }
  }
  // MS's RLRMCdataset: the factors fit the ratings minus their training mean, which predictions add back.
  const double mean = config_.mean_center ? sum / static_cast<double>(observed) : 0.0;
  values -= mean;
  const rlrmc::Problem problem(rows.to(context_.device), columns.to(context_.device), values.to(context_.device),
                               context_.user_count, context_.item_count, config_.regularization);
  const rlrmc::Factors start =
      config_.initialization == RlrmcInitialization::Svd
          ? rlrmc::svd_point(problem, config_.rank, context_.seed)
          : rlrmc::random_point(context_.user_count, context_.item_count, config_.rank, context_.seed,
                                context_.device);
  const double start_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  rlrmc::SolverOptions options;
  options.max_iterations = config_.max_iterations;
  options.max_seconds = config_.max_seconds;
  options.min_gradient_norm = config_.min_gradient_norm;
  options.min_step_size = config_.min_step_size;
  options.log_every = config_.log_every;
  const rlrmc::Factors x = rlrmc::conjugate_gradient(problem, start, options, &trace_);
  {
    // set_() swaps the storage of the module's own buffers (see CsrBuffers::assign in sar.cpp).
    torch::NoGradGuard no_grad;
    user_basis_.set_(x.u.contiguous());
    item_basis_.set_(x.v.contiguous());
    core_.set_(x.b.contiguous());
    global_mean_.fill_(mean);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  spdlog::info("rlrmc: rank {}, C {}, {} start ({:.2f} s) on {} ratings of {} users x {} items (mean {:.4f}): "
               "{} iterations, {}; cost {:.6e} -> {:.6e}; fitted in {:.2f} s",
               config_.rank, config_.regularization, name_of(kRlrmcInitializationNames, config_.initialization),
               start_seconds, observed, context_.user_count, context_.item_count, mean, trace_.iterations,
               trace_.stop_reason, trace_.costs.front(), trace_.costs.back(), seconds);
}

namespace {
torch::Tensor ids_on(const int32_t* values, int64_t count, int32_t limit, const char* what,
                     const torch::Device& device) {
  for (int64_t k = 0; k < count; ++k)
    if (values[k] < 0 || values[k] >= limit) fail("model 'rlrmc': {} id {} out of range [0, {})", what, values[k], limit);
  return torch::from_blob(const_cast<int32_t*>(values), {count}, torch::kInt32).to(torch::kLong).to(device);
}
}  // namespace

torch::Tensor Rlrmc::user_vectors(const data::Sequences&, const int32_t* users, int32_t count) {
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = ids_on(users, count, context_.user_count, "user", user_basis_.device());
  return user_basis_.index_select(0, ids).mm(core_).to(torch::kCPU, torch::kFloat32).contiguous();
}

torch::Tensor Rlrmc::item_vectors() {
  torch::NoGradGuard no_grad;
  return item_basis_.to(torch::kCPU, torch::kFloat32).contiguous();
}

void Rlrmc::predict_ratings(const int32_t* users, const int32_t* items, int64_t count, float* out) {
  torch::NoGradGuard no_grad;
  const torch::Tensor u = ids_on(users, count, context_.user_count, "user", user_basis_.device());
  const torch::Tensor i = ids_on(items, count, context_.item_count, "item", user_basis_.device());
  const torch::Tensor predicted =
      global_mean_ + (user_basis_.index_select(0, u).mm(core_) * item_basis_.index_select(0, i)).sum(1);
  const torch::Tensor result = predicted.to(torch::kCPU, torch::kFloat32).contiguous();
  std::copy_n(result.data_ptr<float>(), count, out);
}

EMBREC_REGISTER_MODEL("rlrmc", Rlrmc);

}  // namespace embrec::models
