// Cluster histograms as JSON and SVG.
#include "embrec/report/cluster_histogram.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "embrec/util/error.h"

namespace embrec::report {

double ClusterHistogram::head_rate(int64_t cluster) const {
  const int64_t total = head[cluster] + tail[cluster];
  return total == 0 ? 0.0 : static_cast<double>(head[cluster]) / static_cast<double>(total);
}

nlohmann::json ClusterHistogram::to_json() const {
  nlohmann::json clusters = nlohmann::json::array();
  for (size_t k = 0; k < head.size(); ++k)
    clusters.push_back({{"cluster", k}, {"head", head[k]}, {"tail", tail[k]}, {"head_rate", head_rate(k)}});
  const int64_t used = std::count_if(head.begin(), head.end(), [&, k = size_t{0}](int64_t) mutable {
    const bool non_empty = head[k] + tail[k] > 0;
    ++k;
    return non_empty;
  });
  return {{"clusters", clusters}, {"non_empty_clusters", used}};
}

ClusterHistogram cluster_histogram(const std::vector<int32_t>& assignment, const std::vector<uint8_t>& is_head,
                                   int64_t cluster_count) {
  if (assignment.size() != is_head.size())
    fail("cluster_histogram: {} assignments but {} head flags", assignment.size(), is_head.size());
  ClusterHistogram histogram;
  histogram.head.assign(cluster_count, 0);
  histogram.tail.assign(cluster_count, 0);
  for (size_t u = 0; u < assignment.size(); ++u) {
    const int32_t k = assignment[u];
    if (k < 0) continue;
    if (k >= cluster_count) fail("cluster_histogram: user {} assigned to cluster {} of {}", u, k, cluster_count);
    ++(is_head[u] ? histogram.head : histogram.tail)[k];
  }
  return histogram;
}

std::string cluster_histogram_svg(const ClusterHistogram& histogram, const std::string& title) {
  const int64_t clusters = static_cast<int64_t>(histogram.head.size());
  const double head_total = std::max<double>(1, std::accumulate(histogram.head.begin(), histogram.head.end(), 0.0));
  const double tail_total = std::max<double>(1, std::accumulate(histogram.tail.begin(), histogram.tail.end(), 0.0));
  std::vector<int64_t> order(clusters);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return histogram.head_rate(a) < histogram.head_rate(b); });
  double top = 1e-9;
  for (int64_t k = 0; k < clusters; ++k)
    top = std::max({top, histogram.head[k] / head_total, histogram.tail[k] / tail_total});

  const double width = 900, height = 420, left = 60, right = 20, plot_top = 50, bottom = 60;
  const double plot_width = width - left - right, plot_height = height - plot_top - bottom;
  const double slot = plot_width / std::max<int64_t>(1, clusters);
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"22\" font-size=\"15\">{}</text>\n",
      width, height, left, title);
  // Axes and y ticks (share of the group's users).
  svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", left, plot_top,
                     plot_top + plot_height);
  svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"black\"/>\n", left,
                     plot_top + plot_height, left + plot_width);
  for (int tick = 0; tick <= 4; ++tick) {
    const double value = top * tick / 4, y = plot_top + plot_height * (1 - tick / 4.0);
    svg += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.1f}%</text>\n", left - 6, y + 4,
                       100 * value);
  }
  for (int64_t i = 0; i < clusters; ++i) {
    const int64_t k = order[i];
    const double head_share = histogram.head[k] / head_total, tail_share = histogram.tail[k] / tail_total;
    const double x = left + i * slot, bar = std::max(0.5, slot * 0.42);
    const double head_height = plot_height * head_share / top, tail_height = plot_height * tail_share / top;
    svg += fmt::format(
        "<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"#d62728\"><title>cluster {}: "
        "{} head users</title></rect>\n",
        x + slot * 0.06, plot_top + plot_height - head_height, bar, head_height, k, histogram.head[k]);
    svg += fmt::format(
        "<rect x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" height=\"{:.2f}\" fill=\"#1f77b4\"><title>cluster {}: "
        "{} tail users</title></rect>\n",
        x + slot * 0.5, plot_top + plot_height - tail_height, bar, tail_height, k, histogram.tail[k]);
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">clusters ({}), ordered by head rate</text>\n",
                     left + plot_width / 2, height - 25, clusters);
  svg += fmt::format(
      "<rect x=\"{0}\" y=\"32\" width=\"10\" height=\"10\" fill=\"#d62728\"/><text x=\"{1}\" y=\"41\">share of head "
      "users</text><rect x=\"{2}\" y=\"32\" width=\"10\" height=\"10\" fill=\"#1f77b4\"/><text x=\"{3}\" y=\"41\">"
      "share of tail users</text>\n",
      width - 330, width - 315, width - 170, width - 155);
  svg += "</svg>\n";
  return svg;
}

}  // namespace embrec::report
