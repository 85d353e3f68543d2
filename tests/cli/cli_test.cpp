// The embrec binary end to end: help, exit codes, one-line errors naming file and key, demo -> eval.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int exit_code;
  std::string output;  // stdout and stderr together
};

Outcome run(const std::string& arguments) {
  const std::string command = std::string(EMBREC_BINARY) + " " + arguments + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string temporary_folder(const std::string& name) {
  const fs::path path = fs::temp_directory_path() / ("embrec-cli-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(path);
  fs::create_directories(path);
  return path.string();
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(Cli, HelpListsTheCommands) {
  Outcome outcome = run("--help");
  EXPECT_EQ(outcome.exit_code, 0);
  for (const char* command : {"demo", "data", "train", "eval", "export", "serve", "report"})
    EXPECT_NE(outcome.output.find(command), std::string::npos) << command;
  EXPECT_EQ(run("train --help").exit_code, 0);
}

TEST(Cli, NoCommandOrUnknownCommandFails) {
  EXPECT_NE(run("").exit_code, 0);
  EXPECT_NE(run("fly").exit_code, 0);
}

TEST(Cli, MissingConfigIsOneLineNamingTheFile) {
  Outcome outcome = run("train --config /nonexistent/x.toml");
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.output, "embrec: error: /nonexistent/x.toml: cannot open config file\n");
}

TEST(Cli, UnknownKeysAndModelsNameTheKeyAndFile) {
  const std::string dir = temporary_folder("keys");
  const std::string typo = dir + "/typo.toml";
  write(typo, "[data]\ndemo = 'default'\n[model]\nname = 'pop'\n[train]\nepoch = 3\n");
  Outcome outcome = run("train --config " + typo + " --out " + dir + "/run");
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_NE(outcome.output.find(typo + ": unknown key 'train.epoch'"), std::string::npos) << outcome.output;

  const std::string unknown = dir + "/unknown.toml";
  write(unknown, "[data]\ndemo = 'default'\n[model]\nname = 'nosuchmodel'\n");
  outcome = run("train --config " + unknown + " --out " + dir + "/run");
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_NE(outcome.output.find(unknown + ": key 'model.name': unknown model 'nosuchmodel'"), std::string::npos)
      << outcome.output;

  const std::string mistyped = dir + "/mistyped.toml";
  write(mistyped, "[data]\ndemo = 'default'\n[model]\nname = 'sasrec'\ndim = '64'\n");
  outcome = run("train --config " + mistyped + " --out " + dir + "/run");
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_NE(outcome.output.find(mistyped + ": key 'model.dim' must be an integer, got a string"), std::string::npos)
      << outcome.output;
  fs::remove_all(dir);
}

TEST(Cli, DemoThenEvalThenExportThenServe) {
  const std::string dir = temporary_folder("demo");
  Outcome demo = run("demo --epochs 1 --out " + dir + "/run");
  ASSERT_EQ(demo.exit_code, 0) << demo.output;
  EXPECT_NE(demo.output.find("ndcg@10"), std::string::npos) << demo.output;
  EXPECT_NE(demo.output.find("popularity baseline"), std::string::npos) << demo.output;
  for (const char* file : {"config.toml", "best.pt", "checkpoint.pt", "metrics.jsonl", "results.json"})
    EXPECT_TRUE(fs::exists(dir + "/run/" + file)) << file;
  // The run folder's config says what ran: --epochs 1, not the demo config's 40.
  std::ifstream config_file(dir + "/run/config.toml");
  const std::string config((std::istreambuf_iterator<char>(config_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(config.find("epochs = 1\n"), std::string::npos) << config;
  EXPECT_EQ(config.find("epochs = 40"), std::string::npos) << config;
  Outcome reported = run("report " + dir + "/run --iterations 50 --users 100");
  ASSERT_EQ(reported.exit_code, 0) << reported.output;
  EXPECT_TRUE(fs::exists(dir + "/run/report.html")) << reported.output;
  Outcome not_finished = run("report " + dir);
  EXPECT_EQ(not_finished.exit_code, 1);
  EXPECT_NE(not_finished.output.find("not a run folder (no config.toml)"), std::string::npos) << not_finished.output;
  Outcome evaluated = run("eval " + dir + "/run");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  EXPECT_NE(evaluated.output.find("hr@10"), std::string::npos) << evaluated.output;
  Outcome not_a_run = run("eval " + dir);
  EXPECT_EQ(not_a_run.exit_code, 1);
  EXPECT_NE(not_a_run.output.find("not a run folder"), std::string::npos) << not_a_run.output;

  Outcome exported = run("export " + dir + "/run --index hnsw");
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_NE(exported.output.find("(HNSW32, ip)"), std::string::npos) << exported.output;
  for (const char* file : {"manifest.json", "items.faiss", "store"})
    EXPECT_TRUE(fs::exists(dir + "/run/export/" + file)) << file;
  Outcome bad_metric = run("export " + dir + "/run --metric manhattan");
  EXPECT_NE(bad_metric.exit_code, 0);
  // serve refuses a folder that is not an export, in one line, before binding anything.
  Outcome not_an_export = run("serve " + dir + "/run --port 0");
  EXPECT_EQ(not_an_export.exit_code, 1);
  EXPECT_NE(not_an_export.output.find("manifest.json"), std::string::npos) << not_an_export.output;
  fs::remove_all(dir);
}

}  // namespace

namespace {

TEST(Cli, DataPrepareSummarisesAndCaches) {
  const std::string dir = temporary_folder("prepare");
  write(dir + "/log.csv", "customer,sku,stars\na,x,5\na,y,4\na,z,3\nb,x,1\nb,y,5\nb,z,2\n");
  Outcome outcome = run("data prepare --input " + dir + "/log.csv --format csv --user-column customer --item-column sku "
                        "--rating-column stars --out " + dir + "/prepared");
  ASSERT_EQ(outcome.exit_code, 0) << outcome.output;
  EXPECT_NE(outcome.output.find("2 users, 3 items, 6 interactions"), std::string::npos) << outcome.output;
  EXPECT_TRUE(fs::exists(dir + "/prepared/summary.json"));
  int cache_files = 0;
  for (auto& entry : fs::directory_iterator(dir + "/prepared")) cache_files += entry.path().extension() == ".bin";
  EXPECT_EQ(cache_files, 1);
  fs::remove_all(dir);
}

TEST(Cli, DataFetchOfAnUnknownDatasetNamesTheKnownOnes) {
  Outcome outcome = run("data fetch ml-1b --to " + temporary_folder("fetch-unknown") + "/x");
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.output,
            "embrec: error: unknown dataset 'ml-1b' (known: ml-100k, ml-1m, ml-20m, amazon-beauty, amazon-sports, "
            "amazon-toys, yelp, mind-small)\n");
  outcome = run("data fetch --help");
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_NE(outcome.output.find("data/NAME"), std::string::npos) << outcome.output;
}

// The table's SHA-256s of the Amazon files hold for the copies in ../shared/data, and the printed command runs.
TEST(Cli, DataFetchFromLocalFilesVerifiesThemAndPrintsACommandThatRuns) {
  const std::string shared = EMBREC_SHARED_DATA;
  if (!fs::exists(shared + "/amazon-beauty/Beauty.txt")) GTEST_SKIP() << "no " << shared << "/amazon-beauty";
  const std::string dir = temporary_folder("fetch-local");
  Outcome outcome = run("data fetch amazon-beauty --from " + shared + "/amazon-beauty --to " + dir + "/beauty");
  ASSERT_EQ(outcome.exit_code, 0) << outcome.output;
  const std::string printed = "embrec data prepare --input " + dir + "/beauty/Beauty.txt --format seq";
  const std::string out = " --out prepared/amazon-beauty\n";
  ASSERT_NE(outcome.output.find(printed + out), std::string::npos) << outcome.output;
  outcome = run(printed.substr(7) + " --out " + dir + "/prepared");  // the printed command, writing below dir
  ASSERT_EQ(outcome.exit_code, 0) << outcome.output;
  EXPECT_NE(outcome.output.find("22363 users, 12101 items, 198502 interactions"), std::string::npos) << outcome.output;
  outcome = run("data fetch amazon-sports --from " + shared + "/amazon-sports --to " + dir + "/sports");
  EXPECT_EQ(outcome.exit_code, 0) << outcome.output;
  fs::remove_all(dir);
}

TEST(Cli, DataPrepareNamesTheBadLine) {
  const std::string dir = temporary_folder("prepare-bad");
  write(dir + "/ratings.dat", "1::10::5::100\n1::11::4\n");
  Outcome outcome = run("data prepare --input " + dir + "/ratings.dat --format movielens --out " + dir + "/p");
  EXPECT_EQ(outcome.exit_code, 1);
  EXPECT_EQ(outcome.output, "embrec: error: ratings.dat:2: expected 4 fields separated by '::', got 3\n");
  fs::remove_all(dir);
}

}  // namespace
