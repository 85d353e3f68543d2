// Feature readers (items through item_attributes.cpp, users.dat, u.user, csv/tsv tables), attachment to internal
// ids, train-only vocabularies and the mutual information between fields (see features.h). The files are small
// (users.dat 6,040 lines, movies.dat 3,883) and read once per dataset build, so clarity wins over speed here.
#include "embrec/data/features.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "embrec/data/item_attributes.h"
#include "embrec/data/text.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::data {

namespace {

using Row = std::vector<std::vector<std::string>>;  // one list of values per field

const char* side_name(FeatureSide side) { return side == FeatureSide::Items ? "items" : "users"; }
const char* entity_name(FeatureSide side) { return side == FeatureSide::Items ? "item" : "user"; }

std::vector<std::string> one_value(std::string_view value) {
  return value.empty() ? std::vector<std::string>() : std::vector<std::string>{std::string(value)};
}

void add_row(RawFeatures& raw, std::string_view id, Row row, const char* entity, const std::string& id_field,
             const LineContext& where) {
  if (id.empty()) fail("{}:{}: field '{}': empty id", where.file, where.line, id_field);
  if (!raw.by_id.try_emplace(std::string(id), std::move(row)).second)
    fail("{}:{}: {} '{}' appears on an earlier line too", where.file, where.line, entity, id);
}

// ---- items: movies.dat, u.item and the attribute files, read by item_attributes.cpp ----

RawFeatures item_features_of(const std::string& path, FeatureFormat format, const FeatureReadOptions& options) {
  AttributeReadOptions read;
  read.format = format == FeatureFormat::Movies ? "movies" : format == FeatureFormat::UItem ? "uitem" : "auto";
  read.item_map = options.item_map;
  read.genre_names = options.genre_names;
  ItemAttributes attributes = read_item_attributes(path, read);
  const bool movies = attributes.format == "movies" || attributes.format == "uitem";
  if (format == FeatureFormat::Attributes && movies)
    fail("{}: format 'attributes' expects S3-Rec JSON or `item|attr` lines, but the file reads as {}; set format = "
         "\"{}\"",
         display_name(path), attributes.format, attributes.format);
  RawFeatures raw;
  raw.fields = movies ? std::vector<std::string>{"genre", "year"} : std::vector<std::string>{"attribute"};
  raw.multi_valued = movies ? std::vector<uint8_t>{1, 0} : std::vector<uint8_t>{1};
  raw.by_id.reserve(attributes.by_item.size());
  for (auto& [item, values] : attributes.by_item) {
    Row row{std::move(values)};
    if (movies) {
      const auto year = attributes.year_by_item.find(item);
      row.push_back(year == attributes.year_by_item.end() ? std::vector<std::string>() : one_value(year->second));
    }
    raw.by_id.emplace(item, std::move(row));
  }
  return raw;
}

// ---- users: users.dat and u.user ----

const std::vector<std::string> kUserFields = {"age", "gender", "occupation", "zip"};

// The first three characters of a zip code: the US sectional centre (Canadian codes: the forward sortation area).
std::vector<std::string> zip_prefix(std::string_view zip) { return one_value(zip.substr(0, 3)); }

// The MovieLens user files: five fields a line, an integer user id first. `row_of(fields, where)` gives the features
// of one line's (trimmed) fields.
template <typename RowOf>
void read_user_lines(const std::string& name, std::string_view text, std::string_view separator, RawFeatures& raw,
                     RowOf&& row_of) {
  for_each_record(name, text, separator, 5, [&](const std::vector<std::string_view>& fields, const LineContext& where) {
    parse_integer(fields[0], "user_id", where);
    add_row(raw, fields[0], row_of(fields, where), "user", "user_id", where);
  });
}

// users.dat: UserID::Gender::Age::Occupation::Zip-code, age and occupation as ML-1M's codes.
Row users_dat_row(const std::vector<std::string_view>& fields, const LineContext& where) {
  const std::string_view age = fields[2];
  const int64_t code = parse_integer(age, "age", where);
  if (std::find(std::begin(kAgeBucketLowerBounds), std::end(kAgeBucketLowerBounds), code) ==
      std::end(kAgeBucketLowerBounds))
    fail("{}:{}: field 'age': expected an ML-1M age code (1, 18, 25, 35, 45, 50 or 56), got '{}'", where.file,
         where.line, age);
  parse_integer(fields[3], "occupation", where);
  return Row{one_value(age), one_value(fields[1]), one_value(fields[3]), zip_prefix(fields[4])};
}

// u.user: user id|age|gender|occupation|zip code, the age in years.
Row uuser_row(const std::vector<std::string_view>& fields, const LineContext& where) {
  const int64_t age = parse_integer(fields[1], "age", where);
  if (age < 0) fail("{}:{}: field 'age': expected an age in years, got {}", where.file, where.line, age);
  return Row{one_value(age_bucket(age)), one_value(fields[2]), one_value(fields[3]), zip_prefix(fields[4])};
}

// ---- csv / tsv tables with named columns ----

void read_table(const std::string& name, std::string_view text, char delimiter, FeatureSide side,
                const FeatureReadOptions& options, RawFeatures& raw) {
  const std::string id_column =
      !options.id_column.empty() ? options.id_column : std::string(entity_name(side)) + "_id";
  const char* entity = entity_name(side);
  std::vector<std::string_view> fields;
  std::vector<std::string> unquoted;
  std::vector<std::string> header;
  int id = -1;
  std::vector<int> field_of_column;  // column -> field, -1 for the id column
  for_each_line(text, [&](std::string_view line, int64_t number) {
    if (trim(line).empty()) return;
    const LineContext where{name, number};
    if (!split_record(line, delimiter, fields, unquoted))
      fail("{}:{}: unterminated or misplaced '\"' (quoted fields must be whole fields on one line)", name, number);
    if (header.empty()) {
      for (std::string_view field : fields) {
        if (std::find(header.begin(), header.end(), trim(field)) != header.end())
          fail("{}:{}: column '{}' appears twice", name, number, trim(field));
        header.emplace_back(trim(field));
      }
      id = column_index(header, id_column, "id_column", where);
      if (header.size() < 2) fail("{}:{}: no feature columns besides the id column '{}'", name, number, id_column);
      for (int c = 0; c < static_cast<int>(header.size()); ++c) {
        field_of_column.push_back(c == id ? -1 : static_cast<int>(raw.fields.size()));
        if (c == id) continue;
        if (header[c].empty()) fail("{}:{}: column {} has no name", name, number, c + 1);
        raw.fields.push_back(header[c]);
        raw.multi_valued.push_back(0);
      }
      for (const std::string& multi : options.multi_columns) {
        const int c = column_index(header, multi, "multi_columns", where);
        if (c == id) fail("{}:{}: the id column '{}' cannot be one of multi_columns", name, number, multi);
        raw.multi_valued[field_of_column[c]] = 1;
      }
      return;
    }
    if (fields.size() != header.size())
      fail_field_count(where, header.size(), std::string_view(&delimiter, 1), fields.size());
    Row row(raw.fields.size());
    for (size_t c = 0; c < header.size(); ++c) {
      const int field = field_of_column[c];
      if (field < 0) continue;
      row[field] = raw.multi_valued[field]
                       ? split_values(fields[c], options.separator, header[c].c_str(), "value", where)
                       : one_value(fields[c]);
    }
    add_row(raw, fields[id], std::move(row), entity, id_column, where);
  });
  if (raw.by_id.empty()) fail("{}: no {}s (empty file or header only)", name, entity);
}

// ---- format resolution ----

FeatureFormat user_format_of(const std::string& name, std::string_view text) {
  std::string_view first;
  for_each_line(text, [&](std::string_view line, int64_t) {
    if (first.empty()) first = trim(line);
  });
  if (first.find("::") != std::string_view::npos) return FeatureFormat::Users;
  if (first.find('|') != std::string_view::npos) return FeatureFormat::UUser;
  fail("{}: cannot tell the user feature format from the first line; set format (users, uuser, csv or tsv)", name);
}

void check_options_apply(FeatureFormat format, const FeatureReadOptions& options, const std::string& name) {
  const bool table = format == FeatureFormat::Csv || format == FeatureFormat::Tsv;
  const bool movies = format == FeatureFormat::Movies || format == FeatureFormat::UItem;
  const std::string& format_name = name_of(kFeatureFormatNames, format);
  if (!table && (!options.id_column.empty() || !options.multi_columns.empty()))
    fail("{}: id_column and multi_columns apply to csv and tsv only, not to format '{}'", name, format_name);
  if (!movies && format != FeatureFormat::Auto && (!options.item_map.empty() || !options.genre_names.empty()))
    fail("{}: item_map and genre_names apply to movies and uitem only, not to format '{}'", name, format_name);
}

}  // namespace

FeatureFormat format_by_extension(FeatureFormat format, const std::string& path) {
  if (format != FeatureFormat::Auto) return format;
  std::string extension = std::filesystem::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension == ".csv" ? FeatureFormat::Csv : extension == ".tsv" ? FeatureFormat::Tsv : format;
}

bool format_describes(FeatureFormat format, FeatureSide side) {
  switch (format) {
    case FeatureFormat::Movies:
    case FeatureFormat::UItem:
    case FeatureFormat::Attributes: return side == FeatureSide::Items;
    case FeatureFormat::Users:
    case FeatureFormat::UUser: return side == FeatureSide::Users;
    default: return true;
  }
}

std::string age_bucket(int64_t age_years) {
  int bucket = kAgeBucketLowerBounds[0];
  for (int lower : kAgeBucketLowerBounds)
    if (age_years >= lower) bucket = lower;
  return std::to_string(bucket);
}

RawFeatures read_features(const std::string& path, FeatureSide side, const FeatureReadOptions& options) {
  const std::string name = display_name(path);
  if (!format_describes(options.format, side))
    fail("{}: format '{}' does not describe {}", name, name_of(kFeatureFormatNames, options.format), side_name(side));
  FeatureFormat format = format_by_extension(options.format, path);
  if (side == FeatureSide::Items && format != FeatureFormat::Csv && format != FeatureFormat::Tsv) {
    check_options_apply(format, options, name);  // item_attributes.cpp checks item_map and genre_names
    return item_features_of(path, format, options);
  }
  const std::string storage = read_file(path);
  const std::string_view text = without_byte_order_mark(storage);
  if (format == FeatureFormat::Auto) format = user_format_of(name, text);
  check_options_apply(format, options, name);
  RawFeatures raw;
  if (format == FeatureFormat::Users || format == FeatureFormat::UUser) {
    raw.fields = kUserFields;
    raw.multi_valued.assign(kUserFields.size(), 0);
    if (format == FeatureFormat::Users)
      read_user_lines(name, text, "::", raw, users_dat_row);
    else
      read_user_lines(name, text, "|", raw, uuser_row);
    if (raw.by_id.empty()) fail("{}: no users (empty file)", name);
  } else {
    read_table(name, text, format == FeatureFormat::Csv ? ',' : '\t', side, options, raw);
  }
  return raw;
}

Features attach_features(const RawFeatures& raw, const IdMap& ids) {
  Features features;
  features.fields = raw.fields;
  features.multi_valued = raw.multi_valued;
  std::vector<const Row*> rows(ids.size(), nullptr);
  for (const auto& [id, row] : raw.by_id) {
    const int32_t entity = ids.find(id);
    if (entity >= 0) rows[entity] = &row;
  }
  features.offsets.reserve(static_cast<size_t>(ids.size()) * raw.fields.size() + 1);
  for (const Row* row : rows) {
    for (size_t field = 0; field < raw.fields.size(); ++field) {
      if (row) features.values.insert(features.values.end(), (*row)[field].begin(), (*row)[field].end());
      features.offsets.push_back(static_cast<int64_t>(features.values.size()));
    }
  }
  return features;
}

// ---- vocabularies ----

namespace {

EncodedField encode_field(const Features& features, int32_t field, const std::vector<uint8_t>& in_training,
                          int min_count) {
  EncodedField encoded;
  encoded.name = features.fields[field];
  encoded.multi_valued = features.multi_valued[field] != 0;
  std::unordered_map<std::string, int64_t> counts;
  for (int32_t entity = 0; entity < features.entity_count(); ++entity)
    if (in_training[entity])
      for (const std::string* value = features.begin(entity, field); value != features.end(entity, field); ++value)
        ++counts[*value];
  std::vector<std::pair<std::string, int64_t>> known;
  for (auto& [value, count] : counts)
    if (count >= min_count) known.emplace_back(value, count);
  std::sort(known.begin(), known.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  encoded.vocabulary = {"<missing>", "<oov>"};
  for (auto& [value, count] : known) {
    encoded.index.emplace(value, encoded.vocabulary_size());
    encoded.vocabulary.push_back(std::move(value));
  }
  if (encoded.multi_valued) encoded.offsets.push_back(0);
  for (int32_t entity = 0; entity < features.entity_count(); ++entity) {
    if (!encoded.multi_valued && features.value_count(entity, field) == 0) encoded.indices.push_back(kMissingIndex);
    for (const std::string* value = features.begin(entity, field); value != features.end(entity, field); ++value)
      encoded.indices.push_back(encoded.index_of(*value));
    if (encoded.multi_valued) encoded.offsets.push_back(static_cast<int64_t>(encoded.indices.size()));
  }
  if (!encoded.multi_valued && encoded.indices.size() != static_cast<size_t>(features.entity_count()))
    fail("encode_features: single-valued field '{}' holds several values for an entity", encoded.name);
  return encoded;
}

}  // namespace

int32_t EncodedField::index_of(std::string_view value) const {
  const auto found = index.find(std::string(value));
  return found == index.end() ? kOutOfVocabularyIndex : found->second;
}

const EncodedField& EncodedFeatures::field(std::string_view name) const {
  std::string names;
  for (const EncodedField& candidate : fields) {
    if (candidate.name == name) return candidate;
    names += (names.empty() ? "" : ", ") + candidate.name;
  }
  fail("unknown feature field '{}' (fields: {})", name, names);
}

EncodedFeatures encode_features(const Features& features, const std::vector<uint8_t>& in_training, int min_count) {
  if (in_training.size() != static_cast<size_t>(features.entity_count()))
    fail("encode_features: {} training flags for {} entities", in_training.size(), features.entity_count());
  if (min_count < 1) fail("encode_features: min_count must be at least 1, got {}", min_count);
  EncodedFeatures encoded;
  encoded.entity_count = features.entity_count();
  for (int32_t field = 0; field < features.field_count(); ++field)
    encoded.fields.push_back(encode_field(features, field, in_training, min_count));
  return encoded;
}

std::vector<std::vector<int32_t>> encode_entity(const EncodedFeatures& encoded, const FeatureValues& values) {
  // The values come from a caller (a request): mistakes in them are InputErrors.
  for (const auto& [name, given] : values) {
    try {
      encoded.field(name);  // an unknown name is an Error listing the fields
    } catch (const InputError&) {
      throw;
    } catch (const Error& error) {
      throw InputError(error.what());
    }
  }
  std::vector<std::vector<int32_t>> indices(encoded.fields.size());
  for (size_t f = 0; f < encoded.fields.size(); ++f) {
    const EncodedField& field = encoded.fields[f];
    const auto given = values.find(field.name);
    const size_t count = given == values.end() ? 0 : given->second.size();
    if (!field.multi_valued && count > 1)
      throw InputError(fmt::format("feature field '{}' is single-valued, got {} values", field.name, count));
    if (!field.multi_valued && count == 0) indices[f].push_back(kMissingIndex);
    for (size_t v = 0; v < count; ++v) indices[f].push_back(field.index_of(given->second[v]));
  }
  return indices;
}

std::vector<uint8_t> items_in(const Sequences& train, int32_t item_count) {
  std::vector<uint8_t> seen(item_count, 0);
  for (int32_t item : train.items) seen[item] = 1;
  return seen;
}

std::vector<uint8_t> users_with_interactions(const Sequences& train) {
  std::vector<uint8_t> active(train.user_count(), 0);
  for (int32_t user = 0; user < train.user_count(); ++user) active[user] = train.length(user) > 0;
  return active;
}

// ---- mutual information ----

namespace {

// An entity's indices in a field, an empty list standing for {kMissingIndex}.
struct IndexList {
  const int32_t* first;
  const int32_t* last;
  IndexList(const EncodedField& field, int32_t entity) : first(field.begin(entity)), last(field.end(entity)) {
    if (first == last) {
      first = &kMissingIndex;
      last = first + 1;
    }
  }
  double size() const { return static_cast<double>(last - first); }
};

// p(x) of one field: each training entity's weight 1/N spread over its values.
std::vector<double> marginal(const EncodedField& field, const std::vector<int32_t>& training) {
  std::vector<double> p(field.vocabulary_size(), 0.0);
  const double weight = 1.0 / static_cast<double>(training.size());
  for (int32_t entity : training) {
    const IndexList values(field, entity);
    for (const int32_t* x = values.first; x != values.last; ++x) p[*x] += weight / values.size();
  }
  return p;
}

double entropy(const std::vector<double>& p) {
  double h = 0;
  for (double px : p)
    if (px > 0) h -= px * std::log(px);
  return h;
}

double mutual_information(const EncodedField& a, const EncodedField& b, const std::vector<double>& pa,
                          const std::vector<double>& pb, const std::vector<int32_t>& training) {
  std::unordered_map<uint64_t, double> joint;
  const double weight = 1.0 / static_cast<double>(training.size());
  for (int32_t entity : training) {
    const IndexList as(a, entity), bs(b, entity);
    const double pair_weight = weight / (as.size() * bs.size());
    for (const int32_t* x = as.first; x != as.last; ++x)
      for (const int32_t* y = bs.first; y != bs.last; ++y)
        joint[(static_cast<uint64_t>(*x) << 32) | static_cast<uint32_t>(*y)] += pair_weight;
  }
  double information = 0;
  for (const auto& [key, pxy] : joint)
    information += pxy * std::log(pxy / (pa[key >> 32] * pb[key & 0xFFFFFFFFu]));
  return std::max(0.0, information);  // >= 0 in exact arithmetic (a KL divergence); rounding may dip below
}

}  // namespace

std::vector<std::vector<double>> field_mutual_information(const EncodedFeatures& encoded,
                                                          const std::vector<uint8_t>& in_training) {
  if (in_training.size() != static_cast<size_t>(encoded.entity_count))
    fail("field_mutual_information: {} training flags for {} entities", in_training.size(), encoded.entity_count);
  const size_t field_count = encoded.fields.size();
  std::vector<std::vector<double>> information(field_count, std::vector<double>(field_count, 0.0));
  std::vector<int32_t> training;
  for (int32_t entity = 0; entity < encoded.entity_count; ++entity)
    if (in_training[entity]) training.push_back(entity);
  if (training.empty()) return information;
  std::vector<std::vector<double>> marginals;
  for (const EncodedField& field : encoded.fields) marginals.push_back(marginal(field, training));
  for (size_t a = 0; a < field_count; ++a) {
    information[a][a] = entropy(marginals[a]);
    for (size_t b = a + 1; b < field_count; ++b)
      information[a][b] = information[b][a] =
          mutual_information(encoded.fields[a], encoded.fields[b], marginals[a], marginals[b], training);
  }
  return information;
}

std::vector<std::vector<int32_t>> correlated_groups(const std::vector<std::vector<double>>& mutual_information,
                                                    int32_t group_size) {
  const int32_t field_count = static_cast<int32_t>(mutual_information.size());
  if (group_size < 1 || group_size > field_count)
    fail("correlated_groups: group_size must be in 1..{} (the field count), got {}", field_count, group_size);
  std::vector<std::vector<int32_t>> groups(field_count);
  for (int32_t seed = 0; seed < field_count; ++seed) {
    std::vector<int32_t> others;
    for (int32_t f = 0; f < field_count; ++f)
      if (f != seed) others.push_back(f);
    const std::vector<double>& row = mutual_information[seed];
    std::stable_sort(others.begin(), others.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
    groups[seed].push_back(seed);
    groups[seed].insert(groups[seed].end(), others.begin(), others.begin() + (group_size - 1));
  }
  return groups;
}

}  // namespace embrec::data
