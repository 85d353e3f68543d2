// ConfigTable: typed reads, defaults, unknown keys and wrong types named with the file, resolved output.
#include "embrec/util/config.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "embrec/util/error.h"
#include "error_of.h"

namespace embrec {
namespace {

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

TEST(Config, CheckedReadsNameTheKeyAndTheBound) {
  ConfigTable root = ConfigTable::parse_string("n = 0\nm = -1\nx = 1.0\ny = 0.5\nz = 'a'\n[t]\np = -2\n", "f.toml");
  EXPECT_EQ(error_of([&] { root.get_positive("n", int64_t{1}); }), "f.toml: key 'n' must be positive, got 0");
  EXPECT_EQ(error_of([&] { root.get_at_least("m", 0, 0); }), "f.toml: key 'm' must be >= 0, got -1");
  EXPECT_EQ(error_of([&] { root.get_in_range("x", 0.5, "[0, 1)"); }), "f.toml: key 'x' must be in [0, 1), got 1");
  EXPECT_EQ(error_of([&] { root.get_in_range("x", 0.5, "(0, 1]"); }), "(no error)");
  EXPECT_EQ(error_of([&] { root.get_in_range("y", 0.5, "(0.5, 1]"); }), "f.toml: key 'y' must be in (0.5, 1], got 0.5");
  EXPECT_EQ(error_of([&] { root.sub("t").get_positive("p", 1.0); }), "f.toml: key 't.p' must be positive, got -2");
  EXPECT_EQ(root.get_positive("absent", 3.5), 3.5);  // a missing key takes its default, which is checked too
  EXPECT_EQ(error_of([&] { root.get_positive("absent2", 0); }), "f.toml: key 'absent2' must be positive, got 0");
}

enum class Mode { Fast, Exact };
const Names<Mode> kModeNames = {{"fast", Mode::Fast}, {"exact", Mode::Exact}};

TEST(Config, ModesBecomeEnumsAndUnknownValuesListTheChoices) {
  ConfigTable root = ConfigTable::parse_string("a = 'exact'\nb = 'quick'\n", "f.toml");
  EXPECT_EQ(root.get_one_of("a", Mode::Fast, kModeNames), Mode::Exact);
  EXPECT_EQ(root.get_one_of("c", Mode::Fast, kModeNames), Mode::Fast);
  EXPECT_EQ(error_of([&] { root.get_one_of("b", Mode::Fast, kModeNames); }),
            "f.toml: key 'b' must be one of {fast, exact}, got 'quick'");
  EXPECT_EQ(name_of(kModeNames, Mode::Exact), "exact");
  std::ostringstream text;
  text << root.resolved();
  EXPECT_NE(text.str().find("c = 'fast'"), std::string::npos) << text.str();  // the default is recorded by name
}

TEST(Config, KeysThatApplyOnlyUnderAModeAreErrorsElsewhereAndUnrecordedWhenAbsent) {
  ConfigTable root = ConfigTable::parse_string("loss = 'bce'\ntemperature = 0.5\n", "f.toml");
  EXPECT_EQ(error_of([&] { root.only(false, "to loss = \"softmax\"").get_positive("temperature", 1.0); }),
            "f.toml: key 'temperature' applies only to loss = \"softmax\"");
  EXPECT_EQ(root.only(false, "to loss = \"softmax\"").get("chunk", int64_t{7}), 7);
  EXPECT_EQ(root.only(true, "to loss = \"bce\"").get_positive("temperature", 1.0), 0.5);
  root.get("loss", "softmax");
  root.finish();
  std::ostringstream text;
  text << root.resolved();
  EXPECT_EQ(text.str().find("chunk"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("temperature = 0.5"), std::string::npos) << text.str();
}

TEST(Config, RulesOverSeveralKeysNameTheKey) {
  ConfigTable root = ConfigTable::parse_string("[m]\nheads = 3\n", "f.toml");
  ConfigTable& model = root.sub("m");
  EXPECT_EQ(error_of([&] { model.check(false, "heads", "(3) must divide key 'm.dim' (64)"); }),
            "f.toml: key 'm.heads' (3) must divide key 'm.dim' (64)");
  EXPECT_EQ(error_of([&] { model.fail_key("heads", ": unknown thing 'x'"); }), "f.toml: key 'm.heads': unknown thing 'x'");
}

// Files written by a test into a fresh folder, removed afterwards.
class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("embrec-config-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "ablations");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (root_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::filesystem::path root_;
};

TEST_F(ConfigFiles, AnOverlayStatesOnlyWhatDiffersFromItsBase) {
  write("base.toml", "[data]\npath = 'logs/a.txt'\n[model]\nname = 's4rec'\ntau3 = 1.0\nks = [5, 10]\n"
                     "[model.inner]\nx = 1\ny = 2\n");
  const std::string overlay =
      write("ablations/no-ckd.toml", "extends = '../base.toml'\n[model]\nbeta2 = 0.0\nks = [20]\n[model.inner]\ny = 3\n");
  ConfigTable root = ConfigTable::parse_file(overlay);
  ConfigTable& model = root.sub("model");
  EXPECT_EQ(model.get("name", ""), "s4rec");
  EXPECT_EQ(model.get("tau3", 0.0), 1.0);
  EXPECT_EQ(model.get("beta2", 0.1), 0.0);
  EXPECT_EQ(model.get("ks", std::vector<int64_t>{}), (std::vector<int64_t>{20}));  // arrays are replaced
  EXPECT_EQ(model.sub("inner").get("x", int64_t{0}), 1);                          // tables merge key by key
  EXPECT_EQ(model.sub("inner").get("y", int64_t{0}), 3);
  // A relative path is taken against the folder of the file that wrote it: the base's, not the overlay's.
  EXPECT_EQ(root.sub("data").get_path("path", ""), (root_ / "logs/a.txt").lexically_normal().string());
  // Errors name the file that wrote the key.
  EXPECT_EQ(error_of([&] { model.get_positive("tau3", 1.0); model.check(false, "tau3", "is wrong"); }),
            (root_ / "base.toml").lexically_normal().string() + ": key 'model.tau3' is wrong");
  EXPECT_EQ(error_of([&] { model.check(false, "beta2", "is wrong"); }), overlay + ": key 'model.beta2' is wrong");
  std::ostringstream text;
  text << root.resolved();
  EXPECT_EQ(text.str().find("extends"), std::string::npos) << text.str();  // the resolved config is the merged one
}

TEST_F(ConfigFiles, BasesChainAndCyclesOrMissingBasesAreErrorsNamingTheFiles) {
  write("a.toml", "extends = 'b.toml'\n[model]\nname = 'a'\n");
  write("b.toml", "extends = 'c.toml'\n[model]\ndim = 32\n");
  write("c.toml", "[model]\ndim = 64\nlayers = 2\n");
  ConfigTable chained = ConfigTable::parse_file((root_ / "a.toml").string());
  EXPECT_EQ(chained.sub("model").get("dim", int64_t{0}), 32);
  EXPECT_EQ(chained.sub("model").get("layers", int64_t{0}), 2);
  EXPECT_EQ(chained.sub("model").origin("layers"), (root_ / "c.toml").lexically_normal().string());

  write("x.toml", "extends = 'y.toml'\n");
  write("y.toml", "extends = 'x.toml'\n");
  const std::string cycle = error_of([&] { ConfigTable::parse_file((root_ / "x.toml").string()); });
  EXPECT_NE(cycle.find("key 'extends' makes a cycle: "), std::string::npos) << cycle;
  EXPECT_NE(cycle.find("y.toml -> "), std::string::npos) << cycle;
  const std::string missing = write("m.toml", "extends = 'nope.toml'\n");
  EXPECT_EQ(error_of([&] { ConfigTable::parse_file(missing); }),
            missing + ": key 'extends': no such config file " + (root_ / "nope.toml").string());
  const std::string typed = write("t.toml", "extends = 3\n");
  EXPECT_EQ(error_of([&] { ConfigTable::parse_file(typed); }),
            typed + ": key 'extends' must be a string (the base config's path)");
}

}  // namespace
}  // namespace embrec
