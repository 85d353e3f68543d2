// [data] config section and load_data(): read (or generate the demo) -> prepare -> features -> cache -> split.
#include "embrec/data/load.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

#include <filesystem>

#include "embrec/data/cache.h"
#include "embrec/data/demo.h"
#include "embrec/util/checksum.h"
#include "embrec/util/error.h"
#include "embrec/util/files.h"

namespace embrec::data {

namespace fs = std::filesystem;

namespace {
DemoOptions demo_options_from(ConfigTable& table, bool news) {
  DemoOptions options;
  options.users = table.get("users", options.users);
  options.items = table.get("items", options.items);
  options.intents = table.only(!news, "to demo = \"default\"").get("intents", options.intents);
  options.seed = static_cast<uint64_t>(table.get("seed", static_cast<int64_t>(options.seed)));
  return options;
}

// [data.item_features] / [data.user_features]. Keys that do not apply to the chosen format are errors, and so is a
// file that does not exist (naming the key and the file).
FeatureSource feature_source_from(ConfigTable& table, FeatureSide side) {
  FeatureSource s;
  s.path = table.get_path("path", s.path);
  if (s.path.empty()) fail("{}: missing key '{}' (the feature file)", table.source(), table.key_path("path"));
  s.read.format = table.get_one_of("format", s.read.format, kFeatureFormatNames);
  table.check(format_describes(s.read.format, side), "format",
              fmt::format("must describe {} ({}), got '{}'", side == FeatureSide::Items ? "items" : "users",
                          side == FeatureSide::Items ? "auto, movies, uitem, attributes, csv or tsv"
                                                     : "auto, users, uuser, csv or tsv",
                          name_of(kFeatureFormatNames, s.read.format)));
  const FeatureFormat format = format_by_extension(s.read.format, s.path);
  const bool items = side == FeatureSide::Items, automatic = format == FeatureFormat::Auto;
  auto movies = table.only(items && (automatic || format == FeatureFormat::Movies || format == FeatureFormat::UItem),
                           "to item features of format movies or uitem");
  s.read.item_map = movies.get_path("item_map", s.read.item_map);
  auto uitem = table.only(items && (automatic || format == FeatureFormat::UItem), "to item features of format uitem");
  s.read.genre_names = uitem.get_path("genre_names", s.read.genre_names);
  const bool table_format = format == FeatureFormat::Csv || format == FeatureFormat::Tsv;
  auto delimited = table.only(table_format, "to format = \"csv\" or \"tsv\" (or a .csv or .tsv path)");
  s.read.id_column = delimited.get("id_column", std::string(!table_format ? "" : items ? "item_id" : "user_id"));
  s.read.multi_columns = delimited.get("multi_columns", s.read.multi_columns);
  s.read.separator = delimited.get("separator", s.read.separator);
  table.check(!s.read.separator.empty(), "separator", "must not be empty");
  for (const auto& [key, file] : {std::pair<const char*, const std::string&>{"path", s.path},
                                  {"item_map", s.read.item_map},
                                  {"genre_names", s.read.genre_names}})
    table.check(file.empty() || file_exists(file), key, fmt::format(": no such file {}", file));
  return s;
}

// What decides a cached dataset besides the files' contents: the read, preparation and feature options.
std::string options_text(const DataConfig& config) {
  std::string text =
      fmt::format("format={};user={};item={};rating={};time={};delimiter={};min_rating={}:{};dedup={};cores={},{}",
                  name_of(kLogFormatNames, config.read.format), config.read.user_column, config.read.item_column,
                  config.read.rating_column, config.read.timestamp_column, static_cast<int>(config.read.delimiter),
                  config.prepare.has_min_rating, config.prepare.min_rating, name_of(kDedupNames, config.prepare.dedup),
                  config.prepare.user_core, config.prepare.item_core);
  for (const auto& [side, source] : {std::pair<const char*, const FeatureSource&>{"item", config.item_features},
                                     {"user", config.user_features}}) {
    if (!source.configured()) continue;
    const FeatureReadOptions& read = source.read;
    text += fmt::format(";{}_features=format:{},item_map:{},genre_names:{},id_column:{},separator:{},multi:", side,
                        name_of(kFeatureFormatNames, read.format), !read.item_map.empty(), !read.genre_names.empty(),
                        read.id_column, read.separator);
    for (const std::string& column : read.multi_columns) text += column + ",";
  }
  return text;
}

// The log's SHA-256, or with features the SHA-256 of the log's and every feature file's, so that a changed feature
// file rebuilds the cache as a changed log does.
std::string source_checksum(const DataConfig& config) {
  const std::string log = sha256_file_hex(config.path);
  std::string features;
  for (const FeatureSource* source : {&config.item_features, &config.user_features})
    for (const std::string* file : {&source->path, &source->read.item_map, &source->read.genre_names})
      if (!file->empty()) features += sha256_file_hex(*file);
  return features.empty() ? log : sha256_hex(log + features);
}

Features configured_features(const FeatureSource& source, FeatureSide side, const IdMap& ids) {
  if (!source.configured()) return Features();
  Features features = attach_features(read_features(source.path, side, source.read), ids);
  int32_t covered = 0;
  for (int32_t entity = 0; entity < features.entity_count(); ++entity)
    covered += features.offsets[static_cast<int64_t>(entity) * features.field_count()] !=
               features.offsets[static_cast<int64_t>(entity + 1) * features.field_count()];
  const bool items = side == FeatureSide::Items;
  std::string fields;
  for (const std::string& field : features.fields) fields += (fields.empty() ? "" : ", ") + field;
  if (covered == 0)
    spdlog::warn("{}: none of the log's {} has features (do its ids match the log's?)", source.path,
                 items ? "items" : "users");
  spdlog::info("{} features ({}) for {} of {} {}", items ? "item" : "user", fields, covered, ids.size(),
               items ? "items" : "users");
  return features;
}

// The configured features, read onto the dataset's internal ids.
void attach_configured_features(const DataConfig& config, Dataset& dataset) {
  dataset.item_features = configured_features(config.item_features, FeatureSide::Items, dataset.items);
  dataset.user_features = configured_features(config.user_features, FeatureSide::Users, dataset.users);
}

// The log prepared, with its features: from the cache when it holds this exact dataset, else built (and cached).
Dataset prepared_dataset(const DataConfig& config) {
  if (!file_exists(config.path)) fail("{}: no such file", config.path);
  const std::string options_checksum = sha256_hex(options_text(config));
  std::string cache_path, checksum;
  if (!config.cache_dir.empty()) {
    checksum = source_checksum(config);
    cache_path = fmt::format("{}/{}-{}.bin", config.cache_dir, fs::path(config.path).stem().string(),
                             options_checksum.substr(0, 16));
    std::string why;
    std::optional<Dataset> cached = read_cache(cache_path, checksum, options_checksum, &why);
    if (cached) return std::move(*cached);
    if (why != "no cache file") spdlog::info("rebuilding dataset cache {}: {}", cache_path, why);
  }
  Dataset dataset = prepare_dataset(read_log(config.path, config.read), config.prepare);
  attach_configured_features(config, dataset);
  if (!cache_path.empty()) {
    make_directories(config.cache_dir);
    write_cache(cache_path, dataset, checksum, options_checksum);
  }
  return dataset;
}

}  // namespace

DataConfig DataConfig::from(ConfigTable& table) {
  DataConfig c;
  const std::string source = table.source();
  c.path = table.get_path("path", c.path);
  c.demo = table.get("demo", c.demo);
  c.read.format = table.get_one_of("format", c.read.format, kLogFormatNames);
  const bool news = c.news();
  auto logs = table.only(!news, "to interaction logs, not to news data (format = \"mind\" or demo = \"mind\")");
  c.read.user_column = logs.get("user_column", c.read.user_column);
  c.read.item_column = logs.get("item_column", c.read.item_column);
  c.read.rating_column = logs.get("rating_column", c.read.rating_column);
  c.read.timestamp_column = logs.get("timestamp_column", c.read.timestamp_column);
  const std::string delimiter = logs.get("delimiter", std::string());
  table.check(delimiter.size() <= 1, "delimiter", fmt::format("must be a single character, got '{}'", delimiter));
  c.read.delimiter = delimiter.empty() ? 0 : delimiter[0];
  if (table.has("min_rating")) {
    c.prepare.has_min_rating = true;
    c.prepare.min_rating = logs.get("min_rating", 0.0);
  }
  c.prepare.dedup = logs.get_one_of("dedup", c.prepare.dedup, kDedupNames);
  c.prepare.user_core = logs.get_at_least("user_core", c.prepare.user_core, 0);
  c.prepare.item_core = logs.get_at_least("item_core", c.prepare.item_core, 0);
  c.cache_dir = logs.get_path("cache_dir", std::string());
  auto mind = table.only(news, "to news data (format = \"mind\" or demo = \"mind\")");
  c.mind.train_folder = c.path;
  c.mind.dev_folder = table.only(c.read.format == LogFormat::Mind, "to format = \"mind\"").get_path("dev_path", "");
  if (c.read.format == LogFormat::Mind && c.demo.empty() && c.mind.dev_folder.empty())
    fail("{}: missing key '{}' (the MIND dev folder; path is the train folder)", source, table.key_path("dev_path"));
  c.mind.valid_days = mind.get_at_least("valid_days", c.mind.valid_days, 1);
  c.mind.title_length = mind.get_at_least("title_length", c.mind.title_length, 1);
  c.mind.vocabulary.min_count = mind.get_at_least("min_word_count", c.mind.vocabulary.min_count, 1);
  c.mind.word_vectors = mind.get_path("word_vectors", c.mind.word_vectors);
  c.mind.word_vector_options.dimension =
      table.only(!c.mind.word_vectors.empty(), "to word_vectors").get_at_least("word_dimension", 0, 0);
  table.check(c.mind.word_vectors.empty() || file_exists(c.mind.word_vectors), "word_vectors",
              fmt::format(": no such file {}", c.mind.word_vectors));
  table.check(!(news && table.has("split")), "split",
              "applies only to interaction logs: news data is split by its folders and valid_days");
  table.check(!(news && (table.has("item_features") || table.has("user_features"))),
              table.has("item_features") ? "item_features" : "user_features",
              "applies only to interaction logs: news models read the news text");
  if (!news) {  // news data is split by its folders: its run configs carry no [data.split] table
    ConfigTable& split = table.sub("split");
    c.split.method = split.get_one_of("method", c.split.method, kSplitMethodNames);
    c.split.train_ratio = split.get_in_range("train_ratio", c.split.train_ratio, "(0, 1]");
    c.split.valid_ratio = split.get("valid_ratio", c.split.valid_ratio);
    c.split.seed = static_cast<uint64_t>(split.get("seed", static_cast<int64_t>(c.split.seed)));
    c.split.drop_unseen = split.get("drop_unseen", c.split.drop_unseen);
    c.split.stratify_by = split.get_one_of("stratify_by", c.split.stratify_by, kStratifyByNames);
    c.split.cold_item_ratio = split.get("cold_item_ratio", c.split.cold_item_ratio);
    split.check(c.split.cold_item_ratio >= 0 && c.split.cold_item_ratio < 1, "cold_item_ratio",
                fmt::format("must be in [0, 1), got {}", c.split.cold_item_ratio));
    split.check(c.split.valid_ratio >= 0 && c.split.valid_ratio < c.split.train_ratio, "valid_ratio",
                fmt::format("must be in [0, train_ratio), got {}", c.split.valid_ratio));
    auto by_user = split.only(c.split.method == SplitMethod::User, "to method = \"user\"");
    c.split.user_ratios = by_user.get("user_ratios", c.split.user_ratios);
    c.split.input_ratio = by_user.get_in_range("input_ratio", c.split.input_ratio, "(0, 1)");
    split.check(user_ratios_problem(c.split.user_ratios).empty(), "user_ratios", user_ratios_problem(c.split.user_ratios));
  }
  if (c.demo.empty() && c.path.empty())
    fail("{}: missing key '{}' (the interaction log; or demo = \"default\")", source, table.key_path("path"));
  table.check(c.demo.empty() || c.demo == "default" || c.demo == "mind", "demo",
              fmt::format("must be \"default\" or \"mind\", got '{}'", c.demo));
  if (!c.demo.empty() && !c.path.empty())
    fail("{}: keys '{}' and '{}' exclude each other", source, table.key_path("path"), table.key_path("demo"));
  if (c.demo == "mind") {
    c.mind_demo = mind_demo_options();
    ConfigTable& options = table.sub("demo_options");
    c.mind_demo.users = options.get_positive("users", c.mind_demo.users);
    c.mind_demo.news = options.get_positive("items", c.mind_demo.news);
    c.mind_demo.seed = static_cast<uint64_t>(options.get("seed", static_cast<int64_t>(c.mind_demo.seed)));
    options.only(false, "to demo = \"default\"").get("intents", 0);
  } else {
    c.demo_options = demo_options_from(table.sub("demo_options"), news);
  }
  if (table.has("item_features")) c.item_features = feature_source_from(table.sub("item_features"), FeatureSide::Items);
  if (table.has("user_features")) c.user_features = feature_source_from(table.sub("user_features"), FeatureSide::Users);
  return c;
}

namespace {
// News data: the configured MIND folders, or demo = "mind" generated into a temporary folder that is removed after
// reading.
LoadedData load_news(const DataConfig& config) {
  MindOptions options = config.mind;
  std::string generated;
  if (config.demo == "mind") {
    generated = (fs::temp_directory_path() /
                 fmt::format("embrec-mind-demo-{}-{}", static_cast<int64_t>(::getpid()), config.mind_demo.seed))
                    .string();
    const MindGeneratorTruth truth = generate_mind(config.mind_demo, generated);
    options.train_folder = truth.train_folder;
    options.dev_folder = truth.dev_folder;
  }
  struct Cleanup {
    std::string folder;
    ~Cleanup() {
      std::error_code ignored;
      if (!folder.empty()) fs::remove_all(folder, ignored);
    }
  } cleanup{generated};
  NewsData news = load_mind(options);
  if (!generated.empty()) news.dataset.name = "mind-demo";
  return LoadedData{std::move(news.dataset), std::move(news.split)};
}
}  // namespace

LoadedData load_data(const DataConfig& config) {
  if (config.news()) return load_news(config);
  LoadedData loaded;
  if (config.demo.empty()) {
    loaded.dataset = prepared_dataset(config);
  } else {
    loaded.dataset = generate_demo(config.demo_options);
    attach_configured_features(config, loaded.dataset);
  }
  loaded.split = make_split(loaded.dataset, config.split);
  return loaded;
}

}  // namespace embrec::data
