// HttpServer: the service's HTTP/1.1 transport, over libmicrohttpd's event-driven daemon.
//
// Why not cpp-httplib (which embrec used first): it gives each connection a worker thread from a fixed pool for
// as long as the connection lives, so eight clients sending a byte every 2 s, or ten idle keep-alive connections,
// held every worker and /healthz waited 4.5-22.5 s behind them (bench/RESULTS.md, "Production hardening"). Here a
// few event-loop threads multiplex all connections: a connection costs a worker only while its complete request is
// being answered, so slow or idle clients wait on their own sockets, never in front of others.
//
// What the server decides from the headers alone, before any body byte is read: 413 when Content-Length exceeds
// max_body_bytes (a chunked body is cut off with a 413 once it passes the limit); a request with no Content-Length
// and no chunked body has an empty body (RFC 9112 §6.3) and says so in `body_length_known`, so a route that needs a
// body can answer 411. The body is read as bytes whatever its Content-Type (no form parsing, no other limit).
// Connections over max_connections are closed at once; a connection idle for idle_timeout_s is closed.
// Requests for which `blocking(request)` is true (a model reload, seconds long) run one at a time on a separate
// thread with their connection suspended, so the event loops keep serving everyone else meanwhile; when
// max_queued_blocking are already waiting, another is answered 503 (Retry-After: 1) at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace embrec::serve {

struct HttpRequest {
  std::string method;
  std::string path;                                          // percent-decoded, without the query
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in the order sent
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string body;
  bool body_length_known = true;  // false: neither Content-Length nor a chunked body was sent
  std::string remote_address;     // e.g. "127.0.0.1" or "::1"

  // The first value of query parameter `name`; null when absent.
  const std::string* query_value(const std::string& name) const;
  // The first header called `name` in any case; "" when absent.
  std::string header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // more headers (e.g. Allow on a 405)
};

// A JSON error response: {"error": message}.
HttpResponse json_error(int status, const std::string& message);

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int threads = 4;                  // event-loop threads; each serves many connections
  int64_t max_body_bytes = 1 << 20;
  int idle_timeout_s = 5;           // a connection idle (or stalled mid-request) this long is closed
  int max_connections = 1024;       // more are closed as soon as they are accepted
  int max_requests_per_connection = 1000;  // then the response says "Connection: close"
  // Blocking requests waiting behind the one running; more are answered 503 at once. Each waiting one holds a
  // connection, so without a bound a client repeating reloads could fill max_connections.
  int max_queued_blocking = 4;
  int listen_backlog = 1024;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  using Predicate = std::function<bool(const HttpRequest&)>;
  // Called once per response sent, the server's own refusals included (seconds from the first byte handled).
  using Logger = std::function<void(const HttpRequest&, int status, double seconds)>;

  // An exception thrown by `handler` becomes a 500 with its message (and an error log line).
  HttpServer(HttpServerOptions options, Handler handler, Predicate blocking = nullptr, Logger logger = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds options.host on `port` (0 = any free port) and returns the port; an Error when it cannot.
  int bind(int port);
  // Starts the event loops (binding options.host on a free port first unless bind() was called); returns at once.
  void start();
  // Stops accepting, lets blocking requests finish, closes every connection. Idempotent.
  void stop();
  bool running() const;
  // Connections open now (accepted, not yet closed).
  int open_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace embrec::serve
