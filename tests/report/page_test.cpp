// Report pages: the comparison table's best values and relative differences on a hand case, run folders read back,
// pages that parse as XML and hold every run's figures, Markdown tables, and a page rendered by headless Chromium.
#include "embrec/report/page.h"

#include <gtest/gtest.h>
#include <png.h>
#include <tinyxml2.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "embrec/report/charts.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "../util/error_of.h"

namespace embrec::report {
namespace {

namespace fs = std::filesystem;

eval::EvalResult result_with(const std::map<std::string, double>& values, int64_t users = 10) {
  eval::EvalResult result;
  result.group_names = {"all", "head", "tail"};
  for (int g = 0; g < 3; ++g) result.groups.push_back({g == 0 ? users : users / 2, values});
  result.exclude = "history";
  result.targets = users;
  return result;
}

// A finished run folder as the trainer writes it: config.toml, results.json, metrics.jsonl.
std::string write_run(const std::string& root, const std::string& name, const std::string& dataset, double ndcg,
                      double hr) {
  const std::string dir = root + "/" + name;
  fs::create_directories(dir);
  write_file_atomic(dir + "/config.toml", "[eval]\nks = [10]\nmetrics = ['hr', 'ndcg']\nselect = 'ndcg@10'\n");
  const eval::EvalResult test = result_with({{"hr@10", hr}, {"ndcg@10", ndcg}});
  nlohmann::json results = {{"model", "sasrec"}, {"dataset", dataset}, {"best_epoch", 2}, {"epochs_run", 3},
                            {"train_seconds", 12.5}, {"valid", test.to_json()}, {"test", test.to_json()}};
  write_file_atomic(dir + "/results.json", results.dump());
  std::string lines;
  for (int epoch = 1; epoch <= 3; ++epoch)
    lines += nlohmann::json{{"epoch", epoch}, {"seconds", 4.0 + epoch}, {"loss", 9.0 - epoch},
                            {"parts", {{"sr", 8.0 - epoch}, {"adv", 1.0}}}, {"valid", {{"ndcg@10", ndcg * epoch / 3}}}}
                 .dump() + "\n";
  write_file_atomic(dir + "/metrics.jsonl", lines);
  return dir;
}

class ReportPage : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("embrec-report-" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  std::string root_;
};

TEST_F(ReportPage, ComparisonMarksTheBestOfEachRowAndDifferencesToTheBaseline) {
  std::vector<RunRecord> runs = {read_run_record(write_run(root_, "sasrec", "Beauty", 0.040, 0.080)),
                                 read_run_record(write_run(root_, "s4rec", "Beauty", 0.050, 0.070)),
                                 read_run_record(write_run(root_, "ml", "ML-1M", 0.300, 0.500))};
  const Comparison comparison = compare_runs(runs, 0);
  ASSERT_EQ(comparison.rows.size(), 4u);  // Beauty hr@10, ndcg@10; ML-1M hr@10, ndcg@10
  EXPECT_EQ(comparison.rows[0].dataset, "Beauty");
  EXPECT_EQ(comparison.rows[0].metric, "hr@10");
  EXPECT_EQ(comparison.rows[0].best, 0);  // 0.080 > 0.070
  EXPECT_EQ(comparison.rows[1].best, 1);  // ndcg 0.050 > 0.040
  EXPECT_TRUE(std::isnan(comparison.rows[0].values[2]));  // the ML-1M run has no Beauty value
  EXPECT_EQ(comparison.rows[2].best, 2);
  EXPECT_NEAR(comparison.relative(1, 1), 0.25, 1e-12);   // (0.050 - 0.040) / 0.040
  EXPECT_NEAR(comparison.relative(0, 1), -0.125, 1e-12);  // (0.070 - 0.080) / 0.080
  EXPECT_TRUE(std::isnan(comparison.relative(2, 2)));     // the baseline has no ML-1M value
  const std::string md = comparison_page(runs, comparison, Format::Markdown);
  EXPECT_NE(md.find("| Beauty | ndcg@10 | 0.0400 | **0.0500** (+25.0 %) | - |"), std::string::npos) << md;
}

TEST_F(ReportPage, RmseRowsPreferTheLowerValue) {
  RunRecord a = read_run_record(write_run(root_, "a", "u", 0.1, 0.1)), b = read_run_record(write_run(root_, "b", "u", 0.1, 0.1));
  a.test.groups[0].values["rmse"] = 0.95;
  b.test.groups[0].values["rmse"] = 0.91;
  const Comparison comparison = compare_runs({a, b}, -1);
  ASSERT_EQ(comparison.rows.back().metric, "rmse");
  EXPECT_EQ(comparison.rows.back().best, 1);
  EXPECT_TRUE(std::isnan(comparison.relative(0, 1)));  // no baseline
}

TEST_F(ReportPage, FoldersThatAreNotFinishedRunsAreNamedErrors) {
  EXPECT_EQ(error_of([&] { read_run_record(root_ + "/nothing"); }), root_ + "/nothing: no such run folder");
  EXPECT_EQ(error_of([&] { read_run_record(root_); }), root_ + ": not a run folder (no config.toml)");
  write_file_atomic(root_ + "/config.toml", "[eval]\n");
  EXPECT_NE(error_of([&] { read_run_record(root_); }).find(": the run has not finished (no results.json)"),
            std::string::npos);
  const std::string dir = write_run(root_, "broken", "Beauty", 0.1, 0.2);
  append_line(dir + "/metrics.jsonl", "{not json");
  const std::string broken = error_of([&] { read_run_record(dir); });
  EXPECT_NE(broken.find(dir + "/metrics.jsonl:4: not a metrics line"), std::string::npos) << broken;
}

// Every element of the page, by name, and the texts of its <title> elements (one per chart).
void collect(const tinyxml2::XMLElement* element, std::multiset<std::string>& names, std::vector<std::string>& titles) {
  for (; element; element = element->NextSiblingElement()) {
    names.insert(element->Name());
    if (std::string(element->Name()) == "title" && element->GetText()) titles.push_back(element->GetText());
    collect(element->FirstChildElement(), names, titles);
  }
}

RunPage page_with_maps(const RunRecord& run) {
  RunPage page{run, {}, std::nullopt, {"a note & a <warning>"}};
  EmbeddingMap map{"items by popularity decile", {0, 0, 1, 1, 2, 0.5f, 3, 2}, {0, 1, -1, 0}, {"decile 1", "decile 2"}};
  page.maps.push_back(map);
  eval::EvalResult clusters = result_with({{"ndcg@10", 0.3}});
  clusters.group_names = {"all", "cluster 4", "cluster 7"};
  page.by_cluster = clusters;
  return page;
}

TEST_F(ReportPage, RunPageParsesAsXmlAndHoldsEveryFigure) {
  RunRecord run = read_run_record(write_run(root_, "s4rec-beauty", "Beauty", 0.05, 0.09));
  run.clusters_svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><title>clusters of users</title></svg>";
  const std::string html = run_page(page_with_maps(run), Format::Html);
  tinyxml2::XMLDocument document;
  ASSERT_EQ(document.Parse(html.c_str()), tinyxml2::XML_SUCCESS) << document.ErrorStr();
  std::multiset<std::string> names;
  std::vector<std::string> titles;
  collect(document.RootElement(), names, titles);
  // Curves: validation, loss, one per loss part (2), epoch time; the cluster histogram; one map.
  EXPECT_EQ(names.count("svg"), 7u);
  for (const std::string title : {"validation ndcg@10", "training loss", "loss part adv", "loss part sr",
                                  "time per epoch", "clusters of users", "items by popularity decile"})
    EXPECT_NE(std::find(titles.begin(), titles.end(), title), titles.end()) << title;
  EXPECT_EQ(names.count("script"), 0u);
  EXPECT_EQ(names.count("details"), 2u);  // per-cluster metrics and the resolved config
  EXPECT_NE(html.find("a note &amp; a &lt;warning&gt;"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"name\">cluster 7</td>"), std::string::npos);
  EXPECT_NE(html.find("decile 1 (2)"), std::string::npos);  // legend with counts
  EXPECT_NE(html.find("other (1)"), std::string::npos);
  const std::string md = run_page(page_with_maps(run), Format::Markdown);
  EXPECT_NE(md.find("| ndcg@10 | 0.0500 | 0.0500 | 0.0500 |"), std::string::npos) << md;
}

TEST_F(ReportPage, ComparisonPageParsesAsXmlAndOverlaysEveryRun) {
  std::vector<RunRecord> runs;
  for (int i = 0; i < 3; ++i)
    runs.push_back(read_run_record(write_run(root_, "run" + std::to_string(i), "Beauty", 0.04 + 0.01 * i, 0.08)));
  const std::string html = comparison_page(runs, compare_runs(runs, 1), Format::Html);
  tinyxml2::XMLDocument document;
  ASSERT_EQ(document.Parse(html.c_str()), tinyxml2::XML_SUCCESS) << document.ErrorStr();
  EXPECT_NE(html.find("run1 (baseline)"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"best\">0.0600 <span class=\"rel\">(+20.0 %)</span></td>"), std::string::npos);
  for (const std::string name : {"run0 ndcg@10", "run1 ndcg@10", "run2 ndcg@10"})
    EXPECT_NE(html.find(">" + name + "</text>"), std::string::npos) << name;  // legend of the overlaid curves
}

TEST(Charts, TicksAreRoundAndCoverTheRange) {
  auto expect_ticks = [](const std::vector<double>& ticks, const std::vector<double>& expected) {
    ASSERT_EQ(ticks.size(), expected.size());
    for (size_t i = 0; i < ticks.size(); ++i) EXPECT_NEAR(ticks[i], expected[i], 1e-12) << i;
  };
  expect_ticks(nice_ticks(0.0, 1.0), {0, 0.2, 0.4, 0.6, 0.8, 1});
  expect_ticks(nice_ticks(1.0, 2.0, 5, true), {1, 2});
  expect_ticks(nice_ticks(0.031, 0.094, 3), {0.04, 0.06, 0.08});
  EXPECT_EQ(escape_xml("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
  const std::string empty = line_chart({"nothing", "x", "y"}, {});
  EXPECT_NE(empty.find(">no data</text>"), std::string::npos);
}

// A PNG's pixels as RGBA.
std::vector<uint8_t> read_png(const std::string& path, uint32_t& width, uint32_t& height) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) return {};
  image.format = PNG_FORMAT_RGBA;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) return {};
  width = image.width, height = image.height;
  return pixels;
}

TEST_F(ReportPage, HeadlessChromiumRendersThePageWithoutConsoleErrors) {
  if (std::system("command -v chromium > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "chromium is not installed (Debian package chromium; scripts/setup.sh installs it)";
  RunRecord run = read_run_record(write_run(root_, "s4rec-beauty", "Beauty", 0.05, 0.09));
  const std::string page = root_ + "/page.html", picture = root_ + "/page.png", log = root_ + "/chromium.log";
  write_file_atomic(page, run_page(page_with_maps(run), Format::Html));
  const std::string command = "timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
                              "--enable-logging=stderr --v=0 --user-data-dir=" + root_ + "/profile " +
                              "--window-size=1200,1600 --screenshot=" + picture + " file://" + page + " > " + log +
                              " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << read_file(log);
  const std::string messages = read_file(log);
  EXPECT_EQ(messages.find("CONSOLE"), std::string::npos) << messages;  // no console message: errors would be there
  uint32_t width = 0, height = 0;
  const std::vector<uint8_t> pixels = read_png(picture, width, height);
  ASSERT_EQ(width, 1200u);
  ASSERT_EQ(height, 1600u);
  int64_t inked = 0;
  std::set<uint32_t> colours;
  for (size_t i = 0; i + 3 < pixels.size(); i += 4) {
    const uint32_t rgb = uint32_t{pixels[i]} << 16 | uint32_t{pixels[i + 1]} << 8 | pixels[i + 2];
    inked += rgb != 0xFFFFFF;
    if (colours.size() < 64) colours.insert(rgb);
  }
  EXPECT_GT(inked, int64_t{width} * height / 50) << "the picture is (almost) blank";
  EXPECT_GE(colours.size(), 8u) << "a page with tables and coloured charts has many colours";
}

}  // namespace
}  // namespace embrec::report
