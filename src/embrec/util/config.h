// Configuration is data: a TOML table read key by key into plain structs, with unknown keys and wrong types
// reported by name and file, and the resolved values (defaults included) kept for writing next to results.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace embrec {

class ConfigTable {
 public:
  // `source` names the file in messages; `path` is the dotted path of this table ("" for the root).
  ConfigTable(const toml::table* table, std::string source, std::string path);

  // Parses a TOML file; a syntax error names the file, line and column.
  static ConfigTable parse_file(const std::string& file);
  static ConfigTable parse_string(std::string_view text, std::string source);
  // Takes ownership of an already parsed (and possibly overridden) document.
  static ConfigTable from_document(toml::table document, std::string source);

  bool has(std::string_view key) const;

  // Typed reads. A present key of the wrong type is an error; a missing key takes the default.
  // Every value read (or defaulted) is recorded in resolved().
  bool get(std::string_view key, bool default_value);
  int64_t get(std::string_view key, int64_t default_value);
  int get(std::string_view key, int default_value);
  double get(std::string_view key, double default_value);
  std::string get(std::string_view key, const std::string& default_value);
  std::string get(std::string_view key, const char* default_value) { return get(key, std::string(default_value)); }
  std::vector<int64_t> get(std::string_view key, const std::vector<int64_t>& default_value);
  std::vector<std::string> get(std::string_view key, const std::vector<std::string>& default_value);

  // A string that must be one of `choices`.
  std::string get_choice(std::string_view key, const std::string& default_value,
                         const std::vector<std::string>& choices);

  // A string that must be present.
  std::string require_string(std::string_view key);

  // A nested table; an empty one when the key is absent (so defaults apply). Marks the key as used.
  ConfigTable& sub(std::string_view key);

  // Throws Error naming the first key of this table (or of a sub-table taken from it) that nobody read.
  void finish() const;

  // What was read, defaults included, as a TOML table (sub-tables nested).
  toml::table resolved() const;

  const std::string& source() const { return source_; }
  std::string key_path(std::string_view key) const;

 private:
  const toml::node* lookup(std::string_view key);
  [[noreturn]] void type_error(std::string_view key, std::string_view expected, const toml::node& node) const;

  std::shared_ptr<toml::table> owned_;  // the parsed document when this is a root
  const toml::table* table_;
  std::string source_;
  std::string path_;
  std::set<std::string, std::less<>> used_;
  toml::table resolved_;
  std::vector<std::pair<std::string, std::unique_ptr<ConfigTable>>> subs_;
  static const toml::table empty_table_;
};

// Applies a command-line override "section.key=value" to a parsed document. The value is read as TOML
// (`model.dim=32`, `model.loss="bce"`, `eval.ks=[5,10]`); a value that is not valid TOML is taken as a string
// (`model.loss=bce`). Missing tables on the path are created.
void apply_override(toml::table& document, std::string_view assignment);

}  // namespace embrec
