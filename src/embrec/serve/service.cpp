// Service: routes, request validation, the export bundle swapped atomically on reload, metrics.
#include "embrec/serve/service.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "embrec/data/news.h"
#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::serve {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Service::Reply {
  int status = 200;
  json body;
  std::vector<std::pair<std::string, std::string>> headers;
};

namespace {

Service::Reply error_reply(int status, std::string message) {
  return {status, json{{"error", std::move(message)}}, {}};
}

// Invalid UTF-8 in an echoed id must not turn a 404 into a crash: replace it instead of throwing.
std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string json_type(const json& value) {
  if (value.is_number_integer()) return "an integer";
  if (value.is_number_float()) return "a float";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_null()) return "null";
  if (value.is_array()) return "an array";
  return "an object";
}

// The route label of a request for metrics; "unmatched" for anything no handler serves.
std::string route_label(const std::string& method, const std::string& path) {
  static const std::string users = "/v1/users/", suffix = "/recommendations";
  if (method == "GET") {
    if (path == "/healthz") return "healthz";
    if (path == "/metrics") return "metrics";
    if (path.size() > users.size() + suffix.size() && path.compare(0, users.size(), users) == 0 &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        path.find('/', users.size()) == path.size() - suffix.size())
      return "user_recommendations";
  } else if (method == "POST") {
    if (path == "/v1/recommendations") return "history_recommendations";
    if (path == "/v1/items/similar") return "similar_items";
    if (path == "/v1/news") return "add_news";
    if (path == "/admin/reload") return "admin_reload";
  }
  return "unmatched";
}

// Compares digests, so neither the time taken nor an early exit tells a caller how much of the token, or how
// long a token, it guessed right.
bool constant_time_equal(const std::string& a, const std::string& b) {
  const std::string x = sha256_hex(a), y = sha256_hex(b);
  unsigned char difference = 0;
  for (size_t i = 0; i < x.size(); ++i) difference |= static_cast<unsigned char>(x[i] ^ y[i]);
  return difference == 0;
}

// The token of an "Authorization: <scheme> <token>" header whose scheme is Bearer in any case; "" otherwise.
std::string bearer_token(const std::string& header) {
  const size_t space = header.find(' ');
  if (space == std::string::npos) return "";
  std::string scheme = header.substr(0, space);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer") return "";
  const size_t start = header.find_first_not_of(' ', space);
  return start == std::string::npos ? "" : header.substr(start);
}

// Whether `path` is `root` or inside it, after both are made absolute with symlinks resolved as far as they exist
// (so "root/../elsewhere" and links out of the root are outside). Existence is not revealed: a missing path inside
// the root is inside.
bool inside(const std::filesystem::path& root, const std::string& path) {
  std::error_code error;
  const std::filesystem::path resolved = std::filesystem::weakly_canonical(std::filesystem::absolute(path), error);
  if (error) return false;
  auto r = root.begin();
  auto p = resolved.begin();
  for (; r != root.end(); ++r, ++p)
    if (p == resolved.end() || *p != *r) return false;
  return true;
}

std::optional<int64_t> parse_int64(const std::string& text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [pointer, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || pointer != end || text.empty()) return std::nullopt;
  return value;
}

// A JSON object body, or a 400 saying why not (411 when the client sent no length, so the body could not be read).
bool parse_object(const HttpRequest& request, json& body, Service::Reply& refusal) {
  if (!request.body_length_known) {
    refusal = error_reply(411, "a JSON body needs a Content-Length header (or chunked transfer encoding)");
    return false;
  }
  if (request.body.empty()) {
    refusal = error_reply(400, "request body must be a JSON object");
    return false;
  }
  try {
    body = json::parse(request.body);
  } catch (const json::exception& error) {
    // Syntax errors, and numbers the parser cannot hold (1e999, -1e400, a 400-digit integer): the client's fault.
    refusal = error_reply(400, fmt::format("malformed JSON: {}", error.what()));
    return false;
  }
  if (!body.is_object()) {
    refusal = error_reply(400, fmt::format("request body must be a JSON object, got {}", json_type(body)));
    return false;
  }
  return true;
}

// Unknown fields are refused rather than ignored, so a typo ("K": 5) is not silently served with the default.
bool only_fields(const json& body, std::initializer_list<const char*> allowed, Service::Reply& refusal) {
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (const char* name : allowed) known |= key == name;
    if (!known) {
      std::string list;
      for (const char* name : allowed) list += (list.empty() ? "'" : ", '") + std::string(name) + "'";
      refusal = error_reply(400, fmt::format("unknown field '{}' (expected {})", key, list));
      return false;
    }
  }
  return true;
}

// An item id given as a JSON string or integer (datasets with numeric ids are sent as numbers).
std::optional<std::string> item_id_text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_unsigned()) return std::to_string(value.get<uint64_t>());
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  return std::nullopt;
}

bool check_k(int64_t k, int64_t max_k, Service::Reply& refusal) {
  if (k >= 1 && k <= max_k) return true;
  refusal = error_reply(400, fmt::format("k must be in [1, {}], got {}", max_k, k));
  return false;
}

bool k_from_field(const json& body, const ServeConfig& config, int64_t& k, Service::Reply& refusal) {
  auto it = body.find("k");
  if (it == body.end()) {
    k = config.default_k;
    return true;
  }
  if (!it->is_number_integer()) {
    refusal = error_reply(400, fmt::format("field 'k' must be an integer, got {} {}", json_type(*it), dump(*it)));
    return false;
  }
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(config.max_k)) {
    refusal = error_reply(400, fmt::format("k must be in [1, {}], got {}", config.max_k, dump(*it)));
    return false;
  }
  k = it->get<int64_t>();
  return check_k(k, config.max_k, refusal);
}

// The optional boolean field 'exclude_seen' (default true).
bool exclude_seen_from_field(const json& body, bool& exclude_seen, Service::Reply& refusal) {
  auto it = body.find("exclude_seen");
  exclude_seen = true;
  if (it == body.end()) return true;
  if (!it->is_boolean()) {
    refusal = error_reply(400, fmt::format("field 'exclude_seen' must be true or false, got {} {}", json_type(*it),
                                           dump(*it)));
    return false;
  }
  exclude_seen = it->get<bool>();
  return true;
}

// The optional object 'features' of a fresh user: {"name": value or [values]}, each value a string or an integer
// (written as its decimal text, as feature files hold it). A wrong type is a 400 naming the feature.
bool features_from_field(const json& body, std::map<std::string, std::vector<std::string>>& features,
                         Service::Reply& refusal) {
  auto it = body.find("features");
  if (it == body.end()) return true;
  if (!it->is_object()) {
    refusal = error_reply(400, fmt::format("field 'features' must be an object of feature name -> value(s), got {} {}",
                                           json_type(*it), dump(*it)));
    return false;
  }
  auto text = [](const json& value) -> std::optional<std::string> {
    if (value.is_string()) return value.get<std::string>();
    if (value.is_number_integer()) return value.dump();
    return std::nullopt;
  };
  for (const auto& [name, value] : it->items()) {
    std::vector<std::string>& values = features[name];
    const bool list = value.is_array();
    for (const json& one : list ? value : json::array({value})) {
      std::optional<std::string> converted = text(one);
      if (!converted) {
        refusal = error_reply(400, fmt::format("feature '{}' must be a string, an integer or an array of them, got {} {}",
                                               name, json_type(one), dump(one)));
        return false;
      }
      values.push_back(std::move(*converted));
    }
  }
  return true;
}

// Characters of UTF-8 text: bytes that do not continue a multi-byte sequence (invalid text counts each stray byte).
int64_t utf8_characters(const std::string& text) {
  int64_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

std::string trimmed(const std::string& text) {
  static const char* const kSpace = " \t\n\r\f\v";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(kSpace) - first + 1);
}

// The optional string field `name` of a news body, trimmed, at most `max_characters` long ("" when absent).
bool news_text_field(const json& body, const char* name, int64_t max_characters, std::string& out,
                     Service::Reply& refusal) {
  auto it = body.find(name);
  out.clear();
  if (it == body.end()) return true;
  if (!it->is_string()) {
    refusal = error_reply(400, fmt::format("field '{}' must be a string, got {} {}", name, json_type(*it), dump(*it)));
    return false;
  }
  out = trimmed(it->get<std::string>());
  if (utf8_characters(out) > max_characters) {
    refusal = error_reply(400, fmt::format("field '{}' has {} characters; at most {} are accepted", name,
                                           utf8_characters(out), max_characters));
    return false;
  }
  return true;
}

// The body of POST /v1/news: the new item's id (a string or an integer, as item ids are everywhere) and its text.
bool news_from_body(const json& body, std::string& id, data::NewsText& article, Service::Reply& refusal) {
  auto field = body.find("id");
  if (field == body.end()) {
    refusal = error_reply(400, "missing field 'id' (the new item's id)");
    return false;
  }
  const std::optional<std::string> text = item_id_text(*field);
  if (!text) {
    refusal = error_reply(400, fmt::format("field 'id' must be a string or an integer item id, got {} {}",
                                           json_type(*field), dump(*field)));
    return false;
  }
  id = *text;
  if (trimmed(id).empty()) {
    refusal = error_reply(400, "field 'id' must not be empty");
    return false;
  }
  if (utf8_characters(id) > kMaxNewsIdCharacters) {
    refusal = error_reply(400, fmt::format("field 'id' has {} characters; at most {} are accepted",
                                           utf8_characters(id), kMaxNewsIdCharacters));
    return false;
  }
  if (!body.contains("title")) {
    refusal = error_reply(400, "missing field 'title' (the article's title)");
    return false;
  }
  if (!news_text_field(body, "title", kMaxNewsTitleCharacters, article.title, refusal) ||
      !news_text_field(body, "category", kMaxNewsNameCharacters, article.category, refusal) ||
      !news_text_field(body, "subcategory", kMaxNewsNameCharacters, article.subcategory, refusal))
    return false;
  if (article.title.empty()) {
    refusal = error_reply(400, "field 'title' must not be empty");
    return false;
  }
  return true;
}

// A response's items list: the hits' external ids and scores (the caller holds bundle.items_lock.read()).
json scored_items(const Bundle& bundle, const std::vector<index::ScoredItem>& found) {
  json items = json::array();
  for (const index::ScoredItem& hit : found)
    items.push_back({{"item", bundle.data.item_external_ids[hit.item]}, {"score", hit.score}});
  return items;
}

// The news route's 501 for an export whose encoder does not encode items; nullopt when it does.
std::optional<Service::Reply> refuse_without_item_encoder(const Bundle& bundle) {
  if (bundle.encoder && bundle.encoder->encodes_items()) return std::nullopt;
  return error_reply(501, fmt::format("export '{}' (model '{}') does not encode new items from their text; only news "
                                      "models do",
                                      bundle.data.dir, bundle.data.manifest.model));
}

bool all_finite(const std::vector<float>& values) {
  return std::all_of(values.begin(), values.end(), [](float value) { return std::isfinite(value); });
}

}  // namespace

bool is_loopback_address(const std::string& address) {
  return address.rfind("127.", 0) == 0 || address == "::1" || address.rfind("::ffff:127.", 0) == 0;
}

// ---------------------------------------------------------------------------------------------------------------
// Life cycle

Service::Service(ServeConfig config, std::string export_dir, EncoderFactory encoder_factory)
    : config_(std::move(config)), serving_dir_(std::move(export_dir)), encoder_factory_(std::move(encoder_factory)) {
  bundle_ = load_bundle(serving_dir_);
  const std::filesystem::path absolute = std::filesystem::absolute(serving_dir_).lexically_normal();
  export_root_ = std::filesystem::weakly_canonical(
                     config_.export_root.empty() ? absolute.parent_path() : std::filesystem::path(config_.export_root))
                     .string();
  if (::pipe2(reload_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) fail("serve: cannot create the reload pipe: {}", std::strerror(errno));
  reload_thread_ = std::thread([this] { watch_reload_requests(); });
  HttpServerOptions options;
  options.host = config_.host;
  options.threads = config_.threads;
  options.max_body_bytes = config_.max_body_bytes;
  options.idle_timeout_s = config_.keep_alive_timeout_s;
  options.max_connections = config_.max_connections;
  options.max_requests_per_connection = config_.keep_alive_max_requests;
  server_ = std::make_unique<HttpServer>(
      options, [this](const HttpRequest& request) { return handle(request); },
      [](const HttpRequest& request) { return route_label(request.method, request.path) == "admin_reload"; },
      [this](const HttpRequest& request, int status, double seconds) {
        metrics_.record_request(route_label(request.method, request.path), status, seconds);
      });
}

Service::~Service() {
  stop();
  stopping_ = true;
  const char stop_byte = 's';
  if (::write(reload_pipe_[1], &stop_byte, 1) < 0) {
    // The pipe is full of reload requests; the watcher drains it and then sees stopping_.
  }
  if (reload_thread_.joinable()) reload_thread_.join();
  ::close(reload_pipe_[0]);
  ::close(reload_pipe_[1]);
}

int Service::bind(int port) {
  if (port_ >= 0) fail("serve: already bound to {}:{}", config_.host, port_);
  port_ = server_->bind(port);
  return port_;
}

void Service::start_in_thread() {
  if (port_ < 0) bind(config_.port);
  server_->start();
}

void Service::stop() { server_->stop(); }

// ---------------------------------------------------------------------------------------------------------------
// Bundles and reload

std::shared_ptr<Bundle> Service::load_bundle(const std::string& dir) const {
  auto bundle = std::make_shared<Bundle>();
  bundle->data = index::load_export(dir);
  bundle->data.index.set_search_parameters(config_.nprobe, config_.ef_search);
  if (encoder_factory_) bundle->encoder = encoder_factory_(bundle->data);
  bundle->version = bundle->data.manifest.version();
  return bundle;
}

std::shared_ptr<const Bundle> Service::bundle() const { return current_bundle(); }

std::shared_ptr<Bundle> Service::current_bundle() const {
  std::lock_guard<std::mutex> lock(bundle_mutex_);
  return bundle_;
}

std::string Service::version() const { return bundle()->version; }

ReloadResult Service::reload(const std::string& dir) {
  std::lock_guard<std::mutex> reloading(reload_mutex_);
  const std::string target = dir.empty() ? serving_dir_ : dir;
  std::shared_ptr<Bundle> fresh;
  try {
    fresh = load_bundle(target);
  } catch (const std::exception& error) {
    metrics_.record_reload(false);
    spdlog::warn("reload of {} rejected, still serving version {}: {}", target, version(), error.what());
    return {false, version(), error.what()};
  }
  // Released after the swap: the last request using it closes it. Only reloads (serialised) replace bundle_.
  const std::shared_ptr<Bundle> previous = current_bundle();
  int64_t dropped = 0;
  {
    // Held across the swap, so that every news added to `previous` is counted here, and an add still waiting
    // finds the new export current and starts again on it (add_news). `fresh` is not published yet: no lock.
    const auto reading = previous->items_lock.read();
    for (size_t item = static_cast<size_t>(previous->data.manifest.item_count);
         item < previous->data.item_external_ids.size(); ++item)
      dropped += !fresh->data.item_id(previous->data.item_external_ids[item]).has_value();
    std::lock_guard<std::mutex> lock(bundle_mutex_);
    bundle_ = fresh;
  }
  serving_dir_ = target;
  metrics_.record_reload(true);
  spdlog::info("reloaded {}: version {} -> {}", target, previous->version, fresh->version);
  if (dropped > 0)
    spdlog::warn("reload: {} news added live (POST /v1/news) to version {} are not in version {} and are no longer "
                 "served",
                 dropped, previous->version, fresh->version);
  return {true, fresh->version, "", dropped};
}

void Service::request_reload() noexcept {
  const char reload_byte = 'r';
  // Non-blocking: when the pipe is full a reload is already pending, which is all this asks for.
  [[maybe_unused]] const ssize_t written = ::write(reload_pipe_[1], &reload_byte, 1);
}

void Service::watch_reload_requests() {
  for (;;) {
    pollfd descriptor{reload_pipe_[0], POLLIN, 0};
    if (::poll(&descriptor, 1, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("serve: reload watcher stopped: poll failed ({})", errno);
      return;
    }
    char buffer[64];
    while (::read(reload_pipe_[0], buffer, sizeof(buffer)) > 0) {
    }
    if (stopping_) return;
    reload();  // logs its own outcome
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Routes

HttpResponse Service::handle(const HttpRequest& request) {
  Reply reply;
  try {
    const std::string label = route_label(request.method, request.path);
    if (label == "metrics") return {200, metrics_text(), "text/plain; version=0.0.4; charset=utf-8", {}};
    reply = route(request, label);
  } catch (const std::exception& error) {
    spdlog::error("{} {}: {}", request.method, request.path, error.what());
    reply = error_reply(500, std::string("internal error: ") + error.what());
  }
  return {reply.status, dump(reply.body), "application/json", std::move(reply.headers)};
}

Service::Reply Service::route(const HttpRequest& request, const std::string& route) {
  if (route == "user_recommendations") {
    static const size_t prefix = std::strlen("/v1/users/"), suffix = std::strlen("/recommendations");
    return user_recommendations(request, request.path.substr(prefix, request.path.size() - prefix - suffix));
  }
  if (route == "history_recommendations") return history_recommendations(request);
  if (route == "similar_items") return similar_items(request);
  if (route == "add_news") return add_news(request);
  if (route == "healthz") return healthz();
  if (route == "admin_reload") return admin_reload(request);
  for (const char* other : {"GET", "POST"})
    if (other != request.method && route_label(other, request.path) != "unmatched") {
      Reply refusal = error_reply(405, fmt::format("{} is not served on {} (use {})", request.method, request.path, other));
      refusal.headers.emplace_back("Allow", other);
      return refusal;
    }
  return error_reply(404, fmt::format("no route for {} {}", request.method, request.path));
}

Service::Reply Service::user_recommendations(const HttpRequest& request, const std::string& user_external) const {
  const std::shared_ptr<const Bundle> bundle = this->bundle();
  for (const auto& [name, value] : request.query)
    if (name != "k" && name != "exclude_seen")
      return error_reply(400, fmt::format("unknown query parameter '{}' (expected 'k', 'exclude_seen')", name));
  int64_t k = config_.default_k;
  if (const std::string* value = request.query_value("k")) {
    const std::string& text = *value;
    const std::optional<int64_t> parsed = parse_int64(text);
    if (!parsed) return error_reply(400, fmt::format("query parameter 'k' must be an integer, got '{}'", text));
    k = *parsed;
  }
  Reply refusal;
  if (!check_k(k, config_.max_k, refusal)) return refusal;
  bool exclude_seen = true;
  if (const std::string* value = request.query_value("exclude_seen")) {
    const std::string& text = *value;
    if (text == "true" || text == "1") exclude_seen = true;
    else if (text == "false" || text == "0") exclude_seen = false;
    else return error_reply(400, fmt::format("query parameter 'exclude_seen' must be true or false, got '{}'", text));
  }

  const index::UserStore& store = bundle->data.store;
  const std::optional<int32_t> user = store.user_id(user_external);
  if (!user) return error_reply(404, fmt::format("unknown user '{}'", user_external));
  const std::optional<std::vector<float>> vector = store.user_vector(*user);
  if (!vector) return error_reply(500, fmt::format("the user store has no vector for user '{}'", user_external));
  std::vector<int32_t> seen;
  if (exclude_seen) seen = store.seen_items(*user).value_or(std::vector<int32_t>{});
  json items;
  {
    const auto reading = bundle->items_lock.read();
    items = scored_items(*bundle, bundle->data.index.search(vector->data(), k, seen));
  }
  return {200, json{{"user", user_external}, {"version", bundle->version}, {"k", k}, {"items", std::move(items)}}};
}

Service::Reply Service::history_recommendations(const HttpRequest& request) const {
  const std::shared_ptr<const Bundle> bundle = this->bundle();
  Reply refusal;
  json body;
  if (!parse_object(request, body, refusal) ||
      !only_fields(body, {"history", "k", "exclude_seen", "features"}, refusal))
    return refusal;
  if (!bundle->encoder)
    return error_reply(501, fmt::format("export '{}' (model '{}') has no history encoder; ask "
                                        "/v1/users/{{user}}/recommendations for known users",
                                        bundle->data.dir, bundle->data.manifest.model));
  std::map<std::string, std::vector<std::string>> features;
  if (!features_from_field(body, features, refusal)) return refusal;
  if (!features.empty() && !bundle->encoder->takes_features())
    return error_reply(400, fmt::format("field 'features': model '{}' takes no user features",
                                        bundle->data.manifest.model));
  const json no_history = json::array();
  auto history = body.find("history");
  if (history == body.end() && features.empty())
    return error_reply(400, "missing field 'history' (an array of item ids, oldest first)");
  if (history != body.end() && !history->is_array())
    return error_reply(400, fmt::format("field 'history' must be an array of item ids, got {}", json_type(*history)));
  const json& given = history == body.end() ? no_history : *history;
  if (given.empty() && features.empty())
    return error_reply(400, "field 'history' must not be empty (or give the user's 'features')");
  int64_t limit = config_.max_history;
  const int64_t encoder_limit = bundle->encoder->max_history();
  if (encoder_limit > 0 && (limit == 0 || encoder_limit < limit)) limit = encoder_limit;
  if (limit > 0 && static_cast<int64_t>(given.size()) > limit)
    return error_reply(400, fmt::format("field 'history' has {} items; at most {} are accepted", given.size(), limit));
  int64_t k = 0;
  bool exclude_seen = true;
  if (!k_from_field(body, config_, k, refusal) || !exclude_seen_from_field(body, exclude_seen, refusal))
    return refusal;

  std::vector<std::string> externals;
  externals.reserve(given.size());
  for (size_t i = 0; i < given.size(); ++i) {
    std::optional<std::string> id = item_id_text(given[i]);
    if (!id)
      return error_reply(400, fmt::format("history[{}] must be a string or an integer item id, got {} {}", i,
                                          json_type(given[i]), dump(given[i])));
    externals.push_back(std::move(*id));
  }
  // From the id lookups to the ids' translation back: the encoder may read the index (see HistoryEncoder::encode).
  const auto reading = bundle->items_lock.read();
  std::vector<int32_t> items;
  items.reserve(externals.size());
  for (size_t i = 0; i < externals.size(); ++i) {
    const std::optional<int32_t> item = bundle->data.item_id(externals[i]);
    if (!item) return error_reply(404, fmt::format("unknown item '{}' (history[{}])", externals[i], i));
    items.push_back(*item);
  }

  std::vector<float> vector;
  try {
    vector = bundle->encoder->encode_user(items, features);
  } catch (const InputError& error) {
    return error_reply(400, error.what());
  }
  if (static_cast<int32_t>(vector.size()) != bundle->data.index.dim())
    return error_reply(500, fmt::format("the encoder returned {} floats, the index expects {}", vector.size(),
                                        bundle->data.index.dim()));
  // exclude_seen: every history item is left out (the evaluator's exclude = "history"); otherwise none is.
  const std::vector<index::ScoredItem> found =
      exclude_seen ? bundle->data.index.search(vector.data(), k, items) : bundle->data.index.search(vector.data(), k);
  return {200, json{{"version", bundle->version}, {"k", k}, {"items", scored_items(*bundle, found)}}};
}

Service::Reply Service::similar_items(const HttpRequest& request) const {
  const std::shared_ptr<const Bundle> bundle = this->bundle();
  Reply refusal;
  json body;
  if (!parse_object(request, body, refusal) || !only_fields(body, {"item", "k"}, refusal)) return refusal;
  auto field = body.find("item");
  if (field == body.end()) return error_reply(400, "missing field 'item' (an item id)");
  const std::optional<std::string> external = item_id_text(*field);
  if (!external)
    return error_reply(400, fmt::format("field 'item' must be a string or an integer item id, got {} {}",
                                        json_type(*field), dump(*field)));
  int64_t k = 0;
  if (!k_from_field(body, config_, k, refusal)) return refusal;
  const auto reading = bundle->items_lock.read();
  const std::optional<int32_t> item = bundle->data.item_id(*external);
  if (!item) return error_reply(404, fmt::format("unknown item '{}'", *external));
  if (!bundle->data.index.contains(*item))
    return error_reply(404, fmt::format("item '{}' is not in the index (it had no training interactions; "
                                        "`embrec export --cold-items` indexes such items for models with item features)",
                                        *external));

  const std::vector<float> vector = bundle->data.index.item_vector(*item);
  const std::vector<index::ScoredItem> found = bundle->data.index.search(vector.data(), k, {*item});
  return {200,
          json{{"item", *external}, {"version", bundle->version}, {"k", k}, {"items", scored_items(*bundle, found)}}};
}

Service::Reply Service::add_news(const HttpRequest& request) {
  Reply refusal;
  json body;
  if (!parse_object(request, body, refusal) ||
      !only_fields(body, {"id", "title", "category", "subcategory"}, refusal))
    return refusal;
  std::shared_ptr<Bundle> bundle = current_bundle();
  if (std::optional<Reply> refusal_501 = refuse_without_item_encoder(*bundle)) return *refusal_501;
  std::string id;
  data::NewsText article;
  if (!news_from_body(body, id, article, refusal)) return refusal;
  // A reload may swap the export while the article is encoded: the vector is then the old model's, so the add
  // starts again on the new export (reload() counts what it drops under the same lock, so nothing falls between).
  for (int attempt = 0; attempt < 3; ++attempt, bundle = current_bundle()) {
    if (std::optional<Reply> refusal_501 = refuse_without_item_encoder(*bundle)) return *refusal_501;
    const std::string duplicate = fmt::format("item '{}' already exists", id);
    {
      const auto reading = bundle->items_lock.read();
      if (bundle->data.item_id(id)) return error_reply(409, duplicate);
    }
    std::vector<float> vector;
    try {
      vector = bundle->encoder->encode_item(article);
    } catch (const InputError& error) {
      return error_reply(400, error.what());
    }
    if (static_cast<int32_t>(vector.size()) != bundle->data.index.dim())
      return error_reply(500, fmt::format("the encoder returned {} floats, the index expects {}", vector.size(),
                                          bundle->data.index.dim()));
    if (!all_finite(vector)) return error_reply(500, "the encoder returned a vector with non-finite values");

    const auto writing = bundle->items_lock.write();
    if (current_bundle() != bundle) continue;
    if (bundle->data.item_id(id)) return error_reply(409, duplicate);  // added by a request beside this one
    index::LoadedExport& data = bundle->data;
    const int64_t item = static_cast<int64_t>(data.item_external_ids.size());
    try {
      data.index.add(vector.data(), 1, item);
    } catch (const Error& error) {
      return error_reply(501, fmt::format("the export's index cannot take new items: {}", error.what()));
    }
    data.item_external_ids.push_back(id);
    data.item_ids.emplace(id, static_cast<int32_t>(item));
    return {201, json{{"item", id}, {"version", bundle->version}}};
  }
  return error_reply(503, "the export was reloaded three times while the article was being added; try again");
}

Service::Reply Service::healthz() const {
  const std::shared_ptr<const Bundle> bundle = this->bundle();
  const index::Manifest& m = bundle->data.manifest;
  const auto reading = bundle->items_lock.read();
  return {200, json{{"status", "ok"},
                    {"version", bundle->version},
                    {"model", m.model},
                    {"dataset", m.dataset},
                    {"created_utc", m.created_utc},
                    {"items", bundle->data.manifest.item_count},
                    {"indexed_items", bundle->data.index.size()},
                    {"added_news", bundle->added_news()},
                    {"users", bundle->data.store.user_count()},
                    {"encoder", bundle->encoder != nullptr}}};
}

std::string Service::metrics_text() const {
  const std::shared_ptr<const Bundle> bundle = this->bundle();
  const index::Manifest& m = bundle->data.manifest;
  std::string out = metrics_.prometheus_text();
  out += "# HELP embrec_model_info The export being served (always 1); its labels say which.\n";
  out += "# TYPE embrec_model_info gauge\n";
  out += fmt::format(
      "embrec_model_info{{model=\"{}\",dataset=\"{}\",version=\"{}\",created_utc=\"{}\",index=\"{}\",metric=\"{}\"}} "
      "1\n",
      prometheus_label(m.model), prometheus_label(m.dataset), prometheus_label(bundle->version),
      prometheus_label(m.created_utc), prometheus_label(m.index_factory), prometheus_label(m.metric));
  int64_t indexed = 0, added = 0;
  {
    const auto reading = bundle->items_lock.read();
    indexed = bundle->data.index.size();
    added = bundle->added_news();
  }
  out += "# HELP embrec_index_items Items in the served index (recommendable; known items may be more).\n"
         "# TYPE embrec_index_items gauge\n";
  out += fmt::format("embrec_index_items {}\n", indexed);
  out += "# HELP embrec_added_news News added live to the served export (POST /v1/news; a reload drops them).\n"
         "# TYPE embrec_added_news gauge\n";
  out += fmt::format("embrec_added_news {}\n", added);
  out += "# HELP embrec_http_open_connections Client connections open now.\n";
  out += "# TYPE embrec_http_open_connections gauge\n";
  out += fmt::format("embrec_http_open_connections {}\n", server_->open_connections());
  out += "# HELP embrec_store_users Users in the served user store.\n# TYPE embrec_store_users gauge\n";
  out += fmt::format("embrec_store_users {}\n", bundle->data.store.user_count());
  return out;
}

bool Service::admin_allowed(const HttpRequest& request, Reply& refusal) const {
  if (config_.admin_loopback_only && !is_loopback_address(request.remote_address)) {
    refusal = error_reply(403, fmt::format("admin routes answer loopback clients only (request from {})",
                                           request.remote_address));
    return false;
  }
  if (config_.admin_token.empty()) {
    refusal = error_reply(403, "admin routes are off: the service has no admin token");
    return false;
  }
  if (!constant_time_equal(bearer_token(request.header("Authorization")), config_.admin_token)) {
    refusal = error_reply(403, "admin routes need the header 'Authorization: Bearer <admin_token>'");
    return false;
  }
  return true;
}

Service::Reply Service::admin_reload(const HttpRequest& request) {
  Reply refusal;
  if (!admin_allowed(request, refusal)) return refusal;
  std::string dir;
  if (!request.body.empty()) {  // no body (e.g. `curl -X POST` without -d): reload the folder serving now
    json body;
    if (!parse_object(request, body, refusal) || !only_fields(body, {"dir"}, refusal)) return refusal;
    if (auto field = body.find("dir"); field != body.end()) {
      if (!field->is_string())
        return error_reply(400, fmt::format("field 'dir' must be a string, got {}", json_type(*field)));
      dir = field->get<std::string>();
      if (!inside(export_root_, dir))
        return error_reply(403, fmt::format("field 'dir' must name an export inside the export root {}",
                                            export_root_));
    }
  }
  const std::string previous = version();
  const ReloadResult result = reload(dir);
  if (!result.ok)
    return {422, json{{"error", "reload rejected, still serving the previous export: " + result.error},
                      {"version", result.version}}};
  return {200, json{{"ok", true},
                    {"version", result.version},
                    {"previous_version", previous},
                    {"dropped_news", result.dropped_news}}};
}

std::string load_or_create_admin_token(const std::string& path, bool& created) {
  created = false;
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) {
    if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0)
      fail("{}: the admin token file is open to group or others (mode {:o}); chmod 600 it", path,
           info.st_mode & 0777);
    std::string token = read_file(path);
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) token.pop_back();
    if (token.empty()) fail("{}: the admin token file is empty", path);
    return token;
  }
  unsigned char random[32];
  if (RAND_bytes(random, sizeof(random)) != 1) fail("{}: cannot draw a random admin token", path);
  // 64 hex digits carrying the 256 random bits (hashed only to reuse the one hex writer; no entropy is lost).
  const std::string token = sha256_hex(std::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  const int descriptor = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (descriptor < 0) fail("{}: cannot create the admin token file: {}", path, std::strerror(errno));
  const std::string line = token + "\n";
  const bool written = ::write(descriptor, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(descriptor) == 0;
  ::close(descriptor);
  if (!written) {
    ::unlink(path.c_str());
    fail("{}: cannot write the admin token file", path);
  }
  created = true;
  return token;
}

}  // namespace embrec::serve
