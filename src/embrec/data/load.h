// The [data] section of a config and the one call that turns it into a Dataset (with its features) and a Split
// (through the cache).
#pragma once

#include <string>

#include "embrec/data/dataset.h"
#include "embrec/data/demo.h"
#include "embrec/data/features.h"
#include "embrec/data/prepare.h"
#include "embrec/data/readers.h"
#include "embrec/data/split.h"
#include "embrec/util/config.h"

namespace embrec::data {

struct DataConfig {
  std::string path;        // input log; relative paths are resolved against the config file's folder
  std::string demo;        // instead of path: "default" generates the built-in synthetic demo data
  ReadOptions read;
  PrepareOptions prepare;
  SplitOptions split;
  std::string cache_dir;   // empty: no cache; otherwise <cache_dir>/<name>-<checksum>.bin
  DemoOptions demo_options;  // [data.demo_options]: users, items, intents, seed
  // [data.item_features] / [data.user_features]: path (relative to the config file), format, item_map,
  // genre_names, id_column, multi_columns, separator (see features.h). An absent table: no features on that side.
  FeatureSource item_features;
  FeatureSource user_features;

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
