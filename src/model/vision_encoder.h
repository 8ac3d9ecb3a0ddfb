// The vision tower of the Omni thinker (spec qwen25-omni-thinker.md §4): a Qwen2.5-VL ViT with 2-D rotary, window
// attention over 4×4 merged-token windows (full attention in the blocks the config lists), SwiGLU MLPs with biases
// and a patch merger that concatenates each 2×2 block of patches.
//
// Windows: the reference permutes the tokens into window order, attends per window and un-permutes after the
// merger. Attention, rotary and the merger are all equivariant under that permutation (rotary angles travel with
// their token; the merger works on aligned groups of 4), so this implementation gathers the patches into window
// order once, runs every block on contiguous segments (windows, or whole temporal slices for the full-attention
// blocks, which are also contiguous in window order) and scatters the merged rows back to processor order.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "io/safetensors.h"
#include "kernels/compute.h"
#include "kernels/matmul.h"
#include "model/config.h"
#include "model/text_decoder.h"

namespace oe::model {

// One image or video in patch units (image_grid_thw / video_grid_thw).
struct GridTHW {
  int64_t t = 0, h = 0, w = 0;
  int64_t patches() const { return t * h * w; }
};

// The token layout of a batch of grids in window order.
struct VisionLayout {
  // Window-order slot k of merged tokens holds the processor-order merged token order[k].
  std::vector<int64_t> order;
  // Patch offsets of the windows and of the full-attention segments (one per image and temporal slice).
  std::vector<int64_t> cu_window, cu_full;
  // Patch row and column of each patch in window order (for the 2-D rotary).
  std::vector<int64_t> patch_row, patch_col;
};

// Builds the layout; InvalidInput when a grid is empty or h, w are not multiples of `merge`.
VisionLayout vision_layout(const std::vector<GridTHW>& grids, int64_t merge, int64_t window_merged);

struct VisionBlockWeights {
  std::vector<float> norm1, norm2;  // [d]
  kernels::PackedLinear qkv;        // q, k, v stacked [3d, d], with biases
  kernels::PackedLinear proj;       // [d, d] + bias
  kernels::PackedLinear gate_up;    // gate and up stacked [2·d_ff, d], with biases
  kernels::PackedLinear down;       // [d, d_ff] + bias
};

// Sees the hidden state in processor order: stage -1 after the patch embedding, 0.. after each block.
using VisionObserver = std::function<void(int64_t stage, const float* x, int64_t n_patches)>;

class VisionEncoder {
 public:
  // Loads and packs the `visual.*` weights. Throws naming the tensor.
  VisionEncoder(const VisionConfig& config, const io::Checkpoint& ckpt, const std::string& prefix,
                kernels::Compute compute, kernels::Bf16Gemm bf16_gemm,
              const LoadProgress& progress = {});

  // pixels: [Σ patches, row_len()] in processor order (spec §6.1.3), grids in the same order. Writes the merged
  // rows [Σ patches / 4, out_d_model] in processor order to `out`; in BF16 mode they are bf16 values.
  // `pixels_read` (optional) is called once the pixels have been read, before the blocks run: the caller may free
  // them there.
  void encode(const float* pixels, const std::vector<GridTHW>& grids, float* out, const VisionObserver& observer = {},
              const std::function<void()>& pixels_read = {}) const;

  int64_t row_len() const { return config_.in_channels * config_.temporal_patch_size * patch_area(); }
  int64_t merge_unit() const { return config_.spatial_merge_size * config_.spatial_merge_size; }
  const VisionConfig& config() const { return config_; }
  size_t packed_bytes() const;
  int64_t matmul_params() const;

 private:
  int64_t patch_area() const { return config_.patch_size * config_.patch_size; }
  int64_t window_merged() const;

  VisionConfig config_;
  kernels::Compute compute_;
  kernels::PackedLinear patch_embed_;  // [d, row_len], no bias
  std::vector<VisionBlockWeights> blocks_;
  std::vector<float> merger_norm_;     // [d]
  kernels::PackedLinear merger_fc1_;   // [4d, 4d] + bias
  kernels::PackedLinear merger_fc2_;   // [out, 4d] + bias
};

// Model FLOPs of one encoder pass over `grids`: the matmuls plus 4·d per query-key pair in every block.
double vision_flops(const VisionConfig& c, int64_t matmul_params, const std::vector<GridTHW>& grids);

}  // namespace oe::model
