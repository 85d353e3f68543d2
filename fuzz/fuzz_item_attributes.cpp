// Item attribute files, format detected from the content (JSON, movies.dat, u.item or text).
#include "embrec/data/item_attributes.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace embrec;
  const std::string& path = fuzz::write_input("attributes", {reinterpret_cast<const char*>(data), size});
  fuzz::expect_only_errors([&] { (void)data::read_item_attributes(path); });
  return 0;
}
