// Mirrors transformers' Qwen2_5OmniThinkerTextModel.forward / Qwen2_5OmniDecoderLayer.forward
// (modeling_qwen2_5_omni.py), with the embedding model's bidirectional attention (spec omni-embed-nemotron.md §2).
#include "model/text_decoder.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/profile.h"
#include "core/tensor.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "model/weights.h"

namespace oe::model {
namespace {

// Rows of the MLP processed at once: bounds the [rows, 2·d_ff] intermediate for long inputs (row-wise exact).
constexpr int64_t MLP_ROW_CHUNK = 1024;

std::string layer_name(int64_t il, const char* rest) { return fmt::format("model.layers.{}.{}", il, rest); }

}  // namespace

TextDecoder::TextDecoder(const TextConfig& c, const io::Checkpoint& ckpt, const std::string& prefix,
                         kernels::Compute compute, kernels::Bf16Gemm bf16_gemm,
                         const LoadProgress& progress, const LoraAdapter* adapter, bool layers)
    : config_(c), compute_(compute) {
  OE_CHECK(!adapter || static_cast<int64_t>(adapter->layers.size()) == c.n_layers, "an adapter of another config");
  WeightTable w(ckpt, prefix, bf16_gemm);
  embed_tokens_ = w.get("model.embed_tokens.weight", {c.vocab_size, c.d_model});
  const int64_t q_dim = c.n_heads * c.d_head, kv_dim = c.n_kv_heads * c.d_head;
  const double scale = adapter ? adapter->config.scale() : 0.0;
  if (!layers) return;  // token embeddings only (LoadOptions::decoder_layers)
  layers_.resize(static_cast<size_t>(c.n_layers));
  for (int64_t il = 0; il < c.n_layers; ++il) {
    TextLayerWeights& L = layers_[static_cast<size_t>(il)];
    // The LoRA weights of this layer's projections (none without an adapter).
    auto lora = [&](std::initializer_list<LoraModule> ms) {
      std::vector<const LoraWeights*> out;
      if (adapter)
        for (LoraModule m : ms) out.push_back(&adapter->at(il, m));
      return out;
    };
    L.input_norm = w.floats(layer_name(il, "input_layernorm.weight"), {c.d_model}, compute);
    L.qkv = w.linear({layer_name(il, "self_attn.q_proj.weight"), layer_name(il, "self_attn.k_proj.weight"),
                      layer_name(il, "self_attn.v_proj.weight")},
                     {{q_dim, c.d_model}, {kv_dim, c.d_model}, {kv_dim, c.d_model}},
                     {layer_name(il, "self_attn.q_proj.bias"), layer_name(il, "self_attn.k_proj.bias"),
                      layer_name(il, "self_attn.v_proj.bias")},
                     compute, /*gated=*/false, lora({LoraModule::Q, LoraModule::K, LoraModule::V}), scale);
    L.o = w.linear({layer_name(il, "self_attn.o_proj.weight")}, {{c.d_model, q_dim}}, {}, compute, /*gated=*/false,
                   lora({LoraModule::O}), scale);
    L.post_norm = w.floats(layer_name(il, "post_attention_layernorm.weight"), {c.d_model}, compute);
    L.gate_up = w.linear({layer_name(il, "mlp.gate_proj.weight"), layer_name(il, "mlp.up_proj.weight")},
                         {{c.d_ff, c.d_model}, {c.d_ff, c.d_model}}, {}, compute, /*gated=*/true,
                         lora({LoraModule::Gate, LoraModule::Up}), scale);
    L.down = w.linear({layer_name(il, "mlp.down_proj.weight")}, {{c.d_model, c.d_ff}}, {}, compute, /*gated=*/false,
                      lora({LoraModule::Down}), scale);
    if (progress) progress(il + 1, c.n_layers);
  }
  final_norm_ = w.floats("model.norm.weight", {c.d_model}, compute);
  w.check_no_extra("model.");
}

void TextDecoder::embed(const int64_t* ids, int64_t n, float* out) const {
  const int64_t d = config_.d_model;
  const size_t row_bytes = static_cast<size_t>(d) * dtype_size(embed_tokens_.dtype);
  for (int64_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= config_.vocab_size)
      throw InvalidInput(fmt::format("token id {} at position {} is outside the vocabulary [0, {})", ids[i], i,
                                     config_.vocab_size));
    const auto* row = static_cast<const uint8_t*>(embed_tokens_.data) + static_cast<size_t>(ids[i]) * row_bytes;
    convert_to_f32(row, embed_tokens_.dtype, static_cast<size_t>(d), out + i * d);
  }
  kernels::round_activations(out, n * d, compute_);
}

void TextDecoder::forward(const DecoderInput& in, AttentionMode mode, float* out,
                          const LayerObserver& observer) const {
  const TextConfig& c = config_;
  const int64_t S = in.n_tokens, d = c.d_model, dh = c.d_head;
  const int64_t q_dim = c.n_heads * dh, kv_dim = c.n_kv_heads * dh, qkv_dim = q_dim + 2 * kv_dim;
  const kernels::Compute cm = compute_;
  OE_CHECK(!layers_.empty(), "the text decoder was loaded without its layers (LoadOptions::decoder_layers)");
  OE_CHECK(S > 0 && in.inputs_embeds && in.position_ids);

  auto x = aligned_array<float>(static_cast<size_t>(S * d));     // residual stream [S, d_model]
  auto h = aligned_array<float>(static_cast<size_t>(S * d));     // normed / sublayer output [S, d_model]
  auto qkv = aligned_array<float>(static_cast<size_t>(S * qkv_dim));  // [S, q_dim + 2·kv_dim]
  auto attn = aligned_array<float>(static_cast<size_t>(S * q_dim));   // [S, n_heads·d_head]
  const int64_t chunk = std::min(S, MLP_ROW_CHUNK);
  auto act = aligned_array<float>(static_cast<size_t>(chunk * c.d_ff));          // [chunk, d_ff]
  auto cos = aligned_array<float>(static_cast<size_t>(S * dh));   // [S, d_head]
  auto sin = aligned_array<float>(static_cast<size_t>(S * dh));
  std::copy(in.inputs_embeds, in.inputs_embeds + S * d, x.get());
  kernels::mrope_tables(in.position_ids, S, dh, c.rope_theta, c.mrope_section, cos.get(), sin.get(), cm);

  kernels::AttentionParams ap;
  ap.n_tokens = S;
  ap.n_heads = c.n_heads;
  ap.n_kv_heads = c.n_kv_heads;
  ap.d_head = dh;
  ap.scale = 1.0f / std::sqrt(static_cast<float>(dh));
  ap.causal = mode == AttentionMode::Causal;
  ap.cu_seqlens = in.cu_seqlens;

  const double attn_flop = kernels::attention_flop(ap);

  profile::Sequence ops;  // --profile: each op's time (core/profile.h)
  for (int64_t il = 0; il < c.n_layers; ++il) {
    const TextLayerWeights& L = layers_[static_cast<size_t>(il)];
    // Self-attention block.
    ops.next("decoder rms_norm");
    kernels::rms_norm(x.get(), S, d, L.input_norm.data(), c.rms_norm_eps, h.get(), cm);
    ops.next("decoder GEMM q·k·v", L.qkv.flop(S));
    L.qkv.forward(h.get(), S, qkv.get());                              // [S, q_dim + 2·kv_dim]
    ops.next("decoder bf16 rounding, rotary");
    kernels::round_activations(qkv.get(), S * qkv_dim, cm);
    float* q = qkv.get();                                              // [S, n_heads, d_head] (row stride qkv_dim)
    float* k = q + q_dim;                                              // [S, n_kv_heads, d_head]
    float* v = k + kv_dim;
    kernels::apply_rotary(q, qkv_dim, S, c.n_heads, dh, cos.get(), sin.get(), cm);
    kernels::apply_rotary(k, qkv_dim, S, c.n_kv_heads, dh, cos.get(), sin.get(), cm);
    ops.next("decoder attention", attn_flop);
    kernels::attention(q, qkv_dim, k, qkv_dim, v, qkv_dim, attn.get(), q_dim, ap, cm);  // [S, q_dim]
    // (no separate rounding of attn: the bf16 matmul converts its input to bf16 with the same rounding)
    ops.next("decoder GEMM o", L.o.flop(S));
    L.o.forward(attn.get(), S, h.get());                               // [S, d_model]
    ops.next("decoder residual add, rms_norm");
    kernels::add_inplace(x.get(), h.get(), S * d, cm);                 // rounds h, then the sum (BF16)
    // MLP block, in row chunks.
    kernels::rms_norm(x.get(), S, d, L.post_norm.data(), c.rms_norm_eps, h.get(), cm);
    for (int64_t r0 = 0; r0 < S; r0 += chunk) {
      const int64_t rows = std::min(chunk, S - r0);
      // act = SiLU(gate) ⊙ up of gate | up = h · W_gate|upᵀ (silu_mul's rounding of gate and up first in BF16;
      // on the AMX GEMM the products come from the accumulator tiles, never writing gate | up).
      ops.next("decoder GEMM gate·up + SiLU(gate)·up", L.gate_up.flop(rows));
      L.gate_up.forward_silu_mul(h.get() + r0 * d, rows, act.get());  // [rows, d_ff]
      ops.next("decoder GEMM down", L.down.flop(rows));
      L.down.forward(act.get(), rows, h.get() + r0 * d);               // [rows, d_model], h rows already consumed
    }
    ops.next("decoder residual add");
    kernels::add_inplace(x.get(), h.get(), S * d, cm);
    ops.end();
    if (observer) observer(il, x.get(), S);
  }
  kernels::rms_norm(x.get(), S, d, final_norm_.data(), c.rms_norm_eps, out, cm);
}

size_t TextDecoder::packed_bytes() const {
  size_t n = 0;
  for (const auto& L : layers_) n += L.qkv.packed_bytes() + L.o.packed_bytes() + L.gate_up.packed_bytes() +
                                     L.down.packed_bytes();
  return n;
}

int64_t TextDecoder::matmul_params() const {
  const TextConfig& c = config_;
  const int64_t q_dim = c.n_heads * c.d_head, kv_dim = c.n_kv_heads * c.d_head;
  return c.n_layers * (c.d_model * (q_dim + 2 * kv_dim) + q_dim * c.d_model + 3 * c.d_model * c.d_ff);
}

double decoder_flops(const TextConfig& c, int64_t matmul_params, const std::vector<int64_t>& segment_lengths) {
  double tokens = 0, attn = 0;
  for (int64_t len : segment_lengths) {
    tokens += static_cast<double>(len);
    attn += static_cast<double>(len) * static_cast<double>(len);
  }
  return 2.0 * static_cast<double>(matmul_params) * tokens +
         4.0 * static_cast<double>(c.n_layers) * attn * static_cast<double>(c.n_heads * c.d_head);
}

}  // namespace oe::model
