// The Qwen2.5 text decoder of the Omni thinker (spec qwen25-omni-thinker.md §3): GQA with q/k/v biases, M-RoPE,
// SwiGLU, RMSNorm; attention bidirectional (the embedding model) or causal (for comparison).
// Weights are validated against an explicit name/shape table, converted and pre-packed once at load; the
// memory-mapped source pages of each packed tensor are released, so only the packed copy stays resident.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "io/safetensors.h"
#include "kernels/compute.h"
#include "kernels/matmul.h"
#include "model/config.h"
#include "model/lora.h"

namespace oe::model {

enum class AttentionMode { Bidirectional, Causal };

struct TextLayerWeights {
  std::vector<float> input_norm;      // [d_model]
  kernels::PackedLinear qkv;          // q, k, v stacked: [(n_heads + 2·n_kv_heads)·d_head, d_model], with biases
  kernels::PackedLinear o;            // [d_model, n_heads·d_head], no bias
  std::vector<float> post_norm;       // [d_model]
  kernels::PackedLinear gate_up;      // gate and up stacked: [2·d_ff, d_model], no bias
  kernels::PackedLinear down;         // [d_model, d_ff], no bias
};

// One packed sequence of one or more items (segments): tokens of item s are [cu_seqlens[s], cu_seqlens[s+1]).
struct DecoderInput {
  const float* inputs_embeds = nullptr;  // [n_tokens, d_model]
  const int64_t* position_ids = nullptr; // [3, n_tokens]
  int64_t n_tokens = 0;
  std::vector<int64_t> cu_seqlens;       // empty = one segment
};

// Called after each layer with (il, residual stream [n_tokens, d_model]); used by parity tests and dumps.
using LayerObserver = std::function<void(int64_t il, const float* x, int64_t n_tokens)>;

// Load progress: (layers packed so far, n_layers).
using LoadProgress = std::function<void(int64_t done, int64_t total)>;

class TextDecoder {
 public:
  // Loads and packs the decoder weights (embed_tokens stays memory-mapped). Throws naming the tensor.
  // adapter: a LoRA adapter of this config (or nullptr); each targeted projection is packed as W + scale · B · A.
  TextDecoder(const TextConfig& config, const io::Checkpoint& ckpt, const std::string& prefix,
              kernels::Compute compute, kernels::Bf16Gemm bf16_gemm,
              const LoadProgress& progress = {}, const LoraAdapter* adapter = nullptr, bool layers = true);

  // Rows of embed_tokens for `ids` into out [n, d_model] (rounded to bf16 in BF16 mode). Ids out of range throw.
  void embed(const int64_t* ids, int64_t n, float* out) const;

  // Runs every layer and the final norm; writes the last hidden state [n_tokens, d_model] to `out`.
  void forward(const DecoderInput& in, AttentionMode mode, float* out, const LayerObserver& observer = {}) const;

  const TextConfig& config() const { return config_; }
  kernels::Compute compute() const { return compute_; }
  // Bytes of packed weights held (the decoder's resident weight memory, embed_tokens excluded).
  size_t packed_bytes() const;
  // Parameters of the matmul weights (embed_tokens and lm_head excluded), for FLOP counts.
  int64_t matmul_params() const;

 private:
  TextConfig config_;
  kernels::Compute compute_;
  io::TensorInfo embed_tokens_;
  std::vector<TextLayerWeights> layers_;
  std::vector<float> final_norm_;
};

// Model FLOPs of one decoder pass over `n_tokens` tokens in segments of the given lengths:
// 2·matmul_params·n_tokens + 4·n_layers·Σ len²·n_heads·d_head (bidirectional; the formula of notes/peers.md).
double decoder_flops(const TextConfig& c, int64_t matmul_params, const std::vector<int64_t>& segment_lengths);

}  // namespace oe::model
