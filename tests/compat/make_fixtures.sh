#!/usr/bin/env bash
# Writes tests/compat/data: what the omni-embed binary BUILD/tools/cli/omni-embed gives for a fixed set of items,
# so later changes can be held to it (tests/compat/compat_test.cc).
#
#   tests/compat/make_fixtures.sh BUILD_DIR      (a Release build; OE_FIXTURE_COMMIT names the commit it was built
#                                                 from, default HEAD)
#
# - media/: small generated media (a PNG, a 22.05 kHz WAV, a video with sound, a silent video), kept in the
#   repository so the fixtures never depend on an encoder's version;
# - items.jsonl: text, image, audio, mixed and video items, queries and documents;
# - vectors-<dtype>-<fusion>.jsonl: `embed --input items.jsonl` on the tiny test models for every fusion mode
#   (fp32 on tiny-f32 seed 1, bf16 on tiny-bf16 seed 2), without the timing field;
# - index-format1/, index-late-format1/: index folders (catalog only) built from manifest.jsonl, and
#   search-*.jsonl: `search --format json` over them;
# - cpu.txt: what decides the kernels' rounding: the CPU features of the machine that wrote them and the build type
#   (an optimised build contracts multiply-adds that a debug build does not).
# Everything is made under /tmp/omni-embed-compat, so the paths an index records are the same on every machine.
set -euo pipefail
BUILD=$(cd "$1" && pwd)
SRC=$(cd "$(dirname "$0")" && pwd)
OUT="$SRC/data"
CLI="$BUILD/tools/cli/omni-embed"
WORK=/tmp/omni-embed-compat
rm -rf "$WORK"; mkdir -p "$WORK"
mkdir -p "$OUT/media"

ff() { ffmpeg -nostdin -v error -y "$@"; }
if [ ! -f "$OUT/media/bars.png" ]; then
  ff -f lavfi -i testsrc2=size=96x64:rate=1 -frames:v 1 "$OUT/media/bars.png"
  ff -f lavfi -i "sine=frequency=330:sample_rate=22050:duration=3" -af "volume=0.5" "$OUT/media/tone.flac"
  ff -f lavfi -i testsrc2=size=64x48:rate=8 -f lavfi -i "sine=frequency=550:sample_rate=16000" -t 4 \
     -c:v libx264 -pix_fmt yuv420p -c:a flac "$OUT/media/clip.mkv"
  ff -f lavfi -i mandelbrot=size=64x48:rate=8 -t 4 -c:v libx264 -pix_fmt yuv420p "$OUT/media/silent.mkv"
fi
cp -r "$OUT/media" "$WORK/media"

"$CLI" make-test-model "$WORK/tiny-f32" --preset tiny --dtype f32 --seed 1 >/dev/null
"$CLI" make-test-model "$WORK/tiny-bf16" --preset tiny --dtype bf16 --seed 2 >/dev/null

cat > "$OUT/items.jsonl" <<'ITEMS'
{"id": "q-text", "role": "query", "text": "a drawing of a cat"}
{"id": "d-text", "role": "document", "text": "A pencil sketch of a cat on white paper, signed in the corner."}
{"id": "d-empty", "role": "document", "text": ""}
{"id": "d-image", "image": "media/bars.png"}
{"id": "q-image", "role": "query", "text": "what is this?", "image": "media/bars.png"}
{"id": "d-audio", "audio": "media/tone.flac"}
{"id": "q-audio", "role": "query", "audio": "media/tone.flac"}
{"id": "d-mixed", "text": "colour bars and a tone", "audio": "media/tone.flac", "image": ["media/bars.png", "media/bars.png"]}
{"id": "d-video", "video": "media/clip.mkv"}
{"id": "q-video", "role": "query", "text": "bars", "video": "media/clip.mkv"}
{"id": "d-silent", "video": "media/silent.mkv"}
{"id": "d-video-text", "text": "a test pattern", "video": "media/clip.mkv", "image": "media/bars.png"}
ITEMS
cp "$OUT/items.jsonl" "$WORK/items.jsonl"
VIDEO="--video-min-pixels 3136 --video-max-pixels 6272"
# embed, keeping every line but its timing; exit code 1 (some items failed, as some must in some modes) is fine.
embed() {
  local out=$1; shift
  "$CLI" embed "$@" > "$WORK/out.jsonl" 2>/dev/null || [ $? -eq 1 ]
  python3 -c '
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    j.pop("seconds", None)
    print(json.dumps(j, separators=(",", ":")))' "$WORK/out.jsonl" > "$out"
}
for fusion in separate interleaved video audio late; do
  embed "$OUT/vectors-fp32-$fusion.jsonl" --model "$WORK/tiny-f32" --dtype fp32 --input "$WORK/items.jsonl" \
    --fusion "$fusion" $VIDEO --batch-tokens 300
done
for fusion in separate late; do
  embed "$OUT/vectors-bf16-$fusion.jsonl" --model "$WORK/tiny-bf16" --input "$WORK/items.jsonl" --fusion "$fusion" \
    $VIDEO
done

cat > "$OUT/manifest.jsonl" <<'MANIFEST'
{"id": "cat", "title": "Cats", "text": "A pencil sketch of a cat on white paper."}
{"id": "harbour", "text": "  A harbour at dusk, boats and gulls.  "}
{"id": "bars", "image": "media/bars.png"}
{"id": "tone", "text": "a steady tone", "audio": "media/tone.flac"}
{"id": "clip", "video": "media/clip.mkv"}
{"id": "silent", "video": "media/silent.mkv"}
MANIFEST
cp "$OUT/manifest.jsonl" "$WORK/manifest.jsonl"
rm -rf "$OUT/index-format1" "$OUT/index-late-format1"
"$CLI" index --model "$WORK/tiny-f32" --dtype fp32 $VIDEO --index "$WORK/index-format1" "$WORK/manifest.jsonl" >/dev/null
"$CLI" index --model "$WORK/tiny-f32" --dtype fp32 $VIDEO --fusion late --index "$WORK/index-late-format1" \
  "$WORK/manifest.jsonl" >/dev/null
for idx in index-format1 index-late-format1; do
  mkdir -p "$OUT/$idx"
  # The catalog alone, its write-ahead log folded in: the caches are derived from it.
  python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.execute("PRAGMA journal_mode=DELETE"); c.close()' "$WORK/$idx/catalog.sqlite"
  cp "$WORK/$idx/catalog.sqlite" "$OUT/$idx/catalog.sqlite"
done
"$CLI" search --model "$WORK/tiny-f32" --dtype fp32 --index "$WORK/index-format1" "a cat" -k 10 --format json \
  > "$OUT/search-text.jsonl"
"$CLI" search --model "$WORK/tiny-f32" --dtype fp32 --index "$WORK/index-format1" --video "$WORK/media/clip.mkv" \
  -k 10 --format json > "$OUT/search-video.jsonl"
"$CLI" search --model "$WORK/tiny-f32" --dtype fp32 --index "$WORK/index-late-format1" "a tone" -k 10 \
  --late-weight 0.3 --format json > "$OUT/search-late.jsonl"
"$CLI" search --model "$WORK/tiny-f32" --dtype fp32 --index "$WORK/index-late-format1" --video "$WORK/media/clip.mkv" \
  -k 10 --format json > "$OUT/search-late-video.jsonl"

{
  echo "# written by tests/compat/make_fixtures.sh with the binary of commit ${OE_FIXTURE_COMMIT:-$(git -C "$SRC" rev-parse --short HEAD)}"
  build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
  grep -q '^OE_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" && build_type="$build_type+sanitize"
  echo "build=$build_type"
  echo "flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512_bf16|avx512_vnni|amx_bf16|amx_tile)$' | sort | tr '\n' ' ' | sed 's/ $//')"
} > "$OUT/cpu.txt"
rm -rf "$WORK"
echo "make_fixtures: wrote $OUT"
