// Resumable downloads through libcurl: one request per try, the Range header set by hand (CURLOPT_RANGE rather than
// CURLOPT_RESUME_FROM, which fails outright when a server ignores ranges, where starting over is the right answer).
#include "embrec/data/download.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>
#include <thread>

#include "embrec/util/error.h"
#include "embrec/util/progress.h"

namespace embrec::data {

namespace {

namespace fs = std::filesystem;

void initialise_curl_once() {
  static const CURLcode initialised = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (initialised != CURLE_OK) fail("libcurl: cannot initialise: {}", curl_easy_strerror(initialised));
}

int64_t size_or_zero(const std::string& path) {
  std::error_code error;
  const auto size = fs::file_size(path, error);
  return error ? 0 : static_cast<int64_t>(size);
}

// One request's state, shared with libcurl's callbacks.
struct Request {
  CURL* curl = nullptr;
  std::string part_path;
  std::string label;
  int64_t size_bytes = 0;
  int64_t offset = 0;        // bytes of the .part file this request continues
  int64_t range_start = -1;  // the first byte of a 206 answer, from its Content-Range
  std::FILE* file = nullptr;
  int64_t received = 0;
  std::string stopped;  // why a callback stopped the transfer
  bool drop_part = false;
  bool stalled = false;
  int64_t stall_timeout_s = 60;
  int64_t last_bytes = 0;  // the body bytes seen at last_bytes_time
  std::chrono::steady_clock::time_point last_bytes_time = std::chrono::steady_clock::now();
  std::unique_ptr<Progress> progress;
  int64_t shown_kib = 0;
};

bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() &&
         std::equal(prefix.begin(), prefix.end(), text.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto& request = *static_cast<Request*>(user);
  const std::string_view line(data, size * count);
  constexpr std::string_view kContentRange = "content-range:";
  if (line.rfind("HTTP/", 0) == 0) {
    request.range_start = -1;  // a new response (after a redirect)
  } else if (starts_with_ignoring_case(line, kContentRange)) {
    long long start = -1;
    if (std::sscanf(std::string(line.substr(kContentRange.size())).c_str(), " bytes %lld-", &start) == 1)
      request.range_start = start;
  }
  return size * count;
}

// At the first bytes of the body: append to the .part file (206 from where it ends), or start it over (200: the
// server ignored the range). Any other status is an HTTP error whose body is not the file.
bool start_body(Request& request) {
  long status = 0;
  curl_easy_getinfo(request.curl, CURLINFO_RESPONSE_CODE, &status);
  const char* mode = nullptr;
  if (status == 206 && request.offset > 0 && request.range_start == request.offset) {
    mode = "ab";
  } else if (status == 200) {
    if (request.offset > 0) spdlog::info("{}: the server ignored the range request; starting over", request.label);
    request.offset = 0;
    mode = "wb";
  } else if (status == 206) {
    request.stopped = fmt::format("asked for bytes from {}, the server sent them from {}", request.offset,
                                  request.range_start);
    request.drop_part = true;
    return false;
  } else {
    return false;
  }
  request.file = std::fopen(request.part_path.c_str(), mode);
  if (!request.file) {
    request.stopped = fmt::format("{}: cannot open for writing: {}", request.part_path, std::strerror(errno));
    return false;
  }
  curl_off_t length = -1;
  curl_easy_getinfo(request.curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
  const int64_t total = length >= 0 ? request.offset + length : request.size_bytes;
  request.progress = std::make_unique<Progress>(request.label, std::max<int64_t>(total / 1024, 1), "KiB");
  request.shown_kib = request.offset / 1024;
  request.progress->advance(request.shown_kib, 0, "KiB");  // resumed bytes fill the bar, not the rate
  return true;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto& request = *static_cast<Request*>(user);
  if (!request.file && !start_body(request)) return 0;
  const size_t bytes = size * count;
  if (std::fwrite(data, 1, bytes, request.file) != bytes) {
    request.stopped = fmt::format("{}: write failed: {}", request.part_path, std::strerror(errno));
    return 0;
  }
  request.received += static_cast<int64_t>(bytes);
  const int64_t kib = (request.offset + request.received) / 1024;
  if (kib > request.shown_kib) {
    request.progress->advance(kib - request.shown_kib, kib - request.shown_kib, "KiB");
    request.shown_kib = kib;
  }
  return bytes;
}

// Stops a transfer that has received no byte for stall_timeout_s since it connected (libcurl's low-speed limit
// averages over several seconds, so a server that stalls after a burst would be waited on longer than the limit).
int on_progress(void* user, curl_off_t, curl_off_t received, curl_off_t, curl_off_t) {
  auto& request = *static_cast<Request*>(user);
  const auto now = std::chrono::steady_clock::now();
  curl_off_t connected_us = 0;
  curl_easy_getinfo(request.curl, CURLINFO_CONNECT_TIME_T, &connected_us);
  if (connected_us == 0 || received > request.last_bytes) {  // connecting has its own limit
    request.last_bytes = received;
    request.last_bytes_time = now;
  } else if (now - request.last_bytes_time >= std::chrono::seconds(request.stall_timeout_s)) {
    request.stalled = true;
    return 1;
  }
  return 0;
}

struct Outcome {
  bool done = false;
  bool retry = false;
  std::string error;
};

Outcome http_status_outcome(long status) {
  if (status == 200 || status == 206) return {true, false, ""};
  // 416 to a resume: the .part file already holds every byte there is (or is stale); the caller's check decides.
  if (status == 416) return {true, false, ""};
  return {false, status == 408 || status == 429 || status >= 500, fmt::format("HTTP {}", status)};
}

bool worth_retrying(CURLcode code) {
  switch (code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_WRITE_ERROR:
      return false;
    default:
      return true;
  }
}

Outcome transfer_outcome(CURLcode code, Request& request, const char* curl_message, const FetchOptions& options) {
  long status = 0;
  curl_easy_getinfo(request.curl, CURLINFO_RESPONSE_CODE, &status);
  if (!request.stopped.empty()) return {false, request.drop_part, request.stopped};
  if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && status >= 300)) return http_status_outcome(status);
  if (request.stalled)
    return {false, true,
            fmt::format("the server stalled: no data for {} s (EMBREC_FETCH_TIMEOUT_S sets the limit)",
                        options.stall_timeout_s)};
  if (code == CURLE_OPERATION_TIMEDOUT)
    return {false, true,
            fmt::format("no connection within {} s (EMBREC_FETCH_CONNECT_TIMEOUT_S sets the limit)",
                        options.connect_timeout_s)};
  const std::string what = curl_message[0] ? curl_message : curl_easy_strerror(code);
  return {false, worth_retrying(code), fmt::format("transfer failed: {}", what)};
}

Outcome request_once(const std::string& url, Request& request, const FetchOptions& options) {
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) fail("libcurl: cannot create a transfer");
  request.curl = curl.get();
  char curl_message[CURL_ERROR_SIZE] = {0};
  const std::string range = fmt::format("{}-", request.offset);
  curl_easy_setopt(request.curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(request.curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(request.curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(request.curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(request.curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(request.curl, CURLOPT_USERAGENT, "embrec-data-fetch/0.1");
  curl_easy_setopt(request.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(request.curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options.connect_timeout_s));
  request.stall_timeout_s = options.stall_timeout_s;
  curl_easy_setopt(request.curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(request.curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(request.curl, CURLOPT_XFERINFODATA, &request);
  curl_easy_setopt(request.curl, CURLOPT_ERRORBUFFER, curl_message);
  curl_easy_setopt(request.curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(request.curl, CURLOPT_HEADERDATA, &request);
  curl_easy_setopt(request.curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(request.curl, CURLOPT_WRITEDATA, &request);
  if (request.offset > 0) curl_easy_setopt(request.curl, CURLOPT_RANGE, range.c_str());
  const CURLcode code = curl_easy_perform(request.curl);
  if (request.file && std::fclose(request.file) != 0 && request.stopped.empty())
    request.stopped = fmt::format("{}: write failed: {}", request.part_path, std::strerror(errno));
  request.file = nullptr;
  Outcome outcome = transfer_outcome(code, request, curl_message, options);
  if (request.progress && outcome.done) request.progress->finish("KiB");
  request.progress.reset();
  long status = 0;
  curl_easy_getinfo(request.curl, CURLINFO_RESPONSE_CODE, &status);
  if (outcome.done && status == 200 && request.received == 0) {
    std::FILE* empty = std::fopen(request.part_path.c_str(), "wb");  // an empty body is a whole (empty) file
    if (empty) std::fclose(empty);
  }
  return outcome;
}

}  // namespace

void download_to_part(const std::string& url, const std::string& part_path, int64_t size_bytes,
                      const FetchOptions& options) {
  initialise_curl_once();
  const std::string label = fs::path(part_path).stem().string();
  if (size_bytes > 0 && size_or_zero(part_path) > size_bytes) fs::remove(part_path);
  for (int attempt = 1;; ++attempt) {
    Request request;
    request.part_path = part_path;
    request.label = label;
    request.size_bytes = size_bytes;
    request.offset = size_or_zero(part_path);
    if (request.offset > 0) spdlog::info("{}: resuming after {} bytes", label, request.offset);
    const Outcome outcome = request_once(url, request, options);
    if (outcome.done) return;
    if (request.drop_part) fs::remove(part_path);
    const int64_t kept = size_or_zero(part_path);
    const std::string resume =
        kept > 0 ? fmt::format("; {} bytes kept in {}: run again to resume", kept, part_path) : "";
    if (!outcome.retry || attempt >= options.attempts) fail("{}: {}{}", url, outcome.error, resume);
    const double pause_s = options.retry_pause_s * attempt;
    spdlog::warn("{}: {}; try {} of {} in {:.0f} s", url, outcome.error, attempt + 1, options.attempts, pause_s);
    std::this_thread::sleep_for(std::chrono::duration<double>(pause_s));
  }
}

}  // namespace embrec::data
