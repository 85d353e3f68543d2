// ConfigTable: typed, checked reads from TOML with a record of the resolved values.
#include "embrec/util/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "embrec/util/error.h"

namespace embrec {

namespace fs = std::filesystem;

const toml::table ConfigTable::empty_table_{};

namespace {
std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}
}  // namespace

ConfigTable::ConfigTable(const toml::table* table, std::string source, std::string path)
    : table_(table ? table : &empty_table_), source_(std::move(source)), path_(std::move(path)) {}

namespace {
// TOML text parsed; a syntax error names the source, line and column.
toml::table parse_toml(std::string_view text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& error) {
    fail("{}:{}:{}: {}", source, error.source().begin.line, error.source().begin.column, error.description());
  }
}
}  // namespace

ConfigTable ConfigTable::parse_string(std::string_view text, std::string source) {
  toml::table document = parse_toml(text, source);
  return from_document(std::move(document), std::move(source));
}

ConfigTable ConfigTable::from_document(toml::table document, std::string source) {
  auto owned = std::make_shared<toml::table>(std::move(document));
  ConfigTable table(owned.get(), source, "");
  table.owned_ = std::move(owned);
  return table;
}

ConfigTable ConfigTable::from_document(ConfigDocument document, std::string source) {
  ConfigTable table = from_document(std::move(document.table), std::move(source));
  table.origins_ = std::move(document.origins);
  return table;
}

namespace {

toml::table parse_toml_file(const std::string& file) {
  std::ifstream probe(file);
  if (!probe) fail("{}: cannot open config file", file);
  std::stringstream text;
  text << probe.rdbuf();
  return parse_toml(text.str(), file);
}

// Lays `overlay` over `base`: tables merge key by key, other values (arrays included) are replaced.
void merge(toml::table& base, const toml::table& overlay) {
  for (auto&& [key, node] : overlay) {
    toml::node* existing = base.get(key.str());
    if (existing && existing->is_table() && node.is_table()) {
      merge(*existing->as_table(), *node.as_table());
    } else {
      base.insert_or_assign(key.str(), node);
    }
  }
}

// The dotted paths of a table's values (not of its sub-tables).
void leaves(const toml::table& table, const std::string& prefix, std::vector<std::string>& out) {
  for (auto&& [key, node] : table) {
    const std::string path = prefix + std::string(key.str());
    if (const toml::table* sub = node.as_table()) {
      leaves(*sub, path + ".", out);
    } else {
      out.push_back(path);
    }
  }
}

// `file` merged over its bases; `origins` gets the file of every value that a base wrote.
toml::table read_with_bases(const std::string& file, std::vector<std::string>& chain,
                            std::map<std::string, std::string>& origins) {
  const std::string canonical = fs::weakly_canonical(file).string();
  for (const std::string& seen : chain)
    if (seen == canonical) {
      std::string cycle;
      for (const std::string& link : chain) cycle += link + " -> ";
      fail("{}: key 'extends' makes a cycle: {}{}", file, cycle, canonical);
    }
  chain.push_back(canonical);
  toml::table table = parse_toml_file(file);
  const toml::node* extends = table.get("extends");
  if (!extends) return table;
  if (!extends->is_string()) fail("{}: key 'extends' must be a string (the base config's path)", file);
  const fs::path base_file = (fs::path(file).parent_path() / extends->as_string()->get()).lexically_normal();
  if (!fs::is_regular_file(base_file)) fail("{}: key 'extends': no such config file {}", file, base_file.string());
  table.erase("extends");
  std::map<std::string, std::string> base_origins;
  toml::table merged = read_with_bases(base_file.string(), chain, base_origins);
  std::vector<std::string> paths;
  leaves(merged, "", paths);
  for (const std::string& path : paths) {
    auto known = base_origins.find(path);
    origins[path] = known != base_origins.end() ? known->second : base_file.string();
  }
  merge(merged, table);
  paths.clear();
  leaves(table, "", paths);
  for (const std::string& path : paths) {
    origins.erase(path);
    // A value that replaced a base's table: the table's keys are gone with it.
    for (auto it = origins.lower_bound(path + "."); it != origins.end() && it->first.rfind(path + ".", 0) == 0;)
      it = origins.erase(it);
  }
  return merged;
}

}  // namespace

ConfigDocument read_config_document(const std::string& file) {
  ConfigDocument document;
  std::vector<std::string> chain;
  auto origins = std::make_shared<std::map<std::string, std::string>>();
  document.table = read_with_bases(file, chain, *origins);
  document.origins = std::move(origins);
  return document;
}

void apply_override(toml::table& document, std::string_view assignment) {
  const size_t equals = assignment.find('=');
  auto trim = [](std::string_view text) {
    const size_t first = text.find_first_not_of(" \t");
    const size_t last = text.find_last_not_of(" \t");
    return first == std::string_view::npos ? std::string() : std::string(text.substr(first, last - first + 1));
  };
  const std::string path = equals == std::string_view::npos ? "" : trim(assignment.substr(0, equals));
  if (path.empty()) fail("--set '{}': expected section.key=value", assignment);
  const std::string value = trim(assignment.substr(equals + 1));
  toml::table holder;
  try {
    holder = toml::parse("value = " + value);
  } catch (const toml::parse_error&) {
    holder.insert_or_assign("value", value);
  }
  toml::table* table = &document;
  size_t start = 0;
  for (size_t dot = path.find('.'); dot != std::string::npos; start = dot + 1, dot = path.find('.', start)) {
    const std::string part = path.substr(start, dot - start);
    toml::node* child = table->get(part);
    if (!child) child = &table->insert_or_assign(part, toml::table{}).first->second;
    if (!child->is_table()) fail("--set '{}': '{}' is not a table", assignment, part);
    table = child->as_table();
  }
  table->insert_or_assign(path.substr(start), std::move(*holder.get("value")));
}

ConfigTable ConfigTable::parse_file(const std::string& file) { return from_document(read_config_document(file), file); }

const std::string& ConfigTable::origin(std::string_view key) const {
  if (origins_) {
    auto it = origins_->find(key_path(key));
    if (it != origins_->end()) return it->second;
  }
  return source_;
}

std::string ConfigTable::get_path(std::string_view key, const std::string& default_value) {
  const std::string value = get(key, default_value);
  if (value.empty() || fs::path(value).is_absolute()) return value;
  const std::string& file = origin(key);
  if (file.empty() || file.front() == '<') return fs::absolute(value).lexically_normal().string();
  return fs::absolute(fs::path(file).parent_path() / value).lexically_normal().string();
}

std::string ConfigTable::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

bool ConfigTable::has(std::string_view key) const { return table_->contains(key); }

const toml::node* ConfigTable::lookup(std::string_view key) {
  used_.emplace(key);
  return table_->get(key);
}

void ConfigTable::type_error(std::string_view key, std::string_view expected, const toml::node& node) const {
  fail_key(key, fmt::format("must be {}, got {}", expected, type_name(node)));
}

bool ConfigTable::get(std::string_view key, bool default_value) {
  bool value = default_value;
  if (const toml::node* node = lookup(key)) {
    if (!node->is_boolean()) type_error(key, "a boolean", *node);
    value = node->as_boolean()->get();
  }
  resolved_.insert_or_assign(key, value);
  return value;
}

int64_t ConfigTable::get(std::string_view key, int64_t default_value) {
  int64_t value = default_value;
  if (const toml::node* node = lookup(key)) {
    if (!node->is_integer()) type_error(key, "an integer", *node);
    value = node->as_integer()->get();
  }
  resolved_.insert_or_assign(key, value);
  return value;
}

int ConfigTable::get(std::string_view key, int default_value) {
  const int64_t value = get(key, static_cast<int64_t>(default_value));
  check(value >= INT32_MIN && value <= INT32_MAX, key, fmt::format("is out of range: {}", value));
  return static_cast<int>(value);
}

double ConfigTable::get(std::string_view key, double default_value) {
  double value = default_value;
  if (const toml::node* node = lookup(key)) {
    if (node->is_integer()) {
      value = static_cast<double>(node->as_integer()->get());
    } else if (node->is_floating_point()) {
      value = node->as_floating_point()->get();
    } else {
      type_error(key, "a number", *node);
    }
  }
  resolved_.insert_or_assign(key, value);
  return value;
}

std::string ConfigTable::get(std::string_view key, const std::string& default_value) {
  std::string value = default_value;
  if (const toml::node* node = lookup(key)) {
    if (!node->is_string()) type_error(key, "a string", *node);
    value = node->as_string()->get();
  }
  resolved_.insert_or_assign(key, value);
  return value;
}

std::vector<int64_t> ConfigTable::get(std::string_view key, const std::vector<int64_t>& default_value) {
  std::vector<int64_t> value = default_value;
  if (const toml::node* node = lookup(key)) {
    if (!node->is_array()) type_error(key, "an array of integers", *node);
    value.clear();
    for (const toml::node& element : *node->as_array()) {
      if (!element.is_integer()) type_error(key, "an array of integers", element);
      value.push_back(element.as_integer()->get());
    }
  }
  toml::array array;
  for (int64_t v : value) array.push_back(v);
  resolved_.insert_or_assign(key, std::move(array));
  return value;
}

std::vector<double> ConfigTable::get(std::string_view key, const std::vector<double>& default_value) {
  std::vector<double> value = default_value;
  if (const toml::node* node = lookup(key)) {
    if (!node->is_array()) type_error(key, "an array of numbers", *node);
    value.clear();
    for (const toml::node& element : *node->as_array()) {
      if (!element.is_number()) type_error(key, "an array of numbers", element);
      value.push_back(element.is_integer() ? static_cast<double>(element.as_integer()->get())
                                           : element.as_floating_point()->get());
    }
  }
  toml::array array;
  for (double v : value) array.push_back(v);
  resolved_.insert_or_assign(key, std::move(array));
  return value;
}

std::vector<std::string> ConfigTable::get(std::string_view key, const std::vector<std::string>& default_value) {
  std::vector<std::string> value = default_value;
  if (const toml::node* node = lookup(key)) {
    if (!node->is_array()) type_error(key, "an array of strings", *node);
    value.clear();
    for (const toml::node& element : *node->as_array()) {
      if (!element.is_string()) type_error(key, "an array of strings", element);
      value.push_back(element.as_string()->get());
    }
  }
  toml::array array;
  for (const std::string& v : value) array.push_back(v);
  resolved_.insert_or_assign(key, std::move(array));
  return value;
}

std::string ConfigTable::get_choice(std::string_view key, const std::string& default_value,
                                    const std::vector<std::string>& choices) {
  std::string value = get(key, default_value);
  for (const std::string& choice : choices)
    if (choice == value) return value;
  std::string list;
  for (const std::string& choice : choices) list += (list.empty() ? "" : ", ") + choice;
  fail_key(key, fmt::format("must be one of {{{}}}, got '{}'", list, value));
}

void ConfigTable::fail_key(std::string_view key, std::string_view what) const {
  // "key 'x' must be ..." or, for a message that lists something, "key 'x': unknown metric ...". A key written by a
  // base config is named with that file.
  fail("{}: key '{}'{}{}", origin(key), key_path(key), !what.empty() && what.front() == ':' ? "" : " ", what);
}

template <typename T>
T ConfigTable::get_positive(std::string_view key, T default_value) {
  const T value = get(key, default_value);
  check(value > 0, key, fmt::format("must be positive, got {}", value));  // false for NaN too
  return value;
}

template <typename T>
T ConfigTable::get_at_least(std::string_view key, T default_value, T minimum) {
  const T value = get(key, default_value);
  check(value >= minimum, key, fmt::format("must be >= {}, got {}", minimum, value));
  return value;
}

template int ConfigTable::get_positive(std::string_view, int);
template int64_t ConfigTable::get_positive(std::string_view, int64_t);
template double ConfigTable::get_positive(std::string_view, double);
template int ConfigTable::get_at_least(std::string_view, int, int);
template int64_t ConfigTable::get_at_least(std::string_view, int64_t, int64_t);
template double ConfigTable::get_at_least(std::string_view, double, double);

double ConfigTable::get_in_range(std::string_view key, double default_value, std::string_view interval) {
  const size_t comma = interval.find(',');
  const bool well_formed = interval.size() >= 5 && comma != std::string_view::npos &&
                           (interval.front() == '(' || interval.front() == '[') &&
                           (interval.back() == ')' || interval.back() == ']');
  if (!well_formed) throw std::logic_error("get_in_range: interval must look like \"(0, 1]\"");
  const double low = std::stod(std::string(interval.substr(1, comma - 1)));
  const double high = std::stod(std::string(interval.substr(comma + 1, interval.size() - comma - 2)));
  const double value = get(key, default_value);
  const bool above = interval.front() == '(' ? value > low : value >= low;
  const bool below = interval.back() == ')' ? value < high : value <= high;
  check(above && below, key, fmt::format("must be in {}, got {}", interval, value));
  return value;
}

std::string ConfigTable::require_string(std::string_view key) {
  if (!has(key)) fail("{}: missing required key '{}'", source_, key_path(key));
  return get(key, std::string());
}

ConfigTable& ConfigTable::sub(std::string_view key) {
  for (auto& [name, table] : subs_)
    if (name == key) return *table;
  const toml::node* node = lookup(key);
  const toml::table* child = nullptr;
  if (node) {
    if (!node->is_table()) type_error(key, "a table", *node);
    child = node->as_table();
  }
  subs_.emplace_back(std::string(key), std::make_unique<ConfigTable>(child, source_, key_path(key)));
  subs_.back().second->origins_ = origins_;
  return *subs_.back().second;
}

void ConfigTable::finish() const {
  for (const auto& [key, node] : *table_) {
    if (!used_.count(key.str())) fail("{}: unknown key '{}'", source_, key_path(key.str()));
  }
  for (const auto& [name, table] : subs_) table->finish();
}

toml::table ConfigTable::resolved() const {
  toml::table out = resolved_;
  for (const auto& [name, table] : subs_) out.insert_or_assign(name, table->resolved());
  return out;
}

}  // namespace embrec
