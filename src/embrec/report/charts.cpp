// Line charts and scatter maps as SVG.
#include "embrec/report/charts.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace embrec::report {

namespace {

// The plot area inside a chart: margins leave room for tick labels (left, bottom), the title (top) and the legend
// (right).
struct Frame {
  double width = 640, height = 320, left = 64, right = 150, top = 40, bottom = 48;
  double low_x = 0, high_x = 1, low_y = 0, high_y = 1;
  double plot_width() const { return width - left - right; }
  double plot_height() const { return height - top - bottom; }
  double x(double value) const { return left + (value - low_x) / (high_x - low_x) * plot_width(); }
  double y(double value) const { return top + (1 - (value - low_y) / (high_y - low_y)) * plot_height(); }
};

// A range that is never empty, padded by `pad` of its width on each side.
void widen(double& low, double& high, double pad) {
  if (!(low <= high)) low = 0, high = 1;
  if (high - low < 1e-12) {
    const double half = std::max(1e-6, std::abs(low) * 0.05);
    low -= half, high += half;
  }
  const double margin = (high - low) * pad;
  low -= margin, high += margin;
}

std::string open_svg(const Frame& frame, const std::string& title) {
  return fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\" role=\"img\"><title>{2}</title>\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n<text x=\"{3}\" y=\"22\" font-size=\"14\" "
      "font-weight=\"bold\">{2}</text>\n",
      frame.width, frame.height, escape_xml(title), frame.left);
}

// Axes, grid lines, tick labels and axis titles.
std::string axes(const Frame& frame, const ChartLabels& labels, bool ticks) {
  const double bottom_y = frame.top + frame.plot_height(), right_x = frame.left + frame.plot_width();
  std::string svg = fmt::format(
      "<path d=\"M{0:.1f} {1:.1f}V{2:.1f}H{3:.1f}\" fill=\"none\" stroke=\"black\"/>\n", frame.left, frame.top,
      bottom_y, right_x);
  if (ticks) {
    for (double value : nice_ticks(frame.low_y, frame.high_y)) {
      const double y = frame.y(value);
      svg += fmt::format("<path d=\"M{0:.1f} {1:.1f}H{2:.1f}\" stroke=\"#ddd\"/><text x=\"{3:.1f}\" y=\"{4:.1f}\" "
                         "text-anchor=\"end\">{5:.4g}</text>\n",
                         frame.left, y, right_x, frame.left - 6, y + 4, value);
    }
    for (double value : nice_ticks(frame.low_x, frame.high_x, 5, labels.integer_x)) {
      const double x = frame.x(value);
      svg += fmt::format("<path d=\"M{0:.1f} {1:.1f}v5\" stroke=\"black\"/><text x=\"{0:.1f}\" y=\"{2:.1f}\" "
                         "text-anchor=\"middle\">{3:.4g}</text>\n",
                         x, bottom_y, bottom_y + 18, value);
    }
  }
  svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n",
                     frame.left + frame.plot_width() / 2, frame.height - 8, escape_xml(labels.x_axis));
  svg += fmt::format("<text transform=\"translate(14 {:.1f}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     frame.top + frame.plot_height() / 2, escape_xml(labels.y_axis));
  return svg;
}

// Room right of the plot for a legend of these entries: ~7 px per character at font size 12.
double legend_width(const std::vector<std::string>& labels) {
  size_t longest = 0;
  for (const std::string& label : labels) longest = std::max(longest, label.size());
  return std::min(320.0, 34.0 + 7.0 * static_cast<double>(longest));
}

// One legend row per entry, right of the plot: a swatch and its text.
std::string legend(const Frame& frame, const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string svg;
  const double x = frame.left + frame.plot_width() + 14;
  for (size_t i = 0; i < entries.size(); ++i) {
    const double y = frame.top + 4 + 18.0 * static_cast<double>(i);
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1f}\" "
                       "y=\"{:.1f}\">{}</text>\n",
                       x, y, entries[i].second, x + 15, y + 9, escape_xml(entries[i].first));
  }
  return svg;
}

}  // namespace

std::string escape_xml(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

const char* palette_colour(int64_t index) {
  // Tableau 10: distinguishable for the common colour-vision deficiencies.
  static const char* const colours[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                        "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return colours[((index % 10) + 10) % 10];
}

std::vector<double> nice_ticks(double low, double high, int count, bool integers) {
  if (!(high > low) || count < 1) return {low};
  const double raw = (high - low) / count, magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double residual = raw / magnitude;
  double step = magnitude * (residual < 1.5 ? 1 : residual < 3 ? 2 : residual < 7 ? 5 : 10);
  if (integers) step = std::max(1.0, step);
  std::vector<double> ticks;
  for (double value = std::ceil(low / step - 1e-9) * step; value <= high + step * 1e-9; value += step)
    ticks.push_back(std::abs(value) < step * 1e-9 ? 0.0 : value);
  return ticks;
}

std::string line_chart(const ChartLabels& labels, const std::vector<Series>& series, int width, int height) {
  Frame frame;
  frame.width = width, frame.height = height;
  std::vector<std::string> names;
  for (const Series& line : series) names.push_back(line.name);
  frame.right = legend_width(names);
  double low_x = std::numeric_limits<double>::infinity(), high_x = -low_x, low_y = low_x, high_y = -low_x;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      low_x = std::min(low_x, s.x[i]), high_x = std::max(high_x, s.x[i]);
      low_y = std::min(low_y, s.y[i]), high_y = std::max(high_y, s.y[i]);
    }
  const bool empty = !(low_x <= high_x);
  widen(low_x, high_x, 0.02);
  widen(low_y, high_y, 0.05);
  frame.low_x = low_x, frame.high_x = high_x, frame.low_y = low_y, frame.high_y = high_y;
  std::string svg = open_svg(frame, labels.title) + axes(frame, labels, !empty);
  if (empty) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
                       frame.left + frame.plot_width() / 2, frame.top + frame.plot_height() / 2);
  }
  std::vector<std::pair<std::string, std::string>> entries;
  for (size_t s = 0; s < series.size(); ++s) {
    const Series& line = series[s];
    const char* colour = palette_colour(static_cast<int64_t>(s));
    std::string path, dots;
    bool pen_down = false;
    for (size_t i = 0; i < line.x.size() && i < line.y.size(); ++i) {
      if (!std::isfinite(line.y[i])) {
        pen_down = false;
        continue;
      }
      const double x = frame.x(line.x[i]), y = frame.y(line.y[i]);
      path += fmt::format("{}{:.1f} {:.1f}", pen_down ? "L" : "M", x, y);
      dots += fmt::format("M{:.1f} {:.1f}h0", x, y);
      pen_down = true;
    }
    if (path.empty()) continue;
    svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n", path, colour);
    svg += fmt::format("<path d=\"{}\" stroke=\"{}\" stroke-width=\"5\" stroke-linecap=\"round\"/>\n", dots, colour);
    entries.emplace_back(line.name, colour);
  }
  return svg + legend(frame, entries) + "</svg>\n";
}

std::string scatter_map(const ChartLabels& labels, const std::vector<float>& points, const std::vector<int32_t>& category,
                        const std::vector<std::string>& names, int width, int height) {
  Frame frame;
  frame.width = width, frame.height = height;
  std::vector<std::string> labelled;
  for (const std::string& name : names) labelled.push_back(name + " (00000)");
  frame.right = legend_width(labelled);
  const size_t n = std::min(points.size() / 2, category.size());
  double low_x = std::numeric_limits<double>::infinity(), high_x = -low_x, low_y = low_x, high_y = -low_x;
  for (size_t i = 0; i < n; ++i) {
    low_x = std::min<double>(low_x, points[2 * i]), high_x = std::max<double>(high_x, points[2 * i]);
    low_y = std::min<double>(low_y, points[2 * i + 1]), high_y = std::max<double>(high_y, points[2 * i + 1]);
  }
  widen(low_x, high_x, 0.03);
  widen(low_y, high_y, 0.03);
  frame.low_x = low_x, frame.high_x = high_x, frame.low_y = low_y, frame.high_y = high_y;
  std::string svg = open_svg(frame, labels.title) + axes(frame, labels, /*ticks=*/false);
  // One path per category of zero-length round-capped segments: a dot per point at ~13 bytes, so a map of 12,000
  // items stays small enough to mail. "Other" (-1) is drawn first, underneath.
  const int64_t groups = static_cast<int64_t>(names.size());
  const double dot = n > 5000 ? 2.2 : n > 1000 ? 3.0 : 4.5;
  auto group_of = [&](size_t i) { return category[i] >= 0 && category[i] < groups ? category[i] : int64_t{-1}; };
  std::vector<int64_t> counts(static_cast<size_t>(groups + 1), 0);  // "other" at 0
  for (size_t i = 0; i < n; ++i) ++counts[static_cast<size_t>(group_of(i) + 1)];
  std::vector<int64_t> order;  // groups by size, largest first: drawn underneath
  for (int64_t g = -1; g < groups; ++g)
    if (counts[static_cast<size_t>(g + 1)] > 0) order.push_back(g);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return counts[static_cast<size_t>(a + 1)] > counts[static_cast<size_t>(b + 1)]; });
  for (int64_t g : order) {
    std::string path;
    for (size_t i = 0; i < n; ++i)
      if (group_of(i) == g) path += fmt::format("M{:.1f} {:.1f}h0", frame.x(points[2 * i]), frame.y(points[2 * i + 1]));
    svg += fmt::format("<path d=\"{}\" stroke=\"{}\" stroke-width=\"{}\" stroke-linecap=\"round\" opacity=\"0.8\"/>\n",
                       path, g < 0 ? "#bbbbbb" : palette_colour(g), dot);
  }
  // The legend in category order, "other" last.
  std::vector<std::pair<std::string, std::string>> entries;
  for (int64_t g = 0; g <= groups; ++g) {
    const int64_t group = g < groups ? g : -1;
    const int64_t count = counts[static_cast<size_t>(group + 1)];
    if (count > 0)
      entries.emplace_back(fmt::format("{} ({})", group < 0 ? "other" : names[group], count),
                           group < 0 ? "#bbbbbb" : palette_colour(group));
  }
  return svg + legend(frame, entries) + "</svg>\n";
}

}  // namespace embrec::report
