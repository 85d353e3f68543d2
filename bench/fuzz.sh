#!/usr/bin/env bash
# Fuzzes everything embrec reads from outside (fuzz/: log readers, item attributes, config TOML, dataset cache,
# export manifest, the HTTP service) with libFuzzer under AddressSanitizer + UndefinedBehaviorSanitizer. Builds
# fuzz/ with clang into build-fuzz, then runs each target from its seeds (fuzz/corpus/<name>, copied to a corpus
# that grows in build-fuzz/corpus/<name>) until RUNS executions or SECONDS seconds, whichever comes first, and
# prints one row per target. A crash, leak, timeout or sanitizer report is kept in build-fuzz/findings/<target>/
# and makes the script exit 1. Usage:
#   bench/fuzz.sh [TARGET ...]        (default: all)   Env: RUNS=1000000 SECONDS_EACH=900 TIMEOUT=10
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-1000000}
SECONDS_EACH=${SECONDS_EACH:-900}
TIMEOUT=${TIMEOUT:-10}
mkdir -p build-fuzz
cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ > build-fuzz/build.log 2>&1 || { cat build-fuzz/build.log; exit 1; }
cmake --build build-fuzz >> build-fuzz/build.log 2>&1 || { tail -30 build-fuzz/build.log; exit 1; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_log_seq fuzz_log_movielens fuzz_log_udata fuzz_log_csv fuzz_log_tsv fuzz_item_attributes fuzz_config
           fuzz_cache fuzz_manifest fuzz_http)
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
echo "| target | executions | seconds | exec/s | corpus | findings |"
echo "|---|---|---|---|---|---|"
for target in "${targets[@]}"; do
  seeds="fuzz/corpus/${target#fuzz_}"
  corpus="build-fuzz/corpus/${target#fuzz_}"
  findings="build-fuzz/findings/$target"
  mkdir -p "$corpus" "$findings"
  cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true
  log="build-fuzz/$target.log"
  start=$(date +%s.%N)
  set +e
  "build-fuzz/$target" -runs="$RUNS" -max_total_time="$SECONDS_EACH" -timeout="$TIMEOUT" -rss_limit_mb=4096 \
    -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" > "$log" 2>&1
  rc=$?
  set -e
  seconds=$(echo "$(date +%s.%N) - $start" | bc)
  executions=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
  found=$(ls "$findings" | wc -l)
  [ "$rc" -ne 0 ] || [ "$found" -ne 0 ] && status=1
  printf '| %s | %s | %.0f | %.0f | %s | %s |\n' "$target" "${executions:-?}" "$seconds" \
    "$(echo "${executions:-0} / $seconds" | bc -l)" "$(ls "$corpus" | wc -l)" \
    "$( [ "$found" -eq 0 ] && [ "$rc" -eq 0 ] && echo none || echo "$found (exit $rc, see $log)")"
done
rm -rf /dev/shm/embrec-fuzz-* 2>/dev/null || true
exit $status
