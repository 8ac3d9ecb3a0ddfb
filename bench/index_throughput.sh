#!/usr/bin/env bash
# Indexing throughput: `omni-embed index` over a generated library of N text files (about 120 words each) and the
# quality-demo pictures, first run (everything embedded) and second run (nothing changed: hashing only).
#
#   bench/index_throughput.sh [N=2000] [MODEL=a tiny test model, generated when missing]
#
# Prints sources/s and segments/s of both runs. Needs a Release build in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
B=build/tools/cli/omni-embed
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
MODEL=${2:-$WORK/tiny}
[ -d "$MODEL" ] || "$B" make-test-model "$MODEL" --preset tiny >/dev/null 2>&1
mkdir -p "$WORK/lib/texts" "$WORK/lib/pictures"
/usr/bin/python3 - "$WORK/lib/texts" "$N" <<'PY'
import random, sys
out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
words = "the a of harbour lecture entropy invoice cat river signal frame audio picture meeting notes budget".split()
for i in range(n):
    with open(f"{out}/doc{i:05d}.txt", "w") as f:
        f.write(" ".join(rng.choice(words) for _ in range(120)) + "\n")
PY
cp datasets/quality-demo/images/*.png "$WORK/lib/pictures/"
for run in first unchanged; do
  start=$(date +%s.%N)
  "$B" index "$WORK/lib" --index "$WORK/idx" --model "$MODEL" --format json > "$WORK/$run.json"
  end=$(date +%s.%N)
  /usr/bin/python3 - "$WORK/$run.json" "$start" "$end" "$run" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); secs = float(sys.argv[3]) - float(sys.argv[2])
n = j["added"] + j["updated"] + j["unchanged"]
print(f"{sys.argv[4]:>9} run: {n} sources ({j['segments_embedded']} segments embedded) in {secs:.2f} s wall "
      f"(model load included): {n / secs:.0f} sources/s, {j['segments_embedded'] / secs:.0f} segments/s")
PY
done
