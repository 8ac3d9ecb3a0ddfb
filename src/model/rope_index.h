// TMRoPE position ids of one unpadded sequence (spec qwen25-omni-thinker.md §8, transformers' get_rope_index), for
// sequences whose media blocks are not interleaved (use_audio_in_video = false, the embedding model's recipe).
//
// The reference walks the sequence block by block and starts each block at (max of the previous block) + 1. For
// such sequences that is the same as a single scan: text, special and audio tokens take consecutive positions on
// all three rows; a run of image or video placeholders of grid (t, h, w) with merged grid H' × W' takes
// T = base + ⌊ti·spg·pps⌋ (fp32; images use ti = 0 only), H = base + y, W = base + x, and the next token continues
// at base + max(T offset, H' − 1, W' − 1) + 1.
#pragma once

#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/vision_encoder.h"

namespace oe::model {

struct RopeMedia {
  std::vector<GridTHW> images;               // in sequence order
  std::vector<GridTHW> videos;               // in sequence order
  std::vector<float> video_second_per_grid;  // one per video (seconds per temporal patch)
};

// Positions [3, n] (rows T, H, W). InvalidInput when the placeholder runs do not match the media (a run of the
// wrong length, more runs than items, or items left over), naming the token and its index.
std::vector<int64_t> tmrope_position_ids(const std::vector<int64_t>& ids, const TokenIds& tokens, int64_t merge,
                                         const RopeMedia& media);

}  // namespace oe::model
