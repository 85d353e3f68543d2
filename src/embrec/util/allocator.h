// Allocator tuning: when tcmalloc is linked (the embrec binary links it), keep freed memory instead of returning it
// to the OS, so the next large temporary reuses pages that are already mapped. On this machine a page fault costs
// ~10 us per 4 KiB (bench/RESULTS.md); LibTorch allocates a fresh buffer for every large temporary.
#pragma once

namespace embrec {

// Returns true when tcmalloc was found and tuned; a no-op (false) under any other malloc.
bool tune_allocator();

}  // namespace embrec
