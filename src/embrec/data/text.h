// Line and field helpers shared by the text readers (interaction logs, item attributes, feature tables): lines with
// their numbers, fields split at a separator or as csv records, integers and numbers parsed with errors that name
// the file, line and field.
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

// "<file>:<line>: expected <expected> fields separated by '<separator>', got <got>" (a tab shown as \t).
[[noreturn]] void fail_field_count(const LineContext& where, size_t expected, std::string_view separator, size_t got);

// Calls visit(fields, where) for each non-blank line of a file of fixed-width records: the line cut at `separator`
// into exactly `field_count` fields, each trimmed (another count is fail_field_count's error).
template <typename Visit>
void for_each_record(const std::string& file, std::string_view text, std::string_view separator, size_t field_count,
                     Visit&& visit) {
  std::vector<std::string_view> fields;
  for_each_line(text, [&](std::string_view line, int64_t number) {
    if (trim(line).empty()) return;
    const LineContext where{file, number};
    split_by(line, separator, fields);
    if (fields.size() != field_count) fail_field_count(where, field_count, separator, fields.size());
    for (std::string_view& field : fields) field = trim(field);
    visit(fields, where);
  });
}

// One csv/tsv record: fields split at `delimiter`, RFC 4180 quoting ("a,b" is one field, "" inside quotes is a
// quote) so that files written by pandas or spreadsheets read as written. Quoted fields lose their quotes and are
// kept in `unquoted` (fields then view into it) exactly as written between the quotes, spaces included; unquoted
// fields are trimmed. A field cannot span lines. Returns false on an unterminated quote.
bool split_record(std::string_view line, char delimiter, std::vector<std::string_view>& fields,
                  std::vector<std::string>& unquoted);

// The position of column `wanted` in a header row, else "<file>:<line>: unknown column '<wanted>' for <key>
// (columns: a, b, c)"; `key` names the option that asked for it.
int column_index(const std::vector<std::string>& header, std::string_view wanted, std::string_view key,
                 const LineContext& where);

// The values of one field cut at `separator` and trimmed: an empty field has none; an empty value between two
// separators is "<file>:<line>: field '<field>': <noun> 2 is empty (two '|' in a row?)".
std::vector<std::string> split_values(std::string_view field, std::string_view separator, const char* field_name,
                                      const char* noun, const LineContext& where);

bool is_integer(std::string_view text);
// The whole field as an integer / a finite number, else "<file>:<line>: field '<field>': cannot parse ...".
int64_t parse_integer(std::string_view text, const char* field, const LineContext& where);
double parse_number(std::string_view text, const char* field, const LineContext& where);

// A UTF-8 byte-order mark (as spreadsheet programs write) removed from the front.
std::string_view without_byte_order_mark(std::string_view text);

// The file's name without its folders, for messages.
std::string display_name(const std::string& path);

}  // namespace embrec::data
