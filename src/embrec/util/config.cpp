// ConfigTable: typed, checked reads from TOML with a record of the resolved values.
#include "embrec/util/config.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include "embrec/util/error.h"

namespace embrec {

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

ConfigTable ConfigTable::parse_string(std::string_view text, std::string source) {
  try {
    auto document = std::make_shared<toml::table>(toml::parse(text, source));
    ConfigTable table(document.get(), source, "");
    table.owned_ = std::move(document);
    return table;
  } catch (const toml::parse_error& error) {
    fail("{}:{}:{}: {}", source, error.source().begin.line, error.source().begin.column, error.description());
  }
}

ConfigTable ConfigTable::from_document(toml::table document, std::string source) {
  auto owned = std::make_shared<toml::table>(std::move(document));
  ConfigTable table(owned.get(), source, "");
  table.owned_ = std::move(owned);
  return table;
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

ConfigTable ConfigTable::parse_file(const std::string& file) {
  std::ifstream probe(file);
  if (!probe) fail("{}: cannot open config file", file);
  std::stringstream text;
  text << probe.rdbuf();
  return parse_string(text.str(), file);
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
  // "key 'x' must be ..." or, for a message that lists something, "key 'x': unknown metric ...".
  fail("{}: key '{}'{}{}", source_, key_path(key), !what.empty() && what.front() == ':' ? "" : " ", what);
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
