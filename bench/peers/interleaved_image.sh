#!/usr/bin/env bash
# Interleaved A/B of image documents: omni-embed and the PyTorch eager peer alternate, round by round, so both see
# the same phase of a machine whose speed drifts (docs/benchmarks.md). Prints one JSON line per engine and round,
# then the per-round time ratios.
#   bench/peers/interleaved_image.sh [SIZE=448] [ROUNDS=4] [MODEL=the bench's 3b test model]
set -euo pipefail
cd "$(dirname "$0")/../.."
size="${1:-448}"
rounds="${2:-4}"
model="${3:-${OMNI_EMBED_CACHE:-$HOME/.cache/omni-embed}/test-models/3b-bf16}"
[ -f "$model/config.json" ] || { echo "no model at $model: run 'omni-embed-bench' once to write it" >&2; exit 1; }
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for round in $(seq "$rounds"); do
  echo "round $round/$rounds" >&2
  build/bench/omni-embed-bench --child --model "$model" --tokens 16 --images "$size" --dtype bf16 --threads 2 \
      --repeats 2 2>/dev/null | grep '"image"' | tee -a "$out"
  /usr/bin/python3 bench/peers/torch_vision.py --images "$size" --threads 2 --repeats 2 --warmup 1 2>/dev/null \
      | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
for i in range(0, len(rows) - 1, 2):
    a, b = rows[i], rows[i + 1]
    print("round %d: omni-embed %.2f s, pytorch-eager %.2f s, pytorch/omni-embed %.2f"
          % (i // 2 + 1, a["seconds_median"], b["seconds_median"], b["seconds_median"] / a["seconds_median"]))
PY
