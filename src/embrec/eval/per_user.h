// A run's metric values per user, as a file (`per-user-<stage>.tsv` in the run folder, written by `embrec train` for
// the test stage and by `embrec eval` for the stage it evaluates): the rows of `embrec compare`, the paired
// significance test between two runs on the same data and split (eval/significance.h). Format, one row per user:
//   user<TAB>group<TAB>ndcg@20<TAB>...<TAB>tail_items:recall@50 ...
// user: the dataset's original id; group: "head" | "tail" (or empty); an empty value: the user has no targets of
// that column's side (e.g. no tail-item target).
#pragma once

#include <string>
#include <vector>

#include "embrec/data/dataset.h"
#include "embrec/eval/evaluator.h"

namespace embrec::eval {

struct PerUserTable {
  std::string path;  // where it came from, for errors
  std::vector<std::string> users;
  std::vector<std::string> groups;
  std::vector<std::string> columns;
  std::vector<double> values;  // users x columns; NaN for an empty value

  // The index of a metric column; when absent, data::column_index's Error naming the file and the columns it has.
  size_t column(const std::string& name) const;
};

// Writes `values` with the dataset's user ids (`users` maps internal ids to them), atomically.
void write_per_user(const std::string& path, const PerUserValues& values, const data::IdMap& users);

// Reads a file write_per_user wrote; a malformed file is an Error naming the path and line.
PerUserTable read_per_user(const std::string& path);

// One value per user from each table, paired by user id: the users of `group` ("all": every user) that have a value
// in both. Tables with different users (another dataset, split or stage) are an Error naming both files.
struct PairedValues {
  std::vector<std::string> users;
  std::vector<double> a, b;
};
PairedValues pair_users(const PerUserTable& a, const PerUserTable& b, const std::string& column,
                        const std::string& group);

}  // namespace embrec::eval
