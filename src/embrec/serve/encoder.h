// The seam between the server and a sequence model: turn a history of item ids into a user vector online. The
// torch side (SASRec, S4Rec) implements it; the server only sees this interface, so serve/ never includes torch.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embrec/util/error.h"

namespace embrec::index {
struct LoadedExport;
}

namespace embrec::serve {

class HistoryEncoder {
 public:
  virtual ~HistoryEncoder() = default;
  // One user vector of the export's dimension from internal item ids, oldest first (never empty, never longer than
  // max_history() when that is positive). Called from several HTTP worker threads at once: an implementation that
  // is not thread-safe must serialise internally. May throw; the request then answers 500.
  virtual std::vector<float> encode(const std::vector<int32_t>& internal_items_oldest_first) = 0;
  // A fresh user from a history (may be empty when features are given) and named user features (field -> values,
  // as a request's "features" object gives them). A bad feature name or value throws InputError (answered 400).
  // The default, for models without user features: the history alone.
  virtual std::vector<float> encode_user(const std::vector<int32_t>& internal_items_oldest_first,
                                         const std::map<std::string, std::vector<std::string>>& features) {
    if (!features.empty()) throw InputError("this model takes no user features");
    return encode(internal_items_oldest_first);
  }
  // Whether encode_user reads features (the two-tower model trained with user features).
  virtual bool takes_features() const { return false; }
  // The longest history the model takes (SASRec's max_len); 0 = no limit of its own.
  virtual int64_t max_history() const { return 0; }
};

// Builds the encoder for one loaded export (called again on every reload, for the new export). May be empty or
// return null (the export has no encoder, e.g. matrix factorisation): the history route then answers 501. A throw
// makes the export fail to load (a reload is rejected and the old export keeps serving).
using EncoderFactory = std::function<std::unique_ptr<HistoryEncoder>(const index::LoadedExport&)>;

}  // namespace embrec::serve
