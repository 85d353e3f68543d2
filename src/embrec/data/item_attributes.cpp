// Item-attribute readers (see item_attributes.h). The files are small (Beauty's JSON is 0.5 MB, movies.dat 3,883
// lines) and read once per run, so each is read whole and parsed in one pass; nothing here is on a hot path.
//
// Line handling follows readers.cpp: "\n" or "\r\n" ends a line, blank lines are skipped, fields are trimmed of
// spaces and tabs, line numbers count every line so they match an editor's.
#include "embrec/data/item_attributes.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>
#include <tuple>
#include <unordered_set>

#include "embrec/util/error.h"
#include "embrec/data/text.h"
#include "embrec/util/files.h"

namespace embrec::data {

namespace {

using json = nlohmann::json;

enum class Format { json, movies, uitem, text };
constexpr std::array<const char*, 4> kFormatNames = {"json", "movies", "uitem", "text"};

constexpr size_t kUItemFixedFields = 5;  // id, title, release date, video release date, IMDb URL
constexpr int kUItemGenreCount = 19;     // MovieLens 100K: unknown, Action, ..., Western

// ---- format detection ----

std::string_view first_content_line(std::string_view text) {
  std::string_view found;
  for_each_line(text, [&](std::string_view line, int64_t) {
    if (found.empty()) found = trim(line);
  });
  return found;
}

bool looks_like_movies_dat(std::string_view line) {
  const size_t first = line.find("::");
  return first != std::string_view::npos && line.rfind("::") >= first + 2 && is_integer(trim(line.substr(0, first)));
}

bool looks_like_uitem(std::string_view line) {
  std::vector<std::string_view> fields;
  split_by(line, "|", fields);
  if (fields.size() != kUItemFixedFields + kUItemGenreCount || !is_integer(trim(fields[0]))) return false;
  return std::all_of(fields.begin() + kUItemFixedFields, fields.end(),
                     [](std::string_view flag) { return trim(flag) == "0" || trim(flag) == "1"; });
}

// The extension decides when it is telling (so a broken first line still gets its format's error), else the content.
Format detected_format(const std::string& path, std::string_view text) {
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (extension == ".json") return Format::json;
  if (extension == ".dat") return Format::movies;
  if (extension == ".item") return Format::uitem;
  const size_t content = text.find_first_not_of(" \t\r\n");
  if (content != std::string_view::npos && text[content] == '{') return Format::json;
  const std::string_view line = first_content_line(text);
  if (looks_like_movies_dat(line)) return Format::movies;
  if (looks_like_uitem(line)) return Format::uitem;
  return Format::text;
}

Format format_named(const std::string& format, const std::string& path, std::string_view text) {
  if (format == "auto") return detected_format(path, text);
  for (size_t i = 0; i < kFormatNames.size(); ++i)
    if (format == kFormatNames[i]) return static_cast<Format>(i);
  fail("{}: unknown attribute format '{}' (auto, json, movies, uitem, text)", display_name(path), format);
}

// ---- JSON: {"item": [attr, ...], ...} ----

// nlohmann's what() is "[json.exception.parse_error.101] parse error at line 1, column 9: <reason>"; the file, line
// and byte are given by the caller, so only the reason is kept.
std::string parse_error_reason(const json::parse_error& error) {
  const std::string what = error.what();
  const size_t column = what.find(", column ");
  const size_t reason = column == std::string::npos ? std::string::npos : what.find(": ", column);
  return reason == std::string::npos ? what : what.substr(reason + 2);
}

// The 1-based line holding the 1-based byte `byte` (nlohmann's position: the last byte it read).
int64_t line_of_byte(std::string_view text, size_t byte) {
  const size_t end = std::min(byte > 0 ? byte - 1 : 0, text.size());
  return 1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(end), '\n');
}

std::string shown(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

json parse_json_object(const std::string& name, std::string_view text, size_t skipped_bytes) {
  // nlohmann keeps the last of two equal keys; an item listed twice is a broken file, so the callback rejects it.
  std::unordered_set<std::string> keys;
  const json::parser_callback_t reject_duplicates = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && !keys.insert(parsed.get<std::string>()).second)
      fail("{}: item '{}' appears twice", name, parsed.get<std::string>());
    return true;
  };
  json document;
  try {
    document = json::parse(text.begin(), text.end(), reject_duplicates);
  } catch (const json::parse_error& error) {
    fail("{}:{}: malformed JSON at byte {}: {}", name, line_of_byte(text, error.byte), error.byte + skipped_bytes,
         parse_error_reason(error));
  } catch (const json::exception& error) {  // e.g. a number too large for a double (found by fuzz_item_attributes)
    fail("{}: malformed JSON: {}", name, error.what());
  }
  if (!document.is_object())
    fail("{}: expected a JSON object mapping item ids to attribute arrays, got {}", name, document.type_name());
  return document;
}

void read_json(const std::string& name, std::string_view text, size_t skipped_bytes, ItemAttributes& out) {
  const json document = parse_json_object(name, text, skipped_bytes);
  out.by_item.reserve(document.size());
  for (const auto& [item, value] : document.items()) {
    if (item.empty()) fail("{}: item '': empty id", name);
    if (!value.is_array())
      fail("{}: item '{}': expected an array of strings or integers, got {}", name, item, shown(value));
    std::vector<std::string>& attributes = out.by_item[item];
    attributes.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
      const json& attribute = value[i];
      if (attribute.is_string() && !attribute.get_ref<const std::string&>().empty())
        attributes.push_back(attribute.get<std::string>());
      else if (attribute.is_number_integer())
        attributes.push_back(attribute.dump());
      else
        fail("{}: item '{}': attribute {}: expected a string or an integer, got {}", name, item, i + 1,
             shown(attribute));
    }
  }
}

// ---- text: item|attr|attr ----

void read_text(const std::string& name, std::string_view text, ItemAttributes& out) {
  for_each_line(text, [&](std::string_view line, int64_t number) {
    line = trim(line);
    if (line.empty()) return;
    const LineContext where{name, number};
    const size_t bar = line.find('|');
    const std::string_view item = trim(line.substr(0, bar));
    if (item.empty()) fail("{}:{}: field 'item': empty id", name, number);
    const std::string_view rest = bar == std::string_view::npos ? std::string_view() : trim(line.substr(bar + 1));
    if (!out.by_item.try_emplace(std::string(item), split_values(rest, "|", "attributes", "attribute", where)).second)
      fail("{}:{}: item '{}' appears on an earlier line too", name, number, item);
  });
}

// ---- MovieLens: movies.dat and u.item give genres per movie id, the item map turns movie ids into item ids ----

struct Movie {
  std::string id;  // as written, the item id when there is no item map
  std::vector<std::string> genres;
  std::string year;  // empty when the file gives none
};
using MovieTable = std::unordered_map<int64_t, Movie>;

void add_movie(MovieTable& movies, std::string_view id, std::vector<std::string> genres, std::string_view year,
               const LineContext& where) {
  const int64_t key = parse_integer(id, "movie_id", where);
  if (!movies.try_emplace(key, Movie{std::string(id), std::move(genres), std::string(year)}).second)
    fail("{}:{}: movie '{}' appears on an earlier line too", where.file, where.line, id);
}

bool is_year(std::string_view text) {
  return text.size() == 4 && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// movies.dat titles end in the release year, "Toy Story (1995)"; a title without one has no year (titles are free
// text, so this is not an error).
std::string_view year_of_title(std::string_view title) {
  title = trim(title);
  if (title.size() < 6 || title.back() != ')' || title[title.size() - 6] != '(') return {};
  const std::string_view year = title.substr(title.size() - 5, 4);
  return is_year(year) ? year : std::string_view();
}

// u.item release dates are dd-Mon-yyyy ("01-Jan-1995"); one movie has none (an empty field, no year).
std::string_view year_of_release_date(std::string_view date, const LineContext& where) {
  if (date.empty()) return {};
  const size_t dash = date.rfind('-');
  const std::string_view year = dash == std::string_view::npos ? std::string_view() : date.substr(dash + 1);
  if (!is_year(year))
    fail("{}:{}: field 'release date': expected a date such as 01-Jan-1995, got '{}'", where.file, where.line, date);
  return year;
}

// movies.dat: movie_id::title::Genre|Genre. A title may hold ':' (even a last one, "Title:::Drama") but never '::',
// so the id ends at the first '::' and the genres start after the last.
MovieTable read_movies_dat(const std::string& name, std::string_view text) {
  MovieTable movies;
  std::vector<std::string_view> fields;
  for_each_line(text, [&](std::string_view line, int64_t number) {
    if (trim(line).empty()) return;
    const LineContext where{name, number};
    const size_t first = line.find("::");
    const size_t last = line.rfind("::");
    const bool three_fields = first != std::string_view::npos && last >= first + 2 &&
                              line.substr(first + 2, last - first - 2).find("::") == std::string_view::npos;
    if (!three_fields) {
      split_by(line, "::", fields);
      fail("{}:{}: expected 3 fields separated by '::', got {}", name, number, fields.size());
    }
    add_movie(movies, trim(line.substr(0, first)),
              split_values(trim(line.substr(last + 2)), "|", "genres", "attribute", where),
              year_of_title(line.substr(first + 2, last - first - 2)), where);
  });
  return movies;
}

// u.genre: `name|index` lines, every index in 0..n-1 once. Without a file, ML-100K's 19 flags as genre0..genre18.
std::vector<std::string> read_genre_names(const std::string& path) {
  std::vector<std::string> names;
  if (path.empty()) {
    for (int i = 0; i < kUItemGenreCount; ++i) names.push_back("genre" + std::to_string(i));
    return names;
  }
  const std::string name = display_name(path);
  const std::string storage = read_file(path);
  std::vector<std::tuple<int64_t, std::string, int64_t>> entries;  // (index, genre, line)
  std::vector<std::string_view> fields;
  for_each_line(without_byte_order_mark(storage), [&](std::string_view line, int64_t number) {
    if (trim(line).empty()) return;
    split_by(line, "|", fields);
    if (fields.size() != 2) fail("{}:{}: expected 2 fields separated by '|', got {}", name, number, fields.size());
    if (trim(fields[0]).empty()) fail("{}:{}: field 'name': empty", name, number);
    entries.emplace_back(parse_integer(trim(fields[1]), "index", LineContext{name, number}), trim(fields[0]), number);
  });
  if (entries.empty()) fail("{}: no genres (empty file)", name);
  names.resize(entries.size());
  for (const auto& [index, genre, line] : entries) {
    if (index < 0 || index >= static_cast<int64_t>(entries.size()))
      fail("{}:{}: field 'index': {} is not in 0..{} (one index per genre)", name, line, index, entries.size() - 1);
    if (!names[index].empty()) fail("{}:{}: genre index {} appears on an earlier line too", name, line, index);
    names[index] = genre;
  }
  return names;
}

// u.item: id|title|release date|video release date|IMDb URL|flag|flag|...; the genres are the flags set to 1, the
// year ends the release date.
MovieTable read_uitem(const std::string& name, std::string_view text, const std::vector<std::string>& genres) {
  MovieTable movies;
  const size_t expected = kUItemFixedFields + genres.size();
  std::vector<std::string_view> fields;
  for_each_line(text, [&](std::string_view line, int64_t number) {
    if (trim(line).empty()) return;
    split_by(line, "|", fields);
    if (fields.size() != expected)
      fail("{}:{}: expected {} fields separated by '|', got {}", name, number, expected, fields.size());
    std::vector<std::string> flagged;
    for (size_t g = 0; g < genres.size(); ++g) {
      const std::string_view flag = trim(fields[kUItemFixedFields + g]);
      if (flag == "1")
        flagged.push_back(genres[g]);
      else if (flag != "0")
        fail("{}:{}: field '{}': expected 0 or 1, got '{}'", name, number, genres[g], flag);
    }
    const LineContext where{name, number};
    add_movie(movies, trim(fields[0]), std::move(flagged), year_of_release_date(trim(fields[2]), where), where);
  });
  return movies;
}

// `item<TAB>movie_id` lines: each item gets its movie's genres. The first non-blank line is a header when neither
// of its fields is an integer (ML-1M's item_map.tsv starts `item<TAB>movie_id`).
void read_through_item_map(const std::string& path, const std::string& movies_name, const MovieTable& movies,
                           ItemAttributes& out) {
  const std::string name = display_name(path);
  const std::string storage = read_file(path);
  std::vector<std::string_view> fields;
  bool first_line = true;
  for_each_line(without_byte_order_mark(storage), [&](std::string_view line, int64_t number) {
    if (trim(line).empty()) return;
    split_by(line, "\t", fields);
    const bool header =
        first_line && fields.size() == 2 && !is_integer(trim(fields[0])) && !is_integer(trim(fields[1]));
    first_line = false;
    if (header) return;
    if (fields.size() != 2) fail("{}:{}: expected 2 fields separated by '\\t', got {}", name, number, fields.size());
    const std::string_view item = trim(fields[0]);
    if (item.empty()) fail("{}:{}: field 'item': empty id", name, number);
    const int64_t movie = parse_integer(trim(fields[1]), "movie_id", LineContext{name, number});
    const auto found = movies.find(movie);
    if (found == movies.end()) fail("{}:{}: movie {} is not in {}", name, number, movie, movies_name);
    if (!out.by_item.try_emplace(std::string(item), found->second.genres).second)
      fail("{}:{}: item '{}' appears on an earlier line too", name, number, item);
    if (!found->second.year.empty()) out.year_by_item.emplace(item, found->second.year);
  });
  if (out.by_item.empty()) fail("{}: no items (empty file or header only)", name);
}

void attach_movies(MovieTable movies, const std::string& name, const std::string& item_map_path,
                   ItemAttributes& out) {
  if (movies.empty()) fail("{}: no items (empty file)", name);
  if (!item_map_path.empty()) {
    read_through_item_map(item_map_path, name, movies, out);
    return;
  }
  out.by_item.reserve(movies.size());
  for (auto& [key, movie] : movies) {
    if (!movie.year.empty()) out.year_by_item.emplace(movie.id, std::move(movie.year));
    out.by_item.emplace(std::move(movie.id), std::move(movie.genres));
  }
}

void check_options_apply(Format format, const AttributeReadOptions& options, const std::string& name) {
  const char* format_name = kFormatNames[static_cast<size_t>(format)];
  if (!options.item_map.empty() && format != Format::movies && format != Format::uitem)
    fail("{}: an item map applies to movies.dat and u.item only, not to format '{}'", name, format_name);
  if (!options.genre_names.empty() && format != Format::uitem)
    fail("{}: genre names (u.genre) apply to u.item only, not to format '{}'", name, format_name);
}

}  // namespace

const std::vector<std::string>& ItemAttributes::of(const std::string& external_id) const {
  static const std::vector<std::string> none;
  const auto found = by_item.find(external_id);
  return found == by_item.end() ? none : found->second;
}

ItemAttributes read_item_attributes(const std::string& path, const AttributeReadOptions& options) {
  const std::string storage = read_file(path);
  const std::string name = display_name(path);
  const std::string_view text = without_byte_order_mark(storage);
  const Format format = format_named(options.format, path, text);
  check_options_apply(format, options, name);
  ItemAttributes attributes;
  attributes.format = kFormatNames[static_cast<size_t>(format)];
  switch (format) {
    case Format::json:
      read_json(name, text, storage.size() - text.size(), attributes);
      break;
    case Format::text:
      read_text(name, text, attributes);
      break;
    case Format::movies:
      attach_movies(read_movies_dat(name, text), name, options.item_map, attributes);
      break;
    case Format::uitem:
      attach_movies(read_uitem(name, text, read_genre_names(options.genre_names)), name, options.item_map, attributes);
      break;
  }
  if (attributes.by_item.empty()) fail("{}: no items (empty file)", name);
  return attributes;
}

ItemAttributes read_item_attributes(const std::string& path, const std::string& item_map_path) {
  AttributeReadOptions options;
  options.item_map = item_map_path;
  return read_item_attributes(path, options);
}

}  // namespace embrec::data
