// `embrec report`: run folders turned into one self-contained page -- a run's metrics, curves, clusters and t-SNE
// maps of its item and user vectors, or a comparison of several runs. The model is loaded here (for its vectors
// and clusters); everything drawn is built by report/ from plain numbers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "embrec/report/page.h"
#include "embrec/report/tsne.h"

namespace embrec::train {

struct ReportOptions {
  std::string out;                  // default: RUN/report.html (.md) for one run, report.html (.md) for several
  report::Format format = report::Format::Html;
  std::string baseline;             // comparison: the run folder the others are compared with (default: the first)
  bool maps = true;                 // t-SNE maps of the item and user vectors (one run)
  int64_t map_items = 0;            // items in the item maps; 0 = all
  int64_t map_users = 3000;         // users sampled for the user maps
  std::string item_attributes;      // colour items by attribute: a file read by data::read_item_attributes
  std::string item_map;             // for movies.dat / u.item: `item<TAB>movie_id`
  report::TsneOptions tsne;         // perplexity, iterations, seed
};

// Writes the report of `run_dirs` (one: a run page; several: a comparison page) and returns the path written.
std::string write_report(const std::vector<std::string>& run_dirs, const ReportOptions& options);

// The run page of one folder, maps included when options.maps (exposed for tests).
report::RunPage make_run_page(const std::string& run_dir, const ReportOptions& options);

}  // namespace embrec::train
