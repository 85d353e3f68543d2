// Pop: item counts from the training split; every user gets the same scores.
#include "embrec/models/pop.h"

#include <algorithm>

namespace embrec::models {

PopConfig PopConfig::from(ConfigTable&) { return PopConfig{}; }

Pop::Pop(const PopConfig&, const ModelContext& context) {
  counts_ = module_.register_buffer("counts", torch::zeros({context.item_count}, torch::kFloat32));
}

void Pop::fit(const data::Split& split) {
  counts_.zero_();  // a second fit (a reloaded run) counts afresh
  auto counts = counts_.accessor<float, 1>();
  for (int32_t item : split.train.items) counts[item] += 1.0f;
}

void Pop::score_block(const data::Sequences&, const int32_t*, int32_t count, float* out) {
  const float* counts = counts_.data_ptr<float>();
  const int64_t items = counts_.size(0);
  for (int32_t row = 0; row < count; ++row) std::copy(counts, counts + items, out + row * items);
}

EMBREC_REGISTER_MODEL("pop", Pop);

}  // namespace embrec::models
