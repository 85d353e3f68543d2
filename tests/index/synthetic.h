// Seeded synthetic vectors and export data shared by the index and serve tests.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "embrec/index/export.h"

namespace embrec::testing {

// count x dim standard normal floats.
inline std::vector<float> random_vectors(int64_t count, int32_t dim, uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> vectors(static_cast<size_t>(count * dim));
  for (float& value : vectors) value = normal(generator);
  return vectors;
}

// count x dim points around `clusters` random centres (spread 3) with unit noise: the shape of real item vectors,
// where IVF's lists and HNSW's graph have structure to exploit.
inline std::vector<float> clustered_vectors(int64_t count, int32_t dim, int32_t clusters, uint64_t seed) {
  std::mt19937_64 generator(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centres(static_cast<size_t>(clusters) * dim);
  for (float& value : centres) value = 3.0f * normal(generator);
  std::uniform_int_distribution<int32_t> pick(0, clusters - 1);
  std::vector<float> vectors(static_cast<size_t>(count * dim));
  for (int64_t row = 0; row < count; ++row) {
    const int32_t centre = pick(generator);
    for (int32_t d = 0; d < dim; ++d) vectors[row * dim + d] = centres[centre * dim + d] + normal(generator);
  }
  return vectors;
}

// Users "u0".."u{n-1}", items with numeric external ids "100".."{100+n-1}" (so JSON clients may send numbers),
// user u seen items: u % 7 + 1 distinct items starting at (u * 13) % items, oldest first.
inline index::ExportData small_export_data(int32_t users, int32_t items, int32_t dim, uint64_t seed) {
  index::ExportData data;
  data.model_name = "fake";
  data.dataset_name = "synthetic";
  data.dim = dim;
  data.item_vectors = random_vectors(items, dim, seed);
  data.user_vectors = random_vectors(users, dim, seed + 1);
  for (int32_t item = 0; item < items; ++item) data.item_external_ids.push_back(std::to_string(100 + item));
  for (int32_t user = 0; user < users; ++user) {
    data.user_external_ids.push_back("u" + std::to_string(user));
    std::vector<int32_t> seen;
    for (int32_t i = 0; i <= user % 7; ++i) seen.push_back((user * 13 + i) % items);
    data.user_seen_items.push_back(seen);
  }
  data.encoder_config = "[model]\nname = 'fake'\n";
  data.encoder_weights = "fake weights " + std::to_string(seed);
  return data;
}

// ExportData::item_indexed for `items` items with every `left_out_every`-th item (0, n, 2n, ...) left out of the
// index: the shape of an export that indexes only the items a model was trained on.
inline std::vector<uint8_t> indexed_flags(int32_t items, int32_t left_out_every) {
  std::vector<uint8_t> flags(static_cast<size_t>(items));
  for (int32_t item = 0; item < items; ++item) flags[item] = item % left_out_every != 0;
  return flags;
}

// A fresh path under the temporary folder, unique per process and name; removed if it exists.
inline std::string temp_path(const std::string& name) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("embrec-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(path);
  return path.string();
}

}  // namespace embrec::testing
