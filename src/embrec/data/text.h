// Line and field helpers shared by the text readers (interaction logs, item attributes): lines with their numbers,
// fields split at a separator, integers and numbers parsed with errors that name the file, line and field.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace embrec::data {

// Where a field was read, for messages: "<file>:<line>: ...".
struct LineContext {
  const std::string& file;
  int64_t line;
};

// Splits text into lines (\n or \r\n), calling visit(line, line_number) for each; a final line without \n counts.
template <typename Visit>
void for_each_line(std::string_view text, Visit&& visit) {
  int64_t number = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    visit(line, ++number);
    start = end + 1;
  }
}

// `line` cut at every `separator` into `fields` (views into line; cleared first).
void split_by(std::string_view line, std::string_view separator, std::vector<std::string_view>& fields);

// Without leading and trailing spaces and tabs.
std::string_view trim(std::string_view text);
std::string_view trim_end(std::string_view text);

bool is_integer(std::string_view text);
// The whole field as an integer / a finite number, else "<file>:<line>: field '<field>': cannot parse ...".
int64_t parse_integer(std::string_view text, const char* field, const LineContext& where);
double parse_number(std::string_view text, const char* field, const LineContext& where);

// A UTF-8 byte-order mark (as spreadsheet programs write) removed from the front.
std::string_view without_byte_order_mark(std::string_view text);

// The file's name without its folders, for messages.
std::string display_name(const std::string& path);

}  // namespace embrec::data
