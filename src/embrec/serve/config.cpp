// ServeConfig: typed reads with range checks naming the key and the file.
#include "embrec/serve/config.h"

#include "embrec/util/error.h"

namespace embrec::serve {

ServeConfig ServeConfig::from(ConfigTable& table) {
  ServeConfig c;
  c.host = table.get("host", c.host);
  c.port = table.get("port", c.port);
  c.threads = table.get("threads", c.threads);
  c.default_k = table.get("default_k", c.default_k);
  c.max_k = table.get("max_k", c.max_k);
  c.max_body_bytes = table.get("max_body_bytes", c.max_body_bytes);
  c.max_history = table.get("max_history", c.max_history);
  c.admin_token = table.get("admin_token", c.admin_token);
  c.admin_loopback_only = table.get("admin_loopback_only", c.admin_loopback_only);
  c.nprobe = table.get("nprobe", c.nprobe);
  c.ef_search = table.get("ef_search", c.ef_search);
  c.keep_alive_timeout_s = table.get("keep_alive_timeout_s", c.keep_alive_timeout_s);
  c.keep_alive_max_requests = table.get("keep_alive_max_requests", c.keep_alive_max_requests);
  auto check = [&](bool ok, const char* key, const std::string& what) {
    if (!ok) fail("{}: key '{}' {}", table.source(), table.key_path(key), what);
  };
  check(!c.host.empty(), "host", "must not be empty");
  check(c.port >= 0 && c.port <= 65535, "port", fmt::format("must be in [0, 65535], got {}", c.port));
  check(c.threads > 0, "threads", fmt::format("must be positive, got {}", c.threads));
  check(c.max_k > 0, "max_k", fmt::format("must be positive, got {}", c.max_k));
  check(c.default_k > 0 && c.default_k <= c.max_k, "default_k",
        fmt::format("must be in [1, max_k = {}], got {}", c.max_k, c.default_k));
  check(c.max_body_bytes > 0, "max_body_bytes", fmt::format("must be positive, got {}", c.max_body_bytes));
  check(c.max_history >= 0, "max_history", fmt::format("must be >= 0, got {}", c.max_history));
  check(c.nprobe >= 0, "nprobe", fmt::format("must be >= 0, got {}", c.nprobe));
  check(c.ef_search >= 0, "ef_search", fmt::format("must be >= 0, got {}", c.ef_search));
  check(c.keep_alive_timeout_s > 0, "keep_alive_timeout_s", "must be positive");
  check(c.keep_alive_max_requests > 0, "keep_alive_max_requests", "must be positive");
  return c;
}

}  // namespace embrec::serve
