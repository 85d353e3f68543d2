// Line and field helpers of the text readers.
#include "embrec/data/text.h"

#include <charconv>
#include <cmath>
#include <filesystem>

#include "embrec/util/error.h"

namespace embrec::data {

void split_by(std::string_view line, std::string_view separator, std::vector<std::string_view>& fields) {
  fields.clear();
  size_t start = 0;
  while (true) {
    const size_t end = line.find(separator, start);
    if (end == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return;
    }
    fields.push_back(line.substr(start, end - start));
    start = end + separator.size();
  }
}

bool split_record(std::string_view line, char delimiter, std::vector<std::string_view>& fields,
                  std::vector<std::string>& unquoted) {
  fields.clear();
  if (line.find('"') == std::string_view::npos) {
    split_by(line, std::string_view(&delimiter, 1), fields);
    for (std::string_view& field : fields) field = trim(field);
    return true;
  }
  unquoted.clear();
  std::vector<std::pair<size_t, size_t>> quoted;  // (field index, index into unquoted), resolved at the end
  size_t position = 0;
  while (true) {
    size_t start = position;
    while (start < line.size() && line[start] == ' ') ++start;
    if (start < line.size() && line[start] == '"') {
      std::string value;
      size_t at = start + 1;
      while (true) {
        if (at >= line.size()) return false;
        if (line[at] == '"') {
          if (at + 1 < line.size() && line[at + 1] == '"') {
            value += '"';
            at += 2;
            continue;
          }
          ++at;
          break;
        }
        value += line[at++];
      }
      while (at < line.size() && line[at] == ' ') ++at;
      if (at < line.size() && line[at] != delimiter) return false;  // text after the closing quote
      quoted.emplace_back(fields.size(), unquoted.size());
      unquoted.push_back(std::move(value));
      fields.emplace_back();
      if (at >= line.size()) break;
      position = at + 1;
    } else {
      const size_t end = line.find(delimiter, position);
      if (end == std::string_view::npos) {
        fields.push_back(trim(line.substr(position)));
        break;
      }
      fields.push_back(trim(line.substr(position, end - position)));
      position = end + 1;
    }
  }
  for (const auto& [field, index] : quoted) fields[field] = unquoted[index];
  return true;
}

std::vector<std::string> split_values(std::string_view field, std::string_view separator, const char* field_name,
                                      const char* noun, const LineContext& where) {
  std::vector<std::string> values;
  if (field.empty()) return values;
  std::vector<std::string_view> parts;
  split_by(field, separator, parts);
  values.reserve(parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string_view value = trim(parts[i]);
    if (value.empty())
      fail("{}:{}: field '{}': {} {} is empty (two '{}' in a row?)", where.file, where.line, field_name, noun, i + 1,
           separator);
    values.emplace_back(value);
  }
  return values;
}

void fail_field_count(const LineContext& where, size_t expected, std::string_view separator, size_t got) {
  fail("{}:{}: expected {} fields separated by '{}', got {}", where.file, where.line, expected,
       separator == "\t" ? "\\t" : separator, got);
}

int column_index(const std::vector<std::string>& header, std::string_view wanted, std::string_view key,
                 const LineContext& where) {
  for (size_t c = 0; c < header.size(); ++c)
    if (header[c] == wanted) return static_cast<int>(c);
  std::string known;
  for (const std::string& column : header) known += (known.empty() ? "" : ", ") + column;
  fail("{}:{}: unknown column '{}' for {} (columns: {})", where.file, where.line, wanted, key, known);
}

std::string_view trim_end(std::string_view text) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  return trim_end(text);
}

bool is_integer(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return !text.empty() && error == std::errc() && end == text.data() + text.size();
}

int64_t parse_integer(std::string_view text, const char* field, const LineContext& where) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size())
    fail("{}:{}: field '{}': cannot parse '{}' as an integer", where.file, where.line, field, text);
  return value;
}

double parse_number(std::string_view text, const char* field, const LineContext& where) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size() || !std::isfinite(value))
    fail("{}:{}: field '{}': cannot parse '{}' as a number", where.file, where.line, field, text);
  return value;
}

std::string_view without_byte_order_mark(std::string_view text) {
  constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
  if (text.substr(0, kByteOrderMark.size()) == kByteOrderMark) text.remove_prefix(kByteOrderMark.size());
  return text;
}

std::string display_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

}  // namespace embrec::data
