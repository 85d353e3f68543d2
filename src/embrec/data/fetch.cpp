// `embrec data fetch`: the table of public datasets, then per file: take it (download, or --from) and verify it,
// unpack or convert it (libarchive), and write the folder's README with the ready `embrec data prepare` command.
#include "embrec/data/fetch.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <toml++/toml.h>

#include "embrec/data/download.h"
#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::data {

namespace {

namespace fs = std::filesystem;

const char* const kMovieLensLicence =
    "MovieLens, GroupLens Research, University of Minnesota; the usage licence in the archive's README. Any research\n"
    "use, on these conditions: no endorsement by the University of Minnesota or GroupLens may be stated or implied;\n"
    "publications must acknowledge the data set (cite F. M. Harper and J. A. Konstan, \"The MovieLens Datasets:\n"
    "History and Context\", ACM TiiS 5(4), 2015); no redistribution without separate permission; no commercial or\n"
    "revenue-bearing use without permission from a faculty member of the GroupLens Research Project.";

const char* const kAmazonLicence =
    "Amazon product reviews collected by Julian McAuley (UCSD, http://jmcauley.ucsd.edu/data/amazon/), as the 5-core\n"
    "time-ordered sequences and item attributes of the S3-Rec paper (Zhou et al., CIKM 2020), from the public\n"
    "repositories salesforce/ICLRec (BSD-3-Clause code) and RUCAIBox/CIKM2020-S3Rec at pinned commits. No licence is\n"
    "stated for the data itself; its sources ask you to cite R. He and J. McAuley, \"Ups and Downs\" (WWW 2016)\n"
    "and/or J. McAuley et al., \"Image-based Recommendations on Styles and Substitutes\" (SIGIR 2015).";

const char* const kYelpLicence =
    "Yelp Open Dataset, under the Yelp Dataset Terms of Use (Dataset_User_Agreement.pdf in the archive), which you\n"
    "accept on Yelp's download form: personal, educational and academic use, not commercial; the data may not be\n"
    "redistributed.";

const char* const kMindLicence =
    "MIND, the Microsoft News Dataset (Wu et al., ACL 2020): free for research purposes under the Microsoft Research\n"
    "License Terms; read and accept them at https://msnews.github.io/ before using the data.";

constexpr const char* kIclrec =
    "https://raw.githubusercontent.com/salesforce/ICLRec/2890e6c3ff6a22c6699fc19cb863b66786c1cde4/data/";
constexpr const char* kS3rec =
    "https://raw.githubusercontent.com/RUCAIBox/CIKM2020-S3Rec/2a81540ae18615d88ef88227b0c066e5b74781e5/data/";

ReadOptions read_as(LogFormat format, const std::string& user_column = "user_id",
                    const std::string& item_column = "item_id", const std::string& rating_column = "",
                    const std::string& timestamp_column = "") {
  ReadOptions read;
  read.format = format;
  read.user_column = user_column;
  read.item_column = item_column;
  read.rating_column = rating_column;
  read.timestamp_column = timestamp_column;
  return read;
}

RemoteFile sequence_file(const std::string& name, const char* base, const std::string& sha256, int64_t size_bytes) {
  return {name, base + name, DigestKind::Sha256, sha256, size_bytes, Unpack::Keep, "", ""};
}

DatasetSpec amazon(const std::string& name, const std::string& category, const std::string& sequences_sha256,
                   int64_t sequences_bytes, const std::string& attributes_sha256, int64_t attributes_bytes) {
  const std::string attributes = category + "_item2attributes.json";
  return {name,
          "https://github.com/RUCAIBox/CIKM2020-S3Rec",
          kAmazonLicence,
          {sequence_file(category + ".txt", kIclrec, sequences_sha256, sequences_bytes),
           sequence_file(attributes, kS3rec, attributes_sha256, attributes_bytes)},
          category + ".txt",
          read_as(LogFormat::Seq),
          "Item attributes (brand, categories) for `embrec report --item-attributes`: " + attributes + "."};
}

// The one table. Digests and where they come from (none is made up; a row without one needs --accept-unverified):
// - ml-100k, ml-1m, ml-20m: SHA-256 and sizes of TensorFlow Datasets (url_checksums/movielens.txt); independent
//   projects record the same SHA-256s beside MD5s that match the ones GroupLens publishes next to the zips.
// - amazon-*: raw files of public Git repositories at pinned commits, so the bytes cannot change: the SHA-256 of
//   the Git blobs at those commits (Beauty and Sports as in ../shared/data/README.md; Toys computed the same way).
// - yelp: no direct download (Yelp's terms form comes first): the user passes the file with --from. MD5 only, of
//   Yelp-JSON.zip as the datarec library (Politecnico di Bari) records it; Yelp publishes none. A later release of
//   the archive will not match.
// - mind-small: MD5 only, as the datarec library records it (the dev file's also in an independent DVC lock file);
//   Microsoft publishes none.
// MD5 catches damaged downloads, not a deliberately forged file; each fetch prints and records the SHA-256 too.
std::vector<DatasetSpec> make_table() {
  const char* grouplens = "https://files.grouplens.org/datasets/movielens/";
  auto movielens_zip = [&](const std::string& name, const std::string& sha256, int64_t size_bytes) {
    return RemoteFile{name + ".zip", grouplens + name + ".zip", DigestKind::Sha256, sha256, size_bytes,
                      Unpack::Extract, name + "/", ""};
  };
  return {
      {"ml-100k", "https://grouplens.org/datasets/movielens/100k/", kMovieLensLicence,
       {movielens_zip("ml-100k", "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229", 4924029)},
       "u.data", read_as(LogFormat::Udata),
       "u.item (titles, genres) and u.user (demographics) are in the folder too."},
      {"ml-1m", "https://grouplens.org/datasets/movielens/1m/", kMovieLensLicence,
       {movielens_zip("ml-1m", "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20", 5917549)},
       "ratings.dat", read_as(LogFormat::Movielens),
       "movies.dat and users.dat are in the folder too."},
      {"ml-20m", "https://grouplens.org/datasets/movielens/20m/", kMovieLensLicence,
       {movielens_zip("ml-20m", "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3", 198702078)},
       "ratings.csv", read_as(LogFormat::Csv, "userId", "movieId", "rating", "timestamp"),
       "movies.csv, tags.csv, links.csv and the tag genome are in the folder too."},
      amazon("amazon-beauty", "Beauty", "226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8", 1090094,
             "129e40f67486f6877eff0f5318cfa8530ee8ac23d8b0d1de04e1bb7a2ba0b2d4", 305674),
      amazon("amazon-sports", "Sports_and_Outdoors", "2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2",
             1707483, "7fb10733ac4f1811384a52144cdefa7fcc7536fa80a7232c5da9bd789155c34b", 653780),
      amazon("amazon-toys", "Toys_and_Games", "176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f",
             922166, "d371acd25101eedac04afc727626464b7acec770c4eda708705d51eb76eb1ad0", 327536),
      {"yelp", "https://business.yelp.com/data/resources/open-dataset/", kYelpLicence,
       {{"Yelp-JSON.zip", "", DigestKind::Md5, "b0c36fe2d00a52d8de44fa3b2513c9d2", 0, Unpack::YelpReviews, "", ""}},
       "reviews.tsv", read_as(LogFormat::Tsv, "user_id", "business_id", "stars", "timestamp"),
       "Yelp has no direct download: accept its terms on the homepage's form, download Yelp-JSON.zip, then run\n"
       "`embrec data fetch yelp --from Yelp-JSON.zip`. reviews.tsv holds every review's user, business, stars and\n"
       "time (Unix seconds); the papers' Yelp is a 5-core subset (--user-core 5 --item-core 5)."},
      {"mind-small", "https://msnews.github.io/", kMindLicence,
       {{"MINDsmall_train.zip", "https://mind201910small.blob.core.windows.net/release/MINDsmall_train.zip",
         DigestKind::Md5, "8ab752c7d11564622d93132be05dcf6b", 0, Unpack::Extract, "MINDsmall_train/", "train"},
        {"MINDsmall_dev.zip", "https://mind201910small.blob.core.windows.net/release/MINDsmall_dev.zip",
         DigestKind::Md5, "e3bac5485be8fc7a9934e85e3b78615f", 30948560, Unpack::Extract, "MINDsmall_dev/", "dev"}},
       "train", read_as(LogFormat::Mind),
       "Unpacked into train/ and dev/ (behaviors.tsv, news.tsv, entity and relation embeddings). News data is read by\n"
       "`embrec train` itself (no `data prepare` step): put the [data] table above into a news model's config, e.g.\n"
       "configs/nrms-mind-demo.toml with its demo line replaced."},
  };
}

// ---- Checking a file against the table ----

const char* digest_name(DigestKind kind) {
  switch (kind) {
    case DigestKind::Sha256: return "SHA-256";
    case DigestKind::Md5: return "MD5";
    case DigestKind::None: break;
  }
  return "no digest";
}

// The file's SHA-256 once its digest matches the table. Otherwise an Error naming `what`: on a mismatch it gives the
// expected and the actual sum; with no published digest (and no accept_unverified) it gives the SHA-256 to pin.
std::string verified_sha256(const std::string& path, const RemoteFile& file, const FetchOptions& options,
                            const std::string& what) {
  const std::string sha256 = sha256_file_hex(path);
  if (file.digest_kind == DigestKind::None) {
    if (!options.accept_unverified)
      fail("{}: no published digest to check it against (its SHA-256 is {}); run again with --accept-unverified "
           "to keep it",
           what, sha256);
    spdlog::warn("{}: kept unverified (no published digest); its SHA-256 is {}", what, sha256);
    return sha256;
  }
  const std::string actual = file.digest_kind == DigestKind::Sha256 ? sha256 : md5_file_hex(path);
  if (actual != file.digest)
    fail("{}: {} mismatch: expected {}, got {}", what, digest_name(file.digest_kind), file.digest, actual);
  return sha256;
}

void rename_synced(const std::string& from, const std::string& to) {
  const int descriptor = ::open(from.c_str(), O_RDONLY);
  const bool synced = descriptor >= 0 && ::fsync(descriptor) == 0;
  if (descriptor >= 0) ::close(descriptor);
  if (!synced) fail("{}: cannot sync to disk: {}", from, std::strerror(errno));
  if (std::rename(from.c_str(), to.c_str()) != 0) fail("{}: rename from {} failed: {}", to, from, std::strerror(errno));
}

void copy_file_atomic(const std::string& from, const std::string& to) {
  std::FILE* in = std::fopen(from.c_str(), "rb");
  if (!in) fail("{}: cannot open for reading: {}", from, std::strerror(errno));
  std::unique_ptr<std::FILE, decltype(&std::fclose)> closer(in, std::fclose);
  AtomicFileWriter writer(to);
  std::vector<char> block(1 << 20);
  size_t read = 0;
  while ((read = std::fread(block.data(), 1, block.size(), in)) > 0) writer.write({block.data(), read});
  if (std::ferror(in)) fail("{}: read error", from);
  writer.commit();
}

// ---- Taking each file: already there, --from, or downloaded ----

struct Fetched {
  const RemoteFile* file;
  std::string path;  // where it is now: the dataset folder, or the --from file
  std::string sha256;
};

// The file given with --from for `file`, or "" when downloading.
std::string given_file(const DatasetSpec& spec, const RemoteFile& file, const FetchOptions& options) {
  if (options.from.empty()) return "";
  if (fs::is_directory(options.from)) {
    const std::string path = (fs::path(options.from) / file.name).string();
    if (!file_exists(path)) fail("{}: holds no {}, a file of {}", options.from, file.name, spec.name);
    return path;
  }
  if (!file_exists(options.from)) fail("{}: no such file or folder", options.from);
  if (spec.files.size() != 1)
    fail("{}: {} has {} files: pass --from a folder that holds them by name", options.from, spec.name,
         spec.files.size());
  return options.from;
}

std::string download_verified(const DatasetSpec& spec, const RemoteFile& file, const std::string& target,
                              const FetchOptions& options) {
  const std::string part = target + ".part";
  try {
    download_to_part(file.url, part, file.size_bytes, options);
  } catch (const Error& error) {
    fail("{} (or download {} from {} and pass it with --from)", error.what(), file.name, spec.homepage);
  }
  std::string sha256;
  try {
    sha256 = verified_sha256(part, file, options, file.url);
  } catch (const Error& error) {
    fs::remove(part);
    fail("{}; the download was deleted", error.what());
  }
  rename_synced(part, target);
  return sha256;
}

Fetched obtain(const DatasetSpec& spec, const RemoteFile& file, const std::string& folder,
               const FetchOptions& options) {
  const std::string target = (fs::path(folder) / file.name).string();
  const std::string given = given_file(spec, file, options);
  if (!given.empty()) {
    const std::string sha256 = verified_sha256(given, file, options, given);
    if (file.unpack != Unpack::Keep) return {&file, given, sha256};  // unpacked from where it is: no copy
    if (!file_exists(target) || !fs::equivalent(given, target)) copy_file_atomic(given, target);
    return {&file, target, sha256};
  }
  if (file_exists(target)) {
    if (file.digest_kind == DigestKind::None) return {&file, target, verified_sha256(target, file, options, target)};
    try {
      const std::string sha256 = verified_sha256(target, file, options, target);
      spdlog::info("{}: present and valid, not downloaded again", target);
      return {&file, target, sha256};
    } catch (const Error& error) {
      spdlog::warn("{}; downloading it again", error.what());
      fs::remove(target);
    }
  }
  if (file.url.empty())
    fail("{}: {} has no direct download: download it from {} (accepting the terms there), then run again with "
         "--from FILE",
         spec.name, file.name, spec.homepage);
  return {&file, target, download_verified(spec, file, target, options)};
}

// ---- Archives (libarchive) ----

using Archive = std::unique_ptr<archive, decltype(&archive_read_free)>;

Archive new_reader() {
  Archive reader(archive_read_new(), archive_read_free);
  if (!reader) fail("libarchive: cannot create a reader");
  archive_read_support_filter_all(reader.get());
  archive_read_support_format_all(reader.get());
  return reader;
}

Archive open_archive(const std::string& path) {
  Archive reader = new_reader();
  if (archive_read_open_filename(reader.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
    fail("{}: cannot open as an archive: {}", path, archive_error_string(reader.get()));
  return reader;
}

// Calls visit(name) at each regular file of the archive (visit may read its data) until visit returns false.
void for_each_file(archive* reader, const std::string& where, const std::function<bool(const std::string&)>& visit) {
  archive_entry* entry = nullptr;
  int status = ARCHIVE_OK;
  while ((status = archive_read_next_header(reader, &entry)) == ARCHIVE_OK || status == ARCHIVE_WARN) {
    const char* name = archive_entry_pathname(entry);
    if (!name || archive_entry_filetype(entry) != AE_IFREG) continue;
    if (!visit(name)) return;
  }
  if (status != ARCHIVE_EOF) fail("{}: {}", where, archive_error_string(reader));
}

// Streams the data of the entry just visited to `consume`.
void read_entry(archive* reader, const std::string& where, const std::function<void(std::string_view)>& consume) {
  std::vector<char> block(1 << 16);
  for (;;) {
    const la_ssize_t read = archive_read_data(reader, block.data(), block.size());
    if (read < 0) fail("{}: {}", where, archive_error_string(reader));
    if (read == 0) return;
    consume({block.data(), static_cast<size_t>(read)});
  }
}

// An entry's path below the target folder; one that would land outside it ("../x", "/etc/x") is an Error.
fs::path checked_relative(const std::string& where, const std::string& name, const std::string& relative) {
  const fs::path path(relative);
  bool escapes = path.empty() || path.is_absolute();
  for (const fs::path& part : path) escapes = escapes || part == "..";
  if (escapes) fail("{}: entry '{}' would be written outside the dataset folder", where, name);
  return path.lexically_normal();
}

std::vector<std::string> extract_archive(const std::string& path, const RemoteFile& file, const std::string& folder) {
  Archive reader = open_archive(path);
  const fs::path target = fs::path(folder) / file.into;
  std::vector<std::string> written;
  for_each_file(reader.get(), path, [&](const std::string& name) {
    if (name.rfind("__MACOSX/", 0) == 0) return true;  // resource forks that macOS zip tools add
    std::string relative = name;
    if (!file.strip.empty() && relative.rfind(file.strip, 0) == 0) relative.erase(0, file.strip.size());
    const fs::path out = target / checked_relative(path, name, relative);
    make_directories(out.parent_path().string());
    AtomicFileWriter writer(out.string());
    read_entry(reader.get(), path + ":" + name, [&](std::string_view bytes) { writer.write(bytes); });
    writer.commit();
    written.push_back(out.string());
    return true;
  });
  if (written.empty()) fail("{}: the archive holds no files", path);
  spdlog::info("{}: {} files unpacked into {}", path, written.size(), target.string());
  return written;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct NestedSource {
  archive* outer;
  std::vector<char> block = std::vector<char>(1 << 16);
};

la_ssize_t read_nested(archive*, void* data, const void** buffer) {
  auto& source = *static_cast<NestedSource*>(data);
  *buffer = source.block.data();
  return archive_read_data(source.outer, source.block.data(), source.block.size());
}

// Finds the first file whose name ends with `suffix`, also inside archives the archive holds (down to `depth`
// levels; Yelp ships a tar inside a zip), and hands it to `consume` without unpacking anything to disk.
bool find_entry(archive* reader, const std::string& where, const std::string& suffix, int depth,
                const std::function<void(archive*, const std::string&)>& consume) {
  bool found = false;
  for_each_file(reader, where, [&](const std::string& name) {
    const std::string here = where + ":" + name;
    if (ends_with(name, suffix)) {
      consume(reader, here);
      found = true;
    } else if (depth > 0 && (ends_with(name, ".tar") || ends_with(name, ".tar.gz") || ends_with(name, ".tgz") ||
                             ends_with(name, ".zip"))) {
      NestedSource source{reader};
      Archive nested = new_reader();
      if (archive_read_open(nested.get(), &source, nullptr, read_nested, nullptr) != ARCHIVE_OK)
        fail("{}: cannot open as an archive: {}", here, archive_error_string(nested.get()));
      found = find_entry(nested.get(), here, suffix, depth - 1, consume);
    }
    return !found;
  });
  return found;
}

// ---- Yelp: review JSON lines to a TSV log ----

int64_t unix_seconds(const std::string& date, const std::string& where, int64_t line) {
  std::tm time{};
  const int matched = std::sscanf(date.c_str(), "%d-%d-%d %d:%d:%d", &time.tm_year, &time.tm_mon, &time.tm_mday,
                                  &time.tm_hour, &time.tm_min, &time.tm_sec);
  if (matched != 3 && matched != 6)
    fail("{}:{}: field 'date': cannot parse '{}' as YYYY-MM-DD HH:MM:SS", where, line, date);
  time.tm_year -= 1900;
  time.tm_mon -= 1;
  return static_cast<int64_t>(::timegm(&time));
}

// Writes one review as a TSV row; returns false for a blank line.
bool write_review(std::string_view text, const std::string& where, int64_t line, AtomicFileWriter& out) {
  if (text.find_first_not_of(" \t\r") == std::string_view::npos) return false;
  nlohmann::json review;
  try {
    review = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& error) {
    fail("{}:{}: not a JSON object: {}", where, line, error.what());
  }
  auto field = [&](const char* key, bool number) -> const nlohmann::json& {
    const auto it = review.find(key);
    if (it == review.end() || (number ? !it->is_number() : !it->is_string()))
      fail("{}:{}: field '{}' is missing or not a {}", where, line, key, number ? "number" : "string");
    return *it;
  };
  out.write(fmt::format("{}\t{}\t{}\t{}\n", field("user_id", false).get<std::string>(),
                        field("business_id", false).get<std::string>(), field("stars", true).get<double>(),
                        unix_seconds(field("date", false).get<std::string>(), where, line)));
  return true;
}

std::vector<std::string> convert_yelp_reviews(const std::string& path, const std::string& folder) {
  const std::string kReviews = "yelp_academic_dataset_review.json";
  const std::string out_path = (fs::path(folder) / "reviews.tsv").string();
  AtomicFileWriter out(out_path);
  out.write("user_id\tbusiness_id\tstars\ttimestamp\n");
  int64_t lines = 0;
  int64_t reviews = 0;
  Archive reader = open_archive(path);
  const bool found = find_entry(reader.get(), path, kReviews, 2, [&](archive* entry, const std::string& where) {
    std::string pending;
    read_entry(entry, where, [&](std::string_view bytes) {
      pending.append(bytes);
      size_t start = 0;
      for (size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1)
        reviews += write_review(std::string_view(pending).substr(start, end - start), where, ++lines, out);
      pending.erase(0, start);
    });
    reviews += write_review(pending, where, ++lines, out);
  });
  if (!found) fail("{}: holds no {} (nor does an archive inside it)", path, kReviews);
  out.commit();
  spdlog::info("{}: {} reviews converted", out_path, reviews);
  return {out_path};
}

// ---- Unpacking, once per source file ----

// A note beside the unpacked files: the SHA-256 of their source and their paths, so that fetching again skips the
// unpacking while nothing has changed.
bool unpacked_already(const std::string& stamp, const std::string& sha256) {
  if (!file_exists(stamp)) return false;
  std::istringstream lines(read_file(stamp));
  std::string line;
  if (!std::getline(lines, line) || line != sha256) return false;
  while (std::getline(lines, line))
    if (!file_exists(line)) return false;
  return true;
}

void unpack(const Fetched& fetched, const std::string& folder) {
  const RemoteFile& file = *fetched.file;
  if (file.unpack == Unpack::Keep) return;
  const std::string stamp = (fs::path(folder) / ("." + file.name + ".unpacked")).string();
  if (unpacked_already(stamp, fetched.sha256)) {
    spdlog::info("{}: unpacked before, not again", fetched.path);
    return;
  }
  const std::vector<std::string> outputs = file.unpack == Unpack::Extract
                                               ? extract_archive(fetched.path, file, folder)
                                               : convert_yelp_reviews(fetched.path, folder);
  std::string text = fetched.sha256 + "\n";
  for (const std::string& output : outputs) text += output + "\n";
  write_file_atomic(stamp, text);
}

// ---- The ready command and README ----

std::string shell_quoted(const std::string& word) {
  if (!word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                              "_-./=:,+@%") == std::string::npos)
    return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

bool is_delimited(const ReadOptions& read) { return read.format == LogFormat::Csv || read.format == LogFormat::Tsv; }

std::string prepare_command(const DatasetSpec& spec, const std::string& log) {
  std::string command = fmt::format("embrec data prepare --input {} --format {}", shell_quoted(log),
                                    name_of(kLogFormatNames, spec.read.format));
  if (is_delimited(spec.read)) {
    command += fmt::format(" --user-column {} --item-column {}", shell_quoted(spec.read.user_column),
                           shell_quoted(spec.read.item_column));
    if (!spec.read.rating_column.empty()) command += " --rating-column " + shell_quoted(spec.read.rating_column);
    if (!spec.read.timestamp_column.empty())
      command += " --timestamp-column " + shell_quoted(spec.read.timestamp_column);
  }
  return command + " --out " + shell_quoted("prepared/" + spec.name);
}

std::string data_toml(const DatasetSpec& spec, const std::string& log) {
  toml::table data{{"path", fs::absolute(log).string()}, {"format", name_of(kLogFormatNames, spec.read.format)}};
  if (spec.read.format == LogFormat::Mind)  // `log` is the train folder; the dev folder is its sibling
    data.insert("dev_path", (fs::absolute(log).parent_path() / "dev").string());
  if (is_delimited(spec.read)) {
    data.insert("user_column", spec.read.user_column);
    data.insert("item_column", spec.read.item_column);
    if (!spec.read.rating_column.empty()) data.insert("rating_column", spec.read.rating_column);
    if (!spec.read.timestamp_column.empty()) data.insert("timestamp_column", spec.read.timestamp_column);
  }
  std::ostringstream text;
  text << toml::table{{"data", data}} << "\n";
  return text.str();
}

std::string readme(const DatasetSpec& spec, const std::vector<Fetched>& fetched, const FetchResult& result) {
  std::string text = fmt::format("# {}\n\nFetched by `embrec data fetch {}`; homepage {}.\n\n## Licence\n\n{}\n\n",
                                 spec.name, spec.name, spec.homepage, spec.licence);
  text += "## Files\n\n| file | source | check |\n|---|---|---|\n";
  for (const Fetched& f : fetched) {
    const RemoteFile& file = *f.file;
    const std::string source = file.url.empty() ? "downloaded by hand from " + spec.homepage : file.url;
    std::string check = fmt::format("unverified (no published digest); SHA-256 `{}`", f.sha256);
    if (file.digest_kind != DigestKind::None)
      check = fmt::format("matches the table's {} `{}`", digest_name(file.digest_kind), file.digest);
    if (file.digest_kind == DigestKind::Md5) check += fmt::format("; SHA-256 `{}`", f.sha256);
    text += fmt::format("| {} | {} | {} |\n", file.name, source, check);
  }
  if (!result.prepare_command.empty())
    text += fmt::format("\n## Use\n\n```sh\n{}\n```\n\nor in a config:\n\n```toml\n{}```\n", result.prepare_command,
                        result.data_toml);
  else if (!result.data_toml.empty())
    text += fmt::format("\n## Use\n\nIn a config:\n\n```toml\n{}```\n", result.data_toml);
  if (!spec.note.empty()) text += "\n" + spec.note + "\n";
  return text;
}

}  // namespace

const std::vector<DatasetSpec>& dataset_table() {
  static const std::vector<DatasetSpec> table = make_table();
  return table;
}

const DatasetSpec& find_dataset(const std::string& name) {
  std::string names;
  for (const DatasetSpec& spec : dataset_table()) {
    if (spec.name == name) return spec;
    names += (names.empty() ? "" : ", ") + spec.name;
  }
  fail("unknown dataset '{}' (known: {})", name, names);
}

int seconds_from_environment(const char* variable, int fallback) {
  const char* value = std::getenv(variable);
  if (!value || !*value) return fallback;
  char* end = nullptr;
  errno = 0;
  const long seconds = std::strtol(value, &end, 10);
  if (*end != '\0' || errno != 0 || seconds <= 0 || seconds > 1000000)
    fail("environment variable {}: expected a whole number of seconds above 0, got '{}'", variable, value);
  return static_cast<int>(seconds);
}

std::string default_fetch_folder(const std::string& name) { return "data/" + name; }

FetchResult fetch_dataset(const std::string& name, const std::string& folder, const FetchOptions& options) {
  return fetch_dataset(find_dataset(name), folder, options);
}

FetchResult fetch_dataset(const DatasetSpec& spec, const std::string& folder, const FetchOptions& options) {
  spdlog::info("{}: licence (read it before using the data):\n{}", spec.name, spec.licence);
  make_directories(folder);
  std::vector<Fetched> fetched;
  for (const RemoteFile& file : spec.files) fetched.push_back(obtain(spec, file, folder, options));
  for (const Fetched& file : fetched) unpack(file, folder);
  FetchResult result;
  result.folder = folder;
  result.note = spec.note;
  if (!spec.log.empty()) {
    result.log = (fs::path(folder) / spec.log).string();
    if (!file_exists(result.log)) fail("{}: missing after unpacking {}", result.log, spec.name);
    // News data has no prepare step: train reads the folders.
    if (spec.read.format != LogFormat::Mind) result.prepare_command = prepare_command(spec, result.log);
    result.data_toml = data_toml(spec, result.log);
  }
  write_file_atomic((fs::path(folder) / "README.md").string(), readme(spec, fetched, result));
  return result;
}

}  // namespace embrec::data
