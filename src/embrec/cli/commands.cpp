// The subcommands: thin wrappers that turn flags into library calls and print results.
#include "embrec/cli/commands.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include "embrec/data/fetch.h"
#include "embrec/data/load.h"
#include "embrec/eval/per_user.h"
#include "embrec/eval/significance.h"
#include "embrec/serve/service.h"
#include "embrec/train/experiment.h"
#include "embrec/train/launcher.h"
#include "embrec/train/run_folder.h"
#include "embrec/train/run_report.h"
#include "embrec/train/trainer.h"
#include "embrec/train/world.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "embrec/util/progress.h"

namespace embrec::cli {

namespace fs = std::filesystem;

// The demo's configuration: configs/sasrec-demo.toml, compiled in (CMake generates demo_config.cpp from it).
extern const char* const kDemoConfig;

namespace {

void print_summary(const train::TrainSummary& summary, const train::Experiment& experiment, const std::string& run_dir) {
  std::printf("%s on %s: best epoch %lld of %lld, %.1f s training\n", experiment.model->name().c_str(),
              experiment.data.dataset.name.c_str(), static_cast<long long>(summary.best_epoch),
              static_cast<long long>(summary.epochs_run), summary.train_seconds);
  const data::Split& split = experiment.data.split;
  const std::string over =
      split.impressions
          ? fmt::format("{} test impressions, and full ranking over the {} news shown in them",
                        split.impressions->test.size(),
                        std::count(split.impressions->test_news.begin(), split.impressions->test_news.end(), 1))
          : fmt::format("full ranking over {} items, {} split", experiment.data.dataset.item_count(), split.method);
  std::printf("\ntest (%s):\n%s", over.c_str(), train::results_table(summary.test, experiment.eval_config).c_str());
  if (!summary.cold.groups.empty())
    std::printf("\ncold-start items (%lld of their interactions, never trained on):\n%s",
                static_cast<long long>(experiment.data.split.cold.size()),
                train::results_table(summary.cold, experiment.eval_config).c_str());
  std::printf("\nrun folder: %s\n", run_dir.c_str());
}

std::string default_run_dir(const std::string& config_path) {
  return (fs::path("runs") / fs::path(config_path).stem()).string();
}

void run_demo(const std::string& out, int64_t epochs) {
  // --epochs is applied to the config before it is read, so the run folder's config.toml says what ran.
  toml::table document = toml::parse(std::string_view(kDemoConfig), std::string_view("<built-in demo config>"));
  if (epochs > 0) apply_override(document, fmt::format("train.epochs={}", epochs));
  ConfigTable root = ConfigTable::from_document(std::move(document), "<built-in demo config>");
  train::Experiment experiment = train::load_experiment(root);
  const auto& dataset = experiment.data.dataset;
  spdlog::info("demo data: {} users, {} items, {} interactions", dataset.user_count(), dataset.item_count(),
               dataset.interactions.size());
  train::TrainSummary summary = train::train(experiment, {out, false, -1});
  print_summary(summary, experiment, out);

  // The popularity baseline on the same split, so the table has something to beat.
  toml::table pop_document = toml::parse(std::string_view(kDemoConfig), std::string_view("<built-in demo config>"));
  pop_document.insert_or_assign("model", toml::table{{"name", "pop"}});
  ConfigTable pop_root(&pop_document, "<built-in demo config>", "");
  train::Experiment pop = train::load_experiment(pop_root);
  train::TrainSummary pop_summary = train::train(pop, {out + "/pop", false, -1});
  const std::string select = experiment.eval_config.select;
  std::printf("popularity baseline on the same split: test %s = %.4f (SASRec: %.4f)\n", select.c_str(),
              pop_summary.test.value(select), summary.test.value(select));
}

struct PrepareFlags {
  std::string input, format = "seq", out, split = "leave_one_out", dedup = "keep";
  std::string user_column = "user_id", item_column = "item_id", rating_column, timestamp_column, delimiter;
  int user_core = 0, item_core = 0;
  double min_rating = 0;
  bool has_min_rating = false;
  int64_t seed = 42;
};

void run_prepare(const PrepareFlags& flags) {
  const std::string& input = flags.input;
  const std::string& format = flags.format;
  const std::string& out = flags.out;
  const std::string& split_method = flags.split;
  toml::table data{{"path", fs::absolute(input).string()}, {"format", format}, {"cache_dir", fs::absolute(out).string()},
                   {"user_core", flags.user_core}, {"item_core", flags.item_core}, {"dedup", flags.dedup},
                   {"user_column", flags.user_column}, {"item_column", flags.item_column},
                   {"rating_column", flags.rating_column}, {"timestamp_column", flags.timestamp_column},
                   {"delimiter", flags.delimiter}};
  if (flags.has_min_rating) data.insert("min_rating", flags.min_rating);
  const int64_t seed = flags.seed;
  data.insert("split", toml::table{{"method", split_method}, {"seed", seed}});
  ConfigTable table(&data, "<command line>", "data");
  data::DataConfig config = data::DataConfig::from(table);
  table.finish();
  make_directories(out);
  data::LoadedData loaded = data::load_data(config);
  const data::Dataset& dataset = loaded.dataset;
  nlohmann::json summary = {{"source", fs::absolute(input).string()},
                            {"format", format},
                            {"users", dataset.user_count()},
                            {"items", dataset.item_count()},
                            {"interactions", dataset.interactions.size()},
                            {"split", split_method},
                            {"train", loaded.split.train.size()},
                            {"valid", loaded.split.valid.size()},
                            {"test", loaded.split.test.size()}};
  write_file_atomic(out + "/summary.json", summary.dump(2) + "\n");
  std::printf("%s: %d users, %d items, %lld interactions; %s split: train %lld, valid %lld, test %lld\n",
              input.c_str(), dataset.user_count(), dataset.item_count(),
              static_cast<long long>(dataset.interactions.size()), split_method.c_str(),
              static_cast<long long>(loaded.split.train.size()), static_cast<long long>(loaded.split.valid.size()),
              static_cast<long long>(loaded.split.test.size()));
  std::printf("prepared dataset cached in %s\n", out.c_str());
}

struct ExportFlags {
  std::string run_dir, out, index = "flat", metric = "ip";
  int nprobe = 16, ef_search = 64, shards = 1;
  bool cold_items = false;
};

void run_export(const ExportFlags& flags) {
  index::ExportOptions options;
  options.index.factory = flags.index;
  options.index.metric = index::parse_metric(flags.metric);
  options.index.nprobe = flags.nprobe;
  options.index.ef_search = flags.ef_search;
  options.shards = flags.shards;
  const std::string out = flags.out.empty() ? flags.run_dir + "/export" : flags.out;
  index::Manifest manifest = train::export_run(flags.run_dir, out, options, flags.cold_items);
  const std::string indexed = manifest.indexed_item_count == manifest.item_count
                                  ? ""
                                  : fmt::format(", {} of them indexed", manifest.indexed_item_count);
  const std::string shards = manifest.index_shards == 1 ? "" : fmt::format(", {} shards", manifest.index_shards);
  std::printf("%s: %s on %s, %lld items%s (%s, %s%s), %lld users, version %s\n", out.c_str(), manifest.model.c_str(),
              manifest.dataset.c_str(), static_cast<long long>(manifest.item_count), indexed.c_str(),
              manifest.index_factory.c_str(), manifest.metric.c_str(), shards.c_str(),
              static_cast<long long>(manifest.user_count), manifest.version().c_str());
}

// Signals only set flags (or write to the service's pipe); the main thread acts on them.
std::atomic<serve::Service*> g_service{nullptr};
std::atomic<bool> g_stop{false};
extern "C" void on_reload_signal(int) {
  if (serve::Service* service = g_service.load()) service->request_reload();
}
extern "C" void on_stop_signal(int) { g_stop.store(true); }
extern "C" void on_train_interrupt(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

void run_serve(const std::string& export_dir, const std::string& config_path, int port, const std::string& host) {
  serve::ServeConfig config;
  if (!config_path.empty()) {
    ConfigTable root = ConfigTable::parse_file(config_path);
    config = serve::ServeConfig::from(root.sub("serve"));
    root.finish();
  }
  if (port >= 0) config.port = port;
  if (!host.empty()) config.host = host;
  if (config.admin_token.empty()) {
    std::filesystem::path folder = std::filesystem::path(export_dir).lexically_normal();
    if (!folder.has_filename()) folder = folder.parent_path();  // "runs/x/export/" names runs/x/export
    const std::string token_file =
        config.admin_token_file.empty() ? folder.string() + ".admin-token" : config.admin_token_file;
    bool created = false;
    config.admin_token = serve::load_or_create_admin_token(token_file, created);
    if (created) {
      fmt::print("admin token (kept in {}, readable by you only): {}\n", token_file, config.admin_token);
      std::fflush(stdout);
    } else {
      spdlog::info("admin token: the one in {}", token_file);
    }
  }
  // One intra-op thread: requests run in parallel on the worker pool; a small forward pass gains nothing from more.
  torch::set_num_threads(1);
  for (const std::string& action : index::recover_export(export_dir)) spdlog::info("start-up: {}", action);
  serve::Service service(config, export_dir, train::export_encoder_factory());
  const int bound = service.bind(config.port);
  g_service.store(&service);
  std::signal(SIGHUP, on_reload_signal);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
  service.start_in_thread();
  spdlog::info("serving {} (version {}) on http://{}:{} with {} threads; SIGHUP or POST /admin/reload reloads",
               export_dir, service.version(), config.host, bound, config.threads);
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  spdlog::info("stopping: finishing running requests");
  g_service.store(nullptr);
  service.stop();
}

// `embrec demo`: the built-in demo, start to finish.
void add_demo_command(CLI::App& app) {
  auto* demo = app.add_subcommand("demo", "Train and evaluate SASRec on the built-in synthetic demo data");
  auto out = std::make_shared<std::string>("runs/demo");
  auto epochs = std::make_shared<int64_t>(0);
  demo->add_option("--out", *out, "Run folder (kept for later commands)")->capture_default_str();
  demo->add_option("--epochs", *epochs, "Override the number of epochs (0: the demo config's)");
  demo->callback([out, epochs] {
    if (file_exists(*out + "/checkpoint.pt")) {
      spdlog::info("{} holds an earlier demo run; starting afresh", *out);
      fs::remove_all(*out);
    }
    run_demo(*out, *epochs);
  });
}

void run_fetch(const std::string& name, const std::string& to, const data::FetchOptions& options) {
  const std::string folder = to.empty() ? data::default_fetch_folder(name) : to;
  const data::FetchResult result = data::fetch_dataset(name, folder, options);
  std::printf("%s fetched into %s\n", name.c_str(), result.folder.c_str());
  if (!result.prepare_command.empty())
    std::printf("ready:\n  %s\nor in a config:\n%s", result.prepare_command.c_str(), result.data_toml.c_str());
  else if (!result.data_toml.empty())
    std::printf("ready; in a config:\n%s", result.data_toml.c_str());
  if (!result.note.empty()) std::printf("%s\n", result.note.c_str());
}

// `embrec data fetch NAME`: a public dataset downloaded, verified and converted for `data prepare`.
void add_fetch_command(CLI::App& data_command) {
  std::string names;
  for (const data::DatasetSpec& spec : data::dataset_table()) names += (names.empty() ? "" : ", ") + spec.name;
  auto* fetch = data_command.add_subcommand(
      "fetch", "Download a public dataset, verify its checksum, unpack and convert it for `data prepare`");
  auto name = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto from = std::make_shared<std::string>();
  auto accept_unverified = std::make_shared<bool>(false);
  fetch->add_option("NAME", *name, "One of: " + names)->required();
  fetch->add_option("--to", *to, "Dataset folder (default: data/NAME)");
  fetch->add_option("--from", *from,
                    "A file downloaded by hand (e.g. Yelp's) or a folder holding the files: verified and used "
                    "instead of downloading");
  fetch->add_flag("--accept-unverified", *accept_unverified,
                  "Keep files that have no published digest (their SHA-256 is printed)");
  fetch->footer(
      "Downloads resume from a .part file; EMBREC_FETCH_TIMEOUT_S (default 60) fails a transfer that receives "
      "nothing for that long, EMBREC_FETCH_CONNECT_TIMEOUT_S (default 30) a connection; http_proxy, https_proxy "
      "and no_proxy are honoured.");
  fetch->callback([name, to, from, accept_unverified] {
    data::FetchOptions options;
    options.from = *from;
    options.accept_unverified = *accept_unverified;
    run_fetch(*name, *to, options);
  });
}

// `embrec data fetch` and `embrec data prepare`: a public dataset fetched; a log read, filtered, split and cached.
void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Fetch and prepare datasets");
  data->require_subcommand(1);
  add_fetch_command(*data);
  auto* prepare = data->add_subcommand("prepare", "Read a log, filter, split, and cache the prepared dataset");
  auto o = std::make_shared<PrepareFlags>();
  prepare->add_option("--input", o->input, "Interaction log")->required();
  prepare->add_option("--format", o->format, "Log format")
      ->check(CLI::IsMember({"seq", "movielens", "udata", "csv", "tsv"}))
      ->capture_default_str();
  prepare->add_option("--out", o->out, "Output folder")->required();
  prepare->add_option("--user-column", o->user_column, "csv/tsv: user id column")->capture_default_str();
  prepare->add_option("--item-column", o->item_column, "csv/tsv: item id column")->capture_default_str();
  prepare->add_option("--rating-column", o->rating_column, "csv/tsv: rating column (none by default)");
  prepare->add_option("--timestamp-column", o->timestamp_column, "csv/tsv: timestamp column (file order by default)");
  prepare->add_option("--delimiter", o->delimiter, "csv/tsv: field delimiter (one character)");
  prepare->add_option("--user-core", o->user_core, "Keep users with at least this many interactions");
  prepare->add_option("--item-core", o->item_core, "Keep items with at least this many interactions");
  auto* min_rating = prepare->add_option("--min-rating", o->min_rating, "Keep interactions rated at least this");
  prepare->add_option("--dedup", o->dedup, "Repeated (user, item) pairs")
      ->check(CLI::IsMember({"keep", "first", "last"}))
      ->capture_default_str();
  prepare->add_option("--split", o->split, "Split method")
      ->check(CLI::IsMember({"leave_one_out", "chrono", "stratified", "random"}))
      ->capture_default_str();
  prepare->add_option("--seed", o->seed, "Split seed")->capture_default_str();
  prepare->callback([o, min_rating] {
    o->has_min_rating = min_rating->count() > 0;
    run_prepare(*o);
  });
}

// This process' arguments after the program name, less "--nproc N" / "--nproc=N": what each rank is started with.
std::vector<std::string> rank_arguments() {
  std::vector<std::string> all = train::own_arguments();
  std::vector<std::string> kept;
  for (size_t a = 1; a < all.size(); ++a) {
    if (all[a] == "--nproc") {
      ++a;
    } else if (all[a].rfind("--nproc=", 0) != 0) {
      kept.push_back(all[a]);
    }
  }
  return kept;
}

// `embrec train`: a config trained and evaluated; with --nproc N (or a launcher's RANK / WORLD_SIZE) as the ranks
// of a data-parallel job.
void add_train_command(CLI::App& app) {
  auto* train_command = app.add_subcommand("train", "Train a model from a TOML config, then evaluate it");
  auto config = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto resume = std::make_shared<bool>(false);
  auto overrides = std::make_shared<std::vector<std::string>>();
  auto nproc = std::make_shared<int>(1);
  auto rank_timeout = std::make_shared<double>(300.0);
  train_command->add_option("--config", *config, "Config file (TOML)")->required();
  train_command->add_option("--set", *overrides, "Override a config value: section.key=value (repeatable)");
  train_command->add_option("--out", *out, "Run folder (default: runs/<config name>)");
  train_command->add_flag("--resume", *resume, "Continue the run in --out from its last checkpoint");
  train_command
      ->add_option("--nproc", *nproc,
                   "Train as N local processes, data-parallel on LibTorch's c10d (Gloo); each takes 1/N of every "
                   "batch. A multi-machine launcher sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT instead")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  train_command
      ->add_option("--rank-timeout", *rank_timeout,
                   "Seconds a rank waits for the others (start, every step) before the job fails")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train_command->callback([config, out, resume, overrides, nproc, rank_timeout] {
    if (*nproc > 1 && std::getenv("RANK") == nullptr) {
      const int status = train::run_local_ranks(*nproc, rank_arguments());
      if (status != 0) throw CLI::RuntimeError(status);
      return;
    }
    const std::string run_dir = out->empty() ? default_run_dir(*config) : *out;
    train::World world(train::world_settings_from_environment(*rank_timeout));
    const std::string data_loaded = "to load the data (rank 0 loads it first, writing the cache)";
    if (!world.is_main()) {  // rank 0 speaks for the job; the others only warn, and load the data after it
      spdlog::set_level(spdlog::level::warn);
      Progress::set_output([](std::string_view) {}, false);
      world.barrier(data_loaded);
    }
    train::Experiment experiment = train::load_experiment_file(*config, *overrides);
    if (world.is_main()) world.barrier(data_loaded);
    // The first Ctrl-C stops at the next batch, keeping the last finished epoch's checkpoint; a second one kills.
    std::signal(SIGINT, on_train_interrupt);
    train::TrainSummary summary = train::train(
        experiment, {run_dir, *resume, -1, [] { return g_stop.load(std::memory_order_relaxed); }, &world});
    std::signal(SIGINT, SIG_DFL);
    if (!world.is_main()) {
      if (summary.interrupted) throw CLI::RuntimeError(130);
      return;
    }
    if (summary.interrupted) {
      std::fprintf(stderr, "interrupted; continue with: embrec train --config %s --out %s --resume\n", config->c_str(),
                   run_dir.c_str());
      throw CLI::RuntimeError(130);
    }
    print_summary(summary, experiment, run_dir);
  });
}

// `embrec export`: a run into a Faiss index and a RocksDB user store.
void add_export_command(CLI::App& app) {
  auto* export_command = app.add_subcommand("export", "Export a run's item vectors to a Faiss index and its users to RocksDB");
  auto o = std::make_shared<ExportFlags>();
  export_command->add_option("RUN_DIR", o->run_dir, "Run folder written by train or demo")->required();
  export_command->add_option("--out", o->out, "Export folder (default: RUN_DIR/export); replaced atomically");
  export_command->add_option("--index", o->index,
                             "Faiss factory string or preset: flat, ivf, ivfpq (IVF lists of 8-bit PQ codes, ~8 "
                             "dimensions per byte), hnsw, \"IVF256,Flat\", \"HNSW32\", ...")
      ->capture_default_str();
  export_command->add_option("--metric", o->metric, "ip, cosine (L2-normalised ip) or l2")
      ->check(CLI::IsMember({"ip", "cosine", "l2"}))
      ->capture_default_str();
  export_command->add_option("--nprobe", o->nprobe, "IVF: lists probed per query")->capture_default_str();
  export_command->add_option("--ef-search", o->ef_search, "HNSW: candidate list size per query")->capture_default_str();
  export_command->add_option("--shards", o->shards,
                             "Split the item index into this many Faiss files by item-id range, searched in parallel "
                             "and merged (exact for flat); presets are sized per shard")
      ->capture_default_str();
  export_command->add_flag("--cold-items", o->cold_items,
                           "Also index items with no training interactions, placed by their features (two_tower with "
                           "item features); by default they are left out of the index, except by news models (NRMS, "
                           "NPA), which place every item by its text");
  export_command->callback([o] { run_export(*o); });
}

// `embrec serve`: an export over HTTP.
void add_serve_command(CLI::App& app) {
  auto* serve_command = app.add_subcommand("serve", "Serve an export over HTTP (JSON): known users, fresh histories, similar items");
  auto export_dir = std::make_shared<std::string>();
  auto config = std::make_shared<std::string>();
  auto host = std::make_shared<std::string>();
  auto port = std::make_shared<int>(-1);
  serve_command->add_option("EXPORT_DIR", *export_dir, "Export folder written by export")->required();
  serve_command->add_option("--config", *config, "TOML file with a [serve] table (threads, max_k, admin_token, ...)");
  serve_command->add_option("--port", *port, "Port (default: the config's, 8080; 0 = any free port)");
  serve_command->add_option("--host", *host, "Address to bind (default: the config's, 127.0.0.1)");
  serve_command->callback([export_dir, config, port, host] { run_serve(*export_dir, *config, *port, *host); });
}

// `embrec eval`: a run folder evaluated again.
void add_eval_command(CLI::App& app) {
  auto* eval_command = app.add_subcommand("eval", "Evaluate a run folder's best checkpoint (full ranking)");
  auto run_dir = std::make_shared<std::string>();
  auto valid = std::make_shared<bool>(false);
  auto cold = std::make_shared<bool>(false);
  eval_command->add_option("RUN_DIR", *run_dir, "Run folder written by train or demo")->required();
  auto* valid_flag = eval_command->add_flag("--valid", *valid, "Evaluate the validation stage instead of test");
  eval_command->add_flag("--cold", *cold, "Evaluate the cold-start stage (runs with [data.split] cold_item_ratio)")
      ->excludes(valid_flag);
  eval_command->callback([run_dir, valid, cold] {
    const train::EvalStage stage = *cold ? train::EvalStage::Cold : *valid ? train::EvalStage::Valid : train::EvalStage::Test;
    eval::EvalResult result = train::evaluate_run(*run_dir, stage);
    ConfigTable root = ConfigTable::parse_file(*run_dir + "/config.toml");
    eval::EvalConfig config = eval::EvalConfig::from(root.sub("eval"));
    std::printf("%s (%lld users, %.2f s):\n%s", name_of(train::kEvalStageNames, stage).c_str(),
                static_cast<long long>(result.all().users), result.seconds,
                train::results_table(result, config).c_str());
  });
}

// `embrec compare`: is run B better than run A on the same users? Paired tests over the users' values of one metric.
void add_compare_command(CLI::App& app) {
  auto* compare = app.add_subcommand(
      "compare", "Paired significance test of one metric between two runs on the same users (t-test, Wilcoxon)");
  auto files = std::make_shared<std::vector<std::string>>();
  auto metric = std::make_shared<std::string>("ndcg@20");
  auto group = std::make_shared<std::string>("all");
  auto stage = std::make_shared<std::string>("test");
  auto confidence = std::make_shared<double>(0.95);
  auto json = std::make_shared<bool>(false);
  compare->add_option("A B", *files, "Two run folders (their per-user-<stage>.tsv) or per-user files: A the baseline")
      ->required()
      ->expected(2);
  compare->add_option("--metric", *metric, "A column of the per-user files, e.g. recall@50 or tail_items:recall@50")
      ->capture_default_str();
  compare->add_option("--group", *group, "all, or a user group of the files (head, tail)")->capture_default_str();
  compare->add_option("--stage", *stage, "Which per-user file of a run folder: test, valid or cold")
      ->check(CLI::IsMember({"test", "valid", "cold"}))
      ->capture_default_str();
  compare->add_option("--confidence", *confidence, "Of the interval of the mean difference")->capture_default_str();
  compare->add_flag("--json", *json, "Print the figures as one JSON object (for scripts)");
  compare->callback([files, metric, group, stage, confidence, json] {
    std::vector<eval::PerUserTable> tables;
    for (const std::string& given : *files) {
      std::string path = given;
      if (std::filesystem::is_directory(given)) {
        path = fmt::format("{}/per-user-{}.tsv", given, *stage);
        if (!file_exists(path))
          fail("{}: no per-user-{}.tsv (a run trained before embrec wrote it): `embrec eval {}{}` writes it", given,
               *stage, given, *stage == "test" ? "" : " --" + *stage);
      }
      tables.push_back(eval::read_per_user(path));
    }
    const eval::PairedValues pairs = eval::pair_users(tables[0], tables[1], *metric, *group);
    const eval::PairedTest test = eval::paired_test(pairs.a, pairs.b, *confidence);
    if (*json) {
      const nlohmann::json out = {{"metric", *metric}, {"group", *group}, {"a", (*files)[0]}, {"b", (*files)[1]},
                                  {"users", test.users}, {"mean_a", test.mean_a}, {"mean_b", test.mean_b},
                                  {"mean_difference", test.mean_difference}, {"ci_low", test.ci_low},
                                  {"ci_high", test.ci_high}, {"confidence", test.confidence}, {"t", test.t},
                                  {"t_p", test.t_p}, {"wilcoxon_z", test.wilcoxon_z}, {"wilcoxon_p", test.wilcoxon_p},
                                  {"nonzero", test.nonzero}};
      std::printf("%s\n", out.dump().c_str());
      return;
    }
    std::printf("%s, %s users, %lld paired:\n%s", metric->c_str(), group->c_str(), static_cast<long long>(test.users),
                eval::describe(test, (*files)[0], (*files)[1]).c_str());
  });
}

// `embrec report`: run folders as one self-contained page.
void add_report_command(CLI::App& app) {
  auto* report_command = app.add_subcommand(
      "report", "Write a self-contained HTML page (or Markdown tables) for a run, or comparing several runs");
  auto runs = std::make_shared<std::vector<std::string>>();
  auto o = std::make_shared<train::ReportOptions>();
  auto no_maps = std::make_shared<bool>(false);
  report_command->add_option("RUN_DIR", *runs, "Run folder(s) written by train or demo")->required();
  report_command->add_option("--out", o->out, "Output file (default: RUN_DIR/report.html, or report.html for several)");
  const std::map<std::string, report::Format> formats(report::kFormatNames.begin(), report::kFormatNames.end());
  report_command->add_option("--format", o->format, "html, or md (the tables as Markdown)")
      ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case))
      ->default_str("html");
  report_command->add_option("--baseline", o->baseline, "Comparison: the run the others are compared with (default: the first)");
  report_command->add_flag("--no-maps", *no_maps, "Leave out the t-SNE maps (no model is loaded)");
  report_command->add_option("--items", o->map_items, "Items in the item maps (0 = all)")->capture_default_str();
  report_command->add_option("--users", o->map_users, "Users sampled for the user maps")->capture_default_str();
  report_command->add_option("--item-attributes", o->item_attributes,
                             "Colour items by attribute: *_item2attributes.json, movies.dat, u.item or item|attr|... text");
  report_command->add_option("--item-map", o->item_map, "For movies.dat / u.item: item<TAB>movie_id lines");
  report_command->add_option("--perplexity", o->tsne.perplexity, "t-SNE perplexity")->capture_default_str();
  report_command->add_option("--iterations", o->tsne.iterations, "t-SNE gradient steps")->capture_default_str();
  report_command->add_option("--seed", o->tsne.seed, "t-SNE and sampling seed")->capture_default_str();
  report_command->callback([runs, o, no_maps] {
    o->maps = !*no_maps;
    std::printf("report: %s\n", train::write_report(*runs, *o).c_str());
  });
}

}  // namespace

void register_commands(CLI::App& app) {
  add_demo_command(app);
  add_data_command(app);
  add_train_command(app);
  add_export_command(app);
  add_serve_command(app);
  add_eval_command(app);
  add_compare_command(app);
  add_report_command(app);
}

}  // namespace embrec::cli
