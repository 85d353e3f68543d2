// `embrec data fetch` against a scripted HTTP server on 127.0.0.1 (never the internet): a verified download
// unpacked into a log `data prepare` reads, files present and valid left alone, checksum mismatches, a connection
// cut mid-file and resumed, a server that ignores Range, a 404, a stalled server, unverified files, hand-downloaded
// archives (Yelp's tar inside a zip), and archive entries that would escape the folder.
#include "embrec/data/fetch.h"

#include <archive.h>
#include <archive_entry.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "embrec/util/checksum.h"
#include "../util/error_of.h"
#include "embrec/data/load.h"
#include "embrec/util/files.h"
#include "file_fixture.h"

namespace embrec::data {
namespace {

namespace fs = std::filesystem;

// An HTTP server that answers one connection at a time, each as the test's script says: the status and body,
// whether a Range request is honoured, and where the connection is cut or stalls. It records every request.
class ScriptedServer {
 public:
  struct Request {
    std::string path;
    std::string range;  // the Range header's value, or ""
  };
  struct Reply {
    int status = 200;
    std::string body;
    bool honour_range = true;
    size_t cut_after = std::string::npos;    // close the connection after this many bytes of the body
    size_t stall_after = std::string::npos;  // send this many bytes of the body, then nothing
  };
  using Script = std::function<Reply(const Request&, size_t index)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(listener_, 8) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0)
      throw std::runtime_error("test server: cannot listen on 127.0.0.1");
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    ::close(listener_);
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  // Waits up to 50 ms for `descriptor` to be readable.
  static bool readable(int descriptor) {
    pollfd poller{descriptor, POLLIN, 0};
    return ::poll(&poller, 1, 50) > 0;
  }

  void serve() {
    while (!stop_) {
      if (!readable(listener_)) continue;
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) continue;
      answer(client);
      ::close(client);
    }
  }

  void answer(int client) {
    std::string head;
    char buffer[4096];
    while (head.find("\r\n\r\n") == std::string::npos && !stop_) {
      if (!readable(client)) continue;
      const ssize_t read = ::recv(client, buffer, sizeof(buffer), 0);
      if (read <= 0) return;
      head.append(buffer, static_cast<size_t>(read));
    }
    Request request;
    request.path = head.substr(4, head.find(' ', 4) - 4);  // "GET /path HTTP/1.1"
    for (const std::string header : {"\r\nRange: ", "\r\nrange: "}) {
      const size_t at = head.find(header);
      if (at == std::string::npos) continue;
      const size_t start = at + header.size();
      request.range = head.substr(start, head.find("\r\n", start) - start);
    }
    size_t index;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      index = requests_.size();
      requests_.push_back(request);
    }
    const Reply reply = script_(request, index);
    std::string content = reply.body;
    std::string status_line = "200 OK";
    std::string extra;
    if (reply.status != 200) {
      status_line = std::to_string(reply.status) + " Scripted";
    } else if (reply.honour_range && request.range.rfind("bytes=", 0) == 0) {
      const size_t start = std::stoul(request.range.substr(6));
      status_line = "206 Partial Content";
      extra = "Content-Range: bytes " + std::to_string(start) + "-" + std::to_string(reply.body.size() - 1) + "/" +
              std::to_string(reply.body.size()) + "\r\n";
      content = reply.body.substr(start);
    }
    const std::string response = "HTTP/1.1 " + status_line + "\r\nContent-Length: " + std::to_string(content.size()) +
                                 "\r\n" + extra + "Connection: close\r\n\r\n";
    send_all(client, response);
    send_all(client, content.substr(0, std::min(reply.cut_after, reply.stall_after)));
    if (reply.stall_after != std::string::npos)
      while (!stop_)  // until the client gives up (recv 0) or the test ends
        if (readable(client) && ::recv(client, buffer, sizeof(buffer), 0) <= 0) break;
  }

  static void send_all(int client, const std::string& bytes) {
    for (size_t sent = 0; sent < bytes.size();) {
      const ssize_t n = ::send(client, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  Script script_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
  std::thread thread_;
};

// An archive in memory, built with libarchive: "zip" or "ustar", one regular file per (name, bytes).
std::string archive_of(const char* format, const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<char> buffer(1 << 22);
  size_t used = 0;
  archive* writer = archive_write_new();
  archive_write_set_format_by_name(writer, format);
  archive_write_open_memory(writer, buffer.data(), buffer.size(), &used);
  for (const auto& [name, bytes] : files) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, name.c_str());
    archive_entry_set_size(entry, static_cast<la_int64_t>(bytes.size()));
    archive_entry_set_filetype(entry, AE_IFREG);
    archive_entry_set_perm(entry, 0644);
    archive_write_header(writer, entry);
    archive_write_data(writer, bytes.data(), bytes.size());
    archive_entry_free(entry);
  }
  archive_write_close(writer);
  archive_write_free(writer);
  return std::string(buffer.data(), used);
}

// 64 KiB of sequence lines, each different, so bytes appended at a wrong offset change the checksum.
std::string sequence_lines() {
  std::string text;
  for (int user = 1; text.size() < 65536; ++user)
    text += std::to_string(user) + " " + std::to_string(user % 97 + 1) + " " + std::to_string(user % 89 + 1) + "\n";
  return text;
}

// A dataset of one plain file served by `server` with the given digest.
DatasetSpec plain_dataset(const ScriptedServer& server, DigestKind kind, const std::string& digest) {
  DatasetSpec spec;
  spec.name = "plain";
  spec.homepage = "http://example.invalid/";
  spec.licence = "Test licence.";
  spec.files = {{"items.txt", server.url("/items.txt"), kind, digest, 0, Unpack::Keep, "", ""}};
  spec.log = "items.txt";
  return spec;
}

class Fetch : public testing::FileTest {
 protected:
  Fetch() : FileTest("fetch") {}
  void SetUp() override {
    FileTest::SetUp();
    ::setenv("no_proxy", "127.0.0.1", 1);  // a proxy in the environment must not see the test's requests
    options_.attempts = 1;
    options_.retry_pause_s = 0.01;
    options_.stall_timeout_s = 5;
  }
  std::string folder() const { return (folder_ / "dataset").string(); }

  FetchOptions options_;
  const std::string body_ = sequence_lines();
};

TEST_F(Fetch, DownloadsVerifiesAndUnpacksAZipIntoALogThatPrepareReads) {
  const std::string udata = "1\t10\t4\t881250949\n2\t20\t3\t891717742\n1\t20\t5\t878887116\n";
  const std::string zip = archive_of("zip", {{"ml-100k/u.data", udata}, {"ml-100k/README", "GroupLens\n"}});
  ScriptedServer server([&](const auto&, size_t) { return ScriptedServer::Reply{200, zip}; });
  DatasetSpec spec = find_dataset("ml-100k");
  spec.files[0].url = server.url("/ml-100k.zip");
  spec.files[0].digest = sha256_hex(zip);
  spec.files[0].size_bytes = static_cast<int64_t>(zip.size());

  const FetchResult result = fetch_dataset(spec, folder(), options_);

  EXPECT_EQ(read_file(folder() + "/u.data"), udata);
  EXPECT_EQ(read_file(folder() + "/ml-100k.zip"), zip);
  EXPECT_FALSE(file_exists(folder() + "/ml-100k.zip.part"));
  EXPECT_EQ(result.log, folder() + "/u.data");
  EXPECT_EQ(result.prepare_command,
            "embrec data prepare --input " + folder() + "/u.data --format udata --out prepared/ml-100k");
  EXPECT_NE(result.data_toml.find("format = 'udata'"), std::string::npos) << result.data_toml;
  ReadOptions read;
  read.format = LogFormat::Udata;
  EXPECT_EQ(read_log(result.log, read).size(), 3);
  const std::string readme = read_file(folder() + "/README.md");
  EXPECT_NE(readme.find("Harper and J. A. Konstan"), std::string::npos) << readme;  // the licence
  EXPECT_NE(readme.find(sha256_hex(zip)), std::string::npos) << readme;
  EXPECT_NE(readme.find(result.prepare_command), std::string::npos) << readme;
}

TEST_F(Fetch, MindUnpacksIntoTrainAndDevFoldersWhoseDataTableLoadsAsNewsData) {
  const std::string news = "N1\tsports\tnfl\tBills win\t\t\t[]\t[]\nN2\tnews\tus\tStorm hits\t\t\t[]\t[]\n";
  const std::string train = "1\tU1\t11/9/2019 9:00:00 AM\tN1\tN2-1 N1-0\n2\tU1\t11/10/2019 9:00:00 AM\tN1\tN1-1 N2-0\n";
  const std::string dev = "1\tU2\t11/15/2019 9:00:00 AM\t\tN2-1 N1-0\n";
  const std::string train_zip = archive_of("zip", {{"MINDsmall_train/news.tsv", news}, {"MINDsmall_train/behaviors.tsv", train}});
  const std::string dev_zip = archive_of("zip", {{"MINDsmall_dev/news.tsv", news}, {"MINDsmall_dev/behaviors.tsv", dev}});
  ScriptedServer server([&](const auto& request, size_t) {
    return ScriptedServer::Reply{200, request.path.find("dev") != std::string::npos ? dev_zip : train_zip};
  });
  DatasetSpec spec = find_dataset("mind-small");
  for (RemoteFile& file : spec.files) {
    const std::string& zip = file.into == "dev" ? dev_zip : train_zip;
    file.url = server.url("/" + file.name);
    file.digest_kind = DigestKind::Sha256;
    file.digest = sha256_hex(zip);
    file.size_bytes = static_cast<int64_t>(zip.size());
  }
  const FetchResult result = fetch_dataset(spec, folder(), options_);
  EXPECT_EQ(read_file(folder() + "/dev/behaviors.tsv"), dev);
  EXPECT_TRUE(result.prepare_command.empty());  // news data has no prepare step
  ConfigTable root = ConfigTable::parse_string(result.data_toml, "fetched.toml");
  const DataConfig config = DataConfig::from(root.sub("data"));
  root.finish();
  const LoadedData loaded = load_data(config);
  EXPECT_EQ(loaded.dataset.item_count(), 2);
  ASSERT_TRUE(loaded.split.impressions);
  EXPECT_EQ(loaded.split.impressions->test.size(), 1);
  EXPECT_NE(read_file(folder() + "/README.md").find("dev_path"), std::string::npos);
}

TEST_F(Fetch, LeavesAFilePresentAndValidAlone) {
  ScriptedServer server([&](const auto&, size_t) { return ScriptedServer::Reply{200, body_}; });
  const DatasetSpec spec = plain_dataset(server, DigestKind::Sha256, sha256_hex(body_));
  fetch_dataset(spec, folder(), options_);
  fetch_dataset(spec, folder(), options_);
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(read_file(folder() + "/items.txt"), body_);
}

TEST_F(Fetch, ChecksumMismatchNamesBothSumsAndKeepsNothing) {
  ScriptedServer server([&](const auto&, size_t) { return ScriptedServer::Reply{200, body_}; });
  const std::string expected(64, 'a');
  const DatasetSpec spec = plain_dataset(server, DigestKind::Sha256, expected);
  const std::string error = error_of([&] { fetch_dataset(spec, folder(), options_); });
  EXPECT_NE(error.find("SHA-256 mismatch: expected " + expected + ", got " + sha256_hex(body_)), std::string::npos)
      << error;
  EXPECT_FALSE(file_exists(folder() + "/items.txt"));
  EXPECT_FALSE(file_exists(folder() + "/items.txt.part"));
}

TEST_F(Fetch, ResumesAfterTheConnectionIsCutMidFile) {
  const size_t cut = 20000;
  ScriptedServer server([&](const auto&, size_t index) {
    ScriptedServer::Reply reply{200, body_};
    if (index == 0) reply.cut_after = cut;
    return reply;
  });
  const DatasetSpec spec = plain_dataset(server, DigestKind::Sha256, sha256_hex(body_));
  const std::string error = error_of([&] { fetch_dataset(spec, folder(), options_); });
  EXPECT_NE(error.find("run again to resume"), std::string::npos) << error;
  EXPECT_EQ(fs::file_size(folder() + "/items.txt.part"), cut);
  EXPECT_FALSE(file_exists(folder() + "/items.txt"));

  fetch_dataset(spec, folder(), options_);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].range, "");
  EXPECT_EQ(requests[1].range, "bytes=" + std::to_string(cut) + "-");
  EXPECT_EQ(read_file(folder() + "/items.txt"), body_);
  EXPECT_FALSE(file_exists(folder() + "/items.txt.part"));
}

TEST_F(Fetch, RetriesACutTransferWithinOneCall) {
  ScriptedServer server([&](const auto&, size_t index) {
    ScriptedServer::Reply reply{200, body_};
    if (index == 0) reply.cut_after = 30000;
    return reply;
  });
  options_.attempts = 2;
  fetch_dataset(plain_dataset(server, DigestKind::Sha256, sha256_hex(body_)), folder(), options_);
  ASSERT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(server.requests()[1].range, "bytes=30000-");
  EXPECT_EQ(read_file(folder() + "/items.txt"), body_);
}

TEST_F(Fetch, StartsOverWhenTheServerIgnoresTheRange) {
  ScriptedServer server([&](const auto&, size_t index) {
    ScriptedServer::Reply reply{200, body_};
    reply.honour_range = false;
    if (index == 0) reply.cut_after = 20000;
    return reply;
  });
  const DatasetSpec spec = plain_dataset(server, DigestKind::Sha256, sha256_hex(body_));
  error_of([&] { fetch_dataset(spec, folder(), options_); });
  ASSERT_TRUE(file_exists(folder() + "/items.txt.part"));
  fetch_dataset(spec, folder(), options_);  // appending the whole body to the .part file would fail the checksum
  EXPECT_EQ(server.requests().at(1).range, "bytes=20000-");
  EXPECT_EQ(read_file(folder() + "/items.txt"), body_);
}

TEST_F(Fetch, NotFoundNamesTheStatusAndTheUrlAndIsNotRetried) {
  ScriptedServer server([](const auto&, size_t) { return ScriptedServer::Reply{404, "no such file"}; });
  options_.attempts = 3;
  const DatasetSpec spec = plain_dataset(server, DigestKind::Sha256, std::string(64, 'a'));
  const std::string error = error_of([&] { fetch_dataset(spec, folder(), options_); });
  EXPECT_NE(error.find(server.url("/items.txt") + ": HTTP 404"), std::string::npos) << error;
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_FALSE(file_exists(folder() + "/items.txt"));
  EXPECT_FALSE(file_exists(folder() + "/items.txt.part"));
}

TEST_F(Fetch, AStalledServerFailsAfterTheTimeoutKeepingWhatArrived) {
  ScriptedServer server([&](const auto&, size_t) {
    ScriptedServer::Reply reply{200, body_};
    reply.stall_after = 1000;
    return reply;
  });
  options_.stall_timeout_s = 1;
  const auto start = std::chrono::steady_clock::now();
  const DatasetSpec spec = plain_dataset(server, DigestKind::Sha256, sha256_hex(body_));
  const std::string error = error_of([&] { fetch_dataset(spec, folder(), options_); });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(error.find("the server stalled: no data for 1 s (EMBREC_FETCH_TIMEOUT_S"), std::string::npos) << error;
  EXPECT_LT(seconds, 4.0);
  EXPECT_EQ(fs::file_size(folder() + "/items.txt.part"), 1000u);
}

TEST_F(Fetch, AFileWithoutAPublishedDigestIsKeptOnlyWhenAccepted) {
  ScriptedServer server([&](const auto&, size_t) { return ScriptedServer::Reply{200, body_}; });
  const DatasetSpec spec = plain_dataset(server, DigestKind::None, "");
  const std::string error = error_of([&] { fetch_dataset(spec, folder(), options_); });
  EXPECT_NE(error.find("its SHA-256 is " + sha256_hex(body_)), std::string::npos) << error;
  EXPECT_NE(error.find("--accept-unverified"), std::string::npos) << error;
  EXPECT_FALSE(file_exists(folder() + "/items.txt"));
  EXPECT_FALSE(file_exists(folder() + "/items.txt.part"));

  options_.accept_unverified = true;
  fetch_dataset(spec, folder(), options_);
  EXPECT_EQ(read_file(folder() + "/items.txt"), body_);
  EXPECT_NE(read_file(folder() + "/README.md").find("unverified"), std::string::npos);
}

TEST_F(Fetch, TakesHandDownloadedYelpArchiveAndConvertsItsReviews) {
  const std::string reviews =
      R"({"review_id":"r1","user_id":"U1","business_id":"B1","stars":4.0,"date":"2018-07-07 22:09:11"})" "\n"
      R"({"review_id":"r2","user_id":"U2","business_id":"B1","stars":2,"date":"2012-01-03 15:28:18"})" "\n";
  const std::string tar = archive_of("ustar", {{"yelp_academic_dataset_business.json", "{}\n"},
                                               {"yelp_academic_dataset_review.json", reviews}});
  const std::string zip_path = write("Yelp-JSON.zip", archive_of("zip", {{"Yelp JSON/yelp_dataset.tar", tar}}));
  DatasetSpec spec = find_dataset("yelp");
  ASSERT_TRUE(spec.files[0].url.empty());  // no direct download: the user passes the file
  EXPECT_NE(error_of([&] { fetch_dataset(spec, folder(), options_); }).find("--from"), std::string::npos);
  spec.files[0].digest = md5_file_hex(zip_path);
  options_.from = zip_path;

  const FetchResult result = fetch_dataset(spec, folder(), options_);

  EXPECT_EQ(read_file(folder() + "/reviews.tsv"),
            "user_id\tbusiness_id\tstars\ttimestamp\nU1\tB1\t4\t1531001351\nU2\tB1\t2\t1325604498\n");
  EXPECT_EQ(result.prepare_command, "embrec data prepare --input " + folder() +
                                        "/reviews.tsv --format tsv --user-column user_id --item-column business_id "
                                        "--rating-column stars --timestamp-column timestamp --out prepared/yelp");
  ReadOptions read;
  read.format = LogFormat::Tsv;
  read.item_column = "business_id";
  read.rating_column = "stars";
  read.timestamp_column = "timestamp";
  EXPECT_EQ(read_log(result.log, read).size(), 2);
  EXPECT_FALSE(file_exists(folder() + "/Yelp-JSON.zip"));  // read where it is, not copied

  spec.files[0].digest = std::string(32, '0');
  const std::string error = error_of([&] { fetch_dataset(spec, folder(), options_); });
  EXPECT_NE(error.find("MD5 mismatch: expected " + std::string(32, '0') + ", got " + md5_file_hex(zip_path)),
            std::string::npos)
      << error;
}

TEST_F(Fetch, AnArchiveEntryOutsideTheFolderIsRefused) {
  const std::string zip = archive_of("zip", {{"ml-100k/../../escaped.txt", "x"}});
  const std::string zip_path = write("ml-100k.zip", zip);
  DatasetSpec spec = find_dataset("ml-100k");
  spec.files[0].digest = sha256_hex(zip);
  options_.from = zip_path;
  const std::string error = error_of([&] { fetch_dataset(spec, folder(), options_); });
  EXPECT_NE(error.find("would be written outside the dataset folder"), std::string::npos) << error;
  EXPECT_FALSE(file_exists((folder_ / "escaped.txt").string()));
}

TEST_F(Fetch, UnknownNameListsTheKnownOnes) {
  const std::string error = error_of([] { find_dataset("ml-1b"); });
  EXPECT_EQ(error,
            "unknown dataset 'ml-1b' (known: ml-100k, ml-1m, ml-20m, amazon-beauty, amazon-sports, amazon-toys, yelp, "
            "mind-small)");
}

TEST_F(Fetch, EveryRowHasALicenceAndAWellFormedDigest) {
  for (const DatasetSpec& spec : dataset_table()) {
    EXPECT_FALSE(spec.licence.empty()) << spec.name;
    EXPECT_FALSE(spec.homepage.empty()) << spec.name;
    for (const RemoteFile& file : spec.files) {
      const size_t digits = file.digest_kind == DigestKind::Sha256 ? 64 : file.digest_kind == DigestKind::Md5 ? 32 : 0;
      EXPECT_EQ(file.digest.size(), digits) << file.name;
      EXPECT_EQ(file.digest.find_first_not_of("0123456789abcdef"), std::string::npos) << file.name;
      EXPECT_TRUE(file.url.empty() || file.url.rfind("https://", 0) == 0) << file.url;
    }
  }
}

TEST_F(Fetch, TimeoutsComeFromTheEnvironment) {
  ::setenv("EMBREC_FETCH_TIMEOUT_S", "7", 1);
  EXPECT_EQ(FetchOptions{}.stall_timeout_s, 7);
  ::setenv("EMBREC_FETCH_TIMEOUT_S", "soon", 1);
  EXPECT_EQ(error_of([] { FetchOptions options; }),
            "environment variable EMBREC_FETCH_TIMEOUT_S: expected a whole number of seconds above 0, got 'soon'");
  ::unsetenv("EMBREC_FETCH_TIMEOUT_S");
  EXPECT_EQ(FetchOptions{}.stall_timeout_s, 60);
}

}  // namespace
}  // namespace embrec::data
