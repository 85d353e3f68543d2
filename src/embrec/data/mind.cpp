// MIND readers (news.tsv, behaviors.tsv), the time format, the title tokenizer and vocabularies, word vectors.
//
// Like readers.cpp, news.tsv and behaviors.tsv are read whole and parsed by hand over string_views; word vectors are
// streamed line by line instead, because GloVe 840B is 5.6 GB of which a MIND vocabulary needs about 1 %.
#include "embrec/data/mind.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>

#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::data {

namespace {

// A TSV line cut at every tab into exactly `expected` trimmed fields, else the error the issue specifies
// ("news.tsv:17: expected 8 tab-separated fields, got 5").
void split_tab_fields(std::string_view line, size_t expected, const LineContext& where,
                      std::vector<std::string_view>& fields) {
  split_by(line, "\t", fields);
  if (fields.size() != expected)
    fail("{}:{}: expected {} tab-separated fields, got {}", where.file, where.line, expected, fields.size());
  for (std::string_view& field : fields) field = trim(field);
}

// The space-separated values of a field: none when it is empty; an empty value (two spaces in a row) is an error in
// the style of split_values.
void split_space_values(std::string_view field, const char* field_name, const char* noun, const LineContext& where,
                        std::vector<std::string_view>& values) {
  values.clear();
  if (field.empty()) return;
  split_by(field, " ", values);
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].empty())
      fail("{}:{}: field '{}': {} {} is empty (two ' ' in a row?)", where.file, where.line, field_name, noun, i + 1);
}

int32_t news_index(const NewsCatalog& news, std::string_view id, const char* field, const LineContext& where) {
  const int32_t index = news.find(id);
  if (index < 0)
    fail("{}:{}: field '{}': unknown news id '{}' (not in {})", where.file, where.line, field, id,
         display_name(news.source));
  return index;
}

// ---- time ----

// Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant, "chrono-Compatible Low-Level Date
// Algorithms"): exact for any date, with no dependence on the machine's time zone as timegm/mktime would have.
int64_t days_from_civil(int64_t year, int64_t month, int64_t day) {
  year -= month <= 2;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

void civil_from_days(int64_t days, int64_t& year, int64_t& month, int64_t& day) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t day_of_era = days - era * 146097;
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t shifted_month = (5 * day_of_year + 2) / 153;
  day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
  month = shifted_month < 10 ? shifted_month + 3 : shifted_month - 9;
  year = year_of_era + era * 400 + (month <= 2);
}

bool is_leap_year(int64_t year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int64_t days_in_month(int64_t year, int64_t month) {
  static const int64_t kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && is_leap_year(year) ? 29 : kDays[month - 1];
}

// A cursor over the time text that reads digits and expects separators, remembering what went wrong.
struct TimeCursor {
  std::string_view text;
  size_t at = 0;
  std::string problem;

  // Between min_digits and max_digits decimal digits; false (with `problem` set) otherwise.
  bool number(int min_digits, int max_digits, const char* what, int64_t& value) {
    size_t end = at;
    while (end < text.size() && end - at < static_cast<size_t>(max_digits) && text[end] >= '0' && text[end] <= '9')
      ++end;
    if (end - at < static_cast<size_t>(min_digits) || (end < text.size() && text[end] >= '0' && text[end] <= '9')) {
      problem = fmt::format("{} must be {} digits", what,
                            min_digits == max_digits ? std::to_string(min_digits)
                                                     : fmt::format("{} or {}", min_digits, max_digits));
      return false;
    }
    value = 0;
    for (size_t i = at; i < end; ++i) value = value * 10 + (text[i] - '0');
    at = end;
    return true;
  }
  bool expect(char separator, const char* after) {
    if (at < text.size() && text[at] == separator) {
      ++at;
      return true;
    }
    problem = fmt::format("expected '{}' after the {}", separator, after);
    return false;
  }
};

// The time as Unix seconds; on failure `problem` says what is wrong (and the value is meaningless).
int64_t try_parse_mind_time(std::string_view text, std::string& problem) {
  TimeCursor cursor{text, 0, {}};
  int64_t month = 0, day = 0, year = 0, hour = 0, minute = 0, second = 0;
  const bool parsed = cursor.number(1, 2, "the month", month) && cursor.expect('/', "month") &&
                      cursor.number(1, 2, "the day", day) && cursor.expect('/', "day") &&
                      cursor.number(4, 4, "the year", year) && cursor.expect(' ', "year") &&
                      cursor.number(1, 2, "the hour", hour) && cursor.expect(':', "hour") &&
                      cursor.number(2, 2, "the minutes", minute) && cursor.expect(':', "minutes") &&
                      cursor.number(2, 2, "the seconds", second) && cursor.expect(' ', "seconds");
  if (!parsed) {
    problem = cursor.problem;
    return -1;
  }
  const std::string_view meridiem = text.substr(cursor.at);
  if (meridiem != "AM" && meridiem != "PM") {
    problem = "expected AM or PM at the end";
    return -1;
  }
  if (month < 1 || month > 12) {
    problem = fmt::format("month {} is not 1-12", month);
  } else if (day < 1 || day > days_in_month(year, month)) {
    problem = fmt::format("day {} is not in month {} of {}", day, month, year);
  } else if (hour < 1 || hour > 12) {
    problem = fmt::format("hour {} is not 1-12", hour);
  } else if (minute > 59 || second > 59) {
    problem = fmt::format("{} {} is not 0-59", minute > 59 ? "minute" : "second", minute > 59 ? minute : second);
  }
  if (!problem.empty()) return -1;
  // The 12-hour clock: 12:xx AM is the first hour of the day, 12:xx PM the thirteenth.
  const int64_t hour_of_day = hour % 12 + (meridiem == "PM" ? 12 : 0);
  return days_from_civil(year, month, day) * 86400 + hour_of_day * 3600 + minute * 60 + second;
}

// ---- tokens ----

// Unicode punctuation and symbols that separate words like their ASCII counterparts (see tokenize in mind.h).
bool is_separator_code_point(uint32_t code_point) {
  return (code_point >= 0xA0 && code_point <= 0xBF) || code_point == 0xD7 || code_point == 0xF7 ||
         (code_point >= 0x2000 && code_point <= 0x206F) || code_point == 0xFEFF;
}

bool is_ascii_word(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_punctuation_token(unsigned char c) {
  return c == '.' || c == ',' || c == '!' || c == '?' || c == ';' || c == '|';
}

// The length of the UTF-8 sequence at text[at] and its code point; a malformed byte counts as a one-byte character
// with code point 0xFFFD, which is a word character (better kept than silently dropped).
size_t utf8_at(std::string_view text, size_t at, uint32_t& code_point) {
  const unsigned char lead = static_cast<unsigned char>(text[at]);
  size_t length = lead >= 0xF0 && lead < 0xF8 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0;
  if (length == 0 || at + length > text.size()) {
    code_point = 0xFFFD;
    return 1;
  }
  code_point = lead & (0x7F >> length);
  for (size_t i = 1; i < length; ++i) {
    const unsigned char next = static_cast<unsigned char>(text[at + i]);
    if ((next & 0xC0) != 0x80) {
      code_point = 0xFFFD;
      return 1;
    }
    code_point = (code_point << 6) | (next & 0x3F);
  }
  return length;
}

// Calls visit(token) for each token of `text` (lowercased into `token`) until visit returns false.
template <typename Visit>
void for_each_token(std::string_view text, std::string& token, Visit&& visit) {
  token.clear();
  auto flush = [&]() {
    if (token.empty()) return true;
    const bool more = visit(static_cast<const std::string&>(token));
    token.clear();
    return more;
  };
  size_t at = 0;
  while (at < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[at]);
    if (c < 0x80) {
      if (is_ascii_word(c)) {
        token += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      } else {
        if (!flush()) return;
        if (is_punctuation_token(c)) {
          token += static_cast<char>(c);
          if (!flush()) return;
        }
      }
      ++at;
      continue;
    }
    uint32_t code_point = 0;
    const size_t length = utf8_at(text, at, code_point);
    if (is_separator_code_point(code_point)) {
      if (!flush()) return;
    } else if (code_point >= 0xC0 && code_point <= 0xDE && code_point != 0xD7 && length == 2) {
      // Latin-1 capitals À-Þ: their lowercase is 0x20 above, in the same two-byte form.
      token += text[at];
      token += static_cast<char>(static_cast<unsigned char>(text[at + 1]) + 0x20);
    } else {
      token.append(text.substr(at, length));
    }
    at += length;
  }
  flush();
}

}  // namespace

// ---- news.tsv ----

NewsCatalog read_news(const std::string& path) {
  const std::string storage = read_file(path);
  const std::string_view text = without_byte_order_mark(storage);
  const std::string name = display_name(path);
  NewsCatalog news;
  news.source = path;
  std::vector<std::string_view> fields;
  for_each_line(text, [&](std::string_view line, int64_t number) {
    if (trim(line).empty()) return;
    const LineContext where{name, number};
    split_tab_fields(line, 8, where, fields);
    const std::string_view id = fields[0];
    if (id.empty()) fail("{}:{}: field 'news id': empty", name, number);
    const int32_t earlier = news.find(id);
    if (earlier >= 0) fail("{}:{}: news id '{}' appears on line {} too", name, number, id, news.lines[earlier]);
    news.ids.get_or_add(id);
    news.categories.emplace_back(fields[1]);
    news.subcategories.emplace_back(fields[2]);
    news.titles.emplace_back(fields[3]);
    news.abstracts.emplace_back(fields[4]);
    news.lines.push_back(number);
  });
  if (news.size() == 0) fail("{}: no news (empty file)", name);
  return news;
}

// ---- behaviors.tsv ----

int64_t parse_mind_time(std::string_view text, const LineContext& where) {
  std::string problem;
  const int64_t seconds = try_parse_mind_time(text, problem);
  if (!problem.empty())
    fail("{}:{}: field 'time': cannot parse '{}' as a time like '11/15/2019 8:55:22 AM' ({})", where.file,
         where.line, text, problem);
  return seconds;
}

std::string format_mind_time(int64_t unix_seconds) {
  const int64_t days = unix_seconds >= 0 ? unix_seconds / 86400 : -((-unix_seconds + 86399) / 86400);
  const int64_t second_of_day = unix_seconds - days * 86400;
  int64_t year = 0, month = 0, day = 0;
  civil_from_days(days, year, month, day);
  const int64_t hour_of_day = second_of_day / 3600;
  const int64_t hour = hour_of_day % 12 == 0 ? 12 : hour_of_day % 12;
  return fmt::format("{}/{}/{} {}:{:02}:{:02} {}", month, day, year, hour, second_of_day / 60 % 60,
                     second_of_day % 60, hour_of_day < 12 ? "AM" : "PM");
}

Impressions read_behaviors(const std::string& path, const NewsCatalog& news, const BehaviorsOptions& options) {
  const std::string storage = read_file(path);
  const std::string_view text = without_byte_order_mark(storage);
  const std::string name = display_name(path);
  Impressions impressions;
  impressions.source = path;
  std::unordered_map<int64_t, int64_t> line_of_impression;
  std::vector<std::string_view> fields, values;
  for_each_line(text, [&](std::string_view line, int64_t number) {
    if (trim(line).empty()) return;
    const LineContext where{name, number};
    split_tab_fields(line, 5, where, fields);

    const int64_t impression_id = parse_integer(fields[0], "impression id", where);
    const auto [earlier, inserted] = line_of_impression.emplace(impression_id, number);
    if (!inserted) fail("{}:{}: impression id {} appears on line {} too", name, number, impression_id, earlier->second);
    if (fields[1].empty()) fail("{}:{}: field 'user id': empty", name, number);
    const int64_t time = parse_mind_time(fields[2], where);

    split_space_values(fields[3], "history", "news id", where, values);
    for (std::string_view id : values) impressions.history.push_back(news_index(news, id, "history", where));

    split_space_values(fields[4], "impressions", "candidate", where, values);
    if (values.empty()) fail("{}:{}: field 'impressions': no candidates", name, number);
    for (size_t c = 0; c < values.size(); ++c) {
      std::string_view id = values[c];
      int8_t label = -1;
      if (options.labels) {
        const size_t dash = id.rfind('-');
        if (dash == std::string_view::npos || dash == 0 || dash + 2 != id.size() ||
            (id[dash + 1] != '0' && id[dash + 1] != '1'))
          fail("{}:{}: field 'impressions': candidate {} '{}': expected '<news id>-1' or '<news id>-0' (a file "
               "without click labels, like MIND's test set, is read with labels = false)",
               name, number, c + 1, id);
        label = static_cast<int8_t>(id[dash + 1] - '0');
        id = id.substr(0, dash);
      }
      impressions.candidates.push_back(news_index(news, id, "impressions", where));
      impressions.labels.push_back(label);
    }

    impressions.impression_ids.push_back(impression_id);
    impressions.user.push_back(impressions.users.get_or_add(fields[1]));
    impressions.times.push_back(time);
    impressions.history_offsets.push_back(static_cast<int64_t>(impressions.history.size()));
    impressions.candidate_offsets.push_back(static_cast<int64_t>(impressions.candidates.size()));
    impressions.lines.push_back(number);
  });
  if (impressions.size() == 0) fail("{}: no impressions (empty file)", name);
  return impressions;
}

// ---- words ----

std::vector<std::string> tokenize(std::string_view text) {
  std::vector<std::string> tokens;
  tokenize(text, tokens);
  return tokens;
}

void tokenize(std::string_view text, std::vector<std::string>& tokens) {
  tokens.clear();
  std::string token;
  for_each_token(text, token, [&](const std::string& word) {
    tokens.push_back(word);
    return true;
  });
}

Vocabulary Vocabulary::build(const NewsCatalog& training_news, const VocabularyOptions& options) {
  if (options.min_count < 1) fail("vocabulary: min_count must be >= 1, got {}", options.min_count);
  std::unordered_map<std::string, int64_t> counts;
  std::string token;
  auto count = [&](const std::string& text) {
    for_each_token(text, token, [&](const std::string& word) {
      ++counts[word];
      return true;
    });
  };
  for (int32_t n = 0; n < training_news.size(); ++n) {
    count(training_news.titles[n]);
    if (options.include_abstracts) count(training_news.abstracts[n]);
  }
  std::vector<std::pair<std::string, int64_t>> kept;
  for (auto& [word, seen] : counts)
    if (seen >= options.min_count) kept.emplace_back(word, seen);
  std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  Vocabulary vocabulary;
  vocabulary.words_ = {"<pad>", "<unk>"};
  vocabulary.counts_ = {0, 0};
  vocabulary.index_.reserve(kept.size());
  for (auto& [word, seen] : kept) {
    vocabulary.index_.emplace(word, vocabulary.size());
    vocabulary.words_.push_back(word);
    vocabulary.counts_.push_back(seen);
  }
  return vocabulary;
}

Vocabulary Vocabulary::from_words(std::vector<std::string> words, std::vector<int64_t> counts) {
  if (words.size() < 2 || words.size() != counts.size())
    fail("vocabulary: need padding, unknown and one count per word, got {} words and {} counts", words.size(),
         counts.size());
  Vocabulary vocabulary;
  vocabulary.index_.reserve(words.size());
  for (size_t w = 2; w < words.size(); ++w)
    if (!vocabulary.index_.emplace(words[w], static_cast<int32_t>(w)).second)
      fail("vocabulary: word '{}' appears twice", words[w]);
  vocabulary.words_ = std::move(words);
  vocabulary.counts_ = std::move(counts);
  return vocabulary;
}

int32_t Vocabulary::index(std::string_view word) const {
  const auto it = index_.find(std::string(word));
  return it == index_.end() ? kUnknown : it->second;
}

std::vector<int32_t> Vocabulary::encode(std::string_view text, int32_t max_length) const {
  std::vector<int32_t> out(static_cast<size_t>(std::max(max_length, 0)));
  encode(text, max_length, out.data());
  return out;
}

void Vocabulary::encode(std::string_view text, int32_t max_length, int32_t* out) const {
  if (max_length <= 0) return;
  std::fill(out, out + max_length, kPadding);
  int32_t length = 0;
  std::string token;
  for_each_token(text, token, [&](const std::string& word) {
    const auto it = index_.find(word);
    out[length++] = it == index_.end() ? kUnknown : it->second;
    return length < max_length;
  });
}

NameVocabulary NameVocabulary::build(const std::vector<std::string>& names) {
  std::vector<std::string> sorted;
  for (const std::string& name : names)
    if (!name.empty()) sorted.push_back(name);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  NameVocabulary vocabulary;
  vocabulary.names.reserve(sorted.size() + 1);
  vocabulary.names.emplace_back();
  for (std::string& name : sorted) {
    vocabulary.index.emplace(name, vocabulary.size());
    vocabulary.names.push_back(std::move(name));
  }
  return vocabulary;
}

int32_t NameVocabulary::find(std::string_view name) const {
  const auto it = index.find(std::string(name));
  return it == index.end() ? 0 : it->second;
}

EncodedNews encode_news(const NewsCatalog& news, const Vocabulary& words, const NameVocabulary& categories,
                        const NameVocabulary& subcategories, int32_t title_length, int32_t abstract_length) {
  if (title_length <= 0 || abstract_length < 0)
    fail("encode_news: need title_length > 0 and abstract_length >= 0, got {} and {}", title_length,
         abstract_length);
  EncodedNews encoded;
  encoded.title_length = title_length;
  encoded.abstract_length = abstract_length;
  const int64_t count = news.size();
  encoded.titles.resize(count * title_length);
  encoded.abstracts.resize(count * abstract_length);
  encoded.categories.resize(count);
  encoded.subcategories.resize(count);
  for (int64_t n = 0; n < count; ++n) {
    words.encode(news.titles[n], title_length, encoded.titles.data() + n * title_length);
    if (abstract_length > 0)
      words.encode(news.abstracts[n], abstract_length, encoded.abstracts.data() + n * abstract_length);
    encoded.categories[n] = categories.find(news.categories[n]);
    encoded.subcategories[n] = subcategories.find(news.subcategories[n]);
  }
  return encoded;
}

// ---- word vectors ----

WordVectors read_word_vectors(const std::string& path, const Vocabulary* keep_only, const WordVectorOptions& options) {
  if (options.dimension < 0) fail("{}: dimension must be >= 0, got {}", path, options.dimension);
  if (options.words_with_spaces && options.dimension == 0)
    fail("{}: words_with_spaces needs the dimension set (a line alone cannot tell word from vector)", path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open for reading", path);
  const std::string name = display_name(path);
  WordVectors vectors;
  vectors.dimension = options.dimension;
  std::string dimension_source = options.dimension > 0 ? "as given" : "";
  std::string line;
  std::vector<std::string_view> fields;
  int64_t number = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++number;
    // fastText writes a space after the last value; CRLF files end in '\r'.
    std::string_view text = trim_end(line);
    if (!text.empty() && text.back() == '\r') text = trim_end(text.substr(0, text.size() - 1));
    if (first) text = without_byte_order_mark(text);
    if (text.empty()) continue;
    split_by(text, " ", fields);
    if (first) {
      first = false;
      if (fields.size() == 2 && is_integer(fields[0]) && is_integer(fields[1])) {
        const int64_t header_dimension = parse_integer(fields[1], "dimension", LineContext{name, number});
        if (vectors.dimension > 0 && header_dimension != vectors.dimension)
          fail("{}:{}: the header says dimension {}, {} was given", name, number, header_dimension,
               vectors.dimension);
        if (header_dimension <= 0) fail("{}:{}: the header's dimension {} is not positive", name, number,
                                        header_dimension);
        vectors.dimension = static_cast<int32_t>(header_dimension);
        dimension_source = "from the header";
        continue;
      }
      if (vectors.dimension == 0) {
        if (fields.size() < 2) fail("{}:{}: expected a word and its values, got {} field(s)", name, number,
                                    fields.size());
        vectors.dimension = static_cast<int32_t>(fields.size() - 1);
        dimension_source = fmt::format("from line {}", number);
      }
    }
    const size_t dimension = static_cast<size_t>(vectors.dimension);
    const size_t values = fields.size() - 1;
    if (values < dimension || (values > dimension && !options.words_with_spaces))
      fail("{}:{}: expected {} values, got {} (dimension {}, {})", name, number, dimension, values, dimension,
           dimension_source);
    // The word is everything before the last `dimension` fields (one field unless words_with_spaces).
    const std::string_view first_value = fields[fields.size() - dimension];
    const std::string_view word = trim_end(text.substr(0, static_cast<size_t>(first_value.data() - text.data())));
    if (word.empty()) continue;  // no tokenizer output is empty: such a line can never be used
    if (keep_only && keep_only->index(word) == Vocabulary::kUnknown) continue;
    if (vectors.words.find(word) >= 0) continue;  // the first vector of a repeated word wins
    const size_t offset = vectors.values.size();
    vectors.values.resize(offset + dimension);
    for (size_t v = 0; v < dimension; ++v) {
      const std::string_view field = fields[fields.size() - dimension + v];
      float value = 0;
      const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
      if (field.empty() || error != std::errc() || end != field.data() + field.size() || !std::isfinite(value))
        fail("{}:{}: value {}: cannot parse '{}' as a number", name, number, v + 1, field);
      vectors.values[offset + v] = value;
    }
    vectors.words.get_or_add(word);
  }
  if (in.bad()) fail("{}: read error", path);
  if (vectors.dimension == 0) fail("{}: no vectors (empty file)", name);
  return vectors;
}

PretrainedEmbedding pretrained_embedding(const Vocabulary& vocabulary, const WordVectors& vectors) {
  PretrainedEmbedding embedding;
  embedding.dimension = vectors.dimension;
  const int64_t dimension = vectors.dimension;
  embedding.values.assign(static_cast<size_t>(vocabulary.size() * dimension), 0.0f);
  embedding.found.assign(static_cast<size_t>(vocabulary.size()), 0);
  for (int32_t w = Vocabulary::kUnknown + 1; w < vocabulary.size(); ++w) {
    const int32_t row = vectors.words.find(vocabulary.word(w));
    if (row < 0) continue;
    std::copy(vectors.vector(row), vectors.vector(row) + dimension, embedding.values.begin() + w * dimension);
    embedding.found[w] = 1;
    ++embedding.found_count;
  }
  return embedding;
}

}  // namespace embrec::data
