// The [data] section of a config and the one call that turns it into a Dataset and a Split (through the cache).
#pragma once

#include <string>

#include "embrec/data/dataset.h"
#include "embrec/data/demo.h"
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

  static DataConfig from(ConfigTable& table);
};

struct LoadedData {
  Dataset dataset;
  Split split;
};

LoadedData load_data(const DataConfig& config);

}  // namespace embrec::data
