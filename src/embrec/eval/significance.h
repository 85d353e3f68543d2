// Is one run better than another on the same users? A paired comparison over users of one metric: the paired t-test
// and the Wilcoxon signed-rank test (the two a reviewer asks for), with a confidence interval of the mean difference.
// The users' values come from two runs' per-user files (eval/per_user.h) on the same data and split.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace embrec::eval {

struct PairedTest {
  int64_t users = 0;                 // pairs
  double mean_a = 0, mean_b = 0;
  double mean_difference = 0;        // mean of b - a
  double sd_difference = 0;          // sample standard deviation (n - 1) of b - a
  double confidence = 0.95;
  double ci_low = 0, ci_high = 0;    // Student-t interval of the mean difference
  double t = 0;                      // mean / (sd / sqrt(n)), n - 1 degrees of freedom
  double t_p = 1;                    // two-sided
  int64_t nonzero = 0;               // pairs whose difference is not zero (Wilcoxon drops the others)
  double wilcoxon_w = 0;             // sum of the ranks of |b - a| of the positive differences (ties: average ranks)
  double wilcoxon_z = 0;             // normal approximation with the tie correction, no continuity correction
  double wilcoxon_p = 1;             // two-sided
};

// a[i] and b[i] are one user's values in the two runs; at least two pairs, the same count, all finite (an Error
// otherwise). A difference of exactly zero everywhere gives t = 0, p = 1.
PairedTest paired_test(const std::vector<double>& a, const std::vector<double>& b, double confidence = 0.95);

// The result in a few lines: means, difference (relative too), interval, both tests.
std::string describe(const PairedTest& test, const std::string& name_a, const std::string& name_b);

}  // namespace embrec::eval
