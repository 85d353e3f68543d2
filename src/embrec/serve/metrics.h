// Request counters and latency histograms for GET /metrics, in the Prometheus text exposition format.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace embrec::serve {

// Fixed latency buckets (seconds, upper bounds): from a cached flat search (~0.1 ms) to a slow online encoding.
inline constexpr std::array<double, 14> kLatencyBucketsSeconds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                                0.025,  0.05,    0.1,    0.25,  0.5,    1.0,  2.5};

// Thread-safe. One short critical section per request: at a few thousand requests per second a mutex costs
// far less than the search it counts.
class ServiceMetrics {
 public:
  // `seconds` < 0 when the latency is unknown (a request refused before routing): counted, not timed.
  void record_request(std::string_view route, int status, double seconds);
  void record_reload(bool ok);

  // The counters and histograms as Prometheus text (HELP and TYPE lines included).
  std::string prometheus_text() const;

  // For tests: requests counted for one route and status.
  uint64_t request_count(std::string_view route, int status) const;

 private:
  struct Histogram {
    std::array<uint64_t, kLatencyBucketsSeconds.size()> buckets{};  // per bucket, not cumulative
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t, std::less<>> requests_;
  std::map<std::string, Histogram, std::less<>> latency_;
  uint64_t reloads_ok_ = 0;
  uint64_t reloads_failed_ = 0;
};

// A Prometheus label value with backslash, double quote and newline escaped.
std::string prometheus_label(std::string_view value);

}  // namespace embrec::serve
