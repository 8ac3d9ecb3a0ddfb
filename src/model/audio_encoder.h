// The audio tower of the Omni thinker (spec qwen25-omni-thinker.md §5): a Whisper-style encoder that works on
// chunks of 2·n_window mel frames independently (conv stem with zero padding at the chunk edges, sinusoidal positions
// restarting in every chunk, attention within the chunk), then pools pairs of frames per audio, normalises and
// projects to the decoder width.
//
// The convolutions are matmuls over im2col rows: the kernel [d_out, d_in, 3] is reordered once at load to
// [d_out, 3·d_in] (tap-major), so that an output frame's row is its three input frames side by side.
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

// One audio's log-mel features: [n_mel, n_frames] row-major (the feature extractor's layout), of which the first
// `valid_frames` columns are read.
struct AudioFeaturesView {
  const float* values = nullptr;
  int64_t n_frames = 0;
  int64_t valid_frames = 0;
};

struct AudioLayerWeights {
  std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;  // [d]
  kernels::PackedLinear qkv;  // q, k, v stacked [3d, d]; q and v with biases, k without (a zero bias)
  kernels::PackedLinear out;  // [d, d] + bias
  kernels::PackedLinear fc1;  // [d_ff, d] + bias
  kernels::PackedLinear fc2;  // [d, d_ff] + bias
};

// Sees the hidden state [Σ M_i, d_model] of all audios: stage -1 is the layers' input (conv stem + positions), j the
// output of layer j.
using AudioObserver = std::function<void(int64_t stage, const float* x, int64_t n_frames)>;

class AudioEncoder {
 public:
  // Loads and packs the `audio_tower.*` weights. Throws InvalidInput naming a missing or mis-shaped tensor.
  AudioEncoder(const AudioConfig& config, const io::Checkpoint& ckpt, const std::string& prefix,
               kernels::Compute compute, kernels::Bf16Gemm bf16_gemm,
              const LoadProgress& progress = {});

  // Encodes the audios (each needs at least 3 valid frames, else InvalidInput) and writes their rows
  // [Σ tokens(T_i), out_d_model] in order to `out`; in BF16 mode they hold bf16 values.
  void encode(const std::vector<AudioFeaturesView>& audios, float* out, const AudioObserver& observer = {}) const;

  // Frames after the conv stem (M = (T − 1)//2 + 1) and rows out of the pooling (media::audio_token_count).
  static int64_t encoder_frames(int64_t valid_frames) { return valid_frames > 0 ? (valid_frames - 1) / 2 + 1 : 0; }
  const AudioConfig& config() const { return config_; }
  size_t packed_bytes() const;
  int64_t matmul_params() const;

 private:
  int64_t chunk_frames() const { return 2 * config_.n_window; }

  AudioConfig config_;
  kernels::Compute compute_;
  kernels::PackedLinear conv1_, conv2_;  // [d, 3·n_mel], [d, 3·d] tap-major, with biases
  std::vector<float> positions_;         // [n_window, d]: the sinusoid table rows a chunk can use
  std::vector<AudioLayerWeights> layers_;
  std::vector<float> ln_post_w_, ln_post_b_;
  kernels::PackedLinear proj_;           // [out_d_model, d] + bias
};

// Model FLOPs of one encoder pass over audios of these valid frame counts: the matmuls (convolutions included) and
// 4·d per query-key pair within each chunk, in every layer.
double audio_flops(const AudioConfig& c, const std::vector<int64_t>& valid_frames);

}  // namespace oe::model
