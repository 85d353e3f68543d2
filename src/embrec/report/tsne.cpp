// Barnes-Hut t-SNE: PCA, exact kNN affinities, a quadtree for the repulsion, gradient descent with gains.
// Papers: L. van der Maaten & G. Hinton, "Visualizing Data using t-SNE", JMLR 2008 ("2008"); L. van der Maaten,
// "Accelerating t-SNE using Tree-Based Algorithms", JMLR 2014 ("2014").
#include "embrec/report/tsne.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <utility>

#include "embrec/util/error.h"

namespace embrec::report {
namespace {

constexpr int kProgressEvery = 10;
// Below this many points a gradient step takes microseconds and OpenMP's fork and barrier would cost more,
// the more so on a loaded machine where a barrier waits for a descheduled thread.
constexpr int64_t kParallelMinPoints = 2000;
constexpr int64_t kKnnBlockRows = 256;      // 256 x 12,101 floats = 12 MB of distances per block and thread
constexpr int64_t kCovarianceBlockRows = 4096;
constexpr int64_t kJacobiMaxDim = 128;      // wider scatter matrices go to subspace iteration
constexpr int kSubspaceIterations = 30;
constexpr double kInitialStd = 1e-4;        // openTSNE's PCA initialisation: column 0 scaled to this std
constexpr double kJitterStd = 1e-6;         // 1 % of that: separates duplicates, the only use of the seed
constexpr int kMaxTreeDepth = 64;           // below 2^-64 of the map's width only copies of a point remain apart
// Points per traversal group: at 10k points and theta 0.5, 16 -> 7.8 ms a gradient, 64 -> 6.7 ms (and a smaller
// error, the group's criterion being stricter), 128 -> 6.5 ms.
constexpr int32_t kGroupPoints = 64;
constexpr double kPi = 3.14159265358979323846;

// Four doubles in a GCC/Clang vector type (two SSE2 registers on plain x86-64, one with AVX). The t-SNE inner
// loops are bound by one division per pair; four lanes divide together, and the lanes are summed in a fixed order,
// so results stay bit-reproducible.
typedef double Double4 __attribute__((vector_size(32)));

double lane_sum(const Double4& v) { return (v[0] + v[1]) + (v[2] + v[3]); }

// Standard normals from mt19937_64 by Box-Muller: the engine's output is fixed by the C++ standard,
// std::normal_distribution's is not, and maps must not change with the standard library.
class Normal {
 public:
  explicit Normal(uint64_t seed) : engine_(seed) {}
  double next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = (static_cast<double>(engine_() >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
    const double u2 = static_cast<double>(engine_() >> 11) * 0x1.0p-53;          // [0, 1)
    const double radius = std::sqrt(-2.0 * std::log(u1)), angle = 2.0 * kPi * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

void check_input(const float* points, int64_t n, int64_t dim, const TsneOptions& options) {
  if (n < 2) fail("tsne: needs at least 2 points, got {}", n);
  if (dim < 1) fail("tsne: points need at least 1 dimension, got {}", dim);
  if (!(options.perplexity > 0)) fail("tsne: perplexity must be > 0, got {}", options.perplexity);
  if (options.iterations < 0) fail("tsne: iterations must be >= 0, got {}", options.iterations);
  if (!(options.theta >= 0)) fail("tsne: theta must be >= 0, got {}", options.theta);
  if (!(options.learning_rate >= 0)) fail("tsne: learning_rate must be >= 0, got {}", options.learning_rate);
  if (!(options.early_exaggeration > 0))
    fail("tsne: early_exaggeration must be > 0, got {}", options.early_exaggeration);
  if (options.exaggeration_iterations < 0)
    fail("tsne: exaggeration_iterations must be >= 0, got {}", options.exaggeration_iterations);
  if (options.input_dims < 0 || options.input_dims == 1)
    fail("tsne: input_dims must be 0 (keep all) or >= 2, got {}", options.input_dims);
  for (int64_t i = 0; i < n * dim; ++i)
    if (!std::isfinite(points[i])) fail("tsne: point {} has a non-finite value in dimension {}", i / dim, i % dim);
}

// Points minus their mean, as floats: PCA needs it, and the kNN's |a|^2 + |b|^2 - 2ab loses less to cancellation.
std::vector<float> centred(const float* points, int64_t n, int64_t dim) {
  std::vector<double> mean(dim, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < dim; ++d) mean[d] += points[i * dim + d];
  for (double& m : mean) m /= static_cast<double>(n);
  std::vector<float> out(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t d = 0; d < dim; ++d) out[i * dim + d] = static_cast<float>(points[i * dim + d] - mean[d]);
  return out;
}

// X^T X of centred points (dim x dim, upper triangle filled), accumulated in double over row blocks.
std::vector<double> scatter_matrix(const std::vector<float>& x, int64_t n, int64_t dim) {
  std::vector<double> scatter(static_cast<size_t>(dim * dim), 0.0), block;
  for (int64_t start = 0; start < n; start += kCovarianceBlockRows) {
    const int64_t rows = std::min(kCovarianceBlockRows, n - start);
    block.assign(x.begin() + start * dim, x.begin() + (start + rows) * dim);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, rows, 1.0, block.data(), dim, 1.0, scatter.data(), dim);
  }
  for (int64_t r = 0; r < dim; ++r)
    for (int64_t c = 0; c < r; ++c) scatter[r * dim + c] = scatter[c * dim + r];
  return scatter;
}

// Each column of a dim x count matrix flipped so that its largest component is positive: an eigenvector's sign is
// arbitrary, and the map's orientation should not depend on rounding.
void fix_signs(std::vector<double>& axes, int64_t dim, int64_t count) {
  for (int64_t j = 0; j < count; ++j) {
    int64_t largest = 0;
    for (int64_t k = 0; k < dim; ++k)
      if (std::abs(axes[k * count + j]) > std::abs(axes[largest * count + j])) largest = k;
    if (axes[largest * count + j] < 0)
      for (int64_t k = 0; k < dim; ++k) axes[k * count + j] = -axes[k * count + j];
  }
}

// All eigenvectors of a symmetric matrix by cyclic Jacobi rotations (Numerical Recipes, section 11.1): no LAPACK
// needed, accurate to rounding, but ~10 sweeps of O(dim^3) each: 0.1 s at dim 128, seconds beyond 300.
// Returns them as the columns of a dim x dim matrix, by decreasing eigenvalue, signs fixed.
std::vector<double> jacobi_axes(std::vector<double> a, int64_t dim) {
  std::vector<double> v(static_cast<size_t>(dim * dim), 0.0);
  for (int64_t d = 0; d < dim; ++d) v[d * dim + d] = 1.0;
  double total = 0.0;
  for (double x : a) total += x * x;
  auto rotate = [dim](std::vector<double>& m, int64_t stride_k, int64_t stride_pq, int64_t p, int64_t q, double c,
                      double s) {
    for (int64_t k = 0; k < dim; ++k) {
      double& mp = m[k * stride_k + p * stride_pq];
      double& mq = m[k * stride_k + q * stride_pq];
      const double old_p = mp;
      mp = c * old_p - s * mq;
      mq = s * old_p + c * mq;
    }
  };
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0.0;
    for (int64_t p = 0; p < dim; ++p)
      for (int64_t q = p + 1; q < dim; ++q) off += a[p * dim + q] * a[p * dim + q];
    if (off <= 1e-30 * total) break;
    for (int64_t p = 0; p < dim; ++p)
      for (int64_t q = p + 1; q < dim; ++q) {
        const double apq = a[p * dim + q];
        if (apq == 0.0) continue;
        const double theta = (a[q * dim + q] - a[p * dim + p]) / (2.0 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::abs(theta) + std::sqrt(theta * theta + 1.0));
        const double c = 1.0 / std::sqrt(t * t + 1.0), s = t * c;
        rotate(a, dim, 1, p, q, c, s);  // columns p, q
        rotate(a, 1, dim, p, q, c, s);  // rows p, q
        a[p * dim + q] = a[q * dim + p] = 0.0;
        rotate(v, dim, 1, p, q, c, s);
      }
  }
  std::vector<int64_t> order(dim);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return a[x * dim + x] > a[y * dim + y]; });
  std::vector<double> axes(static_cast<size_t>(dim * dim));
  for (int64_t j = 0; j < dim; ++j)
    for (int64_t k = 0; k < dim; ++k) axes[k * dim + j] = v[k * dim + order[j]];
  fix_signs(axes, dim, dim);
  return axes;
}

// Orthonormal rows of a count x dim matrix by modified Gram-Schmidt, twice ("twice is enough", Giraud et al.
// 2005). A row that vanishes (the scatter has lower rank) is replaced by a fixed pseudo-random one.
void orthonormalise(std::vector<double>& rows, int64_t count, int64_t dim) {
  Normal refill(0x70ca1);
  auto dot = [&](int64_t a, int64_t b) {
    return cblas_ddot(static_cast<int>(dim), &rows[a * dim], 1, &rows[b * dim], 1);
  };
  for (int64_t r = 0; r < count; ++r) {
    double* row = &rows[r * dim];
    for (int attempt = 0; attempt < 8; ++attempt) {
      const double before = dot(r, r);
      for (int pass = 0; pass < 2; ++pass)
        for (int64_t b = 0; b < r; ++b) cblas_daxpy(static_cast<int>(dim), -dot(b, r), &rows[b * dim], 1, row, 1);
      const double after = dot(r, r);
      if (after > 1e-20 * before && after > 0) {
        cblas_dscal(static_cast<int>(dim), 1.0 / std::sqrt(after), row, 1);
        break;
      }
      for (int64_t k = 0; k < dim; ++k) row[k] = refill.next();
    }
  }
}

// The `count` leading eigenvectors (dim x count, by decreasing eigenvalue, signs fixed) of a symmetric positive
// semi-definite dim x dim matrix S. Small matrices: Jacobi. Larger ones: subspace iteration on count + 10
// vectors with a Rayleigh-Ritz step (Saad, "Numerical Methods for Large Eigenvalue Problems", ch. 5), all dgemm,
// from a fixed start so that the axes do not depend on the seed. The vectors are kept as rows (V), so that
// V S = (S V^T)^T and Gram-Schmidt read contiguous memory.
std::vector<double> leading_axes(const std::vector<double>& scatter, int64_t dim, int64_t count) {
  std::vector<double> axes(static_cast<size_t>(dim * count));
  if (dim <= kJacobiMaxDim) {
    const std::vector<double> all = jacobi_axes(scatter, dim);
    for (int64_t k = 0; k < dim; ++k) std::copy_n(all.begin() + k * dim, count, axes.begin() + k * count);
    return axes;
  }
  const int64_t width = std::min(dim, count + 10);
  std::vector<double> v(static_cast<size_t>(width * dim)), product(v.size()), small(width * width);
  Normal start(0x5eed);
  for (double& value : v) value = start.next();
  orthonormalise(v, width, dim);
  auto times_scatter = [&] {  // product = V S
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, width, dim, dim, 1.0, v.data(), dim, scatter.data(), dim,
                0.0, product.data(), dim);
  };
  for (int iteration = 0; iteration < kSubspaceIterations; ++iteration) {
    times_scatter();
    std::swap(v, product);
    orthonormalise(v, width, dim);
  }
  // Rayleigh-Ritz: the eigenvectors R of V S V^T turn V's span onto its best approximations of S's eigenvectors.
  times_scatter();
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, width, width, dim, 1.0, product.data(), dim, v.data(), dim,
              0.0, small.data(), width);
  const std::vector<double> ritz = jacobi_axes(small, width);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, dim, count, width, 1.0, v.data(), dim, ritz.data(), width,
              0.0, axes.data(), count);
  fix_signs(axes, dim, count);
  return axes;
}

// Centred points in principal-axis coordinates (axes: dim x components; result: n x components).
std::vector<float> project(const std::vector<float>& x, int64_t n, int64_t dim, const std::vector<double>& axes,
                           int64_t components) {
  const std::vector<float> basis(axes.begin(), axes.end());
  std::vector<float> out(static_cast<size_t>(n * components));
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, components, dim, 1.0f, x.data(), dim, basis.data(),
              components, 0.0f, out.data(), components);
  return out;
}

// openTSNE's initialisation: the first two principal components, both scaled so that the first has std 1e-4
// (a small start keeps early exaggeration from tearing clusters), plus the seeded jitter.
std::vector<double> initial_map(const std::vector<float>& projected, int64_t n, int64_t components, uint64_t seed) {
  double sum = 0.0, sum_sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += projected[i * components];
  const double mean = sum / static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) sum_sq += (projected[i * components] - mean) * (projected[i * components] - mean);
  const double std0 = std::sqrt(sum_sq / static_cast<double>(n));
  const double scale = std0 > 0 ? kInitialStd / std0 : 0.0;
  Normal normal(seed);
  std::vector<double> y(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < 2; ++c) {
      const double start = c < components ? scale * projected[i * components + c] : 0.0;
      y[2 * i + c] = start + kJitterStd * normal.next();
    }
  return y;
}

// The k smallest (distance, column) pairs of one row, into `nearest` (unordered). `row` holds the row's inner
// products and is overwritten with the squared distances |x_i|^2 + |x_j|^2 - 2 x_i.x_j in one vectorised pass.
// Columns below a threshold are collected; whenever 4k are held, nth_element keeps the k best and the k-th
// becomes the threshold, so after the first few hundred columns almost all are rejected by one comparison,
// counted 16 at a time (vectorised) before any is looked at. Pairs compare by distance, then column: ties are
// broken the same way on every run.
void nearest_in_row(float* row, const std::vector<float>& norms, int64_t i, int64_t k,
                    std::vector<std::pair<float, int32_t>>& nearest) {
  const int64_t n = static_cast<int64_t>(norms.size());
  const float norm_i = norms[i];
  for (int64_t j = 0; j < n; ++j) row[j] = norm_i + norms[j] - 2.0f * row[j];
  row[i] = std::numeric_limits<float>::infinity();  // never its own neighbour
  nearest.clear();
  auto keep_best = [&] {
    std::nth_element(nearest.begin(), nearest.begin() + (k - 1), nearest.end());
    nearest.resize(k);
    return std::max_element(nearest.begin(), nearest.end())->first;
  };
  float threshold = std::numeric_limits<float>::infinity();
  constexpr int64_t kBlock = 16;
  for (int64_t j = 0; j < n; j += kBlock) {
    const int64_t end = std::min(n, j + kBlock);
    int below = 0;
    for (int64_t t = j; t < end; ++t) below += row[t] < threshold;
    if (below == 0) continue;
    for (int64_t t = j; t < end; ++t)
      if (row[t] < threshold) nearest.emplace_back(row[t], static_cast<int32_t>(t));
    if (static_cast<int64_t>(nearest.size()) >= 4 * k) threshold = keep_best();
  }
  // Self is at +inf and k < n, so at least k columns were collected.
  if (static_cast<int64_t>(nearest.size()) > k) keep_best();
}

// |a - b|^2 in double, four dimensions at a time.
double squared_distance(const float* a, const float* b, int64_t dim) {
  Double4 sum4 = {0, 0, 0, 0};
  int64_t d = 0;
  for (; d + 4 <= dim; d += 4) {
    const Double4 diff = {static_cast<double>(a[d]) - b[d], static_cast<double>(a[d + 1]) - b[d + 1],
                          static_cast<double>(a[d + 2]) - b[d + 2], static_cast<double>(a[d + 3]) - b[d + 3]};
    sum4 += diff * diff;
  }
  double sum = lane_sum(sum4);
  for (; d < dim; ++d) sum += (static_cast<double>(a[d]) - b[d]) * (static_cast<double>(a[d]) - b[d]);
  return sum;
}

// One row's p_{j|i} (2008, eq. 1) for squared distances d (k of them): the precision beta at which the entropy
// H = log(sum) + beta * E[d - d_min] (nats) is log(perplexity). H falls as beta grows, with dH/dbeta =
// -beta Var(d), so Newton steps converge in a handful of exp() passes; a bracket [low, high] catches any step that
// overshoots and bisects instead. Distances are shifted by their minimum so exp() cannot underflow to 0/0; beta
// stays finite, so equal distances give a uniform row, never NaN.
void row_probabilities(const double* d, int64_t k, double perplexity, double* p) {
  const double target = std::log(perplexity), d_min = *std::min_element(d, d + k);
  double mean = 0.0;
  for (int64_t j = 0; j < k; ++j) mean += d[j] - d_min;
  mean /= static_cast<double>(k);
  double beta = mean > 0 ? 1.0 / mean : 1.0, low = 0.0, high = std::numeric_limits<double>::infinity();
  double sum = 0.0;
  for (int step = 0; step < 200; ++step) {
    double weighted = 0.0, weighted_sq = 0.0;
    sum = 0.0;
    for (int64_t j = 0; j < k; ++j) {
      const double shifted = d[j] - d_min;
      p[j] = std::exp(-beta * shifted);
      sum += p[j], weighted += shifted * p[j], weighted_sq += shifted * shifted * p[j];
    }
    const double expected = weighted / sum, entropy = std::log(sum) + beta * expected;
    if (std::abs(entropy - target) < 1e-10) break;
    (entropy > target ? low : high) = beta;  // too flat: sharpen (raise beta); too sharp: lower it
    const double variance = weighted_sq / sum - expected * expected;
    const double newton = variance > 0 ? beta + (entropy - target) / (beta * variance) : -1.0;
    if (newton > low && newton < high) beta = newton;
    else beta = std::isinf(high) ? 2.0 * beta : 0.5 * (low + high);
    if (beta > 1e280) break;
  }
  for (int64_t j = 0; j < k; ++j) p[j] /= sum;
}

// The attraction on point i, 2014's F_attr (without the gradient's factor 4 and Z, which cancel):
// sum_j p_ij w_ij (y_i - y_j), w_ij = 1 / (1 + |y_i - y_j|^2), over row i of P, four entries at a time (the last
// few added lane by lane).
void row_attraction(const tsne_detail::SparseMatrix& p, const double* y, int64_t i, double* out) {
  const double xi = y[2 * i], yi = y[2 * i + 1];
  const int64_t begin = p.row_start[i], end = p.row_start[i + 1];
  Double4 ax = {0, 0, 0, 0}, ay = ax;
  int64_t e = begin;
  for (; e + 3 < end; e += 4) {
    const int64_t j0 = p.column[e], j1 = p.column[e + 1], j2 = p.column[e + 2], j3 = p.column[e + 3];
    const Double4 dx = xi - Double4{y[2 * j0], y[2 * j1], y[2 * j2], y[2 * j3]};
    const Double4 dy = yi - Double4{y[2 * j0 + 1], y[2 * j1 + 1], y[2 * j2 + 1], y[2 * j3 + 1]};
    Double4 value;
    std::memcpy(&value, &p.value[e], sizeof value);
    const Double4 pw = value / (1.0 + dx * dx + dy * dy);
    ax += pw * dx, ay += pw * dy;
  }
  for (int lane = 0; e < end; ++e, ++lane) {
    const int64_t j = p.column[e];
    const double dx = xi - y[2 * j], dy = yi - y[2 * j + 1], pw = p.value[e] / (1.0 + dx * dx + dy * dy);
    ax[lane] += pw * dx, ay[lane] += pw * dy;
  }
  out[0] = lane_sum(ax), out[1] = lane_sum(ay);
}

// A quadtree over the map in depth-first order: each node knows where its subtree ends (`next`), so a traversal
// is one forward loop without a stack. Nodes hold their points' centre of mass and count (2014's Barnes-Hut); the
// points' coordinates are kept in tree order, so every pass over a node's points reads contiguous memory.
// Points are visited in groups, the largest subtrees of at most kGroupPoints points: one traversal per group
// (Barnes 1990's grouping) lists the bodies that act on all of its points, so the branchy tree walk is paid once
// per group and each point runs a straight loop over the list.
class QuadTree {
 public:
  // The bodies acting on one group, as arrays: x, y and number of points.
  struct Bodies {
    std::vector<double> x, y, count;
  };

  QuadTree(const double* y, int64_t n) : order_(n), x_(n), y_(n) {
    std::iota(order_.begin(), order_.end(), 0);
    for (int64_t i = 0; i < n; ++i) x_[i] = y[2 * i], y_[i] = y[2 * i + 1];
    const auto [min_x, max_x] = std::minmax_element(x_.begin(), x_.end());
    const auto [min_y, max_y] = std::minmax_element(y_.begin(), y_.end());
    const double half = 0.5 * std::max(*max_x - *min_x, *max_y - *min_y);
    scratch_order_.resize(n), scratch_x_.resize(n), scratch_y_.resize(n);
    nodes_.reserve(static_cast<size_t>(2 * n + 16));
    build(0, static_cast<int32_t>(n), 0.5 * (*min_x + *max_x), 0.5 * (*min_y + *max_y), half, 0, true);
  }

  int64_t group_count() const { return static_cast<int64_t>(groups_.size()); }

  // The repulsion on each point i of a group, 2014's F_rep times Z: the sum over bodies of
  // count * w^2 * (y_i - y_body) into force[2i..2i+1], and of count * w into z[i], w = 1 / (1 + |y_i - y_body|^2).
  // A cell is one body when its width^2 < theta^2 * d^2, d its centre of mass' distance to the group's bounding
  // box: no nearer than to any point of the group, so each point is served at least as accurately as by its own
  // walk. Leaves are bodies too (one point, or copies of one), exact; the leaf holding i adds w = 1 for i itself,
  // taken off again.
  void group_repulsion(int64_t group, double theta_sq, Bodies& bodies, double* force, double* z) const {
    const Node& members = nodes_[groups_[group]];
    const int32_t begin = members.first, end = members.first + members.count;
    const auto [min_x, max_x] = std::minmax_element(x_.begin() + begin, x_.begin() + end);
    const auto [min_y, max_y] = std::minmax_element(y_.begin() + begin, y_.begin() + end);
    bodies.x.clear(), bodies.y.clear(), bodies.count.clear();
    const int32_t last = static_cast<int32_t>(nodes_.size());
    for (int32_t node = 0; node < last;) {
      const Node& cell = nodes_[node];
      const double dx = std::max({0.0, *min_x - cell.com_x, cell.com_x - *max_x});
      const double dy = std::max({0.0, *min_y - cell.com_y, cell.com_y - *max_y});
      if (!cell.leaf && cell.width_sq >= theta_sq * (dx * dx + dy * dy)) {
        ++node;  // open the cell: its first child follows it
        continue;
      }
      bodies.x.push_back(cell.com_x), bodies.y.push_back(cell.com_y), bodies.count.push_back(cell.count);
      node = cell.next;
    }
    while (bodies.x.size() % 4 != 0) bodies.x.push_back(0.0), bodies.y.push_back(0.0), bodies.count.push_back(0.0);
    for (int32_t p = begin; p < end; ++p) {
      const int32_t i = order_[p];
      body_sums(bodies, x_[p], y_[p], force + 2 * i, z + i);
      z[i] -= 1.0;
    }
  }

 private:
  struct Node {
    double com_x = 0, com_y = 0, width_sq = 0;
    int32_t first = 0, count = 0, next = 0;
    bool leaf = false;
  };

  // Four bodies at a time; group_repulsion pads the list to a multiple of 4 with bodies of count 0 (exact zeros).
  static void body_sums(const Bodies& bodies, double xi, double yi, double* force, double* z) {
    Double4 fx = {0, 0, 0, 0}, fy = fx, sum_w = fx;
    for (size_t b = 0; b < bodies.x.size(); b += 4) {
      Double4 x, y, count;
      std::memcpy(&x, &bodies.x[b], sizeof x), std::memcpy(&y, &bodies.y[b], sizeof y);
      std::memcpy(&count, &bodies.count[b], sizeof count);
      const Double4 dx = xi - x, dy = yi - y, w = 1.0 / (1.0 + dx * dx + dy * dy), weight = count * w;
      sum_w += weight, fx += weight * w * dx, fy += weight * w * dy;
    }
    force[0] = lane_sum(fx), force[1] = lane_sum(fy), *z = lane_sum(sum_w);
  }

  // One node and, unless it is a leaf, its subtree. A pass over the node's points finds their bounding box (all
  // equal: a leaf of copies) and quadrant sizes; a second moves them, stably, into quadrant order. The centre of
  // mass comes from the points for a leaf and from the children otherwise.
  void build(int32_t first, int32_t count, double centre_x, double centre_y, double half, int depth,
             bool may_group) {
    const size_t index = nodes_.size();
    const bool group = may_group && count <= kGroupPoints;
    if (group) groups_.push_back(static_cast<int32_t>(index));
    nodes_.emplace_back();
    Node node;
    node.first = first, node.count = count, node.width_sq = 4.0 * half * half;
    int32_t sizes[4] = {0, 0, 0, 0};
    double min_x = x_[first], max_x = min_x, min_y = y_[first], max_y = min_y;
    for (int32_t p = first; p < first + count; ++p) {
      min_x = std::min(min_x, x_[p]), max_x = std::max(max_x, x_[p]);
      min_y = std::min(min_y, y_[p]), max_y = std::max(max_y, y_[p]);
      ++sizes[(x_[p] >= centre_x) + 2 * (y_[p] >= centre_y)];
    }
    node.leaf = count == 1 || (min_x == max_x && min_y == max_y) || depth >= kMaxTreeDepth;
    if (node.leaf) {
      for (int32_t p = first; p < first + count; ++p) node.com_x += x_[p], node.com_y += y_[p];
    } else {
      int32_t offsets[4] = {first, first + sizes[0], first + sizes[0] + sizes[1],
                            first + sizes[0] + sizes[1] + sizes[2]};
      int32_t fill[4] = {offsets[0], offsets[1], offsets[2], offsets[3]};
      for (int32_t p = first; p < first + count; ++p) {
        const int32_t to = fill[(x_[p] >= centre_x) + 2 * (y_[p] >= centre_y)]++;
        scratch_order_[to] = order_[p], scratch_x_[to] = x_[p], scratch_y_[to] = y_[p];
      }
      std::copy_n(scratch_order_.begin() + first, count, order_.begin() + first);
      std::copy_n(scratch_x_.begin() + first, count, x_.begin() + first);
      std::copy_n(scratch_y_.begin() + first, count, y_.begin() + first);
      for (int q = 0; q < 4; ++q) {
        if (sizes[q] == 0) continue;
        const size_t child = nodes_.size();
        build(offsets[q], sizes[q], centre_x + (q & 1 ? 0.5 : -0.5) * half, centre_y + (q & 2 ? 0.5 : -0.5) * half,
              0.5 * half, depth + 1, may_group && !group);
        const Node& built = nodes_[child];
        node.com_x += built.count * built.com_x, node.com_y += built.count * built.com_y;
      }
    }
    node.com_x /= count, node.com_y /= count;
    node.next = static_cast<int32_t>(nodes_.size());
    nodes_[index] = node;
  }

  std::vector<Node> nodes_;
  std::vector<int32_t> order_, groups_, scratch_order_;
  std::vector<double> x_, y_, scratch_x_, scratch_y_;  // point coordinates in tree order
};

// Gradient descent with momentum and per-coordinate gains (Jacobs 1988), as bhtsne, openTSNE and scikit-learn do:
// a gain grows by 0.2 while its coordinate's gradient keeps its sign (gradient * last step < 0: the steps keep going
// the same way) and shrinks by a factor 0.8, to at least 0.01, when it flips. The map is re-centred after every step
// (bhtsne's zeroMean) so that it cannot drift.
void optimise(const tsne_detail::SparseMatrix& p, std::vector<double>& y, int64_t n, const TsneOptions& options,
              double learning_rate) {
  std::vector<double> gradient(2 * n), update(2 * n, 0.0), gains(2 * n, 1.0);
  for (int iteration = 0; iteration < options.iterations; ++iteration) {
    const bool exaggerating = iteration < options.exaggeration_iterations;
    tsne_detail::barnes_hut_gradient(p, y.data(), n, options.theta, exaggerating ? options.early_exaggeration : 1.0,
                                     gradient.data());
    const double momentum = exaggerating ? 0.5 : 0.8;
    double mean[2] = {0.0, 0.0};
    for (int64_t c = 0; c < 2 * n; ++c) {
      gains[c] = gradient[c] * update[c] < 0 ? gains[c] + 0.2 : std::max(gains[c] * 0.8, 0.01);
      update[c] = momentum * update[c] - learning_rate * gains[c] * gradient[c];
      y[c] += update[c];
      mean[c & 1] += y[c];
    }
    for (int64_t c = 0; c < 2 * n; ++c) y[c] -= mean[c & 1] / static_cast<double>(n);
    if (options.progress && ((iteration + 1) % kProgressEvery == 0 || iteration + 1 == options.iterations))
      options.progress(iteration + 1, options.iterations);
  }
}

}  // namespace

namespace tsne_detail {

Neighbours nearest_neighbours(const float* points, int64_t n, int64_t dim, int64_t k) {
  if (k < 1 || k >= n) fail("nearest_neighbours: k must be in [1, {}), got {}", n, k);
  std::vector<float> norms(n);
  for (int64_t i = 0; i < n; ++i)
    norms[i] = cblas_sdot(static_cast<int>(dim), points + i * dim, 1, points + i * dim, 1);
  Neighbours out;
  out.n = n, out.k = k;
  out.index.resize(static_cast<size_t>(n * k));
  out.distance_sq.resize(static_cast<size_t>(n * k));
  // Each thread multiplies its own blocks of rows against all points and scans them: one parallel region, rather
  // than OpenBLAS' threads and OpenMP's taking turns block by block (measured 0.40-0.49 s against 0.44-0.61 s for
  // 12,101 x 64 on 2 threads).
  const int64_t blocks = (n + kKnnBlockRows - 1) / kKnnBlockRows;
#pragma omp parallel if (n >= kParallelMinPoints)
  {
    std::vector<float> gram(static_cast<size_t>(std::min(kKnnBlockRows, n) * n));
    std::vector<std::pair<float, int32_t>> nearest;
    std::vector<std::pair<double, int32_t>> exact;
#pragma omp for schedule(dynamic, 1)
    for (int64_t block = 0; block < blocks; ++block) {
      const int64_t start = block * kKnnBlockRows, rows = std::min(kKnnBlockRows, n - start);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, dim, 1.0f, points + start * dim, dim, points, dim,
                  0.0f, gram.data(), n);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = start + r;
        nearest_in_row(gram.data() + r * n, norms, i, k, nearest);
        // The Gram-matrix distances lose digits to cancellation (0 for near-duplicates): recompute in double.
        exact.clear();
        for (const auto& [approximate, j] : nearest)
          exact.emplace_back(squared_distance(points + i * dim, points + j * dim, dim), j);
        std::sort(exact.begin(), exact.end());
        for (int64_t m = 0; m < k; ++m)
          out.distance_sq[i * k + m] = exact[m].first, out.index[i * k + m] = exact[m].second;
      }
    }
  }
  return out;
}

std::vector<double> conditional_probabilities(const Neighbours& neighbours, double perplexity) {
  if (!(perplexity > 0)) fail("conditional_probabilities: perplexity must be > 0, got {}", perplexity);
  const int64_t n = neighbours.n, k = neighbours.k;
  std::vector<double> p(static_cast<size_t>(n * k));
#pragma omp parallel for schedule(dynamic, 64) if (n >= kParallelMinPoints)
  for (int64_t i = 0; i < n; ++i)
    row_probabilities(neighbours.distance_sq.data() + i * k, k, perplexity, p.data() + i * k);
  return p;
}

SparseMatrix joint_probabilities(const Neighbours& neighbours, const std::vector<double>& conditional) {
  const int64_t n = neighbours.n, k = neighbours.k;
  // Each p_{j|i} lands at (i, j) and (j, i); a pair that is in both kNN lists gets two terms, summed below.
  SparseMatrix p;
  p.n = n;
  p.row_start.assign(n + 1, 0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t m = 0; m < k; ++m) ++p.row_start[i + 1], ++p.row_start[neighbours.index[i * k + m] + 1];
  for (int64_t i = 0; i < n; ++i) p.row_start[i + 1] += p.row_start[i];
  std::vector<std::pair<int32_t, double>> entries(p.row_start[n]);
  std::vector<int64_t> fill(p.row_start.begin(), p.row_start.end() - 1);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t m = 0; m < k; ++m) {
      const int32_t j = neighbours.index[i * k + m];
      const double value = conditional[i * k + m];
      entries[fill[i]++] = {j, value};
      entries[fill[j]++] = {static_cast<int32_t>(i), value};
    }
  // Sort each row by column and merge repeats; a + b == b + a, so the result does not depend on their order.
  const double scale = 1.0 / (2.0 * static_cast<double>(n));
  std::vector<int64_t> merged_start(n + 1, 0);
  p.column.reserve(entries.size()), p.value.reserve(entries.size());
  for (int64_t i = 0; i < n; ++i) {
    auto begin = entries.begin() + p.row_start[i], end = entries.begin() + p.row_start[i + 1];
    std::sort(begin, end, [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto it = begin; it != end; ++it) {
      if (static_cast<int64_t>(p.column.size()) > merged_start[i] && p.column.back() == it->first) {
        p.value.back() += it->second * scale;
      } else {
        p.column.push_back(it->first);
        p.value.push_back(it->second * scale);
      }
    }
    merged_start[i + 1] = static_cast<int64_t>(p.column.size());
  }
  p.row_start = std::move(merged_start);
  return p;
}

SparseMatrix input_affinities(const float* points, int64_t n, int64_t dim, double perplexity) {
  if (n < 2) fail("input_affinities: needs at least 2 points, got {}", n);
  if (!(perplexity > 0)) fail("input_affinities: perplexity must be > 0, got {}", perplexity);
  // openTSNE's rule for small n: a row cannot hold perplexity 30 with fewer than 90 neighbours.
  const double effective = std::min(perplexity, static_cast<double>(n - 1) / 3.0);
  const int64_t k = std::clamp<int64_t>(static_cast<int64_t>(3.0 * effective), 1, n - 1);
  const Neighbours neighbours = nearest_neighbours(points, n, dim, k);
  return joint_probabilities(neighbours, conditional_probabilities(neighbours, effective));
}

double kl_divergence(const SparseMatrix& p, const double* y, int64_t n) {
  std::vector<double> row_z(n);
#pragma omp parallel for schedule(dynamic, 64) if (n >= kParallelMinPoints)
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      if (j != i) sum += 1.0 / (1.0 + dx * dx + dy * dy);
    }
    row_z[i] = sum;
  }
  const double z = std::accumulate(row_z.begin(), row_z.end(), 0.0);
  double kl = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t e = p.row_start[i]; e < p.row_start[i + 1]; ++e) {
      const int64_t j = p.column[e];
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      const double q = 1.0 / (1.0 + dx * dx + dy * dy) / z;
      if (p.value[e] > 0) kl += p.value[e] * std::log(p.value[e] / q);
    }
  return kl;
}

void exact_gradient(const SparseMatrix& p, const double* y, int64_t n, double exaggeration, double* gradient_out) {
  double z = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      if (j != i) z += 1.0 / (1.0 + dx * dx + dy * dy);
    }
  for (int64_t i = 0; i < n; ++i) {
    double gx = 0.0, gy = 0.0;
    int64_t e = p.row_start[i];
    for (int64_t j = 0; j < n; ++j) {
      double p_ij = 0.0;
      if (e < p.row_start[i + 1] && p.column[e] == j) p_ij = exaggeration * p.value[e++];
      if (j == i) continue;
      const double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      const double w = 1.0 / (1.0 + dx * dx + dy * dy);
      gx += (p_ij - w / z) * w * dx, gy += (p_ij - w / z) * w * dy;
    }
    gradient_out[2 * i] = 4.0 * gx, gradient_out[2 * i + 1] = 4.0 * gy;
  }
}

void barnes_hut_gradient(const SparseMatrix& p, const double* y, int64_t n, double theta, double exaggeration,
                         double* gradient_out) {
  const QuadTree tree(y, n);
  std::vector<double> attraction(2 * n), repulsion(2 * n), row_z(n);
  const double theta_sq = theta * theta;
  // One barrier a step (the two loops write different arrays, so neither waits for the other): on a loaded
  // machine each barrier can cost a time slice spent waiting for a descheduled thread. Attraction runs in index
  // order, which reads P's rows in storage order (at 10k points the step's attraction and tree take 2.3 ms so,
  // 3.9 ms in the tree's order).
#pragma omp parallel if (n >= kParallelMinPoints)
  {
    QuadTree::Bodies bodies;
#pragma omp for schedule(dynamic, 4) nowait
    for (int64_t group = 0; group < tree.group_count(); ++group)
      tree.group_repulsion(group, theta_sq, bodies, repulsion.data(), row_z.data());
#pragma omp for schedule(dynamic, 256) nowait
    for (int64_t i = 0; i < n; ++i) row_attraction(p, y, i, &attraction[2 * i]);
  }
  // Z summed in index order, one thread: the same bits whatever the thread count.
  const double z = std::accumulate(row_z.begin(), row_z.end(), 0.0);
  for (int64_t c = 0; c < 2 * n; ++c) gradient_out[c] = 4.0 * (exaggeration * attraction[c] - repulsion[c] / z);
}

}  // namespace tsne_detail

std::vector<float> tsne(const float* points, int64_t n, int64_t dim, const TsneOptions& options) {
  check_input(points, n, dim, options);
  const std::vector<float> x = centred(points, n, dim);
  // bhtsne's and Rtsne's PCA to 50 dims when the input is wider; otherwise only the two axes of the start.
  const bool reduce = options.input_dims > 0 && dim > options.input_dims;
  const int64_t components = reduce ? options.input_dims : std::min<int64_t>(dim, 2);
  const std::vector<float> projected =
      project(x, n, dim, leading_axes(scatter_matrix(x, n, dim), dim, components), components);
  const tsne_detail::SparseMatrix p = tsne_detail::input_affinities(reduce ? projected.data() : x.data(), n,
                                                                    reduce ? components : dim, options.perplexity);
  std::vector<double> y = initial_map(projected, n, components, options.seed);
  const double learning_rate = options.learning_rate > 0
                                   ? options.learning_rate
                                   : std::max(50.0, static_cast<double>(n) / options.early_exaggeration / 4.0);
  optimise(p, y, n, options, learning_rate);
  return std::vector<float>(y.begin(), y.end());
}

}  // namespace embrec::report
