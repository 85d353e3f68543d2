// The training loop as a short train() over named steps, as RecBole's Trainer.fit has it: prepare the run folder,
// fit, the pre-training stage of a model that has one (pretrain), the epochs (run_epoch, validate_and_keep_best, a
// checkpoint each), then the results of the best model.
#include "embrec/train/trainer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "embrec/data/sampler.h"
#include "embrec/eval/impression_metrics.h"
#include "embrec/eval/metrics.h"
#include "embrec/eval/per_user.h"
#include "embrec/models/evaluate.h"
#include "embrec/models/pretrain.h"
#include "embrec/train/checkpoint.h"
#include "embrec/train/run_folder.h"
#include "embrec/train/world.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "embrec/util/progress.h"

namespace embrec::train {

namespace {

// The files of a run folder, named once.
struct RunFiles {
  explicit RunFiles(const std::string& run_dir)
      : dir(run_dir),
        config(run_dir + "/config.toml"),
        checkpoint(run_dir + "/checkpoint.pt"),
        best(run_dir + "/best.pt"),
        metrics(run_dir + "/metrics.jsonl"),
        pretrain(run_dir + "/pretrain.jsonl") {}
  std::string dir, config, checkpoint, best, metrics, pretrain;
};

// Loss parts by name ("sr", "clust", ...) as numbers.
using NamedValues = std::vector<std::pair<std::string, double>>;

struct BatchLoss {
  double total = 0.0;
  NamedValues parts;
  int64_t sequences = 0;  // of this rank's share
};

// An epoch's loss: means over its sequences, in total and by part.
struct EpochLoss {
  double total = 0.0;
  NamedValues parts;
  int64_t sequences = 0;
  double seconds = 0.0;
};

std::string format_parts(const NamedValues& parts) {
  std::string text;
  for (const auto& [name, value] : parts) text += fmt::format("{}{} {:.4f}", text.empty() ? "" : " ", name, value);
  return text;
}

// Refuses to overwrite a run, to resume nothing, and to resume under a config that changes the run; then writes
// the resolved config.
void prepare_run_folder(const Experiment& experiment, bool resume, const RunFiles& files) {
  const bool has_checkpoint = file_exists(files.checkpoint);
  if (resume) {
    if (!has_checkpoint) fail("{}: nothing to resume (no checkpoint.pt)", files.dir);
    if (file_exists(files.config)) {
      const std::string difference = config_difference(read_file(files.config), experiment.resolved_toml);
      if (!difference.empty())
        fail("{}: --resume with a config that differs from the run's config.toml ({})", files.dir, difference);
    }
  } else if (has_checkpoint) {
    fail("{}: already holds a run (checkpoint.pt); pass --resume to continue it, or choose another --out", files.dir);
  }
  write_file_atomic(files.config, experiment.resolved_toml);
}

// A rating metric (rmse, ...) can select only among models that predict ratings.
void check_select_metric(const Experiment& experiment) {
  const std::string& select = experiment.eval_config.select;
  const std::vector<std::string>& rating_metrics = eval::rating_metric_names();
  const bool rating_select = std::find(rating_metrics.begin(), rating_metrics.end(), select) != rating_metrics.end();
  const std::vector<std::string>& impression_metrics = eval::impression_metric_names();
  if (std::find(impression_metrics.begin(), impression_metrics.end(), select) != impression_metrics.end() &&
      !experiment.data.split.impressions)
    fail("eval.select = '{}' is a per-impression metric, which only news data has ([data] format = \"mind\"); "
         "select a ranking metric such as ndcg@10",
         select);
  if (rating_select && !experiment.model->predicts_ratings())
    fail("eval.select = '{}' needs a model that predicts ratings, and model '{}' does not (select a ranking metric "
         "such as ndcg@10)",
         select, experiment.model->name());
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& module, const TrainConfig& config) {
  if (config.optimizer == OptimizerKind::Adagrad)
    return std::make_unique<torch::optim::Adagrad>(
        module.parameters(),
        torch::optim::AdagradOptions(config.learning_rate).weight_decay(config.weight_decay));
  return std::make_unique<torch::optim::Adam>(module.parameters(),
                                              torch::optim::AdamOptions(config.learning_rate)
                                                  .weight_decay(config.weight_decay)
                                                  .betas({config.adam_beta1, config.adam_beta2}));
}

data::SamplerOptions sampler_defaults(const TrainConfig& config) {
  data::SamplerOptions defaults;
  defaults.batch_size = static_cast<int32_t>(config.batch_size);
  defaults.length_bucketing = config.length_bucketing;
  defaults.seed = static_cast<uint64_t>(config.seed);
  return defaults;
}

// The batches of one epoch of either stage: step(b, stop) takes the optimiser step on batch b (nullopt when the job
// stops there); the epoch's loss is the mean over its sequences (over every rank's share), shown under `label`.
// nullopt when stop_requested (when set) stopped it before its end.
std::optional<EpochLoss> run_batches(const std::string& label, int64_t batches, World& world,
                                     const std::function<bool()>& stop_requested,
                                     const std::function<std::optional<BatchLoss>(int64_t, bool)>& step) {
  Progress progress(label, batches, "seq");
  NamedValues sums;
  double total_sum = 0.0;
  int64_t sequences = 0;
  for (int64_t b = 0; b < batches; ++b) {
    const bool stop = stop_requested && stop_requested();
    if (stop && world.size() == 1) return std::nullopt;  // a job's ranks stop together, in the step
    const std::optional<BatchLoss> loss = step(b, stop);
    if (!loss) return std::nullopt;
    total_sum += loss->total * loss->sequences;
    if (sums.size() != loss->parts.size() && !loss->parts.empty()) {
      sums.clear();
      for (const auto& [name, value] : loss->parts) sums.emplace_back(name, 0.0);
    }
    for (size_t p = 0; p < loss->parts.size(); ++p) sums[p].second += loss->parts[p].second * loss->sequences;
    sequences += loss->sequences;
    progress.advance(1, loss->sequences, fmt::format("loss {:.4f}", total_sum / std::max<int64_t>(1, sequences)));
  }
  if (world.size() > 1) {  // the epoch's loss over every rank's share
    std::vector<double> values = {total_sum, static_cast<double>(sequences)};
    for (const auto& [name, sum] : sums) values.push_back(sum);
    values = world.sum(values);
    total_sum = values[0];
    sequences = static_cast<int64_t>(values[1]);
    for (size_t p = 0; p < sums.size(); ++p) sums[p].second = values[2 + p];
  }
  EpochLoss epoch_loss;
  epoch_loss.total = total_sum / std::max<int64_t>(1, sequences);
  for (const auto& [name, sum] : sums) epoch_loss.parts.emplace_back(name, sum / std::max<int64_t>(1, sequences));
  epoch_loss.sequences = sequences;
  epoch_loss.seconds = progress.elapsed_seconds();
  progress.finish(fmt::format("loss {:.4f}", epoch_loss.total));
  return epoch_loss;
}

// The optimiser step on a batch's loss (gradients zeroed before the loss was computed), over `sequences` rows of
// this rank; stops on a loss that is not finite (NaN, inf), naming `where` (the epoch and batch): the checkpoint of
// the last finished epoch stays as it is. nullopt, with no step, when a rank of the job asked to stop.
std::optional<BatchLoss> take_step(models::LossParts loss, int64_t sequences, bool stop, const std::string& where,
                                   torch::nn::Module& module, torch::optim::Optimizer& optimizer, World& world,
                                   const RunFiles& files) {
  BatchLoss out;
  out.sequences = sequences;
  out.total = loss.total.item<double>();
  if (!std::isfinite(out.total))
    fail("{}: loss is {}; training stopped, the last good checkpoint is kept in {}", where, out.total, files.dir);
  world.backward(loss.total, module, sequences);  // its all-reduce overlapped, in a job
  for (const auto& [name, value] : loss.parts) out.parts.emplace_back(name, value.item<double>());
  if (!world.reduce_gradients(module, out.sequences, stop)) return std::nullopt;
  optimizer.step();
  return out;
}

// The epochs of a trainable model, from state.next_epoch on: each is run_epoch (RecBole's _train_epoch), at an
// evaluation point validate_and_keep_best (_valid_epoch, and best.pt for the best model), a metrics.jsonl line
// and checkpoint.pt. In a data-parallel job every rank runs the same epochs and batches (the plan is seeded), each on
// its share of a batch's users; rank 0 alone validates and writes.
class EpochLoop {
 public:
  EpochLoop(Experiment& experiment, torch::nn::Module& module, torch::optim::Optimizer& optimizer,
            const RunFiles& files, const data::EvalTask& valid_task, World& world)
      : experiment_(experiment),
        config_(experiment.train_config),
        model_(*experiment.model),
        module_(module),
        optimizer_(optimizer),
        files_(files),
        valid_task_(valid_task),
        sampler_options_(model_.sampler_options(sampler_defaults(config_))),
        sampler_(experiment.data.split.train, experiment.data.dataset.item_count(), sampler_options_),
        device_(config_.device),
        world_(world) {
    if (sampler_options_.session_parallel) {
      if (world.size() > 1)
        fail("model '{}' trains on session-parallel batches, which are not split across ranks: train it in one "
             "process (no --nproc), or with padded batches",
             model_.name());
      session_.emplace(experiment.data.split.train, experiment.data.dataset.item_count(), sampler_options_);
    }
    if (sampler_options_.impressions) {
      const data::Split& split = experiment.data.split;
      if (!split.impressions)
        fail("model '{}' trains on impressions, which only news data has ([data] format = \"mind\")", model_.name());
      impressions_.emplace(split.impressions->train, split.impressions->train_history, sampler_options_);
    }
  }

  // Trains until config.epochs or an early stop; false when stop_after_epochs (>= 0) epochs of this call end it
  // first, as if the process were killed, or stop_requested (when set) says so before a batch.
  bool run(TrainerState& state, int64_t stop_after_epochs, const std::function<bool()>& stop_requested) {
    for (int64_t epochs_this_call = 0; state.next_epoch < config_.epochs; ++epochs_this_call) {
      if (stop_after_epochs >= 0 && epochs_this_call >= stop_after_epochs) return false;
      const int64_t epoch = state.next_epoch;
      const std::optional<EpochLoss> finished = run_epoch(epoch, stop_requested);
      if (!finished) {
        if (epoch == 0)
          spdlog::info("stopped during epoch 1: no epoch finished, nothing to resume");
        else
          spdlog::info("stopped during epoch {}: {} keeps epoch {}; resume continues from there", epoch + 1,
                       files_.checkpoint, epoch);
        return false;
      }
      const EpochLoss& loss = *finished;
      state.train_seconds += loss.seconds;
      state.next_epoch = epoch + 1;
      nlohmann::json line = {
          {"epoch", epoch + 1}, {"seconds", loss.seconds}, {"loss", loss.total}, {"sequences", loss.sequences}};
      for (const auto& [name, value] : loss.parts) line["parts"][name] = value;
      if (world_.is_main()) validate_and_keep_best(epoch, loss, state, line);
      state.stopped_early = world_.broadcast_flag(state.stopped_early);
      if (state.stopped_early || state.next_epoch >= config_.epochs) state.finished = true;
      if (world_.is_main()) {
        append_line(files_.metrics, line.dump());
        save_checkpoint(module_, &optimizer_, state, files_.checkpoint);
      }
      if (state.stopped_early) {
        spdlog::info("early stop after epoch {}: no better {} for {} evaluations (best {:.4f} at epoch {})",
                     epoch + 1, experiment_.eval_config.select, config_.patience, state.best_value, state.best_epoch);
        break;
      }
    }
    return true;
  }

 private:
  // nullopt when stop_requested stopped it before its end.
  std::optional<EpochLoss> run_epoch(int64_t epoch, const std::function<bool()>& stop_requested) {
    // Seeding per epoch (not once) makes a resumed run draw exactly what an uninterrupted one would; each rank its own
    // draws (dropout) for its own share.
    torch::manual_seed(static_cast<uint64_t>(config_.seed) * 1000003ULL + static_cast<uint64_t>(epoch) +
                       static_cast<uint64_t>(world_.rank()) * 7919ULL);
    model_.begin_epoch(epoch, world_.epoch_world());
    module_.train();
    const int64_t batches = begin_batches(epoch);
    return run_batches(fmt::format("epoch {}/{}", epoch + 1, config_.epochs), batches, world_, stop_requested,
                       [&](int64_t b, bool stop) { return train_batch(epoch, b, stop); });
  }

  // Lays out the epoch's batches (a plan of users, or the session-parallel time steps); returns their number.
  int64_t begin_batches(int64_t epoch) {
    if (session_) return session_->begin_epoch(epoch);
    plan_ = impressions_ ? impressions_->epoch_plan(epoch) : sampler_.epoch_plan(epoch);
    return static_cast<int64_t>(plan_.size());
  }

  // One optimiser step on the epoch's batch `batch_index` (this rank's share of its users), stopping on a loss that
  // is not finite (NaN, inf): the checkpoint of the last finished epoch stays as it is. nullopt, with no step, when a
  // rank of the job asked to stop (`stop` here or on another rank).
  std::optional<BatchLoss> train_batch(int64_t epoch, int64_t batch_index, bool stop) {
    BatchLoss out;
    int64_t first_row = 0;
    optimizer_.zero_grad();
    if (session_) {
      session_->fill(batch_index, batch_);
      out.sequences = batch_.size;
    } else {
      // The batch's users (or impression samples, for news models).
      const std::vector<int32_t>& users = plan_[static_cast<size_t>(batch_index)];
      // In a job, a batch of fewer users than ranks (an epoch's last, at most) is left out by every rank alike: each
      // rank must hold rows of the batch for the losses that gather it.
      if (static_cast<int64_t>(users.size()) < world_.size()) return out;
      const auto [begin, end] = world_.share(static_cast<int64_t>(users.size()));
      if (world_.size() > 1) share_.assign(users.begin() + begin, users.begin() + end);
      const std::vector<int32_t>& mine = world_.size() > 1 ? share_ : users;
      if (impressions_)
        impressions_->fill(mine, epoch, batch_index, batch_);
      else
        sampler_.fill(mine, epoch, batch_index, batch_);
      out.sequences = end - begin;
      first_row = begin;
    }
    models::TensorBatch tensors = models::tensor_batch(batch_, sampler_options_.max_length, device_);
    tensors.epoch = epoch;
    tensors.batch_index = batch_index;
    if (world_.size() > 1) {
      tensors.first_row = first_row;
      tensors.gather = [this](const torch::Tensor& local) { return world_.gather(local); };
    }
    return take_step(model_.loss(tensors), out.sequences, stop,
                     fmt::format("epoch {} batch {}", epoch + 1, batch_index + 1), module_, optimizer_, world_, files_);
  }

  // At an evaluation point (every eval_every epochs, and the last): validates, keeps best.pt for the best epoch so
  // far and counts evaluations without improvement towards early stopping. Without a valid stage (valid_ratio = 0,
  // as in Microsoft Recommenders' 75/25 protocol) there is nothing to select on: the epoch is kept. Logs the epoch.
  void validate_and_keep_best(int64_t epoch, const EpochLoss& loss, TrainerState& state, nlohmann::json& line) {
    const bool evaluate_now = (epoch + 1) % config_.eval_every == 0 || epoch + 1 == config_.epochs;
    if (!evaluate_now) {
      spdlog::info("epoch {}: {} ({:.1f}s train)", epoch + 1, format_parts(loss.parts), loss.seconds);
      return;
    }
    if (valid_task_.targets.size() == 0) {
      state.best_epoch = epoch + 1;
      save_module(module_, files_.best);
      spdlog::info("epoch {}: {} ({:.1f}s train; no valid stage: keeping this epoch)", epoch + 1,
                   format_parts(loss.parts), loss.seconds);
      return;
    }
    const std::string& select = experiment_.eval_config.select;
    module_.eval();
    eval::EvalResult valid =
        models::evaluate_model(model_, valid_task_, experiment_.data.dataset.item_count(), experiment_.eval_config);
    const double value = valid.value(select);
    line["valid"] = valid.all().values;
    line["eval_seconds"] = valid.seconds;
    spdlog::info("epoch {}: {} | valid {} = {:.4f} ({:.1f}s train, {:.2f}s eval)", epoch + 1, format_parts(loss.parts),
                 select, value, loss.seconds, valid.seconds);
    const bool better =
        state.best_epoch == 0 || (eval::lower_is_better(select) ? value < state.best_value : value > state.best_value);
    if (better) {
      state.best_value = value;
      state.best_epoch = epoch + 1;
      state.bad_evaluations = 0;
      save_module(module_, files_.best);
    } else if (++state.bad_evaluations >= config_.patience) {
      state.stopped_early = true;
    }
  }

  Experiment& experiment_;
  const TrainConfig& config_;
  models::Model& model_;
  torch::nn::Module& module_;
  torch::optim::Optimizer& optimizer_;
  const RunFiles& files_;
  const data::EvalTask& valid_task_;
  const data::SamplerOptions sampler_options_;
  data::SequenceSampler sampler_;
  std::optional<data::SessionParallelSampler> session_;  // when the model asks for session-parallel batches
  std::optional<data::ImpressionSampler> impressions_;    // when the model asks for impression batches
  std::vector<std::vector<int32_t>> plan_;  // the epoch's batches of users (or of impression samples)
  const torch::Device device_;
  World& world_;
  std::vector<int32_t> share_;  // this rank's users of the batch under way (data-parallel jobs)
  data::SequenceBatch batch_;  // refilled for every batch; to_tensors borrows its buffers
};

// The pre-training stage of a model that has one (models/pretrain.h), from state.pretrain_next_epoch on: each epoch
// its samples shuffled by (seed, epoch) in batches of the schedule's size, one step of its own optimiser on each
// batch's pretrain_loss (a rank takes its share of every batch), then a pretrain.jsonl line and checkpoint.pt with
// that optimiser (so --resume continues it; the training optimiser is saved untouched beside it). No validation or
// early stopping: the S3-Rec paper and code pre-train for a fixed number of epochs. Returns the epochs it ran, or
// nullopt when stopped before the stage's end (stop_after_epochs of them, or stop_requested).
std::optional<int64_t> pretrain(Experiment& experiment, models::Pretrainable& stage, torch::nn::Module& module,
                                torch::optim::Optimizer& optimizer, torch::optim::Optimizer& train_optimizer,
                                const RunFiles& files, TrainerState& state, World& world, int64_t stop_after_epochs,
                                const std::function<bool()>& stop_requested) {
  const TrainConfig& config = experiment.train_config;
  const models::PretrainSchedule& schedule = stage.pretrain_schedule();
  if (state.pretrain_next_epoch >= schedule.epochs) return 0;
  const int64_t samples = stage.pretrain_sample_count();
  if (samples == 0) fail("model '{}' has no samples to pre-train on", experiment.model->name());
  // Streams of their own, apart from the training epochs' (which draw from seed * 1000003 + epoch).
  const uint64_t seed = static_cast<uint64_t>(config.seed) * 1000003ULL + 0x5EED5EEDULL;
  std::vector<int32_t> order(static_cast<size_t>(samples)), share;
  int64_t epochs_run = 0;
  for (; state.pretrain_next_epoch < schedule.epochs; ++epochs_run) {
    if (stop_after_epochs >= 0 && epochs_run >= stop_after_epochs) return std::nullopt;
    const int64_t epoch = state.pretrain_next_epoch;
    torch::manual_seed(seed + static_cast<uint64_t>(epoch) + static_cast<uint64_t>(world.rank()) * 7919ULL);
    module.train();
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 random(seed + static_cast<uint64_t>(epoch));
    std::shuffle(order.begin(), order.end(), random);
    const int64_t batches = (samples + schedule.batch_size - 1) / schedule.batch_size;
    const std::optional<EpochLoss> loss = run_batches(
        fmt::format("pretrain {}/{}", epoch + 1, schedule.epochs), batches, world, stop_requested,
        [&](int64_t b, bool stop) -> std::optional<BatchLoss> {
          const int64_t first = b * schedule.batch_size, size = std::min(schedule.batch_size, samples - first);
          if (size < world.size()) return BatchLoss{};  // as in training: every rank must hold rows, or none does
          const auto [begin, end] = world.share(size);
          share.assign(order.begin() + first + begin, order.begin() + first + end);
          optimizer.zero_grad();
          return take_step(stage.pretrain_loss(share, epoch), end - begin, stop,
                           fmt::format("pre-training epoch {} batch {}", epoch + 1, b + 1), module, optimizer, world,
                           files);
        });
    if (!loss) {
      spdlog::info("stopped during pre-training epoch {}: {} keeps the epochs before it", epoch + 1, files.checkpoint);
      return std::nullopt;
    }
    state.pretrain_next_epoch = epoch + 1;
    state.pretrain_seconds += loss->seconds;
    if (world.is_main()) {
      spdlog::info("pre-training epoch {}: {} ({:.1f}s)", epoch + 1, format_parts(loss->parts), loss->seconds);
      nlohmann::json line = {
          {"epoch", epoch + 1}, {"seconds", loss->seconds}, {"loss", loss->total}, {"samples", loss->sequences}};
      for (const auto& [name, value] : loss->parts) line["parts"][name] = value;
      append_line(files.pretrain, line.dump());
      save_checkpoint(module, &train_optimizer, state, files.checkpoint, &optimizer);
    }
  }
  // What a resumed run starts training with: no gradients left over from the stage (Adam skips such parameters).
  for (torch::Tensor& parameter : module.parameters()) parameter.mutable_grad() = torch::Tensor();
  return epochs_run;
}

// A run killed between an epoch's log line and its checkpoint logged an epoch that the checkpoint does not hold;
// the resumed run trains that epoch again, so its line (and any line after it, or a line cut short) goes first:
// every epoch is logged once.
void drop_lines_after_epoch(const std::string& path, int64_t last_epoch) {
  if (!std::filesystem::exists(path)) return;
  std::istringstream lines(read_file(path));
  std::string kept;
  int dropped = 0;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.contains("epoch") || !json["epoch"].is_number_integer() ||
        json["epoch"].get<int64_t>() > last_epoch) {
      ++dropped;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped == 0) return;
  write_file_atomic(path, kept);
  spdlog::info("{}: dropped {} line(s) after epoch {}, which the checkpoint does not hold", path, dropped, last_epoch);
}

// Count-based models: what fit() learned is the model, kept as a finished checkpoint.pt and as best.pt.
void keep_fitted_model(torch::nn::Module& module, double fit_seconds, const RunFiles& files, TrainerState& state) {
  state.train_seconds = fit_seconds;
  state.finished = true;
  save_checkpoint(module, nullptr, state, files.checkpoint);
  save_module(module, files.best);
  state.best_epoch = 0;
}

// Evaluates the best model on valid and test, by head and tail users too, into summary; writes results.json and,
// for models with clusters, the cluster report.
void write_results(Experiment& experiment, torch::nn::Module& module, const RunFiles& files,
                   const data::EvalTask& valid_task, double fit_seconds, TrainSummary& summary) {
  models::Model& model = *experiment.model;
  const data::Split& split = experiment.data.split;
  const int32_t item_count = experiment.data.dataset.item_count();
  const eval::UserGroups groups =
      eval::result_groups(split.train, experiment.train_config.head_share, item_count, experiment.eval_config);
  if (file_exists(files.best)) load_module(module, files.best);
  module.eval();
  summary.valid = models::evaluate_model(model, valid_task, item_count, experiment.eval_config, &groups);
  eval::EvalConfig test_config = experiment.eval_config;
  test_config.per_user = true;  // per-user-test.tsv, for `embrec compare`
  summary.test = models::evaluate_model(model, data::make_eval_task(split, true), item_count, test_config, &groups);
  if (split.cold.size() > 0)
    summary.cold =
        models::evaluate_model(model, data::make_cold_task(split), item_count, experiment.eval_config, &groups);
  nlohmann::json results = {{"model", model.name()},
                            {"dataset", experiment.data.dataset.name},
                            {"best_epoch", summary.best_epoch},
                            {"epochs_run", summary.epochs_run},
                            {"stopped_early", summary.stopped_early},
                            {"train_seconds", summary.train_seconds},
                            {"fit_seconds", fit_seconds},
                            {"valid", summary.valid.to_json()},
                            {"test", summary.test.to_json()}};
  if (!summary.cold.groups.empty()) results["cold"] = summary.cold.to_json();
  if (summary.pretrain_epochs_run > 0) {
    results["pretrain_epochs"] = summary.pretrain_epochs_run;
    results["pretrain_seconds"] = summary.pretrain_seconds;
  }
  write_file_atomic(files.dir + "/results.json", results.dump(2) + "\n");
  eval::write_per_user(files.dir + "/per-user-test.tsv", summary.test.per_user, experiment.data.dataset.users);
  if (model.cluster_count() > 0)
    write_cluster_report(model, split, experiment.train_config.head_share, experiment.data.dataset.name, files.dir);
}

}  // namespace

TrainSummary train(Experiment& experiment, const TrainOptions& options) {
  const TrainConfig& config = experiment.train_config;
  models::Model& model = *experiment.model;
  const data::Split& split = experiment.data.split;
  const RunFiles files(options.run_dir);
  World one_process;
  World& world = options.world != nullptr ? *options.world : one_process;
  set_threads(config);
  std::optional<FolderLock> lock;  // rank 0 writes the folder: no second process may train it at the same time
  if (world.is_main()) {
    make_directories(files.dir);
    lock.emplace(files.dir, "training");
    prepare_run_folder(experiment, options.resume, files);
  }
  world.barrier("to find the run folder ready");
  check_select_metric(experiment);
  const data::EvalTask valid_task = data::make_eval_task(split, /*test_stage=*/false);
  // Count-based models learn everything here: their training time is this.
  const auto fit_start = std::chrono::steady_clock::now();
  model.fit(split);
  const double fit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - fit_start).count();

  torch::nn::Module& module = model.module();
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (model.trainable()) optimizer = make_optimizer(module, config);
  // The pre-training stage's own Adam ([pretrain] learning_rate and weight_decay, [train] betas).
  models::Pretrainable* stage = model.trainable() ? models::pretrain_stage(model) : nullptr;
  std::unique_ptr<torch::optim::Optimizer> pretrain_optimizer;
  if (stage) {
    TrainConfig pretrain_config = config;
    pretrain_config.optimizer = OptimizerKind::Adam;
    pretrain_config.learning_rate = stage->pretrain_schedule().learning_rate;
    pretrain_config.weight_decay = stage->pretrain_schedule().weight_decay;
    pretrain_optimizer = make_optimizer(module, pretrain_config);
  }
  TrainerState state;
  if (options.resume) {
    state = load_checkpoint(module, optimizer.get(), files.checkpoint, pretrain_optimizer.get());
    if (world.is_main()) {
      drop_lines_after_epoch(files.metrics, state.next_epoch);
      drop_lines_after_epoch(files.pretrain, state.pretrain_next_epoch);
    }
    if (stage && state.pretrain_next_epoch < stage->pretrain_schedule().epochs)
      spdlog::info("resuming {} after pre-training epoch {}", files.dir, state.pretrain_next_epoch);
    else
      spdlog::info("resuming {} after epoch {} (best {} = {:.4f} at epoch {})", files.dir, state.next_epoch,
                   experiment.eval_config.select, state.best_value, state.best_epoch);
  }
  TrainSummary summary;
  if (model.trainable() && !state.finished) {
    world.broadcast(module);  // identical start on every rank, whatever each initialised
    int64_t stop_after_epochs = options.stop_after_epochs;
    if (stage) {
      const std::optional<int64_t> pretrained =
          pretrain(experiment, *stage, module, *pretrain_optimizer, *optimizer, files, state, world, stop_after_epochs,
                   options.stop_requested);
      if (pretrained && stop_after_epochs >= 0) stop_after_epochs -= *pretrained;
      summary.interrupted = !pretrained;
    }
    if (!summary.interrupted) {
      EpochLoop epochs(experiment, module, *optimizer, files, valid_task, world);
      summary.interrupted = !epochs.run(state, stop_after_epochs, options.stop_requested);
    }
  } else if (!model.trainable() && world.is_main()) {
    keep_fitted_model(module, fit_seconds, files, state);
  }
  summary.epochs_run = state.next_epoch;
  summary.best_epoch = state.best_epoch;
  summary.stopped_early = state.stopped_early;
  summary.train_seconds = state.train_seconds;
  summary.pretrain_epochs_run = state.pretrain_next_epoch;
  summary.pretrain_seconds = state.pretrain_seconds;
  if (!summary.interrupted && world.is_main())
    write_results(experiment, module, files, valid_task, fit_seconds, summary);
  return summary;
}

}  // namespace embrec::train
