#include "embrec/eval/significance.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <numeric>

#include "embrec/util/error.h"

namespace embrec::eval {

namespace {

// Two-sided p of a standard normal deviate.
double normal_two_sided(double z) { return std::erfc(std::abs(z) / std::sqrt(2.0)); }

void wilcoxon(const std::vector<double>& difference, PairedTest& out) {
  std::vector<double> magnitude;
  std::vector<bool> positive;
  for (double d : difference) {
    if (d == 0.0) continue;
    magnitude.push_back(std::abs(d));
    positive.push_back(d > 0);
  }
  const int64_t n = static_cast<int64_t>(magnitude.size());
  out.nonzero = n;
  if (n == 0) return;  // no evidence either way: W = 0, z = 0, p = 1
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return magnitude[x] < magnitude[y]; });
  double w = 0, ties = 0;
  for (int64_t begin = 0; begin < n;) {
    int64_t end = begin;
    while (end < n && magnitude[order[end]] == magnitude[order[begin]]) ++end;
    const double rank = (begin + 1 + end) / 2.0;  // the average of ranks begin+1 .. end
    for (int64_t i = begin; i < end; ++i)
      if (positive[order[i]]) w += rank;
    const double t = static_cast<double>(end - begin);
    ties += t * t * t - t;
    begin = end;
  }
  const double dn = static_cast<double>(n);
  const double mean = dn * (dn + 1) / 4;
  const double variance = dn * (dn + 1) * (2 * dn + 1) / 24 - ties / 48;
  out.wilcoxon_w = w;
  out.wilcoxon_z = variance > 0 ? (w - mean) / std::sqrt(variance) : 0.0;
  out.wilcoxon_p = normal_two_sided(out.wilcoxon_z);
}

}  // namespace

PairedTest paired_test(const std::vector<double>& a, const std::vector<double>& b, double confidence) {
  if (a.size() != b.size()) fail("paired test: {} values against {}: each user needs one value in each run", a.size(), b.size());
  if (a.size() < 2) fail("paired test: {} pair(s): at least 2 users are needed", a.size());
  if (!(confidence > 0 && confidence < 1)) fail("paired test: confidence {} is not in (0, 1)", confidence);
  PairedTest out;
  out.users = static_cast<int64_t>(a.size());
  out.confidence = confidence;
  const double n = static_cast<double>(a.size());
  std::vector<double> difference(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) fail("paired test: pair {} is not finite ({}, {})", i + 1, a[i], b[i]);
    out.mean_a += a[i];
    out.mean_b += b[i];
    difference[i] = b[i] - a[i];
  }
  out.mean_a /= n;
  out.mean_b /= n;
  out.mean_difference = std::accumulate(difference.begin(), difference.end(), 0.0) / n;
  double squares = 0;
  for (double d : difference) squares += (d - out.mean_difference) * (d - out.mean_difference);
  out.sd_difference = std::sqrt(squares / (n - 1));
  const double se = out.sd_difference / std::sqrt(n);
  const boost::math::students_t distribution(n - 1);
  const double half = boost::math::quantile(boost::math::complement(distribution, (1 - confidence) / 2)) * se;
  out.ci_low = out.mean_difference - half;
  out.ci_high = out.mean_difference + half;
  if (se > 0) {
    out.t = out.mean_difference / se;
    out.t_p = 2 * boost::math::cdf(boost::math::complement(distribution, std::abs(out.t)));
  } else if (out.mean_difference != 0) {  // every user moved by the same amount: certain
    out.t = std::copysign(std::numeric_limits<double>::infinity(), out.mean_difference);
    out.t_p = 0;
  }
  wilcoxon(difference, out);
  return out;
}

std::string describe(const PairedTest& test, const std::string& name_a, const std::string& name_b) {
  const std::string relative =
      test.mean_a != 0 ? fmt::format(" ({:+.1f} %)", 100 * test.mean_difference / test.mean_a) : std::string();
  return fmt::format(
      "  A {}: {:.4f}\n  B {}: {:.4f}\n  B - A: {:+.4f}{}, {:.0f} % interval [{:+.4f}, {:+.4f}]\n"
      "  paired t-test: t = {:.3f}, p = {:.3g} ({} degrees of freedom)\n"
      "  Wilcoxon signed-rank: z = {:.3f}, p = {:.3g} ({} users with a nonzero difference)\n",
      name_a, test.mean_a, name_b, test.mean_b, test.mean_difference, relative, 100 * test.confidence, test.ci_low,
      test.ci_high, test.t, test.t_p, test.users - 1, test.wilcoxon_z, test.wilcoxon_p, test.nonzero);
}

}  // namespace embrec::eval
