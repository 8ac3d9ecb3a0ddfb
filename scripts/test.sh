#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds omni-embed and runs the whole test suite. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
scripts/setup.sh
t1=$(date +%s)
scripts/build.sh
t2=$(date +%s)
cd build
rc=0
ctest --output-on-failure -j"$(nproc)" "$@" || rc=$?
echo "test: setup $((t1 - t0)) s, build $((t2 - t1)) s, tests $(( $(date +%s) - t2 )) s"
exit "$rc"
