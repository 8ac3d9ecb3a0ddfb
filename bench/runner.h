// The timed rows of one child process of omni-embed-bench: one dtype and bf16 GEMM kernel (or one setting of the video
// sweep), its text, image, audio and video documents, each validated (a finite unit vector) and warmed up before
// `repeats` timed runs, printed to stdout as one JSON object per row with its median, spread and percent of peak.
#pragma once

#include "args.h"

namespace oe::bench {

// Runs the rows `a` asks for (a.dtypes and a.bf16_gemm hold one value each here); returns the exit code.
int run_child(const BenchArgs& a);

}  // namespace oe::bench
