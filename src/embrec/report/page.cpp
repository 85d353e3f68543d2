// Run and comparison pages as HTML or Markdown.
#include "embrec/report/page.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "embrec/eval/metrics.h"
#include "embrec/report/charts.h"

namespace embrec::report {

namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

const char* kStyle =
    "body{font-family:sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;"
    "white-space:nowrap}"
    "th{background:#f3f3f3}td.name,th.name{text-align:left}td.best{font-weight:bold;background:#e8f4e8}"
    "span.rel{color:#666;font-size:0.85em}.meta{color:#555}.charts{display:flex;flex-wrap:wrap;gap:12px}"
    "pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:0.85em}.note{color:#a33}.wide{overflow-x:auto}";

std::string html_open(const std::string& title) {
  return fmt::format(
      "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><head><meta charset=\"utf-8\"/>"
      "<title>{0}</title><style>{1}</style></head>\n<body>\n<h1>{0}</h1>\n",
      escape_xml(title), kStyle);
}

double value_of(const eval::GroupMetrics& group, const std::string& key) {
  auto it = group.values.find(key);
  return it == group.values.end() ? kMissing : it->second;
}

std::string number(double value) { return std::isnan(value) ? "-" : fmt::format("{:.4f}", value); }

// Rows metric@k, columns the result's groups (all, head, tail, ...).
std::string metric_table(const eval::EvalResult& result, const eval::EvalConfig& config, Format format) {
  const std::vector<std::string> keys = result.row_keys(config.ks, config.metrics);
  std::string out;
  if (format == Format::Html) {
    out = "<table><tr><th class=\"name\">metric</th>";
    for (size_t g = 0; g < result.groups.size(); ++g)
      out += fmt::format("<th>{} (n={})</th>", escape_xml(result.group_names[g]), result.groups[g].users);
    out += "</tr>\n";
    for (const std::string& key : keys) {
      out += "<tr><td class=\"name\">" + escape_xml(key) + "</td>";
      for (const eval::GroupMetrics& group : result.groups) out += "<td>" + number(value_of(group, key)) + "</td>";
      out += "</tr>\n";
    }
    return out + "</table>\n";
  }
  out = "| metric |";
  for (size_t g = 0; g < result.groups.size(); ++g)
    out += fmt::format(" {} (n={}) |", result.group_names[g], result.groups[g].users);
  out += "\n|---|";
  for (size_t g = 0; g < result.groups.size(); ++g) out += "---:|";
  out += "\n";
  for (const std::string& key : keys) {
    out += "| " + key + " |";
    for (const eval::GroupMetrics& group : result.groups) out += " " + number(value_of(group, key)) + " |";
    out += "\n";
  }
  return out;
}

// A series over the epochs of one run: `pick` returns the epoch's value or NaN.
template <typename Pick>
Series epoch_series(const std::string& name, const RunRecord& run, Pick pick) {
  Series series{name, {}, {}};
  for (const EpochRecord& epoch : run.epochs) {
    series.x.push_back(static_cast<double>(epoch.epoch));
    series.y.push_back(pick(epoch));
  }
  return series;
}

double valid_value(const EpochRecord& epoch, const std::string& key) {
  auto it = epoch.valid.find(key);
  return it == epoch.valid.end() ? kMissing : it->second;
}

// The validation curve, the loss and each loss part, and the epoch times of one run.
std::string run_curves(const RunRecord& run) {
  const std::string& select = run.eval_config.select;
  std::string html = "<div class=\"charts\">\n";
  html += line_chart({"validation " + select, "epoch", select, true},
                     {epoch_series("valid " + select, run, [&](const EpochRecord& e) { return valid_value(e, select); })});
  html += line_chart({"training loss", "epoch", "loss (mean per sequence)", true},
                     {epoch_series("total", run, [](const EpochRecord& e) { return e.loss; })});
  std::set<std::string> parts;
  for (const EpochRecord& epoch : run.epochs)
    for (const auto& [name, value] : epoch.parts) parts.insert(name);
  if (parts.size() > 1) {
    for (const std::string& part : parts) {
      html += line_chart({"loss part " + part, "epoch", part + " (unweighted)", true},
                         {epoch_series(part, run, [&](const EpochRecord& e) {
                           auto it = e.parts.find(part);
                           return it == e.parts.end() ? kMissing : it->second;
                         })},
                         400, 260);
    }
  }
  html += line_chart({"time per epoch", "epoch", "seconds", true},
                     {epoch_series("train", run, [](const EpochRecord& e) { return e.seconds; })}, 400, 260);
  return html + "</div>\n";
}

std::string cluster_section(const RunPage& page) {
  std::string html;
  if (!page.run.clusters_svg.empty()) {
    std::string svg = page.run.clusters_svg;
    if (svg.rfind("<?xml", 0) == 0) svg.erase(0, svg.find("?>") + 2);
    html += "<h2>Clusters of head and tail users</h2>\n" + svg;
  }
  if (page.by_cluster) {
    const eval::EvalResult& result = *page.by_cluster;
    const std::string select = page.run.eval_config.select;
    html += fmt::format("<details><summary>Test {} per cluster ({} clusters with test users)</summary>\n<table><tr>"
                        "<th class=\"name\">cluster</th><th>users</th><th>{}</th></tr>\n",
                        escape_xml(select), result.groups.size() - 1, escape_xml(select));
    for (size_t g = 1; g < result.groups.size(); ++g)
      html += fmt::format("<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td></tr>\n",
                          escape_xml(result.group_names[g]), result.groups[g].users,
                          number(value_of(result.groups[g], select)));
    html += "</table></details>\n";
  }
  return html;
}

std::string run_html(const RunPage& page) {
  const RunRecord& run = page.run;
  std::string html = html_open(fmt::format("{} on {}", run.model, run.dataset));
  html += fmt::format("<p class=\"meta\">run folder <code>{}</code>; best epoch {} of {}; {:.1f} s training</p>\n",
                      escape_xml(run.dir), run.best_epoch, run.epochs_run, run.train_seconds);
  for (const std::string& note : page.notes) html += "<p class=\"note\">" + escape_xml(note) + "</p>\n";
  html += "<h2>Test metrics</h2>\n" + metric_table(run.test, run.eval_config, Format::Html);
  html += "<p class=\"meta\">" + escape_xml(run.test.repeat_summary()) + "</p>\n";
  html += "<h2>Validation metrics (best epoch)</h2>\n" +
          metric_table(run.valid, run.eval_config, Format::Html);
  if (!run.epochs.empty()) html += "<h2>Training curves</h2>\n" + run_curves(run);
  html += cluster_section(page);
  if (!page.maps.empty()) {
    html += "<h2>Embedding maps (t-SNE)</h2>\n<div class=\"charts\">\n";
    for (const EmbeddingMap& map : page.maps)
      html += scatter_map({map.title, "t-SNE 1", "t-SNE 2"}, map.points, map.category, map.names);
    html += "</div>\n";
  }
  html += "<h2>Configuration</h2>\n<details><summary>The resolved config of the run</summary><pre>" +
          escape_xml(run.config_toml) + "</pre></details>\n";
  return html + "</body></html>\n";
}

std::string run_markdown(const RunPage& page) {
  const RunRecord& run = page.run;
  std::string md = fmt::format("## {} on {}\n\nRun folder `{}`; best epoch {} of {}; {:.1f} s training.\n\n",
                               run.model, run.dataset, run.dir, run.best_epoch, run.epochs_run, run.train_seconds);
  md += "Test metrics:\n\n" + metric_table(run.test, run.eval_config, Format::Markdown);
  md += "\n" + run.test.repeat_summary() + "\n\nValidation metrics (best epoch):\n\n" +
        metric_table(run.valid, run.eval_config, Format::Markdown);
  return md;
}

// A comparison cell: the value, bold when best, and its difference to the baseline.
std::string comparison_cell(const Comparison& comparison, size_t r, size_t c, Format format) {
  const ComparisonRow& row = comparison.rows[r];
  const double value = row.values[c];
  const bool best = static_cast<int64_t>(c) == row.best;
  const double relative = comparison.relative(r, c);
  const bool show_relative = !std::isnan(relative) && static_cast<int64_t>(c) != comparison.baseline;
  if (format == Format::Html) {
    std::string cell = best ? "<td class=\"best\">" : "<td>";
    cell += number(value);
    if (show_relative) cell += fmt::format(" <span class=\"rel\">({:+.1f} %)</span>", 100 * relative);
    return cell + "</td>";
  }
  std::string cell = best ? "**" + number(value) + "**" : number(value);
  if (show_relative) cell += fmt::format(" ({:+.1f} %)", 100 * relative);
  return " " + cell + " |";
}

std::string comparison_table(const Comparison& comparison, Format format) {
  std::string out;
  const bool html = format == Format::Html;
  out = html ? "<table><tr><th class=\"name\">dataset</th><th class=\"name\">metric</th>" : "| dataset | metric |";
  for (size_t c = 0; c < comparison.runs.size(); ++c) {
    const std::string name = comparison.runs[c] + (static_cast<int64_t>(c) == comparison.baseline ? " (baseline)" : "");
    out += html ? "<th>" + escape_xml(name) + "</th>" : " " + name + " |";
  }
  out += html ? "</tr>\n" : "\n|---|---|";
  if (!html) {
    for (size_t c = 0; c < comparison.runs.size(); ++c) out += "---:|";
    out += "\n";
  }
  for (size_t r = 0; r < comparison.rows.size(); ++r) {
    const ComparisonRow& row = comparison.rows[r];
    out += html ? fmt::format("<tr><td class=\"name\">{}</td><td class=\"name\">{}</td>", escape_xml(row.dataset),
                              escape_xml(row.metric))
                : fmt::format("| {} | {} |", row.dataset, row.metric);
    for (size_t c = 0; c < row.values.size(); ++c) out += comparison_cell(comparison, r, c, format);
    out += html ? "</tr>\n" : "\n";
  }
  return out + (html ? "</table>\n" : "");
}

// Each run's validation curve, loss and epoch time, overlaid.
std::string comparison_curves(const std::vector<RunRecord>& runs) {
  std::vector<Series> valid, loss, seconds;
  for (const RunRecord& run : runs) {
    const std::string& select = run.eval_config.select;
    valid.push_back(epoch_series(run.name + " " + select, run, [&](const EpochRecord& e) { return valid_value(e, select); }));
    loss.push_back(epoch_series(run.name, run, [](const EpochRecord& e) { return e.loss; }));
    seconds.push_back(epoch_series(run.name, run, [](const EpochRecord& e) { return e.seconds; }));
  }
  return "<div class=\"charts\">\n" + line_chart({"validation curves", "epoch", "valid metric (each run's select)", true}, valid) +
         line_chart({"training loss", "epoch", "loss (mean per sequence)", true}, loss) +
         line_chart({"time per epoch", "epoch", "seconds", true}, seconds) + "</div>\n";
}

}  // namespace

std::string run_page(const RunPage& page, Format format) {
  return format == Format::Html ? run_html(page) : run_markdown(page);
}

double Comparison::relative(size_t row, size_t run) const {
  if (baseline < 0) return kMissing;
  const double base = rows[row].values[static_cast<size_t>(baseline)], value = rows[row].values[run];
  if (std::isnan(base) || std::isnan(value) || base == 0) return kMissing;
  return (value - base) / base;
}

Comparison compare_runs(const std::vector<RunRecord>& runs, int64_t baseline) {
  Comparison comparison;
  comparison.baseline = baseline;
  std::vector<std::string> datasets;
  for (const RunRecord& run : runs) {
    comparison.runs.push_back(run.name);
    if (std::find(datasets.begin(), datasets.end(), run.dataset) == datasets.end()) datasets.push_back(run.dataset);
  }
  for (const std::string& dataset : datasets) {
    // The rows of a dataset: the metric@k of its first run's config (the papers' layout: HR@5, HR@10, ...).
    const RunRecord& first = *std::find_if(runs.begin(), runs.end(), [&](const RunRecord& r) { return r.dataset == dataset; });
    for (const std::string& key : first.test.row_keys(first.eval_config.ks, first.eval_config.metrics)) {
      ComparisonRow row{dataset, key, {}, -1};
      const bool lower = eval::lower_is_better(key);
      for (size_t c = 0; c < runs.size(); ++c) {
        const double value =
            runs[c].dataset == dataset && !runs[c].test.groups.empty() ? value_of(runs[c].test.all(), key) : kMissing;
        row.values.push_back(value);
        if (std::isnan(value)) continue;
        const double best = row.best < 0 ? kMissing : row.values[static_cast<size_t>(row.best)];
        if (row.best < 0 || (lower ? value < best : value > best)) row.best = static_cast<int64_t>(c);
      }
      comparison.rows.push_back(std::move(row));
    }
  }
  return comparison;
}

std::string comparison_page(const std::vector<RunRecord>& runs, const Comparison& comparison, Format format) {
  if (format == Format::Markdown)
    return "Test metrics, all users (best of each row in bold; in brackets the difference to the baseline):\n\n" +
           comparison_table(comparison, format);
  std::string html = html_open(fmt::format("Comparison of {} runs", runs.size()));
  html += "<p class=\"meta\">Test metrics over all users; the best value of each row is marked";
  if (comparison.baseline >= 0)
    html += fmt::format(", and each value's difference to the baseline <code>{}</code> is in brackets",
                        escape_xml(comparison.runs[static_cast<size_t>(comparison.baseline)]));
  html += ".</p>\n<div class=\"wide\">" + comparison_table(comparison, format) + "</div>\n<h2>Curves</h2>\n" +
          comparison_curves(runs);
  html += "<h2>Runs</h2>\n<table><tr><th class=\"name\">run</th><th class=\"name\">model</th><th class=\"name\">"
          "dataset</th><th>best epoch</th><th>epochs</th><th>train s</th><th class=\"name\">folder</th></tr>\n";
  for (const RunRecord& run : runs)
    html += fmt::format("<tr><td class=\"name\">{}</td><td class=\"name\">{}</td><td class=\"name\">{}</td><td>{}</td>"
                        "<td>{}</td><td>{:.1f}</td><td class=\"name\"><code>{}</code></td></tr>\n",
                        escape_xml(run.name), escape_xml(run.model), escape_xml(run.dataset), run.best_epoch,
                        run.epochs_run, run.train_seconds, escape_xml(run.dir));
  return html + "</table>\n</body></html>\n";
}

}  // namespace embrec::report
