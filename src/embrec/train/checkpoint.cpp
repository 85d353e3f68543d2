// Checkpoint files (a checksummed header line + a LibTorch archive, written atomically so a killed run never leaves
// half a file), verified and checked for non-finite weights on load; and the --resume config check.
#include "embrec/train/checkpoint.h"

#include <fmt/ranges.h>
#include <toml++/toml.h>

#include <map>
#include <sstream>
#include <vector>

#include "embrec/models/model.h"
#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::train {

namespace {

std::string checkpoint_bytes(torch::serialize::OutputArchive& archive) {
  std::ostringstream stream;
  archive.save_to(stream);
  return checksummed(models::kCheckpointKind, stream.str());
}

void save_atomically(torch::serialize::OutputArchive& archive, const std::string& path) {
  write_file_atomic(path, checkpoint_bytes(archive));
}

// The first line of a LibTorch error, without its "please report a bug" boilerplate: what a damaged archive says.
std::string torch_reason(const std::exception& error) {
  const auto* torch_error = dynamic_cast<const c10::Error*>(&error);
  std::string text = torch_error ? torch_error->what_without_backtrace() : error.what();
  text = text.substr(0, text.find('\n'));
  if (text.find("INTERNAL ASSERT FAILED") != std::string::npos) return "its archive is damaged";
  return text;
}

void check_finite(torch::nn::Module& module, const std::string& path) {
  for (const auto& group : {module.named_parameters(true), module.named_buffers(true)})
    for (const auto& entry : group) {
      const torch::Tensor& value = entry.value();
      if (value.defined() && value.is_floating_point() && !torch::isfinite(value).all().item<bool>())
        fail("{}: '{}' holds non-finite values (NaN or infinity); refusing to use this model", path, entry.key());
    }
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

}  // namespace

std::string module_checkpoint_bytes(torch::nn::Module& module) {
  torch::serialize::OutputArchive archive;
  module.save(archive);
  return checkpoint_bytes(archive);
}

void save_module(torch::nn::Module& module, const std::string& path) {
  write_file_atomic(path, module_checkpoint_bytes(module));
}

void load_module(torch::nn::Module& module, const std::string& path) {
  const std::string payload = models::read_checkpoint_archive(path);
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(payload.data(), payload.size());
    module.load(archive);
  } catch (const std::exception& error) {
    fail("{}: cannot load checkpoint: {}", path, torch_reason(error));
  }
  check_finite(module, path);
}

void save_checkpoint(torch::nn::Module& module, torch::optim::Optimizer* optimizer, const TrainerState& state,
                     const std::string& path, torch::optim::Optimizer* pretrain_optimizer) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  module.save(model_archive);
  archive.write("model", model_archive);
  if (optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    optimizer->save(optimizer_archive);
    archive.write("optimizer", optimizer_archive);
  }
  if (pretrain_optimizer) {
    torch::serialize::OutputArchive optimizer_archive;
    pretrain_optimizer->save(optimizer_archive);
    archive.write("pretrain_optimizer", optimizer_archive);
  }
  archive.write("next_epoch", torch::tensor(state.next_epoch));
  archive.write("best_value", torch::full({}, state.best_value, torch::TensorOptions().dtype(torch::kFloat64)));
  archive.write("best_epoch", torch::tensor(state.best_epoch));
  archive.write("bad_evaluations", torch::tensor(state.bad_evaluations));
  archive.write("finished", torch::tensor(static_cast<int64_t>(state.finished)));
  archive.write("stopped_early", torch::tensor(static_cast<int64_t>(state.stopped_early)));
  archive.write("train_seconds", torch::full({}, state.train_seconds, torch::TensorOptions().dtype(torch::kFloat64)));
  archive.write("pretrain_next_epoch", torch::tensor(state.pretrain_next_epoch));
  archive.write("pretrain_seconds",
                torch::full({}, state.pretrain_seconds, torch::TensorOptions().dtype(torch::kFloat64)));
  save_atomically(archive, path);
}

TrainerState load_checkpoint(torch::nn::Module& module, torch::optim::Optimizer* optimizer, const std::string& path,
                             torch::optim::Optimizer* pretrain_optimizer) {
  TrainerState state;
  const std::string payload = models::read_checkpoint_archive(path);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(payload.data(), payload.size());
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    module.load(model_archive);
    if (optimizer) {
      torch::serialize::InputArchive optimizer_archive;
      if (archive.try_read("optimizer", optimizer_archive)) optimizer->load(optimizer_archive);
    }
    if (pretrain_optimizer) {
      torch::serialize::InputArchive optimizer_archive;
      if (archive.try_read("pretrain_optimizer", optimizer_archive)) pretrain_optimizer->load(optimizer_archive);
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
    // Absent from checkpoints written before pre-training stages existed: no stage, nothing done.
    torch::Tensor value;
    if (archive.try_read("pretrain_next_epoch", value)) state.pretrain_next_epoch = value.item<int64_t>();
    torch::Tensor seconds;
    if (archive.try_read("pretrain_seconds", seconds)) state.pretrain_seconds = seconds.item<double>();
  } catch (const std::exception& error) {
    fail("{}: cannot load checkpoint: {}", path, torch_reason(error));
  }
  check_finite(module, path);
  return state;
}

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

}  // namespace embrec::train
