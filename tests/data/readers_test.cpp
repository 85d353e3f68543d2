// Readers: every format round-trips, original ids are kept, and every malformed input is an error naming file,
// line and field.
#include "embrec/data/readers.h"

#include <gtest/gtest.h>

#include "file_fixture.h"
#include "../util/error_of.h"

#include <filesystem>
#include <cmath>
#include <fstream>

#include "embrec/data/prepare.h"
#include "embrec/util/error.h"

namespace embrec::data {
namespace {

namespace fs = std::filesystem;

class ReadersTest : public testing::FileTest {
 protected:
  ReadersTest() : FileTest("readers") {}
  std::string log_error(const std::string& path, const ReadOptions& options) {
    return error_of([&] { read_log(path, options); });
  }
};

ReadOptions format(const std::string& name) {
  ReadOptions options;
  for (const auto& [format_name, value] : kLogFormatNames)
    if (format_name == name) options.format = value;
  return options;
}

TEST_F(ReadersTest, SequenceFormatKeepsOrderAndIds) {
  RawLog log = read_log(write("s.txt", "10 5 7 5\n3 7 8\n"), format("seq"));
  ASSERT_EQ(log.size(), 5);
  EXPECT_EQ(log.users.external(log.user[0]), "10");
  EXPECT_EQ(log.items.external(log.item[2]), "5");
  EXPECT_EQ(log.timestamp, (std::vector<int64_t>{0, 1, 2, 0, 1}));
  EXPECT_EQ(log.line, (std::vector<int64_t>{1, 1, 1, 2, 2}));
  EXPECT_EQ(log.items.size(), 3);
}

TEST_F(ReadersTest, CrLfAndTrailingBlankLinesAreAccepted) {
  RawLog log = read_log(write("s.txt", "1 2 3\r\n2 3 4\r\n\r\n"), format("seq"));
  EXPECT_EQ(log.size(), 4);
  EXPECT_EQ(log.items.external(log.item.back()), "4");
}

TEST_F(ReadersTest, MovieLensFormats) {
  RawLog dat = read_log(write("ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n"), format("movielens"));
  EXPECT_EQ(dat.size(), 2);
  EXPECT_EQ(dat.rating[1], 3.0f);
  EXPECT_EQ(dat.timestamp[0], 978300760);
  RawLog udata = read_log(write("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n"), format("udata"));
  EXPECT_EQ(udata.size(), 2);
  EXPECT_EQ(udata.users.external(udata.user[1]), "186");
}

TEST_F(ReadersTest, CsvColumnsAreChosenByName) {
  ReadOptions options = format("csv");
  options.user_column = "customer";
  options.item_column = "sku";
  options.rating_column = "stars";
  options.timestamp_column = "ts";
  RawLog log = read_log(write("d.csv", "ts,sku,customer,stars\n100,A-1,alice,4.5\n90,B-2,bob,2\n"), options);
  ASSERT_EQ(log.size(), 2);
  EXPECT_EQ(log.users.external(log.user[0]), "alice");
  EXPECT_EQ(log.items.external(log.item[1]), "B-2");
  EXPECT_EQ(log.rating[0], 4.5f);
  EXPECT_EQ(log.timestamp[1], 90);
}

TEST_F(ReadersTest, EveryFormatRoundTrips) {
  Dataset dataset;
  dataset.name = "x";
  for (const char* user : {"7", "3"}) dataset.users.get_or_add(user);
  for (const char* item : {"11", "12", "13"}) dataset.items.get_or_add(item);
  const int32_t first[] = {0, 2, 1}, second[] = {1};
  const float ratings_first[] = {5, 3, 4}, ratings_second[] = {1};
  const int64_t times_first[] = {100, 200, 300}, times_second[] = {50};
  dataset.interactions.push_user(first, 3, ratings_first, times_first);
  dataset.interactions.push_user(second, 1, ratings_second, times_second);
  for (const char* name : {"seq", "movielens", "udata", "csv", "tsv"}) {
    ReadOptions options = format(name);
    if (options.format == LogFormat::Csv || options.format == LogFormat::Tsv) {
      options.rating_column = "rating";
      options.timestamp_column = "timestamp";
    }
    const std::string path = (folder_ / (std::string("round.") + name)).string();
    write_log(path, dataset, options);
    Dataset back = prepare_dataset(read_log(path, options), PrepareOptions{});
    EXPECT_EQ(back.users.externals(), dataset.users.externals()) << name;
    EXPECT_EQ(back.items.externals(), (std::vector<std::string>{"11", "13", "12"})) << name;  // first appearance
    ASSERT_EQ(back.interactions.size(), 4) << name;
    for (int32_t u = 0; u < 2; ++u)
      for (int64_t i = 0; i < dataset.interactions.length(u); ++i) {
        const int64_t p = dataset.interactions.offsets[u] + i;
        EXPECT_EQ(back.items.external(back.interactions.items[p]),
                  dataset.items.external(dataset.interactions.items[p]))
            << name;
        if (options.format != LogFormat::Seq) {
          EXPECT_EQ(back.interactions.ratings[p], dataset.interactions.ratings[p]) << name;
          EXPECT_EQ(back.interactions.timestamps[p], dataset.interactions.timestamps[p]) << name;
        }
      }
  }
}

TEST_F(ReadersTest, MalformedLinesNameFileLineAndField) {
  EXPECT_EQ(log_error(write("ratings.dat", "1::2::3::4\n1::2::3\n"), format("movielens")),
            "ratings.dat:2: expected 4 fields separated by '::', got 3");
  EXPECT_EQ(log_error(write("u.data", "1\t2\t3\t4\n1\t2\tx\t4\n"), format("udata")),
            "u.data:2: field 'rating': cannot parse 'x' as a number");
  EXPECT_EQ(log_error(write("u2.data", "1\t2\t3\tyesterday\n"), format("udata")),
            "u2.data:1: field 'timestamp': cannot parse 'yesterday' as an integer");
  EXPECT_EQ(log_error(write("s.txt", "1 2 3\n2 b 4\n"), format("seq")),
            "s.txt:2: field 'item': cannot parse 'b' as an integer");
  EXPECT_EQ(log_error(write("s2.txt", "1 2 3\nu 3\n"), format("seq")),
            "s2.txt:2: field 'user': cannot parse 'u' as an integer");
  EXPECT_EQ(log_error(write("s3.txt", "1 2 3\n7\n"), format("seq")),
            "s3.txt:2: expected 'user item [item ...]' separated by single spaces, got 1 field(s)");
  EXPECT_EQ(log_error(write("s4.txt", "1 2\n1 3\n"), format("seq")),
            "s4.txt:2: user '1' appears on an earlier line too");
  ReadOptions csv = format("csv");
  csv.rating_column = "rating";
  EXPECT_EQ(log_error(write("d.csv", "user_id,item_id,rating\na,b,4\nc,d,abc\n"), csv),
            "d.csv:3: field 'rating': cannot parse 'abc' as a number");
  EXPECT_EQ(log_error(write("d2.csv", "user_id,item_id,rating\na,b\n"), csv),
            "d2.csv:2: expected 3 fields separated by ',', got 2");
  EXPECT_EQ(log_error(write("d3.csv", "userid,item_id,rating\na,b,1\n"), csv),
            "d3.csv:1: unknown column 'user_id' for user_column (columns: userid, item_id, rating)");
}

TEST_F(ReadersTest, IdsAndTimestampsThatDoNotParseNameTheirField) {
  EXPECT_EQ(log_error(write("ratings.dat", "1::2::3::4\n1::x12::3::4\n"), format("movielens")),
            "ratings.dat:2: field 'item': cannot parse 'x12' as an integer");
  EXPECT_EQ(log_error(write("ratings2.dat", "u1::2::3::4\n"), format("movielens")),
            "ratings2.dat:1: field 'user': cannot parse 'u1' as an integer");
  EXPECT_EQ(log_error(write("ratings3.dat", "1::2::3::99999999999999999999\n"), format("movielens")),
            "ratings3.dat:1: field 'timestamp': cannot parse '99999999999999999999' as an integer");
  EXPECT_EQ(log_error(write("u.data", "1\t2\t3\t4\n1\t2\t3\n"), format("udata")),
            "u.data:2: expected 4 fields separated by '\\t', got 3");
  EXPECT_EQ(log_error(write("s.txt", "1 2  3\n"), format("seq")),
            "s.txt:1: field 'item' 2: empty (two spaces in a row?)");
  ReadOptions csv = format("csv");
  csv.timestamp_column = "ts";
  EXPECT_EQ(log_error(write("d.csv", "user_id,item_id,ts\na,b,1\na,c,2020-01-01\n"), csv),
            "d.csv:3: field 'ts': cannot parse '2020-01-01' as an integer");
  EXPECT_EQ(log_error(write("d2.csv", "user_id,item_id,ts\na, ,1\n"), csv), "d2.csv:2: field 'item_id': empty id");
  EXPECT_EQ(log_error(write("d3.csv", "user_id,item_id,ts\n\"a,b,1\n"), csv),
            "d3.csv:2: unterminated or misplaced '\"' (quoted fields must be whole fields on one line)");
  csv.timestamp_column = "time";
  EXPECT_EQ(log_error(write("d4.csv", "user_id,item_id,ts\na,b,1\n"), csv),
            "d4.csv:1: unknown column 'time' for timestamp_column (columns: user_id, item_id, ts)");
  ReadOptions no_user = format("tsv");
  no_user.user_column = "";
  EXPECT_EQ(log_error(write("d.tsv", "user_id\titem_id\na\tb\n"), no_user),
            "d.tsv: user_column and item_column must name columns of the header");
}

TEST_F(ReadersTest, AByteOrderMarkIsSkippedInEveryFormat) {
  const std::string mark = "\xEF\xBB\xBF";
  RawLog csv = read_log(write("excel.csv", mark + "user_id,item_id\r\na,b\r\n"), format("csv"));
  ASSERT_EQ(csv.size(), 1);
  EXPECT_EQ(csv.users.external(csv.user[0]), "a");
  RawLog seq = read_log(write("bom.txt", mark + "1 2 3\n"), format("seq"));
  EXPECT_EQ(seq.users.external(seq.user[0]), "1");
  RawLog dat = read_log(write("bom.dat", mark + "1::10::5::100\n"), format("movielens"));
  EXPECT_EQ(dat.users.external(dat.user[0]), "1");
}

TEST_F(ReadersTest, BlankLinesAreSkippedInEveryFormatAndLineNumbersStayTrue) {
  RawLog dat = read_log(write("ratings.dat", "\n1::10::5::100\r\n  \r\n\n2::10::4::50\n\n"), format("movielens"));
  EXPECT_EQ(dat.line, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(log_error(write("ratings2.dat", "1::10::5::100\n\n1::10::5\n"), format("movielens")),
            "ratings2.dat:3: expected 4 fields separated by '::', got 3");
  RawLog csv = read_log(write("d.csv", "\nuser_id,item_id\n\na,b\n"), format("csv"));
  EXPECT_EQ(csv.line, (std::vector<int64_t>{4}));
  RawLog seq = read_log(write("s.txt", "\n1 2 3 \n\n2 3\n"), format("seq"));  // a trailing space is tolerated
  EXPECT_EQ(seq.line, (std::vector<int64_t>{2, 2, 4}));
  EXPECT_EQ(seq.items.size(), 2);
}

TEST_F(ReadersTest, CsvQuotedFieldsReadAsWritten) {
  ReadOptions options = format("csv");
  options.rating_column = "rating";
  RawLog log = read_log(write("q.csv", "\"user_id\",item_id,title,rating\n"
                                       "u1,\"B00,X\",\"Say \"\"hi\"\", then go\",4\n"
                                       "u2, \"B01\" ,plain,3\n"),
                        options);
  ASSERT_EQ(log.size(), 2);
  EXPECT_EQ(log.items.external(log.item[0]), "B00,X");
  EXPECT_EQ(log.items.external(log.item[1]), "B01");
  EXPECT_EQ(log.rating[0], 4.0f);
}

TEST_F(ReadersTest, CsvIdsWithDelimitersAndCustomDelimitersRoundTrip) {
  Dataset dataset;
  dataset.name = "x";
  for (const char* user : {"a,1", "say \"b\""}) dataset.users.get_or_add(user);
  for (const char* item : {"p;q", "r"}) dataset.items.get_or_add(item);
  const int32_t first[] = {0, 1}, second[] = {1};
  const int64_t times_first[] = {1, 2}, times_second[] = {3};
  dataset.interactions.push_user(first, 2, nullptr, times_first);
  dataset.interactions.push_user(second, 1, nullptr, times_second);
  for (char delimiter : {',', ';', '|'}) {
    for (const char* name : {"csv", "tsv"}) {
      ReadOptions options = format(name);
      options.delimiter = delimiter;
      options.timestamp_column = "when";
      const std::string path = (folder_ / "ids.txt").string();
      write_log(path, dataset, options);
      RawLog back = read_log(path, options);
      EXPECT_EQ(back.users.externals(), dataset.users.externals()) << name << delimiter;
      EXPECT_EQ(back.items.externals(), dataset.items.externals()) << name << delimiter;
      EXPECT_EQ(back.timestamp, (std::vector<int64_t>{1, 2, 3})) << name << delimiter;
      EXPECT_FALSE(back.has_rating);
    }
  }
}

TEST_F(ReadersTest, EmptyInputsAreErrors) {
  EXPECT_EQ(log_error(write("empty.txt", ""), format("seq")), "empty.txt: no interactions (empty file)");
  EXPECT_EQ(log_error(write("header.csv", "user_id,item_id\n"), format("csv")),
            "header.csv: no interactions (empty file or header only)");
  EXPECT_NE(log_error((folder_ / "missing.txt").string(), format("seq")).find("missing.txt: cannot open"),
            std::string::npos);
}

TEST_F(ReadersTest, ColumnsRoundTripThroughTheRunLogInRowOrder) {
  // Ids with the delimiter, quotes and edge spaces; rows out of time order stay in row order.
  const std::vector<std::string> users = {"u\t1", "u\"2\"", " u3 ", "u\t1"};
  const std::vector<std::string> items = {"10", "x,y", "10", "20"};
  const std::vector<float> ratings = {4.5f, 1.0f, 0.25f, 3.0f};
  const std::vector<int64_t> times = {300, 100, 200, -5};
  const RawLog log = raw_log_from_columns("DataFrame", users, items, ratings.data(), times.data());
  EXPECT_EQ(log.line, (std::vector<int64_t>{0, 1, 2, 3}));
  const std::string path = (folder_ / "run.tsv").string();
  write_raw_log(path, log);
  const RawLog back = read_log(path, raw_log_read_options(log));
  ASSERT_EQ(back.size(), 4);
  for (int64_t row = 0; row < 4; ++row) {
    EXPECT_EQ(back.users.external(back.user[row]), users[row]) << row;
    EXPECT_EQ(back.items.external(back.item[row]), items[row]) << row;
    EXPECT_EQ(back.rating[row], ratings[row]) << row;
    EXPECT_EQ(back.timestamp[row], times[row]) << row;
  }
  EXPECT_TRUE(back.has_rating && back.has_timestamp);

  // Without ratings and times: rating 1, row order is time order, and the file has neither column.
  const RawLog plain = raw_log_from_columns("DataFrame", {"a", "b"}, {"1", "2"}, nullptr, nullptr);
  write_raw_log(path, plain);
  const RawLog plain_back = read_log(path, raw_log_read_options(plain));
  EXPECT_FALSE(plain_back.has_rating || plain_back.has_timestamp);
  EXPECT_EQ(plain_back.rating, (std::vector<float>{1.0f, 1.0f}));
}

TEST_F(ReadersTest, ColumnsThatCannotBeReadOrWrittenNameTheColumnAndRow) {
  const std::vector<float> ratings = {1.0f, std::nanf("")};
  EXPECT_EQ(error_of([&] { raw_log_from_columns("DataFrame", {"a", "b"}, {"1", "2"}, ratings.data(), nullptr); }),
            "DataFrame: column 'rating', row 1: nan is not a finite number");
  const RawLog broken = raw_log_from_columns("DataFrame", {"a", "b\nc"}, {"1", "2"}, nullptr, nullptr);
  const std::string path = (folder_ / "x.tsv").string();
  EXPECT_EQ(error_of([&] { write_raw_log(path, broken); }),
            "DataFrame: column 'user', row 1: an id with a line break cannot be written to " + path);
  EXPECT_FALSE(fs::exists(folder_ / "x.tsv"));
}

TEST(SharedData, BeautyHasTheDocumentedSizesAndKeepsFileOrderIds) {
  const std::string beauty = std::string(EMBREC_SHARED_DATA) + "/amazon-beauty/Beauty.txt";
  if (!fs::exists(beauty)) GTEST_SKIP() << "shared data absent, skipping: " << beauty << " not found";
  Dataset b = prepare_dataset(read_log(beauty, format("seq")), PrepareOptions{});
  EXPECT_EQ(b.name, "Beauty");
  EXPECT_EQ(b.user_count(), 22363);
  EXPECT_EQ(b.item_count(), 12101);
  EXPECT_EQ(b.interactions.size(), 198502);
  // Ids follow first appearance, and Beauty's ids were assigned that way: internal = external - 1.
  for (int32_t i = 0; i < b.item_count(); ++i) ASSERT_EQ(b.items.external(i), std::to_string(i + 1));
  for (int32_t u = 0; u < b.user_count(); ++u) ASSERT_EQ(b.users.external(u), std::to_string(u + 1));
  for (int32_t u = 0; u < b.user_count(); ++u) ASSERT_GE(b.interactions.length(u), 5);  // the 5-core
}

TEST(SharedData, MovieLens100kHasTheDocumentedSizes) {
  const std::string udata = std::string(EMBREC_SHARED_DATA) + "/ml-100k/u.data";
  if (!fs::exists(udata)) GTEST_SKIP() << "shared data absent, skipping: " << udata << " not found";
  Dataset m = prepare_dataset(read_log(udata, format("udata")), PrepareOptions{});
  EXPECT_EQ(m.user_count(), 943);
  EXPECT_EQ(m.item_count(), 1682);
  EXPECT_EQ(m.interactions.size(), 100000);
  // Time order within each user.
  for (int32_t u = 0; u < m.user_count(); ++u)
    for (int64_t p = m.interactions.offsets[u] + 1; p < m.interactions.offsets[u + 1]; ++p)
      ASSERT_LE(m.interactions.timestamps[p - 1], m.interactions.timestamps[p]);
  // The first line of u.data is user 196, item 242: both get internal id 0.
  EXPECT_EQ(m.users.external(0), "196");
  EXPECT_EQ(m.items.external(0), "242");
}

}  // namespace
}  // namespace embrec::data
