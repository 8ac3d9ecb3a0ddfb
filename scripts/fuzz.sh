#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang into build-fuzz/ and runs each one for SECONDS (default 20), one
# after another, on a scratch copy of its seed corpus (fuzz/corpus/TARGET is never modified). Fails when a target
# crashes, leaks, runs out of memory or takes more than 10 s on one input; the input that did it is kept in
# build-fuzz/artifacts/TARGET/ and the whole log in build-fuzz/logs/TARGET.log. Prints the executions of every target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      default: 20 seconds, every target (the folders of fuzz/corpus)
#
# The mutations follow a fixed seed (OE_FUZZ_SEED, default 1), so a short run (CI's 20 s) replays the start of what a
# longer run with the same seed explored: a landing fails on what the change broke, not on what chance found that
# day. Set OE_FUZZ_SEED to another number to explore elsewhere, or to 0 for a seed from the clock.
#
# Needs clang and libclang-rt-14-dev, which scripts/setup.sh installs. To replay one input:
# build-fuzz/fuzz_TARGET FILE (OE_FUZZ_VERBOSE=1 also prints the errors the parser gave as expected).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=20
seed=${OE_FUZZ_SEED:-1}
[[ $seed =~ ^[0-9]+$ ]] || { echo "fuzz: OE_FUZZ_SEED must be a number, not '$seed'" >&2; exit 2; }
if [ $# -gt 0 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
for t in "${targets[@]}"; do
  [ -d "fuzz/corpus/$t" ] || { echo "fuzz: unknown target '$t' (the targets are the folders of fuzz/corpus)" >&2; exit 2; }
done

start=$(date +%s)
cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/#/fuzz_}"
built=$(date +%s)

# Most targets write every input to a file (the parsers under test read files): on a tmpfs that is several times
# faster than on a disk (6.5x here, on ext4 mounted with discard, which trims the blocks of every truncated file).
tmp=${TMPDIR:-/tmp}
[ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm
scratch=$(mktemp -d "$tmp/oe-fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
mkdir -p build-fuzz/logs

stat_of() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

failed=()
for t in "${targets[@]}"; do
  corpus="$scratch/$t-corpus"
  artifacts="build-fuzz/artifacts/$t"
  log="build-fuzz/logs/$t.log"
  cp -r "fuzz/corpus/$t" "$corpus"
  rm -rf "$artifacts" && mkdir -p "$artifacts"  # only this run's findings
  rc=0
  # The targets' own scratch files go to $scratch too (fuzz/fuzz_util.h), so nothing is left behind.
  TMPDIR="$scratch" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "build-fuzz/fuzz_$t" -max_total_time="$seconds" -seed="$seed" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
  execs=$(stat_of number_of_executed_units "$log")
  summary=$(printf '%-12s %10s executions in %4s s (%s/s), %s new inputs, peak %s MB' "$t" "${execs:-?}" \
            "$seconds" "$(stat_of average_exec_per_sec "$log")" "$(stat_of new_units_added "$log")" \
            "$(stat_of peak_rss_mb "$log")")
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $summary: ok"
  else
    failed+=("$t")
    echo "fuzz: $summary: FAILED (exit $rc); the log's end (all of it in $log):"
    grep -v -E '^#[0-9]+' "$log" | tail -n 40 | sed 's/^/  | /'
    echo "fuzz: the input is in $artifacts/; replay it with build-fuzz/fuzz_$t FILE"
  fi
  rm -rf "$corpus"
done

echo "fuzz: build $((built - start)) s, ${#targets[@]} targets of $seconds s (seed $seed), $(( $(date +%s) - start )) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
