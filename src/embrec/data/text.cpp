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
