// ServeConfig: typed reads with range checks naming the key and the file.
#include "embrec/serve/config.h"

#include "embrec/util/error.h"

namespace embrec::serve {

ServeConfig ServeConfig::from(ConfigTable& table) {
  ServeConfig c;
  c.host = table.get("host", c.host);
  c.port = table.get("port", c.port);
  c.threads = table.get_positive("threads", c.threads);
  c.max_k = table.get_positive("max_k", c.max_k);
  c.default_k = table.get("default_k", c.default_k);
  c.max_body_bytes = table.get_positive("max_body_bytes", c.max_body_bytes);
  c.max_history = table.get_at_least("max_history", c.max_history, int64_t{0});
  c.admin_token = table.get("admin_token", c.admin_token);
  c.admin_token_file = table.get("admin_token_file", c.admin_token_file);
  c.admin_loopback_only = table.get("admin_loopback_only", c.admin_loopback_only);
  c.export_root = table.get("export_root", c.export_root);
  c.nprobe = table.get_at_least("nprobe", c.nprobe, 0);
  c.ef_search = table.get_at_least("ef_search", c.ef_search, 0);
  c.max_connections = table.get_positive("max_connections", c.max_connections);
  c.keep_alive_timeout_s = table.get_positive("keep_alive_timeout_s", c.keep_alive_timeout_s);
  c.keep_alive_max_requests = table.get_positive("keep_alive_max_requests", c.keep_alive_max_requests);
  table.check(!c.host.empty(), "host", "must not be empty");
  table.check(c.port >= 0 && c.port <= 65535, "port", fmt::format("must be in [0, 65535], got {}", c.port));
  table.check(c.default_k > 0 && c.default_k <= c.max_k, "default_k",
              fmt::format("must be in [1, max_k = {}], got {}", c.max_k, c.default_k));
  return c;
}

}  // namespace embrec::serve
