// ServiceMetrics: counters under one mutex, rendered as Prometheus text.
#include "embrec/serve/metrics.h"

#include <fmt/format.h>

namespace embrec::serve {

std::string prometheus_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void ServiceMetrics::record_request(std::string_view route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto key = std::make_pair(std::string(route), status);
  ++requests_[key];
  if (seconds < 0) return;
  auto it = latency_.find(route);
  if (it == latency_.end()) it = latency_.emplace(std::string(route), Histogram{}).first;
  Histogram& histogram = it->second;
  for (size_t b = 0; b < kLatencyBucketsSeconds.size(); ++b) {
    if (seconds <= kLatencyBucketsSeconds[b]) {
      ++histogram.buckets[b];
      break;
    }
  }
  ++histogram.count;
  histogram.sum_seconds += seconds;
}

void ServiceMetrics::record_reload(bool ok) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++(ok ? reloads_ok_ : reloads_failed_);
}

uint64_t ServiceMetrics::request_count(std::string_view route, int status) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = requests_.find(std::make_pair(std::string(route), status));
  return it == requests_.end() ? 0 : it->second;
}

std::string ServiceMetrics::prometheus_text() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  out += "# HELP embrec_http_requests_total HTTP requests answered, by route and status code.\n";
  out += "# TYPE embrec_http_requests_total counter\n";
  for (const auto& [key, count] : requests_)
    out += fmt::format("embrec_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", prometheus_label(key.first),
                       key.second, count);
  out += "# HELP embrec_http_request_duration_seconds Time from routing to response, by route.\n";
  out += "# TYPE embrec_http_request_duration_seconds histogram\n";
  for (const auto& [route, histogram] : latency_) {
    const std::string label = prometheus_label(route);
    uint64_t cumulative = 0;
    for (size_t b = 0; b < kLatencyBucketsSeconds.size(); ++b) {
      cumulative += histogram.buckets[b];
      out += fmt::format("embrec_http_request_duration_seconds_bucket{{route=\"{}\",le=\"{}\"}} {}\n", label,
                         kLatencyBucketsSeconds[b], cumulative);
    }
    out += fmt::format("embrec_http_request_duration_seconds_bucket{{route=\"{}\",le=\"+Inf\"}} {}\n", label,
                       histogram.count);
    out += fmt::format("embrec_http_request_duration_seconds_sum{{route=\"{}\"}} {}\n", label, histogram.sum_seconds);
    out += fmt::format("embrec_http_request_duration_seconds_count{{route=\"{}\"}} {}\n", label, histogram.count);
  }
  out += "# HELP embrec_reloads_total Export reloads, by result (a failed reload keeps the previous export).\n";
  out += "# TYPE embrec_reloads_total counter\n";
  out += fmt::format("embrec_reloads_total{{result=\"ok\"}} {}\n", reloads_ok_);
  out += fmt::format("embrec_reloads_total{{result=\"error\"}} {}\n", reloads_failed_);
  return out;
}

}  // namespace embrec::serve
