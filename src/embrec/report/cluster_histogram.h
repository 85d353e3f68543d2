// The cluster-assignment histogram of head vs tail users (the S4Rec paper's head-rate figure): counts per
// cluster as data (JSON) and as a picture (SVG). No torch: it takes plain assignments.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace embrec::report {

struct ClusterHistogram {
  std::vector<int64_t> head;  // [K] head users assigned to each cluster
  std::vector<int64_t> tail;  // [K] tail users assigned to each cluster

  // Share of head users among a cluster's users (0 for an empty cluster).
  double head_rate(int64_t cluster) const;
  nlohmann::json to_json() const;
};

// assignment[u] in [0, cluster_count) or -1 (user left out); is_head[u] 1 for head users. Sizes must match.
ClusterHistogram cluster_histogram(const std::vector<int32_t>& assignment, const std::vector<uint8_t>& is_head,
                                   int64_t cluster_count);

// A self-contained SVG: clusters on the x axis ordered by head rate, bars for the share of head users and of tail
// users that each cluster holds (so both groups are comparable whatever their sizes), and the head rate's spread.
std::string cluster_histogram_svg(const ClusterHistogram& histogram, const std::string& title);

}  // namespace embrec::report
