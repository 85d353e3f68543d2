// The model registry and the default implementations of the optional halves of the interface (they fail: a
// caller asked a model for something it does not have).
#include "embrec/models/model.h"

#include <cstdio>
#include <cstdlib>
#include <map>

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

LossParts Model::loss(const TensorBatch&) { fail("model '{}' is count-based and has no training loss", name()); }
torch::Tensor Model::user_vectors(const data::Sequences&, const int32_t*, int32_t) {
  fail("model '{}' has no user vectors", name());
}
torch::Tensor Model::item_vectors() { fail("model '{}' has no item vectors", name()); }
std::vector<int32_t> Model::cluster_assignments(const data::Sequences&, const int32_t*, int32_t) {
  fail("model '{}' has no clusters", name());
}
void Model::score_block(const data::Sequences&, const int32_t*, int32_t, float*) {
  fail("model '{}' does not score blocks directly", name());
}
void Model::predict_ratings(const int32_t*, const int32_t*, int64_t, float*) {
  fail("model '{}' does not predict ratings", name());
}

}  // namespace embrec::models
