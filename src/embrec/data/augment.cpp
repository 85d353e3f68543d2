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

void AugmentOptions::validate(const std::string& source) const {
  static const std::vector<std::string> known{"mask", "crop", "reorder", "insert", "substitute"};
  if (operators.empty()) fail("{}: key 'augmentations' must name at least one operator", source);
  for (const std::string& op : operators)
    if (std::find(known.begin(), known.end(), op) == known.end())
      fail("{}: key 'augmentations': unknown operator '{}' (mask, crop, reorder, insert, substitute)", source, op);
  const std::pair<const char*, double> ratios[] = {{"mask_ratio", mask_ratio},
                                                   {"crop_ratio", crop_ratio},
                                                   {"reorder_ratio", reorder_ratio},
                                                   {"insert_ratio", insert_ratio},
                                                   {"substitute_ratio", substitute_ratio}};
  for (const auto& [key, value] : ratios)
    if (!(value >= 0 && value <= 1)) fail("{}: key '{}' must be in [0, 1], got {}", source, key, value);
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
  const std::string& op =
      options.operators[static_cast<size_t>(uniform(0, static_cast<int64_t>(options.operators.size()) - 1, random))];
  if (op == "mask") return mask_items(sequence, options.mask_ratio, options.mask_token, random);
  if (op == "crop") return crop_items(sequence, options.crop_ratio, random);
  if (op == "reorder") return reorder_items(sequence, options.reorder_ratio, random);
  if (op == "insert") return insert_items(sequence, options.insert_ratio, pool, random);
  return substitute_items(sequence, options.substitute_ratio, pool, random);
}

}  // namespace embrec::data
