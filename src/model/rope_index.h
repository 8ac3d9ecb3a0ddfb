// TMRoPE position ids of one unpadded sequence (spec qwen25-omni-thinker.md §8, transformers' get_rope_index): media
// blocks one after another (use_audio_in_video = false, the embedding model's recipe) and videos with their audio
// interleaved in 2-second chunks (use_audio_in_video = true, the paper's "early fusion", spec §7.3, §8.2, §8.3).
//
// The reference walks the sequence block by block and starts each block at (max of the previous block) + 1. For
// such sequences that is the same as a single scan: text, special and audio tokens take consecutive positions on
// all three rows; a run of image or video placeholders of grid (t, h, w) with merged grid H' × W' takes
// T = base + ⌊ti·spg·pps⌋ (fp32; images use ti = 0 only), H = base + y, W = base + x, and the next token continues
// at base + max(T offset, H' − 1, W' − 1) + 1.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "model/config.h"
#include "model/vision_encoder.h"

namespace oe::model {

struct RopeMedia {
  std::vector<GridTHW> images;               // in sequence order
  std::vector<GridTHW> videos;               // in sequence order
  std::vector<float> video_second_per_grid;  // one per video (seconds per temporal patch)
  // Interleaved videos: a video block opened by <|vision_bos|><|audio_bos|> holds its own audio's tokens, this many
  // per video (entries for the other videos are ignored; empty = no video is interleaved).
  std::vector<int64_t> video_audio_tokens;
};

// One run of placeholders of an interleaved video block: `count` video tokens (video = true) or audio tokens.
struct InterleavedRun {
  bool video = false;
  int64_t count = 0;
};

// The order of the placeholders between <|vision_bos|><|audio_bos|> and <|audio_eos|><|vision_eos|> for a video of
// grid `g` (merged by `merge`) and `audio_tokens` audio tokens: chunk j's video tokens, then chunk j's audio tokens,
// the chunks cut by get_chunked_index (spec §8.3) at every tokens-per-chunk (position_id_per_seconds ·
// seconds_per_chunk) of their time values. The embedder lays the tokens out and the positions are read back by it.
std::vector<InterleavedRun> interleaved_runs(const GridTHW& g, float second_per_grid, int64_t audio_tokens,
                                             int64_t merge, const TokenIds& tokens);

// get_chunked_index (spec §8.3): [start, end) ranges of `values` (minus `subtract`), a new range whenever a value
// reaches the next multiple k·tokens_per_chunk (at most one boundary per element, as the reference).
std::vector<std::pair<int64_t, int64_t>> chunked_index(const std::vector<int64_t>& values, int64_t tokens_per_chunk,
                                                       int64_t subtract = 0);

// Positions [3, n] (rows T, H, W). InvalidInput when the placeholder runs do not match the media (a run of the
// wrong length, more runs than items, or items left over), naming the token and its index.
std::vector<int64_t> tmrope_position_ids(const std::vector<int64_t>& ids, const TokenIds& tokens, int64_t merge,
                                         const RopeMedia& media);

}  // namespace oe::model
