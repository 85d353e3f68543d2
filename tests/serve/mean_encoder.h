// MeanEncoder: the mean of a history's item vectors, a stand-in for SASRec that a test can recompute by hand.
// Shared by the service tests and the HTTP fuzz target.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "embrec/index/export.h"
#include "embrec/serve/encoder.h"

namespace embrec::testing {

class MeanEncoder final : public serve::HistoryEncoder {
 public:
  // `max_history` = 0: no limit of the encoder's own.
  MeanEncoder(const index::LoadedExport& loaded, int64_t max_history) : index_(loaded.index), max_history_(max_history) {}
  std::vector<float> encode(const std::vector<int32_t>& items) override {
    std::vector<float> mean(static_cast<size_t>(index_.dim()), 0.0f);
    for (int32_t item : items) {
      const std::vector<float> vector = index_.item_vector(item);
      for (size_t d = 0; d < mean.size(); ++d) mean[d] += vector[d] / static_cast<float>(items.size());
    }
    return mean;
  }
  int64_t max_history() const override { return max_history_; }

 private:
  const index::ItemIndex& index_;
  int64_t max_history_;
};

inline serve::EncoderFactory mean_encoder_factory(int64_t max_history) {
  return [max_history](const index::LoadedExport& loaded) {
    return std::make_unique<MeanEncoder>(loaded, max_history);
  };
}

}  // namespace embrec::testing
