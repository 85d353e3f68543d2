// The model registry and the default implementations of the optional halves of the interface (they fail: a
// caller asked a model for something it does not have).
#include "embrec/models/model.h"

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <map>
#include <numeric>

#include "embrec/util/checksum.h"
#include "embrec/util/error.h"

namespace embrec::models {

namespace {
std::map<std::string, ModelFactory>& registry() {
  static std::map<std::string, ModelFactory> factories;
  return factories;
}
}  // namespace

bool register_model(const std::string& name, ModelFactory factory) {
  if (!registry().emplace(name, std::move(factory)).second) {
    std::fprintf(stderr, "embrec: model '%s' registered twice\n", name.c_str());
    std::abort();
  }
  return true;
}

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

ModelBuilder configure_model(ConfigTable& table) {
  const std::string name = table.require_string("name");
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const std::string& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    table.fail_key("name", fmt::format(": unknown model '{}' (known: {})", name, known));
  }
  return it->second(table);
}

std::unique_ptr<Model> create_model(ConfigTable& table, const ModelContext& context) {
  return configure_model(table)(context);
}

TensorBatch tensor_batch(const data::SequenceBatch& batch, int32_t max_length, torch::Device device) {
  TensorBatch out;
  out.max_length = max_length;
  auto wrap = [&](const auto& values, std::vector<int64_t> shape, torch::ScalarType type) {
    return torch::from_blob(const_cast<void*>(static_cast<const void*>(values.data())), shape, type).to(device);
  };
  out.users = wrap(batch.users, {batch.size}, torch::kLong);
  out.input = wrap(batch.input, {batch.size, batch.length}, torch::kLong);
  if (!batch.target.empty()) out.target = wrap(batch.target, {batch.size, batch.length}, torch::kLong);
  if (!batch.candidates.empty())
    out.candidates = wrap(batch.candidates, {batch.size, batch.candidate_count}, torch::kLong);
  if (!batch.negative.empty()) out.negative = wrap(batch.negative, {batch.size, batch.length}, torch::kLong);
  if (!batch.rating.empty()) out.rating = wrap(batch.rating, {batch.size, batch.length}, torch::kFloat32);
  if (!batch.shared_negative.empty())
    out.shared_negative =
        wrap(batch.shared_negative, {static_cast<int64_t>(batch.shared_negative.size())}, torch::kLong);
  if (!batch.reset.empty()) out.reset = wrap(batch.reset, {batch.size, batch.length}, torch::kUInt8).to(torch::kBool);
  return out;
}

torch::Tensor encode_history_blocks(const data::Sequences& histories, const int32_t* users, int32_t count,
                                    int64_t window, int64_t batch_users, int64_t dim, torch::Device device,
                                    torch::nn::Module& module,
                                    const std::function<torch::Tensor(const torch::Tensor&)>& encode) {
  torch::NoGradGuard no_grad;
  const bool was_training = module.is_training();
  module.eval();
  std::vector<int32_t> order(count);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return std::min(histories.length(users[a]), window) < std::min(histories.length(users[b]), window);
  });
  auto out = torch::empty({count, dim}, torch::kFloat32);
  std::vector<int32_t> block_users;
  std::vector<int64_t> padded;
  for (int32_t start = 0; start < count; start += static_cast<int32_t>(batch_users)) {
    const int32_t n = std::min<int32_t>(static_cast<int32_t>(batch_users), count - start);
    block_users.resize(n);
    for (int32_t i = 0; i < n; ++i) block_users[i] = users[order[start + i]];
    const int32_t length = data::fill_histories(histories, block_users.data(), n, static_cast<int32_t>(window), padded);
    auto input = torch::from_blob(padded.data(), {n, length}, torch::kLong).to(device);
    auto vectors = encode(input).to(torch::kCPU, torch::kFloat32).contiguous();
    auto rows = torch::from_blob(order.data() + start, {n}, torch::kInt32).to(torch::kLong);
    out.index_copy_(0, rows, vectors);
  }
  module.train(was_training);
  return out;
}

LossParts Model::loss(const TensorBatch&) { fail("model '{}' is count-based and has no training loss", name()); }
torch::Tensor Model::user_vectors(const data::Sequences&, const int32_t*, int32_t) {
  fail("model '{}' has no user vectors", name());
}
torch::Tensor Model::fresh_user_vector(const std::vector<int32_t>& history, const data::FeatureValues& features) {
  if (!features.empty())
    throw InputError(fmt::format("model '{}' takes no user features (got '{}')", name(), features.begin()->first));
  if (history.empty()) throw InputError(fmt::format("model '{}' needs a non-empty history", name()));
  data::Sequences one;
  one.push_user(history.data(), static_cast<int64_t>(history.size()));
  const int32_t user = 0;
  return user_vectors(one, &user, 1);
}
torch::Tensor Model::item_vectors() { fail("model '{}' has no item vectors", name()); }
torch::Tensor Model::fresh_item_vector(const data::NewsText&) {
  fail("model '{}' does not encode new items from their text", name());
}
std::vector<int32_t> Model::cluster_assignments(const data::Sequences&, const int32_t*, int32_t) {
  fail("model '{}' has no clusters", name());
}
void Model::score_block(const data::Sequences&, const int32_t*, int32_t, float*) {
  fail("model '{}' does not score blocks directly", name());
}
void Model::predict_ratings(const int32_t*, const int32_t*, int64_t, float*) {
  fail("model '{}' does not predict ratings", name());
}

std::string read_checkpoint_archive(const std::string& path) {
  return read_checksummed(path, kCheckpointKind, "PK\x03\x04");  // a bare LibTorch archive is a zip file
}

}  // namespace embrec::models
