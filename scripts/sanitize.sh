#!/usr/bin/env bash
# The sanitizer stage of the test command (scripts/test.sh runs it after the Release suite; EMBREC_SANITIZE=0 skips
# it): the whole test suite built with AddressSanitizer + UndefinedBehaviorSanitizer into build-asan, and the index
# and service tests (threads: HTTP workers, hot reloads) with ThreadSanitizer into build-tsan. Any sanitizer report
# fails the stage. Its time on the 2-core machine is in bench/RESULTS.md ("Sanitizers and fuzzing").
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
export OMP_NUM_THREADS=1  # libgomp is not instrumented; one thread keeps its internals out of the reports
start=$(date +%s)

# -O1 -g1 (line tables only): reports keep file and line, and the build takes well under half the time of -O2 -g.
flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DEMBREC_BUILD_BENCH=OFF)
cmake -S . -B build-asan -G Ninja "${flags[@]}" -DEMBREC_SANITIZE=address,undefined > /dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan --output-on-failure -j"$jobs"
asan_done=$(date +%s)

cmake -S . -B build-tsan -G Ninja "${flags[@]}" -DEMBREC_SANITIZE=thread > /dev/null
cmake --build build-tsan -j"$jobs" --target serve_tests
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
  build-tsan/tests/serve_tests
echo "sanitizers: address+undefined $((asan_done - start)) s, thread $(($(date +%s) - asan_done)) s"
