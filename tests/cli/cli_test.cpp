// The embrec binary end to end: help, exit codes, one-line errors naming file and key, demo -> eval.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <sstream>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "embrec/util/net.h"
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
  for (const char* command : {"demo", "data", "train", "eval", "compare", "export", "serve", "report"})
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
  // Train (and eval again) wrote each test user's values: a run compared with itself differs by nothing.
  EXPECT_TRUE(fs::exists(dir + "/run/per-user-test.tsv"));
  Outcome itself = run("compare " + dir + "/run " + dir + "/run --metric ndcg@10");
  ASSERT_EQ(itself.exit_code, 0) << itself.output;
  EXPECT_NE(itself.output.find("B - A: +0.0000"), std::string::npos) << itself.output;
  EXPECT_NE(itself.output.find("paired t-test: t = 0.000, p = 1 "), std::string::npos) << itself.output;
  Outcome as_json = run("compare " + dir + "/run " + dir + "/run --metric ndcg@10 --json");
  ASSERT_EQ(as_json.exit_code, 0) << as_json.output;
  const nlohmann::json figures = nlohmann::json::parse(as_json.output);
  EXPECT_EQ(figures["t_p"], 1.0);
  EXPECT_EQ(figures["mean_a"], figures["mean_b"]);
  fs::create_directories(dir + "/older");
  Outcome older = run("compare " + dir + "/run " + dir + "/older");
  EXPECT_EQ(older.exit_code, 1);
  EXPECT_NE(older.output.find("no per-user-test.tsv"), std::string::npos) << older.output;
  Outcome no_column = run("compare " + dir + "/run " + dir + "/run --metric ndcg@99");
  EXPECT_EQ(no_column.exit_code, 1);
  EXPECT_NE(no_column.output.find("unknown column 'ndcg@99' for --metric"), std::string::npos) << no_column.output;

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

// Data-parallel training (embrec train --nproc, or ranks started by a launcher's environment).
namespace {

// Starts `embrec ARGUMENTS` with `environment` (e.g. "RANK=1 WORLD_SIZE=2") in the background, output into `log`;
// returns its pid (the binary's own: the shell execs it).
pid_t start(const std::string& environment, const std::string& arguments, const std::string& log) {
  const std::string command = environment + " exec " + EMBREC_BINARY + " " + arguments + " > " + log + " 2>&1";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

// Waits for `pid` at most `seconds`; its exit code (128 + signal when killed), or -1 when it is still running.
int wait_for(pid_t pid, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

bool wait_until_exists(const std::string& path, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!fs::exists(path)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// SASRec on the demo data, an epoch of about a second per rank here.
std::string data_parallel_config(const std::string& dir, int epochs) {
  const std::string path = dir + "/config.toml";
  write(path, "[data]\ndemo = \"default\"\n[model]\nname = \"sasrec\"\ndim = 32\nloss = \"softmax\"\n[train]\nepochs = " +
                  std::to_string(epochs) +
                  "\nbatch_size = 128\nthreads = 1\npatience = 100\n[eval]\nks = [10]\nmetrics = [\"ndcg\"]\n"
                  "select = \"ndcg@10\"\n");
  return path;
}

// Resumes the interrupted 3-epoch run in `run_dir` (with `options`, e.g. another process count) to its end: each
// epoch logged once, none lost, none repeated.
void expect_resume_finishes_three_epochs(const std::string& config, const std::string& run_dir,
                                         const std::string& options) {
  Outcome resumed = run("train --config " + config + " --out " + run_dir + " --resume" + options);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming"), std::string::npos) << resumed.output;
  EXPECT_TRUE(fs::exists(run_dir + "/results.json"));
  std::istringstream lines(read_text(run_dir + "/metrics.jsonl"));
  std::vector<int> epochs;
  for (std::string line; std::getline(lines, line);) epochs.push_back(nlohmann::json::parse(line).at("epoch").get<int>());
  EXPECT_EQ(epochs, (std::vector<int>{1, 2, 3}));
}

}  // namespace

TEST(Cli, TrainWithTwoLocalRanksKilledOneStopsTheJobAndItsCheckpointResumesInOneProcess) {
  const std::string dir = temporary_folder("nproc");
  const std::string config = data_parallel_config(dir, 3);
  const pid_t launcher = start("", "train --config " + config + " --out " + dir + "/run --nproc 2", dir + "/log");
  ASSERT_TRUE(wait_until_exists(dir + "/run/checkpoint.pt", 120)) << read_text(dir + "/log");
  // Rank 1 is the launcher's second child.
  std::istringstream children(read_text(fmt::format("/proc/{}/task/{}/children", launcher, launcher)));
  std::vector<pid_t> ranks{std::istream_iterator<pid_t>(children), std::istream_iterator<pid_t>()};
  ASSERT_EQ(ranks.size(), 2u) << read_text(dir + "/log");
  ::kill(ranks[1], SIGKILL);
  EXPECT_EQ(wait_for(launcher, 30), 128 + SIGKILL) << read_text(dir + "/log");
  const std::string log = read_text(dir + "/log");
  EXPECT_NE(log.find("rank 1 of 2 was killed by signal 9"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(dir + "/run/results.json"));

  // The last checkpoint stays valid, and a job of another size resumes it.
  expect_resume_finishes_three_epochs(config, dir + "/run", "");
  fs::remove_all(dir);
}

TEST(Cli, AOneProcessCheckpointResumesInTwoLocalRanks) {
  const std::string dir = temporary_folder("grow");
  const std::string config = data_parallel_config(dir, 3);
  const pid_t single = start("", "train --config " + config + " --out " + dir + "/run", dir + "/log");
  ASSERT_TRUE(wait_until_exists(dir + "/run/checkpoint.pt", 120)) << read_text(dir + "/log");
  ::kill(single, SIGKILL);
  EXPECT_EQ(wait_for(single, 30), 128 + SIGKILL);
  ASSERT_FALSE(fs::exists(dir + "/run/results.json"));

  expect_resume_finishes_three_epochs(config, dir + "/run", " --nproc 2");
  fs::remove_all(dir);
}

TEST(Cli, ARankStartedByALauncherFailsWithinTheTimeoutWhenItsPeerDies) {
  const std::string dir = temporary_folder("ranks");
  const std::string config = data_parallel_config(dir, 200);
  const int port = embrec::free_local_port();
  const std::string environment = fmt::format("WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT={}", port);
  const std::string arguments = "train --config " + config + " --out " + dir + "/run --rank-timeout 20";
  const pid_t rank0 = start("RANK=0 " + environment, arguments, dir + "/log0");
  const pid_t rank1 = start("RANK=1 " + environment, arguments, dir + "/log1");
  ASSERT_TRUE(wait_until_exists(dir + "/run/checkpoint.pt", 120)) << read_text(dir + "/log0");
  ::kill(rank1, SIGKILL);
  wait_for(rank1, 10);
  EXPECT_EQ(wait_for(rank0, 40), 1) << read_text(dir + "/log0");
  const std::string log = read_text(dir + "/log0");
  EXPECT_NE(log.find("embrec: error: rank 0 of 2:"), std::string::npos) << log;
  EXPECT_NE(log.find("another rank probably failed or was killed"), std::string::npos) << log;

  // A rank without its RANK is refused before anything starts, naming the variable.
  ::setenv("WORLD_SIZE", "2", 1);
  Outcome no_rank = run("train --config " + config + " --out " + dir + "/other");
  ::unsetenv("WORLD_SIZE");
  EXPECT_EQ(no_rank.exit_code, 1);
  EXPECT_NE(no_rank.output.find("WORLD_SIZE=2 but RANK is not set"), std::string::npos) << no_rank.output;
  fs::remove_all(dir);
}
