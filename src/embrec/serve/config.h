// ServeConfig: the HTTP service's settings, read from a TOML table ([serve]) with the defaults next to the fields.
#pragma once

#include <cstdint>
#include <string>

#include "embrec/util/config.h"

namespace embrec::serve {

struct ServeConfig {
  std::string host = "127.0.0.1";
  int32_t port = 8080;
  // Fixed HTTP worker pool. httplib keeps a keep-alive connection on its worker until it goes idle
  // (keep_alive_timeout_s), so this is also the number of clients served at once.
  int32_t threads = 8;
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
  int32_t keep_alive_timeout_s = 5;
  int32_t keep_alive_max_requests = 1000;  // requests on one connection before the server closes it

  static ServeConfig from(ConfigTable& table);
};

}  // namespace embrec::serve
