// Run folders -> report pages: the model's vectors mapped by t-SNE, clusters evaluated per cluster, files written.
#include "embrec/train/run_report.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>

#include "embrec/data/item_attributes.h"
#include "embrec/models/evaluate.h"
#include "embrec/train/run_folder.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "embrec/util/progress.h"

namespace embrec::train {

namespace {

namespace fs = std::filesystem;

constexpr int32_t kMapCategories = 9;  // the most frequent categories get a colour each, the rest are "other"

// A t-SNE map of `count` rows of `vectors` (row-major, `dim` wide), with a progress bar.
std::vector<float> map_of(const std::vector<float>& vectors, int64_t count, int64_t dim, const std::string& what,
                          report::TsneOptions options) {
  Progress progress("t-SNE of " + what, options.iterations, "step");
  options.progress = [&progress, done = 0](int now, int) mutable {
    progress.advance(now - done, now - done, "");
    done = now;
  };
  std::vector<float> points = report::tsne(vectors.data(), count, dim, options);
  progress.finish(fmt::format("{} points", count));
  return points;
}

// Up to `limit` ids of 0..total-1 (all when limit <= 0 or >= total), a seeded sample kept in id order.
std::vector<int32_t> sample_ids(int32_t total, int64_t limit, uint64_t seed) {
  std::vector<int32_t> ids(static_cast<size_t>(total));
  std::iota(ids.begin(), ids.end(), 0);
  if (limit <= 0 || limit >= total) return ids;
  std::mt19937_64 random(seed);
  std::shuffle(ids.begin(), ids.end(), random);
  ids.resize(static_cast<size_t>(limit));
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Rows `ids` of a [rows x dim] tensor-sized float array.
std::vector<float> gather_rows(const float* rows, int64_t dim, const std::vector<int32_t>& ids) {
  std::vector<float> out(ids.size() * static_cast<size_t>(dim));
  for (size_t i = 0; i < ids.size(); ++i) std::copy_n(rows + static_cast<int64_t>(ids[i]) * dim, dim, out.data() + i * dim);
  return out;
}

// Categories by the most frequent labels: the kMapCategories most common get 0.., the rest -1.
void top_categories(const std::vector<std::string>& labels, report::EmbeddingMap& map) {
  std::map<std::string, int64_t> counts;
  for (const std::string& label : labels)
    if (!label.empty()) ++counts[label];
  std::vector<std::pair<int64_t, std::string>> ranked;
  for (const auto& [label, count] : counts) ranked.emplace_back(-count, label);
  std::sort(ranked.begin(), ranked.end());
  std::map<std::string, int32_t> index;
  for (size_t i = 0; i < ranked.size() && i < static_cast<size_t>(kMapCategories); ++i) {
    index[ranked[i].second] = static_cast<int32_t>(i);
    map.names.push_back(ranked[i].second);
  }
  for (const std::string& label : labels) {
    auto it = index.find(label);
    map.category.push_back(it == index.end() ? -1 : it->second);
  }
}

// Item maps: by popularity decile of the training interactions, and by attribute when a file is given.
void add_item_maps(Experiment& experiment, const ReportOptions& options, report::RunPage& page) {
  // Read first: a wrong attribute file fails before the t-SNE's seconds, not after them.
  const data::ItemAttributes attributes = options.item_attributes.empty()
                                              ? data::ItemAttributes{}
                                              : data::read_item_attributes(options.item_attributes, options.item_map);
  models::Model& model = *experiment.model;
  const int32_t items = experiment.data.dataset.item_count();
  const torch::Tensor vectors = model.item_vectors().contiguous();
  const int64_t dim = vectors.size(1);
  const std::vector<int32_t> ids = sample_ids(items, options.map_items, options.tsne.seed);
  const std::vector<float> points =
      map_of(gather_rows(vectors.data_ptr<float>(), dim, ids), static_cast<int64_t>(ids.size()), dim, "items",
             options.tsne);
  std::vector<int64_t> counts(static_cast<size_t>(items), 0);
  for (int32_t item : experiment.data.split.train.items) ++counts[item];
  std::vector<int32_t> order(static_cast<size_t>(items));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return counts[a] > counts[b]; });
  std::vector<int32_t> decile(static_cast<size_t>(items));
  for (int32_t rank = 0; rank < items; ++rank) decile[order[rank]] = static_cast<int32_t>(int64_t{rank} * 10 / items);
  report::EmbeddingMap by_popularity{fmt::format("{} items by popularity decile", ids.size()), points, {}, {}};
  for (int d = 0; d < 10; ++d)
    by_popularity.names.push_back(d == 0 ? "decile 1 (most popular)" : d == 9 ? "decile 10 (least)"
                                                                              : fmt::format("decile {}", d + 1));
  for (int32_t item : ids) by_popularity.category.push_back(decile[item]);
  page.maps.push_back(std::move(by_popularity));
  if (options.item_attributes.empty()) return;
  std::vector<std::string> labels;
  for (int32_t item : ids) {
    const std::vector<std::string>& of = attributes.of(experiment.data.dataset.items.external(item));
    labels.push_back(of.empty() ? "" : of.front());
  }
  report::EmbeddingMap by_attribute{
      fmt::format("{} items by first attribute ({})", ids.size(), fs::path(options.item_attributes).filename().string()),
      points, {}, {}};
  top_categories(labels, by_attribute);
  page.maps.push_back(std::move(by_attribute));
}

// User maps from a sample of users' training histories: head vs tail, and by cluster (`clusters`: each user's, as
// user_clusters gives; empty for models without clusters).
void add_user_maps(Experiment& experiment, const ReportOptions& options, const std::vector<int32_t>& clusters,
                   report::RunPage& page) {
  models::Model& model = *experiment.model;
  const data::Sequences& train = experiment.data.split.train;
  std::vector<int32_t> with_history;
  for (int32_t u = 0; u < train.user_count(); ++u)
    if (train.length(u) > 0) with_history.push_back(u);
  std::vector<int32_t> users;
  for (int32_t i : sample_ids(static_cast<int32_t>(with_history.size()), options.map_users, options.tsne.seed + 1))
    users.push_back(with_history[i]);
  const int32_t count = static_cast<int32_t>(users.size());
  const torch::Tensor vectors = model.user_vectors(train, users.data(), count).contiguous();
  const int64_t dim = vectors.size(1);
  const std::vector<float> flat(vectors.data_ptr<float>(), vectors.data_ptr<float>() + int64_t{count} * dim);
  const std::vector<float> points = map_of(flat, count, dim, "users", options.tsne);
  const std::vector<uint8_t> head = data::head_users(train, experiment.train_config.head_share);
  report::EmbeddingMap by_group{fmt::format("{} users by history length (head = longest {:.0f} %)", count,
                                            100 * experiment.train_config.head_share),
                                points, {}, {"head", "tail"}};
  for (int32_t u : users) by_group.category.push_back(head[u] ? 0 : 1);
  page.maps.push_back(std::move(by_group));
  if (clusters.empty()) return;
  std::vector<std::string> labels;
  for (int32_t u : users) labels.push_back(fmt::format("cluster {}", clusters[u]));
  report::EmbeddingMap by_cluster{fmt::format("{} users by cluster (the {} largest)", count, kMapCategories), points,
                                  {}, {}};
  top_categories(labels, by_cluster);
  page.maps.push_back(std::move(by_cluster));
}

// Test metrics per cluster: users grouped by the cluster of their training history, as the cluster report does.
eval::EvalResult metrics_by_cluster(Experiment& experiment, const std::vector<int32_t>& clusters) {
  models::Model& model = *experiment.model;
  eval::UserGroups groups;
  for (int64_t k = 0; k < model.cluster_count(); ++k) groups.names.push_back(fmt::format("cluster {}", k));
  groups.user_group = clusters;
  eval::EvalResult result = models::evaluate_model(model, data::make_eval_task(experiment.data.split, true),
                                                   experiment.data.dataset.item_count(), experiment.eval_config,
                                                   &groups);
  // Clusters without test users say nothing: leave them out of the table.
  for (size_t g = result.groups.size(); g-- > 1;) {
    if (result.groups[g].users > 0) continue;
    result.groups.erase(result.groups.begin() + static_cast<std::ptrdiff_t>(g));
    result.group_names.erase(result.group_names.begin() + static_cast<std::ptrdiff_t>(g));
  }
  return result;
}

std::string default_out(const std::vector<std::string>& run_dirs, report::Format format) {
  const std::string file = format == report::Format::Html ? "report.html" : "report.md";
  return run_dirs.size() == 1 ? run_dirs.front() + "/" + file : file;
}

}  // namespace

report::RunPage make_run_page(const std::string& run_dir, const ReportOptions& options) {
  report::RunPage page;
  page.run = report::read_run_record(run_dir);
  if (!options.maps) return page;
  spdlog::info("loading {} (model {} on {})", run_dir, page.run.model, page.run.dataset);
  Experiment experiment = load_run(run_dir);
  set_threads(experiment.train_config);
  if (experiment.model->dim() == 0) {
    page.notes.push_back(fmt::format("model '{}' scores items directly (no item or user vectors): no embedding maps",
                                     page.run.model));
    return page;
  }
  // Each user's cluster once, for the user map and the per-cluster metrics.
  const std::vector<int32_t> clusters =
      experiment.model->cluster_count() > 0 ? user_clusters(*experiment.model, experiment.data.split.train)
                                             : std::vector<int32_t>{};
  add_item_maps(experiment, options, page);
  add_user_maps(experiment, options, clusters, page);
  if (!clusters.empty()) page.by_cluster = metrics_by_cluster(experiment, clusters);
  return page;
}

std::string write_report(const std::vector<std::string>& run_dirs, const ReportOptions& options) {
  if (run_dirs.empty()) fail("report: name at least one run folder");
  const std::string out = options.out.empty() ? default_out(run_dirs, options.format) : options.out;
  std::string text;
  if (run_dirs.size() == 1) {
    text = report::run_page(make_run_page(run_dirs.front(), options), options.format);
  } else {
    if (!options.baseline.empty() && !fs::is_directory(options.baseline))
      fail("report: --baseline {}: no such run folder", options.baseline);
    std::vector<report::RunRecord> runs;
    int64_t baseline = 0;
    for (size_t i = 0; i < run_dirs.size(); ++i) {
      spdlog::info("reading {} ({} of {})", run_dirs[i], i + 1, run_dirs.size());
      runs.push_back(report::read_run_record(run_dirs[i]));
      if (!options.baseline.empty() && fs::equivalent(run_dirs[i], options.baseline)) baseline = static_cast<int64_t>(i);
    }
    if (!options.baseline.empty() && !fs::equivalent(run_dirs[static_cast<size_t>(baseline)], options.baseline))
      fail("report: --baseline {} is not one of the run folders given", options.baseline);
    text = report::comparison_page(runs, report::compare_runs(runs, baseline), options.format);
  }
  write_file_atomic(out, text);
  return out;
}

}  // namespace embrec::train
