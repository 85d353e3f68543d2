// Cluster histograms count head and tail users per cluster and draw one bar per group and cluster.
#include "embrec/report/cluster_histogram.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "embrec/util/error.h"

namespace embrec::report {
namespace {

TEST(ClusterHistogram, CountsHeadAndTailUsersPerCluster) {
  // Users 0-5: clusters 0, 0, 1, 2, 2, -1 (left out); head users are 0 and 3.
  auto histogram = cluster_histogram({0, 0, 1, 2, 2, -1}, {1, 0, 0, 1, 0, 1}, 3);
  EXPECT_EQ(histogram.head, (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(histogram.tail, (std::vector<int64_t>{1, 1, 1}));
  EXPECT_DOUBLE_EQ(histogram.head_rate(0), 0.5);
  EXPECT_DOUBLE_EQ(histogram.head_rate(1), 0.0);
  const auto json = histogram.to_json();
  EXPECT_EQ(json["non_empty_clusters"], 3);
  EXPECT_EQ(json["clusters"][2]["head"], 1);
  EXPECT_THROW(cluster_histogram({3}, {0}, 3), Error);
  EXPECT_THROW(cluster_histogram({0, 1}, {0}, 3), Error);
}

TEST(ClusterHistogram, SvgHasTwoBarsPerClusterAndTheTitle) {
  auto histogram = cluster_histogram({0, 1, 1, 3}, {1, 0, 1, 0}, 4);
  const std::string svg = cluster_histogram_svg(histogram, "s4rec on demo");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("s4rec on demo"), std::string::npos);
  size_t bars = 0;
  for (size_t at = svg.find("users</title></rect>"); at != std::string::npos; at = svg.find("users</title></rect>", at + 1))
    ++bars;
  EXPECT_EQ(bars, 8u);
  EXPECT_NE(svg.find("cluster 1: 1 head users"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace embrec::report
