// Item and user features: each reader on small hand-written files (years, age buckets, zip prefixes, csv tables),
// errors naming file, line and field, attachment to internal ids, train-only vocabularies, fresh entities encoded by
// name, and the mutual information by which correlated feature masking groups fields.
#include "embrec/data/features.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "embrec/data/prepare.h"
#include "embrec/data/readers.h"
#include "embrec/util/error.h"
#include "file_fixture.h"
#include "../util/error_of.h"

namespace embrec::data {
namespace {

namespace fs = std::filesystem;
using testing::uitem_line;
using Strings = std::vector<std::string>;
using Lists = std::vector<std::vector<std::string>>;

FeatureReadOptions with_format(FeatureFormat format) {
  FeatureReadOptions options;
  options.format = format;
  return options;
}

class FeaturesTest : public testing::FileTest {
 protected:
  FeaturesTest() : FileTest("features") {}
  std::string features_error(const std::string& path, FeatureSide side, const FeatureReadOptions& options = {}) {
    return error_of([&] { read_features(path, side, options); });
  }
};

TEST_F(FeaturesTest, MoviesDatGivesGenresAndTheYearEndingTheTitle) {
  const std::string movies = write("movies.dat",
                                   "1::Toy Story (1995)::Animation|Children's|Comedy\n"
                                   "2::Rocky Horror | Picture (Show), The (1975)::Comedy|Horror\n"
                                   "3::A title without a year::Drama\n");
  FeatureReadOptions options;
  options.item_map = write("item_map.tsv", "item\tmovie_id\n10\t2\n11\t3\n12\t1\n");
  const RawFeatures raw = read_features(movies, FeatureSide::Items, options);
  EXPECT_EQ(raw.fields, (Strings{"genre", "year"}));
  EXPECT_EQ(raw.multi_valued, (std::vector<uint8_t>{1, 0}));
  ASSERT_EQ(raw.by_id.size(), 3u);  // keyed by the log's item ids, through the map
  EXPECT_EQ(raw.by_id.at("10"), (Lists{{"Comedy", "Horror"}, {"1975"}}));
  EXPECT_EQ(raw.by_id.at("11"), (Lists{{"Drama"}, {}}));
  EXPECT_EQ(raw.by_id.at("12"), (Lists{{"Animation", "Children's", "Comedy"}, {"1995"}}));
}

TEST_F(FeaturesTest, UItemGivesNamedGenresAndTheReleaseYear) {
  const std::string uitem = write("u.item", uitem_line(1, "A (1995)", {3, 4, 5}) + uitem_line(2, "B", {8}, "") +
                                                uitem_line(3, "C", {}, "04-Mar-1922"));
  FeatureReadOptions options;
  options.genre_names = write("u.genre",
                              "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\n"
                              "Documentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\n"
                              "Romance|14\nSci-Fi|15\nThriller|16\nWar|17\nWestern|18\n");
  const RawFeatures raw = read_features(uitem, FeatureSide::Items, options);
  EXPECT_EQ(raw.fields, (Strings{"genre", "year"}));
  EXPECT_EQ(raw.by_id.at("1"), (Lists{{"Animation", "Children's", "Comedy"}, {"1995"}}));
  EXPECT_EQ(raw.by_id.at("2"), (Lists{{"Drama"}, {}}));  // no release date: no year
  EXPECT_EQ(raw.by_id.at("3"), (Lists{{}, {"1922"}}));
}

TEST_F(FeaturesTest, AttributeFilesGiveOneMultiValuedField) {
  const RawFeatures json =
      read_features(write("x_item2attributes.json", R"({"4": [3, 1], "7": ["brand:x"]})"), FeatureSide::Items);
  EXPECT_EQ(json.fields, (Strings{"attribute"}));
  EXPECT_EQ(json.multi_valued, (std::vector<uint8_t>{1}));
  EXPECT_EQ(json.by_id.at("4"), (Lists{{"3", "1"}}));
  const RawFeatures text = read_features(write("a.txt", "B001|red|round\n"), FeatureSide::Items,
                                         with_format(FeatureFormat::Attributes));
  EXPECT_EQ(text.by_id.at("B001"), (Lists{{"red", "round"}}));
}

TEST_F(FeaturesTest, UsersDatKeepsTheAgeCodeAndCutsTheZipToThreeCharacters) {
  const RawFeatures raw =
      read_features(write("users.dat", "1::F::1::10::48067\n2::M::56::16::70072\n\n3::M::25::15::55117-4032\n"),
                    FeatureSide::Users);
  EXPECT_EQ(raw.fields, (Strings{"age", "gender", "occupation", "zip"}));
  EXPECT_EQ(raw.multi_valued, (std::vector<uint8_t>{0, 0, 0, 0}));
  EXPECT_EQ(raw.by_id.at("1"), (Lists{{"1"}, {"F"}, {"10"}, {"480"}}));
  EXPECT_EQ(raw.by_id.at("2"), (Lists{{"56"}, {"M"}, {"16"}, {"700"}}));
  EXPECT_EQ(raw.by_id.at("3"), (Lists{{"25"}, {"M"}, {"15"}, {"551"}}));
}

TEST_F(FeaturesTest, UUserAgesAreBucketedAsMovieLens1mCodes) {
  EXPECT_EQ(age_bucket(0), "1");
  EXPECT_EQ(age_bucket(17), "1");
  EXPECT_EQ(age_bucket(18), "18");
  EXPECT_EQ(age_bucket(24), "18");
  EXPECT_EQ(age_bucket(25), "25");
  EXPECT_EQ(age_bucket(44), "35");
  EXPECT_EQ(age_bucket(49), "45");
  EXPECT_EQ(age_bucket(55), "50");
  EXPECT_EQ(age_bucket(56), "56");
  EXPECT_EQ(age_bucket(73), "56");
  const RawFeatures raw = read_features(
      write("u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n3|7|M|student|T8H1N\n4|30|F||\n"),
      FeatureSide::Users);
  EXPECT_EQ(raw.fields, (Strings{"age", "gender", "occupation", "zip"}));
  EXPECT_EQ(raw.by_id.at("1"), (Lists{{"18"}, {"M"}, {"technician"}, {"857"}}));
  EXPECT_EQ(raw.by_id.at("2"), (Lists{{"50"}, {"F"}, {"other"}, {"940"}}));
  EXPECT_EQ(raw.by_id.at("3"), (Lists{{"1"}, {"M"}, {"student"}, {"T8H"}}));
  EXPECT_EQ(raw.by_id.at("4"), (Lists{{"25"}, {"F"}, {}, {}}));  // empty fields are missing values
}

TEST_F(FeaturesTest, CsvTablesMakeEveryOtherColumnAFieldWithNamedMultiValuedColumns) {
  FeatureReadOptions options;
  options.multi_columns = {"tags"};
  const RawFeatures csv = read_features(
      write("items.csv", "tags,item_id,brand\nred|round,B1,acme\n,B2,\"Smith, Ltd\"\n blue ,B3,\n"),
      FeatureSide::Items, options);
  EXPECT_EQ(csv.fields, (Strings{"tags", "brand"}));  // the id column is not a field
  EXPECT_EQ(csv.multi_valued, (std::vector<uint8_t>{1, 0}));
  EXPECT_EQ(csv.by_id.at("B1"), (Lists{{"red", "round"}, {"acme"}}));
  EXPECT_EQ(csv.by_id.at("B2"), (Lists{{}, {"Smith, Ltd"}}));
  EXPECT_EQ(csv.by_id.at("B3"), (Lists{{"blue"}, {}}));
  // tsv, an id column of one's own and another separator; a '|' in a single-valued column is part of its value.
  FeatureReadOptions tsv;
  tsv.format = FeatureFormat::Tsv;
  tsv.id_column = "uid";
  tsv.multi_columns = {"langs"};
  tsv.separator = ";";
  const RawFeatures users =
      read_features(write("users.txt", "uid\tlangs\tnote\nu1\ten;fr\ta|b\n"), FeatureSide::Users, tsv);
  EXPECT_EQ(users.by_id.at("u1"), (Lists{{"en", "fr"}, {"a|b"}}));
}

// A file and the error reading it gives.
struct BadFile {
  const char* name;
  const char* text;
  const char* error;
};

TEST_F(FeaturesTest, MalformedUserFilesNameFileLineAndField) {
  const BadFile files[] = {
      {"users.dat", "1::F::1::10::48067\n2::M::56::16\n", "users.dat:2: expected 5 fields separated by '::', got 4"},
      {"u2.dat", "1::F::30::10::48067\n",
       "u2.dat:1: field 'age': expected an ML-1M age code (1, 18, 25, 35, 45, 50 or 56), got '30'"},
      {"u3.dat", "1::F::1::x::48067\n", "u3.dat:1: field 'occupation': cannot parse 'x' as an integer"},
      {"u4.dat", "1::F::1::1::4\n\n1::M::1::1::5\n", "u4.dat:3: user '1' appears on an earlier line too"},
      {"u5.dat", "u1::F::1::1::4\n", "u5.dat:1: field 'user_id': cannot parse 'u1' as an integer"},
      {"u.user", "1|24|M|technician|85711\n2|x|F|other|94043\n",
       "u.user:2: field 'age': cannot parse 'x' as an integer"},
      {"u2.user", "1|-3|M|technician|85711\n", "u2.user:1: field 'age': expected an age in years, got -3"},
      {"u3.user", "1|24|M|technician\n", "u3.user:1: expected 5 fields separated by '|', got 4"},
      {"who.txt", "1 24 M\n",
       "who.txt: cannot tell the user feature format from the first line; set format (users, uuser, csv or tsv)"},
  };
  for (const BadFile& file : files)
    EXPECT_EQ(features_error(write(file.name, file.text), FeatureSide::Users), file.error);
}

TEST_F(FeaturesTest, MalformedTablesNameFileLineAndColumn) {
  const BadFile files[] = {
      {"a.csv", "item_id,genre\n1,x\n", "a.csv:1: unknown column 'tags' for multi_columns (columns: item_id, genre)"},
      {"b.csv", "id,tags\n1,x\n", "b.csv:1: unknown column 'item_id' for id_column (columns: id, tags)"},
      {"c.csv", "item_id,tags\n1,x\n2,x,y\n", "c.csv:3: expected 2 fields separated by ',', got 3"},
      {"d.csv", "item_id,tags\n1,x||y\n", "d.csv:2: field 'tags': value 2 is empty (two '|' in a row?)"},
      {"e.csv", "item_id,tags\n1,x\n\n1,y\n", "e.csv:4: item '1' appears on an earlier line too"},
      {"f.csv", "item_id,tags\n,x\n", "f.csv:2: field 'item_id': empty id"},
      {"g.csv", "item_id\n1\n", "g.csv:1: no feature columns besides the id column 'item_id'"},
      {"h.csv", "item_id,tags\n", "h.csv: no items (empty file or header only)"},
      {"i.csv", "item_id,a,a\n", "i.csv:1: column 'a' appears twice"},
      {"j.tsv", "item_id\ttags\n1\t\"x\n", "j.tsv:2: unterminated or misplaced '\"' (quoted fields must be whole "
                                              "fields on one line)"},
  };
  FeatureReadOptions options;
  options.multi_columns = {"tags"};
  for (const BadFile& file : files)
    EXPECT_EQ(features_error(write(file.name, file.text), FeatureSide::Items, options), file.error);
}

TEST_F(FeaturesTest, FormatsAndOptionsThatDoNotFitAreErrors) {
  const std::string movies = write("movies.dat", "1::Heat (1995)::Action\n");
  EXPECT_EQ(features_error(movies, FeatureSide::Users, with_format(FeatureFormat::Movies)),
            "movies.dat: format 'movies' does not describe users");
  EXPECT_EQ(features_error(movies, FeatureSide::Items, with_format(FeatureFormat::Users)),
            "movies.dat: format 'users' does not describe items");
  EXPECT_EQ(features_error(movies, FeatureSide::Items, with_format(FeatureFormat::Attributes)),
            "movies.dat: format 'attributes' expects S3-Rec JSON or `item|attr` lines, but the file reads as movies; "
            "set format = \"movies\"");
  FeatureReadOptions options;
  options.multi_columns = {"genre"};
  EXPECT_EQ(features_error(movies, FeatureSide::Items, options),
            "movies.dat: id_column and multi_columns apply to csv and tsv only, not to format 'auto'");
  FeatureReadOptions map;
  map.item_map = write("map.tsv", "1\t1\n");
  EXPECT_EQ(features_error(write("users.dat", "1::F::1::10::48067\n"), FeatureSide::Users, map),
            "users.dat: item_map and genre_names apply to movies and uitem only, not to format 'users'");
  EXPECT_EQ(features_error(write("u.item", uitem_line(1, "A", {}, "1995-01-01")), FeatureSide::Items),
            "u.item:1: field 'release date': expected a date such as 01-Jan-1995, got '1995-01-01'");
}

TEST_F(FeaturesTest, AttachedFeaturesFollowTheInternalIdsAndSkipOtherIds) {
  RawFeatures raw;
  raw.fields = {"genre", "year"};
  raw.multi_valued = {1, 0};
  raw.by_id["b"] = {{"Drama", "War"}, {"1999"}};
  raw.by_id["a"] = {{}, {"1995"}};
  raw.by_id["not in the log"] = {{"Comedy"}, {"2000"}};
  IdMap items;
  for (const char* id : {"a", "b", "c"}) items.get_or_add(id);
  const Features f = attach_features(raw, items);
  EXPECT_EQ(f.entity_count(), 3);
  EXPECT_EQ(f.field_count(), 2);
  EXPECT_EQ(f.field_index("year"), 1);
  EXPECT_EQ(f.field_index("brand"), -1);
  EXPECT_EQ(f.offsets, (std::vector<int64_t>{0, 0, 1, 3, 4, 4, 4}));  // a: -, 1995; b: Drama War, 1999; c: -, -
  EXPECT_EQ(f.values, (Strings{"1995", "Drama", "War", "1999"}));
  EXPECT_EQ(Strings(f.begin(1, 0), f.end(1, 0)), (Strings{"Drama", "War"}));
  EXPECT_EQ(f.value_count(2, 0), 0);
}

// Four entities with a multi-valued genre and a single-valued year; entity 3 is not in training.
Features four_entities() {
  RawFeatures raw;
  raw.fields = {"genre", "year"};
  raw.multi_valued = {1, 0};
  raw.by_id["0"] = {{"Drama", "War"}, {"1995"}};
  raw.by_id["1"] = {{"Drama"}, {}};
  raw.by_id["2"] = {{"Comedy", "Drama"}, {"1995"}};
  raw.by_id["3"] = {{"Horror"}, {"1970"}};
  IdMap ids;
  for (const char* id : {"0", "1", "2", "3"}) ids.get_or_add(id);
  return attach_features(raw, ids);
}

TEST(FeaturesEncode, VocabulariesComeFromTrainingEntitiesOnly) {
  const EncodedFeatures e = encode_features(four_entities(), {1, 1, 1, 0});
  ASSERT_EQ(e.fields.size(), 2u);
  const EncodedField& genre = e.fields[0];
  // Training counts: Drama 3, Comedy 1, War 1 -> by count, ties by value; Horror (entity 3 only) is not known.
  EXPECT_EQ(genre.vocabulary, (Strings{"<missing>", "<oov>", "Drama", "Comedy", "War"}));
  EXPECT_TRUE(genre.multi_valued);
  EXPECT_EQ(genre.offsets, (std::vector<int64_t>{0, 2, 3, 5, 6}));
  EXPECT_EQ(genre.indices, (std::vector<int32_t>{2, 4, 2, 3, 2, kOutOfVocabularyIndex}));
  const EncodedField& year = e.fields[1];
  EXPECT_EQ(year.vocabulary, (Strings{"<missing>", "<oov>", "1995"}));
  EXPECT_TRUE(year.offsets.empty());
  EXPECT_EQ(year.indices, (std::vector<int32_t>{2, kMissingIndex, 2, kOutOfVocabularyIndex}));
  EXPECT_EQ(std::vector<int32_t>(year.begin(1), year.end(1)), (std::vector<int32_t>{kMissingIndex}));
  EXPECT_EQ(e.index_of("genre", "War"), 4);
  EXPECT_EQ(e.index_of("genre", "Horror"), kOutOfVocabularyIndex);
  // min_count 2: only Drama (3) and 1995 (2) stay known.
  const EncodedFeatures frequent = encode_features(four_entities(), {1, 1, 1, 0}, 2);
  EXPECT_EQ(frequent.fields[0].vocabulary, (Strings{"<missing>", "<oov>", "Drama"}));
  EXPECT_EQ(frequent.fields[0].indices, (std::vector<int32_t>{2, 1, 2, 1, 2, 1}));
  EXPECT_EQ(frequent.fields[1].vocabulary_size(), 3);
}

TEST(FeaturesEncode, AFreshEntityIsEncodedByFieldName) {
  const EncodedFeatures e = encode_features(four_entities(), {1, 1, 1, 0});
  EXPECT_EQ(encode_entity(e, {{"genre", {"War", "Western"}}, {"year", {"1995"}}}),
            (std::vector<std::vector<int32_t>>{{4, kOutOfVocabularyIndex}, {2}}));
  EXPECT_EQ(encode_entity(e, {}), (std::vector<std::vector<int32_t>>{{}, {kMissingIndex}}));
  try {
    encode_entity(e, {{"genres", {"War"}}});
    FAIL();
  } catch (const InputError& error) {  // a request's mistake: a service answers 400
    EXPECT_STREQ(error.what(), "unknown feature field 'genres' (fields: genre, year)");
  }
  try {
    encode_entity(e, {{"year", {"1995", "1996"}}});
    FAIL();
  } catch (const InputError& error) {
    EXPECT_STREQ(error.what(), "feature field 'year' is single-valued, got 2 values");
  }
  EXPECT_THROW(e.index_of("brand", "x"), Error);
}

TEST(FeaturesEncode, TrainingFlagsComeFromTheTrainSplit) {
  Sequences train;
  const int32_t first[] = {2, 0};
  train.push_user(first, 2);
  train.push_user(nullptr, 0);
  EXPECT_EQ(items_in(train, 4), (std::vector<uint8_t>{1, 0, 1, 0}));
  EXPECT_EQ(users_with_interactions(train), (std::vector<uint8_t>{1, 0}));
}

// Four training entities: a = x x y y, b = p p q q (a copy of a under other names), c = u v u v (independent of a).
EncodedFeatures planted_pair() {
  RawFeatures raw;
  raw.fields = {"a", "b", "c"};
  raw.multi_valued = {0, 0, 0};
  raw.by_id["0"] = {{"x"}, {"p"}, {"u"}};
  raw.by_id["1"] = {{"x"}, {"p"}, {"v"}};
  raw.by_id["2"] = {{"y"}, {"q"}, {"u"}};
  raw.by_id["3"] = {{"y"}, {"q"}, {"v"}};
  IdMap ids;
  for (const char* id : {"0", "1", "2", "3"}) ids.get_or_add(id);
  return encode_features(attach_features(raw, ids), {1, 1, 1, 1});
}

TEST(FeaturesMutualInformation, APlantedCorrelatedPairSharesItsWholeEntropyAndIsGroupedTogether) {
  const auto mi = field_mutual_information(planted_pair(), {1, 1, 1, 1});
  // Each field takes two values half the time: H = ln 2. b copies a: I(a; b) = H(a) = ln 2. c is independent of
  // both: p(x, u) = 1/4 = p(x) p(u) in every cell, so I(a; c) = I(b; c) = 0.
  const double ln2 = std::log(2.0);
  for (int f = 0; f < 3; ++f) EXPECT_NEAR(mi[f][f], ln2, 1e-12);
  EXPECT_NEAR(mi[0][1], ln2, 1e-12);
  EXPECT_NEAR(mi[1][0], ln2, 1e-12);
  EXPECT_NEAR(mi[0][2], 0.0, 1e-12);
  EXPECT_NEAR(mi[1][2], 0.0, 1e-12);
  const auto groups = correlated_groups(mi, 2);
  EXPECT_EQ(groups[0], (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(groups[1], (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(groups[2], (std::vector<int32_t>{2, 0}));  // c has no partner: the tie goes to the first field
  EXPECT_EQ(correlated_groups(mi, 1)[1], (std::vector<int32_t>{1}));
  EXPECT_EQ(half_of_fields(3), 2);
  EXPECT_EQ(half_of_fields(4), 2);
  EXPECT_EQ(half_of_fields(1), 1);
  EXPECT_THROW(correlated_groups(mi, 4), Error);
}

TEST(FeaturesMutualInformation, MultiValuedFieldsSpreadEachEntitysWeightOverItsPairs) {
  // Training: entity 0 = ({g, h}, 1), entity 1 = ({g}, 2); entity 2 is not in training. N = 2, so entity 0 gives
  // (g, 1) and (h, 1) 1/4 each, entity 1 gives (g, 2) 1/2: p(g) = 3/4, p(h) = 1/4, p(1) = p(2) = 1/2, and
  // I = 1/4 ln((1/4)/(3/8)) + 1/4 ln((1/4)/(1/8)) + 1/2 ln((1/2)/(3/8)) = 3/4 ln(4/3).
  RawFeatures raw;
  raw.fields = {"genre", "year"};
  raw.multi_valued = {1, 0};
  raw.by_id["0"] = {{"g", "h"}, {"1"}};
  raw.by_id["1"] = {{"g"}, {"2"}};
  raw.by_id["2"] = {{"h"}, {"1"}};
  IdMap ids;
  for (const char* id : {"0", "1", "2"}) ids.get_or_add(id);
  const std::vector<uint8_t> training = {1, 1, 0};
  const auto mi = field_mutual_information(encode_features(attach_features(raw, ids), training), training);
  EXPECT_NEAR(mi[0][1], 0.75 * std::log(4.0 / 3.0), 1e-12);
  EXPECT_NEAR(mi[0][0], -(0.75 * std::log(0.75) + 0.25 * std::log(0.25)), 1e-12);
  // An empty field is the value "missing": year missing for one of two entities that differ in genre.
  raw.by_id["1"] = {{"h"}, {}};
  const auto with_missing = field_mutual_information(encode_features(attach_features(raw, ids), training), training);
  EXPECT_NEAR(with_missing[1][1], std::log(2.0), 1e-12);
  EXPECT_EQ(field_mutual_information(planted_pair(), {0, 0, 0, 0})[0][1], 0.0);
}

// ---- the shared datasets (skipped when ../shared/data is absent) ----

const std::string kShared = EMBREC_SHARED_DATA;

bool absent(const std::vector<std::string>& files) {
  for (const std::string& file : files)
    if (!fs::exists(kShared + "/" + file)) return true;
  return false;
}

Dataset sequences_of(const std::string& file) {
  return prepare_dataset(read_log(kShared + "/" + file, ReadOptions{}), PrepareOptions{});
}

std::set<std::string> distinct_values(const Features& features, int32_t field) {
  std::set<std::string> values;
  for (int32_t e = 0; e < features.entity_count(); ++e) values.insert(features.begin(e, field), features.end(e, field));
  return values;
}

TEST(FeaturesSharedData, MovieLens1mItemsGetGenresAndAYearThroughTheItemMap) {
  const std::vector<std::string> files = {"ml-1m/ml-1m.txt", "ml-1m/movies.dat", "ml-1m/item_map.tsv"};
  if (absent(files)) GTEST_SKIP() << "shared data absent, skipping: " << kShared << "/ml-1m files not found";
  const Dataset d = sequences_of("ml-1m/ml-1m.txt");
  FeatureReadOptions options;
  options.item_map = kShared + "/ml-1m/item_map.tsv";
  const Features f =
      attach_features(read_features(kShared + "/ml-1m/movies.dat", FeatureSide::Items, options), d.items);
  ASSERT_EQ(f.entity_count(), 3416);
  for (int32_t item = 0; item < f.entity_count(); ++item) {
    ASSERT_GE(f.value_count(item, 0), 1) << d.items.external(item);
    ASSERT_EQ(f.value_count(item, 1), 1) << d.items.external(item);
  }
  EXPECT_EQ(distinct_values(f, 0).size(), 18u);
  // Item 1 is movie 3186, "Girl, Interrupted (1999)::Drama".
  const int32_t first = d.items.find("1");
  EXPECT_EQ(Strings(f.begin(first, 0), f.end(first, 0)), (Strings{"Drama"}));
  EXPECT_EQ(*f.begin(first, 1), "1999");
}

TEST(FeaturesSharedData, MovieLens1mUsersDatCoversEveryUserOfTheSequences) {
  if (absent({"ml-1m/ml-1m.txt", "ml-1m/users.dat"}))
    GTEST_SKIP() << "shared data absent, skipping: " << kShared << "/ml-1m/users.dat not found";
  const Dataset d = sequences_of("ml-1m/ml-1m.txt");
  const Features f = attach_features(read_features(kShared + "/ml-1m/users.dat", FeatureSide::Users), d.users);
  ASSERT_EQ(f.entity_count(), 6040);
  for (int32_t user = 0; user < f.entity_count(); ++user)
    for (int32_t field = 0; field < 4; ++field) ASSERT_EQ(f.value_count(user, field), 1) << user << " " << field;
  EXPECT_EQ(distinct_values(f, 0), (std::set<std::string>{"1", "18", "25", "35", "45", "50", "56"}));
  EXPECT_EQ(distinct_values(f, 1), (std::set<std::string>{"F", "M"}));
  EXPECT_EQ(distinct_values(f, 2).size(), 21u);  // occupations 0..20
  const int32_t first = d.users.find("1");  // 1::F::1::10::48067
  EXPECT_EQ(*f.begin(first, 3), "480");
}

TEST(FeaturesSharedData, BeautyItemsGetTheirOpaqueAttributes) {
  if (absent({"amazon-beauty/Beauty.txt", "amazon-beauty/Beauty_item2attributes.json"}))
    GTEST_SKIP() << "shared data absent, skipping: " << kShared << "/amazon-beauty files not found";
  const Dataset d = sequences_of("amazon-beauty/Beauty.txt");
  const Features f = attach_features(
      read_features(kShared + "/amazon-beauty/Beauty_item2attributes.json", FeatureSide::Items), d.items);
  ASSERT_EQ(f.entity_count(), 12101);
  for (int32_t item = 0; item < f.entity_count(); ++item) ASSERT_GE(f.value_count(item, 0), 1) << item;
  EXPECT_EQ(distinct_values(f, 0).size(), 637u);  // the README's count
  const EncodedFeatures e = encode_features(f, std::vector<uint8_t>(f.entity_count(), 1));
  EXPECT_EQ(e.fields[0].vocabulary_size(), 637 + 2);
}

TEST(FeaturesSharedData, MovieLens100kUItemAndUUser) {
  if (absent({"ml-100k/u.data", "ml-100k/u.item", "ml-100k/u.genre", "ml-100k/u.user"}))
    GTEST_SKIP() << "shared data absent, skipping: " << kShared << "/ml-100k files not found";
  ReadOptions udata;
  udata.format = LogFormat::Udata;
  const Dataset d = prepare_dataset(read_log(kShared + "/ml-100k/u.data", udata), PrepareOptions{});
  FeatureReadOptions options;
  options.genre_names = kShared + "/ml-100k/u.genre";
  const Features items =
      attach_features(read_features(kShared + "/ml-100k/u.item", FeatureSide::Items, options), d.items);
  ASSERT_EQ(items.entity_count(), 1682);
  int32_t with_year = 0;
  for (int32_t item = 0; item < items.entity_count(); ++item) with_year += items.value_count(item, 1);
  EXPECT_EQ(with_year, 1681);  // movie 267 has no release date
  EXPECT_EQ(distinct_values(items, 0).size(), 19u);
  const Features users = attach_features(read_features(kShared + "/ml-100k/u.user", FeatureSide::Users), d.users);
  ASSERT_EQ(users.entity_count(), 943);
  const int32_t first = d.users.find("1");  // 1|24|M|technician|85711
  EXPECT_EQ(*users.begin(first, 0), "18");
  EXPECT_EQ(*users.begin(first, 2), "technician");
  EXPECT_EQ(distinct_values(users, 0).size(), 7u);
}

}  // namespace
}  // namespace embrec::data
