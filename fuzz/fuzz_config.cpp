// Config TOML: parsed, then the [data], [eval] and [serve] tables read with their checks and unknown keys refused.
#include "embrec/data/load.h"
#include "embrec/eval/evaluator.h"
#include "embrec/serve/config.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace embrec;
  fuzz::expect_only_errors([&] {
    ConfigTable root = ConfigTable::parse_string({reinterpret_cast<const char*>(data), size}, "fuzz.toml");
    fuzz::expect_only_errors([&] { (void)data::DataConfig::from(root.sub("data")); });
    fuzz::expect_only_errors([&] { (void)eval::EvalConfig::from(root.sub("eval")); });
    fuzz::expect_only_errors([&] { (void)serve::ServeConfig::from(root.sub("serve")); });
  });
  return 0;
}
