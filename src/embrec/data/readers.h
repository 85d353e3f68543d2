// Readers for real interaction logs: the sequence-per-line format of the sequential-recommendation papers,
// MovieLens ratings.dat ('::') and u.data (tab), and CSV/TSV with named columns. Original ids are kept.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "embrec/data/dataset.h"
#include "embrec/util/config.h"

namespace embrec::data {

// seq: one line per user (the sequential-recommendation papers); movielens: ratings.dat (`::`); udata: u.data
// (tabs); csv / tsv: named columns in a header row; mind: not a log but MIND's train and dev folders of news.tsv and
// behaviors.tsv, which load_data reads as news data (data/news.h), never read_log.
enum class LogFormat { Seq, Movielens, Udata, Csv, Tsv, Mind };
inline const Names<LogFormat> kLogFormatNames = {{"seq", LogFormat::Seq},       {"movielens", LogFormat::Movielens},
                                                 {"udata", LogFormat::Udata},   {"csv", LogFormat::Csv},
                                                 {"tsv", LogFormat::Tsv},       {"mind", LogFormat::Mind}};

struct ReadOptions {
  LogFormat format = LogFormat::Seq;
  // csv/tsv only: the header row names the columns; user and item columns are required.
  std::string user_column = "user_id";
  std::string item_column = "item_id";
  std::string rating_column;     // empty: no rating column (every interaction has rating 1)
  std::string timestamp_column;  // empty: no timestamp column (file order is time order)
  char delimiter = 0;            // 0: ',' for csv, '\t' for tsv
};

// A log as read: one entry per interaction, ids already interned (external strings kept in the maps).
// `timestamp` is the file's timestamp when it has one; for the sequence format it is the item's position in its
// line. `line` is the 1-based source line, kept so later steps can still name it.
struct RawLog {
  std::string source;  // the path, for messages
  IdMap users;
  IdMap items;
  std::vector<int32_t> user;
  std::vector<int32_t> item;
  std::vector<float> rating;
  std::vector<int64_t> timestamp;
  std::vector<int64_t> line;
  bool has_rating = false;
  bool has_timestamp = false;

  int64_t size() const { return static_cast<int64_t>(user.size()); }
};

// Reads a log. Every malformed line is an Error naming file, line and field, e.g.
//   "ratings.dat:1834: expected 4 fields separated by '::', got 3"
//   "data.csv:12: field 'rating': cannot parse 'abc' as a number"
//   "data.csv:1: unknown column 'userid' (columns: user, item, rating)"
// An empty file (or one with a header only) is an Error too. Blank lines are skipped in every format; csv/tsv fields
// may be quoted as in RFC 4180 ("a,b", "" for a quote), within one line.
RawLog read_log(const std::string& path, const ReadOptions& options);

// A log from in-memory columns (the Python module's DataFrames): the ids as text, one entry per row; `ratings` and
// `timestamps` hold users.size() values each or are null (no such column: every rating 1, row order is time
// order). Rows keep their order; `source` names the table in messages, and `line` holds the 0-based row number.
// Ratings and timestamps must be finite: anything else is an Error naming the column and the row.
RawLog raw_log_from_columns(std::string source, const std::vector<std::string>& users,
                            const std::vector<std::string>& items, const float* ratings, const int64_t* timestamps);

// The columns of raw_log_from_columns (what a log holds, in row order) as TSV with a header row: user_id, item_id,
// then rating and timestamp when the log has them; read_log with raw_log_read_options(log) reads it back as it
// was. An id holding a line break cannot be written that way and is an Error naming the row.
void write_raw_log(const std::string& path, const RawLog& log);
ReadOptions raw_log_read_options(const RawLog& log);

// Writes a log back in the given format (seq writes one line per user in time order); used by tests for
// round-trips and by `embrec data` to export a prepared dataset.
void write_log(const std::string& path, const Dataset& dataset, const ReadOptions& options);

}  // namespace embrec::data
