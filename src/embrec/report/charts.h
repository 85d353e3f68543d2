// Charts as inline SVG for the report pages: line charts (training curves) and scatter maps (t-SNE of embeddings),
// each with axes, tick labels, axis titles and a legend. Self-contained markup (no scripts, no external fonts) that
// also parses as XML.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace embrec::report {

// Text for an XML/HTML text node or attribute value: & < > " ' escaped.
std::string escape_xml(const std::string& text);

// The colour of series or category `index` (a fixed, colour-blind-friendly palette; repeats after 10).
const char* palette_colour(int64_t index);

// About `count` round tick values covering [low, high] (1, 2 or 5 times a power of ten apart; at least 1 apart
// when `integers`).
std::vector<double> nice_ticks(double low, double high, int count = 5, bool integers = false);

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; NaN y values are gaps
};

struct ChartLabels {
  std::string title;
  std::string x_axis;  // e.g. "epoch"
  std::string y_axis;  // e.g. "valid ndcg@20"
  bool integer_x = false;  // x ticks at whole numbers only (epochs)
};

// Lines with point markers, one colour per series, legend in the top right. Empty series are skipped; no series
// at all gives a chart that says "no data".
std::string line_chart(const ChartLabels& labels, const std::vector<Series>& series, int width = 640,
                       int height = 320);

// A 2-D map: points [n x 2] row-major, each drawn in the colour of its category (category[i] indexes names; -1 =
// "other", grey). Larger categories are drawn first, so small ones stay visible on top. The legend gives each
// category's name and count. Axes are unitless (t-SNE coordinates).
std::string scatter_map(const ChartLabels& labels, const std::vector<float>& points, const std::vector<int32_t>& category,
                        const std::vector<std::string>& names, int width = 560, int height = 480);

}  // namespace embrec::report
