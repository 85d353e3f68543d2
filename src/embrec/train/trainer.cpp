// The training loop, checkpoints and run folders.
#include "embrec/train/trainer.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "embrec/eval/metrics.h"
#include "embrec/report/cluster_histogram.h"
#include "embrec/train/evaluate.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "embrec/util/progress.h"

namespace embrec::train {

namespace fs = std::filesystem;

TrainConfig TrainConfig::from(ConfigTable& table) {
  TrainConfig c;
  c.epochs = table.get("epochs", c.epochs);
  c.batch_size = table.get("batch_size", c.batch_size);
  c.learning_rate = table.get("learning_rate", c.learning_rate);
  c.weight_decay = table.get("weight_decay", c.weight_decay);
  c.adam_beta1 = table.get("adam_beta1", c.adam_beta1);
  c.adam_beta2 = table.get("adam_beta2", c.adam_beta2);
  c.seed = table.get("seed", c.seed);
  c.eval_every = table.get("eval_every", c.eval_every);
  c.patience = table.get("patience", c.patience);
  c.threads = table.get("threads", c.threads);
  c.length_bucketing = table.get("length_bucketing", c.length_bucketing);
  c.device = table.get("device", c.device);
  c.head_share = table.get("head_share", c.head_share);
  auto check = [&](bool ok, const char* key, const std::string& what) {
    if (!ok) fail("{}: key '{}' {}", table.source(), table.key_path(key), what);
  };
  check(c.epochs >= 0, "epochs", "must be >= 0");
  check(c.batch_size > 0, "batch_size", "must be positive");
  check(c.learning_rate > 0, "learning_rate", "must be positive");
  check(c.weight_decay >= 0, "weight_decay", "must be >= 0");
  check(c.eval_every > 0, "eval_every", "must be positive");
  check(c.patience > 0, "patience", "must be positive");
  check(c.threads >= 0, "threads", "must be >= 0");
  check(c.head_share > 0 && c.head_share < 1, "head_share", "must be in (0, 1)");
  try {
    (void)torch::Device(c.device);
  } catch (const std::exception&) {
    fail("{}: key '{}': unknown device '{}' (cpu, cuda, cuda:N)", table.source(), table.key_path("device"), c.device);
  }
  return c;
}

Experiment load_experiment(ConfigTable& root) {
  Experiment experiment;
  experiment.config_source = root.source();
  experiment.data_config = data::DataConfig::from(root.sub("data"));
  experiment.train_config = TrainConfig::from(root.sub("train"));
  experiment.eval_config = eval::EvalConfig::from(root.sub("eval"));
  ConfigTable& model_table = root.sub("model");
  if (!root.has("model")) fail("{}: missing [model] table (with name = \"sasrec\", \"pop\", ...)", root.source());
  // Validate every key before the (possibly slow) data load: a typo should fail in milliseconds.
  experiment.data = data::load_data(experiment.data_config);
  models::ModelContext context;
  context.item_count = experiment.data.dataset.item_count();
  context.user_count = experiment.data.dataset.user_count();
  context.device = torch::Device(experiment.train_config.device);
  context.seed = static_cast<uint64_t>(experiment.train_config.seed);
  torch::manual_seed(context.seed);
  experiment.model = models::create_model(model_table, context);
  root.finish();
  toml::table resolved = root.resolved();
  // Paths are written absolute so the run folder's config works from anywhere.
  if (auto* data_table = resolved["data"].as_table(); data_table && !experiment.data_config.path.empty())
    data_table->insert_or_assign("path", fs::absolute(experiment.data_config.path).lexically_normal().string());
  std::ostringstream text;
  text << resolved << '\n';
  experiment.resolved_toml = text.str();
  return experiment;
}

Experiment load_experiment_file(const std::string& config_path, const std::vector<std::string>& overrides) {
  if (overrides.empty()) {
    ConfigTable root = ConfigTable::parse_file(config_path);
    return load_experiment(root);
  }
  toml::table document;
  try {
    document = toml::parse_file(config_path);
  } catch (const toml::parse_error& error) {
    fail("{}:{}:{}: {}", config_path, error.source().begin.line, error.source().begin.column, error.description());
  }
  for (const std::string& assignment : overrides) apply_override(document, assignment);
  ConfigTable root = ConfigTable::from_document(std::move(document), config_path);
  return load_experiment(root);
}

namespace {

struct TrainerState {
  int64_t next_epoch = 0;  // epochs completed
  double best_value = -1.0;
  int64_t best_epoch = 0;
  int64_t bad_evaluations = 0;
  bool finished = false;
  bool stopped_early = false;
  double train_seconds = 0.0;
};

void save_module(torch::nn::Module& module, const std::string& path) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  archive.save_to(temporary);
  if (std::rename(temporary.c_str(), path.c_str()) != 0) fail("{}: cannot rename checkpoint into place", path);
}

void load_module(torch::nn::Module& module, const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
    module.load(archive);
  } catch (const c10::Error& error) {
    fail("{}: cannot load checkpoint: {}", path, error.what_without_backtrace());
  }
}

void save_checkpoint(torch::nn::Module& module, torch::optim::Optimizer* optimizer, const TrainerState& state,
                     const std::string& path) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  module.save(model_archive);
  archive.write("model", model_archive);
  if (optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  archive.write("next_epoch", torch::tensor(state.next_epoch));
  archive.write("best_value", torch::full({}, state.best_value, torch::TensorOptions().dtype(torch::kFloat64)));
  archive.write("best_epoch", torch::tensor(state.best_epoch));
  archive.write("bad_evaluations", torch::tensor(state.bad_evaluations));
  archive.write("finished", torch::tensor(static_cast<int64_t>(state.finished)));
  archive.write("stopped_early", torch::tensor(static_cast<int64_t>(state.stopped_early)));
  archive.write("train_seconds", torch::full({}, state.train_seconds, torch::TensorOptions().dtype(torch::kFloat64)));
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  archive.save_to(temporary);
  if (std::rename(temporary.c_str(), path.c_str()) != 0) fail("{}: cannot rename checkpoint into place", path);
}

TrainerState load_checkpoint(torch::nn::Module& module, torch::optim::Optimizer* optimizer, const std::string& path) {
  TrainerState state;
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    module.load(model_archive);
    if (optimizer) {
      torch::serialize::InputArchive optimizer_archive;
      if (archive.try_read("optimizer", optimizer_archive)) optimizer->load(optimizer_archive);
    }
    // A fresh tensor per read: InputArchive::read into a defined tensor keeps that tensor's dtype.
    auto read = [&](const char* key) {
      torch::Tensor value;
      archive.read(key, value);
      return value;
    };
    state.next_epoch = read("next_epoch").item<int64_t>();
    state.best_value = read("best_value").item<double>();
    state.best_epoch = read("best_epoch").item<int64_t>();
    state.bad_evaluations = read("bad_evaluations").item<int64_t>();
    state.finished = read("finished").item<int64_t>() != 0;
    state.stopped_early = read("stopped_early").item<int64_t>() != 0;
    state.train_seconds = read("train_seconds").item<double>();
  } catch (const c10::Error& error) {
    fail("{}: cannot load checkpoint: {}", path, error.what_without_backtrace());
  }
  return state;
}

models::TensorBatch to_tensors(const data::SequenceBatch& batch, int32_t max_length, torch::Device device) {
  models::TensorBatch out;
  out.max_length = max_length;
  auto options = torch::TensorOptions().dtype(torch::kLong);
  // from_blob borrows the sampler's buffers (no copy on CPU): the batch must be used up (loss and backward)
  // before the sampler refills them, which the loop guarantees.
  auto wrap = [&](const std::vector<int64_t>& values, std::vector<int64_t> shape) {
    return torch::from_blob(const_cast<int64_t*>(values.data()), shape, options).to(device);
  };
  out.users = wrap(batch.users, {batch.size});
  out.input = wrap(batch.input, {batch.size, batch.length});
  out.target = wrap(batch.target, {batch.size, batch.length});
  if (!batch.negative.empty()) out.negative = wrap(batch.negative, {batch.size, batch.length});
  if (!batch.rating.empty())
    out.rating = torch::from_blob(const_cast<float*>(batch.rating.data()), {batch.size, batch.length},
                                  torch::TensorOptions().dtype(torch::kFloat32))
                     .to(device);
  return out;
}

void set_threads(const TrainConfig& config) {
  const int threads = config.threads > 0 ? static_cast<int>(config.threads)
                                         : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
}

std::string format_parts(const std::vector<std::pair<std::string, double>>& parts) {
  std::string text;
  for (const auto& [name, value] : parts) text += fmt::format("{}{} {:.4f}", text.empty() ? "" : " ", name, value);
  return text;
}

// Leaf values of a resolved config as printed TOML, by dotted path.
void flatten(const toml::table& table, const std::string& prefix, std::map<std::string, std::string>& out) {
  for (auto&& [key, node] : table) {
    const std::string path = prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    if (const toml::table* sub = node.as_table()) {
      flatten(*sub, path, out);
    } else {
      std::ostringstream text;
      node.visit([&](auto&& value) { text << value; });
      out[path] = text.str();
    }
  }
}

// Empty when a run begun with the resolved config `saved` may go on under `current`; else what differs. [train]
// threads changes speed, not the run; a key only `current` has is an option added since the run began, whose
// default is the old behaviour (the rule for adding keys), so it does not count either.
std::string config_difference(const std::string& saved, const std::string& current) {
  std::map<std::string, std::string> before, after;
  try {
    flatten(toml::parse(saved), "", before);
    flatten(toml::parse(current), "", after);
  } catch (const toml::parse_error& error) {
    return fmt::format("unreadable config: {}", error.description());
  }
  std::vector<std::string> changes;
  for (const auto& [path, value] : before) {
    if (path == "train.threads") continue;
    auto it = after.find(path);
    if (it == after.end()) {
      changes.push_back(fmt::format("{} is no longer set (the run has {})", path, value));
    } else if (it->second != value) {
      changes.push_back(fmt::format("{}: the run has {}, this config {}", path, value, it->second));
    }
  }
  return fmt::format("{}", fmt::join(changes, "; "));
}

}  // namespace

void write_cluster_report(models::Model& model, const data::Split& split, double head_share,
                          const std::string& dataset_name, const std::string& run_dir) {
  // Users are represented by their training history, as during training; users without one are left out.
  std::vector<int32_t> users;
  for (int32_t u = 0; u < split.train.user_count(); ++u)
    if (split.train.length(u) > 0) users.push_back(u);
  const std::vector<int32_t> assigned =
      model.cluster_assignments(split.train, users.data(), static_cast<int32_t>(users.size()));
  std::vector<int32_t> assignment(split.train.user_count(), -1);
  for (size_t i = 0; i < users.size(); ++i) assignment[users[i]] = assigned[i];
  const report::ClusterHistogram histogram =
      report::cluster_histogram(assignment, data::head_users(split.train, head_share), model.cluster_count());
  write_file_atomic(run_dir + "/clusters.json", histogram.to_json().dump(2) + "\n");
  write_file_atomic(run_dir + "/clusters.svg",
                    report::cluster_histogram_svg(
                        histogram, fmt::format("{} on {}: cluster assignments of head and tail users", model.name(),
                                               dataset_name)));
  spdlog::info("cluster histogram of head and tail users: {}/clusters.svg", run_dir);
}

std::string results_table(const eval::EvalResult& result, const eval::EvalConfig& config) {
  return result.to_table(config.ks, config.metrics);
}

TrainSummary train(Experiment& experiment, const TrainOptions& options) {
  const TrainConfig& config = experiment.train_config;
  models::Model& model = *experiment.model;
  const data::Split& split = experiment.data.split;
  const std::string& run_dir = options.run_dir;
  make_directories(run_dir);
  const std::string config_path = run_dir + "/config.toml";
  const std::string checkpoint_path = run_dir + "/checkpoint.pt";
  const std::string best_path = run_dir + "/best.pt";
  const std::string metrics_path = run_dir + "/metrics.jsonl";
  set_threads(config);

  const bool has_checkpoint = file_exists(checkpoint_path);
  if (options.resume) {
    if (!has_checkpoint) fail("{}: nothing to resume (no checkpoint.pt)", run_dir);
    if (file_exists(config_path)) {
      const std::string difference = config_difference(read_file(config_path), experiment.resolved_toml);
      if (!difference.empty())
        fail("{}: --resume with a config that differs from the run's config.toml ({})", run_dir, difference);
    }
  } else if (has_checkpoint) {
    fail("{}: already holds a run (checkpoint.pt); pass --resume to continue it, or choose another --out", run_dir);
  }
  write_file_atomic(config_path, experiment.resolved_toml);

  const std::string& select = experiment.eval_config.select;
  const bool rating_select = std::find(eval::rating_metric_names().begin(), eval::rating_metric_names().end(),
                                       select) != eval::rating_metric_names().end();
  if (rating_select && !model.predicts_ratings())
    fail("eval.select = '{}' needs a model that predicts ratings, and model '{}' does not (select a ranking metric "
         "such as ndcg@10)",
         select, model.name());
  const data::EvalTask valid_task = data::make_eval_task(split, /*test_stage=*/false);
  // No valid stage (valid_ratio = 0, as in Microsoft Recommenders' 75/25 protocol): nothing to select on, so the
  // model of the last evaluation point is kept.
  const bool has_valid = valid_task.targets.size() > 0;
  const eval::UserGroups groups = head_tail_groups(split.train, config.head_share);
  const int32_t item_count = experiment.data.dataset.item_count();
  // Count-based models learn everything here: their training time is this.
  const auto fit_start = std::chrono::steady_clock::now();
  model.fit(split);
  const double fit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - fit_start).count();

  TrainSummary summary;
  torch::nn::Module& module = model.module();
  std::unique_ptr<torch::optim::Adam> optimizer;
  if (model.trainable()) {
    optimizer = std::make_unique<torch::optim::Adam>(
        module.parameters(), torch::optim::AdamOptions(config.learning_rate)
                                 .weight_decay(config.weight_decay)
                                 .betas({config.adam_beta1, config.adam_beta2}));
  }
  TrainerState state;
  if (options.resume) {
    state = load_checkpoint(module, optimizer.get(), checkpoint_path);
    spdlog::info("resuming {} after epoch {} (best {} = {:.4f} at epoch {})", run_dir, state.next_epoch,
                 experiment.eval_config.select, state.best_value, state.best_epoch);
  }

  if (model.trainable() && !state.finished) {
    data::SamplerOptions sampler_defaults;
    sampler_defaults.batch_size = static_cast<int32_t>(config.batch_size);
    sampler_defaults.length_bucketing = config.length_bucketing;
    sampler_defaults.seed = static_cast<uint64_t>(config.seed);
    const data::SamplerOptions sampler_options = model.sampler_options(sampler_defaults);
    data::SequenceSampler sampler(split.train, item_count, sampler_options);
    const torch::Device device(config.device);
    data::SequenceBatch batch;
    int64_t epochs_this_call = 0;
    while (state.next_epoch < config.epochs) {
      if (options.stop_after_epochs >= 0 && epochs_this_call >= options.stop_after_epochs) {
        summary.interrupted = true;
        break;
      }
      const int64_t epoch = state.next_epoch;
      // Seeding per epoch (not once) makes a resumed run draw exactly what an uninterrupted one would.
      torch::manual_seed(static_cast<uint64_t>(config.seed) * 1000003ULL + static_cast<uint64_t>(epoch));
      model.begin_epoch(epoch);
      module.train();
      const auto plan = sampler.epoch_plan(epoch);
      Progress progress(fmt::format("epoch {}/{}", epoch + 1, config.epochs), static_cast<int64_t>(plan.size()), "seq");
      std::vector<std::pair<std::string, double>> sums;
      double total_sum = 0.0;
      int64_t sequences = 0;
      for (size_t b = 0; b < plan.size(); ++b) {
        sampler.fill(plan[b], epoch, static_cast<int64_t>(b), batch);
        models::TensorBatch tensors = to_tensors(batch, sampler_options.max_length, device);
        tensors.epoch = epoch;
        tensors.batch_index = static_cast<int64_t>(b);
        models::LossParts loss = model.loss(tensors);
        const double total = loss.total.item<double>();
        if (!std::isfinite(total)) {
          fail("epoch {} batch {}: loss is {}; training stopped, the last good checkpoint is kept in {}", epoch + 1,
               b + 1, total, run_dir);
        }
        optimizer->zero_grad();
        loss.total.backward();
        optimizer->step();
        total_sum += total * batch.size;
        if (sums.size() != loss.parts.size()) {
          sums.clear();
          for (auto& [name, value] : loss.parts) sums.emplace_back(name, 0.0);
        }
        for (size_t p = 0; p < loss.parts.size(); ++p) sums[p].second += loss.parts[p].second.item<double>() * batch.size;
        sequences += batch.size;
        progress.advance(1, batch.size, fmt::format("loss {:.4f}", total_sum / sequences));
      }
      std::vector<std::pair<std::string, double>> means;
      for (auto& [name, sum] : sums) means.emplace_back(name, sum / std::max<int64_t>(1, sequences));
      const double epoch_seconds = progress.elapsed_seconds();
      progress.finish(fmt::format("loss {:.4f}", total_sum / std::max<int64_t>(1, sequences)));
      state.train_seconds += epoch_seconds;
      state.next_epoch = epoch + 1;
      ++epochs_this_call;

      nlohmann::json line = {{"epoch", epoch + 1},
                             {"seconds", epoch_seconds},
                             {"loss", total_sum / std::max<int64_t>(1, sequences)},
                             {"sequences", sequences}};
      for (auto& [name, value] : means) line["parts"][name] = value;
      const bool evaluate_now = (epoch + 1) % config.eval_every == 0 || epoch + 1 == config.epochs;
      if (evaluate_now && !has_valid) {
        state.best_epoch = epoch + 1;
        save_module(module, best_path);
        spdlog::info("epoch {}: {} ({:.1f}s train; no valid stage: keeping this epoch)", epoch + 1,
                     format_parts(means), epoch_seconds);
      } else if (evaluate_now) {
        module.eval();
        eval::EvalResult valid = evaluate_model(model, valid_task, item_count, experiment.eval_config);
        const double value = valid.value(experiment.eval_config.select);
        line["valid"] = valid.all().values;
        line["eval_seconds"] = valid.seconds;
        spdlog::info("epoch {}: {} | valid {} = {:.4f} ({:.1f}s train, {:.2f}s eval)", epoch + 1, format_parts(means),
                     experiment.eval_config.select, value, epoch_seconds, valid.seconds);
        const bool better = state.best_epoch == 0 ||
                            (eval::lower_is_better(select) ? value < state.best_value : value > state.best_value);
        if (better) {
          state.best_value = value;
          state.best_epoch = epoch + 1;
          state.bad_evaluations = 0;
          save_module(module, best_path);
        } else if (++state.bad_evaluations >= config.patience) {
          state.stopped_early = true;
        }
      }
      if (!evaluate_now)
        spdlog::info("epoch {}: {} ({:.1f}s train)", epoch + 1, format_parts(means), epoch_seconds);
      append_line(metrics_path, line.dump());
      if (state.stopped_early || state.next_epoch >= config.epochs) state.finished = true;
      save_checkpoint(module, optimizer.get(), state, checkpoint_path);
      if (state.stopped_early) {
        spdlog::info("early stop after epoch {}: no better {} for {} evaluations (best {:.4f} at epoch {})", epoch + 1,
                     experiment.eval_config.select, config.patience, state.best_value, state.best_epoch);
        break;
      }
    }
  } else if (!model.trainable()) {
    state.train_seconds = fit_seconds;
    state.finished = true;
    save_checkpoint(module, nullptr, state, checkpoint_path);
    save_module(module, best_path);
    state.best_epoch = 0;
  }

  summary.epochs_run = state.next_epoch;
  summary.best_epoch = state.best_epoch;
  summary.stopped_early = state.stopped_early;
  summary.train_seconds = state.train_seconds;
  if (summary.interrupted) return summary;

  if (file_exists(best_path)) load_module(module, best_path);
  module.eval();
  summary.valid = evaluate_model(model, valid_task, item_count, experiment.eval_config, &groups);
  summary.test = evaluate_model(model, data::make_eval_task(split, true), item_count, experiment.eval_config, &groups);
  nlohmann::json results = {{"model", model.name()},
                            {"dataset", experiment.data.dataset.name},
                            {"best_epoch", summary.best_epoch},
                            {"epochs_run", summary.epochs_run},
                            {"stopped_early", summary.stopped_early},
                            {"train_seconds", summary.train_seconds},
                            {"fit_seconds", fit_seconds},
                            {"valid", summary.valid.to_json()},
                            {"test", summary.test.to_json()}};
  write_file_atomic(run_dir + "/results.json", results.dump(2) + "\n");
  if (model.cluster_count() > 0) write_cluster_report(model, split, config.head_share, experiment.data.dataset.name, run_dir);
  return summary;
}

Experiment load_run(const std::string& run_dir) {
  const std::string config_path = run_dir + "/config.toml";
  if (!file_exists(config_path)) fail("{}: not a run folder (no config.toml)", run_dir);
  Experiment experiment = load_experiment_file(config_path);
  const std::string best_path = run_dir + "/best.pt";
  if (!file_exists(best_path)) fail("{}: no trained model yet (no best.pt)", run_dir);
  models::Model& model = *experiment.model;
  model.restore(experiment.data.split);
  load_module(model.module(), best_path);
  model.module().eval();
  return experiment;
}

eval::EvalResult evaluate_run(const std::string& run_dir, bool test_stage) {
  Experiment experiment = load_run(run_dir);
  set_threads(experiment.train_config);
  models::Model& model = *experiment.model;
  const eval::UserGroups groups = head_tail_groups(experiment.data.split.train, experiment.train_config.head_share);
  const data::EvalTask task = data::make_eval_task(experiment.data.split, test_stage);
  eval::EvalResult result =
      evaluate_model(model, task, experiment.data.dataset.item_count(), experiment.eval_config, &groups);
  write_file_atomic(run_dir + (test_stage ? "/eval-test.json" : "/eval-valid.json"), result.to_json().dump(2) + "\n");
  return result;
}

}  // namespace embrec::train
