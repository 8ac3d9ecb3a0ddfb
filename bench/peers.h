// The peers of omni-embed-bench: the PyTorch eager and llama.cpp scripts in bench/peers/ (notes/peers.md), run on the
// same work as omni-embed's rows, found in this build's source tree (OE_SOURCE_DIR: the benchmark reads the source
// tree, the product binary never does). Also how the parent reads rows from a process, its own children's or a
// peer's: one JSON object per line.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.h"

namespace oe::bench {

// Runs a shell command, returning the JSON objects it printed one per line on stdout (other lines are ignored).
std::vector<nlohmann::json> run_json_lines(const std::string& cmd);

// Runs every peer in a.peers ("torch", "llama.cpp", "none") on a.tokens, and torch's image, audio and video peers on
// a.images, a.audio and a.video unless they are "none", with `threads` threads. A peer that prints nothing gives a
// {"peer": ..., "skipped": ...} row; an unknown peer name is InvalidInput.
std::vector<nlohmann::json> run_peers(const BenchArgs& a, int threads);

}  // namespace oe::bench
