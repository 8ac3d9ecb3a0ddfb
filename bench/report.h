// The results of omni-embed-bench as the parent prints them: the text, image, audio and video tables with their
// percent-of-peak and peak-RSS cells, each peer's time ratio to the reference row, the measured peaks, and the
// --report file of every row as JSON lines.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace oe::bench {

// The rows the peers are compared against: omni-embed in bf16 on the kernel it uses by default on this CPU (plain
// "omni-embed", or that kernel's row in a --bf16-gemm comparison).
bool is_reference_row(const nlohmann::json& r);

// Prints the machine, the four tables (rows of a kind that is absent print no table, except text's) and the
// measured peak of each dtype to stdout.
void print_tables(const std::vector<nlohmann::json>& rows);

// Writes every row, one JSON object per line, to `path`; IoError when it cannot.
void write_report(const std::string& path, const std::vector<nlohmann::json>& rows);

}  // namespace oe::bench
