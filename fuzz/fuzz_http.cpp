// The HTTP service, two ways per input. (1) The input as a request handed straight to Service::handle (first line
// "METHOD /path?a=1&b=2", the rest the body; no headers): every route's JSON and parameter handling without a
// transport in the way. (2) The raw bytes sent to the live service over loopback, the write side then closed:
// libmicrohttpd's parser and our header-time refusals, body gathering and routing. No request may end in a 500 (a
// bad request is a 4xx: checked on the answers and on the service's own counters), an answer once begun must end
// within 5 s, and the server keeps answering (a health check every 256 inputs).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <memory>
#include <string>

#include "embrec/serve/service.h"
#include "fuzz_input.h"
#include "index/synthetic.h"
#include "serve/mean_encoder.h"

namespace {

using namespace embrec;

// Never destroyed: it serves until the process exits (RocksDB's own statics may be gone by then).
serve::Service* service = nullptr;

int start_service() {
  const std::string dir = fuzz::input_path("export");
  index::write_export(embrec::testing::small_export_data(50, 200, 8, 3), dir);
  serve::ServeConfig config;
  config.threads = 4;
  config.admin_token = "fuzz";
  config.max_k = 100;
  service = new serve::Service(config, dir, embrec::testing::mean_encoder_factory(0));
  const int port = service->bind(0);
  service->start_in_thread();
  return port;
}

[[noreturn]] void finding(const std::string& what, const std::string& request, const std::string& response) {
  std::fprintf(stderr, "FINDING: %s\n--- request (%zu bytes)\n%s\n--- response\n%s\n", what.c_str(), request.size(),
               request.c_str(), response.c_str());
  std::abort();
}

// How long the server may be quiet before an input counts as answered. libmicrohttpd keeps a half-closed
// connection whose request is incomplete (most fuzzed inputs) open until its idle timeout, seconds away, so waiting
// for the close would make each such input cost seconds; a complete request is answered well within this. A late
// answer is not lost to the checks: a 500 still shows on the service's counters, checked after every input.
constexpr int kQuietMs = 2;

// A loopback connection to the service with `bytes` sent and the write side closed; closed later with a reset, not
// into TIME_WAIT (a million connections would otherwise use up the ephemeral ports).
int send_to_service(int port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  // libFuzzer's timeout alarm (SIGALRM) may interrupt any call: an interrupted connect goes on in the background.
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    if (errno != EINTR) finding(std::string("connect failed: ") + std::strerror(errno), bytes, "");
    pollfd writable{fd, POLLOUT, 0};
    while (::poll(&writable, 1, 5000) < 0 && errno == EINTR) {
    }
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) finding(std::string("connect failed: ") + std::strerror(error), bytes, "");
  }
  for (size_t sent = 0; sent < bytes.size();) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server may close early on a request it refuses
    sent += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  return fd;
}

// Whether `data` is whole responses only (each with its headers and its Content-Length of body).
bool whole_responses(const std::string& data) {
  for (size_t at = 0; at < data.size();) {
    const size_t end = data.find("\r\n\r\n", at);
    if (end == std::string::npos) return false;
    size_t length = 0;
    const size_t field = data.find("Content-Length: ", at);
    if (field != std::string::npos && field < end) length = std::strtoul(data.c_str() + field + 16, nullptr, 10);
    at = end + 4 + length;
    if (at > data.size()) return false;
  }
  return true;
}

// What the server answers on `fd` (closing it): "" when nothing begins within `quiet_ms`; else everything until
// the server closes or is quiet for `quiet_ms` after whole responses (it keeps the connection open for a pipelined
// request the input left unfinished). Responses begun must be whole within 5 s.
std::string read_answer(int fd, const std::string& request, int quiet_ms) {
  std::string response;
  char buffer[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  for (;;) {
    const bool whole = whole_responses(response);
    const int64_t left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    const int wait = whole ? quiet_ms : static_cast<int>(std::max<int64_t>(0, left));
    pollfd readable{fd, POLLIN, 0};
    const int ready = ::poll(&readable, 1, wait);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      if (!whole) finding("a response not finished within 5 s", request, response);
      break;
    }
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

// The input as a request for Service::handle: method and target on the first line, the body after it.
serve::HttpRequest direct_request(const std::string& input) {
  serve::HttpRequest request;
  const size_t line_end = std::min(input.find('\n'), input.size());
  const std::string line = input.substr(0, line_end);
  const size_t space = line.find(' ');
  request.method = line.substr(0, space);
  const std::string target = space == std::string::npos ? "" : line.substr(space + 1);
  const size_t question = target.find('?');
  request.path = target.substr(0, question);
  if (question != std::string::npos) {
    std::string query = target.substr(question + 1);
    for (size_t start = 0; start <= query.size();) {
      const size_t end = std::min(query.find('&', start), query.size());
      const std::string pair = query.substr(start, end - start);
      const size_t equals = pair.find('=');
      request.query.emplace_back(pair.substr(0, equals), equals == std::string::npos ? "" : pair.substr(equals + 1));
      start = end + 1;
    }
  }
  request.body = line_end < input.size() ? input.substr(line_end + 1) : "";
  request.remote_address = "127.0.0.1";
  return request;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int port = start_service();
  const std::string request(reinterpret_cast<const char*>(data), size);
  const serve::HttpResponse direct = service->handle(direct_request(request));
  if (direct.status == 500) finding("handle() answered 500", request, direct.body);
  const int fd = send_to_service(port, request);
  const std::string response = read_answer(fd, request, kQuietMs);  // closes fd
  for (size_t at = response.find("HTTP/1.1 "); at != std::string::npos; at = response.find("HTTP/1.1 ", at + 1))
    if (response.compare(at + 9, 3, "500") == 0) finding("a 500 answer", request, response);
  if (service->metrics().prometheus_text().find("status=\"500\"") != std::string::npos)
    finding("a request counted with status 500 (this input or one of the last few)", request, response);
  // The server keeps answering: a health check every 256 inputs.
  static uint64_t executions = 0;
  if (++executions % 256 == 0) {
    const std::string health = "GET /healthz HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n";
    const int probe = send_to_service(port, health);
    const std::string answer = read_answer(probe, request, 5000);
    if (answer.rfind("HTTP/1.1 200", 0) != 0) finding("the health check after this input was not answered 200", request, answer);
  }
  return 0;
}
