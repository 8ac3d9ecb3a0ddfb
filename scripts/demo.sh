#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds omni-embed and runs the demo: a few queries and documents embedded and
# their similarity matrix printed, with the real model when it is in the Hugging Face cache, otherwise with a
# random-weight test model (the demo says which).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
build/tools/cli/omni-embed demo "$@"
