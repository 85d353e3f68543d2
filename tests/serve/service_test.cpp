// The HTTP service over loopback: answers equal the index's own search, every bad request is a 4xx JSON error
// that leaves the server answering, metrics count what happened, admin routes are guarded, and hot reloads
// (good and broken, under concurrent load) lose no request.
#include "embrec/serve/service.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <ifaddrs.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <random>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "../index/synthetic.h"
#include "mean_encoder.h"
#include "embrec/eval/evaluator.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"
#include "../util/error_of.h"

namespace embrec::serve {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int32_t kUsers = 60, kItems = 300, kDim = 16;

EncoderFactory mean_encoder_factory() { return embrec::testing::mean_encoder_factory(10); }

ServeConfig test_config() {
  ServeConfig config;
  config.threads = 8;
  config.max_k = 50;
  config.default_k = 20;
  config.max_body_bytes = 4096;
  config.max_history = 20;  // the encoder's 10 is smaller and wins
  config.admin_token = "secret";
  config.admin_loopback_only = true;
  return config;
}

// A raw connection to the service, for what an HTTP client library will not send: trickled bytes, lying or
// missing Content-Length, idle sockets.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return connected_; }
  bool send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // Bytes received until one whole response (headers and Content-Length body) is in, the peer closes, or
  // `timeout` passes.
  std::string receive(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const size_t end = got.find("\r\n\r\n");
      if (end != std::string::npos) {
        const size_t field = got.find("Content-Length: ");
        const size_t length = field == std::string::npos || field > end ? 0 : std::stoul(got.substr(field + 16));
        if (got.size() >= end + 4 + length) return got;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return got;
      pollfd descriptor{fd_, POLLIN, 0};
      if (::poll(&descriptor, 1, static_cast<int>(left.count())) <= 0) return got;
      char buffer[4096];
      const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) return got;
      got.append(buffer, static_cast<size_t>(n));
    }
  }
  // The status code of a response received whole, or -1.
  static int status(const std::string& response) {
    return response.rfind("HTTP/1.1 ", 0) == 0 && response.size() >= 12 ? std::stoi(response.substr(9, 3)) : -1;
  }

 private:
  int fd_;
  bool connected_ = false;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Two exports of the same ids with different vectors (A, B), and a broken copy of A (truncated index).
class ServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(embrec::testing::temp_path("serve"));
    data_a_ = new index::ExportData(embrec::testing::small_export_data(kUsers, kItems, kDim, 5));
    // Every other user has seen its own three best items (by hand-computed inner products), so a response that
    // forgot to exclude seen items differs from the expected one.
    for (int32_t user = 1; user < kUsers; ++user) {
      std::vector<std::pair<float, int32_t>> scores;
      for (int32_t item = 0; item < kItems; ++item) {
        float dot = 0;
        for (int32_t d = 0; d < kDim; ++d)
          dot += data_a_->user_vectors[user * kDim + d] * data_a_->item_vectors[item * kDim + d];
        scores.emplace_back(-dot, item);
      }
      std::sort(scores.begin(), scores.end());
      std::vector<int32_t>& seen = data_a_->user_seen_items[user];
      for (int i = 0; i < 3; ++i)
        if (std::find(seen.begin(), seen.end(), scores[i].second) == seen.end()) seen.push_back(scores[i].second);
    }
    // User u0 has seen all but ten items: its list must still hold exactly the ten left.
    data_a_->user_seen_items[0].clear();
    for (int32_t item = 0; item < kItems - 10; ++item) data_a_->user_seen_items[0].push_back(item);
    index::ExportData data_b = embrec::testing::small_export_data(kUsers, kItems, kDim, 9);
    index::ExportOptions options;
    version_a_ = new std::string(index::write_export(*data_a_, *root_ + "/a", options).version());
    version_b_ = new std::string(index::write_export(data_b, *root_ + "/b", options).version());
    index::write_export(*data_a_, *root_ + "/broken", options);
    const std::string index_path = *root_ + "/broken/items.faiss";
    const std::string bytes = read_file(index_path);
    std::ofstream(index_path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 100);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
    delete data_a_;
    delete version_a_;
    delete version_b_;
  }
  void SetUp() override { start(test_config(), mean_encoder_factory()); }
  void TearDown() override {
    if (service_) service_->stop();
  }

  void start(const ServeConfig& config, EncoderFactory factory, const std::string& dir = "") {
    if (service_) service_->stop();
    service_ = std::make_unique<Service>(config, dir.empty() ? *root_ + "/a" : dir, std::move(factory));
    port_ = service_->bind(0);
    service_->start_in_thread();
  }
  httplib::Client client(const std::string& host = "127.0.0.1") const {
    httplib::Client c(host, port_);
    c.set_tcp_nodelay(true);
    c.set_connection_timeout(5);
    c.set_read_timeout(5);
    return c;
  }
  // Seconds of the slowest of `count` health checks, `pause` apart, each expected to answer 200 with `version`.
  double slowest_health_check(int count, std::chrono::milliseconds pause, const std::string& version) const {
    double worst = 0;
    for (int i = 0; i < count; ++i) {
      const auto start = std::chrono::steady_clock::now();
      const httplib::Result health = client().Get("/healthz");
      worst = std::max(worst, seconds_since(start));
      EXPECT_EQ(body(health).value("version", ""), version);
      std::this_thread::sleep_for(pause);
    }
    return worst;
  }
  static json body(const httplib::Result& result) {
    EXPECT_TRUE(result) << "no response: " << httplib::to_string(result.error());
    if (!result) return json();
    json parsed = json::parse(result->body, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << result->body;
    return parsed;
  }
  std::vector<float> user_vector(int32_t user) const {
    return {data_a_->user_vectors.begin() + user * kDim, data_a_->user_vectors.begin() + (user + 1) * kDim};
  }
  // The items list a response should hold for these hits.
  json expected_items(const std::vector<index::ScoredItem>& hits) const {
    json items = json::array();
    for (const index::ScoredItem& hit : hits)
      items.push_back({{"item", data_a_->item_external_ids[hit.item]}, {"score", hit.score}});
    return items;
  }
  static void expect_items(const json& actual, const json& expected) {
    ASSERT_EQ(actual.size(), expected.size()) << actual.dump();
    for (size_t i = 0; i < actual.size(); ++i) {
      EXPECT_EQ(actual[i]["item"], expected[i]["item"]) << i;
      EXPECT_NEAR(actual[i]["score"].get<double>(), expected[i]["score"].get<double>(), 1e-5) << i;
    }
  }
  // Waits (up to two seconds) for a condition that the server reaches just after answering, e.g. a counter
  // updated by the logger once the response has been written.
  static bool eventually(const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!condition()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  static std::string* root_;
  static index::ExportData* data_a_;
  static std::string* version_a_;
  static std::string* version_b_;
  std::unique_ptr<Service> service_;
  int port_ = 0;
};
std::string* ServiceTest::root_ = nullptr;
index::ExportData* ServiceTest::data_a_ = nullptr;
std::string* ServiceTest::version_a_ = nullptr;
std::string* ServiceTest::version_b_ = nullptr;

TEST_F(ServiceTest, KnownUserRecommendationsEqualIndexSearchWithSeenExcluded) {
  const std::shared_ptr<const Bundle> bundle = service_->bundle();
  httplib::Client http = client();
  for (int32_t user : {1, 2, 6, 13, 59}) {
    SCOPED_TRACE(user);
    const std::string external = "u" + std::to_string(user);
    const json reply = body(http.Get(("/v1/users/" + external + "/recommendations?k=10").c_str()));
    EXPECT_EQ(reply["user"], external);
    EXPECT_EQ(reply["k"], 10);
    EXPECT_EQ(reply["version"], *version_a_);
    const std::vector<int32_t>& seen = data_a_->user_seen_items[user];
    expect_items(reply["items"], expected_items(bundle->data.index.search(user_vector(user).data(), 10, seen)));
    for (const json& item : reply["items"])
      for (int32_t seen_item : seen) EXPECT_NE(item["item"], data_a_->item_external_ids[seen_item]);

    const json unfiltered = body(http.Get(("/v1/users/" + external + "/recommendations?k=10&exclude_seen=false").c_str()));
    expect_items(unfiltered["items"], expected_items(bundle->data.index.search(user_vector(user).data(), 10)));
    const int32_t best = std::stoi(unfiltered["items"][0]["item"].get<std::string>()) - 100;  // "1xx" = item xx
    EXPECT_NE(std::find(seen.begin(), seen.end(), best), seen.end()) << "the unfiltered best item is a seen one";
  }
  const json defaulted = body(http.Get("/v1/users/u3/recommendations"));
  EXPECT_EQ(defaulted["k"], 20);
  EXPECT_EQ(defaulted["items"].size(), 20u);
}

TEST_F(ServiceTest, UserWhoSawAllButTenItemsGetsExactlyThoseTen) {
  httplib::Client http = client();
  const json reply = body(http.Get("/v1/users/u0/recommendations?k=10"));
  std::set<std::string> got;
  for (const json& item : reply["items"]) got.insert(item["item"].get<std::string>());
  std::set<std::string> unseen;
  for (int32_t item = kItems - 10; item < kItems; ++item) unseen.insert(data_a_->item_external_ids[item]);
  EXPECT_EQ(got, unseen);
  EXPECT_EQ(body(http.Get("/v1/users/u0/recommendations?k=30"))["items"].size(), 10u);  // only ten remain
}

TEST_F(ServiceTest, HistoryRecommendationsEncodeOnlineAndExcludeTheHistory) {
  const std::shared_ptr<const Bundle> bundle = service_->bundle();
  httplib::Client http = client();
  // Numbers and strings both name items ("105" is internal item 5).
  const json reply =
      body(http.Post("/v1/recommendations", R"({"history": [105, "110", "107"], "k": 15})", "application/json"));
  EXPECT_EQ(reply["k"], 15);
  EXPECT_EQ(reply["version"], *version_a_);
  std::vector<float> mean(kDim, 0.0f);
  for (int32_t item : {5, 10, 7})
    for (int32_t d = 0; d < kDim; ++d) mean[d] += data_a_->item_vectors[item * kDim + d] / 3.0f;
  expect_items(reply["items"], expected_items(bundle->data.index.search(mean.data(), 15, {5, 10, 7})));
  for (const json& item : reply["items"]) EXPECT_TRUE(item["item"] != "105" && item["item"] != "110" && item["item"] != "107");
}

// The service and `embrec eval` agree: on histories whose next item often repeats an earlier one, a history
// request ranks exactly as the evaluator does -- with exclude_seen = true as under exclude = "history" (a repeated
// target is a miss in both), with exclude_seen = false as under exclude = "none".
TEST_F(ServiceTest, HistoryRequestsRankAsTheEvaluatorOnHistoriesWithRepeats) {
  const std::shared_ptr<const Bundle> bundle = service_->bundle();
  httplib::Client http = client();
  constexpr int32_t kUsersHere = 40;
  constexpr int64_t k = 10;
  std::mt19937 random(17);
  std::uniform_int_distribution<int32_t> any(0, kItems - 1), length(2, 8);
  embrec::testing::MeanEncoder encoder(bundle->data, 10);
  data::EvalTask task;
  std::vector<float> user_vectors;
  std::vector<std::vector<int32_t>> histories;
  for (int32_t u = 0; u < kUsersHere; ++u) {
    std::vector<int32_t> history(static_cast<size_t>(length(random)));
    for (int32_t& item : history) item = any(random);
    const std::vector<float> vector = encoder.encode(history);
    // Every other user's next item repeats one of its history items; the others' is a new item placed around the
    // top 10 by the user's vector (so that hits and misses both occur).
    int32_t target = history[static_cast<size_t>(any(random)) % history.size()];
    if (u % 2 == 1) {
      std::vector<std::pair<float, int32_t>> ranked;
      for (int32_t item = 0; item < kItems; ++item) {
        if (std::find(history.begin(), history.end(), item) != history.end()) continue;
        float dot = 0;
        for (int32_t d = 0; d < kDim; ++d) dot += vector[d] * data_a_->item_vectors[item * kDim + d];
        ranked.emplace_back(-dot, item);
      }
      std::sort(ranked.begin(), ranked.end());
      target = ranked[static_cast<size_t>(u % 13)].second;
    }
    task.history.push_user(history.data(), static_cast<int64_t>(history.size()));
    task.targets.push_user(&target, 1);
    user_vectors.insert(user_vectors.end(), vector.begin(), vector.end());
    histories.push_back(history);
  }
  // One group per user, so the evaluator's result holds each user's own metrics.
  eval::UserGroups each;
  for (int32_t u = 0; u < kUsersHere; ++u) each.names.push_back("u" + std::to_string(u)), each.user_group.push_back(u);
  eval::EmbeddingScorer scorer(user_vectors.data(), kUsersHere, data_a_->item_vectors.data(), kItems, kDim);
  for (const auto& [exclude_seen, exclude] : {std::pair{true, eval::Exclude::History}, {false, eval::Exclude::None}}) {
    SCOPED_TRACE(exclude_seen);
    eval::EvalConfig config;
    config.ks = {k};
    config.metrics = {"hr", "ndcg", "mrr"};
    config.select = "hr@10";
    config.exclude = exclude;
    const eval::EvalResult offline = eval::evaluate(scorer, task, config, &each);
    EXPECT_GE(offline.repeat_targets, kUsersHere / 2);
    int64_t hits = 0;
    for (int32_t u = 0; u < kUsersHere; ++u) {
      json request = {{"history", json::array()}, {"k", k}, {"exclude_seen", exclude_seen}};
      for (int32_t item : histories[u]) request["history"].push_back(data_a_->item_external_ids[item]);
      const json reply = body(http.Post("/v1/recommendations", request.dump(), "application/json"));
      ASSERT_EQ(reply["items"].size(), static_cast<size_t>(k)) << reply.dump();
      const std::string target = data_a_->item_external_ids[*task.targets.begin(u)];
      int64_t position = k;  // the target's place in the served list; k = absent
      for (int64_t p = 0; p < k; ++p)
        if (reply["items"][p]["item"] == target) position = p;
      const std::string group = "u" + std::to_string(u);
      EXPECT_EQ(offline.value("hr@10", group), position < k ? 1.0 : 0.0) << group;
      EXPECT_NEAR(offline.value("ndcg@10", group), position < k ? 1.0 / std::log2(position + 2.0) : 0.0, 1e-12)
          << group;
      EXPECT_NEAR(offline.value("mrr@10", group), position < k ? 1.0 / (position + 1.0) : 0.0, 1e-12) << group;
      hits += position < k;
      if (exclude_seen && u % 2 == 0) EXPECT_EQ(position, k) << group << ": a repeated target is never served";
    }
    EXPECT_GT(hits, 0);  // the comparison is not all misses
  }
  const json bad = body(http.Post("/v1/recommendations", R"({"history": [105], "exclude_seen": "yes"})",
                                  "application/json"));
  EXPECT_NE(bad["error"].get<std::string>().find("field 'exclude_seen' must be true or false"), std::string::npos);
}

TEST_F(ServiceTest, SimilarItemsExcludeTheItemItself) {
  const std::shared_ptr<const Bundle> bundle = service_->bundle();
  httplib::Client http = client();
  const json reply = body(http.Post("/v1/items/similar", R"({"item": "150", "k": 5})", "application/json"));
  EXPECT_EQ(reply["item"], "150");
  const float* vector = data_a_->item_vectors.data() + 50 * kDim;
  expect_items(reply["items"], expected_items(bundle->data.index.search(vector, 5, {50})));
  for (const json& item : reply["items"]) EXPECT_NE(item["item"], "150");
  EXPECT_EQ(body(http.Post("/v1/items/similar", R"({"item": 150})", "application/json"))["items"].size(), 20u);
}

TEST_F(ServiceTest, BadInputsAre4xxJsonErrorsAndTheServerKeepsAnswering) {
  struct Case {
    const char* method;
    std::string path;
    std::string body;
    int status;
    std::string needle;  // part of the error message
  };
  std::string long_history = R"({"history": [)";
  for (int i = 0; i < 11; ++i) long_history += (i ? "," : "") + std::to_string(100 + i);
  long_history += "]}";
  std::string oversized = R"({"history": [)";
  for (int i = 0; i < 1000; ++i) oversized += (i ? ",\"" : "\"") + std::to_string(100 + i % 10) + "\"";
  oversized += "]}";
  ASSERT_GT(oversized.size(), 4096u);
  const std::vector<Case> cases = {
      {"POST", "/v1/recommendations", R"({"history": [100, )", 400, "malformed JSON"},
      {"POST", "/v1/recommendations", "", 400, "must be a JSON object"},
      {"POST", "/v1/recommendations", "[100, 101]", 400, "must be a JSON object, got an array"},
      {"POST", "/v1/recommendations", R"({"history": "100"})", 400, "field 'history' must be an array"},
      {"POST", "/v1/recommendations", R"({"history": [100, {"id": 1}]})", 400, "history[1] must be a string or"},
      {"POST", "/v1/recommendations", R"({"history": [100], "k": "5"})", 400, "field 'k' must be an integer"},
      {"POST", "/v1/recommendations", R"({"history": [100], "k": 2.5})", 400, "field 'k' must be an integer"},
      {"POST", "/v1/recommendations", R"({"history": [100], "k": 0})", 400, "k must be in [1, 50], got 0"},
      {"POST", "/v1/recommendations", R"({"history": [100], "k": 51})", 400, "k must be in [1, 50], got 51"},
      {"POST", "/v1/recommendations", R"({"history": [100], "k": 18446744073709551615})", 400, "k must be in"},
      {"POST", "/v1/recommendations", R"({"k": 5})", 400, "missing field 'history'"},
      {"POST", "/v1/recommendations", R"({"history": [100], "K": 5})", 400, "unknown field 'K'"},
      {"POST", "/v1/items/similar", R"({"item": "150", "k": 1e999})", 400, "malformed JSON"},
      {"POST", "/v1/items/similar", R"({"item": "150", "k": -1e400})", 400, "malformed JSON"},
      {"POST", "/v1/recommendations", R"({"history": [)" + std::string(400, '7') + "]}", 400, "malformed JSON"},
      {"POST", "/v1/recommendations", R"({"history": []})", 400, "must not be empty"},
      {"POST", "/v1/recommendations", long_history, 400, "has 11 items; at most 10"},
      {"POST", "/v1/recommendations", R"({"history": [100, "nope", 101]})", 404, "unknown item 'nope' (history[1])"},
      {"POST", "/v1/recommendations", oversized, 413, "max_body_bytes = 4096"},
      {"POST", "/v1/items/similar", R"({"item": [150]})", 400, "field 'item' must be a string or an integer"},
      {"POST", "/v1/items/similar", R"({"item": "99"})", 404, "unknown item '99'"},
      {"POST", "/v1/items/similar", R"({"k": 3})", 400, "missing field 'item'"},
      {"GET", "/v1/users/u1/recommendations?k=0", "", 400, "k must be in [1, 50], got 0"},
      {"GET", "/v1/users/u1/recommendations?k=-3", "", 400, "got -3"},
      {"GET", "/v1/users/u1/recommendations?k=51", "", 400, "got 51"},
      {"GET", "/v1/users/u1/recommendations?k=ten", "", 400, "query parameter 'k' must be an integer, got 'ten'"},
      {"GET", "/v1/users/u1/recommendations?k=5x", "", 400, "must be an integer, got '5x'"},
      {"GET", "/v1/users/u1/recommendations?exclude_seen=maybe", "", 400, "'exclude_seen' must be true or false"},
      {"GET", "/v1/users/u1/recommendations?top=5", "", 400, "unknown query parameter 'top'"},
      {"GET", "/v1/users/nobody/recommendations", "", 404, "unknown user 'nobody'"},
      {"GET", "/v1/users/%FF%FE/recommendations", "", 404, "unknown user"},  // invalid UTF-8 echoed safely
      {"GET", "/v2/nothing", "", 404, "no route for GET /v2/nothing"},
      {"GET", "/v1/recommendations", "", 405, "GET is not served on /v1/recommendations (use POST)"},
      {"POST", "/healthz", "{}", 405, "POST is not served on /healthz (use GET)"},
      {"POST", "/v1/users/u1/recommendations", "{}", 405, "(use GET)"},
  };
  httplib::Client http = client();
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.path + " " + c.body.substr(0, 60));
    const httplib::Result result = std::string(c.method) == "GET"
                                       ? http.Get(c.path.c_str())
                                       : http.Post(c.path.c_str(), c.body, "application/json");
    ASSERT_TRUE(result) << httplib::to_string(result.error());
    EXPECT_EQ(result->status, c.status) << result->body;
    EXPECT_EQ(result->get_header_value("Content-Type"), "application/json");
    if (c.status == 405) EXPECT_NE(result->get_header_value("Allow"), "");
    const json reply = body(result);
    ASSERT_TRUE(reply.is_object() && reply.contains("error") && reply["error"].is_string()) << result->body;
    EXPECT_NE(reply["error"].get<std::string>().find(c.needle), std::string::npos) << reply["error"];
    const httplib::Result health = client().Get("/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
  }
}

// The regressions of the cpp-httplib server, where each connection held a worker for its whole life: eight
// trickling clients made /healthz wait 22.5 s, ten idle keep-alive connections 4.5 s. Here two event-loop
// threads serve 10 idle and 8 trickling connections, and health checks still answer at once.
TEST_F(ServiceTest, SlowAndIdleClientsHoldNoWorker) {
  ServeConfig config = test_config();
  config.threads = 2;
  start(config, mean_encoder_factory());
  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 10; ++i) {
    idle.push_back(std::make_unique<RawConnection>(port_));
    ASSERT_TRUE(idle.back()->connected());
  }
  const std::string body = R"({"item": "150", "k": 3})";
  const std::string request = "POST /v1/items/similar HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<int> statuses(8, 0);
  std::vector<std::thread> slow;
  for (int c = 0; c < 8; ++c)
    slow.emplace_back([&, c] {
      RawConnection connection(port_);
      // One byte every 15 ms: about 2 s for the whole request.
      for (char byte : request) {
        if (!connection.send(std::string(1, byte))) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(15));
      }
      statuses[c] = RawConnection::status(connection.receive());
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double worst = slowest_health_check(20, std::chrono::milliseconds(50), *version_a_);
  // Generous for sanitizer builds on a loaded machine; the stalls this guards against were seconds long.
  EXPECT_LT(worst, 0.5) << "a health check waited behind slow clients";
  for (std::thread& thread : slow) thread.join();
  for (int c = 0; c < 8; ++c) EXPECT_EQ(statuses[c], 200) << "slow client " << c << " was not answered";
}

TEST_F(ServiceTest, BodyLimitsAreDecidedFromTheHeadersAtOnce) {
  const auto answer = [this](const std::string& request, double& seconds) {
    RawConnection connection(port_);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(connection.send(request));
    const std::string response = connection.receive();
    seconds = seconds_since(start);
    return response;
  };
  struct Case {
    std::string head;  // request line and headers, no body sent
    int status;
    std::string needle;
  };
  const std::string token = "Authorization: Bearer secret\r\n";
  const std::vector<Case> cases = {
      {"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413, "max_body_bytes = 4096"},
      {"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n", 413,
       "max_body_bytes"},
      {"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, ""},
      {"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\n\r\n", 411, "Content-Length"},
      {"POST /v1/items/similar HTTP/1.1\r\nHost: x\r\n\r\n", 411, "Content-Length"},
      // The README's `curl -X POST .../admin/reload`: no body, no Content-Length: reload the serving folder.
      {"POST /admin/reload HTTP/1.1\r\nHost: x\r\n" + token + "\r\n", 200, "\"ok\":true"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.head);
    double seconds = 0;
    const std::string response = answer(c.head, seconds);
    EXPECT_EQ(RawConnection::status(response), c.status) << response;
    EXPECT_NE(response.find(c.needle), std::string::npos) << response;
    EXPECT_LT(seconds, 1.0) << "the answer waited for a body that never came";
  }
  // A chunked body is cut off with a 413 once it passes the limit.
  const std::string chunk(5000, ' ');
  double seconds = 0;
  const std::string chunked =
      answer("POST /v1/items/similar HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n" + chunk +
                 "\r\n0\r\n\r\n",
             seconds);
  EXPECT_EQ(RawConnection::status(chunked), 413) << chunked;
  // A small chunked body is read like any other.
  const std::string small = answer(
      "POST /v1/items/similar HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"item\": \r\n"
      "7\r\n\"150\"}\n\r\n0\r\n\r\n",
      seconds);
  EXPECT_EQ(RawConnection::status(small), 200) << small;
}

// `curl -d` sends application/x-www-form-urlencoded; its body is still the JSON it carries, and max_body_bytes is
// the only size limit whatever the content type (cpp-httplib refused form bodies over 8 KiB with a 413).
TEST_F(ServiceTest, ContentTypeNeverLimitsTheBody) {
  ServeConfig config = test_config();
  config.max_body_bytes = 1 << 20;
  start(config, mean_encoder_factory());
  const std::string body = R"({"item": "150",)" + std::string(20000, ' ') + R"("k": 3})";
  for (const char* type : {"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain",
                           "application/json"}) {
    const httplib::Result result = client().Post("/v1/items/similar", body, type);
    ASSERT_TRUE(result) << type;
    EXPECT_EQ(result->status, 200) << type << ": " << result->body;
  }
}

// A reload runs beside the event loops: with one event-loop thread and an encoder that takes 1 s to build, health
// checks during the reload still answer at once, and the reload answers when it is done.
TEST_F(ServiceTest, AReloadDoesNotHoldTheEventLoop) {
  ServeConfig config = test_config();
  config.threads = 1;
  std::atomic<bool> slow{false};
  start(config, [&slow](const index::LoadedExport& loaded) -> std::unique_ptr<HistoryEncoder> {
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    return std::make_unique<embrec::testing::MeanEncoder>(loaded, 10);
  });
  slow = true;
  int reload_status = 0;
  double reload_seconds = 0;
  std::thread reloading([&] {
    const auto start = std::chrono::steady_clock::now();
    const httplib::Result result =
        client().Post("/admin/reload", {{"Authorization", "Bearer secret"}}, json{{"dir", *root_ + "/b"}}.dump(),
                      "application/json");
    reload_seconds = seconds_since(start);
    reload_status = result ? result->status : -1;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // The old export serves until the new one is ready.
  EXPECT_LT(slowest_health_check(5, std::chrono::milliseconds(0), *version_a_), 0.5);
  reloading.join();
  EXPECT_EQ(reload_status, 200);
  EXPECT_GE(reload_seconds, 0.9);
  EXPECT_EQ(body(client().Get("/healthz"))["version"], *version_b_);
}

// Reloads run one at a time and at most four wait: a client repeating reloads gets 503 at once for the rest
// instead of each one holding a connection until the connection cap refuses everyone (found by fuzz_http).
TEST_F(ServiceTest, ReloadsBeyondTheQueueAreRefusedAtOnce) {
  std::atomic<bool> slow{false};
  start(test_config(), [&slow](const index::LoadedExport& loaded) -> std::unique_ptr<HistoryEncoder> {
    if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    return std::make_unique<embrec::testing::MeanEncoder>(loaded, 10);
  });
  slow = true;
  constexpr int kReloads = 10;
  std::vector<int> statuses(kReloads, 0);
  std::vector<double> seconds(kReloads, 0);
  std::vector<std::string> retry_after(kReloads);
  std::vector<std::thread> reloads;
  for (int r = 0; r < kReloads; ++r)
    reloads.emplace_back([&, r] {
      const auto start = std::chrono::steady_clock::now();
      const httplib::Result result = client().Post("/admin/reload", {{"Authorization", "Bearer secret"}}, "",
                                                   "application/json");
      seconds[r] = seconds_since(start);
      statuses[r] = result ? result->status : -1;
      if (result) retry_after[r] = result->get_header_value("Retry-After");
    });
  for (std::thread& thread : reloads) thread.join();
  int done = 0, refused = 0;
  for (int r = 0; r < kReloads; ++r) {
    if (statuses[r] == 200) {
      ++done;
    } else {
      EXPECT_EQ(statuses[r], 503);
      EXPECT_EQ(retry_after[r], "1");
      EXPECT_LT(seconds[r], 0.25) << "a refused reload waited";
      ++refused;
    }
  }
  EXPECT_GE(done, 1);
  EXPECT_LE(done, 5);  // one running and four waiting at most
  EXPECT_EQ(done + refused, kReloads);
  EXPECT_EQ(body(client().Get("/healthz"))["status"], "ok");
}

TEST_F(ServiceTest, ConnectionsOverTheLimitAreClosedAtOnceAndLongConnectionsAreRecycled) {
  ServeConfig config = test_config();
  config.max_connections = 4;
  config.keep_alive_max_requests = 2;
  start(config, mean_encoder_factory());
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::make_unique<RawConnection>(port_));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  {
    RawConnection extra(port_);
    const auto start = std::chrono::steady_clock::now();
    extra.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(extra.receive(), "");  // closed unanswered
    EXPECT_LT(seconds_since(start), 1.0);
  }
  held.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  RawConnection connection(port_);
  const std::string get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(connection.send(get));
  const std::string first = connection.receive();
  EXPECT_EQ(RawConnection::status(first), 200) << first;
  EXPECT_EQ(first.find("Connection: close"), std::string::npos) << first;
  ASSERT_TRUE(connection.send(get));
  const std::string second = connection.receive();
  EXPECT_EQ(RawConnection::status(second), 200) << second;
  EXPECT_NE(second.find("Connection: close"), std::string::npos) << "the 2nd request of 2 should close: " << second;
}

TEST_F(ServiceTest, HistoryRouteWithoutEncoderIs501) {
  for (EncoderFactory factory :
       {EncoderFactory(), EncoderFactory([](const index::LoadedExport&) { return std::unique_ptr<HistoryEncoder>(); })}) {
    start(test_config(), factory);
    const httplib::Result result = client().Post("/v1/recommendations", R"({"history": [100]})", "application/json");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 501);
    EXPECT_NE(body(result)["error"].get<std::string>().find("no history encoder"), std::string::npos);
    EXPECT_EQ(body(client().Get("/healthz"))["encoder"], false);
  }
}

// An encoder with user features (a stand-in for the two-tower model): the field "likes" names an item whose
// vector is added to the history's mean; any other field is an InputError naming it.
class LikesEncoder final : public HistoryEncoder {
 public:
  explicit LikesEncoder(const index::LoadedExport& loaded) : loaded_(loaded) {}
  std::vector<float> encode(const std::vector<int32_t>& items) override { return encode_user(items, {}); }
  std::vector<float> encode_user(const std::vector<int32_t>& items,
                                 const std::map<std::string, std::vector<std::string>>& features) override {
    std::vector<float> sum(static_cast<size_t>(loaded_.index.dim()), 0.0f);
    auto add = [&](int32_t item) {
      const std::vector<float> vector = loaded_.index.item_vector(item);
      for (size_t d = 0; d < sum.size(); ++d) sum[d] += vector[d];
    };
    for (int32_t item : items) add(item);
    for (const auto& [name, values] : features) {
      if (name != "likes") throw InputError(fmt::format("unknown feature field '{}' (fields: likes)", name));
      for (const std::string& value : values) add(*loaded_.item_id(value));
    }
    return sum;
  }
  bool takes_features() const override { return true; }

 private:
  const index::LoadedExport& loaded_;
};

TEST_F(ServiceTest, AFreshUserIsEncodedFromFeaturesBesideTheHistoryAndBadFeaturesAre400) {
  start(test_config(), [](const index::LoadedExport& loaded) { return std::make_unique<LikesEncoder>(loaded); });
  const std::shared_ptr<const Bundle> bundle = service_->bundle();
  httplib::Client http = client();
  auto item = [&](int32_t i) { return std::vector<float>(data_a_->item_vectors.begin() + i * kDim,
                                                         data_a_->item_vectors.begin() + (i + 1) * kDim); };
  // Features alone (no history): the user is item 9's vector; nothing is excluded.
  json reply = body(http.Post("/v1/recommendations", R"({"features": {"likes": "109"}, "k": 5})", "application/json"));
  expect_items(reply["items"], expected_items(bundle->data.index.search(item(9).data(), 5)));
  // Features beside a history (a list of values, an integer value): the sum; the history is excluded.
  reply = body(http.Post("/v1/recommendations", R"({"history": ["105"], "features": {"likes": [109, "112"]}, "k": 5})",
                         "application/json"));
  std::vector<float> sum(kDim, 0.0f);
  for (int32_t i : {5, 9, 12})
    for (int32_t d = 0; d < kDim; ++d) sum[d] += item(i)[d];
  expect_items(reply["items"], expected_items(bundle->data.index.search(sum.data(), 5, {5})));
  // Bad features: 400 naming the feature.
  for (const auto& [request, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"({"history": [105], "features": {"age": "25"}})", "'age'"},
           {R"({"history": [105], "features": {"likes": 1.5}})", "feature 'likes'"},
           {R"({"history": [105], "features": {"likes": [true]}})", "feature 'likes'"},
           {R"({"history": [105], "features": ["likes"]})", "field 'features'"},
           {R"({"features": {}})", "missing field 'history'"},
           {R"({"history": [], "features": {}})", "must not be empty"}}) {
    const httplib::Result result = http.Post("/v1/recommendations", request, "application/json");
    ASSERT_TRUE(result) << request;
    EXPECT_EQ(result->status, 400) << request << " -> " << result->body;
    EXPECT_NE(body(result)["error"].get<std::string>().find(expected), std::string::npos) << result->body;
  }
  // An encoder without features (the mean encoder) refuses them.
  start(test_config(), mean_encoder_factory());
  const httplib::Result refused =
      client().Post("/v1/recommendations", R"({"history": [105], "features": {"likes": "109"}})", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_NE(body(refused)["error"].get<std::string>().find("takes no user features"), std::string::npos);
}

// An export that leaves items out of the index (never trained on): they stay known (histories accept them) but
// are never recommended, and asking for items similar to one is a 404 that says why.
TEST_F(ServiceTest, ItemsLeftOutOfTheIndexAreKnownButNeverRecommended) {
  index::ExportData data = *data_a_;
  data.item_indexed = embrec::testing::indexed_flags(kItems, 3);  // items 0, 3, 6, ... left out
  index::write_export(data, *root_ + "/subset", index::ExportOptions());
  start(test_config(), mean_encoder_factory(), *root_ + "/subset");
  httplib::Client http = client();
  const json health = body(http.Get("/healthz"));
  EXPECT_EQ(health["items"], kItems);
  EXPECT_EQ(health["indexed_items"], kItems - (kItems + 2) / 3);
  const httplib::Result similar = http.Post("/v1/items/similar", R"({"item": "103"})", "application/json");
  ASSERT_TRUE(similar);
  EXPECT_EQ(similar->status, 404);
  EXPECT_NE(body(similar)["error"].get<std::string>().find("not in the index"), std::string::npos) << similar->body;
  for (const std::string& request : {std::string(R"({"history": [101, 104], "k": 30})"), std::string()}) {
    const json reply = request.empty() ? body(http.Get("/v1/users/u1/recommendations?k=30"))
                                       : body(http.Post("/v1/recommendations", request, "application/json"));
    ASSERT_EQ(reply["items"].size(), 30u) << reply.dump();
    for (const json& item : reply["items"])
      EXPECT_NE((std::stoi(item["item"].get<std::string>()) - 100) % 3, 0) << item.dump();
  }
}

TEST_F(ServiceTest, MetricsCountRequestsByRouteAndStatus) {
  httplib::Client http = client();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(http.Get("/v1/users/u1/recommendations?k=5")->status, 200);
  for (int i = 0; i < 2; ++i) EXPECT_EQ(http.Get("/v1/users/ghost/recommendations")->status, 404);
  EXPECT_EQ(http.Get("/nowhere")->status, 404);
  EXPECT_EQ(http.Post("/v1/items/similar", R"({"item": "101", "k": 3})", "application/json")->status, 200);
  const ServiceMetrics& metrics = service_->metrics();
  ASSERT_TRUE(eventually([&] {
    return metrics.request_count("user_recommendations", 200) == 3 &&
           metrics.request_count("user_recommendations", 404) == 2 && metrics.request_count("unmatched", 404) == 1 &&
           metrics.request_count("similar_items", 200) == 1;
  }));
  const httplib::Result result = http.Get("/metrics");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 200);
  EXPECT_NE(result->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  const std::string& text = result->body;
  for (const std::string& line : {
           std::string("embrec_http_requests_total{route=\"user_recommendations\",status=\"200\"} 3\n"),
           std::string("embrec_http_requests_total{route=\"user_recommendations\",status=\"404\"} 2\n"),
           std::string("embrec_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"),
           std::string("embrec_http_requests_total{route=\"similar_items\",status=\"200\"} 1\n"),
           std::string("embrec_http_request_duration_seconds_count{route=\"user_recommendations\"} 5\n"),
           std::string("embrec_http_request_duration_seconds_bucket{route=\"user_recommendations\",le=\"+Inf\"} 5\n"),
           std::string("# TYPE embrec_http_request_duration_seconds histogram\n"),
           "embrec_model_info{model=\"fake\",dataset=\"synthetic\",version=\"" + *version_a_ + "\"",
           std::string("embrec_index_items 300\n"),
           std::string("embrec_store_users 60\n"),
           std::string("embrec_reloads_total{result=\"ok\"} 0\n"),
       })
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "\nin:\n" << text;
  // The client asking is open; a connection it closed before may not have been seen closing yet.
  const size_t gauge = text.find("\nembrec_http_open_connections ");
  ASSERT_NE(gauge, std::string::npos) << text;
  const int open = std::stoi(text.substr(gauge + std::strlen("\nembrec_http_open_connections ")));
  EXPECT_GE(open, 1);
  EXPECT_LE(open, 3);
}

TEST_F(ServiceTest, AdminReloadNeedsTheTokenAndRejectsABrokenExport) {
  httplib::Client http = client();
  httplib::Result result = http.Post("/admin/reload", "", "application/json");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, 403);
  EXPECT_NE(body(result)["error"].get<std::string>().find("Authorization: Bearer"), std::string::npos);
  result = http.Post("/admin/reload", {{"Authorization", "Bearer wrong"}}, "", "application/json");
  EXPECT_EQ(result->status, 403);
  result = http.Post("/admin/reload", {{"Authorization", "secret"}}, "", "application/json");
  EXPECT_EQ(result->status, 403);

  const httplib::Headers token{{"Authorization", "Bearer secret"}};
  result = http.Post("/admin/reload", token, "", "application/json");
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(body(result)["version"], *version_a_);
  result = http.Post("/admin/reload", token, R"({"dir": 5})", "application/json");
  EXPECT_EQ(result->status, 400);
  result = http.Post("/admin/reload", token, json{{"dir", *root_ + "/broken"}}.dump(), "application/json");
  EXPECT_EQ(result->status, 422);
  const json rejected = body(result);
  EXPECT_NE(rejected["error"].get<std::string>().find("items.faiss: checksum"), std::string::npos) << rejected;
  EXPECT_EQ(rejected["version"], *version_a_);
  EXPECT_EQ(body(http.Get("/healthz"))["version"], *version_a_);
  result = http.Post("/admin/reload", token, json{{"dir", *root_ + "/b"}}.dump(), "application/json");
  EXPECT_EQ(result->status, 200);
  EXPECT_EQ(body(result)["version"], *version_b_);
  EXPECT_EQ(body(result)["previous_version"], *version_a_);
  // SIGHUP (and a reload without "dir") reloads the folder serving now, not the start-up one.
  service_->request_reload();
  EXPECT_TRUE(eventually([&] {
    return service_->metrics().prometheus_text().find("embrec_reloads_total{result=\"ok\"} 3\n") != std::string::npos;
  }));
  EXPECT_EQ(service_->version(), *version_b_);
  EXPECT_EQ(body(http.Post("/admin/reload", token, "", "application/json"))["version"], *version_b_);
}

TEST_F(ServiceTest, AdminTokensCompareWholeWithTheSchemeInAnyCase) {
  httplib::Client http = client();
  for (const char* header : {"bearer secret", "BEARER secret", "Bearer  secret"})
    EXPECT_EQ(http.Post("/admin/reload", {{"Authorization", header}}, "", "application/json")->status, 200) << header;
  for (const char* header : {"Bearer secre", "Bearer secretsecret", "Bearer ", "Bearer", "Basic secret", "secret"})
    EXPECT_EQ(http.Post("/admin/reload", {{"Authorization", header}}, "", "application/json")->status, 403) << header;
  // Without a token the admin routes are off, whatever the header says.
  ServeConfig config = test_config();
  config.admin_token = "";
  start(config, mean_encoder_factory());
  const httplib::Result result = client().Post("/admin/reload", {{"Authorization", "Bearer "}}, "", "application/json");
  EXPECT_EQ(result->status, 403);
  EXPECT_NE(body(result)["error"].get<std::string>().find("no admin token"), std::string::npos);
}

TEST_F(ServiceTest, AReloadOutsideTheExportRootIsRefusedAlikeWhetherThePathExistsOrNot) {
  httplib::Client http = client();
  const httplib::Headers token{{"Authorization", "Bearer secret"}};
  std::set<std::string> answers;
  for (const std::string& dir : {std::string("/etc"), std::string("/nonexistent/export"), *root_ + "/../elsewhere",
                                 *root_ + "/.."}) {
    const httplib::Result result = http.Post("/admin/reload", token, json{{"dir", dir}}.dump(), "application/json");
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 403) << dir;
    answers.insert(result->body);
  }
  EXPECT_EQ(answers.size(), 1u);  // one answer for all: nothing says which paths exist
  EXPECT_NE(answers.begin()->find("inside the export root"), std::string::npos) << *answers.begin();
  // A link inside the root that points out of it is outside.
  fs::create_symlink("/etc", *root_ + "/escape");
  EXPECT_EQ(http.Post("/admin/reload", token, json{{"dir", *root_ + "/escape"}}.dump(), "application/json")->status,
            403);
  fs::remove(*root_ + "/escape");
  EXPECT_EQ(service_->version(), *version_a_);
}

TEST(AdminToken, IsCreatedOwnerOnlyOnceThenReadAndAnOpenFileIsRefused) {
  const std::string path = embrec::testing::temp_path("admin-token");
  bool created = false;
  const std::string token = load_or_create_admin_token(path, created);
  EXPECT_TRUE(created);
  EXPECT_EQ(token.size(), 64u);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(load_or_create_admin_token(path, created), token);
  EXPECT_FALSE(created);
  fs::permissions(path, fs::perms::group_read, fs::perm_options::add);
  const std::string message = error_of([&] { load_or_create_admin_token(path, created); });
  EXPECT_NE(message.find(path + ": the admin token file is open to group"), std::string::npos) << message;
  fs::remove(path);
  EXPECT_NE(load_or_create_admin_token(path, created), token);  // a fresh one
  fs::remove(path);
}

TEST(LoopbackAddress, RecognisesLoopbackOnly) {
  EXPECT_TRUE(is_loopback_address("127.0.0.1"));
  EXPECT_TRUE(is_loopback_address("127.1.2.3"));
  EXPECT_TRUE(is_loopback_address("::1"));
  EXPECT_TRUE(is_loopback_address("::ffff:127.0.0.1"));
  EXPECT_FALSE(is_loopback_address("10.0.0.127"));
  EXPECT_FALSE(is_loopback_address("::ffff:10.0.0.1"));
  EXPECT_FALSE(is_loopback_address("1127.0.0.1"));
  EXPECT_FALSE(is_loopback_address(""));
}

// A first non-loopback IPv4 address of this machine, or "" when it has none.
std::string non_loopback_ipv4() {
  ifaddrs* addresses = nullptr;
  if (::getifaddrs(&addresses) != 0) return "";
  std::string found;
  for (ifaddrs* entry = addresses; entry && found.empty(); entry = entry->ifa_next) {
    if (!entry->ifa_addr || entry->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    const auto* address = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
    if (::inet_ntop(AF_INET, &address->sin_addr, text, sizeof(text)) && !is_loopback_address(text)) found = text;
  }
  ::freeifaddrs(addresses);
  return found;
}

TEST_F(ServiceTest, AdminRoutesRefuseNonLoopbackClientsEvenWithTheToken) {
  const std::string address = non_loopback_ipv4();
  if (address.empty()) GTEST_SKIP() << "this machine has no non-loopback IPv4 address to connect from";
  ServeConfig config = test_config();
  config.host = "0.0.0.0";
  start(config, mean_encoder_factory());
  httplib::Client http = client(address);
  const httplib::Headers token{{"Authorization", "Bearer secret"}};
  httplib::Result result = http.Post("/admin/reload", token, "", "application/json");
  ASSERT_TRUE(result) << httplib::to_string(result.error());
  EXPECT_EQ(result->status, 403);
  EXPECT_NE(body(result)["error"].get<std::string>().find("loopback clients only"), std::string::npos);
  EXPECT_EQ(http.Get("/healthz")->status, 200);  // public routes answer anyone
  EXPECT_EQ(client().Post("/admin/reload", token, "", "application/json")->status, 200);

  config.admin_loopback_only = false;
  start(config, mean_encoder_factory());
  EXPECT_EQ(client(address).Post("/admin/reload", token, "", "application/json")->status, 200);
}

TEST_F(ServiceTest, HotReloadUnderConcurrentRequestsLosesNoRequest) {
  std::atomic<bool> done{false};
  std::atomic<int64_t> answered{0}, failed{0};
  std::mutex versions_mutex;
  std::set<std::string> versions;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client http = client();
      for (int i = 0; !done; ++i) {
        const bool similar = (i + t) % 2 == 0;
        const httplib::Result result =
            similar ? http.Post("/v1/items/similar", R"({"item": "120", "k": 10})", "application/json")
                    : http.Get(("/v1/users/u" + std::to_string(1 + (i % 50)) + "/recommendations?k=10").c_str());
        if (!result || result->status != 200) {
          ++failed;
          continue;
        }
        const json reply = json::parse(result->body, nullptr, false);
        if (reply.is_discarded() || reply["items"].size() != 10u) {
          ++failed;
          continue;
        }
        ++answered;
        std::lock_guard<std::mutex> lock(versions_mutex);
        versions.insert(reply["version"].get<std::string>());
      }
    });
  }
  auto pause = [] { std::this_thread::sleep_for(std::chrono::milliseconds(200)); };
  auto metrics_version = [&] {
    const std::string text = client().Get("/metrics")->body;
    const size_t start = text.find("version=\"") + 9;
    return text.substr(start, text.find('"', start) - start);
  };
  pause();
  ReloadResult result = service_->reload(*root_ + "/b");
  EXPECT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.version, *version_b_);
  EXPECT_EQ(metrics_version(), *version_b_);
  pause();
  result = service_->reload(*root_ + "/broken");
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.version, *version_b_);
  EXPECT_EQ(metrics_version(), *version_b_);  // a rejected export changes nothing
  pause();
  const httplib::Result admin = client().Post("/admin/reload", {{"Authorization", "Bearer secret"}},
                                              json{{"dir", *root_ + "/a"}}.dump(), "application/json");
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->status, 200);
  EXPECT_EQ(metrics_version(), *version_a_);
  pause();
  EXPECT_TRUE(service_->reload(*root_ + "/b").ok);
  pause();
  done = true;
  for (std::thread& thread : clients) thread.join();

  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(answered.load(), 40);
  EXPECT_EQ(versions, (std::set<std::string>{*version_a_, *version_b_}));
  EXPECT_EQ(service_->version(), *version_b_);
  const std::string text = client().Get("/metrics")->body;
  EXPECT_NE(text.find("embrec_reloads_total{result=\"ok\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("embrec_reloads_total{result=\"error\"} 1\n"), std::string::npos) << text;
}

// What SIGHUP does: the export folder is replaced by write_export while serving (the old store's files are
// deleted under the open database), then request_reload() picks the new one up.
TEST_F(ServiceTest, RequestReloadPicksUpAnExportReplacedInPlace) {
  const std::string live = *root_ + "/live";
  index::write_export(*data_a_, live, {});
  start(test_config(), mean_encoder_factory(), live);
  httplib::Client http = client();
  EXPECT_EQ(body(http.Get("/v1/users/u4/recommendations"))["version"], *version_a_);
  index::write_export(embrec::testing::small_export_data(kUsers, kItems, kDim, 9), live, {});
  const httplib::Result still_old = http.Get("/v1/users/u4/recommendations");
  ASSERT_TRUE(still_old);
  EXPECT_EQ(still_old->status, 200);  // the replaced (deleted) export keeps serving until the reload
  EXPECT_EQ(body(still_old)["version"], *version_a_);
  service_->request_reload();
  EXPECT_TRUE(eventually([&] { return service_->version() == *version_b_; }));
  EXPECT_EQ(body(http.Get("/v1/users/u4/recommendations"))["version"], *version_b_);
}

TEST(ServeConfig, ReadsTomlAndNamesBadKeys) {
  ConfigTable root = ConfigTable::parse_string(
      "[serve]\nport = 9000\nthreads = 2\nmax_k = 100\nadmin_token = \"t0k\"\nadmin_loopback_only = false\n"
      "max_connections = 64\n",
      "serve.toml");
  const ServeConfig config = ServeConfig::from(root.sub("serve"));
  root.finish();
  EXPECT_EQ(config.port, 9000);
  EXPECT_EQ(config.threads, 2);
  EXPECT_EQ(config.max_connections, 64);
  EXPECT_EQ(config.max_k, 100);
  EXPECT_EQ(config.default_k, 20);
  EXPECT_EQ(config.admin_token, "t0k");
  EXPECT_FALSE(config.admin_loopback_only);
  EXPECT_EQ(config.host, "127.0.0.1");

  auto config_error = [](const std::string& text) {
    return error_of([&] {
      ConfigTable table = ConfigTable::parse_string(text, "serve.toml");
      (void)ServeConfig::from(table.sub("serve"));
      table.finish();
    });
  };
  EXPECT_EQ(config_error("[serve]\nprot = 1\n"), "serve.toml: unknown key 'serve.prot'");
  EXPECT_EQ(config_error("[serve]\nthreads = 0\n"), "serve.toml: key 'serve.threads' must be positive, got 0");
  EXPECT_EQ(config_error("[serve]\nmax_k = 10\n"),
            "serve.toml: key 'serve.default_k' must be in [1, max_k = 10], got 20");
  EXPECT_EQ(config_error("[serve]\nport = \"80\"\n"), "serve.toml: key 'serve.port' must be an integer, got a string");
}

}  // namespace
}  // namespace embrec::serve
