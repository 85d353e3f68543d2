// BERT4Rec (Sun et al., CIKM 2019): the SASRec encoder made bidirectional (no causal mask), trained as a cloze
// task -- each item of a training sequence is replaced by a [mask] token with probability mask_probability, and the
// masked positions predict their items by softmax over all items. At inference a [mask] is appended after the
// history and its representation is the user vector. Item vectors are the input embedding (tied output layer; the
// paper's extra projection and output bias are left out, so that scores stay inner products an index can serve).
#pragma once

#include "embrec/models/sasrec.h"

namespace embrec::models {

struct Bert4recConfig {
  SasrecConfig encoder;  // dim, layers, heads, max_length (history + the [mask]), dropout, ...; loss must be softmax
  double mask_probability = 0.2;

  static Bert4recConfig from(ConfigTable& table);
};

class Bert4rec final : public SasrecBase {
 public:
  using Config = Bert4recConfig;
  Bert4rec(const Bert4recConfig& config, const ModelContext& context);
  std::string name() const override { return "bert4rec"; }
  torch::nn::Module& module() override { return *encoder(); }
  data::SamplerOptions sampler_options(const data::SamplerOptions& defaults) const override;
  LossParts loss(const TensorBatch& batch) override;
  torch::Tensor user_vectors(const data::Sequences& histories, const int32_t* users, int32_t count) override;

  // The training sequences of a batch ([B, L + 1]: each row's inputs and its last target) with their cloze masks:
  // `masked` true where the item was replaced by the [mask] token (never on padding; each row with items has at
  // least one, its last item when the draw masked none). Uses torch's generator.
  struct Cloze {
    torch::Tensor sequence, masked, input;
  };
  Cloze cloze(const TensorBatch& batch) const;
  int64_t mask_token() const { return context_.item_count + 1; }

 private:
  Bert4recConfig config_;
};

}  // namespace embrec::models
