// The interaction-log readers (one target per format, EMBREC_FUZZ_FORMAT): any bytes give a log or an Error.
#include "embrec/data/readers.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace embrec;
  data::ReadOptions options;
  for (const auto& [name, format] : data::kLogFormatNames)
    if (name == EMBREC_FUZZ_FORMAT) options.format = format;
  if (options.format == data::LogFormat::Csv || options.format == data::LogFormat::Tsv) {
    options.user_column = "user";
    options.item_column = "item";
    options.rating_column = "rating";
    options.timestamp_column = "time";
  }
  const std::string& path = fuzz::write_input("log", {reinterpret_cast<const char*>(data), size});
  fuzz::expect_only_errors([&] { (void)data::read_log(path, options); });
  return 0;
}
