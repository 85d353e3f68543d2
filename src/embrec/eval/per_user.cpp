#include "embrec/eval/per_user.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <unordered_map>

#include "embrec/data/text.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::eval {

size_t PerUserTable::column(const std::string& name) const {
  return static_cast<size_t>(data::column_index(columns, name, "--metric", data::LineContext{path, 1}));
}

void write_per_user(const std::string& path, const PerUserValues& values, const data::IdMap& users) {
  const size_t columns = values.columns.size();
  if (values.values.size() != values.users.size() * columns || values.groups.size() != values.users.size())
    fail("internal: per-user values of {} users do not fill {} columns", values.users.size(), columns);
  std::string out = "user\tgroup";
  for (const std::string& column : values.columns) out += "\t" + column;
  out += "\n";
  for (size_t i = 0; i < values.users.size(); ++i) {
    if (values.users[i] < 0 || values.users[i] >= users.size())
      fail("internal: {}: user {} is not in the dataset's {} users", path, values.users[i], users.size());
    out += users.external(values.users[i]) + "\t" + values.groups[i];
    for (size_t c = 0; c < columns; ++c) {
      const double value = values.values[i * columns + c];
      out += std::isnan(value) ? std::string("\t") : fmt::format("\t{:.9g}", value);
    }
    out += "\n";
  }
  write_file_atomic(path, out);
}

PerUserTable read_per_user(const std::string& path) {
  PerUserTable table;
  table.path = path;
  const std::string text = read_file(path);
  std::vector<std::string_view> fields;
  std::vector<std::string> header;
  std::unordered_map<std::string, int64_t> seen;
  data::for_each_line(text, [&](std::string_view line, int64_t number) {
    data::split_by(line, "\t", fields);
    if (number == 1) {
      header.assign(fields.begin(), fields.end());
      if (header.size() < 3 || header[0] != "user" || header[1] != "group")
        fail("{}:1: expected a header 'user<TAB>group<TAB>metric...', got '{}'", path, line);
      table.columns.assign(header.begin() + 2, header.end());
      return;
    }
    const data::LineContext where{path, number};
    if (fields.size() != header.size()) data::fail_field_count(where, header.size(), "\t", fields.size());
    const std::string user(fields[0]);
    if (user.empty()) fail("{}:{}: empty user id", path, number);
    if (!seen.emplace(user, number).second)
      fail("{}:{}: user '{}' again (first on line {})", path, number, user, seen[user]);
    table.users.push_back(user);
    table.groups.emplace_back(fields[1]);
    for (size_t f = 2; f < fields.size(); ++f)
      table.values.push_back(fields[f].empty() ? std::numeric_limits<double>::quiet_NaN()
                                               : data::parse_number(fields[f], header[f].c_str(), where));
  });
  if (header.empty()) fail("{}: empty file: expected a header 'user<TAB>group<TAB>metric...'", path);
  if (table.users.empty()) fail("{}: no users (a header alone)", path);
  return table;
}

PairedValues pair_users(const PerUserTable& a, const PerUserTable& b, const std::string& column,
                        const std::string& group) {
  const size_t ca = a.column(column), cb = b.column(column);
  std::unordered_map<std::string, size_t> row_of_b;
  for (size_t i = 0; i < b.users.size(); ++i) row_of_b.emplace(b.users[i], i);
  int64_t only_a = 0;
  std::string example;
  PairedValues out;
  for (size_t i = 0; i < a.users.size(); ++i) {
    const auto found = row_of_b.find(a.users[i]);
    if (found == row_of_b.end()) {
      if (only_a++ == 0) example = a.users[i];
      continue;
    }
    if (group != "all" && a.groups[i] != group) continue;
    const double x = a.values[i * a.columns.size() + ca], y = b.values[found->second * b.columns.size() + cb];
    if (std::isnan(x) || std::isnan(y)) continue;
    out.users.push_back(a.users[i]);
    out.a.push_back(x);
    out.b.push_back(y);
  }
  const int64_t only_b = static_cast<int64_t>(b.users.size()) - (static_cast<int64_t>(a.users.size()) - only_a);
  if (only_a > 0 || only_b > 0)
    fail("{} and {} hold different users ({} only in the first, e.g. '{}'; {} only in the second): compare runs of "
         "one dataset, split and stage",
         a.path, b.path, only_a, example, only_b);
  if (out.users.empty())
    fail("{} and {}: no user of group '{}' has a value of '{}' in both", a.path, b.path, group, column);
  return out;
}

}  // namespace embrec::eval
