// HttpServer over libmicrohttpd: an epoll thread pool, bodies gathered per request, blocking requests suspended.
#include "embrec/serve/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstring>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "embrec/util/error.h"

namespace embrec::serve {

using Clock = std::chrono::steady_clock;

namespace {

bool equal_ignoring_case(const std::string& a, const char* b) {
  const size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// One request in flight on a connection: gathered over the access handler's calls, freed when it completes.
struct Pending {
  HttpRequest request;
  Clock::time_point start = Clock::now();
  uint64_t discarded = 0;  // body bytes past max_body_bytes (a chunked body that grew too large)
  std::optional<HttpResponse> response;  // set by the blocking thread before it resumes the connection
  bool close_after = false;              // the connection's last request
};

enum MHD_Result collect(void* cls, enum MHD_ValueKind, const char* key, const char* value) {
  static_cast<std::vector<std::pair<std::string, std::string>>*>(cls)->emplace_back(key ? key : "",
                                                                                      value ? value : "");
  return MHD_YES;
}

std::string address_text(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = "";
  if (address == nullptr) return "";
  if (address->sa_family == AF_INET)
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text, sizeof(text));
  else if (address->sa_family == AF_INET6)
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text, sizeof(text));
  return text;
}

void log_mhd(void*, const char* format, va_list arguments) {
  char message[512];
  std::vsnprintf(message, sizeof(message), format, arguments);
  std::string line(message);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  spdlog::debug("http: {}", line);
}

}  // namespace

const std::string* HttpRequest::query_value(const std::string& name) const {
  for (const auto& [key, value] : query)
    if (key == name) return &value;
  return nullptr;
}

std::string HttpRequest::header(const std::string& name) const {
  for (const auto& [key, value] : headers)
    if (equal_ignoring_case(key, name.c_str())) return value;
  return "";
}

HttpResponse json_error(int status, const std::string& message) {
  const nlohmann::json body{{"error", message}};
  return {status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json", {}};
}

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  Predicate blocking;
  Logger logger;

  MHD_Daemon* daemon = nullptr;
  std::atomic<int> open_connections{0};  // counted here: libmicrohttpd at its own limit stops accepting (clients
                                         // wait in the backlog) instead of refusing
  int listen_socket = -1;
  int port = -1;
  bool ipv6 = false;

  // Blocking requests: queued by the event loops, answered one at a time by `worker`.
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::pair<MHD_Connection*, Pending*>> jobs;
  bool stopping = false;
  std::thread worker;

  HttpResponse answer(const HttpRequest& request) const {
    try {
      return handler(request);
    } catch (const std::exception& error) {
      spdlog::error("{} {}: {}", request.method, request.path, error.what());
      return json_error(500, std::string("internal error: ") + error.what());
    } catch (...) {
      spdlog::error("{} {}: unknown exception", request.method, request.path);
      return json_error(500, "internal error: unknown exception");
    }
  }

  HttpResponse too_large() const {
    return json_error(413, fmt::format("request body larger than max_body_bytes = {}", options.max_body_bytes));
  }

  enum MHD_Result send(MHD_Connection* connection, Pending& pending, const HttpResponse& response) const {
    MHD_Response* reply = MHD_create_response_from_buffer(response.body.size(), const_cast<char*>(response.body.data()),
                                                          MHD_RESPMEM_MUST_COPY);
    if (reply == nullptr) return MHD_NO;
    MHD_add_response_header(reply, MHD_HTTP_HEADER_CONTENT_TYPE, response.content_type.c_str());
    for (const auto& [name, value] : response.headers) MHD_add_response_header(reply, name.c_str(), value.c_str());
    if (pending.close_after) MHD_add_response_header(reply, MHD_HTTP_HEADER_CONNECTION, "close");
    const enum MHD_Result queued = MHD_queue_response(connection, static_cast<unsigned>(response.status), reply);
    MHD_destroy_response(reply);
    if (logger)
      logger(pending.request, response.status, std::chrono::duration<double>(Clock::now() - pending.start).count());
    return queued;
  }

  // The first call for a request: its line and headers are in, no body byte has been read.
  enum MHD_Result begin(MHD_Connection* connection, const char* url, const char* method, Pending& pending) {
    HttpRequest& request = pending.request;
    request.method = method;
    request.path = url;
    MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, collect, &request.query);
    MHD_get_connection_values(connection, MHD_HEADER_KIND, collect, &request.headers);
    if (const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS))
      request.remote_address = address_text(info->client_addr);
    if (const MHD_ConnectionInfo* info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT)) {
      auto* served = static_cast<int64_t*>(info->socket_context);
      if (served != nullptr && ++*served >= options.max_requests_per_connection) pending.close_after = true;
    }
    const std::string length = request.header(MHD_HTTP_HEADER_CONTENT_LENGTH);
    const std::string encoding = request.header(MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (!length.empty()) {
      uint64_t bytes = 0;
      auto [end, error] = std::from_chars(length.data(), length.data() + length.size(), bytes);
      if (error != std::errc() || end != length.data() + length.size() ||
          bytes > static_cast<uint64_t>(options.max_body_bytes))
        return send(connection, pending, too_large());
      request.body.reserve(static_cast<size_t>(bytes));
    } else if (encoding.empty()) {
      request.body_length_known = false;
    }
    return MHD_YES;
  }

  enum MHD_Result on_request(MHD_Connection* connection, const char* url, const char* method, const char* data,
                             size_t* size, void** context) {
    auto* pending = static_cast<Pending*>(*context);
    if (pending == nullptr) {
      pending = new Pending;
      *context = pending;
      return begin(connection, url, method, *pending);
    }
    if (*size != 0) {  // a piece of the body
      if (pending->discarded == 0 && pending->request.body.size() + *size <= static_cast<size_t>(options.max_body_bytes)) {
        pending->request.body.append(data, *size);
      } else {
        pending->discarded += *size;
        // A chunked body this far over the limit is not read to its end for the sake of a 413.
        if (pending->discarded > 16 * static_cast<uint64_t>(options.max_body_bytes)) return MHD_NO;
      }
      *size = 0;
      return MHD_YES;
    }
    // The whole request is in (or a blocking request has been answered and its connection resumed).
    if (pending->response) return send(connection, *pending, *pending->response);
    if (pending->discarded != 0)
      return send(connection, *pending, too_large());
    if (blocking && blocking(pending->request)) {
      std::lock_guard<std::mutex> lock(mutex);
      if (stopping) return send(connection, *pending, json_error(503, "the server is stopping"));
      if (static_cast<int>(jobs.size()) >= options.max_queued_blocking) {
        HttpResponse busy = json_error(
            503, fmt::format("busy: {} requests like this one are already waiting; retry later", jobs.size()));
        busy.headers.emplace_back("Retry-After", "1");
        return send(connection, *pending, busy);
      }
      MHD_suspend_connection(connection);
      jobs.emplace_back(connection, pending);
      wake.notify_one();
      return MHD_YES;
    }
    return send(connection, *pending, answer(pending->request));
  }

  void work() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      wake.wait(lock, [this] { return stopping || !jobs.empty(); });
      if (jobs.empty()) return;  // stopping, and every job answered
      auto [connection, pending] = jobs.front();
      jobs.pop_front();
      lock.unlock();
      HttpResponse response = answer(pending->request);
      lock.lock();
      pending->response = std::move(response);
      MHD_resume_connection(connection);
    }
  }
};

namespace {

// Refuses a connection over the limit at once: libmicrohttpd closes it unanswered. Every connection accepted here
// is counted down when libmicrohttpd reports it closed (connection_notified); the gauge
// embrec_http_open_connections shows the count.
enum MHD_Result accept_policy(void* cls, const sockaddr*, socklen_t) {
  auto* s = static_cast<HttpServer::Impl*>(cls);
  if (s->open_connections.fetch_add(1) >= s->options.max_connections) {
    s->open_connections.fetch_sub(1);
    return MHD_NO;
  }
  return MHD_YES;
}

enum MHD_Result access_handler(void* cls, MHD_Connection* connection, const char* url, const char* method,
                               const char*, const char* data, size_t* size, void** context) {
  return static_cast<HttpServer::Impl*>(cls)->on_request(connection, url, method, data, size, context);
}

void request_completed(void*, MHD_Connection*, void** context, enum MHD_RequestTerminationCode) {
  delete static_cast<Pending*>(*context);
  *context = nullptr;
}

void connection_notified(void* cls, MHD_Connection*, void** socket_context, enum MHD_ConnectionNotificationCode code) {
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    *socket_context = new int64_t(0);
  } else {
    delete static_cast<int64_t*>(*socket_context);
    static_cast<HttpServer::Impl*>(cls)->open_connections.fetch_sub(1);
  }
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, Handler handler, Predicate blocking, Logger logger)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->blocking = std::move(blocking);
  impl_->logger = std::move(logger);
}

HttpServer::~HttpServer() {
  stop();
  if (impl_->listen_socket >= 0) ::close(impl_->listen_socket);  // bound, never started
}

int HttpServer::bind(int port) {
  Impl& s = *impl_;
  if (s.listen_socket >= 0) fail("serve: already bound to {}:{}", s.options.host, s.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int error = ::getaddrinfo(s.options.host.c_str(), service.c_str(), &hints, &found); error != 0)
    fail("serve: cannot resolve host '{}': {}", s.options.host, ::gai_strerror(error));
  std::string why = "no address";
  for (addrinfo* address = found; address != nullptr; address = address->ai_next) {
    const int fd = ::socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC, address->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (::bind(fd, address->ai_addr, address->ai_addrlen) == 0 && ::listen(fd, s.options.listen_backlog) == 0) {
      s.listen_socket = fd;
      s.ipv6 = address->ai_family == AF_INET6;
      break;
    }
    why = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  if (s.listen_socket < 0) fail("serve: cannot bind {}:{} ({})", s.options.host, port, why);
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  ::getsockname(s.listen_socket, reinterpret_cast<sockaddr*>(&bound), &length);
  s.port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return s.port;
}

void HttpServer::start() {
  Impl& s = *impl_;
  if (s.daemon != nullptr) return;
  if (s.listen_socket < 0) bind(0);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
  if (s.ipv6) flags |= MHD_USE_IPv6;
  s.stopping = false;
  s.worker = std::thread([&s] { s.work(); });
  // libmicrohttpd splits its connection limit between the threads and stops accepting at it; ours (accept_policy)
  // is global and refuses at once, so its own is set where no thread reaches it first.
  const unsigned threads = static_cast<unsigned>(std::max(1, s.options.threads));
  const unsigned library_limit = threads * static_cast<unsigned>(std::max(1, s.options.max_connections) + 16);
  // Each connection is a file descriptor: lift the soft limit (often 1024) towards the hard one when it is short.
  rlimit files{};
  const rlim_t wanted = static_cast<rlim_t>(s.options.max_connections) + 256;
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < wanted) {
    files.rlim_cur = std::min(wanted, files.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  s.daemon = MHD_start_daemon(flags, 0, accept_policy, &s, access_handler, &s,
                              MHD_OPTION_LISTEN_SOCKET, s.listen_socket,
                              MHD_OPTION_THREAD_POOL_SIZE, threads,
                              MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(std::max(1, s.options.idle_timeout_s)),
                              MHD_OPTION_CONNECTION_LIMIT, library_limit,
                              MHD_OPTION_NOTIFY_COMPLETED, request_completed, nullptr,
                              MHD_OPTION_NOTIFY_CONNECTION, connection_notified, &s,
                              MHD_OPTION_EXTERNAL_LOGGER, log_mhd, nullptr,
                              MHD_OPTION_END);
  if (s.daemon == nullptr) {
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      s.stopping = true;
    }
    s.wake.notify_all();
    s.worker.join();
    fail("serve: the HTTP server on {}:{} did not start (libmicrohttpd refused the options)", s.options.host, s.port);
  }
}

void HttpServer::stop() {
  Impl& s = *impl_;
  if (s.daemon == nullptr) return;
  // No new connections; the listening socket is ours again (when quiescing fails, MHD_stop_daemon closes it).
  if (MHD_quiesce_daemon(s.daemon) == MHD_INVALID_SOCKET) s.listen_socket = -1;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.stopping = true;
  }
  s.wake.notify_all();
  s.worker.join();  // answers the blocking requests already queued and resumes their connections
  MHD_stop_daemon(s.daemon);
  s.daemon = nullptr;
  if (s.listen_socket >= 0) ::close(s.listen_socket);  // connections in the backlog are refused, not left hanging
  s.listen_socket = -1;
}

bool HttpServer::running() const { return impl_->daemon != nullptr; }

int HttpServer::open_connections() const { return impl_->open_connections.load(); }

}  // namespace embrec::serve
