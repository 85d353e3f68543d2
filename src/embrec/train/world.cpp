#include "embrec/train/world.h"

// ProcessGroupGloo.hpp declares its class only when the build says c10d has Gloo (it does in Debian's libtorch and in
// the CUDA wheels); the define is set for this file alone in CMakeLists.txt.
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <utility>

#include "embrec/util/error.h"

namespace embrec::train {

namespace {

// Gradients are all-reduced in buckets of about this many bytes: few messages, little extra memory. The first bucket
// (the last layers, whose gradients backward finishes first) is smaller, so that the first all-reduce starts early.
constexpr int64_t kBucketBytes = 8 << 20;
constexpr int64_t kFirstBucketBytes = 1 << 20;

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
  // A rank that dies closes its sockets, and a write to one raises SIGPIPE, whose default kills this rank without a
  // word (exit 141; seen when the peer died during a send). Ignored, the write fails with EPIPE, which Gloo reports
  // as an error, and `collective` names the rank and the step. Process-wide and left so: a rank is a process that
  // trains one job, and the launcher (train/launcher.cpp) reports how each child ended.
  std::signal(SIGPIPE, SIG_IGN);
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

// The gradient buckets of one module's trainable parameters (World::backward and reduce_gradients). A bucket's
// buffer holds its members' gradients, each times the rank's share of the batch, then one presence flag per member
// (1 where this rank has that gradient), so that one all-reduce sums both.
class World::Reducer {
 public:
  Reducer(std::vector<torch::Tensor> parameters, c10d::ProcessGroupGloo& gloo, const WorldSettings& settings)
      : parameters_(std::move(parameters)), members_(parameters_.size()), gloo_(gloo), settings_(settings) {
    // Reverse order (backward produces the last layers' gradients first); a small first bucket, so that the first
    // all-reduce starts early, then kBucketBytes each. One device and type per bucket.
    int64_t bucket_bytes = 0;
    for (size_t i = parameters_.size(); i-- > 0;) {
      const torch::Tensor& parameter = parameters_[i];
      const int64_t bytes = parameter.numel() * static_cast<int64_t>(parameter.element_size());
      const int64_t cap = buckets_.size() == 1 ? kFirstBucketBytes : kBucketBytes;
      const bool fits = !buckets_.empty() && bucket_bytes + bytes <= cap &&
                        parameters_[buckets_.back().members.front()].device() == parameter.device() &&
                        parameters_[buckets_.back().members.front()].scalar_type() == parameter.scalar_type();
      if (!fits) {
        buckets_.emplace_back();
        bucket_bytes = 0;
      }
      Bucket& bucket = buckets_.back();
      members_[i] = {buckets_.size() - 1, bucket.numel, 0, false};
      bucket.members.push_back(i);
      bucket.numel += parameter.numel();
      bucket_bytes += bytes;
    }
    for (Bucket& bucket : buckets_) {
      const torch::Tensor& first = parameters_[bucket.members.front()];
      for (size_t k = 0; k < bucket.members.size(); ++k)
        members_[bucket.members[k]].flag = bucket.numel + static_cast<int64_t>(k);
      bucket.flat = torch::zeros({bucket.numel + static_cast<int64_t>(bucket.members.size())}, first.options());
    }
    // A hook on every parameter, removed again when this reducer goes (replaced by another module's, or the World
    // ends), so that the module trains on without it.
    for (size_t i = 0; i < parameters_.size(); ++i)
      hooks_.push_back(parameters_[i].register_hook([this, i](const torch::Tensor& gradient) { arrive(i, gradient); }));
  }
  ~Reducer() {
    for (size_t i = 0; i < hooks_.size(); ++i) parameters_[i].remove_hook(hooks_[i]);
  }
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  bool serves(const std::vector<torch::Tensor>& parameters) const {
    if (parameters.size() != parameters_.size()) return false;
    for (size_t i = 0; i < parameters.size(); ++i)
      if (!parameters[i].is_same(parameters_[i])) return false;
    return true;
  }

  // Starts a step: gradients that arrive from now on are this rank's, times local_count.
  void arm(int64_t local_count, bool in_backward) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Member& member : members_) member.arrived = false;
    for (Bucket& bucket : buckets_) {
      bucket.arrived = 0;
      bucket.work = WorkPtr();
      bucket.during_backward = false;
    }
    next_ = 0;
    local_count_ = local_count;
    armed_ = true;
    in_backward_ = in_backward;
  }

  bool armed() const { return armed_; }
  int64_t local_count() const { return local_count_; }

  // From a parameter's hook during backward.
  void arrive(size_t i, const torch::Tensor& gradient) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!armed_ || !in_backward_) return;
    take(i, gradient);
    launch_ready();
  }

  // After backward: the gradients no hook delivered are taken from .grad (or count as zero, flagged absent), and
  // every bucket not yet sent goes out, in order.
  void finish_backward() {
    std::lock_guard<std::mutex> lock(mutex_);
    in_backward_ = false;
    for (size_t i = 0; i < parameters_.size(); ++i) {
      if (members_[i].arrived) continue;
      const torch::Tensor& gradient = parameters_[i].grad();
      if (gradient.defined()) {
        take(i, gradient);
      } else {
        Member& member = members_[i];
        Bucket& bucket = buckets_[member.bucket];
        torch::NoGradGuard no_grad;
        bucket.flat.narrow(0, member.offset, parameters_[i].numel()).zero_();
        bucket.flat.narrow(0, member.flag, 1).zero_();
        member.arrived = true;
        ++bucket.arrived;
      }
    }
    launch_ready();
  }

  // Waits for every bucket (so that no buffer is in flight when the step returns); returns how many went out
  // during backward.
  int64_t wait_all() {
    int64_t during = 0;
    for (Bucket& bucket : buckets_) {
      collective(settings_, "all-reducing gradients", [&] {
        wait(bucket.work);
        return 0;
      });
      during += bucket.during_backward ? 1 : 0;
    }
    return during;
  }

  // The summed gradients, divided by the global batch size, into .grad of every parameter some rank had one for.
  void write_gradients(double global_count) {
    torch::NoGradGuard no_grad;
    for (Bucket& bucket : buckets_) {
      const torch::Tensor flags =
          bucket.flat.narrow(0, bucket.numel, static_cast<int64_t>(bucket.members.size())).to(torch::kCPU, torch::kDouble);
      const double* present = flags.data_ptr<double>();
      for (size_t k = 0; k < bucket.members.size(); ++k) {
        if (present[k] <= 0) continue;
        torch::Tensor& parameter = parameters_[bucket.members[k]];
        const torch::Tensor sum =
            bucket.flat.narrow(0, members_[bucket.members[k]].offset, parameter.numel()).view(parameter.sizes());
        torch::Tensor& gradient = parameter.mutable_grad();
        if (!gradient.defined()) gradient = torch::empty_like(parameter);
        gradient.copy_(sum).div_(global_count);
      }
    }
  }

  void disarm() { armed_ = false; }
  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Member {
    size_t bucket = 0;
    int64_t offset = 0;  // of its gradient in the bucket's buffer
    int64_t flag = 0;    // of its presence flag
    bool arrived = false;
  };
  struct Bucket {
    std::vector<size_t> members;
    int64_t numel = 0;  // gradient elements (the flags follow)
    torch::Tensor flat;
    size_t arrived = 0;
    WorkPtr work;
    bool during_backward = false;
  };

  // Copies parameter i's gradient (times local_count) into its bucket; a second gradient in one step adds to it.
  void take(size_t i, const torch::Tensor& gradient) {
    Member& member = members_[i];
    Bucket& bucket = buckets_[member.bucket];
    torch::NoGradGuard no_grad;
    const torch::Tensor dense = (gradient.is_sparse() ? gradient.to_dense() : gradient).reshape(-1);
    torch::Tensor slice = bucket.flat.narrow(0, member.offset, parameters_[i].numel());
    if (member.arrived) {
      if (bucket.work.defined())
        fail("rank {}: a second gradient for a parameter whose bucket is already being all-reduced (more than one "
             "backward pass before reduce_gradients)",
             settings_.rank);
      slice.add_(dense, static_cast<double>(local_count_));
      return;
    }
    slice.copy_(dense).mul_(static_cast<double>(local_count_));
    bucket.flat.narrow(0, member.flag, 1).fill_(1);
    member.arrived = true;
    ++bucket.arrived;
  }

  // Sends the complete buckets from the next unsent one on, stopping at the first incomplete one.
  void launch_ready() {
    while (next_ < buckets_.size() && buckets_[next_].arrived == buckets_[next_].members.size()) {
      Bucket& bucket = buckets_[next_++];
      std::vector<at::Tensor> one = {bucket.flat};
      bucket.work = collective(settings_, "all-reducing gradients", [&] { return gloo_.allreduce(one); });
      bucket.during_backward = in_backward_;
    }
  }

  std::vector<torch::Tensor> parameters_;
  std::vector<unsigned> hooks_;  // register_hook's handles, one per parameter
  std::vector<Member> members_;  // by parameter
  std::vector<Bucket> buckets_;
  c10d::ProcessGroupGloo& gloo_;
  const WorldSettings& settings_;
  std::mutex mutex_;  // hooks may run on autograd's device threads
  size_t next_ = 0;   // the next bucket to send
  int64_t local_count_ = 0;
  bool armed_ = false;
  bool in_backward_ = false;
};

World::Reducer& World::reducer_for(torch::nn::Module& module) {
  std::vector<torch::Tensor> parameters;
  for (const torch::Tensor& parameter : module.parameters(/*recurse=*/true)) {
    if (!parameter.requires_grad()) continue;
    const bool seen = std::any_of(parameters.begin(), parameters.end(),
                                  [&](const torch::Tensor& other) { return other.is_same(parameter); });
    if (!seen) parameters.push_back(parameter);  // a parameter shared by two modules is reduced once
  }
  if (!reducer_ || !reducer_->serves(parameters)) {
    reducer_.reset();  // its hooks go before the new ones arrive
    reducer_ = std::make_unique<Reducer>(std::move(parameters), *group_->gloo, settings_);
  }
  return *reducer_;
}

void World::backward(const torch::Tensor& loss, torch::nn::Module& module, int64_t local_count) {
  if (group_) reducer_for(module).arm(local_count, /*in_backward=*/true);
  loss.backward();
}

bool World::reduce_gradients(torch::nn::Module& module, int64_t local_count, bool stop) {
  if (!group_) return !stop;
  // After World::backward its reducer is armed (built for that module): no second walk over the parameters.
  Reducer& reducer = reducer_ && reducer_->armed() ? *reducer_ : reducer_for(module);
  if (!reducer.armed()) {
    reducer.arm(local_count, /*in_backward=*/false);  // gradients set without World::backward
  } else if (reducer.local_count() != local_count) {
    fail("rank {}: World::backward was told {} sequences, reduce_gradients {}", settings_.rank,
         reducer.local_count(), local_count);
  }
  reducer.finish_backward();
  // After the buckets, one small all-reduce: whether anyone stops, and the global batch size.
  std::vector<at::Tensor> control = {torch::tensor({stop ? 1.0 : 0.0, static_cast<double>(local_count)}, torch::kFloat64)};
  collective(settings_, "agreeing on the batch", [&] {
    wait(group_->gloo->allreduce(control));
    return 0;
  });
  last_reduction_ = {reducer.bucket_count(), reducer.wait_all()};
  reducer.disarm();
  const double* agreed = control[0].data_ptr<double>();
  if (agreed[0] > 0) return false;
  if (agreed[1] > 0) reducer.write_gradients(agreed[1]);
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

}  // namespace embrec::train
