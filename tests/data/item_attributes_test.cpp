// Item-attribute readers: each format reads as written (keyed by the log's item id), the format is found from the
// extension or the content, and every malformed input is an error naming file, line and field.
#include "embrec/data/item_attributes.h"

#include <gtest/gtest.h>

#include "file_fixture.h"
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "embrec/util/error.h"
#include "../util/error_of.h"

namespace embrec::data {
namespace {

namespace fs = std::filesystem;
using testing::uitem_line;
using Strings = std::vector<std::string>;

// Four movies: a Latin-1 title (0xE9), a title with '|' and '(', and one ending in ':' before the '::'.
const char* const kMovies =
    "1::Toy Story (1995)::Animation|Children's|Comedy\n"
    "2::City of Lost Children, The (Cit\xE9 des enfants perdus, La) (1995)::Adventure|Sci-Fi\n"
    "3::Rocky Horror | Picture (Show), The (1975)::Comedy|Horror|Musical|Sci-Fi\n"
    "4::Dr. Strangelove or: How I Learned to Stop Worrying:::Comedy|War\n";

class ItemAttributesTest : public testing::FileTest {
 protected:
  ItemAttributesTest() : FileTest("item-attributes") {}
  std::string attributes_error(const std::string& path, const AttributeReadOptions& options = {}) {
    return error_of([&] { read_item_attributes(path, options); });
  }
  std::string error_with_map(const std::string& path, const std::string& item_map) {
    AttributeReadOptions options;
    options.item_map = item_map;
    return attributes_error(path, options);
  }
};

AttributeReadOptions format(const std::string& name) {
  AttributeReadOptions options;
  options.format = name;
  return options;
}

TEST_F(ItemAttributesTest, JsonMapKeepsAttributesAsStringsInFileOrder) {
  const ItemAttributes a =
      read_item_attributes(write("x_item2attributes.json", R"({"4": [3, 1, 2], "83": ["brand:x", 5], "9": []})"));
  EXPECT_EQ(a.by_item.size(), 3u);
  EXPECT_EQ(a.of("4"), (Strings{"3", "1", "2"}));
  EXPECT_EQ(a.of("83"), (Strings{"brand:x", "5"}));
  EXPECT_TRUE(a.of("9").empty());
  EXPECT_EQ(a.by_item.count("9"), 1u);
  EXPECT_TRUE(a.of("missing").empty());
}

TEST_F(ItemAttributesTest, MoviesDatGivesGenresWhateverTheTitleHolds) {
  const ItemAttributes a = read_item_attributes(write("movies.dat", kMovies));
  EXPECT_EQ(a.by_item.size(), 4u);
  EXPECT_EQ(a.of("1"), (Strings{"Animation", "Children's", "Comedy"}));
  EXPECT_EQ(a.of("2"), (Strings{"Adventure", "Sci-Fi"}));
  EXPECT_EQ(a.of("3"), (Strings{"Comedy", "Horror", "Musical", "Sci-Fi"}));
  EXPECT_EQ(a.of("4"), (Strings{"Comedy", "War"}));
}

TEST_F(ItemAttributesTest, ItemMapTurnsMovieIdsIntoTheLogsItemIds) {
  const std::string movies = write("movies.dat", kMovies);
  const ItemAttributes a = read_item_attributes(movies, write("item_map.tsv", "item\tmovie_id\n1\t3\n2\t1\n"));
  EXPECT_EQ(a.by_item.size(), 2u);  // only mapped items
  EXPECT_EQ(a.of("1"), (Strings{"Comedy", "Horror", "Musical", "Sci-Fi"}));
  EXPECT_EQ(a.of("2"), (Strings{"Animation", "Children's", "Comedy"}));
  EXPECT_TRUE(a.of("3").empty());
  // No header is needed; two items may share a movie.
  const ItemAttributes b = read_item_attributes(movies, write("map2.tsv", "10\t4\n11\t4\n"));
  EXPECT_EQ(b.of("10"), (Strings{"Comedy", "War"}));
  EXPECT_EQ(b.of("11"), b.of("10"));
}

TEST_F(ItemAttributesTest, TextLinesListItemThenAttributes) {
  const ItemAttributes a = read_item_attributes(write("attributes.txt", "B001|red| round \nB002\n\nB003|blue\n"));
  EXPECT_EQ(a.by_item.size(), 3u);
  EXPECT_EQ(a.of("B001"), (Strings{"red", "round"}));
  EXPECT_TRUE(a.of("B002").empty());
  EXPECT_EQ(a.by_item.count("B002"), 1u);
  EXPECT_EQ(a.of("B003"), (Strings{"blue"}));
}

TEST_F(ItemAttributesTest, UItemFlagsNameGenresFromUGenreOrByIndex) {
  const std::string uitem =
      write("u.item", uitem_line(1, "Toy Story (1995)", {3, 4, 5}) + uitem_line(2, "GoldenEye (1995)", {1, 2, 16}));
  const ItemAttributes by_index = read_item_attributes(uitem);
  EXPECT_EQ(by_index.of("1"), (Strings{"genre3", "genre4", "genre5"}));
  AttributeReadOptions options;
  options.genre_names = write("u.genre",
                              "unknown|0\nAction|1\nAdventure|2\nAnimation|3\nChildren's|4\nComedy|5\nCrime|6\n"
                              "Documentary|7\nDrama|8\nFantasy|9\nFilm-Noir|10\nHorror|11\nMusical|12\nMystery|13\n"
                              "Romance|14\nSci-Fi|15\nThriller|16\nWar|17\nWestern|18\n\n");
  const ItemAttributes named = read_item_attributes(uitem, options);
  EXPECT_EQ(named.of("1"), (Strings{"Animation", "Children's", "Comedy"}));
  EXPECT_EQ(named.of("2"), (Strings{"Action", "Adventure", "Thriller"}));
  options.item_map = write("map.tsv", "7\t2\n");
  EXPECT_EQ(read_item_attributes(uitem, options).of("7"), named.of("2"));
}

TEST_F(ItemAttributesTest, FormatIsFoundFromExtensionThenContentAndCanBeNamed) {
  // Neutral names: the content decides.
  EXPECT_EQ(read_item_attributes(write("a.txt", "\n  {\"5\": [1]}")).of("5"), (Strings{"1"}));
  EXPECT_EQ(read_item_attributes(write("b.txt", kMovies)).of("4"), (Strings{"Comedy", "War"}));
  EXPECT_EQ(read_item_attributes(write("c", uitem_line(8, "X", {0}))).of("8"), (Strings{"genre0"}));
  EXPECT_EQ(read_item_attributes(write("d.txt", "std::vector|c++\n")).of("std::vector"), (Strings{"c++"}));
  // An explicit format wins over the extension.
  EXPECT_EQ(read_item_attributes(write("e.dat", "a|b\n"), format("text")).of("a"), (Strings{"b"}));
  EXPECT_EQ(read_item_attributes(write("f.json", "1::T::Drama\n"), format("movies")).of("1"), (Strings{"Drama"}));
}

TEST_F(ItemAttributesTest, ByteOrderMarkAndCrLfAreAccepted) {
  const std::string bom = "\xEF\xBB\xBF";
  EXPECT_EQ(read_item_attributes(write("t.txt", bom + "a|x|y\r\nb|z\r\n\r\n")).of("a"), (Strings{"x", "y"}));
  const ItemAttributes m = read_item_attributes(write("movies.dat", bom + "1::Heat (1995)::Action|Crime\r\n"),
                                                write("map.tsv", bom + "item\tmovie_id\r\n5\t1\r\n"));
  EXPECT_EQ(m.of("5"), (Strings{"Action", "Crime"}));
  EXPECT_EQ(read_item_attributes(write("j.json", bom + "{\"1\": [\"a\"]}\r\n")).of("1"), (Strings{"a"}));
  EXPECT_EQ(read_item_attributes(write("j2.txt", bom + "{\"1\": [\"a\"]}")).of("1"), (Strings{"a"}));
}

TEST_F(ItemAttributesTest, MalformedJsonNamesLineAndByte) {
  // The 14th byte is the stray ']' on line 2.
  EXPECT_EQ(attributes_error(write("a.json", "{\"4\": [1,\n 2,]}")),
            "a.json:2: malformed JSON at byte 14: syntax error while parsing value - unexpected ']'; expected '[', "
            "'{', or a literal");
  // Bytes count from the start of the file, byte-order mark included; at the end of input, one past the last byte.
  EXPECT_EQ(attributes_error(write("b.json", "\xEF\xBB\xBF{\"4\": [1"), format("json")),
            "b.json:1: malformed JSON at byte 12: syntax error while parsing array - unexpected end of input; "
            "expected ']'");
  // A number no double holds (found by fuzz_item_attributes: it escaped as nlohmann's own exception).
  EXPECT_EQ(attributes_error(write("c.json", "{\"4\": [3, 333333333333333333333E3331]}")),
            "c.json: malformed JSON: [json.exception.out_of_range.406] number overflow parsing "
            "'333333333333333333333E3331'");
}

TEST_F(ItemAttributesTest, JsonValuesThatAreNotAttributeListsNameTheItem) {
  EXPECT_EQ(attributes_error(write("a.json", R"({"4": [1], "5": {"a": 1}})")),
            R"(a.json: item '5': expected an array of strings or integers, got {"a":1})");
  EXPECT_EQ(attributes_error(write("b.json", R"({"4": [1, 2.5]})")),
            "b.json: item '4': attribute 2: expected a string or an integer, got 2.5");
  EXPECT_EQ(attributes_error(write("c.json", R"({"4": [[1]]})")),
            "c.json: item '4': attribute 1: expected a string or an integer, got [1]");
  EXPECT_EQ(attributes_error(write("d.json", R"({"4": [""]})")),
            R"(d.json: item '4': attribute 1: expected a string or an integer, got "")");
  EXPECT_EQ(attributes_error(write("e.json", R"({"4": [1], "4": [2]})")), "e.json: item '4' appears twice");
  EXPECT_EQ(attributes_error(write("e2.json", R"({"4": {"a": 1}, "5": {"a": 2}})")),  // nested keys are not items
            R"(e2.json: item '4': expected an array of strings or integers, got {"a":1})");
  EXPECT_EQ(attributes_error(write("f.json", "[1, 2]")),
            "f.json: expected a JSON object mapping item ids to attribute arrays, got array");
  EXPECT_EQ(attributes_error(write("g.json", R"({"": [1]})")), "g.json: item '': empty id");
  EXPECT_EQ(attributes_error(write("h.json", "{}")), "h.json: no items (empty file)");
}

TEST_F(ItemAttributesTest, MalformedMoviesDatLinesNameFileLineAndField) {
  EXPECT_EQ(attributes_error(write("movies.dat", "1::Toy Story (1995)::Comedy\n\n2::Jumanji (1995)\n")),
            "movies.dat:3: expected 3 fields separated by '::', got 2");
  EXPECT_EQ(attributes_error(write("m2.dat", "1::A::B::Drama\n")),
            "m2.dat:1: expected 3 fields separated by '::', got 4");
  EXPECT_EQ(attributes_error(write("m3.dat", "x1::Heat::Action\n")),
            "m3.dat:1: field 'movie_id': cannot parse 'x1' as an integer");
  EXPECT_EQ(attributes_error(write("m4.dat", "1::Heat::Action\n2::Up::Drama\n1::Heat::Crime\n")),
            "m4.dat:3: movie '1' appears on an earlier line too");
  EXPECT_EQ(attributes_error(write("m5.dat", "1::Heat::Action||Crime\n")),
            "m5.dat:1: field 'genres': attribute 2 is empty (two '|' in a row?)");
  EXPECT_EQ(attributes_error(write("m6.dat", "\n\n")), "m6.dat: no items (empty file)");
}

TEST_F(ItemAttributesTest, MalformedItemMapLinesNameFileLineAndField) {
  const std::string movies = write("movies.dat", kMovies);
  EXPECT_EQ(error_with_map(movies, write("a.tsv", "item\tmovie_id\n1\t3\n2 1\n")),
            "a.tsv:3: expected 2 fields separated by '\\t', got 1");
  EXPECT_EQ(error_with_map(movies, write("b.tsv", "item\tmovie_id\n1\tthree\n")),
            "b.tsv:2: field 'movie_id': cannot parse 'three' as an integer");
  EXPECT_EQ(error_with_map(movies, write("c.tsv", "1\tx\n")),  // not a header: its item field is an integer
            "c.tsv:1: field 'movie_id': cannot parse 'x' as an integer");
  EXPECT_EQ(error_with_map(movies, write("d.tsv", "1\t3\n2\t4\n1\t2\n")),
            "d.tsv:3: item '1' appears on an earlier line too");
  EXPECT_EQ(error_with_map(movies, write("e.tsv", "1\t3\n2\t99\n")), "e.tsv:2: movie 99 is not in movies.dat");
  EXPECT_EQ(error_with_map(movies, write("f.tsv", "item\tmovie_id\n")),
            "f.tsv: no items (empty file or header only)");
  EXPECT_EQ(error_with_map(movies, write("g.tsv", "1\t3\t7\n")),
            "g.tsv:1: expected 2 fields separated by '\\t', got 3");
}

TEST_F(ItemAttributesTest, MalformedTextAndUItemLinesNameFileLineAndField) {
  EXPECT_EQ(attributes_error(write("t.txt", "a|x\nb|y||z\n")),
            "t.txt:2: field 'attributes': attribute 2 is empty (two '|' in a row?)");
  EXPECT_EQ(attributes_error(write("t2.txt", "a|x\n\na|y\n")), "t2.txt:3: item 'a' appears on an earlier line too");
  EXPECT_EQ(attributes_error(write("t3.txt", "a|x\n |y\n")), "t3.txt:2: field 'item': empty id");
  EXPECT_EQ(attributes_error(write("u.item", uitem_line(1, "A", {}) + "2|B|x\n")),
            "u.item:2: expected 24 fields separated by '|', got 3");
  std::string bad_flag = uitem_line(3, "C", {});
  bad_flag.replace(bad_flag.size() - 2, 1, "2");
  EXPECT_EQ(attributes_error(write("u2.item", bad_flag)), "u2.item:1: field 'genre18': expected 0 or 1, got '2'");
  AttributeReadOptions options;
  options.genre_names = write("u.genre", "unknown|0\nAction|1\nWar|1\n");
  EXPECT_EQ(attributes_error(write("u3.item", uitem_line(1, "A", {})), options),
            "u.genre:3: genre index 1 appears on an earlier line too");
  options.genre_names = write("u2.genre", "unknown|0\nAction|5\n");
  EXPECT_EQ(attributes_error(write("u3.item", uitem_line(1, "A", {})), options),
            "u2.genre:2: field 'index': 5 is not in 0..1 (one index per genre)");
}

TEST_F(ItemAttributesTest, OptionsThatDoNotApplyAreErrors) {
  EXPECT_EQ(error_with_map(write("a.json", R"({"1": [2]})"), write("m.tsv", "1\t2\n")),
            "a.json: an item map applies to movies.dat and u.item only, not to format 'json'");
  AttributeReadOptions options;
  options.genre_names = write("u.genre", "unknown|0\n");
  EXPECT_EQ(attributes_error(write("movies.dat", kMovies), options),
            "movies.dat: genre names (u.genre) apply to u.item only, not to format 'movies'");
  EXPECT_EQ(attributes_error(write("b.txt", "a|b\n"), format("yaml")),
            "b.txt: unknown attribute format 'yaml' (auto, json, movies, uitem, text)");
  EXPECT_NE(attributes_error((folder_ / "nope.json").string()).find("nope.json: cannot open"), std::string::npos);
  const std::string missing_map = error_with_map(write("movies.dat", kMovies), (folder_ / "nope.tsv").string());
  EXPECT_NE(missing_map.find("nope.tsv: cannot open"), std::string::npos);
}

TEST(ItemAttributesSharedData, BeautyGivesEveryItemItsAttributes) {
  const std::string path = std::string(EMBREC_SHARED_DATA) + "/amazon-beauty/Beauty_item2attributes.json";
  if (!fs::exists(path)) GTEST_SKIP() << "shared data absent, skipping: " << path << " not found";
  const ItemAttributes a = read_item_attributes(path);
  EXPECT_EQ(a.by_item.size(), 12101u);
  for (int item = 1; item <= 12101; ++item) ASSERT_FALSE(a.of(std::to_string(item)).empty()) << item;
  EXPECT_EQ(a.of("4"), (Strings{"1", "2", "3"}));  // the file's first entry
}

TEST(ItemAttributesSharedData, MovieLens1mGenresReachTheSequenceItemsThroughTheItemMap) {
  const std::string folder = std::string(EMBREC_SHARED_DATA) + "/ml-1m";
  if (!fs::exists(folder + "/movies.dat") || !fs::exists(folder + "/item_map.tsv"))
    GTEST_SKIP() << "shared data absent, skipping: " << folder << "/movies.dat or item_map.tsv not found";
  const ItemAttributes a = read_item_attributes(folder + "/movies.dat", folder + "/item_map.tsv");
  EXPECT_EQ(a.by_item.size(), 3416u);
  // item_map.tsv maps item 1 to movie 3186, "Girl, Interrupted (1999)::Drama".
  EXPECT_EQ(a.of("1"), (Strings{"Drama"}));
  const ItemAttributes movies = read_item_attributes(folder + "/movies.dat");
  EXPECT_EQ(movies.by_item.size(), 3883u);
  EXPECT_EQ(movies.of("3186"), a.of("1"));
}

TEST(ItemAttributesSharedData, MovieLens100kUItemWithUGenre) {
  const std::string folder = std::string(EMBREC_SHARED_DATA) + "/ml-100k";
  if (!fs::exists(folder + "/u.item") || !fs::exists(folder + "/u.genre"))
    GTEST_SKIP() << "shared data absent, skipping: " << folder << "/u.item or u.genre not found";
  AttributeReadOptions options;
  options.genre_names = folder + "/u.genre";
  const ItemAttributes a = read_item_attributes(folder + "/u.item", options);
  EXPECT_EQ(a.by_item.size(), 1682u);
  EXPECT_EQ(a.of("1"), (Strings{"Animation", "Children's", "Comedy"}));  // Toy Story (1995)
}

}  // namespace
}  // namespace embrec::data
