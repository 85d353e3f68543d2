// t-SNE speed and quality on a seeded mixture of Gaussians: seconds for the exact kNN, the affinities and the whole
// map at 1 and 2 threads, the map's KL divergence (against the affinities of the full-dimensional points, so
// tsne()'s PCA to --input-dims counts against it), and how many of each point's 10 nearest neighbours share its
// mixture component, in the map and (the ceiling) in the input.
//
// Usage: bench_tsne [--points 10000,12101] [--dim 64] [--components 20] [--spread 0.6] [--threads 1,2]
//                   [--iterations 750] [--theta 0.5] [--perplexity 30] [--input-dims 50]
// Points: component c's centre ~ N(0, spread^2 I), each point = its centre + N(0, I); spread 0.6 puts a component's
// points about as far from the nearest other component as from each other, so the input's 10-NN agreement is not 1.
#include <cblas.h>
#include <fmt/format.h>
#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "embrec/report/tsne.h"
#include "timing.h"

namespace {

using embrec::bench::Clock;
using embrec::bench::seconds_since;
namespace detail = embrec::report::tsne_detail;

struct Options {
  std::vector<int64_t> points{10000, 12101};
  int64_t dim = 64, components = 20;
  double spread = 0.6;
  std::vector<int64_t> threads{1, 2};
  embrec::report::TsneOptions tsne;
};

std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> values;
  std::stringstream stream(text);
  for (std::string item; std::getline(stream, item, ',');) values.push_back(std::stoll(item));
  return values;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i], value = argv[i + 1];
    if (name == "--points") o.points = parse_list(value);
    else if (name == "--dim") o.dim = std::stoll(value);
    else if (name == "--components") o.components = std::stoll(value);
    else if (name == "--spread") o.spread = std::stod(value);
    else if (name == "--threads") o.threads = parse_list(value);
    else if (name == "--iterations") o.tsne.iterations = std::stoi(value);
    else if (name == "--theta") o.tsne.theta = std::stod(value);
    else if (name == "--perplexity") o.tsne.perplexity = std::stod(value);
    else if (name == "--input-dims") o.tsne.input_dims = std::stoi(value);
    else {
      fmt::print(stderr, "bench_tsne: unknown option {}\n", name);
      std::exit(2);
    }
  }
  return o;
}

struct Mixture {
  std::vector<float> points;
  std::vector<int> labels;
};

Mixture mixture(int64_t n, const Options& o) {
  std::mt19937_64 random(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> centres(static_cast<size_t>(o.components * o.dim));
  for (double& c : centres) c = o.spread * normal(random);
  Mixture m;
  m.points.resize(static_cast<size_t>(n * o.dim));
  m.labels.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    m.labels[i] = static_cast<int>(i % o.components);
    for (int64_t d = 0; d < o.dim; ++d)
      m.points[i * o.dim + d] = static_cast<float>(centres[m.labels[i] * o.dim + d] + normal(random));
  }
  return m;
}

// Share of each point's 10 nearest neighbours (exact, in `points`) that share its label.
double agreement(const std::vector<float>& points, int64_t dim, const std::vector<int>& labels) {
  const int64_t n = static_cast<int64_t>(labels.size());
  const detail::Neighbours neighbours = detail::nearest_neighbours(points.data(), n, dim, 10);
  int64_t same = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t m = 0; m < 10; ++m) same += labels[neighbours.index[i * 10 + m]] == labels[i];
  return static_cast<double>(same) / static_cast<double>(10 * n);
}

// OpenMP threads for embrec's loops and, with OpenBLAS (its own thread pool), BLAS threads for the kNN's sgemm.
void set_threads(int64_t threads) {
  omp_set_num_threads(static_cast<int>(threads));
#ifdef OPENBLAS_VERSION
  openblas_set_num_threads(static_cast<int>(threads));
#endif
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  fmt::print("t-SNE on a mixture of {} Gaussians in {} dims (spread {}), perplexity {}, {} iterations, theta {}\n",
             o.components, o.dim, o.spread, o.tsne.perplexity, o.tsne.iterations, o.tsne.theta);
  fmt::print("| points | threads | kNN (k=90, {}-d) s | affinities s | t-SNE s | KL | 10-NN agreement map / input | "
             "same map as 1 thread |\n|---|---|---|---|---|---|---|---|\n",
             o.dim);
  for (int64_t n : o.points) {
    const Mixture m = mixture(n, o);
    const double input_agreement = agreement(m.points, o.dim, m.labels);
    std::vector<float> first_map;
    for (int64_t threads : o.threads) {
      set_threads(threads);
      auto start = Clock::now();
      const detail::Neighbours neighbours = detail::nearest_neighbours(m.points.data(), n, o.dim, 90);
      const double knn_seconds = seconds_since(start);
      start = Clock::now();
      const detail::SparseMatrix p = detail::input_affinities(m.points.data(), n, o.dim, o.tsne.perplexity);
      const double affinity_seconds = seconds_since(start);
      start = Clock::now();
      const std::vector<float> map = embrec::report::tsne(m.points.data(), n, o.dim, o.tsne);
      const double tsne_seconds = seconds_since(start);
      const std::vector<double> y(map.begin(), map.end());
      if (first_map.empty()) first_map = map;
      fmt::print("| {} | {} | {:.3f} | {:.3f} | {:.2f} | {:.3f} | {:.3f} / {:.3f} | {} |\n", n, threads, knn_seconds,
                 affinity_seconds, tsne_seconds, detail::kl_divergence(p, y.data(), n), agreement(map, 2, m.labels),
                 input_agreement, map == first_map ? "yes" : "no");
      std::fflush(stdout);
    }
  }
  return 0;
}
