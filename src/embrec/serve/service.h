// The HTTP JSON service: top-k recommendations for known users, for a history encoded online, and similar items,
// over one export folder that can be swapped while serving (POST /admin/reload or request_reload(), e.g. SIGHUP).
// The transport is HttpServer (http.h): slow or idle clients hold no worker, a reload runs beside the event loops.
//
// Routes (ids are the original, external ids; every response is JSON, errors are {"error": "..."}):
//   GET  /v1/users/{user}/recommendations?k=20&exclude_seen=true
//   POST /v1/recommendations   {"history": [item, ...oldest first], "k": 20, "exclude_seen": true}
//                              (history items are excluded unless exclude_seen is false)
//   POST /v1/items/similar     {"item": item, "k": 10}                        (the item itself is excluded)
//   GET  /healthz              {"status": "ok", "version": ..., ...}
//   GET  /metrics              Prometheus text: requests by route and status, latency histograms, model info
//   POST /admin/reload         optional {"dir": "..."}; default: the folder the service was started with
// Recommendation responses: {"version": "<export version>", "k": k, "items": [{"item": id, "score": s}, ...]} with
// "user" or "item" echoed; items best first, exactly k when enough non-excluded items exist. Item ids in a JSON
// body may be strings or integers (integers are matched as their decimal text).
//
// Status codes: 400 malformed JSON, wrong types, missing or unknown fields, k outside [1, max_k], an empty or too
// long history, a bad query parameter; 403 admin route refused (not loopback / bad token); 404 unknown user or item
// id (also an unknown id inside a history: the message names it and its position) and unknown routes; 405 a known
// route with another method; 411 a JSON route sent neither Content-Length nor a chunked body; 413 body larger than
// max_body_bytes (decided from Content-Length before the body is read); 422 a reload whose export is broken (the
// old export keeps serving); 501 history route when the export has no encoder; 503 more reloads than may wait;
// 500 an unexpected failure (the server keeps running).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "embrec/index/export.h"
#include "embrec/serve/config.h"
#include "embrec/serve/encoder.h"
#include "embrec/serve/http.h"
#include "embrec/serve/metrics.h"


namespace embrec::serve {

// Everything one export serves with; immutable once published, shared by the requests that started on it.
struct Bundle {
  index::LoadedExport data;
  std::unique_ptr<HistoryEncoder> encoder;  // null: the history route answers 501
  std::string version;                      // data.manifest.version()
};

struct ReloadResult {
  bool ok = false;
  std::string version;  // the version serving after the call (the old one when the reload failed)
  std::string error;    // why the new export was rejected
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
  // finish on the old one. A broken export is rejected and the old one keeps serving. Reloads are serialised.
  ReloadResult reload(const std::string& dir = "");
  // Asks the reload thread to reload the folder serving now. Async-signal-safe (one write(2) to a pipe), so a
  // SIGHUP handler may call it.
  void request_reload() noexcept;

  std::string version() const;
  std::shared_ptr<const Bundle> bundle() const;
  const ServiceMetrics& metrics() const { return metrics_; }
  int port() const { return port_; }

  struct Reply;  // a status and a JSON body (defined in service.cpp)

 private:
  std::shared_ptr<const Bundle> load_bundle(const std::string& dir) const;
  void watch_reload_requests();
  Reply route(const HttpRequest& request, const std::string& route);  // route: route_label() of the request

  Reply user_recommendations(const HttpRequest& request, const std::string& user_external) const;
  Reply history_recommendations(const HttpRequest& request) const;
  Reply similar_items(const HttpRequest& request) const;
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
  std::shared_ptr<const Bundle> bundle_;
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
