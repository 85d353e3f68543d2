// Item and user features: readers for MovieLens (movies.dat, u.item, users.dat, u.user), the S3-Rec attribute files
// and csv/tsv tables of one's own, keyed by external id and attached to a Dataset's internal ids; vocabularies built
// on training entities only; and the mutual information between fields by which correlated feature masking groups
// them.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "embrec/data/dataset.h"
#include "embrec/util/config.h"

namespace embrec::data {

enum class FeatureSide { Items, Users };

// The feature file formats and the fields each gives:
//   movies      ML-1M movies.dat `id::Title (1995)::Genre|Genre`: genre (multi), year (from the title's "(1995)")
//   uitem       ML-100K u.item: genre (multi; the 19 flags, named by u.genre), year (from "01-Jan-1995")
//   attributes  S3-Rec *_item2attributes.json or `item|attr|attr` lines: attribute (multi, opaque ids)
//   users       ML-1M users.dat `user::gender::age::occupation::zip`: age (the file's code, already a bucket),
//               gender, occupation (the file's code), zip (its first 3 characters)
//   uuser       ML-100K u.user `user|age|gender|occupation|zip`: age (bucketed as ML-1M's codes, see
//               kAgeBucketLowerBounds), gender, occupation, zip (first 3 characters)
//   csv / tsv   a header row naming the columns: the id column, every other column a field (single-valued unless
//               listed in multi_columns)
//   auto        .csv / .tsv by extension; else for items the content as read_item_attributes detects it (movies,
//               uitem, or json / text = attributes), for users a first line holding '::' = users, '|' = uuser.
// The readers reuse item_attributes.h for everything about items (item map, u.genre, format detection).
enum class FeatureFormat { Auto, Movies, UItem, Attributes, Users, UUser, Csv, Tsv };
inline const Names<FeatureFormat> kFeatureFormatNames = {
    {"auto", FeatureFormat::Auto},   {"movies", FeatureFormat::Movies}, {"uitem", FeatureFormat::UItem},
    {"attributes", FeatureFormat::Attributes}, {"users", FeatureFormat::Users},   {"uuser", FeatureFormat::UUser},
    {"csv", FeatureFormat::Csv},     {"tsv", FeatureFormat::Tsv}};

// auto with a .csv or .tsv path is csv or tsv; any other format stays as it is (auto for the rest is decided by
// content when the file is read).
FeatureFormat format_by_extension(FeatureFormat format, const std::string& path);

// Whether `format` can describe `side`'s entities (auto, csv and tsv describe either side).
bool format_describes(FeatureFormat format, FeatureSide side);

// ML-1M's age codes, each the lower bound of its bucket except 1 (under 18): u.user ages are put in the same buckets.
inline constexpr int kAgeBucketLowerBounds[] = {1, 18, 25, 35, 45, 50, 56};
// The ML-1M code of an age in years: under 18 -> "1", 18-24 -> "18", ..., 50-55 -> "50", 56 and over -> "56".
std::string age_bucket(int64_t age_years);

struct FeatureReadOptions {
  FeatureFormat format = FeatureFormat::Auto;
  std::string item_map;     // movies / uitem: `item<TAB>movie_id` lines mapping the log's items to movie ids
  std::string genre_names;  // uitem: u.genre, naming the 19 flags (else genre0..genre18)
  std::string id_column;    // csv / tsv: the column of external ids; empty: "item_id" for items, "user_id" for users
  std::vector<std::string> multi_columns;  // csv / tsv: the columns holding several values
  std::string separator = "|";             // csv / tsv: between the values of a multi-valued column
};

// Features as read: the fields, and per external id (as the interaction log writes it) one list of values per field.
struct RawFeatures {
  std::vector<std::string> fields;
  std::vector<uint8_t> multi_valued;
  std::unordered_map<std::string, std::vector<std::vector<std::string>>> by_id;
};

// Reads a feature file. Every malformed line is an Error naming file, line and field, e.g.
//   "users.dat:3: field 'age': expected an ML-1M age code (1, 18, 25, 35, 45, 50 or 56), got '30'"
//   "u.user:2: expected 5 fields separated by '|', got 4"
//   "f.csv:1: unknown column 'tags' for multi_columns (columns: item_id, genre, year)"
//   "f.csv:4: item 'x' appears on an earlier line too"
// Empty values are missing values (no value), not errors; an empty value between two separators of a multi-valued
// field is an error. A format for the other side ("users" for items) is an error.
RawFeatures read_features(const std::string& path, FeatureSide side, const FeatureReadOptions& options = {});

// The features per internal id of `ids`: an id without a row has no values; rows whose id is not in `ids` (movies
// nobody rated, users removed by the k-core) are dropped.
Features attach_features(const RawFeatures& raw, const IdMap& ids);

// [data.item_features] / [data.user_features] (data/load.h): the file and how to read it; no path = no features.
struct FeatureSource {
  std::string path;
  FeatureReadOptions read;

  bool configured() const { return !path.empty(); }
};

// ---- vocabularies ----

inline constexpr int32_t kMissingIndex = 0;          // the entity has no value in this field
inline constexpr int32_t kOutOfVocabularyIndex = 1;  // a value not in the vocabulary (never seen in training)

// One field encoded as vocabulary indices.
struct EncodedField {
  std::string name;
  bool multi_valued = false;
  // Index -> value: [0] "<missing>", [1] "<oov>", then the known values by descending training count, ties by value.
  std::vector<std::string> vocabulary;
  // The known values' indices (2..vocabulary_size() - 1).
  std::unordered_map<std::string, int32_t> index;
  // Single-valued: one index per entity (kMissingIndex when it has none); offsets empty. Multi-valued: entity e's
  // indices are indices[offsets[e] .. offsets[e + 1]) (none when it has no value).
  std::vector<int64_t> offsets;
  std::vector<int32_t> indices;

  int32_t vocabulary_size() const { return static_cast<int32_t>(vocabulary.size()); }
  // A value's index; kOutOfVocabularyIndex when it is not in the vocabulary.
  int32_t index_of(std::string_view value) const;
  const int32_t* begin(int32_t entity) const { return indices.data() + (multi_valued ? offsets[entity] : entity); }
  const int32_t* end(int32_t entity) const {
    return indices.data() + (multi_valued ? offsets[entity + 1] : entity + 1);
  }
};

struct EncodedFeatures {
  std::vector<EncodedField> fields;
  int32_t entity_count = 0;

  // The field named `name`; an Error naming it and listing the fields when there is none.
  const EncodedField& field(std::string_view name) const;
  int32_t index_of(std::string_view field_name, std::string_view value) const {
    return field(field_name).index_of(value);
  }
};

// Vocabularies from the training entities only (in_training[e] != 0; one flag per entity): a value counted fewer
// than `min_count` times over their values is out of vocabulary, and so is every value only other entities (cold
// items) hold. Every entity is then encoded, training or not.
EncodedFeatures encode_features(const Features& features, const std::vector<uint8_t>& in_training, int min_count = 1);

// A fresh entity's features by name (a cold item in a request): field -> values. One index list per field, in
// field order: single-valued fields exactly one index (kMissingIndex when absent), multi-valued ones an index per
// value (none when absent); unknown values are kOutOfVocabularyIndex. An unknown field, or two values for a
// single-valued field, is an InputError naming the field.
using FeatureValues = std::map<std::string, std::vector<std::string>>;
std::vector<std::vector<int32_t>> encode_entity(const EncodedFeatures& encoded, const FeatureValues& values);

// Training flags for encode_features: the items that occur in `train`, and the users whose train list is not empty.
std::vector<uint8_t> items_in(const Sequences& train, int32_t item_count);
std::vector<uint8_t> users_with_interactions(const Sequences& train);

// ---- correlated feature masking ----

// The mutual information, in nats, between every two fields over the training entities (in_training[e] != 0, N of
// them), as a symmetric [fields x fields] matrix:
//   I(a; b) = sum over (x, y) of p(x, y) ln(p(x, y) / (p(x) p(y))),
// where each training entity carries weight 1/N, spread evenly over the |A|·|B| pairs (x, y) of A × B, A and B its
// index lists in fields a and b (an empty list counts as {kMissingIndex}, so "missing" is a value like any other);
// p(x) and p(y) are the marginals of that joint. Single-valued fields give the usual plug-in estimate. The diagonal
// holds each field's entropy H(a) = -sum p(x) ln p(x) (= I(a; a) for a single-valued field). All zeros without
// training entities.
std::vector<std::vector<double>> field_mutual_information(const EncodedFeatures& encoded,
                                                          const std::vector<uint8_t>& in_training);

// Correlated feature masking (Yao et al., "Self-supervised Learning for Large-scale Item Recommendations", CIKM 2021,
// §3.3): a seed field is masked together with the fields most correlated with it, so that the model cannot read a
// masked field back from a correlated one it still sees. For each seed s, groups[s] is s followed by the
// group_size - 1 other fields of highest I(s; f) (ties by field order). The paper masks about half the fields:
// group_size = half_of_fields(field_count), rounded up so that with 3 fields the seed keeps its closest partner.
// 1 <= group_size <= field count.
std::vector<std::vector<int32_t>> correlated_groups(const std::vector<std::vector<double>>& mutual_information,
                                                    int32_t group_size);
inline int32_t half_of_fields(int32_t field_count) { return (field_count + 1) / 2; }

}  // namespace embrec::data
