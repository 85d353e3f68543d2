// RLRMC: the hand-worked cost and Euclidean gradient, the Riemannian gradient against finite differences along
// retractions, iterates on the manifold, a never-rising cost, the SVD start, recovery of a planted low-rank matrix,
// ranking vectors against predicted ratings, checkpoint round trip and config/data errors.
#include "embrec/models/rlrmc.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "embrec/eval/metrics.h"
#include "embrec/models/evaluate.h"
#include "embrec/util/error.h"
#include "model_fixtures.h"
#include "../util/error_of.h"

namespace embrec::models {
namespace {

std::unique_ptr<Rlrmc> make(const std::string& toml_text, int32_t users, int32_t items, uint64_t seed = 42) {
  return testing::make_model<Rlrmc>(toml_text, users, items, 1, seed);
}

std::string config_error(const std::string& toml_text, int32_t users = 20, int32_t items = 30) {
  return testing::creation_error<Rlrmc>(toml_text, users, items);
}

torch::Tensor doubles(std::vector<double> values, std::vector<int64_t> shape) {
  return torch::from_blob(values.data(), shape, torch::kFloat64).clone();
}

torch::Tensor longs(std::vector<int64_t> values) {
  return torch::from_blob(values.data(), {static_cast<int64_t>(values.size())}, torch::kLong).clone();
}

// Each entry of a rows x columns matrix observed with probability `density`, its value N(0, 1): no low-rank
// structure, so the solver has real work on every step.
rlrmc::Problem random_problem(int64_t rows, int64_t columns, double density, double regularization, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::bernoulli_distribution observed(density);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<int64_t> row_ids, column_ids;
  std::vector<double> values;
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < columns; ++j) {
      if (!observed(random)) continue;
      row_ids.push_back(i);
      column_ids.push_back(j);
      values.push_back(normal(random));
    }
  }
  const int64_t count = static_cast<int64_t>(values.size());
  return rlrmc::Problem(longs(row_ids), longs(column_ids), doubles(values, {count}), rows, columns, regularization);
}

double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// Largest deviation from the manifold: ‖UᵀU − I‖, ‖VᵀV − I‖, ‖B − Bᵀ‖ (max entries), and B's smallest eigenvalue.
struct ManifoldCheck {
  double orthonormality = 0.0;
  double asymmetry = 0.0;
  double smallest_eigenvalue = 0.0;
};
ManifoldCheck check(const rlrmc::Factors& x) {
  const int64_t r = x.b.size(0);
  const torch::Tensor eye = torch::eye(r, torch::kFloat64);
  ManifoldCheck out;
  out.orthonormality = std::max(max_abs(x.u.t().mm(x.u) - eye), max_abs(x.v.t().mm(x.v) - eye));
  out.asymmetry = max_abs(x.b - x.b.t());
  out.smallest_eigenvalue = torch::linalg::eigvalsh(x.b, "L").min().item<double>();
  return out;
}

TEST(RlrmcProblem, CostAndEuclideanGradientAreHandWorked) {
  // U = (0.6, 0.8)ᵀ, V = (1, 0)ᵀ, B = [2]: U B Vᵀ = [[1.2, 0], [1.6, 0]]. Observed y_00 = 1, y_10 = 2, y_11 = 0.5:
  // residuals 0.2, -0.4, -0.5; ½ Σ r² = ½ (0.04 + 0.16 + 0.25) = 0.225; ½ C ‖B‖² = ½ · 0.5 · 4 = 1; cost 1.225.
  // S = [[0.2, 0], [-0.4, -0.5]]: S V = (0.2, -0.4)ᵀ, ∂U = S V B = (0.4, -0.8)ᵀ; Sᵀ U B = Sᵀ (1.2, 1.6)ᵀ =
  // (0.24 - 0.64, -0.8)ᵀ = (-0.4, -0.8)ᵀ; ∂B = Uᵀ S V + C B = 0.12 - 0.32 + 1 = 0.8.
  const rlrmc::Problem problem(longs({0, 1, 1}), longs({0, 0, 1}), doubles({1.0, 2.0, 0.5}, {3}), 2, 2, 0.5);
  const rlrmc::Factors x{doubles({0.6, 0.8}, {2, 1}), doubles({1.0, 0.0}, {2, 1}), doubles({2.0}, {1, 1})};
  EXPECT_NEAR(problem.cost(x), 1.225, 1e-12);
  const rlrmc::Factors g = problem.euclidean_gradient(x);
  EXPECT_NEAR(g.u[0][0].item<double>(), 0.4, 1e-12);
  EXPECT_NEAR(g.u[1][0].item<double>(), -0.8, 1e-12);
  EXPECT_NEAR(g.v[0][0].item<double>(), -0.4, 1e-12);
  EXPECT_NEAR(g.v[1][0].item<double>(), -0.8, 1e-12);
  EXPECT_NEAR(g.b[0][0].item<double>(), 0.8, 1e-12);
  // Riemannian: ∂U − U (Uᵀ∂U) with Uᵀ∂U = 0.24 - 0.64 = -0.4: (0.4 + 0.24, -0.8 + 0.32) = (0.64, -0.48);
  // B ∂B B = 2 · 0.8 · 2 = 3.2.
  const rlrmc::Factors rg = problem.gradient(x);
  EXPECT_NEAR(rg.u[0][0].item<double>(), 0.64, 1e-12);
  EXPECT_NEAR(rg.u[1][0].item<double>(), -0.48, 1e-12);
  EXPECT_NEAR(rg.b[0][0].item<double>(), 3.2, 1e-12);
  // ‖grad‖² = 0.64² + 0.48² + (V part: -0.4 - 1 · (-0.4) = 0, -0.8) 0.64 + (affine-invariant: (3.2 / 2)²) 2.56.
  EXPECT_NEAR(rlrmc::inner(x, rg, rg), 0.4096 + 0.2304 + 0.64 + 2.56, 1e-12);
}

TEST(RlrmcGeometry, RiemannianGradientMatchesFiniteDifferencesAlongRetractions) {
  // d/dt f(R_x(t ξ)) at t = 0 is ⟨grad f(x), ξ⟩_x for every tangent ξ, under the affine-invariant metric on B
  // (B has eigenvalues in [1, 2] here, so a Euclidean metric on B would fail this).
  const rlrmc::Problem problem = random_problem(12, 9, 0.6, 0.3, /*seed=*/5);
  const rlrmc::Factors x = rlrmc::random_point(12, 9, 3, /*seed=*/11, torch::kCPU);
  const rlrmc::Factors gradient = problem.gradient(x);
  // The gradient is tangent: Uᵀ G_U and Vᵀ G_V skew, G_B symmetric.
  EXPECT_LT(max_abs(x.u.t().mm(gradient.u) + gradient.u.t().mm(x.u)), 1e-12);
  EXPECT_LT(max_abs(x.v.t().mm(gradient.v) + gradient.v.t().mm(x.v)), 1e-12);
  EXPECT_LT(max_abs(gradient.b - gradient.b.t()), 1e-12);
  torch::manual_seed(7);
  const double h = 1e-5;
  for (int trial = 0; trial < 5; ++trial) {
    const rlrmc::Factors ambient{torch::randn({12, 3}, torch::kFloat64), torch::randn({9, 3}, torch::kFloat64),
                                 torch::randn({3, 3}, torch::kFloat64)};
    const rlrmc::Factors xi = rlrmc::project(x, ambient);
    const double analytic = rlrmc::inner(x, gradient, xi);
    const double numeric =
        (problem.cost(rlrmc::retract(x, xi, h)) - problem.cost(rlrmc::retract(x, xi, -h))) / (2 * h);
    EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(analytic))) << "trial " << trial;
  }
  // The B part alone, along B's own direction, tells the metric apart from the Euclidean one.
  const rlrmc::Factors only_b{torch::zeros({12, 3}, torch::kFloat64), torch::zeros({9, 3}, torch::kFloat64),
                              gradient.b};
  const double numeric =
      (problem.cost(rlrmc::retract(x, only_b, h)) - problem.cost(rlrmc::retract(x, only_b, -h))) / (2 * h);
  EXPECT_NEAR(rlrmc::inner(x, gradient, only_b), numeric, 1e-6 * std::abs(numeric));
  EXPECT_GT(std::abs((gradient.b * gradient.b).sum().item<double>() - numeric), 1e-3 * std::abs(numeric));
}

TEST(RlrmcSolver, IteratesStayOnTheManifold) {
  const rlrmc::Problem problem = random_problem(40, 30, 0.4, 0.01, /*seed=*/3);
  rlrmc::SolverOptions options;
  options.max_iterations = 60;
  int64_t seen = 0;
  double worst_orthonormality = 0.0, worst_asymmetry = 0.0, smallest_eigenvalue = 1e300;
  options.on_iterate = [&](int64_t iteration, const rlrmc::Factors& x) {
    EXPECT_EQ(iteration, seen++);
    const ManifoldCheck c = check(x);
    worst_orthonormality = std::max(worst_orthonormality, c.orthonormality);
    worst_asymmetry = std::max(worst_asymmetry, c.asymmetry);
    smallest_eigenvalue = std::min(smallest_eigenvalue, c.smallest_eigenvalue);
  };
  rlrmc::SolverTrace trace;
  rlrmc::conjugate_gradient(problem, rlrmc::random_point(40, 30, 4, 1, torch::kCPU), options, &trace);
  EXPECT_EQ(trace.iterations, 60) << trace.stop_reason;
  EXPECT_EQ(seen, 61);
  EXPECT_LT(worst_orthonormality, 1e-8);
  EXPECT_LT(worst_asymmetry, 1e-12);
  EXPECT_GT(smallest_eigenvalue, 0.0);
}

TEST(RlrmcSolver, AHeavyPenaltyShrinksBButNeverLeavesTheSpdCone) {
  // With C far above the data's scale the optimum B is near 0: steps whose B would lose positive definiteness in
  // floating point are backtracked from, not inverted (this threw "linalg.inv: ... singular" before).
  const rlrmc::Problem problem = random_problem(40, 30, 0.4, 1e4, /*seed=*/5);
  rlrmc::SolverOptions options;
  options.max_iterations = 40;
  double smallest_eigenvalue = 1e300;
  options.on_iterate = [&](int64_t, const rlrmc::Factors& x) {
    smallest_eigenvalue = std::min(smallest_eigenvalue, check(x).smallest_eigenvalue);
  };
  rlrmc::SolverTrace trace;
  ASSERT_NO_THROW(rlrmc::conjugate_gradient(problem, rlrmc::random_point(40, 30, 4, 1, torch::kCPU), options, &trace));
  EXPECT_GT(smallest_eigenvalue, 0.0);
  for (size_t k = 1; k < trace.costs.size(); ++k) EXPECT_LE(trace.costs[k], trace.costs[k - 1]) << "iteration " << k;
  EXPECT_LT(trace.costs.back(), 0.5 * trace.costs.front());
}

TEST(RlrmcSolver, CostNeverRisesAndFallsFarFromARandomStart) {
  const rlrmc::Problem problem = random_problem(40, 30, 0.4, 0.01, /*seed=*/4);
  rlrmc::SolverOptions options;
  options.max_iterations = 80;
  rlrmc::SolverTrace trace;
  rlrmc::conjugate_gradient(problem, rlrmc::random_point(40, 30, 4, 2, torch::kCPU), options, &trace);
  ASSERT_EQ(trace.costs.size(), static_cast<size_t>(trace.iterations + 1));
  ASSERT_GE(trace.iterations, 30) << trace.stop_reason;
  for (size_t k = 1; k < trace.costs.size(); ++k) EXPECT_LE(trace.costs[k], trace.costs[k - 1]) << "iteration " << k;
  // Strictly lower on most steps, not only "not higher": the line search takes real steps.
  int64_t decreases = 0;
  for (size_t k = 1; k < trace.costs.size(); ++k) decreases += trace.costs[k] < trace.costs[k - 1];
  EXPECT_GE(decreases, trace.iterations - 1);
  // Half the random N(0, 1) entries' energy is fitted by rank 4 of 30 columns at 40 % density: the end is far
  // below the start and below ½ Σ y² (the cost of the zero matrix).
  const double zero_matrix_cost = 0.5 * problem.values().pow(2).sum().item<double>();
  EXPECT_LT(trace.costs.back(), 0.5 * zero_matrix_cost);
  EXPECT_LT(trace.costs.back(), 0.3 * trace.costs.front());
}

TEST(RlrmcSolver, SvdStartIsTheTopSingularTriplets) {
  // The sparse matrix's top-3 triplets against a dense SVD of the zero-filled matrix.
  const rlrmc::Problem problem = random_problem(15, 11, 0.6, 0.0, /*seed=*/9);
  const rlrmc::Factors x = rlrmc::svd_point(problem, 3, /*seed=*/1);
  const ManifoldCheck c = check(x);
  EXPECT_LT(c.orthonormality, 1e-12);
  EXPECT_GT(c.smallest_eigenvalue, 0.0);
  // The dense matrix from the problem's own sparse product: S I = S.
  const torch::Tensor dense = problem.sparse_times(problem.values(), torch::eye(11, torch::kFloat64));
  auto [u, s, vh] = torch::linalg::svd(dense, false, c10::nullopt);
  EXPECT_LT(max_abs(x.b.diagonal() - s.narrow(0, 0, 3)), 1e-10);
  const torch::Tensor best = u.narrow(1, 0, 3).mm(torch::diag(s.narrow(0, 0, 3))).mm(vh.narrow(0, 0, 3));
  EXPECT_LT(max_abs(x.u.mm(x.b).mm(x.v.t()) - best), 1e-8);
}

TEST(Rlrmc, RecoversAPlantedLowRankMatrixFromHalfItsEntries) {
  // R = 3.5 + P Qᵀ, P [80 x 3], Q [60 x 3] ~ N(0, 0.7²): entries of std ≈ sqrt(3) · 0.49 ≈ 0.85. Each entry is a
  // training rating with probability ½ (about 2,400), the rest (about 2,400) are held out. Rank 3 has
  // 3 · (80 + 60 − 3) = 411 degrees of freedom, so the held-out error measures completion, not memorisation.
  // P's first column is shifted so that P Qᵀ averages exactly 0 over the training entries: then the training mean
  // is 3.5 and the centred matrix is exactly rank 3 (otherwise it is P Qᵀ + (3.5 − μ) 1 1ᵀ, of rank 4 with a tiny
  // fourth singular value, and rank 3 stalls at a train RMSE of 0.025, the constant it cannot hold).
  const int32_t users = 80, items = 60;
  torch::manual_seed(3);
  torch::Tensor p = torch::randn({users, 3}, torch::kFloat64) * 0.7;
  const torch::Tensor q = torch::randn({items, 3}, torch::kFloat64) * 0.7;
  std::mt19937_64 random(17);
  std::bernoulli_distribution in_train(0.5);
  torch::Tensor mask = torch::zeros({users, items}, torch::kFloat64);
  for (int32_t u = 0; u < users; ++u)
    for (int32_t i = 0; i < items; ++i) mask[u][i] = in_train(random) ? 1.0 : 0.0;
  // Σ_Ω (P Qᵀ)_ui changes by t · Σ_Ω Q_i0 when t is added to P's first column.
  const double total = (mask * p.mm(q.t())).sum().item<double>();
  const double slope = (mask * q.select(1, 0).unsqueeze(0)).sum().item<double>();
  p.select(1, 0).add_(-total / slope);
  const torch::Tensor planted = 3.5 + p.mm(q.t());
  ASSERT_NEAR((mask * (planted - 3.5)).sum().item<double>(), 0.0, 1e-9);
  auto entry = planted.accessor<double, 2>();
  auto observed = mask.accessor<double, 2>();
  data::Split split;
  std::vector<int32_t> test_users, test_items;
  std::vector<float> test_truth;
  for (int32_t u = 0; u < users; ++u) {
    std::vector<int32_t> row_items;
    std::vector<float> row_ratings;
    for (int32_t i = 0; i < items; ++i) {
      if (observed[u][i] > 0) {
        row_items.push_back(i);
        row_ratings.push_back(static_cast<float>(entry[u][i]));
      } else {
        test_users.push_back(u);
        test_items.push_back(i);
        test_truth.push_back(static_cast<float>(entry[u][i]));
      }
    }
    split.train.push_user(row_items.data(), static_cast<int64_t>(row_items.size()), row_ratings.data());
  }
  const int64_t held_out = static_cast<int64_t>(test_truth.size());
  ASSERT_GT(held_out, 2000);
  auto model = make("name = 'rlrmc'\nrank = 3\nregularization = 0.0\nmax_iterations = 300\nlog_every = 0\n", users,
                    items);
  model->fit(split);
  std::vector<float> mean_prediction(held_out, static_cast<float>(model->global_mean()));
  const double baseline = eval::rmse(test_truth.data(), mean_prediction.data(), held_out);
  EXPECT_GT(baseline, 0.7);
  std::vector<float> predicted(held_out);
  model->predict_ratings(test_users.data(), test_items.data(), held_out, predicted.data());
  // The solver stops on the gradient norm (< 1e-6) after ~50 iterations; the float32 ratings limit the fit to
  // ~1e-7 relative. 1e-4 is four orders under the 0.77 of the mean-only baseline.
  EXPECT_LT(eval::rmse(test_truth.data(), predicted.data(), held_out), 1e-4)
      << "mean-only RMSE " << baseline << "; " << model->trace().iterations << " iterations, "
      << model->trace().stop_reason;
}

// Two users' ratings of four items (user 0: items 0, 1, 3; user 1: items 1, 2, 3), rank 2.
data::Split tiny_split() {
  data::Split split;
  const int32_t a[] = {0, 1, 3}, b[] = {1, 2, 3};
  const float ra[] = {5, 3, 1}, rb[] = {4, 2, 2};
  split.train.push_user(a, 3, ra);
  split.train.push_user(b, 3, rb);
  return split;
}

TEST(Rlrmc, RankingVectorsGiveThePredictedRatingMinusTheMean) {
  auto model = make("name = 'rlrmc'\nrank = 2\nmax_iterations = 20\nlog_every = 0\n", 2, 4);
  model->fit(tiny_split());
  EXPECT_NEAR(model->global_mean(), 17.0 / 6.0, 1e-12);
  EXPECT_EQ(model->dim(), 2);
  const int32_t users[] = {0, 0, 0, 0, 1, 1, 1, 1}, items[] = {0, 1, 2, 3, 0, 1, 2, 3};
  float predicted[8];
  model->predict_ratings(users, items, 8, predicted);
  data::Sequences none;
  const torch::Tensor u = model->user_vectors(none, users, 8);
  const torch::Tensor v = model->item_vectors();
  ASSERT_EQ(u.sizes(), (std::vector<int64_t>{8, 2}));
  ASSERT_EQ(v.sizes(), (std::vector<int64_t>{4, 2}));
  for (int k = 0; k < 8; ++k)
    EXPECT_NEAR((u[k] * v[items[k]]).sum().item<double>(), predicted[k] - 17.0 / 6.0, 1e-5) << k;
  // Rank 2 with six entries of a 2 x 4 matrix: the training ratings are fitted almost exactly (C = 0.001).
  EXPECT_NEAR(predicted[0], 5.0f, 0.01);
  EXPECT_NEAR(predicted[6], 2.0f, 0.01);
  // The evaluator reports rating metrics for it.
  data::EvalTask task;
  task.history = tiny_split().train;
  const int32_t t0[] = {2}, t1[] = {0};
  const float r0[] = {4}, r1[] = {3};
  task.targets.push_user(t0, 1, r0);
  task.targets.push_user(t1, 1, r1);
  eval::EvalConfig config;
  config.ks = {1};
  const eval::EvalResult result = evaluate_model(*model, task, 4, config);
  const float truth[] = {4, 3}, mine[] = {predicted[2], predicted[4]};
  EXPECT_DOUBLE_EQ(result.value("rmse"), eval::rmse(truth, mine, 2));
}

TEST(Rlrmc, WithoutMeanCentringTheMeanIsZero) {
  auto model = make("name = 'rlrmc'\nrank = 2\nmax_iterations = 5\nmean_center = false\nlog_every = 0\n", 2, 4);
  model->fit(tiny_split());
  EXPECT_EQ(model->global_mean(), 0.0);
}

TEST(Rlrmc, CheckpointRoundTripGivesIdenticalPredictions) {
  auto saved = make("name = 'rlrmc'\nrank = 2\nmax_iterations = 10\ninitialization = 'random'\nlog_every = 0\n", 2, 4);
  saved->fit(tiny_split());
  const std::string path =
      (std::filesystem::temp_directory_path() / ("embrec-rlrmc-" + std::to_string(::getpid()) + ".pt")).string();
  {
    torch::serialize::OutputArchive archive;
    saved->module().save(archive);
    archive.save_to(path);
  }
  auto loaded = make("name = 'rlrmc'\nrank = 2\nmax_iterations = 10\ninitialization = 'random'\nlog_every = 0\n", 2, 4);
  {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    loaded->module().load(archive);
  }
  std::filesystem::remove(path);
  const int32_t users[] = {0, 0, 1, 1}, items[] = {0, 2, 1, 3};
  float before[4], after[4];
  saved->predict_ratings(users, items, 4, before);
  loaded->predict_ratings(users, items, 4, after);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(before[k], after[k]) << k;
  EXPECT_EQ(loaded->global_mean(), 17.0 / 6.0);  // μ travelled with the checkpoint
  data::Sequences none;
  EXPECT_TRUE(torch::equal(saved->user_vectors(none, users, 4), loaded->user_vectors(none, users, 4)));
  EXPECT_TRUE(torch::equal(saved->item_vectors(), loaded->item_vectors()));
}

TEST(Rlrmc, DataWithoutRatingsIsAnError) {
  data::Split split;
  const int32_t a[] = {0, 2};
  split.train.push_user(a, 2);
  auto model = make("name = 'rlrmc'\nrank = 1\n", 1, 3);
  const std::string message = error_of([&] { model->fit(split); });
  EXPECT_NE(message.find("ratings"), std::string::npos) << message;
}

TEST(Rlrmc, InvalidKeysAreErrorsNamingTheKey) {
  EXPECT_NE(config_error("name = 'rlrmc'\nrank = 0\n").find("'rank'"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nrank = -2\n").find("'rank'"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nrank = 4\n", 3, 5).find("'rank'"), std::string::npos);  // > min(users, items)
  EXPECT_NE(config_error("name = 'rlrmc'\nrank = 'ten'\n").find("rank"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nranks = 2\n").find("ranks"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nC = 0.1\n").find("'C'"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nregularization = -0.1\n").find("'regularization'"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\ninitialization = 'pca'\n").find("initialization"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nmax_iterations = 0\n").find("'max_iterations'"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nmax_seconds = 0.0\n").find("'max_seconds'"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nmin_gradient_norm = -1.0\n").find("'min_gradient_norm'"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nmin_step_size = -1.0\n").find("'min_step_size'"), std::string::npos);
  EXPECT_NE(config_error("name = 'rlrmc'\nlog_every = -1\n").find("'log_every'"), std::string::npos);
  EXPECT_EQ(config_error("name = 'rlrmc'\nrank = 3\nregularization = 0.0\ninitialization = 'random'\n"), "(no error)");
}

}  // namespace
}  // namespace embrec::models
