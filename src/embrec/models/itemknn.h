// ItemKNN: cosine item-item similarity with shrinkage on the binarised training matrix, each item's top neighbours
// kept; a user's score for item j sums the similarities of j to the items in the user's history.
#pragma once

#include "embrec/models/model.h"
#include "embrec/models/sar.h"

namespace embrec::models {

struct ItemKnnConfig {
  int64_t neighbours = 100;  // kept per item (RecBole's ItemKNN default k)
  double shrink = 0.0;       // added to the cosine's denominator: damps pairs of rarely seen items

  static ItemKnnConfig from(ConfigTable& table);
};

// sim(i, j) = c_ij / (sqrt(c_ii c_jj) + shrink) over the co-occurrence c, for j != i; row i keeps its `neighbours`
// largest entries (ties to the lower item id), columns ascending.
CsrMatrix itemknn_similarity(const CsrMatrix& cooccurrence, int64_t neighbours, double shrink);

// score(user, j) = sum over the distinct items i of the user's history of sim(i, j). Unlike SAR it conditions on the
// histories it is given (train at the valid stage, train + valid at the test stage), as embedding models do; the
// similarity is learned from the training split in fit() and checkpointed.
class ItemKnn final : public Model {
 public:
  using Config = ItemKnnConfig;
  ItemKnn(const ItemKnnConfig& config, const ModelContext& context);
  std::string name() const override { return "itemknn"; }
  void fit(const data::Split& split) override;
  torch::nn::Module& module() override { return module_; }
  void score_block(const data::Sequences& histories, const int32_t* users, int32_t count, float* out) override;

  const CsrBuffers& similarity() const { return similarity_; }

 private:
  ItemKnnConfig config_;
  int32_t item_count_;
  torch::nn::Module module_;
  CsrBuffers similarity_;  // item_count x item_count, at most `neighbours` per row
};

}  // namespace embrec::models
