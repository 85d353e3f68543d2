// The HTTP JSON service: top-k recommendations for known users, for a history encoded online, and similar items,
// over one export folder that can be swapped while serving (POST /admin/reload or request_reload(), e.g. SIGHUP);
// news models also take new articles into the live index (POST /v1/news).
// The transport is HttpServer (http.h): slow or idle clients hold no worker, a reload runs beside the event loops.
//
// Routes (ids are the original, external ids; every response is JSON, errors are {"error": "..."}):
//   GET  /v1/users/{user}/recommendations?k=20&exclude_seen=true
//   POST /v1/recommendations   {"history": [item, ...oldest first], "k": 20, "exclude_seen": true}
//                              (history items are excluded unless exclude_seen is false)
//   POST /v1/items/similar     {"item": item, "k": 10}                        (the item itself is excluded)
//   POST /v1/news              {"id": item, "title": "...", "category": "...", "subcategory": "..."} (category and
//                              subcategory optional): encodes a new article and adds it to the live index, 201
//                              {"item": id, "version": ...}; recommendable at once, until the next reload (below)
//   GET  /healthz              {"status": "ok", "version": ..., ...}
//   GET  /metrics              Prometheus text: requests by route and status, latency histograms, model info
//   POST /admin/reload         optional {"dir": "..."}; default: the folder the service was started with
// Recommendation responses: {"version": "<export version>", "k": k, "items": [{"item": id, "score": s}, ...]} with
// "user" or "item" echoed; items best first, exactly k when enough non-excluded items exist. Item ids in a JSON
// body may be strings or integers (integers are matched as their decimal text).
//
// Live news (POST /v1/news, exports whose encoder encodes items: news models). The article's vector joins the index
// under the next internal item id (after the export's items and the news added before it) and its id the id maps,
// so recommendations and similar items see it from the next request on. It belongs to the export being served,
// not to the export's folder: EVERY reload -- to another export, and also of the same folder (POST /admin/reload
// without "dir", request_reload(), SIGHUP) -- serves what the loaded folder holds, so news added live are gone after
// it unless that export has them (an `embrec export` made after they entered the training data). The reload logs
// how many it dropped and /admin/reload answers that as "dropped_news". The "version" is the export's: adding news
// does not change it. A live news item in a history is encoded by the model's encoder, which may refuse it (a news
// model knows the text of the export's items only: 400). Title, category and subcategory are trimmed of white space;
// titles are at most kMaxNewsTitleCharacters characters, category and subcategory kMaxNewsNameCharacters, ids
// kMaxNewsIdCharacters (characters = UTF-8 code points).
//
// Status codes: 201 news added; 400 malformed JSON, wrong types, missing or unknown fields, k outside [1, max_k], an
// empty or too long history, a bad query parameter, an empty (blank) or too long news title, id, category or
// subcategory, and text the model cannot encode (e.g. no known word in the title); 403 admin route refused (not
// loopback / bad token); 404 unknown user or item id (also an unknown id inside a history: the message names it and
// its position) and unknown routes; 405 a known route with another method; 409 a news id that is already an item
// (of the export, or added live); 411 a JSON route sent neither Content-Length nor a chunked body; 413 body larger
// than max_body_bytes (decided from Content-Length before the body is read); 422 a reload whose export is broken
// (the old export keeps serving); 501 history route when the export has no encoder, news route when it has none
// that encodes items or its index kind takes no new rows (e.g. NSG); 503 more reloads than may wait, or a news add
// that three reloads overtook; 500 an unexpected failure (the server keeps running).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

#include "embrec/index/export.h"
#include "embrec/serve/config.h"
#include "embrec/serve/encoder.h"
#include "embrec/serve/http.h"
#include "embrec/serve/metrics.h"


namespace embrec::serve {

inline constexpr int64_t kMaxNewsTitleCharacters = 1000;
inline constexpr int64_t kMaxNewsNameCharacters = 100;  // category, subcategory
inline constexpr int64_t kMaxNewsIdCharacters = 256;

// A readers-writer lock whose writer, once waiting, holds back readers that come after it. std::shared_mutex alone
// (glibc's rwlock, which prefers readers) would let a steady stream of overlapping searches keep an add waiting for
// ever. Not recursive: a thread holding it must not take it again (a waiting writer would deadlock the two).
class ItemsLock {
 public:
  std::shared_lock<std::shared_mutex> read() const {
    std::lock_guard<std::mutex> turn(turnstile_);  // passes at once unless a writer waits
    return std::shared_lock<std::shared_mutex>(mutex_);
  }
  std::unique_lock<std::shared_mutex> write() const {
    std::lock_guard<std::mutex> turn(turnstile_);  // held while the readers already in finish
    return std::unique_lock<std::shared_mutex>(mutex_);
  }

 private:
  mutable std::mutex turnstile_;
  mutable std::shared_mutex mutex_;
};

// Everything one export serves with, shared by the requests that started on it. Immutable once published, with one
// exception: POST /v1/news appends to data.index, data.item_external_ids and data.item_ids (never changes or removes
// an entry, so an internal id, once read, keeps naming the same item). Whoever reads those three while the service
// runs holds items_lock.read() for as long as it uses what it read (a search and the translation of its ids); the
// add holds items_lock.write(). Everything else (manifest, store, encoder, version, dir) never changes.
struct Bundle {
  index::LoadedExport data;
  std::unique_ptr<HistoryEncoder> encoder;  // null: the history and news routes answer 501
  std::string version;                      // data.manifest.version(); news added live do not change it
  ItemsLock items_lock;

  // News added live: the items from data.manifest.item_count on (read under items_lock).
  int64_t added_news() const {
    return static_cast<int64_t>(data.item_external_ids.size()) - data.manifest.item_count;
  }
};

struct ReloadResult {
  bool ok = false;
  std::string version;       // the version serving after the call (the old one when the reload failed)
  std::string error;         // why the new export was rejected
  int64_t dropped_news = 0;  // news added live to the previous export that the new one does not hold
};

class Service {
 public:
  // Loads `export_dir` (an Error when it is broken: a service never starts without an export).
  Service(ServeConfig config, std::string export_dir, EncoderFactory encoder_factory = nullptr);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Binds config.host on `port` (0 = any free port) and returns the port bound; an Error when it cannot.
  int bind(int port);
  // Starts serving on background threads (binding config.port first unless bind() was called); returns once the
  // server accepts connections.
  void start_in_thread();
  // Stops accepting, lets running requests finish, closes connections. Idempotent.
  void stop();

  // Answers one request: routing, validation, the route's work. What the HTTP server calls for every request
  // whose headers and body are complete; callable directly (tests, fuzzing). Never throws: failures are a 500.
  HttpResponse handle(const HttpRequest& request);

  // Loads `dir` ("" = the folder serving now) beside the current export and swaps it in; requests already running
  // finish on the old one. A broken export is rejected and the old one keeps serving. Reloads are serialised. News
  // added live (POST /v1/news) do not carry over: see "Live news" above.
  ReloadResult reload(const std::string& dir = "");
  // Asks the reload thread to reload the folder serving now. Async-signal-safe (one write(2) to a pipe), so a
  // SIGHUP handler may call it.
  void request_reload() noexcept;

  std::string version() const;
  // The bundle serving now. Reading its index or item id maps while the service runs needs its items_lock.read().
  std::shared_ptr<const Bundle> bundle() const;
  const ServiceMetrics& metrics() const { return metrics_; }
  int port() const { return port_; }

  struct Reply;  // a status and a JSON body (defined in service.cpp)

 private:
  std::shared_ptr<Bundle> load_bundle(const std::string& dir) const;
  std::shared_ptr<Bundle> current_bundle() const;  // bundle(), writable for the news route
  void watch_reload_requests();
  Reply route(const HttpRequest& request, const std::string& route);  // route: route_label() of the request

  Reply user_recommendations(const HttpRequest& request, const std::string& user_external) const;
  Reply history_recommendations(const HttpRequest& request) const;
  Reply similar_items(const HttpRequest& request) const;
  Reply add_news(const HttpRequest& request);
  Reply healthz() const;
  Reply admin_reload(const HttpRequest& request);
  std::string metrics_text() const;
  bool admin_allowed(const HttpRequest& request, Reply& refusal) const;

  ServeConfig config_;
  std::string serving_dir_;  // the folder the current bundle came from, as named; guarded by reload_mutex_
  std::string export_root_;  // absolute, symlinks resolved
  EncoderFactory encoder_factory_;
  ServiceMetrics metrics_;

  mutable std::mutex bundle_mutex_;  // guards the pointer only; a copy is taken per request
  std::shared_ptr<Bundle> bundle_;
  std::mutex reload_mutex_;

  std::unique_ptr<HttpServer> server_;
  int port_ = -1;

  int reload_pipe_[2] = {-1, -1};  // request_reload() writes, the watcher thread reads
  std::atomic<bool> stopping_{false};
  std::thread reload_thread_;
};

// True for 127.0.0.0/8, ::1 and their IPv4-mapped forms.
bool is_loopback_address(const std::string& address);

// The admin token kept in `path`: read when the file exists (an Error when it is empty or readable by group or
// others), else created with a random 256-bit token (64 hex digits) and mode 0600; `created` says which.
std::string load_or_create_admin_token(const std::string& path, bool& created);

}  // namespace embrec::serve
