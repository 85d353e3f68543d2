// POST /v1/news over loopback: an article added through the service is recommended for a history of its topic and
// found similar to its topic's news at once; duplicates are 409, bad articles 400 (413 past the body limit), an
// export whose model encodes no items 501; searches stay right while articles are added beside them; and a reload
// drops news added live unless the new export holds them.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../index/synthetic.h"
#include "embrec/data/news.h"
#include "embrec/serve/service.h"
#include "embrec/util/error.h"
#include "mean_encoder.h"

namespace embrec::serve {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Topic t's news point along axis t (length 1) with a little noise on the last four axes; a history of one topic
// therefore encodes (as the mean of its items) to about that axis.
constexpr int32_t kDim = 8, kTopics = 4, kPerTopic = 10, kItems = kTopics * kPerTopic;
const char* const kTopicNames[kTopics] = {"sports", "politics", "science", "music"};

std::string news_id(int32_t item) { return "N" + std::to_string(item); }

// The export: news N0..N39 (N0..N9 sports, N10..N19 politics, ...), then `extra` sports news after them.
index::ExportData topic_export(const std::vector<std::string>& extra = {}) {
  index::ExportData data;
  data.model_name = "fake_news";
  data.dataset_name = "topics";
  data.dim = kDim;
  const int32_t items = kItems + static_cast<int32_t>(extra.size());
  for (int32_t item = 0; item < items; ++item) {
    const int32_t topic = item < kItems ? item / kPerTopic : 0;
    for (int32_t d = 0; d < kDim; ++d) {
      const float noise = d >= kTopics ? 0.05f * static_cast<float>((item * 7 + d) % 5) : 0.0f;
      data.item_vectors.push_back(d == topic ? 1.0f : noise);
    }
    data.item_external_ids.push_back(item < kItems ? news_id(item) : extra[static_cast<size_t>(item - kItems)]);
  }
  for (int32_t user = 0; user < kTopics; ++user) {
    for (int32_t d = 0; d < kDim; ++d) data.user_vectors.push_back(d == user ? 1.0f : 0.0f);
    data.user_external_ids.push_back("u" + std::to_string(user));
    data.user_seen_items.push_back({user * kPerTopic});
  }
  data.encoder_config = "[model]\nname = 'fake_news'\n";
  data.encoder_weights = "fake weights";
  return data;
}

// What the news-encoding export's encoder shares with the test: calls counted, and a gate that can hold
// encode_item until the test opens it (to reload while an article is being encoded).
struct EncoderProbe {
  std::mutex mutex;
  std::condition_variable changed;
  bool gate_open = true;
  int64_t waiting = 0;  // encode_item calls held at the gate now
  std::atomic<int64_t> item_encodings{0};

  void pass_gate() {
    std::unique_lock<std::mutex> lock(mutex);
    ++waiting;
    changed.notify_all();
    changed.wait(lock, [&] { return gate_open; });
    --waiting;
  }
  void set_gate(bool open) {
    std::lock_guard<std::mutex> lock(mutex);
    gate_open = open;
    changed.notify_all();
  }
  bool wait_for_waiting(int64_t count) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(5), [&] { return waiting >= count; });
  }
};

// A stand-in for a news model: histories encode as the mean of their items' vectors (MeanEncoder, reading the
// index), an article as twice the axis of the first topic word in its title, so it outranks every stored news of
// that topic (score 2 against about 1). A title without a topic word, or a category that is not a topic, is the
// model's InputError, as NewsModel::fresh_item_vector makes it.
class TopicEncoder final : public HistoryEncoder {
 public:
  TopicEncoder(const index::LoadedExport& loaded, std::shared_ptr<EncoderProbe> probe)
      : history_(loaded, 10), probe_(std::move(probe)) {}
  std::vector<float> encode(const std::vector<int32_t>& items) override { return history_.encode(items); }
  bool encodes_items() const override { return true; }
  std::vector<float> encode_item(const data::NewsText& article) override {
    probe_->pass_gate();
    ++probe_->item_encodings;
    if (!article.category.empty() && topic_of(article.category) < 0)
      throw InputError("unknown category '" + article.category + "'");
    std::string word;
    for (const char c : article.title + " ") {
      if (std::isalpha(static_cast<unsigned char>(c))) {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        continue;
      }
      const int32_t topic = topic_of(word);
      if (topic >= 0) {
        std::vector<float> vector(kDim, 0.0f);
        vector[static_cast<size_t>(topic)] = 2.0f;
        return vector;
      }
      word.clear();
    }
    throw InputError("the title '" + article.title + "' has no word the model knows");
  }

 private:
  static int32_t topic_of(const std::string& word) {
    for (int32_t topic = 0; topic < kTopics; ++topic)
      if (word == kTopicNames[topic]) return topic;
    return -1;
  }
  embrec::testing::MeanEncoder history_;
  std::shared_ptr<EncoderProbe> probe_;
};

ServeConfig news_config() {
  ServeConfig config;
  config.threads = 4;
  config.max_k = 50;
  config.default_k = 10;
  config.max_body_bytes = 8192;
  config.max_history = 20;
  config.admin_token = "secret";
  return config;
}

class NewsServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::string(embrec::testing::temp_path("serve-news"));
    version_ = new std::string(index::write_export(topic_export(), *root_ + "/news").version());
    // A later export whose items include N900 (trained on since) and an IVF index, whose lists take new rows too.
    index::ExportOptions ivf;
    ivf.index.factory = "IVF2,Flat";
    index::write_export(topic_export({"N900"}), *root_ + "/news-with-n900", ivf);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
    delete version_;
  }
  void SetUp() override { start(topic_encoder_factory()); }
  void TearDown() override {
    if (service_) service_->stop();
  }

  EncoderFactory topic_encoder_factory() {
    return [probe = probe_](const index::LoadedExport& loaded) {
      return std::make_unique<TopicEncoder>(loaded, probe);
    };
  }
  void start(EncoderFactory factory) {
    if (service_) service_->stop();
    service_ = std::make_unique<Service>(news_config(), *root_ + "/news", std::move(factory));
    port_ = service_->bind(0);
    service_->start_in_thread();
  }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(5);
    c.set_read_timeout(10);
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body) const {
    return client().Post(path.c_str(), body, "application/json");
  }
  static json body(const httplib::Result& result) {
    EXPECT_TRUE(result) << "no response: " << httplib::to_string(result.error());
    if (!result) return json();
    json parsed = json::parse(result->body, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << result->body;
    return parsed;
  }
  // Status and body of POST /v1/news with `article`.
  std::pair<int, json> add(const json& article) const {
    const httplib::Result result = post("/v1/news", article.dump());
    return {result ? result->status : -1, body(result)};
  }
  // The ids POST /v1/recommendations answers for `history`, best first.
  std::vector<std::string> recommended(const std::vector<std::string>& history, int k = 5) const {
    const json reply = body(post("/v1/recommendations", json{{"history", history}, {"k", k}}.dump()));
    std::vector<std::string> out;
    for (const json& item : reply.value("items", json::array())) out.push_back(item["item"].get<std::string>());
    return out;
  }
  json health() const { return body(client().Get("/healthz")); }

  static std::string* root_;
  static std::string* version_;
  std::shared_ptr<EncoderProbe> probe_ = std::make_shared<EncoderProbe>();
  std::unique_ptr<Service> service_;
  int port_ = 0;
};
std::string* NewsServiceTest::root_ = nullptr;
std::string* NewsServiceTest::version_ = nullptr;

const std::vector<std::string> kSportsHistory = {"N0", "N1", "N2"};

TEST_F(NewsServiceTest, AnAddedArticleIsRecommendedFirstForAHistoryOfItsTopic) {
  EXPECT_NE(recommended(kSportsHistory)[0], "N900");
  const auto [status, reply] = add({{"id", "N900"}, {"title", "  Local sports team wins the cup "},
                                    {"category", "sports"}, {"subcategory", "football"}});
  ASSERT_EQ(status, 201) << reply.dump();
  EXPECT_EQ(reply, (json{{"item", "N900"}, {"version", *version_}}));  // the export's version: adds do not change it

  // Score 2 (its vector 2 e_sports against the history's mean, about e_sports) above every other sports news' ~1.
  const json ranked = body(post("/v1/recommendations", json{{"history", kSportsHistory}, {"k", 8}}.dump()));
  ASSERT_EQ(ranked["items"].size(), 8u) << ranked.dump();
  EXPECT_EQ(ranked["items"][0]["item"], "N900");
  EXPECT_NEAR(ranked["items"][0]["score"].get<double>(), 2.0, 1e-5);
  for (size_t i = 1; i < 8; ++i) EXPECT_LT(ranked["items"][i]["item"].get<std::string>().size(), 3u) << i;  // N3..N9
  const std::vector<std::string> politics = recommended({"N10", "N11"}, 8);
  EXPECT_EQ(std::count(politics.begin(), politics.end(), "N900"), 0);

  // The other routes see it too: similar items both ways, a history holding it (excluded from its answer).
  const json similar = body(post("/v1/items/similar", R"({"item": "N900", "k": 3})"));
  ASSERT_EQ(similar["items"].size(), 3u) << similar.dump();
  for (const json& item : similar["items"]) EXPECT_LT(std::stoi(item["item"].get<std::string>().substr(1)), kPerTopic);
  EXPECT_EQ(body(post("/v1/items/similar", R"({"item": "N5", "k": 1})"))["items"][0]["item"], "N900");
  const std::vector<std::string> from_it = recommended({"N900"});
  ASSERT_EQ(from_it.size(), 5u);
  EXPECT_EQ(std::count(from_it.begin(), from_it.end(), "N900"), 0);
  EXPECT_LT(std::stoi(from_it[0].substr(1)), kPerTopic);

  // The next article takes the next id; health and metrics count both.
  EXPECT_EQ(add({{"id", 901}, {"title", "Science news: a comet"}}).first, 201);  // an integer id is its decimal text
  EXPECT_EQ(recommended({"N20", "N21"})[0], "901");
  const json healthy = health();
  EXPECT_EQ(healthy["items"], kItems);  // the export's
  EXPECT_EQ(healthy["indexed_items"], kItems + 2);
  EXPECT_EQ(healthy["added_news"], 2);
  // Counted once the response is written, so possibly just after the client has it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (service_->metrics().request_count("add_news", 201) < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  const std::string metrics = client().Get("/metrics")->body;
  EXPECT_NE(metrics.find("embrec_http_requests_total{route=\"add_news\",status=\"201\"} 2\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("embrec_added_news 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("embrec_index_items 42\n"), std::string::npos) << metrics;
}

TEST_F(NewsServiceTest, AnIdThatIsAlreadyAnItemIs409) {
  auto [status, reply] = add({{"id", "N3"}, {"title", "sports again"}});
  EXPECT_EQ(status, 409);
  EXPECT_EQ(reply["error"], "item 'N3' already exists");
  EXPECT_EQ(probe_->item_encodings.load(), 0);  // refused before the model is asked
  EXPECT_EQ(add({{"id", "N900"}, {"title", "sports"}}).first, 201);
  std::tie(status, reply) = add({{"id", "N900"}, {"title", "music"}});
  EXPECT_EQ(status, 409);
  EXPECT_EQ(reply["error"], "item 'N900' already exists");
  EXPECT_EQ(health()["added_news"], 1);
}

// Eight requests add one id at once, the model holding them until at least two have passed the first duplicate
// check: the check under the write lock lets exactly one through. The requests go to Service::handle from eight
// threads of their own: over HTTP the server may queue connections behind one another on one of its event loops
// (a CI run saw only one request reach the model in 5 s), and then the second check is never tested.
TEST_F(NewsServiceTest, ConcurrentAddsOfOneIdCreateItOnce) {
  probe_->set_gate(false);
  std::atomic<int> created{0}, conflicts{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      HttpRequest request;
      request.method = "POST";
      request.path = "/v1/news";
      request.body = json{{"id", "N950"}, {"title", "music festival"}}.dump();
      request.remote_address = "127.0.0.1";
      const int status = service_->handle(request).status;
      (status == 201 ? created : status == 409 ? conflicts : other)++;
    });
  EXPECT_TRUE(probe_->wait_for_waiting(2));
  probe_->set_gate(true);
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(conflicts.load(), 7);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(health()["indexed_items"], kItems + 1);
}

TEST_F(NewsServiceTest, BadArticlesAre4xxAndAddNothing) {
  struct Case {
    std::string body;
    int status;
    std::string needle;  // part of the error message
  };
  const std::string longest_title = "sports " + [] {
    std::string accents;
    for (int i = 0; i < 993; ++i) accents += "\xC3\xA9";  // "é": 1,000 characters in all, 1,993 bytes
    return accents;
  }();
  const std::vector<Case> cases = {
      {R"({"id": "N900", "title": ""})", 400, "field 'title' must not be empty"},
      {R"({"id": "N900", "title": " \t\n "})", 400, "field 'title' must not be empty"},
      {R"({"id": "N900"})", 400, "missing field 'title'"},
      {R"({"id": "N900", "title": 5})", 400, "field 'title' must be a string, got an integer 5"},
      {R"({"id": "N900", "title": ["sports"]})", 400, "field 'title' must be a string, got an array"},
      {R"({"id": "N900", "title": null})", 400, "field 'title' must be a string, got null"},
      {json{{"id", "N900"}, {"title", longest_title + "e"}}.dump(), 400,
       "field 'title' has 1001 characters; at most 1000 are accepted"},
      {R"({"title": "sports"})", 400, "missing field 'id'"},
      {R"({"id": "", "title": "sports"})", 400, "field 'id' must not be empty"},
      {R"({"id": "  ", "title": "sports"})", 400, "field 'id' must not be empty"},
      {R"({"id": true, "title": "sports"})", 400, "field 'id' must be a string or an integer item id, got a boolean"},
      {R"({"id": 1.5, "title": "sports"})", 400, "field 'id' must be a string or an integer item id, got a float"},
      {json{{"id", std::string(257, 'x')}, {"title", "sports"}}.dump(), 400, "field 'id' has 257 characters"},
      {R"({"id": "N900", "title": "sports", "category": 3})", 400, "field 'category' must be a string"},
      {R"({"id": "N900", "title": "sports", "subcategory": {}})", 400, "field 'subcategory' must be a string"},
      {json{{"id", "N900"}, {"title", "sports"}, {"category", std::string(101, 's')}}.dump(), 400,
       "field 'category' has 101 characters; at most 100"},
      {R"({"id": "N900", "title": "sports", "body": "..."})", 400,
       "unknown field 'body' (expected 'id', 'title', 'category', 'subcategory')"},
      {R"({"id": "N900", "title": "Sports", "Category": "sports"})", 400, "unknown field 'Category'"},
      {R"({"id": "N900", "title": "sports")", 400, "malformed JSON"},
      {R"(["N900", "sports"])", 400, "must be a JSON object, got an array"},
      {"", 400, "must be a JSON object"},
      // What the model refuses (its InputError): the message is the model's.
      {R"({"id": "N900", "title": "A quiet afternoon"})", 400,
       "the title 'A quiet afternoon' has no word the model knows"},
      {R"({"id": "N900", "title": "sports", "category": "cooking"})", 400, "unknown category 'cooking'"},
      {json{{"id", "N900"}, {"title", std::string(9000, 's')}}.dump(), 413, "max_body_bytes = 8192"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 80));
    const httplib::Result result = post("/v1/news", c.body);
    ASSERT_TRUE(result) << httplib::to_string(result.error());
    EXPECT_EQ(result->status, c.status) << result->body;
    const json reply = body(result);
    ASSERT_TRUE(reply.is_object() && reply.contains("error")) << result->body;
    EXPECT_NE(reply["error"].get<std::string>().find(c.needle), std::string::npos) << reply["error"];
  }
  EXPECT_EQ(health()["added_news"], 0);
  EXPECT_EQ(client().Get("/v1/news")->status, 405);
  // Text is trimmed and counted in characters, not bytes: 1,000 two-byte characters are within the limit.
  EXPECT_EQ(add({{"id", "N900"}, {"title", "  " + longest_title + "  "}}).first, 201);
  EXPECT_EQ(health()["added_news"], 1);
}

TEST_F(NewsServiceTest, AnExportWhoseModelEncodesNoItemsAnswers501) {
  for (const bool with_history_encoder : {false, true}) {
    SCOPED_TRACE(with_history_encoder);
    start(with_history_encoder ? embrec::testing::mean_encoder_factory(10) : EncoderFactory());
    const auto [status, reply] = add({{"id", "N900"}, {"title", "sports"}});
    EXPECT_EQ(status, 501);
    EXPECT_NE(reply["error"].get<std::string>().find("(model 'fake_news') does not encode new items from their text"),
              std::string::npos)
        << reply;
    EXPECT_EQ(health()["added_news"], 0);
  }
}

// One thread adds 60 articles while four others ask for recommendations, similar items and health without pause:
// every answer is a full, well-formed list of known ids, and every article is served once added.
TEST_F(NewsServiceTest, SearchesStayRightWhileArticlesAreAdded) {
  std::atomic<bool> done{false};
  std::atomic<int64_t> answered{0}, failed{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&, t] {
      httplib::Client http = client();
      for (int i = 0; !done; ++i) {
        const int route = (i + t) % 3;
        const std::string topic_first = news_id(((i + t) % kTopics) * kPerTopic);
        const httplib::Result result =
            route == 0 ? http.Post("/v1/recommendations", json{{"history", {topic_first}}, {"k", 10}}.dump(),
                                   "application/json")
            : route == 1 ? http.Post("/v1/items/similar", json{{"item", topic_first}, {"k", 10}}.dump(),
                                     "application/json")
                         : http.Get("/healthz");
        const json reply = result ? json::parse(result->body, nullptr, false) : json();
        const bool ok = result && result->status == 200 && !reply.is_discarded() &&
                        (route == 2 || (reply["items"].size() == 10u &&
                                        std::all_of(reply["items"].begin(), reply["items"].end(), [](const json& item) {
                                          return item["item"].is_string() && !item["item"].get<std::string>().empty();
                                        })));
        (ok ? answered : failed)++;
      }
    });
  for (int n = 0; n < 60; ++n) {
    const std::string id = "L" + std::to_string(n);
    const auto [status, reply] = add({{"id", id}, {"title", std::string(kTopicNames[n % kTopics]) + " update"}});
    ASSERT_EQ(status, 201) << reply.dump();
    const json similar = body(post("/v1/items/similar", json{{"item", id}, {"k", 1}}.dump()));
    EXPECT_EQ(similar["items"].size(), 1u) << similar.dump();
  }
  done = true;
  for (std::thread& thread : readers) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(answered.load(), 20);
  EXPECT_EQ(health()["added_news"], 60);
  // The 15 sports articles (score 2) now lead a sports history, the lowest id first among equal scores.
  const std::vector<std::string> top = recommended(kSportsHistory, 16);
  ASSERT_EQ(top.size(), 16u);
  EXPECT_EQ(top[0], "L0");
  EXPECT_EQ(top[14], "L56");
  EXPECT_EQ(top[15].substr(0, 1), "N");
}

TEST_F(NewsServiceTest, AReloadDropsNewsAddedLiveUnlessTheNewExportHoldsThem) {
  ASSERT_EQ(add({{"id", "N900"}, {"title", "sports"}}).first, 201);
  ASSERT_EQ(add({{"id", "N901"}, {"title", "music"}}).first, 201);
  // A reload of the folder serving now (SIGHUP, /admin/reload without "dir") starts from what the folder holds.
  const httplib::Result reloaded =
      client().Post("/admin/reload", {{"Authorization", "Bearer secret"}}, "", "application/json");
  ASSERT_TRUE(reloaded);
  EXPECT_EQ(reloaded->status, 200) << reloaded->body;
  EXPECT_EQ(body(reloaded)["dropped_news"], 2);
  EXPECT_EQ(health()["added_news"], 0);
  EXPECT_EQ(post("/v1/items/similar", R"({"item": "N900"})")->status, 404);
  EXPECT_NE(recommended(kSportsHistory)[0], "N900");
  EXPECT_EQ(add({{"id", "N900"}, {"title", "sports"}}).first, 201);  // the id is free again

  // An export that holds N900 (trained on since) keeps it: only N901 is dropped.
  ASSERT_EQ(add({{"id", "N901"}, {"title", "music"}}).first, 201);
  const ReloadResult result = service_->reload(*root_ + "/news-with-n900");
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(result.dropped_news, 1);
  EXPECT_EQ(health()["items"], kItems + 1);
  EXPECT_EQ(body(post("/v1/items/similar", R"({"item": "N900", "k": 1})"))["items"].size(), 1u);
  EXPECT_EQ(post("/v1/items/similar", R"({"item": "N901"})")->status, 404);
  // The new export takes live news into its IVF lists as well.
  EXPECT_EQ(add({{"id", "N902"}, {"title", "politics"}}).first, 201);
  EXPECT_EQ(recommended({"N10", "N11"})[0], "N902");
}

// An article whose encoding outlasts a reload is encoded again by the new export's model and added there, not to
// the export the reload replaced (where it would be lost at once).
TEST_F(NewsServiceTest, AnArticleBeingAddedDuringAReloadLandsInTheNewExport) {
  probe_->set_gate(false);
  std::pair<int, json> outcome;
  std::thread adding([&] { outcome = add({{"id", "N900"}, {"title", "sports"}}); });
  ASSERT_TRUE(probe_->wait_for_waiting(1));
  // The add holds no lock while its model encodes, so the reload (same folder, new bundle) completes meanwhile.
  EXPECT_TRUE(service_->reload().ok);
  probe_->set_gate(true);
  adding.join();
  EXPECT_EQ(outcome.first, 201) << outcome.second.dump();
  EXPECT_EQ(probe_->item_encodings.load(), 2);  // once by the old export's model, once by the new one's
  EXPECT_EQ(health()["added_news"], 1);
  EXPECT_EQ(recommended(kSportsHistory)[0], "N900");
}

}  // namespace
}  // namespace embrec::serve
