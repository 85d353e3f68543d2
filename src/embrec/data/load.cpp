// [data] config section and load_data(): read (or generate the demo) -> prepare -> cache -> split.
#include "embrec/data/load.h"

#include <spdlog/spdlog.h>


#include <filesystem>

#include "embrec/data/cache.h"
#include "embrec/data/demo.h"
#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::data {

namespace fs = std::filesystem;

namespace {
DemoOptions demo_options_from(ConfigTable& table) {
  DemoOptions options;
  options.users = table.get("users", options.users);
  options.items = table.get("items", options.items);
  options.intents = table.get("intents", options.intents);
  options.seed = static_cast<uint64_t>(table.get("seed", static_cast<int64_t>(options.seed)));
  return options;
}

}  // namespace

DataConfig DataConfig::from(ConfigTable& table) {
  DataConfig c;
  const std::string source = table.source();
  c.path = table.get_path("path", c.path);
  c.demo = table.get("demo", c.demo);
  c.read.format = table.get_one_of("format", c.read.format, kLogFormatNames);
  c.read.user_column = table.get("user_column", c.read.user_column);
  c.read.item_column = table.get("item_column", c.read.item_column);
  c.read.rating_column = table.get("rating_column", c.read.rating_column);
  c.read.timestamp_column = table.get("timestamp_column", c.read.timestamp_column);
  const std::string delimiter = table.get("delimiter", std::string());
  table.check(delimiter.size() <= 1, "delimiter", fmt::format("must be a single character, got '{}'", delimiter));
  c.read.delimiter = delimiter.empty() ? 0 : delimiter[0];
  if (table.has("min_rating")) {
    c.prepare.has_min_rating = true;
    c.prepare.min_rating = table.get("min_rating", 0.0);
  }
  c.prepare.dedup = table.get_one_of("dedup", c.prepare.dedup, kDedupNames);
  c.prepare.user_core = table.get_at_least("user_core", c.prepare.user_core, 0);
  c.prepare.item_core = table.get_at_least("item_core", c.prepare.item_core, 0);
  c.cache_dir = table.get_path("cache_dir", std::string());
  ConfigTable& split = table.sub("split");
  c.split.method = split.get_one_of("method", c.split.method, kSplitMethodNames);
  c.split.train_ratio = split.get_in_range("train_ratio", c.split.train_ratio, "(0, 1]");
  c.split.valid_ratio = split.get("valid_ratio", c.split.valid_ratio);
  c.split.seed = static_cast<uint64_t>(split.get("seed", static_cast<int64_t>(c.split.seed)));
  c.split.drop_unseen = split.get("drop_unseen", c.split.drop_unseen);
  c.split.stratify_by = split.get_one_of("stratify_by", c.split.stratify_by, kStratifyByNames);
  split.check(c.split.valid_ratio >= 0 && c.split.valid_ratio < c.split.train_ratio, "valid_ratio",
              fmt::format("must be in [0, train_ratio), got {}", c.split.valid_ratio));
  auto by_user = split.only(c.split.method == SplitMethod::User, "to method = \"user\"");
  c.split.user_ratios = by_user.get("user_ratios", c.split.user_ratios);
  c.split.input_ratio = by_user.get_in_range("input_ratio", c.split.input_ratio, "(0, 1)");
  split.check(user_ratios_problem(c.split.user_ratios).empty(), "user_ratios", user_ratios_problem(c.split.user_ratios));
  if (c.demo.empty() && c.path.empty())
    fail("{}: missing key '{}' (the interaction log; or demo = \"default\")", source, table.key_path("path"));
  table.check(c.demo.empty() || c.demo == "default", "demo", fmt::format("must be \"default\", got '{}'", c.demo));
  if (!c.demo.empty() && !c.path.empty())
    fail("{}: keys '{}' and '{}' exclude each other", source, table.key_path("path"), table.key_path("demo"));
  c.demo_options = demo_options_from(table.sub("demo_options"));
  return c;
}

LoadedData load_data(const DataConfig& config) {
  LoadedData loaded;
  if (!config.demo.empty()) {
    loaded.dataset = generate_demo(config.demo_options);
  } else {
    if (!file_exists(config.path)) fail("{}: no such file", config.path);
    const std::string options_text =
        fmt::format("format={};user={};item={};rating={};time={};delimiter={};min_rating={}:{};dedup={};cores={},{}",
                    name_of(kLogFormatNames, config.read.format), config.read.user_column, config.read.item_column, config.read.rating_column,
                    config.read.timestamp_column, static_cast<int>(config.read.delimiter),
                    config.prepare.has_min_rating, config.prepare.min_rating, name_of(kDedupNames, config.prepare.dedup),
                    config.prepare.user_core, config.prepare.item_core);
    std::optional<Dataset> cached;
    std::string cache_path;
    std::string source_checksum;
    const std::string options_checksum = sha256_hex(options_text);
    if (!config.cache_dir.empty()) {
      source_checksum = sha256_file_hex(config.path);
      cache_path = fmt::format("{}/{}-{}.bin", config.cache_dir, fs::path(config.path).stem().string(),
                               options_checksum.substr(0, 16));
      std::string why;
      cached = read_cache(cache_path, source_checksum, options_checksum, &why);
      if (!cached && why != "no cache file") spdlog::info("rebuilding dataset cache {}: {}", cache_path, why);
    }
    if (cached) {
      loaded.dataset = std::move(*cached);
    } else {
      loaded.dataset = prepare_dataset(read_log(config.path, config.read), config.prepare);
      if (!cache_path.empty()) {
        make_directories(config.cache_dir);
        write_cache(cache_path, loaded.dataset, source_checksum, options_checksum);
      }
    }
  }
  loaded.split = make_split(loaded.dataset, config.split);
  return loaded;
}

}  // namespace embrec::data
