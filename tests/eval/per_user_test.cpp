// Per-user metric files (eval/per_user.h): what the evaluator keeps, the file's round trip, its errors, and the
// pairing of two runs' users.
#include "embrec/eval/per_user.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "../util/error_of.h"

namespace embrec::eval {
namespace {

namespace fs = std::filesystem;

class PerUserFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("embrec-per-user-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name)) << text;
    return path(name);
  }
  fs::path dir_;
};

class FixedScores final : public ScoreSource {
 public:
  int32_t item_count() const override { return 4; }
  void score_block(const int32_t*, int32_t count, float* out) override {
    for (int32_t r = 0; r < count; ++r)
      for (int32_t j = 0; j < 4; ++j) out[r * 4 + j] = static_cast<float>(4 - j);  // item 0 first
  }
};

data::Sequences lists(const std::vector<std::vector<int32_t>>& per_user) {
  data::Sequences out;
  for (const auto& items : per_user) out.push_user(items.data(), static_cast<int64_t>(items.size()));
  return out;
}

TEST_F(PerUserFile, TheEvaluatorKeepsEachUsersValuesAndTheyRoundTripThroughTheFile) {
  // Items 0, 1 head, 2, 3 tail; ranking 0 > 1 > 2 > 3. User 0: targets 1 and 3; user 1: none (skipped); user 2: 2.
  FixedScores scores;
  data::EvalTask task{lists({{}, {}, {}}), lists({{1, 3}, {}, {2}})};
  UserGroups groups{{"head", "tail"}, {0, 1, 1}, {"head_items", "tail_items"}, {0, 0, 1, 1}};
  EvalConfig config;
  config.ks = {2};
  config.metrics = {"recall"};
  config.per_user = true;
  const EvalResult result = evaluate(scores, task, config, &groups);
  const PerUserValues& values = result.per_user;
  EXPECT_EQ(values.users, (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(values.groups, (std::vector<std::string>{"head", "tail"}));
  EXPECT_EQ(values.columns,
            (std::vector<std::string>{"recall@2", "head_items:recall@2", "tail_items:recall@2"}));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // User 0: 1 of 2 in the top 2; its head target (1) found, its tail target (3) not. User 2: item 2 is third: 0,
  // and no head-item target.
  const std::vector<double> expected = {0.5, 1.0, 0.0, 0.0, nan, 0.0};
  ASSERT_EQ(values.values.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i)
    if (std::isnan(expected[i]))
      EXPECT_TRUE(std::isnan(values.values[i])) << i;
    else
      EXPECT_EQ(values.values[i], expected[i]) << i;
  EXPECT_NEAR(result.value("recall@2"), (0.5 + 0.0) / 2, 1e-12) << "the mean of the rows";

  data::IdMap ids = data::IdMap::from_externals({"u7", "u8", "u9"});
  write_per_user(path("a.tsv"), values, ids);
  const PerUserTable table = read_per_user(path("a.tsv"));
  EXPECT_EQ(table.users, (std::vector<std::string>{"u7", "u9"}));
  EXPECT_EQ(table.groups, values.groups);
  EXPECT_EQ(table.columns, values.columns);
  for (size_t i = 0; i < expected.size(); ++i)
    if (std::isnan(expected[i]))
      EXPECT_TRUE(std::isnan(table.values[i])) << i;
    else
      EXPECT_EQ(table.values[i], expected[i]) << i;
  EXPECT_EQ(table.column("tail_items:recall@2"), 2u);
  EXPECT_NE(error_of([&] { table.column("ndcg@10"); })
                .find("unknown column 'ndcg@10' for --metric (columns: recall@2, head_items"),
            std::string::npos);
  EvalConfig quiet = config;
  quiet.per_user = false;
  EXPECT_TRUE(evaluate(scores, task, quiet, &groups).per_user.users.empty()) << "kept only when asked";
}

TEST_F(PerUserFile, AMalformedFileIsAnErrorNamingItsLine) {
  const std::string header = "user\tgroup\tndcg@20\n";
  EXPECT_NE(error_of([&] { read_per_user(write("h.tsv", "id\tgroup\tndcg@20\n")); }).find("h.tsv:1: expected a header"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_per_user(write("f.tsv", header + "u1\thead\t0.5\nu2\ttail\n")); })
                .find("f.tsv:3: expected 3 fields"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_per_user(write("n.tsv", header + "u1\thead\tx0.5\n")); })
                .find("n.tsv:2: field 'ndcg@20': cannot parse 'x0.5' as a number"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_per_user(write("d.tsv", header + "u1\thead\t0.5\nu1\ttail\t0.1\n")); })
                .find("d.tsv:3: user 'u1' again (first on line 2)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_per_user(write("e.tsv", header)); }).find("e.tsv: no users"), std::string::npos);
  EXPECT_NE(error_of([&] { read_per_user(path("missing.tsv")); }).find("missing.tsv"), std::string::npos);
}

TEST_F(PerUserFile, PairsMatchUsersByIdWithinAGroupAndSkipEmptyValues) {
  const PerUserTable a = read_per_user(write("a.tsv", "user\tgroup\tr\nu1\thead\t0.5\nu2\ttail\t\nu3\ttail\t1\n"));
  const PerUserTable b = read_per_user(write("b.tsv", "user\tgroup\tr\nu3\ttail\t0.25\nu2\ttail\t0.5\nu1\thead\t0\n"));
  const PairedValues all = pair_users(a, b, "r", "all");
  EXPECT_EQ(all.users, (std::vector<std::string>{"u1", "u3"})) << "u2 has no value in a";
  EXPECT_EQ(all.a, (std::vector<double>{0.5, 1.0}));
  EXPECT_EQ(all.b, (std::vector<double>{0.0, 0.25}));
  EXPECT_EQ(pair_users(a, b, "r", "tail").users, (std::vector<std::string>{"u3"}));
  EXPECT_NE(error_of([&] { pair_users(a, b, "r", "middle"); }).find("no user of group 'middle'"), std::string::npos);
  const PerUserTable other = read_per_user(write("c.tsv", "user\tgroup\tr\nu1\thead\t0.5\nu4\ttail\t1\n"));
  const std::string message = error_of([&] { pair_users(a, other, "r", "all"); });
  EXPECT_NE(message.find("hold different users (2 only in the first, e.g. 'u2'; 1 only in the second)"),
            std::string::npos)
      << message;
}

}  // namespace
}  // namespace embrec::eval
