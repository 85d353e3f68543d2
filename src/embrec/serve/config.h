// ServeConfig: the HTTP service's settings, read from a TOML table ([serve]) with the defaults next to the fields.
#pragma once

#include <cstdint>
#include <string>

#include "embrec/util/config.h"

namespace embrec::serve {

struct ServeConfig {
  std::string host = "127.0.0.1";
  int32_t port = 8080;
  // Event-loop threads of the HTTP server. Each multiplexes many connections and answers their requests one at a
  // time, so this is the number of requests computed at once, not a limit on clients (max_connections is).
  int32_t threads = 8;
  int32_t max_connections = 1024;       // connections open at once; more are closed as soon as they arrive
  int64_t default_k = 20;               // k when a request names none
  int64_t max_k = 1000;                 // larger k is a 400
  int64_t max_body_bytes = 1 << 20;     // larger request bodies are a 413
  // Longest history accepted online; 0 = the encoder's own limit only. Sequence models read only their last
  // max_length items, so a longer history is almost surely a client bug, not a user.
  int64_t max_history = 1000;
  // Admin routes need "Authorization: Bearer <token>" (the scheme in any case); with no token they are refused.
  // `embrec serve` without admin_token reads admin_token_file ("" = "<export>.admin-token"), creating it at first
  // start with a random token and owner-only permissions (load_or_create_admin_token).
  std::string admin_token;
  std::string admin_token_file;
  bool admin_loopback_only = true;      // admin routes answer only clients on 127.0.0.0/8 or ::1
  // An admin reload may name another export ({"dir": ...}) only inside this folder ("" = the folder holding the
  // start-up export).
  std::string export_root;
  int32_t nprobe = 0;                   // IVF lists probed per query; 0 = the export's value
  int32_t ef_search = 0;                // HNSW candidate list size; 0 = the export's value
  // A connection with no traffic for this long is closed: an idle keep-alive connection, or a client that stalls
  // mid-request (one that keeps trickling bytes keeps only its own connection, never a worker).
  int32_t keep_alive_timeout_s = 5;
  int32_t keep_alive_max_requests = 1000;  // requests on one connection before the server closes it

  static ServeConfig from(ConfigTable& table);
};

}  // namespace embrec::serve
