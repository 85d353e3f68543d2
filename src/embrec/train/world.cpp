#include "embrec/train/world.h"

// ProcessGroupGloo.hpp declares its class only when the build says c10d has Gloo (it does in Debian's libtorch and in
// the CUDA wheels); the define is set for this file alone in CMakeLists.txt.
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <utility>

#include "embrec/util/error.h"

namespace embrec::train {

namespace {

// Gradients are all-reduced in buckets of about this many bytes: few messages, little extra memory.
constexpr int64_t kBucketBytes = 8 << 20;

int int_variable(const char* name, int fallback, int low, int high) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < low || value > high)
    fail("environment variable {}='{}': expected an integer in [{}, {}]", name, text, low, high);
  return static_cast<int>(value);
}

std::chrono::milliseconds milliseconds(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

}  // namespace

WorldSettings world_settings_from_environment(double timeout_seconds) {
  WorldSettings settings;
  settings.size = int_variable("WORLD_SIZE", 1, 1, 1 << 16);
  settings.rank = int_variable("RANK", 0, 0, settings.size - 1);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0') settings.master_addr = addr;
  settings.master_port = int_variable("MASTER_PORT", settings.master_port, 1, 65535);
  if (!(timeout_seconds > 0)) fail("the ranks' timeout must be positive, not {}", timeout_seconds);
  settings.timeout_seconds = timeout_seconds;
  if (settings.size > 1 && std::getenv("RANK") == nullptr)
    fail("WORLD_SIZE={} but RANK is not set: every process of a data-parallel job needs its RANK", settings.size);
  return settings;
}

struct World::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
};

namespace {

// Runs a collective; a rank that failed, was killed or never answers turns into one Error naming this rank and the
// step, instead of Gloo's message alone.
template <typename Call>
auto collective(const WorldSettings& settings, const std::string& what, Call call) {
  try {
    return call();
  } catch (const std::exception& error) {
    fail("rank {} of {}: {} failed: {} (another rank probably failed or was killed: see its message; the run "
         "folder's last checkpoint stays valid)",
         settings.rank, settings.size, what, error.what());
  }
}

// A collective's handle (c10d::ProcessGroup::Work in torch 1.13, c10d::Work in 2.x).
using WorkPtr = decltype(std::declval<c10d::ProcessGroupGloo&>().barrier());

void wait(const WorkPtr& work) { work->wait(); }

}  // namespace

World::World() = default;

World::World(const WorldSettings& settings) : settings_(settings) {
  if (settings.size <= 1) return;
  group_ = std::make_unique<Group>();
  collective(settings_, fmt::format("joining the job at {}:{}", settings.master_addr, settings.master_port), [&] {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(settings.master_port);
    options.isServer = settings.rank == 0;
    options.numWorkers = static_cast<std::size_t>(settings.size);
    options.waitWorkers = true;
    options.timeout = milliseconds(settings.timeout_seconds);
    group_->store = c10::make_intrusive<c10d::TCPStore>(settings.master_addr, options);
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(milliseconds(settings.timeout_seconds));
    gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(settings.master_addr));
    group_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(group_->store, settings.rank, settings.size, gloo_options);
    return 0;
  });
}

World::~World() = default;

void World::barrier(const std::string& what) {
  if (!group_) return;
  collective(settings_, "waiting for every rank " + what, [&] {
    wait(group_->gloo->barrier());
    return 0;
  });
}

void World::broadcast(torch::nn::Module& module) {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors;
  for (const torch::Tensor& parameter : module.parameters(/*recurse=*/true)) tensors.push_back(parameter.detach());
  for (const torch::Tensor& buffer : module.buffers(/*recurse=*/true)) tensors.push_back(buffer.detach());
  collective(settings_, "broadcasting rank 0's parameters", [&] {
    for (at::Tensor& tensor : tensors) {
      std::vector<at::Tensor> one = {tensor};
      wait(group_->gloo->broadcast(one));
    }
    return 0;
  });
}

void World::broadcast(torch::Tensor& tensor) {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> one = {tensor.detach()};
  if (!one[0].is_contiguous()) fail("World::broadcast: the tensor must be contiguous");
  collective(settings_, "broadcasting rank 0's values", [&] {
    wait(group_->gloo->broadcast(one));
    return 0;
  });
}

models::EpochWorld World::epoch_world() {
  models::EpochWorld out;
  out.rank = rank();
  out.size = size();
  if (group_) {
    out.gather = [this](const torch::Tensor& local) { return gather(local); };
    out.broadcast = [this](torch::Tensor& tensor) { broadcast(tensor); };
  }
  return out;
}

bool World::broadcast_flag(bool value) {
  if (!group_) return value;
  std::vector<at::Tensor> flag = {torch::full({1}, value ? 1.0 : 0.0, torch::kFloat64)};
  collective(settings_, "receiving rank 0's decision", [&] {
    wait(group_->gloo->broadcast(flag));
    return 0;
  });
  return flag[0].item<double>() > 0;
}

std::vector<double> World::sum(const std::vector<double>& values) {
  if (!group_ || values.empty()) return values;
  std::vector<at::Tensor> tensor = {torch::tensor(values, torch::kFloat64)};
  collective(settings_, "summing values over the ranks", [&] {
    wait(group_->gloo->allreduce(tensor));
    return 0;
  });
  const double* data = tensor[0].data_ptr<double>();
  return std::vector<double>(data, data + values.size());
}

bool World::reduce_gradients(torch::nn::Module& module, int64_t local_count, bool stop) {
  if (!group_) return !stop;
  std::vector<torch::Tensor> parameters;
  for (const torch::Tensor& parameter : module.parameters(/*recurse=*/true))
    if (parameter.requires_grad()) parameters.push_back(parameter);
  const int64_t count = static_cast<int64_t>(parameters.size());
  // One small all-reduce first: which gradients exist anywhere, whether anyone stops, the global batch size.
  std::vector<at::Tensor> flags = {torch::zeros({count + 2}, torch::kFloat64)};
  double* flag = flags[0].data_ptr<double>();
  for (int64_t p = 0; p < count; ++p) flag[p] = parameters[p].grad().defined() ? 1.0 : 0.0;
  flag[count] = stop ? 1.0 : 0.0;
  flag[count + 1] = static_cast<double>(local_count);
  collective(settings_, "agreeing on the batch", [&] {
    wait(group_->gloo->allreduce(flags));
    return 0;
  });
  if (flag[count] > 0) return false;
  const double global_count = flag[count + 1];
  if (global_count <= 0) return true;
  const double weight = static_cast<double>(local_count) / global_count;

  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> gradients;
  for (int64_t p = 0; p < count; ++p) {
    if (flag[p] == 0) continue;
    torch::Tensor& gradient = parameters[p].mutable_grad();
    if (!gradient.defined() || !gradient.is_contiguous())
      gradient = gradient.defined() ? gradient.contiguous() : torch::zeros_like(parameters[p]);
    gradient.mul_(weight);
    gradients.push_back(gradient);
  }
  // Buckets of consecutive gradients of one device and type, each one message; all sent before any is waited for.
  struct Bucket {
    std::vector<torch::Tensor> members;
    at::Tensor flat;
    WorkPtr work;
  };
  std::vector<Bucket> buckets;
  int64_t bucket_bytes = 0;
  for (const torch::Tensor& gradient : gradients) {
    const int64_t bytes = gradient.numel() * static_cast<int64_t>(gradient.element_size());
    const bool fits = !buckets.empty() && bucket_bytes + bytes <= kBucketBytes &&
                      buckets.back().members.front().device() == gradient.device() &&
                      buckets.back().members.front().scalar_type() == gradient.scalar_type();
    if (!fits) {
      buckets.emplace_back();
      bucket_bytes = 0;
    }
    buckets.back().members.push_back(gradient);
    bucket_bytes += bytes;
  }
  collective(settings_, "all-reducing gradients", [&] {
    for (Bucket& bucket : buckets) {
      std::vector<torch::Tensor> views;
      for (const torch::Tensor& member : bucket.members) views.push_back(member.view(-1));
      bucket.flat = views.size() == 1 ? views.front() : torch::cat(views);
      std::vector<at::Tensor> one = {bucket.flat};
      bucket.work = group_->gloo->allreduce(one);
    }
    for (Bucket& bucket : buckets) {
      wait(bucket.work);
      if (bucket.members.size() == 1) continue;  // reduced in place
      int64_t offset = 0;
      for (torch::Tensor& member : bucket.members) {
        member.view(-1).copy_(bucket.flat.slice(0, offset, offset + member.numel()));
        offset += member.numel();
      }
    }
    return 0;
  });
  return true;
}

models::Gathered World::gather(const torch::Tensor& local) {
  if (!group_) return {local, 0};
  const torch::Tensor sent = local.detach().contiguous();
  // First the row counts, then the rows padded to the longest share (Gloo's all-gather needs equal sizes).
  std::vector<at::Tensor> count = {torch::full({1}, sent.size(0), torch::kLong)};
  std::vector<std::vector<at::Tensor>> counts(1);
  for (int r = 0; r < settings_.size; ++r) counts[0].push_back(torch::empty({1}, torch::kLong));
  collective(settings_, "gathering the batch's row counts", [&] {
    wait(group_->gloo->allgather(counts, count));
    return 0;
  });
  std::vector<int64_t> rows;
  for (const at::Tensor& c : counts[0]) rows.push_back(c.item<int64_t>());
  const int64_t longest = *std::max_element(rows.begin(), rows.end());
  std::vector<int64_t> padded_shape = sent.sizes().vec();
  padded_shape[0] = longest;
  std::vector<at::Tensor> padded = {torch::zeros(padded_shape, sent.options())};
  padded[0].narrow(0, 0, sent.size(0)).copy_(sent);
  std::vector<std::vector<at::Tensor>> received(1);
  for (int r = 0; r < settings_.size; ++r) received[0].push_back(torch::empty(padded_shape, sent.options()));
  collective(settings_, "gathering the batch's rows", [&] {
    wait(group_->gloo->allgather(received, padded));
    return 0;
  });
  std::vector<torch::Tensor> pieces;
  int64_t offset = 0;
  for (int r = 0; r < settings_.size; ++r) {
    if (r == settings_.rank) {
      pieces.push_back(local);  // the autograd path back into this rank's rows
    } else {
      pieces.push_back(received[0][r].narrow(0, 0, rows[r]));
      if (r < settings_.rank) offset += rows[r];
    }
  }
  return {torch::cat(pieces), offset};
}

std::pair<int64_t, int64_t> share_of(int64_t count, int rank, int size) {
  return {count * rank / size, count * (rank + 1) / size};
}

}  // namespace embrec::train
