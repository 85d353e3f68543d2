// The [data] section of a config and the one call that turns it into a Dataset (with its features) and a Split
// (through the cache).
#pragma once

#include <string>

#include "embrec/data/dataset.h"
#include "embrec/data/demo.h"
#include "embrec/data/features.h"
#include "embrec/data/mind_generator.h"
#include "embrec/data/news.h"
#include "embrec/data/prepare.h"
#include "embrec/data/readers.h"
#include "embrec/data/split.h"
#include "embrec/util/config.h"

namespace embrec::data {

struct DataConfig {
  std::string path;        // input log; relative paths are resolved against the config file's folder
  std::string demo;        // instead of path: "default" generates the built-in synthetic demo data, "mind" MIND-format
                           // news (data/mind_generator.h, mind_demo_options; users, items = news, seed)
  ReadOptions read;
  PrepareOptions prepare;
  SplitOptions split;
  std::string cache_dir;   // empty: no cache; otherwise <cache_dir>/<name>-<checksum>.bin
  DemoOptions demo_options;  // [data.demo_options]: users, items, intents, seed
  // [data.item_features] / [data.user_features]: path (relative to the config file), format, item_map,
  // genre_names, id_column, multi_columns, separator (see features.h). An absent table: no features on that side.
  FeatureSource item_features;
  FeatureSource user_features;
  // News data (format = "mind": path is the train folder, dev_path the dev folder; or demo = "mind"): valid_days,
  // title_length, min_word_count, word_vectors (and word_dimension). Log-only keys (columns, filters, cache_dir,
  // features, [data.split]) are errors with it.
  MindOptions mind;
  MindGeneratorOptions mind_demo;  // demo = "mind": mind_demo_options() with [data.demo_options] users, items, seed
  bool news() const { return read.format == LogFormat::Mind || demo == "mind"; }

  static DataConfig from(ConfigTable& table);
};

struct LoadedData {
  Dataset dataset;
  Split split;
};

// Reads the log (or generates the demo), prepares it and reads the configured features onto its internal ids, through
// the cache when cache_dir is set: the cache is keyed by the preparation and feature options, and rebuilt when the
// log or any feature file (item map and u.genre included) changes.
LoadedData load_data(const DataConfig& config);

}  // namespace embrec::data
