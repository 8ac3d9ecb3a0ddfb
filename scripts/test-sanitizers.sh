#!/usr/bin/env bash
# Builds omni-embed with AddressSanitizer + UBSan (Debug) into build-asan/ and runs the whole test suite there: bad
# inputs must give clear errors, never memory errors or undefined behaviour. Run it after scripts/test.sh (or
# scripts/setup.sh), which installs what it needs. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DOE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
built=$(date +%s)
cd build-asan
rc=0
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --output-on-failure -j"$(nproc)" "$@" || rc=$?
echo "test-sanitizers: build $((built - start)) s, tests $(( $(date +%s) - built )) s"
exit "$rc"
