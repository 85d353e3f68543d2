// Sequence augmentation operators.
#include "embrec/data/augment.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "embrec/util/error.h"

namespace embrec::data {

namespace {

// floor(ratio * n) clamped to [lowest, n].
int64_t share(double ratio, int64_t n, int64_t lowest) {
  return std::clamp<int64_t>(static_cast<int64_t>(std::floor(ratio * static_cast<double>(n))), lowest, n);
}

int64_t uniform(int64_t low, int64_t high, std::mt19937_64& random) {  // inclusive
  return std::uniform_int_distribution<int64_t>(low, high)(random);
}

// `count` distinct positions of [0, n), drawn uniformly.
std::vector<int64_t> random_positions(int64_t n, int64_t count, std::mt19937_64& random) {
  std::vector<int64_t> positions(n);
  std::iota(positions.begin(), positions.end(), 0);
  std::shuffle(positions.begin(), positions.end(), random);
  positions.resize(count);
  return positions;
}

}  // namespace

AugmentOptions AugmentOptions::from(ConfigTable& table) {
  AugmentOptions a;
  std::vector<std::string> defaults;
  for (AugmentOperator op : a.operators) defaults.push_back(name_of(kAugmentOperatorNames, op));
  const std::vector<std::string> names = table.get("augmentations", defaults);
  table.check(!names.empty(), "augmentations", "must name at least one operator");
  a.operators.clear();
  for (const std::string& name : names) {
    auto known = std::find_if(kAugmentOperatorNames.begin(), kAugmentOperatorNames.end(),
                              [&](const auto& entry) { return entry.first == name; });
    table.check(known != kAugmentOperatorNames.end(), "augmentations",
                fmt::format("names an unknown operator '{}' (mask, crop, reorder, insert, substitute)", name));
    a.operators.push_back(known->second);
  }
  a.mask_ratio = table.get_in_range("mask_ratio", a.mask_ratio, "[0, 1]");
  a.crop_ratio = table.get_in_range("crop_ratio", a.crop_ratio, "[0, 1]");
  a.reorder_ratio = table.get_in_range("reorder_ratio", a.reorder_ratio, "[0, 1]");
  a.insert_ratio = table.get_in_range("insert_ratio", a.insert_ratio, "[0, 1]");
  a.substitute_ratio = table.get_in_range("substitute_ratio", a.substitute_ratio, "[0, 1]");
  return a;
}

int32_t ItemPool::draw(std::mt19937_64& random) const {
  if (items_.empty()) fail("augment: the item pool for insert/substitute is empty");
  return items_[static_cast<size_t>(uniform(0, static_cast<int64_t>(items_.size()) - 1, random))];
}

std::vector<int32_t> mask_items(const std::vector<int32_t>& sequence, double ratio, int32_t mask_token,
                                std::mt19937_64& random) {
  std::vector<int32_t> out = sequence;
  const int64_t n = static_cast<int64_t>(out.size());
  if (n == 0) return out;
  for (int64_t position : random_positions(n, share(ratio, n, 1), random)) out[position] = mask_token;
  return out;
}

std::vector<int32_t> crop_items(const std::vector<int32_t>& sequence, double removed_ratio, std::mt19937_64& random) {
  const int64_t n = static_cast<int64_t>(sequence.size());
  if (n == 0) return sequence;
  // The paper removes l_c = delta |S| items; what stays is one contiguous window of the rest (at least one item),
  // the form of the CL4SRec / ICLRec reference code.
  const int64_t keep = std::max<int64_t>(1, n - static_cast<int64_t>(std::floor(removed_ratio * static_cast<double>(n))));
  const int64_t start = uniform(0, n - keep, random);
  return std::vector<int32_t>(sequence.begin() + start, sequence.begin() + start + keep);
}

std::vector<int32_t> reorder_items(const std::vector<int32_t>& sequence, double ratio, std::mt19937_64& random) {
  std::vector<int32_t> out = sequence;
  const int64_t n = static_cast<int64_t>(out.size());
  if (n < 2) return out;
  const int64_t length = share(ratio, n, std::min<int64_t>(2, n));
  const int64_t start = uniform(0, n - length, random);
  std::shuffle(out.begin() + start, out.begin() + start + length, random);
  return out;
}

std::vector<int32_t> insert_items(const std::vector<int32_t>& sequence, double ratio, const ItemPool& pool,
                                  std::mt19937_64& random) {
  std::vector<int32_t> out = sequence;
  const int64_t count = share(ratio, static_cast<int64_t>(sequence.size()), 1);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t position = uniform(0, static_cast<int64_t>(out.size()), random);
    out.insert(out.begin() + position, pool.draw(random));
  }
  return out;
}

std::vector<int32_t> substitute_items(const std::vector<int32_t>& sequence, double ratio, const ItemPool& pool,
                                      std::mt19937_64& random) {
  std::vector<int32_t> out = sequence;
  const int64_t n = static_cast<int64_t>(out.size());
  if (n == 0) return out;
  for (int64_t position : random_positions(n, share(ratio, n, 1), random)) out[position] = pool.draw(random);
  return out;
}

std::vector<int32_t> augment(const std::vector<int32_t>& sequence, const AugmentOptions& options, const ItemPool& pool,
                             std::mt19937_64& random) {
  const AugmentOperator op =
      options.operators[static_cast<size_t>(uniform(0, static_cast<int64_t>(options.operators.size()) - 1, random))];
  switch (op) {
    case AugmentOperator::Mask: return mask_items(sequence, options.mask_ratio, options.mask_token, random);
    case AugmentOperator::Crop: return crop_items(sequence, options.crop_ratio, random);
    case AugmentOperator::Reorder: return reorder_items(sequence, options.reorder_ratio, random);
    case AugmentOperator::Insert: return insert_items(sequence, options.insert_ratio, pool, random);
    case AugmentOperator::Substitute: break;
  }
  return substitute_items(sequence, options.substitute_ratio, pool, random);
}

}  // namespace embrec::data
