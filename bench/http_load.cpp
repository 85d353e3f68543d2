// Loopback HTTP load on the recommendation service: fixed-duration runs at several client concurrencies, each
// client a blocking httplib::Client on its own thread; reports requests/s, p50/p99/max latency and errors.
//
// Usage: bench_http_load [--export DIR] [--route user|history|similar] [--concurrency 1,8,64] [--seconds 3]
//                        [--server-threads 64] [--k 20] [--keep-alive 1] [--history-length 50]
//                        [--port P] [--reload-every SECONDS] [--admin-token T]
//                        [--items 20000] [--users 10000] [--dim 64] [--index Flat]   (synthetic export only)
// Without --export a synthetic export (random vectors, 8 seen items per user) is written to a temporary folder.
// The history route uses a mean-of-item-vectors encoder (no torch): it measures the server, not a model.
// With --port P the clients target an already running server on 127.0.0.1:P instead (e.g. `embrec serve DIR`, whose
// history route encodes with the real model); --export DIR then only supplies the user and item ids to ask for.
// --reload-every S posts /admin/reload every S seconds during each run and reports the reloads that succeeded.
// Client and server share the machine's cores, so figures are a floor for what a separate client would see.
#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "embrec/index/export.h"
#include "embrec/serve/service.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string export_dir;
  std::string route = "user";
  std::vector<int> concurrency{1, 8, 64};
  double seconds = 3.0;
  int server_threads = 64;
  int k = 20;
  bool keep_alive = true;
  int32_t items = 20000;
  int32_t users = 10000;
  int32_t dim = 64;
  std::string index = "Flat";
  int port = 0;              // > 0: an external server on 127.0.0.1:port
  int history_length = 50;   // items per history request
  double reload_every = 0;   // > 0: POST /admin/reload this often during a run
  std::string admin_token;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    const std::string value = argv[i + 1];
    if (name == "--export") o.export_dir = value;
    else if (name == "--port") o.port = std::stoi(value);
    else if (name == "--history-length") o.history_length = std::stoi(value);
    else if (name == "--reload-every") o.reload_every = std::stod(value);
    else if (name == "--admin-token") o.admin_token = value;
    else if (name == "--route") o.route = value;
    else if (name == "--seconds") o.seconds = std::stod(value);
    else if (name == "--server-threads") o.server_threads = std::stoi(value);
    else if (name == "--k") o.k = std::stoi(value);
    else if (name == "--keep-alive") o.keep_alive = value != "0";
    else if (name == "--items") o.items = std::stoi(value);
    else if (name == "--users") o.users = std::stoi(value);
    else if (name == "--dim") o.dim = std::stoi(value);
    else if (name == "--index") o.index = value;
    else if (name == "--concurrency") {
      o.concurrency.clear();
      std::stringstream list(value);
      for (std::string part; std::getline(list, part, ',');) o.concurrency.push_back(std::stoi(part));
    } else {
      fmt::print(stderr, "unknown option {}\n", name);
      std::exit(2);
    }
  }
  if (o.route != "user" && o.route != "history" && o.route != "similar") {
    fmt::print(stderr, "--route must be user, history or similar\n");
    std::exit(2);
  }
  return o;
}

std::string write_synthetic_export(const Options& o) {
  embrec::index::ExportData data;
  data.model_name = "synthetic";
  data.dataset_name = "random";
  data.dim = o.dim;
  std::mt19937_64 generator(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int32_t> any_item(0, o.items - 1);
  data.item_vectors.resize(static_cast<size_t>(o.items) * o.dim);
  data.user_vectors.resize(static_cast<size_t>(o.users) * o.dim);
  for (float& value : data.item_vectors) value = normal(generator);
  for (float& value : data.user_vectors) value = normal(generator);
  for (int32_t item = 0; item < o.items; ++item) data.item_external_ids.push_back("i" + std::to_string(item));
  for (int32_t user = 0; user < o.users; ++user) {
    data.user_external_ids.push_back("u" + std::to_string(user));
    std::vector<int32_t> seen(8);
    for (int32_t& item : seen) item = any_item(generator);
    data.user_seen_items.push_back(std::move(seen));
  }
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("embrec-http-load-" + std::to_string(::getpid()))).string();
  embrec::index::ExportOptions options;
  options.index.factory = o.index;
  options.index.metric = embrec::index::Metric::kInnerProduct;
  embrec::index::write_export(data, dir, options);
  return dir;
}

class MeanEncoder final : public embrec::serve::HistoryEncoder {
 public:
  explicit MeanEncoder(const embrec::index::LoadedExport& loaded) : index_(loaded.index) {}
  std::vector<float> encode(const std::vector<int32_t>& items) override {
    std::vector<float> mean(static_cast<size_t>(index_.dim()), 0.0f);
    for (int32_t item : items) {
      const std::vector<float> vector = index_.item_vector(item);
      for (size_t d = 0; d < mean.size(); ++d) mean[d] += vector[d];
    }
    return mean;
  }

 private:
  const embrec::index::ItemIndex& index_;
};

struct RunResult {
  int64_t ok = 0;
  int64_t errors = 0;
  std::vector<double> latencies_ms;
  double seconds = 0;
};

struct ReloadCount {
  int64_t ok = 0;
  int64_t failed = 0;
};

RunResult run_clients(const Options& o, int port, int concurrency, double seconds, const std::vector<std::string>& user_ids,
                      const std::vector<std::string>& item_ids, ReloadCount* reloads = nullptr) {
  const int32_t users = static_cast<int32_t>(user_ids.size()), items = static_cast<int32_t>(item_ids.size());
  std::vector<RunResult> per_client(static_cast<size_t>(concurrency));
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now();
  for (int c = 0; c < concurrency; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      client.set_keep_alive(o.keep_alive);
      client.set_tcp_nodelay(true);
      client.set_connection_timeout(10);
      client.set_read_timeout(30);
      std::mt19937_64 generator(static_cast<uint64_t>(c) + 100);
      std::uniform_int_distribution<int32_t> any_user(0, users - 1), any_item(0, items - 1);
      RunResult& mine = per_client[static_cast<size_t>(c)];
      const std::string k = std::to_string(o.k);
      while (!stop.load(std::memory_order_relaxed)) {
        const Clock::time_point sent = Clock::now();
        const httplib::Result result = [&] {
          if (o.route == "user")
            return client.Get("/v1/users/" + user_ids[any_user(generator)] + "/recommendations?k=" + k);
          if (o.route == "similar")
            return client.Post("/v1/items/similar",
                               "{\"item\": \"" + item_ids[any_item(generator)] + "\", \"k\": " + k + "}",
                               "application/json");
          std::string body = "{\"k\": " + k + ", \"history\": [";
          for (int i = 0; i < o.history_length; ++i) body += (i ? ",\"" : "\"") + item_ids[any_item(generator)] + "\"";
          body += "]}";
          return client.Post("/v1/recommendations", body, "application/json");
        }();
        const double milliseconds = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
        if (result && result->status == 200) {
          ++mine.ok;
          mine.latencies_ms.push_back(milliseconds);
        } else {
          ++mine.errors;
        }
      }
    });
  }
  if (reloads && o.reload_every > 0) {
    httplib::Client admin("127.0.0.1", port);
    httplib::Headers headers;
    if (!o.admin_token.empty()) headers.emplace("Authorization", "Bearer " + o.admin_token);
    while (Clock::now() - start < std::chrono::duration<double>(seconds)) {
      std::this_thread::sleep_for(std::chrono::duration<double>(o.reload_every));
      const httplib::Result result = admin.Post("/admin/reload", headers, "", "application/json");
      ++(result && result->status == 200 ? reloads->ok : reloads->failed);
    }
  } else {
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  }
  stop = true;
  for (std::thread& thread : threads) thread.join();
  RunResult total;
  total.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (RunResult& part : per_client) {
    total.ok += part.ok;
    total.errors += part.errors;
    total.latencies_ms.insert(total.latencies_ms.end(), part.latencies_ms.begin(), part.latencies_ms.end());
  }
  std::sort(total.latencies_ms.begin(), total.latencies_ms.end());
  return total;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t index = std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())));
  return sorted[index];
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);
  const bool synthetic = o.export_dir.empty();
  const std::string dir = synthetic ? write_synthetic_export(o) : o.export_dir;

  std::unique_ptr<embrec::serve::Service> service;
  int port = o.port;
  std::vector<std::string> user_ids, item_ids;
  std::string description;
  {
    // The ids to ask for come from the export (also when an external server serves it).
    const embrec::index::LoadedExport loaded = embrec::index::load_export(dir);
    for (int32_t user = 0; user < loaded.store.user_count(); ++user)
      user_ids.push_back(loaded.store.user_external_id(user).value_or(""));
    item_ids = loaded.item_external_ids;
    description = fmt::format("{} ({} items x {}, {} users, index {})", dir, item_ids.size(), loaded.index.dim(),
                              user_ids.size(), loaded.manifest.index_factory);
  }
  if (port <= 0) {
    embrec::serve::ServeConfig config;
    if (o.admin_token.empty()) o.admin_token = "http-load";  // admin routes need a token
    config.admin_token = o.admin_token;
    config.threads = o.server_threads;
    config.max_k = std::max(1000, o.k);
    config.default_k = std::min<int64_t>(config.default_k, config.max_k);
    service = std::make_unique<embrec::serve::Service>(config, dir, [](const embrec::index::LoadedExport& loaded) {
      return std::make_unique<MeanEncoder>(loaded);
    });
    port = service->bind(0);
    service->start_in_thread();
  }

  fmt::print("route {} | export {} | server {} | keep-alive {} | history {} items | {} s each\n", o.route,
             description, service ? fmt::format("in-process, {} threads", o.server_threads)
                                  : fmt::format("external, 127.0.0.1:{}", port),
             o.keep_alive ? "on" : "off", o.history_length, o.seconds);
  (void)run_clients(o, port, 1, 0.3, user_ids, item_ids);  // warm-up: page in the store and the index
  fmt::print("{:>11} {:>10} {:>12} {:>9} {:>9} {:>9} {:>7} {:>8}\n", "concurrency", "requests", "requests/s", "p50 ms",
             "p99 ms", "max ms", "errors", "reloads");
  for (int concurrency : o.concurrency) {
    ReloadCount reloads;
    const RunResult r = run_clients(o, port, concurrency, o.seconds, user_ids, item_ids, &reloads);
    fmt::print("{:>11} {:>10} {:>12.0f} {:>9.3f} {:>9.3f} {:>9.3f} {:>7} {:>8}\n", concurrency, r.ok,
               static_cast<double>(r.ok) / r.seconds, percentile(r.latencies_ms, 0.5),
               percentile(r.latencies_ms, 0.99), r.latencies_ms.empty() ? 0.0 : r.latencies_ms.back(), r.errors,
               fmt::format("{}/{}", reloads.ok, reloads.ok + reloads.failed));
    std::fflush(stdout);
  }
  if (service) service->stop();
  if (synthetic) std::filesystem::remove_all(dir);
  return 0;
}
