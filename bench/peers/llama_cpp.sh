#!/usr/bin/env bash
# llama.cpp peer: `llama-embedding --pooling mean --attention non-causal` on a random-weight BF16 GGUF of
# architecture qwen2 with the Qwen2.5-Omni-3B text decoder's shapes, CPU only.
#
# The source comes from the npm package node-llama-cpp@3.22.1 (package/llama/gitRelease.bundle, a git bundle of
# the llama.cpp release it ships). Everything is fetched, built and written under a cache folder outside the
# repository, ${OMNI_EMBED_PEERS_DIR:-$HOME/.cache/omni-embed/peers}, and reused by later runs:
#   node-llama-cpp-3.22.1/{package/llama/, src/ (the clone), src/build/, build.log}
#   models/qwen2-random-bf16-L36-H2048-F11008.gguf   (about 7 GB for the 3B shapes)
#   prompts/letters-N.txt, logs/
#
# Stdout: ONE JSON object per token count; everything else goes to stderr. If the peer cannot be fetched or built,
# prints {"peer": "llama.cpp", "skipped": "reason"} and exits 0; a count whose run fails gets a "skipped" object.
# seconds_*: the one llama_decode of the N tokens (model load and llama.cpp's warm-up excluded), from llama.cpp's
# log timestamps; wall_seconds: the whole process. Each repeat is a fresh process.
#
# Usage: llama_cpp.sh [--tokens 128,512,2048] [--threads 2] [--repeats 3] [--layers 36] [--jobs N]
# Environment: OMNI_EMBED_PEERS_DIR (cache folder), OMNI_EMBED_PYTHON (a python3 with numpy; default
# /usr/bin/python3 when present).

set -u -o pipefail

readonly PEER="llama.cpp"
readonly NPM_NAME="node-llama-cpp"
readonly NPM_VERSION="3.22.1"

tokens_arg="128,512,2048"
threads=2
repeats=3
layers=36
hidden=2048
heads=16
kv_heads=2
ffn=11008
vocab=151936
jobs=""

log() { printf '[llama_cpp] %s\n' "$*" >&2; }

json_escape() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/ }
    s=${s//$'\r'/ }
    s=${s//$'\t'/ }
    printf '%s' "$s"
}

skip() {
    log "skipped: $1"
    printf '{"peer": "%s", "skipped": "%s"}\n' "$PEER" "$(json_escape "$1")"
    exit 0
}

usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0" >&2
}

is_pos_int() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

while (($#)); do
    case $1 in
        --tokens) tokens_arg=${2-}; shift 2 || { usage; exit 2; } ;;
        --threads) threads=${2-}; shift 2 || { usage; exit 2; } ;;
        --repeats) repeats=${2-}; shift 2 || { usage; exit 2; } ;;
        --layers) layers=${2-}; shift 2 || { usage; exit 2; } ;;
        --jobs) jobs=${2-}; shift 2 || { usage; exit 2; } ;;
        -h|--help) usage; exit 0 ;;
        *) log "unknown argument '$1'"; usage; exit 2 ;;
    esac
done

IFS=',' read -r -a token_counts <<< "$tokens_arg"
if ((${#token_counts[@]} == 0)); then log "--tokens '$tokens_arg' is empty"; exit 2; fi
for n in "${token_counts[@]}"; do
    is_pos_int "$n" || { log "--tokens '$tokens_arg': '$n' is not a positive integer"; exit 2; }
done
for pair in "threads:$threads" "repeats:$repeats" "layers:$layers"; do
    is_pos_int "${pair#*:}" || { log "--${pair%%:*} '${pair#*:}' is not a positive integer"; exit 2; }
done
if [[ -n $jobs ]] && ! is_pos_int "$jobs"; then log "--jobs '$jobs' is not a positive integer"; exit 2; fi
[[ -n $jobs ]] || jobs=$(nproc 2>/dev/null || echo 2)

# ---- cache folder, never inside the repository ---------------------------------------------------------------------
peers_dir=${OMNI_EMBED_PEERS_DIR:-${HOME:-}/.cache/omni-embed/peers}
[[ -n ${OMNI_EMBED_PEERS_DIR:-} || -n ${HOME:-} ]] || skip "neither OMNI_EMBED_PEERS_DIR nor HOME is set"
mkdir -p "$peers_dir" 2>/dev/null || skip "cannot create the cache folder $peers_dir"
peers_dir=$(cd "$peers_dir" && pwd -P) || skip "cannot enter the cache folder $peers_dir"
repo_root=$(cd "$(dirname "$0")/../.." && pwd -P)
case "$peers_dir/" in
    "$repo_root/"*) skip "the cache folder $peers_dir is inside the repository; set OMNI_EMBED_PEERS_DIR elsewhere" ;;
esac

# one run at a time per cache folder: fetching, building and timing must not overlap
if command -v flock >/dev/null 2>&1; then
    exec 9>"$peers_dir/.lock"
    if ! flock -n 9; then
        log "waiting for another run that holds $peers_dir/.lock"
        flock 9 || skip "cannot lock $peers_dir/.lock"
    fi
fi

for tool in git cmake c++ tar; do
    command -v "$tool" >/dev/null 2>&1 || skip "'$tool' is not installed"
done

pkg_dir="$peers_dir/$NPM_NAME-$NPM_VERSION"
src_dir="$pkg_dir/src"
build_dir="$src_dir/build"
bin_dir="$build_dir/bin"
info_json="$pkg_dir/package/llama/llama.cpp.info.json"
mkdir -p "$pkg_dir" "$peers_dir/models" "$peers_dir/prompts" "$peers_dir/logs" \
    || skip "cannot create folders under $peers_dir"

have_binaries() { [[ -x $bin_dir/llama-embedding && -x $bin_dir/llama-bench ]]; }

# ---- fetch and build (skipped when the binaries already exist) -----------------------------------------------------
if ! have_binaries; then
    setup_start=$SECONDS
    if [[ ! -f $pkg_dir/package/llama/gitRelease.bundle || ! -f $info_json ]]; then
        command -v npm >/dev/null 2>&1 || skip "'npm' is not installed (needed to fetch $NPM_NAME@$NPM_VERSION)"
        log "fetching $NPM_NAME@$NPM_VERSION with npm pack into $pkg_dir"
        tgz="$NPM_NAME-$NPM_VERSION.tgz"
        rm -f "$pkg_dir/$tgz"
        (cd "$pkg_dir" && npm pack "$NPM_NAME@$NPM_VERSION") >>"$pkg_dir/npm.log" 2>&1
        [[ -f $pkg_dir/$tgz ]] || skip "npm pack $NPM_NAME@$NPM_VERSION failed (see $pkg_dir/npm.log)"
        tar -xzf "$pkg_dir/$tgz" -C "$pkg_dir" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json \
            || skip "$pkg_dir/$tgz has no package/llama/gitRelease.bundle"
        rm -f "$pkg_dir/$tgz"
    fi
    if [[ ! -f $src_dir/CMakeLists.txt ]]; then
        log "cloning package/llama/gitRelease.bundle into $src_dir"
        rm -rf "$src_dir" "$src_dir.tmp"
        git clone --quiet "$pkg_dir/package/llama/gitRelease.bundle" "$src_dir.tmp" >&2 2>>"$pkg_dir/clone.log" \
            || skip "git clone of $pkg_dir/package/llama/gitRelease.bundle failed (see $pkg_dir/clone.log)"
        mv "$src_dir.tmp" "$src_dir" || skip "cannot move the clone to $src_dir"
    fi
    generator=()
    if [[ ! -f $build_dir/CMakeCache.txt ]] && command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
    log "building llama.cpp (CPU only, -j$jobs); log: $pkg_dir/build.log"
    build_start=$SECONDS
    {
        cmake -S "$src_dir" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
            -DGGML_CUDA=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF &&
        cmake --build "$build_dir" -j"$jobs" --target llama-bench llama-embedding llama-quantize
    } >"$pkg_dir/build.log" 2>&1 || skip "the llama.cpp build failed (see $pkg_dir/build.log)"
    have_binaries || skip "the build finished without $bin_dir/llama-embedding (see $pkg_dir/build.log)"
    log "fetch and clone took $((build_start - setup_start)) s, the build $((SECONDS - build_start)) s"
fi

tag=$(sed -n 's/.*"tag"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$info_json" 2>/dev/null | head -n 1)
ggml_version=$(sed -n 's/^set(GGML_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)).*/\2/p' \
    "$src_dir/ggml/CMakeLists.txt" 2>/dev/null | paste -sd. -)
version="${tag:-unknown}${ggml_version:+ (ggml $ggml_version)}"

# ---- the random-weight GGUF (written once, reused) -----------------------------------------------------------------
python=${OMNI_EMBED_PYTHON:-}
if [[ -z $python ]]; then
    if [[ -x /usr/bin/python3 ]]; then python=/usr/bin/python3; else python=$(command -v python3 || true); fi
fi
model="$peers_dir/models/qwen2-random-bf16-L$layers-H$hidden-F$ffn.gguf"
if [[ ! -f $model ]]; then
    [[ -n $python ]] || skip "no python3 to write the GGUF"
    "$python" -c 'import numpy' 2>/dev/null || skip "$python has no numpy (needed to write the GGUF); set OMNI_EMBED_PYTHON"
    kv=$((hidden / heads * kv_heads))
    need=$((2 * (2 * vocab * hidden + layers * (2 * hidden * hidden + 2 * kv * hidden + 3 * ffn * hidden))))
    avail=$(df -P -B1 "$peers_dir/models" 2>/dev/null | awk 'NR == 2 { print $4 }')
    if [[ -n $avail ]] && ((avail < need + (1 << 30))); then
        skip "writing the GGUF needs $((need >> 20)) MiB in $peers_dir/models, only $((avail >> 20)) MiB are free"
    fi
    log "writing $model ($((need >> 20)) MiB of random BF16 weights)"
    gguf_start=$SECONDS
    "$python" "$(dirname "$0")/write_gguf.py" --out "$model" --gguf-py "$src_dir/gguf-py" --layers "$layers" \
        --hidden "$hidden" --heads "$heads" --kv-heads "$kv_heads" --ffn "$ffn" --vocab "$vocab" >&2 \
        || { rm -f "$model.part"; skip "writing the GGUF failed (see the messages above on stderr)"; }
    log "the GGUF took $((SECONDS - gguf_start)) s"
fi

# ---- measure ------------------------------------------------------------------------------------------------------
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.6f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
json_list() { paste -sd, - | sed 's/^/[/; s/$/]/'; }

have_time=0
[[ -x /usr/bin/time ]] && have_time=1

for n in "${token_counts[@]}"; do
    prompt="$peers_dir/prompts/letters-$n.txt"
    if [[ ! -f $prompt ]]; then
        # N ASCII letters and no newline: one pre-tokenizer word, one token per letter with this vocabulary
        awk -v n="$n" 'BEGIN { s = "abcdefghijklmnopqrstuvwxyz"; for (i = 0; i < n; i++) printf "%s", substr(s, i % 26 + 1, 1) }' \
            >"$prompt.tmp" && mv "$prompt.tmp" "$prompt"
    fi
    # llama.cpp pads the context to a multiple of 256 cells anyway, and this release aborts when the batch is not
    # that padded size: in output_reserve (n_outputs_max <= cparams.n_outputs_max) when it is below the 256
    # parallel sequences llama-embedding always asks for, and in build_pooling (ggml_can_mul_mat) when it is not a
    # multiple of 256. So -c, -b and -ub get N rounded up to 256; the work is the same, one ubatch of N tokens.
    ctx=$(((n + 255) / 256 * 256))
    evals=() llama_evals=() walls=() rss=() reported="" failed=""
    for ((r = 1; r <= repeats; r++)); do
        run_log="$peers_dir/logs/embedding-L$layers-$n-t$threads-$r.log"
        cmd=("$bin_dir/llama-embedding" -m "$model" -f "$prompt" --pooling mean --attention non-causal
             -t "$threads" -c "$ctx" -b "$ctx" -ub "$ctx" -lv 4)  # -lv 4: show libllama's timings
        t_start=$(date +%s.%N)
        if ((have_time)); then
            /usr/bin/time -f '%M' -o "$run_log.rss" "${cmd[@]}" >"$run_log" 2>&1
        else
            "${cmd[@]}" >"$run_log" 2>&1
        fi
        rc=$?
        t_end=$(date +%s.%N)
        if ((rc != 0)); then failed="llama-embedding exited with status $rc (see $run_log)"; break; fi
        got=$(sed -n 's/.*batch_decode: n_tokens = \([0-9]*\).*/\1/p' "$run_log" | tail -n 1)
        # The decode time: from the log line printed just before llama_decode to the first line of the timings,
        # printed right after the embedding (its normalisation and printing take about a millisecond). libllama's
        # own "prompt eval time" is not used: in this release it stops counting at the synchronisation that
        # output_reserve does when the batch outgrows the output buffer sized at start (N > 256), and then
        # reports well under a millisecond.
        secs=$(awk '
            function ts(s, a) { gsub(/\033\[[0-9;]*m/, "", s); if (split(s, a, ".") != 4) return -1
                                return a[1] * 60 + a[2] + a[3] / 1e3 + a[4] / 1e6 }
            /batch_decode: n_tokens = / { t0 = ts($1) }
            /llama_perf_context_print: +load time/ { if (t0 >= 0 && t0 != "") { t1 = ts($1); if (t1 >= t0) printf "%.6f", t1 - t0 }; exit }
        ' "$run_log")
        ms=$(sed -n 's/.*prompt eval time = *\([0-9.]*\) ms.*/\1/p' "$run_log" | tail -n 1)
        if [[ -z $got || -z $secs ]]; then failed="no token count or timed decode in $run_log"; break; fi
        if [[ $got != "$n" ]]; then failed="the prompt tokenized to $got tokens, not $n (see $run_log)"; break; fi
        reported=$got
        evals+=("$secs")
        [[ -n $ms ]] && llama_evals+=("$(awk -v ms="$ms" 'BEGIN { printf "%.6f", ms / 1000 }')")
        walls+=("$(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.6f", b - a }')")
        if ((have_time)) && [[ -s $run_log.rss ]]; then
            kib=$(tail -n 1 "$run_log.rss")
            [[ $kib =~ ^[0-9]+$ ]] && rss+=("$((kib * 1024))")
        fi
        log "tokens $n: run $r/$repeats decode ${evals[-1]} s (llama.cpp says ${llama_evals[-1]:-?} s), process ${walls[-1]} s"
    done
    if [[ -n $failed ]]; then
        log "tokens $n: $failed"
        printf '{"peer": "%s", "version": "%s", "tokens": %d, "threads": %d, "skipped": "%s"}\n' \
            "$PEER" "$(json_escape "$version")" "$n" "$threads" "$(json_escape "$failed")"
        continue
    fi
    fa=$(grep -o 'Flash Attention [a-z]*' "$run_log" | tail -n 1 | awk '{ print $3 }')
    extra=""
    if ((${#rss[@]} > 0)); then
        extra+=", \"peak_rss_bytes\": $(printf '%s\n' "${rss[@]}" | sort -n | tail -n 1)"
    fi
    if ((${#llama_evals[@]} > 0)); then
        extra+=", \"llama_prompt_eval_seconds_all\": $(printf '%s\n' "${llama_evals[@]}" | json_list)"
    fi
    [[ -n $fa ]] && extra+=", \"flash_attn\": \"$(json_escape "$fa")\""
    printf '{"peer": "%s", "version": "%s", "dtype": "bf16", "tokens": %d, "threads": %d, "seconds_median": %s, "seconds_all": %s, "wall_seconds": %s, "wall_seconds_all": %s, "tokens_reported": %d, "context": %d%s}\n' \
        "$PEER" "$(json_escape "$version")" "$n" "$threads" \
        "$(printf '%s\n' "${evals[@]}" | median)" "$(printf '%s\n' "${evals[@]}" | json_list)" \
        "$(printf '%s\n' "${walls[@]}" | median)" "$(printf '%s\n' "${walls[@]}" | json_list)" \
        "$reported" "$ctx" "$extra"
done
exit 0
