// ConfigTable: typed reads, defaults, unknown keys and wrong types named with the file, resolved output.
#include "embrec/util/config.h"

#include <gtest/gtest.h>

#include <functional>
#include <sstream>

#include "embrec/util/error.h"

namespace embrec {
namespace {

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(Config, ReadsValuesAndDefaults) {
  ConfigTable root = ConfigTable::parse_string("a = 3\nb = 0.5\nc = 'x'\n[t]\nks = [1, 2]\n", "f.toml");
  EXPECT_EQ(root.get("a", int64_t{0}), 3);
  EXPECT_EQ(root.get("b", 0.0), 0.5);
  EXPECT_EQ(root.get("c", "y"), "x");
  EXPECT_EQ(root.get("missing", int64_t{9}), 9);
  EXPECT_EQ(root.sub("t").get("ks", std::vector<int64_t>{}), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(root.get("a", 0.0), 3.0);  // an integer is accepted where a float is expected
  root.finish();
}

TEST(Config, UnknownKeysAreErrorsNamingKeyAndFile) {
  ConfigTable root = ConfigTable::parse_string("a = 3\n[t]\nkk = 1\n", "f.toml");
  root.get("a", int64_t{0});
  root.sub("t").get("k", int64_t{0});
  EXPECT_EQ(error_of([&] { root.finish(); }), "f.toml: unknown key 't.kk'");
}

TEST(Config, WrongTypesAreErrors) {
  ConfigTable root = ConfigTable::parse_string("a = 'three'\nb = [1, 'x']\nt = 1\n", "f.toml");
  EXPECT_EQ(error_of([&] { root.get("a", int64_t{0}); }), "f.toml: key 'a' must be an integer, got a string");
  EXPECT_EQ(error_of([&] { root.get("b", std::vector<int64_t>{}); }),
            "f.toml: key 'b' must be an array of integers, got a string");
  EXPECT_EQ(error_of([&] { root.sub("t"); }), "f.toml: key 't' must be a table, got an integer");
  EXPECT_EQ(error_of([&] { root.get_choice("a", "x", {"x", "y"}); }),
            "f.toml: key 'a' must be one of {x, y}, got 'three'");
}

TEST(Config, SyntaxErrorsNameFileLineAndColumn) {
  const std::string message = error_of([] { ConfigTable::parse_string("a = 1\nb = = 2\n", "f.toml"); });
  EXPECT_EQ(message.rfind("f.toml:2:", 0), 0u) << message;
}

TEST(Config, ResolvedHoldsDefaultsAndSubTables) {
  ConfigTable root = ConfigTable::parse_string("[m]\nx = 1\n", "f.toml");
  root.sub("m").get("x", int64_t{0});
  root.sub("m").get("y", 2.5);
  std::ostringstream text;
  text << root.resolved();
  EXPECT_NE(text.str().find("x = 1"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("y = 2.5"), std::string::npos) << text.str();
}

}  // namespace
}  // namespace embrec
