// t-SNE: affinities with the requested perplexity, gradients against finite differences and each other, maps
// that keep clusters apart, determinism, PCA initialisation, small and degenerate inputs, errors.
#include "embrec/report/tsne.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <utility>

#include "embrec/util/error.h"

namespace embrec::report {
namespace {

using tsne_detail::SparseMatrix;

std::vector<float> gaussian_points(int64_t n, int64_t dim, uint64_t seed, double scale = 1.0) {
  std::mt19937_64 random(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<float> points(static_cast<size_t>(n * dim));
  for (float& v : points) v = static_cast<float>(normal(random));
  return points;
}

// `clusters` Gaussian clusters of `size` points (std 1) around centres 10 * e_c: 14.1 apart, radius ~sqrt(dim).
std::vector<float> clustered_points(int64_t clusters, int64_t size, int64_t dim, uint64_t seed) {
  std::vector<float> points = gaussian_points(clusters * size, dim, seed);
  for (int64_t i = 0; i < clusters * size; ++i) points[i * dim + i / size] += 10.0f;
  return points;
}

// Share of each point's 10 nearest map neighbours that carry its label, averaged over the points labelled `only`
// (all points when -1).
double neighbour_agreement(const std::vector<float>& map, const std::vector<int>& labels, int only = -1) {
  const int64_t n = static_cast<int64_t>(labels.size());
  double total = 0.0;
  int64_t counted = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (only >= 0 && labels[i] != only) continue;
    ++counted;
    std::vector<std::pair<double, int64_t>> distances;
    for (int64_t j = 0; j < n; ++j) {
      const double dx = map[2 * i] - map[2 * j], dy = map[2 * i + 1] - map[2 * j + 1];
      if (j != i) distances.emplace_back(dx * dx + dy * dy, j);
    }
    std::partial_sort(distances.begin(), distances.begin() + 10, distances.end());
    for (int m = 0; m < 10; ++m) total += labels[distances[m].second] == labels[i] ? 0.1 : 0.0;
  }
  return total / static_cast<double>(counted);
}

double max_abs_difference(const std::vector<double>& a, const std::vector<double>& b) {
  double largest = 0.0;
  for (size_t c = 0; c < a.size(); ++c) largest = std::max(largest, std::abs(a[c] - b[c]));
  return largest;
}

double relative_error(const std::vector<double>& approximate, const std::vector<double>& exact) {
  double error = 0.0, norm = 0.0;
  for (size_t c = 0; c < exact.size(); ++c)
    error += (approximate[c] - exact[c]) * (approximate[c] - exact[c]), norm += exact[c] * exact[c];
  return std::sqrt(error / norm);
}

TEST(Tsne, NearestNeighboursAreSortedWithTiesByIndex) {
  // 1-D points 0, 1, 3, 7, -1. Index 0 (x = 0): index 1 and 4 both at d^2 = 1, the lower index first.
  const std::vector<float> points = {0, 1, 3, 7, -1};
  const auto neighbours = tsne_detail::nearest_neighbours(points.data(), 5, 1, 2);
  EXPECT_EQ(std::vector<int32_t>(neighbours.index.begin(), neighbours.index.begin() + 2), (std::vector<int32_t>{1, 4}));
  // Index 2 (x = 3): index 1 at d^2 = 4, then index 0 at 9 (7 is 16 away).
  EXPECT_EQ(neighbours.index[4], 1);
  EXPECT_EQ(neighbours.index[5], 0);
  EXPECT_DOUBLE_EQ(neighbours.distance_sq[4], 4.0);
  EXPECT_DOUBLE_EQ(neighbours.distance_sq[5], 9.0);
}

TEST(Tsne, NearestNeighboursMatchBruteForceAcrossBlocks) {
  // 600 points: the sgemm blocks (256 rows) end mid-way, and the last one is short.
  const int64_t n = 600, dim = 7, k = 12;
  const std::vector<float> points = gaussian_points(n, dim, 3);
  const auto neighbours = tsne_detail::nearest_neighbours(points.data(), n, dim, k);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<std::pair<double, int32_t>> all;
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (int64_t d = 0; d < dim; ++d) sum += std::pow(double(points[i * dim + d]) - points[j * dim + d], 2);
      if (j != i) all.emplace_back(sum, static_cast<int32_t>(j));
    }
    std::sort(all.begin(), all.end());
    for (int64_t m = 0; m < k; ++m) {
      ASSERT_EQ(neighbours.index[i * k + m], all[m].second) << "point " << i << " neighbour " << m;
      ASSERT_NEAR(neighbours.distance_sq[i * k + m], all[m].first, 1e-9);
    }
  }
}

TEST(Tsne, ConditionalRowsHaveTheRequestedPerplexityAndSumToOne) {
  const int64_t n = 300, dim = 10, k = 30;
  const std::vector<float> points = gaussian_points(n, dim, 5);
  const auto neighbours = tsne_detail::nearest_neighbours(points.data(), n, dim, k);
  for (double perplexity : {3.0, 10.0, 25.0}) {
    const std::vector<double> p = tsne_detail::conditional_probabilities(neighbours, perplexity);
    for (int64_t i = 0; i < n; ++i) {
      double sum = 0.0, entropy = 0.0;
      for (int64_t m = 0; m < k; ++m) {
        const double value = p[i * k + m];
        sum += value;
        if (value > 0) entropy -= value * std::log(value);
        if (m > 0) ASSERT_LE(value, p[i * k + m - 1] * (1 + 1e-12)) << "nearer neighbours weigh more";
      }
      ASSERT_NEAR(sum, 1.0, 1e-12);
      ASSERT_NEAR(std::exp(entropy), perplexity, 1e-6 * perplexity) << "row " << i;
    }
  }
}

TEST(Tsne, JointProbabilitiesAreSymmetricAndSumToOne) {
  // Hand-worked, 1-D points 0, 1, 5 with k = 2: at the perplexity of (0.8, 0.2), every row gives its nearer
  // neighbour 0.8 and the other 0.2, whatever the distances. Rows: 0 -> (1: .8, 2: .2), 1 -> (0: .8, 2: .2),
  // 2 -> (1: .8, 0: .2); so p_01 = 1.6 / 6, p_02 = 0.4 / 6, p_12 = 1.0 / 6.
  const std::vector<float> line = {0, 1, 5};
  const double perplexity = std::exp(-0.8 * std::log(0.8) - 0.2 * std::log(0.2));
  const auto small = tsne_detail::nearest_neighbours(line.data(), 3, 1, 2);
  const SparseMatrix p3 =
      tsne_detail::joint_probabilities(small, tsne_detail::conditional_probabilities(small, perplexity));
  EXPECT_EQ(p3.row_start, (std::vector<int64_t>{0, 2, 4, 6}));
  EXPECT_EQ(p3.column, (std::vector<int32_t>{1, 2, 0, 2, 0, 1}));
  const std::vector<double> expected = {1.6 / 6, 0.4 / 6, 1.6 / 6, 1.0 / 6, 0.4 / 6, 1.0 / 6};
  for (size_t e = 0; e < expected.size(); ++e) EXPECT_NEAR(p3.value[e], expected[e], 1e-9) << "entry " << e;

  const int64_t n = 400;
  const std::vector<float> points = clustered_points(4, 100, 12, 7);
  const SparseMatrix p = tsne_detail::input_affinities(points.data(), n, 12, 30.0);
  std::map<std::pair<int64_t, int64_t>, double> entries;
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = p.row_start[i]; e < p.row_start[i + 1]; ++e) {
      ASSERT_NE(p.column[e], i) << "no self-affinity";
      if (e > p.row_start[i]) ASSERT_LT(p.column[e - 1], p.column[e]) << "columns sorted and merged";
      entries[{i, p.column[e]}] = p.value[e];
      total += p.value[e];
    }
  EXPECT_NEAR(total, 1.0, 1e-12);
  for (const auto& [at, value] : entries) {
    auto mirror = entries.find({at.second, at.first});
    ASSERT_NE(mirror, entries.end()) << at.first << "," << at.second;
    EXPECT_EQ(mirror->second, value);
  }
  // Each point has its 90 neighbours (3 x perplexity), plus points that chose it.
  for (int64_t i = 0; i < n; ++i) EXPECT_GE(p.row_start[i + 1] - p.row_start[i], 90);
}

TEST(Tsne, ExactGradientMatchesFiniteDifferencesOfKl) {
  const int64_t n = 8;
  const std::vector<float> points = gaussian_points(n, 5, 11);
  const SparseMatrix p = tsne_detail::input_affinities(points.data(), n, 5, 30.0);  // perplexity lowered to 7/3
  const std::vector<float> start = gaussian_points(n, 2, 12);
  std::vector<double> y(start.begin(), start.end()), gradient(2 * n), numeric(2 * n);
  tsne_detail::exact_gradient(p, y.data(), n, 1.0, gradient.data());
  const double h = 1e-6;
  for (int64_t c = 0; c < 2 * n; ++c) {
    std::vector<double> plus = y, minus = y;
    plus[c] += h, minus[c] -= h;
    numeric[c] = (tsne_detail::kl_divergence(p, plus.data(), n) - tsne_detail::kl_divergence(p, minus.data(), n)) /
                 (2 * h);
  }
  double largest = 0.0;
  for (double g : gradient) largest = std::max(largest, std::abs(g));
  EXPECT_GT(largest, 1e-2) << "a gradient worth checking";
  EXPECT_LT(max_abs_difference(gradient, numeric), 1e-7);
}

TEST(Tsne, BarnesHutGradientIsExactAtThetaZeroAndCloseAtHalf) {
  const int64_t n = 500;
  const std::vector<float> points = clustered_points(5, 100, 10, 13);
  const SparseMatrix p = tsne_detail::input_affinities(points.data(), n, 10, 30.0);
  // A spread map with clumps, like one in mid-optimisation: 5 clumps of radius ~1, 20 apart.
  std::vector<float> start = gaussian_points(n, 2, 14);
  std::vector<double> y(start.begin(), start.end());
  for (int64_t i = 0; i < n; ++i) y[2 * i] += 20.0 * static_cast<double>(i / 100);
  for (double exaggeration : {1.0, 12.0}) {
    std::vector<double> exact(2 * n), tree(2 * n);
    tsne_detail::exact_gradient(p, y.data(), n, exaggeration, exact.data());
    tsne_detail::barnes_hut_gradient(p, y.data(), n, 0.0, exaggeration, tree.data());
    EXPECT_LT(relative_error(tree, exact), 1e-12);
    tsne_detail::barnes_hut_gradient(p, y.data(), n, 0.5, exaggeration, tree.data());
    const double error = relative_error(tree, exact);
    EXPECT_LT(error, 0.01);
    EXPECT_GT(error, 1e-9) << "theta = 0.5 approximates";
  }
}

TEST(Tsne, ThreeClustersStayApartAbove95PercentNeighbourAgreement) {
  // 3 clusters x 150 points in 20 dims: in the map, >= 95 % of each point's 10 nearest neighbours share its cluster
  // (the input space has 100 %; a collapsed or random map has ~33 %).
  const std::vector<float> points = clustered_points(3, 150, 20, 17);
  std::vector<int> labels(450);
  for (int i = 0; i < 450; ++i) labels[i] = i / 150;
  TsneOptions options;
  std::vector<std::pair<int, int>> progress;
  options.progress = [&](int done, int total) { progress.emplace_back(done, total); };
  const std::vector<float> map = tsne(points.data(), 450, 20, options);
  ASSERT_EQ(map.size(), 900u);
  EXPECT_GT(neighbour_agreement(map, labels), 0.95);
  // Progress every 10 of the 750 steps.
  ASSERT_EQ(progress.size(), 75u);
  EXPECT_EQ(progress.front(), std::make_pair(10, 750));
  EXPECT_EQ(progress.back(), std::make_pair(750, 750));
}

TEST(Tsne, DeterministicForASeedAndAnyThreadCount) {
  // 2,400 points: above the size where the steps run on OpenMP threads, so 1 and 2 threads do split the work.
  const int64_t n = 2400;
  const std::vector<float> points = clustered_points(3, 800, 8, 19);
  TsneOptions options;
  options.iterations = 20;  // both phases, and each step's parallel loops
  options.exaggeration_iterations = 10;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> one_thread = tsne(points.data(), n, 8, options);
  omp_set_num_threads(2);
  const std::vector<float> two_threads = tsne(points.data(), n, 8, options);
  const std::vector<float> again = tsne(points.data(), n, 8, options);
  omp_set_num_threads(threads);
  EXPECT_EQ(one_thread, two_threads);
  EXPECT_EQ(two_threads, again);
  options.seed = 43;
  const std::vector<float> other = tsne(points.data(), n, 8, options);
  double largest = 0.0, spread = 0.0;
  for (size_t c = 0; c < other.size(); ++c) {
    largest = std::max<double>(largest, std::abs(other[c] - again[c]));
    spread = std::max<double>(spread, std::abs(again[c]));
  }
  EXPECT_GT(largest, 1e-3 * spread) << "another seed, another map";
}

// Points t_i u + s_i v for orthonormal u, v in `dim` dims, t = i - 49.5 (the wider spread), s = 3 sin(0.7 i).
// With no steps taken the map is the start: y0 = +-t and y1 = +-s, both times 1e-4 / std(t), plus a 1e-6 jitter;
// each axis' sign makes its largest component positive.
void expect_start_is_principal_components(int64_t dim, const std::vector<double>& u, const std::vector<double>& v) {
  const int64_t n = 100;
  std::vector<double> t(n), s(n);
  std::vector<float> points(n * dim);
  double mean_s = 0.0, var_t = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    t[i] = static_cast<double>(i) - 49.5;
    s[i] = 3.0 * std::sin(0.7 * static_cast<double>(i));
    for (int64_t d = 0; d < dim; ++d) points[i * dim + d] = static_cast<float>(t[i] * u[d] + s[i] * v[d]);
    mean_s += s[i] / n, var_t += t[i] * t[i] / n;
  }
  auto sign_of_largest = [](const std::vector<double>& axis) {
    auto largest =
        std::max_element(axis.begin(), axis.end(), [](double a, double b) { return std::abs(a) < std::abs(b); });
    return *largest < 0 ? -1.0 : 1.0;
  };
  const double scale = 1e-4 / std::sqrt(var_t), sign_u = sign_of_largest(u), sign_v = sign_of_largest(v);
  TsneOptions options;
  options.iterations = 0;
  const std::vector<float> map = tsne(points.data(), n, dim, options);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(map[2 * i], sign_u * scale * t[i], 6e-6) << "dim " << dim << ", point " << i;
    EXPECT_NEAR(map[2 * i + 1], sign_v * scale * (s[i] - mean_s), 6e-6) << "dim " << dim << ", point " << i;
  }
}

TEST(Tsne, StartsFromTheFirstTwoPrincipalComponentsScaledToStd1em4) {
  // 2 dims, u = (0.6, 0.8), v = (-0.8, 0.6): y0 = +t, y1 = -s (Jacobi eigenvectors).
  expect_start_is_principal_components(2, {0.6, 0.8}, {-0.8, 0.6});
  // 150 dims (subspace iteration, and a scatter matrix of rank 2): u and v random orthonormal directions.
  std::mt19937_64 random(37);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> u(150), v(150);
  for (int64_t d = 0; d < 150; ++d) u[d] = normal(random), v[d] = normal(random);
  auto normalise = [](std::vector<double>& a) {
    double norm = 0.0;
    for (double x : a) norm += x * x;
    for (double& x : a) x /= std::sqrt(norm);
  };
  normalise(u);
  double dot = 0.0;
  for (int64_t d = 0; d < 150; ++d) dot += u[d] * v[d];
  for (int64_t d = 0; d < 150; ++d) v[d] -= dot * u[d];
  normalise(v);
  expect_start_is_principal_components(150, u, v);
}

TEST(Tsne, SmallInputsAndDuplicatesGiveFiniteMaps) {
  auto finite = [](const std::vector<float>& map) {
    return std::all_of(map.begin(), map.end(), [](float v) { return std::isfinite(v); });
  };
  TsneOptions options;
  options.iterations = 200;
  const std::vector<float> two = {0, 0, 1, 1};
  EXPECT_TRUE(finite(tsne(two.data(), 2, 2, options)));
  const std::vector<float> five = gaussian_points(5, 3, 23);
  EXPECT_TRUE(finite(tsne(five.data(), 5, 3, options)));
  const std::vector<float> same(20 * 4, 1.5f);
  EXPECT_TRUE(finite(tsne(same.data(), 20, 4, options)));
  // 300 points and 10 more copies of point 0: in the input the 11 copies are each other's 10 nearest neighbours;
  // in the map they should still be, mostly (they form a small blob, not one dot: t-SNE repels them to the
  // spacing their affinities ask for).
  std::vector<float> points = clustered_points(3, 100, 6, 29);
  for (int copy = 0; copy < 10; ++copy) points.insert(points.end(), points.begin(), points.begin() + 6);
  const std::vector<float> map = tsne(points.data(), 310, 6, TsneOptions{});
  ASSERT_TRUE(finite(map));
  std::vector<int> labels(310, 0);
  for (int64_t i = 300; i < 310; ++i) labels[i] = 1;
  labels[0] = 1;
  EXPECT_GT(neighbour_agreement(map, labels, 1), 0.8);
}

TEST(Tsne, RejectsBadInput) {
  const std::vector<float> points = gaussian_points(10, 3, 31);
  TsneOptions options;
  EXPECT_THROW(tsne(points.data(), 1, 3, options), Error);
  EXPECT_THROW(tsne(points.data(), 10, 0, options), Error);
  options.perplexity = 0;
  EXPECT_THROW(tsne(points.data(), 10, 3, options), Error);
  options.perplexity = -5;
  EXPECT_THROW(tsne(points.data(), 10, 3, options), Error);
  options = TsneOptions{};
  options.theta = -0.1;
  EXPECT_THROW(tsne(points.data(), 10, 3, options), Error);
  options = TsneOptions{};
  options.iterations = -1;
  EXPECT_THROW(tsne(points.data(), 10, 3, options), Error);
  options = TsneOptions{};
  options.input_dims = 1;
  EXPECT_THROW(tsne(points.data(), 10, 3, options), Error);
  std::vector<float> with_nan = points;
  with_nan[7] = std::nanf("");
  EXPECT_THROW(tsne(with_nan.data(), 10, 3, TsneOptions{}), Error);
  EXPECT_THROW(tsne_detail::input_affinities(points.data(), 10, 3, 0.0), Error);
}

}  // namespace
}  // namespace embrec::report
