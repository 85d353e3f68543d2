// Models with a self-supervised pre-training stage run before their training epochs (S3-Rec): the stage's
// interface, the [pretrain] keys every stage has, and the registry that says which models have one. Kept out of
// model.h so that a model without a stage (all the others) never sees it.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "embrec/models/model.h"

namespace embrec::models {

// The [pretrain] keys of every stage, read by the model's reader (its defaults are the model's) and used by the
// trainer: an Adam run of its own (betas from [train]) over the stage's samples before the [train] epochs.
struct PretrainSchedule {
  int64_t epochs = 100;  // check >= 0; 0 = no pre-training
  int64_t batch_size = 256;
  double learning_rate = 1e-3;
  double weight_decay = 0.0;

  // Reads the keys over `defaults`.
  static PretrainSchedule from(ConfigTable& table, const PretrainSchedule& defaults);
};

inline PretrainSchedule PretrainSchedule::from(ConfigTable& table, const PretrainSchedule& defaults) {
  PretrainSchedule s = defaults;
  s.epochs = table.get_at_least("epochs", s.epochs, int64_t{0});
  s.batch_size = table.get_positive("batch_size", s.batch_size);
  s.learning_rate = table.get_positive("learning_rate", s.learning_rate);
  s.weight_decay = table.get_at_least("weight_decay", s.weight_decay, 0.0);
  return s;
}

// A model with a pre-training stage. Each epoch the trainer shuffles the samples (0 .. pretrain_sample_count() - 1)
// by (seed, epoch), cuts them into batches of schedule().batch_size and takes one optimiser step on each batch's
// pretrain_loss; no validation, no early stopping (the S3-Rec paper and code pre-train for a fixed number of
// epochs). What a sample is belongs to the model (S3-Rec: a prefix of a user's training sequence).
class Pretrainable {
 public:
  virtual ~Pretrainable() = default;
  virtual const PretrainSchedule& pretrain_schedule() const = 0;
  virtual int64_t pretrain_sample_count() const = 0;
  // The loss of `samples` as a mean over them (so that the trainer weighs ranks' shares as it does for loss()),
  // with its parts named. Whatever it draws is seeded by (epoch, sample), so a resumed run and every split of a
  // batch across ranks draw the same.
  virtual LossParts pretrain_loss(const std::vector<int32_t>& samples, int64_t epoch) = 0;
};

// The model's pre-training stage, or null when it has none.
inline Pretrainable* pretrain_stage(Model& model) { return dynamic_cast<Pretrainable*>(&model); }

// Reads and checks a model's [pretrain] table (its schedule and its own objective keys) before any data is read;
// returns what hands the values to the model once it is built.
using PretrainApply = std::function<void(Model& model)>;
using PretrainReader = std::function<PretrainApply(ConfigTable& table)>;

inline std::map<std::string, PretrainReader>& pretrain_readers() {
  static std::map<std::string, PretrainReader> readers;
  return readers;
}

// Registers the [pretrain] reader of the model registered as `model_name`; returns true to initialise a static.
inline bool register_pretrain(const std::string& model_name, PretrainReader reader) {
  pretrain_readers()[model_name] = std::move(reader);
  return true;
}

// The reader of a model class M with a nested `PretrainConfig` (`static PretrainConfig from(ConfigTable&)`) and a
// method `set_pretrain_config(const PretrainConfig&)`.
template <typename M>
PretrainReader pretrain_reader_of() {
  return [](ConfigTable& table) -> PretrainApply {
    typename M::PretrainConfig config = M::PretrainConfig::from(table);
    return [config](Model& model) { dynamic_cast<M&>(model).set_pretrain_config(config); };
  };
}

// The reader of the model named `model_name`; null when that model has no pre-training stage.
inline const PretrainReader* find_pretrain_reader(const std::string& model_name) {
  auto it = pretrain_readers().find(model_name);
  return it == pretrain_readers().end() ? nullptr : &it->second;
}

inline std::vector<std::string> pretrain_model_names() {
  std::vector<std::string> names;
  for (const auto& [name, reader] : pretrain_readers()) names.push_back(name);
  return names;
}

}  // namespace embrec::models

// In the model's .cpp, beside EMBREC_REGISTER_MODEL: EMBREC_REGISTER_PRETRAIN("s3rec", S3rec);
#define EMBREC_REGISTER_PRETRAIN(NAME, MODEL)                 \
  static const bool embrec_registered_pretrain_##MODEL = \
      ::embrec::models::register_pretrain(NAME, ::embrec::models::pretrain_reader_of<MODEL>())
