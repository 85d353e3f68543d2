// The export manifest: any JSON (or not JSON) gives a Manifest or an Error naming the field.
#include <nlohmann/json.hpp>

#include "embrec/index/export.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace embrec;
  const nlohmann::json parsed =
      nlohmann::json::parse(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size,
                            /*callback=*/nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return 0;
  fuzz::expect_only_errors([&] {
    const index::Manifest manifest = index::Manifest::from_json(parsed, "manifest.json");
    (void)manifest.version();
    (void)manifest.to_json().dump();
  });
  return 0;
}
