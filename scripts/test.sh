#!/usr/bin/env bash
# Installs dependencies if missing, builds (Release) and runs the whole test suite with CTest, then the sanitizer
# stage (scripts/sanitize.sh: the suite under AddressSanitizer + UndefinedBehaviorSanitizer, the index and service
# tests under ThreadSanitizer). EMBREC_SANITIZE=0 skips that stage.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
if [ "${EMBREC_SANITIZE:-1}" != 0 ]; then scripts/sanitize.sh; fi
