// Configuration is data: a TOML table read key by key into plain structs, with unknown keys and wrong types
// reported by name and file, and the resolved values (defaults included) kept for writing next to results.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace embrec {

// The names of a mode's values, declared once beside its enum: {{"sinkhorn", Clustering::Sinkhorn}, ...}.
template <typename Enum>
using Names = std::vector<std::pair<std::string, Enum>>;

// The name of `value` in `names` (the value a config wrote), e.g. for log lines and loss part names.
template <typename Enum>
const std::string& name_of(const Names<Enum>& names, Enum value) {
  for (const auto& [name, candidate] : names)
    if (candidate == value) return name;
  throw std::logic_error("name_of: a value without a name");
}

// A config document before any key is read: the merged TOML of a file and the files it extends, and for each key
// (dotted path) written by another file than the top one, that file, so paths and messages refer to it.
struct ConfigDocument {
  toml::table table;
  std::shared_ptr<const std::map<std::string, std::string>> origins;
};

// Reads `file` and, when it starts from another config (`extends = "base.toml"`, relative to the file), that base
// first, with this file's keys laid over it: tables merge key by key, other values are replaced. A base may extend
// another. A missing base, a cycle and a non-string `extends` are errors naming the files; a syntax error names the
// file, line and column.
ConfigDocument read_config_document(const std::string& file);

class ConfigTable {
 public:
  // `source` names the file in messages; `path` is the dotted path of this table ("" for the root).
  ConfigTable(const toml::table* table, std::string source, std::string path);

  // read_config_document(file), ready to read.
  static ConfigTable parse_file(const std::string& file);
  static ConfigTable parse_string(std::string_view text, std::string source);
  // Takes ownership of an already parsed (and possibly overridden) document.
  static ConfigTable from_document(toml::table document, std::string source);
  static ConfigTable from_document(ConfigDocument document, std::string source);

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
  std::vector<double> get(std::string_view key, const std::vector<double>& default_value);  // integers accepted
  std::vector<std::string> get(std::string_view key, const std::vector<std::string>& default_value);

  // A string that must be one of `choices`.
  std::string get_choice(std::string_view key, const std::string& default_value,
                         const std::vector<std::string>& choices);
  // A mode: the string becomes its enum here, once (an unknown value is an error listing the allowed ones).
  template <typename Enum>
  Enum get_one_of(std::string_view key, Enum default_value, const Names<Enum>& names);

  // Checked reads: a value outside the bound is an error naming the key, e.g. "f.toml: key 'model.dim' must be
  // positive, got 0". get_in_range takes the interval as it is printed: "(0, 1]", "[0, 1)", "(0, 1)", "[0, 1]".
  // For T = int, int64_t and double.
  template <typename T>
  T get_positive(std::string_view key, T default_value);
  template <typename T>
  T get_at_least(std::string_view key, T default_value, T minimum);
  double get_in_range(std::string_view key, double default_value, std::string_view interval);

  // Keys that apply only under a setting of other keys. When `applies` is false, each key read through the
  // returned view must be absent (else "key 'temperature' applies only to loss = \"softmax\"", with `condition`
  // = "to loss = \"softmax\"") and reads as its default without entering the resolved config.
  class Conditional;
  Conditional only(bool applies, std::string condition);

  // The error for a key whose value breaks a rule that involves other keys: "<file>: key '<path>' <what>" (no
  // space before a `what` that starts with ':').
  [[noreturn]] void fail_key(std::string_view key, std::string_view what) const;
  void check(bool ok, std::string_view key, std::string_view what) const {
    if (!ok) fail_key(key, what);
  }

  // A string that must be present.
  std::string require_string(std::string_view key);

  // A path: relative ones are taken against the folder of the file that wrote the key (the current directory for
  // configs that are not files, e.g. "<built-in demo config>"), and returned absolute. The resolved config keeps the
  // text as written.
  std::string get_path(std::string_view key, const std::string& default_value);

  // The file that wrote `key` (a base file for keys an overlay did not set), else source().
  const std::string& origin(std::string_view key) const;

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
  std::shared_ptr<const std::map<std::string, std::string>> origins_;  // shared by the root and its sub-tables
  const toml::table* table_;
  std::string source_;
  std::string path_;
  std::set<std::string, std::less<>> used_;
  toml::table resolved_;
  std::vector<std::pair<std::string, std::unique_ptr<ConfigTable>>> subs_;
  static const toml::table empty_table_;
};

class ConfigTable::Conditional {
 public:
  Conditional(ConfigTable& table, bool applies, std::string condition)
      : table_(table), applies_(applies), condition_(std::move(condition)) {}
  template <typename T>
  T get(std::string_view key, T default_value) {
    return applies_ ? table_.get(key, default_value) : absent(key, default_value);
  }
  std::string get(std::string_view key, const char* default_value) { return get(key, std::string(default_value)); }
  template <typename T>
  T get_positive(std::string_view key, T default_value) {
    return applies_ ? table_.get_positive(key, default_value) : absent(key, default_value);
  }
  template <typename T>
  T get_at_least(std::string_view key, T default_value, T minimum) {
    return applies_ ? table_.get_at_least(key, default_value, minimum) : absent(key, default_value);
  }
  double get_in_range(std::string_view key, double default_value, std::string_view interval) {
    return applies_ ? table_.get_in_range(key, default_value, interval) : absent(key, default_value);
  }
  std::string get_path(std::string_view key, const std::string& default_value) {
    return applies_ ? table_.get_path(key, default_value) : absent(key, default_value);
  }
  template <typename Enum>
  Enum get_one_of(std::string_view key, Enum default_value, const Names<Enum>& names) {
    return applies_ ? table_.get_one_of(key, default_value, names) : absent(key, default_value);
  }

 private:
  template <typename T>
  T absent(std::string_view key, T default_value) const {
    if (table_.has(key)) table_.fail_key(key, "applies only " + condition_);
    return default_value;
  }
  ConfigTable& table_;
  bool applies_;
  std::string condition_;
};

inline ConfigTable::Conditional ConfigTable::only(bool applies, std::string condition) {
  return Conditional(*this, applies, std::move(condition));
}

template <typename Enum>
Enum ConfigTable::get_one_of(std::string_view key, Enum default_value, const Names<Enum>& names) {
  std::vector<std::string> choices;
  for (const auto& [name, value] : names) choices.push_back(name);
  const std::string chosen = get_choice(key, name_of(names, default_value), choices);
  for (const auto& [name, value] : names)
    if (name == chosen) return value;
  return default_value;  // unreachable: get_choice accepted one of the names
}

// Applies a command-line override "section.key=value" to a parsed document. The value is read as TOML
// (`model.dim=32`, `model.loss="bce"`, `eval.ks=[5,10]`); a value that is not valid TOML is taken as a string
// (`model.loss=bce`). Missing tables on the path are created.
void apply_override(toml::table& document, std::string_view assignment);

}  // namespace embrec
