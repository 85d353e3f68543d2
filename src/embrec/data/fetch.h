// `embrec data fetch`: a public benchmark dataset downloaded (resumable, verified against a published digest,
// written atomically), unpacked and converted to a log that `embrec data prepare` reads. The one table of datasets
// (download locations, digests and where each digest comes from, licences) is dataset_table() in fetch.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "embrec/data/readers.h"

namespace embrec::data {

// How a file is checked against the table. Md5 only where the publisher gives nothing better; None: no digest was
// published, so the file is kept only with FetchOptions::accept_unverified.
enum class DigestKind { None, Sha256, Md5 };

// What becomes of a fetched file in the dataset folder.
enum class Unpack {
  Keep,         // the file is data as it is (a sequence file, an attribute file)
  Extract,      // the archive's files go to `RemoteFile::into`, with the leading `RemoteFile::strip` removed
  YelpReviews,  // yelp_academic_dataset_review.json, in the archive or an archive inside it, becomes reviews.tsv
};

struct RemoteFile {
  std::string name;  // the file's name in the dataset folder, and in a --from folder
  std::string url;   // empty: no direct download; a person downloads it and passes --from
  DigestKind digest_kind = DigestKind::None;
  std::string digest;      // lowercase hex
  int64_t size_bytes = 0;  // 0: unknown
  Unpack unpack = Unpack::Keep;
  std::string strip;  // Extract: a leading folder removed from the entry names that have it ("ml-100k/")
  std::string into;   // Extract: the subfolder of the dataset folder the files go to (empty: the folder itself)
};

struct DatasetSpec {
  std::string name;      // what `embrec data fetch NAME` takes
  std::string homepage;  // where a person downloads it by hand
  std::string licence;   // shown before the download and written to the folder's README.md
  std::vector<RemoteFile> files;
  std::string log;   // the log `embrec data prepare` reads, relative to the folder; empty: no reader yet
  ReadOptions read;  // how it is read
  std::string note;  // shown at the end: what else is in the folder, what is missing
};

// Every dataset `embrec data fetch` knows.
const std::vector<DatasetSpec>& dataset_table();
// The table's row for `name`; an Error lists the known names.
const DatasetSpec& find_dataset(const std::string& name);

// A whole number of seconds from the environment variable, or `fallback` when it is unset; an Error names the
// variable when its value is not a positive integer.
int seconds_from_environment(const char* variable, int fallback);

struct FetchOptions {
  // A file downloaded by hand (for a dataset of one file) or a folder holding the files by name: used instead of
  // downloading, and verified all the same.
  std::string from;
  // Keep files whose row has no published digest (their SHA-256 is printed so that it can be pinned).
  bool accept_unverified = false;
  int attempts = 3;  // tries per download, each resuming the .part file the previous one left
  double retry_pause_s = 2.0;  // pause before try k+1: k times this
  // A connection not made within connect_timeout_s fails, and so does a transfer that receives nothing for
  // stall_timeout_s. Proxies come from http_proxy, https_proxy and no_proxy, which libcurl reads itself.
  int connect_timeout_s = seconds_from_environment("EMBREC_FETCH_CONNECT_TIMEOUT_S", 30);
  int stall_timeout_s = seconds_from_environment("EMBREC_FETCH_TIMEOUT_S", 60);
};

struct FetchResult {
  std::string folder;
  std::string log;              // the log `embrec data prepare` reads; empty when embrec has no reader for it
  std::string prepare_command;  // `embrec data prepare ...` for that log
  std::string data_toml;        // the same as a config's [data] table
  std::string note;
};

// "data/<name>": where `embrec data fetch NAME` puts a dataset without --to.
std::string default_fetch_folder(const std::string& name);

// Shows the licence, then downloads (or takes from options.from) every file of the dataset, verifies, unpacks and
// converts them into `folder`, and writes `folder`/README.md (sources, digests, licence, the ready command). A file
// already there and valid is not fetched again. Every failure is an Error naming the URL or the file.
FetchResult fetch_dataset(const std::string& name, const std::string& folder, const FetchOptions& options = {});
FetchResult fetch_dataset(const DatasetSpec& spec, const std::string& folder, const FetchOptions& options = {});

}  // namespace embrec::data
