// The model registry and the default (failing) implementations of the optional halves of the interface.
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

std::unique_ptr<Model> create_model(ConfigTable& table, const ModelContext& context) {
  const std::string name = table.require_string("name");
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const std::string& n : model_names()) known += (known.empty() ? "" : ", ") + n;
    fail("{}: key '{}': unknown model '{}' (known: {})", table.source(), table.key_path("name"), name, known);
  }
  return it->second(table, context);
}

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
