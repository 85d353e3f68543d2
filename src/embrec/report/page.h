// The report pages: one self-contained HTML file per run or per comparison of runs (inline SVG and CSS, no scripts,
// no external fonts; it also parses as XML), or the same tables as Markdown for a README or a paper draft.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "embrec/eval/evaluator.h"
#include "embrec/report/run_record.h"

namespace embrec::report {

enum class Format { Html, Markdown };
inline const Names<Format> kFormatNames = {{"html", Format::Html}, {"md", Format::Markdown}};

// A 2-D map of embeddings (t-SNE) with a category per point, e.g. items by popularity decile.
struct EmbeddingMap {
  std::string title;
  std::vector<float> points;       // [n x 2]
  std::vector<int32_t> category;   // [n], indexes names; -1 = other
  std::vector<std::string> names;
};

struct RunPage {
  RunRecord run;
  std::vector<EmbeddingMap> maps;
  std::optional<eval::EvalResult> by_cluster;  // test metrics per cluster ("cluster 3", ...) for models with clusters
  std::vector<std::string> notes;             // what the page could not show, and why
};

std::string run_page(const RunPage& page, Format format);

// The metric table of the papers: rows dataset x metric@k, columns runs (a run's test value for "all" users where
// the run is on that row's dataset, else NaN), the best value of each row, and relative differences to a baseline.
struct ComparisonRow {
  std::string dataset, metric;
  std::vector<double> values;  // one per run
  int64_t best = -1;           // the run with the best value (lowest for rmse/mae), -1 when the row is empty
};

struct Comparison {
  std::vector<std::string> runs;  // column names
  std::vector<ComparisonRow> rows;
  int64_t baseline = -1;          // the run relative differences are taken against; -1 = none

  // (value - baseline) / baseline for row r and run c; NaN when either is missing or the baseline is 0.
  double relative(size_t row, size_t run) const;
};

Comparison compare_runs(const std::vector<RunRecord>& runs, int64_t baseline);
std::string comparison_page(const std::vector<RunRecord>& runs, const Comparison& comparison, Format format);

}  // namespace embrec::report
