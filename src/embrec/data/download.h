// A resumable HTTP(S) download through libcurl, for data/fetch.cpp: bytes go to a `.part` file, and a try that
// finds one asks the server for the rest with a Range request (starting over when the server ignores it).
#pragma once

#include <cstdint>
#include <string>

#include "embrec/data/fetch.h"

namespace embrec::data {

// Downloads `url` into `part_path`, continuing what an earlier try left there, with up to options.attempts tries.
// Returns when the server has sent the whole body (or, answering 416 to a resume, has nothing more to send); the
// caller verifies the .part file and renames it. `size_bytes` (0: unknown) sizes the progress bar when the server
// sends no length, and a longer .part file is dropped. Errors name the URL and say whether the .part file is kept.
void download_to_part(const std::string& url, const std::string& part_path, int64_t size_bytes,
                      const FetchOptions& options);

}  // namespace embrec::data
