// t-SNE maps of item and user embeddings: Barnes-Hut t-SNE (van der Maaten 2014) with PCA initialisation, on
// plain float arrays (no torch), deterministic for a seed whatever the number of OpenMP threads.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace embrec::report {

struct TsneOptions {
  double perplexity = 30.0;        // check = >0; lowered to (n-1)/3 for small n, as openTSNE does
  // Total gradient steps, the early-exaggeration ones included (openTSNE's 250 + 500). With the automatic learning
  // rate the KL divergence has flattened by then on 10k points (bench/tsne_bench.cpp), and 750 steps keep a
  // 12,101-point map well inside the report's 30 s.
  int iterations = 750;            // check = >=0
  double theta = 0.5;              // check = >=0; Barnes-Hut accuracy, 0 = exact (O(n^2))
  double learning_rate = 0.0;      // check = >=0; 0 = automatic: max(50, n / early_exaggeration / 4), see below
  double early_exaggeration = 12.0;  // check = >0
  int exaggeration_iterations = 250;  // check = >=0; momentum 0.5 during these, 0.8 after
  int input_dims = 50;             // check = 0 or >=2; PCA-reduce wider inputs to this many dims (0 = keep all)
  uint64_t seed = 42;              // picks the tiny jitter added to the PCA initialisation (it separates duplicates)
  std::function<void(int done, int total)> progress;  // optional, called every 10 steps and at the end
};

// n points of `dim` floats (row-major) -> n x 2 map (row-major). The map starts from the first two principal
// components scaled to standard deviation 1e-4 (openTSNE's initialisation) plus a seeded jitter of 1e-6.
//
// The learning rate is for the true gradient of KL(P||Q) (with its factor 4), as scikit-learn's is; bhtsne and
// openTSNE drop that factor, so their learning rate is 4 times ours: "auto" = max(200, n / 12) there (Belkina et
// al. 2019) is max(50, n / 12 / 4) here. Throws embrec::Error for n < 2, dim < 1 or an option out of range.
std::vector<float> tsne(const float* points, int64_t n, int64_t dim, const TsneOptions& options);

// The steps of tsne(), exposed for tests and benchmarks.
namespace tsne_detail {

// The k nearest neighbours of every point (itself excluded), nearest first, ties by index; squared Euclidean
// distances recomputed in double for the chosen pairs. Exact: blocks of rows against all points with cblas_sgemm.
struct Neighbours {
  int64_t n = 0, k = 0;
  std::vector<int32_t> index;        // [n * k]
  std::vector<double> distance_sq;   // [n * k]
};
Neighbours nearest_neighbours(const float* points, int64_t n, int64_t dim, int64_t k);

// p_{j|i} over each row's neighbours (n x k, rows sum to 1): a Gaussian whose precision is found by bisection so
// that the row's perplexity 2^H (H in bits; equally e^H in nats) is `perplexity` (van der Maaten & Hinton 2008,
// eq. 1 and 4).
std::vector<double> conditional_probabilities(const Neighbours& neighbours, double perplexity);

// A square sparse matrix in CSR form, columns sorted within each row.
struct SparseMatrix {
  int64_t n = 0;
  std::vector<int64_t> row_start;  // [n + 1]
  std::vector<int32_t> column;
  std::vector<double> value;
};

// p_ij = (p_{j|i} + p_{i|j}) / 2n (2008 paper, section 3.1): symmetric, sums to 1.
SparseMatrix joint_probabilities(const Neighbours& neighbours, const std::vector<double>& conditional);

// The whole input side of tsne(): neighbour count 3 * perplexity and the small-n lowering included.
SparseMatrix input_affinities(const float* points, int64_t n, int64_t dim, double perplexity);

// KL(P || Q) of a 2-D map y (n x 2, row-major), Q the Student-t similarities over all pairs. Exact, O(n^2).
double kl_divergence(const SparseMatrix& p, const double* y, int64_t n);

// dKL/dy by the direct formula 4 sum_j (p_ij - q_ij)(y_i - y_j) / (1 + |y_i - y_j|^2) (2008 paper, eq. 10), with
// p multiplied by `exaggeration`. O(n^2): the reference the Barnes-Hut gradient is tested against.
void exact_gradient(const SparseMatrix& p, const double* y, int64_t n, double exaggeration, double* gradient_out);

// The same gradient split into attraction over P's non-zeros and repulsion estimated on a quadtree (van der
// Maaten 2014's F_attr and F_rep): a cell is one body when its width < theta * distance; theta = 0 is exact.
// Points are served in groups of up to 64 that share one tree walk, the distance measured to the group's bounding
// box, so the error is at most that of the per-point walk (measured: 1.0 % of the gradient's norm at theta 0.5 on
// a converged 10k-point map, against 1.9 % per point).
void barnes_hut_gradient(const SparseMatrix& p, const double* y, int64_t n, double theta, double exaggeration,
                         double* gradient_out);

}  // namespace tsne_detail
}  // namespace embrec::report
