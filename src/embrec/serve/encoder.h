// The seam between the server and a sequence model: turn a history of item ids into a user vector online, and (news
// models) a new article's text into an item vector. The torch side (SASRec, S4Rec, NRMS) implements it; the server
// only sees this interface, so serve/ never includes torch.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "embrec/util/error.h"

namespace embrec::data {
struct NewsText;
}
namespace embrec::index {
struct LoadedExport;
}

namespace embrec::serve {

class HistoryEncoder {
 public:
  virtual ~HistoryEncoder() = default;
  // One user vector of the export's dimension from internal item ids, oldest first (never empty, never longer than
  // max_history() when that is positive). Called from several HTTP worker threads at once: an implementation that
  // is not thread-safe must serialise internally. May throw; the request then answers 500. encode and encode_user
  // run while the service holds its bundle's items lock shared, so they may read the export's index and id maps
  // (never take that lock themselves); the ids may include items added live (POST /v1/news), at or above the
  // export's item count, which a model that knows only the export's items refuses with InputError (400).
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
  // Whether encode_item turns an article's text into an item vector (news models): only then does POST /v1/news add
  // items (else it answers 501).
  virtual bool encodes_items() const { return false; }
  // One item vector of the export's dimension from a new article's text (title non-empty; category and subcategory
  // may be empty = unknown). Called from several HTTP worker threads at once, like encode, and never while the
  // service holds its bundle's items lock. Text the model cannot encode (e.g. a title without a word it knows)
  // throws InputError (answered 400). The default, for models that do not encode items, is never reached by the
  // service (it asks encodes_items() first).
  virtual std::vector<float> encode_item(const data::NewsText& /*article*/) {
    fail("this model does not encode items from their text");
  }
};

// Builds the encoder for one loaded export (called again on every reload, for the new export). May be empty or
// return null (the export has no encoder, e.g. matrix factorisation): the history route then answers 501. A throw
// makes the export fail to load (a reload is rejected and the old export keeps serving).
using EncoderFactory = std::function<std::unique_ptr<HistoryEncoder>(const index::LoadedExport&)>;

}  // namespace embrec::serve
