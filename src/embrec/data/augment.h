// Sequence augmentations for contrastive views (CL4SRec, ICLRec, S4Rec appendix A): mask, crop, reorder, insert,
// substitute. Plain vectors of internal item ids, seeded by the caller's generator; no torch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "embrec/util/config.h"

namespace embrec::data {

enum class AugmentOperator { Mask, Crop, Reorder, Insert, Substitute };
inline const Names<AugmentOperator> kAugmentOperatorNames = {{"mask", AugmentOperator::Mask},
                                                             {"crop", AugmentOperator::Crop},
                                                             {"reorder", AugmentOperator::Reorder},
                                                             {"insert", AugmentOperator::Insert},
                                                             {"substitute", AugmentOperator::Substitute}};

struct AugmentOptions {
  // Operators to draw from, uniformly, once per view (config key `augmentations`).
  std::vector<AugmentOperator> operators{AugmentOperator::Mask, AugmentOperator::Crop, AugmentOperator::Reorder,
                                         AugmentOperator::Insert};
  double mask_ratio = 0.3;        // share of items replaced by the mask token (at least one)
  double crop_ratio = 0.8;        // S4Rec Eq. 16: share of the sequence removed; a contiguous window of the rest stays
  double reorder_ratio = 0.2;     // S4Rec Eq. 17: length of the contiguous window that is shuffled
  double insert_ratio = 0.2;      // items inserted, as a share of the length (at least one)
  double substitute_ratio = 0.2;  // items replaced by other users' items (at least one)
  int32_t mask_token = -1;        // the id written for masked items (the caller's extra embedding row)

  bool uses(AugmentOperator op) const { return std::find(operators.begin(), operators.end(), op) != operators.end(); }
  // Keys: augmentations (names of operators), mask_ratio, crop_ratio, reorder_ratio, insert_ratio, substitute_ratio.
  static AugmentOptions from(ConfigTable& table);
};

// Draws items for insert/substitute "from other users' histories": a uniform pick over all training interactions,
// i.e. proportional to popularity, as drawing a random user's random item would be.
class ItemPool {
 public:
  ItemPool() = default;
  explicit ItemPool(std::vector<int32_t> items) : items_(std::move(items)) {}
  bool empty() const { return items_.empty(); }
  int32_t draw(std::mt19937_64& random) const;

 private:
  std::vector<int32_t> items_;
};

// Each operator on its own (exposed for tests). Sequences of length 0 are returned unchanged; all keep length >= 1.
std::vector<int32_t> mask_items(const std::vector<int32_t>& sequence, double ratio, int32_t mask_token,
                                std::mt19937_64& random);
std::vector<int32_t> crop_items(const std::vector<int32_t>& sequence, double removed_ratio, std::mt19937_64& random);
std::vector<int32_t> reorder_items(const std::vector<int32_t>& sequence, double ratio, std::mt19937_64& random);
std::vector<int32_t> insert_items(const std::vector<int32_t>& sequence, double ratio, const ItemPool& pool,
                                  std::mt19937_64& random);
std::vector<int32_t> substitute_items(const std::vector<int32_t>& sequence, double ratio, const ItemPool& pool,
                                      std::mt19937_64& random);

// One view: an operator drawn uniformly from options.operators, applied once.
std::vector<int32_t> augment(const std::vector<int32_t>& sequence, const AugmentOptions& options, const ItemPool& pool,
                             std::mt19937_64& random);

}  // namespace embrec::data
