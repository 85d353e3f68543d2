// `embrec report` on real run folders: a run page with t-SNE maps of its item and user vectors (by popularity,
// attribute, head/tail and cluster) and per-cluster metrics, a comparison page of several runs, and clear errors.
#include "embrec/train/run_report.h"

#include "train_fixtures.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "embrec/train/trainer.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "../util/error_of.h"

namespace embrec::train {
namespace {

namespace fs = std::filesystem;

const char* kTinyS4rec = "name = 's4rec'\ndim = 16\nheads = 1\nlayers = 1\nmax_length = 20\nclusters = 4";

std::string trained(const std::string& model, const std::string& name) {
  const std::string dir = temporary_folder(name);
  Experiment experiment = experiment_from(small_config(model, 2, 200, 80));
  train(experiment, {dir, false, -1});
  return dir;
}

ReportOptions quick_options() {
  ReportOptions options;
  options.tsne.iterations = 100;
  options.tsne.perplexity = 10;
  options.map_users = 150;
  return options;
}

TEST(RunReport, RunPageMapsItemsAndUsersAndEvaluatesEachCluster) {
  const std::string dir = trained(kTinyS4rec, "report-s4rec");
  ReportOptions options = quick_options();
  // Attributes for the demo items "i1".."i80": odd and even ids.
  options.item_attributes = dir + "/attributes.txt";
  std::string attributes;
  for (int i = 1; i <= 80; ++i) attributes += "i" + std::to_string(i) + (i % 2 ? "|odd\n" : "|even\n");
  write_file_atomic(options.item_attributes, attributes);

  const report::RunPage page = make_run_page(dir, options);
  ASSERT_EQ(page.maps.size(), 4u);  // items by popularity and by attribute; users by head/tail and by cluster
  EXPECT_EQ(page.maps[0].points.size(), 2u * 80);
  EXPECT_EQ(page.maps[0].names.size(), 10u);  // popularity deciles
  EXPECT_EQ(page.maps[1].names, (std::vector<std::string>{"even", "odd"}));  // 40 each: ties by name
  EXPECT_EQ(page.maps[2].points.size(), 2u * 150);
  EXPECT_EQ(page.maps[2].names, (std::vector<std::string>{"head", "tail"}));
  EXPECT_EQ(page.maps[3].category.size(), 150u);
  for (const report::EmbeddingMap& map : page.maps)
    for (float v : map.points) ASSERT_TRUE(std::isfinite(v)) << map.title;
  ASSERT_TRUE(page.by_cluster.has_value());
  int64_t users = 0;
  for (size_t g = 1; g < page.by_cluster->groups.size(); ++g) users += page.by_cluster->groups[g].users;
  EXPECT_EQ(users, page.by_cluster->all().users);  // every test user sits in exactly one cluster
  EXPECT_EQ(page.by_cluster->value("ndcg@10"), page.run.test.value("ndcg@10"));

  const std::string written = write_report({dir}, options);
  EXPECT_EQ(written, dir + "/report.html");
  const std::string html = read_file(written);
  EXPECT_NE(html.find("by first attribute (attributes.txt)"), std::string::npos);
  EXPECT_NE(html.find("Clusters of head and tail users"), std::string::npos);
  fs::remove_all(dir);
}

TEST(RunReport, ComparisonOfSeveralRunsAndCountBasedModels) {
  const std::string sasrec = trained("name = 'sasrec'\ndim = 16\nheads = 1\nlayers = 1\nmax_length = 20", "report-a");
  const std::string pop = trained("name = 'pop'", "report-pop");
  ReportOptions options = quick_options();
  const report::RunPage page = make_run_page(pop, options);
  EXPECT_TRUE(page.maps.empty());
  ASSERT_EQ(page.notes.size(), 1u);
  EXPECT_NE(page.notes[0].find("no embedding maps"), std::string::npos);

  options.out = sasrec + "/comparison.md";
  options.format = report::Format::Markdown;
  options.baseline = pop;
  write_report({sasrec, pop}, options);
  const std::string md = read_file(options.out);
  EXPECT_NE(md.find(fs::path(pop).filename().string() + " (baseline)"), std::string::npos) << md;
  EXPECT_NE(md.find("| demo | ndcg@10 |"), std::string::npos) << md;

  options.baseline = sasrec + "/nope";
  EXPECT_EQ(error_of([&] { write_report({sasrec, pop}, options); }),
            "report: --baseline " + sasrec + "/nope: no such run folder");
  fs::remove_all(sasrec);
  fs::remove_all(pop);
}

}  // namespace
}  // namespace embrec::train
