// Mirrors model/text_decoder.cc's forward (transformers' Qwen2_5OmniDecoderLayer.forward, bidirectional) in fp32
// with PEFT's LoRA layers on the targeted projections, then the embedder's masked mean and L2 (model/embedder.cc);
// the backward walks the same steps in reverse with the pairs of train/backward.h.
#include "train/decoder.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/safetensors.h"
#include "kernels/ops.h"
#include "train/backward.h"

namespace oe::train {
namespace {

using model::LoraModule;

constexpr size_t idx(LoraModule m) { return static_cast<size_t>(m); }

std::vector<float> read_f32(const io::Checkpoint& ckpt, const std::string& name, const Shape& shape) {
  const io::TensorInfo& t = ckpt.get(name);
  if (t.shape != shape)
    throw InvalidInput(fmt::format("{}: tensor {} has shape {}, the config says {}", ckpt.path().string(), name,
                                   shape_str(t.shape), shape_str(shape)));
  std::vector<float> out(static_cast<size_t>(shape_numel(shape)));
  convert_to_f32(t.data, t.dtype, out.size(), out.data());
  return out;
}

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The dropout mask of (layer, module), applied to `in` [rows, cols] with the 1/(1 − p) scaling: out = mask ⊙ in.
void apply_dropout(const Dropout& dr, int64_t layer, LoraModule m, const float* in, int64_t rows, int64_t cols,
                   float* out) {
  const uint64_t base = splitmix(dr.seed ^ splitmix(static_cast<uint64_t>(dr.step) * 0x100000001b3ULL +
                                                    static_cast<uint64_t>(layer) * 16 + idx(m)));
  const auto keep = static_cast<float>(1.0 / (1.0 - dr.p));
  const auto threshold = static_cast<uint64_t>(dr.p * 18446744073709551616.0);
  for (int64_t i = 0; i < rows * cols; ++i)
    out[i] = splitmix(base + static_cast<uint64_t>(i)) >= threshold ? in[i] * keep : 0.0f;
}

// wt [cols, rows] = wᵀ of w [rows, cols], in 64×64 blocks (a row-by-row loop writes one cache line per element).
void transpose(const float* w, int64_t rows, int64_t cols, float* wt) {
  constexpr int64_t B = 64;
  for (int64_t r0 = 0; r0 < rows; r0 += B)
    for (int64_t c0 = 0; c0 < cols; c0 += B)
      for (int64_t r = r0; r < std::min(rows, r0 + B); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + B); ++c) wt[c * rows + r] = w[r * cols + c];
}

}  // namespace

struct TrainableDecoder::Acts {
  std::vector<float> h1, inv1, qkv, attn, x_mid, h2, inv2, gu, act, tmp;
  std::vector<float> w;                        // a weight converted to fp32 for the product at hand
  std::vector<float> t[model::LORA_MODULES];   // x_lora · Aᵀ per module [S, r]
  std::vector<float> xl[model::LORA_MODULES];  // the dropped-out input per module (empty without dropout)
};

TrainableDecoder::TrainableDecoder(const model::Model& m, kernels::Compute compute)
    : config_(m.config().text), compute_(compute), ckpt_(io::Checkpoint::open(m.dir())) {
  const model::TextConfig& c = config_;
  const std::string& prefix = m.config().tensor_prefix;
  layers_.resize(static_cast<size_t>(c.n_layers));
  for (int64_t il = 0; il < c.n_layers; ++il) {
    Layer& L = layers_[static_cast<size_t>(il)];
    const std::string p = fmt::format("{}model.layers.{}.", prefix, il);
    L.input_norm = read_f32(ckpt_, p + "input_layernorm.weight", {c.d_model});
    L.post_norm = read_f32(ckpt_, p + "post_attention_layernorm.weight", {c.d_model});
    for (LoraModule mod : model::ALL_LORA_MODULES) {
      const auto [n_out, n_in] = model::lora_module_shape(c, mod);
      const bool attn = mod == LoraModule::Q || mod == LoraModule::K || mod == LoraModule::V || mod == LoraModule::O;
      const std::string name = p + (attn ? "self_attn." : "mlp.") + model::lora_module_name(mod) + ".weight";
      const io::TensorInfo& t = ckpt_.get(name);
      if (t.shape != Shape{n_out, n_in})
        throw InvalidInput(fmt::format("{}: tensor {} has shape {}, the config says [{}, {}]", ckpt_.path().string(),
                                       name, shape_str(t.shape), n_out, n_in));
      if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
        throw InvalidInput(fmt::format("{}: tensor {} is {}, not a float type", ckpt_.path().string(), name,
                                       dtype_name(t.dtype)));
      L.w[idx(mod)] = &t;
      if (compute_ == kernels::Compute::BF16) {
        std::vector<float> w(static_cast<size_t>(n_out * n_in)), wt(w.size());
        convert_to_f32(t.data, t.dtype, w.size(), w.data());
        transpose(w.data(), n_out, n_in, wt.data());
        L.packed[idx(mod)] = kernels::PackedLinear(w.data(), DType::F32, n_out, n_in, nullptr, DType::F32, compute_);
        L.packed_t[idx(mod)] = kernels::PackedLinear(wt.data(), DType::F32, n_in, n_out, nullptr, DType::F32, compute_);
        ckpt_.release(name);
      }
    }
    const int64_t q_dim = c.n_heads * c.d_head, kv_dim = c.n_kv_heads * c.d_head;
    L.bq = read_f32(ckpt_, p + "self_attn.q_proj.bias", {q_dim});
    L.bk = read_f32(ckpt_, p + "self_attn.k_proj.bias", {kv_dim});
    L.bv = read_f32(ckpt_, p + "self_attn.v_proj.bias", {kv_dim});
  }
  final_norm_ = read_f32(ckpt_, prefix + "model.norm.weight", {c.d_model});
}

FrozenWeight TrainableDecoder::weight(int64_t il, LoraModule m, std::vector<float>& scratch) const {
  const Layer& L = layers_[static_cast<size_t>(il)];
  if (compute_ == kernels::Compute::BF16) return {&L.packed[idx(m)], &L.packed_t[idx(m)]};
  const io::TensorInfo& t = *L.w[idx(m)];
  if (t.dtype == DType::F32) return static_cast<const float*>(t.data);
  scratch.resize(static_cast<size_t>(shape_numel(t.shape)));
  convert_to_f32(t.data, t.dtype, scratch.size(), scratch.data());
  return scratch.data();
}

void TrainableDecoder::layer_forward(int64_t il, const model::DecoderBatch& batch, const float* cos, const float* sin,
                                     const model::LoraAdapter* adapter, const Dropout& dropout, float* x,
                                     Acts* a) const {
  const model::TextConfig& c = config_;
  const Layer& L = layers_[static_cast<size_t>(il)];
  const int64_t S = batch.n_tokens, d = c.d_model, dh = c.d_head, dff = c.d_ff;
  const int64_t q_dim = c.n_heads * dh, kv_dim = c.n_kv_heads * dh, qkv_dim = q_dim + 2 * kv_dim;
  const double scale = adapter ? adapter->config.scale() : 0.0;
  const auto lora = [&](LoraModule m) -> const model::LoraWeights* {
    if (!adapter) return nullptr;
    const model::LoraWeights& lw = adapter->at(il, m);
    return lw.empty() ? nullptr : &lw;
  };
  // The LoRA branch of module m reads `in` [S, n_in], dropped out when training with dropout.
  const auto lora_input = [&](LoraModule m, const float* in, int64_t n_in) -> const float* {
    const model::LoraWeights* lw = lora(m);
    if (!lw) return nullptr;
    const int64_t r = static_cast<int64_t>(lw->a.size()) / n_in;
    a->t[idx(m)].resize(static_cast<size_t>(S * r));
    if (dropout.p <= 0) return in;
    a->xl[idx(m)].resize(static_cast<size_t>(S * n_in));
    apply_dropout(dropout, il, m, in, S, n_in, a->xl[idx(m)].data());
    return a->xl[idx(m)].data();
  };
  const auto linear = [&](LoraModule m, const float* in, const float* bias, float* y, int64_t ldy) {
    const auto [n_out, n_in] = model::lora_module_shape(c, m);
    const float* xl = lora_input(m, in, n_in);
    linear_forward(in, S, n_in, weight(il, m, a->w), bias, n_out, n_in, lora(m), scale, xl, a->t[idx(m)].data(), y,
                   ldy);
  };

  a->h1.resize(static_cast<size_t>(S * d));
  a->inv1.resize(static_cast<size_t>(S));
  rms_norm_forward(x, S, d, L.input_norm.data(), c.rms_norm_eps, a->h1.data(), a->inv1.data());
  a->qkv.resize(static_cast<size_t>(S * qkv_dim));
  float* q = a->qkv.data();
  float* k = q + q_dim;
  float* v = k + kv_dim;
  linear(LoraModule::Q, a->h1.data(), L.bq.data(), q, qkv_dim);
  linear(LoraModule::K, a->h1.data(), L.bk.data(), k, qkv_dim);
  linear(LoraModule::V, a->h1.data(), L.bv.data(), v, qkv_dim);
  rotary_forward(q, qkv_dim, S, c.n_heads, dh, cos, sin);
  rotary_forward(k, qkv_dim, S, c.n_kv_heads, dh, cos, sin);
  AttentionShape as{c.n_heads, c.n_kv_heads, dh, 1.0f / std::sqrt(static_cast<float>(dh)), batch.cu_seqlens};
  a->attn.resize(static_cast<size_t>(S * q_dim));
  attention_forward(q, qkv_dim, k, qkv_dim, v, qkv_dim, a->attn.data(), q_dim, as);
  a->tmp.resize(static_cast<size_t>(S * d));
  linear(LoraModule::O, a->attn.data(), nullptr, a->tmp.data(), d);
  a->x_mid.assign(x, x + S * d);
  for (int64_t i = 0; i < S * d; ++i) a->x_mid[static_cast<size_t>(i)] += a->tmp[static_cast<size_t>(i)];
  a->h2.resize(static_cast<size_t>(S * d));
  a->inv2.resize(static_cast<size_t>(S));
  rms_norm_forward(a->x_mid.data(), S, d, L.post_norm.data(), c.rms_norm_eps, a->h2.data(), a->inv2.data());
  a->gu.resize(static_cast<size_t>(S * 2 * dff));
  linear(LoraModule::Gate, a->h2.data(), nullptr, a->gu.data(), 2 * dff);
  linear(LoraModule::Up, a->h2.data(), nullptr, a->gu.data() + dff, 2 * dff);
  a->act.resize(static_cast<size_t>(S * dff));
  silu_mul_forward(a->gu.data(), a->gu.data() + dff, 2 * dff, S, dff, a->act.data());
  linear(LoraModule::Down, a->act.data(), nullptr, a->tmp.data(), d);
  for (int64_t i = 0; i < S * d; ++i) x[i] = a->x_mid[static_cast<size_t>(i)] + a->tmp[static_cast<size_t>(i)];
}

std::vector<float> TrainableDecoder::forward(const model::DecoderBatch& batch, const model::LoraAdapter* adapter,
                                             const Dropout& dropout, Tape* tape) const {
  const model::TextConfig& c = config_;
  const int64_t S = batch.n_tokens, d = c.d_model;
  OE_CHECK(S > 0 && static_cast<int64_t>(batch.embeds.size()) == S * d && batch.cu_seqlens.size() >= 2 &&
           batch.cu_seqlens.back() == S);
  if (adapter) OE_CHECK(static_cast<int64_t>(adapter->layers.size()) == c.n_layers);
  std::vector<float> cos(static_cast<size_t>(S * c.d_head)), sin(cos.size());
  kernels::mrope_tables(batch.position_ids.data(), S, c.d_head, c.rope_theta, c.mrope_section, cos.data(), sin.data(),
                        kernels::Compute::F32);
  std::vector<float> x = batch.embeds;
  Acts acts;
  if (tape) tape->layer_inputs.assign(static_cast<size_t>(c.n_layers), {});
  for (int64_t il = 0; il < c.n_layers; ++il) {
    if (tape) tape->layer_inputs[static_cast<size_t>(il)] = x;
    layer_forward(il, batch, cos.data(), sin.data(), adapter, dropout, x.data(), &acts);
  }
  std::vector<float> hidden(static_cast<size_t>(S * d)), inv(static_cast<size_t>(S));
  rms_norm_forward(x.data(), S, d, final_norm_.data(), c.rms_norm_eps, hidden.data(), inv.data());
  const size_t n_seg = batch.cu_seqlens.size() - 1;
  std::vector<float> vectors(n_seg * static_cast<size_t>(d)), norms(n_seg);
  mean_l2_forward(hidden.data(), d, batch.cu_seqlens, vectors.data(), norms.data());
  if (tape) {
    tape->last = std::move(x);
    tape->final_inv = std::move(inv);
    tape->hidden = std::move(hidden);
    tape->vectors = vectors;
    tape->norms = std::move(norms);
  }
  return vectors;
}

void TrainableDecoder::backward(const model::DecoderBatch& batch, const model::LoraAdapter& adapter,
                                const Dropout& dropout, const Tape& tape, const float* dvectors,
                                model::LoraAdapter* grad) const {
  const model::TextConfig& c = config_;
  const int64_t S = batch.n_tokens, d = c.d_model, dh = c.d_head, dff = c.d_ff;
  const int64_t q_dim = c.n_heads * dh, kv_dim = c.n_kv_heads * dh, qkv_dim = q_dim + 2 * kv_dim;
  OE_CHECK(static_cast<int64_t>(tape.layer_inputs.size()) == c.n_layers && grad &&
           grad->layers.size() == adapter.layers.size());
  const double scale = adapter.config.scale();
  std::vector<float> cos(static_cast<size_t>(S * dh)), sin(cos.size());
  kernels::mrope_tables(batch.position_ids.data(), S, dh, c.rope_theta, c.mrope_section, cos.data(), sin.data(),
                        kernels::Compute::F32);

  // Pooling and the final norm.
  std::vector<float> dh_(static_cast<size_t>(S * d), 0.0f), dx(static_cast<size_t>(S * d), 0.0f);
  mean_l2_backward(tape.vectors.data(), tape.norms.data(), dvectors, d, batch.cu_seqlens, dh_.data());
  rms_norm_backward(tape.last.data(), dh_.data(), S, d, final_norm_.data(), tape.final_inv.data(), dx.data());

  Acts a;
  std::vector<float> x, d_act, d_gu, dh2, dx_mid, d_attn, dqkv, dh1, dl;
  for (int64_t il = c.n_layers - 1; il >= 0; --il) {
    const Layer& L = layers_[static_cast<size_t>(il)];
    // Recompute the layer's inner activations from its checkpointed input.
    x = tape.layer_inputs[static_cast<size_t>(il)];
    layer_forward(il, batch, cos.data(), sin.data(), &adapter, dropout, x.data(), &a);
    const auto& x_in = tape.layer_inputs[static_cast<size_t>(il)];

    // dy → (dx_in of module m) for the module's linear, its LoRA part through the dropout mask.
    const auto back = [&](LoraModule m, const float* dy, int64_t ldy, const float* in, float* dxin) {
      const auto [n_out, n_in] = model::lora_module_shape(c, m);
      const model::LoraWeights& lw = adapter.at(il, m);
      const model::LoraWeights* lp = lw.empty() ? nullptr : &lw;
      const bool dropped = lp && dropout.p > 0;
      const float* xl = !lp ? nullptr : dropped ? a.xl[idx(m)].data() : in;
      if (dropped) dl.assign(static_cast<size_t>(S * n_in), 0.0f);
      linear_backward(dy, S, ldy, weight(il, m, a.w), n_out, n_in, lp, scale, xl, lp ? a.t[idx(m)].data() : nullptr,
                      dxin, dropped ? dl.data() : dxin, lp ? &grad->at(il, m) : nullptr);
      if (dropped) {
        // d(in) += mask ⊙ d(x_lora): the mask applied to the gradient is the dropout of the gradient itself.
        std::vector<float> masked(dl.size());
        apply_dropout(dropout, il, m, dl.data(), S, n_in, masked.data());
        for (size_t i = 0; i < masked.size(); ++i) dxin[i] += masked[i];
      }
    };

    // MLP: x_out = x_mid + down(SiLU(gate)·up).
    d_act.assign(static_cast<size_t>(S * dff), 0.0f);
    back(LoraModule::Down, dx.data(), d, a.act.data(), d_act.data());
    d_gu.assign(static_cast<size_t>(S * 2 * dff), 0.0f);
    silu_mul_backward(a.gu.data(), a.gu.data() + dff, 2 * dff, S, dff, d_act.data(), d_gu.data(), d_gu.data() + dff);
    dh2.assign(static_cast<size_t>(S * d), 0.0f);
    back(LoraModule::Gate, d_gu.data(), 2 * dff, a.h2.data(), dh2.data());
    back(LoraModule::Up, d_gu.data() + dff, 2 * dff, a.h2.data(), dh2.data());
    dx_mid = dx;
    rms_norm_backward(a.x_mid.data(), dh2.data(), S, d, L.post_norm.data(), a.inv2.data(), dx_mid.data());

    // Attention: x_mid = x_in + o(attention(rotary(q), rotary(k), v)).
    d_attn.assign(static_cast<size_t>(S * q_dim), 0.0f);
    back(LoraModule::O, dx_mid.data(), d, a.attn.data(), d_attn.data());
    dqkv.assign(static_cast<size_t>(S * qkv_dim), 0.0f);
    const float* q = a.qkv.data();
    AttentionShape as{c.n_heads, c.n_kv_heads, dh, 1.0f / std::sqrt(static_cast<float>(dh)), batch.cu_seqlens};
    attention_backward(q, qkv_dim, q + q_dim, qkv_dim, q + q_dim + kv_dim, qkv_dim, a.attn.data(), q_dim,
                       d_attn.data(), q_dim, dqkv.data(), dqkv.data() + q_dim, dqkv.data() + q_dim + kv_dim, as);
    rotary_backward(dqkv.data(), qkv_dim, S, c.n_heads, dh, cos.data(), sin.data());
    rotary_backward(dqkv.data() + q_dim, qkv_dim, S, c.n_kv_heads, dh, cos.data(), sin.data());
    dh1.assign(static_cast<size_t>(S * d), 0.0f);
    back(LoraModule::Q, dqkv.data(), qkv_dim, a.h1.data(), dh1.data());
    back(LoraModule::K, dqkv.data() + q_dim, qkv_dim, a.h1.data(), dh1.data());
    back(LoraModule::V, dqkv.data() + q_dim + kv_dim, qkv_dim, a.h1.data(), dh1.data());
    dx = dx_mid;
    rms_norm_backward(x_in.data(), dh1.data(), S, d, L.input_norm.data(), a.inv1.data(), dx.data());
  }
}

}  // namespace oe::train
