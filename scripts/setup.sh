#!/usr/bin/env bash
# Installs embrec's Debian dependencies, then configures and builds (Release) into build/.
# Usage: scripts/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libgloo-dev libfaiss-dev libopenblas-dev
  librocksdb-dev libcpp-httplib-dev nlohmann-json3-dev libtomlplusplus-dev libcli11-dev
  libspdlog-dev libfmt-dev libgtest-dev libgmock-dev libbenchmark-dev
  libboost-dev
  libgoogle-perftools-dev
  libtinyxml2-dev libpng-dev chromium
  libssl-dev libmicrohttpd-dev
  libcurl4-openssl-dev libarchive-dev
  pybind11-dev python3-dev python3-numpy python3-pandas python3-pytest python3-matplotlib
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "${1:-}" = "--no-build" ]; then exit 0; fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "setup: built build/embrec; for the Python module: export PYTHONPATH=$PWD/build/python  (then: import embrec)"
