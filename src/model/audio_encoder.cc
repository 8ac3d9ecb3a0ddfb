// Mirrors transformers' Qwen2_5OmniAudioEncoder as spec qwen25-omni-thinker.md §5 describes it. The reference pads
// the chunks of all audios to one length and masks; here each chunk is its own attention segment and its own conv
// window, which gives the same rows (spec §5.2).
#include "model/audio_encoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/profile.h"
#include "core/tensor.h"
#include "kernels/attention.h"
#include "kernels/ops.h"
#include "model/weights.h"

namespace oe::model {
namespace {

// Conv-stem input frames handled at once (whole chunks), bounding the im2col buffers; and MLP rows at once.
constexpr int64_t STEM_FRAME_BUDGET = 3200;
constexpr int64_t MLP_ROW_CHUNK = 1024;

std::string layer_name(int64_t j, const char* rest) { return fmt::format("audio_tower.layers.{}.{}", j, rest); }

// [d_out, d_in, 3] (PyTorch Conv1d) to [d_out, 3·d_in] with the tap outermost: row o holds w[o, :, 0], w[o, :, 1],
// w[o, :, 2], so an im2col row is three whole input frames side by side.
std::vector<float> taps_outermost(const std::vector<float>& w, int64_t d_out, int64_t d_in) {
  std::vector<float> r(w.size());
  for (int64_t o = 0; o < d_out; ++o)
    for (int64_t c = 0; c < d_in; ++c)
      for (int64_t k = 0; k < 3; ++k) r[(o * 3 + k) * d_in + c] = w[(o * d_in + c) * 3 + k];
  return r;
}

kernels::PackedLinear conv_as_linear(WeightTable& w, const std::string& name, int64_t d_out, int64_t d_in,
                                     kernels::Compute compute) {
  const auto weight = taps_outermost(w.floats(name + ".weight", {d_out, d_in, 3}, compute), d_out, d_in);
  const auto bias = w.floats(name + ".bias", {d_out}, compute);
  return kernels::PackedLinear(weight.data(), DType::F32, d_out, 3 * d_in, bias.data(), DType::F32, compute,
                               w.bf16_gemm());
}

// One chunk of one audio: its first mel frame, its length and where its encoder frames start.
struct Chunk {
  size_t audio;
  int64_t first_frame, frames, out_offset, out_frames;
};

}  // namespace

AudioEncoder::AudioEncoder(const AudioConfig& c, const io::Checkpoint& ckpt, const std::string& prefix,
                           kernels::Compute compute, kernels::Bf16Gemm bf16_gemm,
                         const LoadProgress& progress)
    : config_(c), compute_(compute) {
  if (c.d_model <= 0 || c.n_heads <= 0 || c.d_model % c.n_heads != 0 || c.n_window <= 0 || c.n_mel <= 0 ||
      c.d_model % 2 != 0 || c.d_model < 4 || c.n_window > c.max_source_positions)
    throw InvalidInput(fmt::format("audio_config: d_model {} must be even and split into {} heads, n_window {} "
                                   "must be positive and within max_source_positions {}",
                                   c.d_model, c.n_heads, c.n_window, c.max_source_positions));
  WeightTable w(ckpt, prefix, bf16_gemm);
  const int64_t d = c.d_model;
  conv1_ = conv_as_linear(w, "audio_tower.conv1", d, c.n_mel, compute);
  conv2_ = conv_as_linear(w, "audio_tower.conv2", d, d, compute);
  w.get("audio_tower.audio_bos_eos_token.weight", {2, c.out_d_model});  // in the checkpoint, unused by the thinker

  // Sinusoid table (spec §5.3): inv_i = exp(−i·ln(10000)/(d/2 − 1)) in fp32, angle = t·inv_i in fp32, sin half then
  // cos half. A chunk of 2·n_window frames has n_window encoder frames, so only those rows are ever used.
  const int64_t half = d / 2;
  const float increment = static_cast<float>(std::log(10000.0) / static_cast<double>(half - 1));
  positions_.resize(static_cast<size_t>(c.n_window * d));
  for (int64_t t = 0; t < c.n_window; ++t)
    for (int64_t i = 0; i < half; ++i) {
      const float inv = std::exp(-increment * static_cast<float>(i));
      const double angle = static_cast<double>(static_cast<float>(t) * inv);
      positions_[t * d + i] = static_cast<float>(std::sin(angle));
      positions_[t * d + half + i] = static_cast<float>(std::cos(angle));
    }

  layers_.resize(static_cast<size_t>(c.n_layers));
  for (int64_t j = 0; j < c.n_layers; ++j) {
    AudioLayerWeights& L = layers_[static_cast<size_t>(j)];
    L.ln1_w = w.floats(layer_name(j, "self_attn_layer_norm.weight"), {d}, compute);
    L.ln1_b = w.floats(layer_name(j, "self_attn_layer_norm.bias"), {d}, compute);
    L.ln2_w = w.floats(layer_name(j, "final_layer_norm.weight"), {d}, compute);
    L.ln2_b = w.floats(layer_name(j, "final_layer_norm.bias"), {d}, compute);
    L.qkv = w.linear({layer_name(j, "self_attn.q_proj.weight"), layer_name(j, "self_attn.k_proj.weight"),
                      layer_name(j, "self_attn.v_proj.weight")},
                     {{d, d}, {d, d}, {d, d}},
                     {layer_name(j, "self_attn.q_proj.bias"), "", layer_name(j, "self_attn.v_proj.bias")}, compute);
    L.out = w.linear({layer_name(j, "self_attn.out_proj.weight")}, {{d, d}}, {layer_name(j, "self_attn.out_proj.bias")},
                     compute);
    L.fc1 = w.linear({layer_name(j, "fc1.weight")}, {{c.d_ff, d}}, {layer_name(j, "fc1.bias")}, compute);
    L.fc2 = w.linear({layer_name(j, "fc2.weight")}, {{d, c.d_ff}}, {layer_name(j, "fc2.bias")}, compute);
    if (progress) progress(j + 1, c.n_layers);
  }
  ln_post_w_ = w.floats("audio_tower.ln_post.weight", {d}, compute);
  ln_post_b_ = w.floats("audio_tower.ln_post.bias", {d}, compute);
  proj_ = w.linear({"audio_tower.proj.weight"}, {{c.out_d_model, d}}, {"audio_tower.proj.bias"}, compute);
  w.check_no_extra("audio_tower.");
}

void AudioEncoder::encode(const std::vector<AudioFeaturesView>& audios, float* out,
                          const AudioObserver& observer) const {
  const AudioConfig& c = config_;
  const kernels::Compute cm = compute_;
  const int64_t d = c.d_model, n_mel = c.n_mel, C = chunk_frames();

  std::vector<Chunk> chunks;
  std::vector<int64_t> audio_offset{0};  // encoder frames of each audio
  std::vector<int64_t> cu_seqlens{0};
  for (size_t a = 0; a < audios.size(); ++a) {
    const AudioFeaturesView& A = audios[a];
    if (A.valid_frames < 3 || A.valid_frames > A.n_frames || A.values == nullptr)
      throw InvalidInput(fmt::format("audio {} of {} has {} valid mel frames (of {}): at least 3 (321 samples at "
                                     "16 kHz) are needed for one audio token",
                                     a + 1, audios.size(), A.valid_frames, A.n_frames));
    for (int64_t f = 0; f < A.valid_frames; f += C) {
      const int64_t frames = std::min(C, A.valid_frames - f);
      const int64_t m = encoder_frames(frames);
      chunks.push_back({a, f, frames, cu_seqlens.back(), m});
      cu_seqlens.push_back(cu_seqlens.back() + m);
    }
    audio_offset.push_back(cu_seqlens.back());
  }
  const int64_t M = cu_seqlens.back();
  if (M == 0) return;

  // Conv stem, a group of whole chunks at a time.
  auto x = aligned_array<float>(static_cast<size_t>(M * d));  // residual stream [M, d]
  {
    const int64_t budget = std::max(C, STEM_FRAME_BUDGET);
    auto cols1 = aligned_array<float>(static_cast<size_t>(budget * 3 * n_mel));
    auto h1 = aligned_array<float>(static_cast<size_t>(budget * d));
    auto cols2 = aligned_array<float>(static_cast<size_t>((budget / 2 + 1) * 3 * d));
    std::vector<int64_t> h1_offset;
    for (size_t g0 = 0; g0 < chunks.size();) {
      size_t g1 = g0;
      int64_t frames = 0;
      h1_offset.clear();
      while (g1 < chunks.size() && frames + chunks[g1].frames <= budget) {
        h1_offset.push_back(frames);
        frames += chunks[g1++].frames;
      }
      // conv1: the row of frame t holds frames t−1, t, t+1 of its chunk (zeros past the chunk's edges), each as
      // n_mel values gathered from the [n_mel, n_frames] feature layout.
#pragma omp parallel for schedule(static)
      for (size_t i = g0; i < g1; ++i) {
        const Chunk& ch = chunks[i];
        const AudioFeaturesView& A = audios[ch.audio];
        for (int64_t t = 0; t < ch.frames; ++t) {
          float* row = cols1.get() + (h1_offset[i - g0] + t) * 3 * n_mel;
          for (int64_t k = 0; k < 3; ++k) {
            const int64_t src = t - 1 + k;
            float* dst = row + k * n_mel;
            if (src < 0 || src >= ch.frames) {
              std::fill_n(dst, n_mel, 0.0f);
              continue;
            }
            const float* col = A.values + ch.first_frame + src;
            for (int64_t m = 0; m < n_mel; ++m) dst[m] = col[m * A.n_frames];
          }
        }
      }
      kernels::round_activations(cols1.get(), frames * 3 * n_mel, cm);  // the features enter in the tower's dtype
      conv1_.forward(cols1.get(), frames, h1.get());
      kernels::gelu_erf(h1.get(), frames * d, cm);
      // conv2 (stride 2): the row of encoder frame u holds conv1 frames 2u−1, 2u, 2u+1 of its chunk.
      const int64_t out0 = chunks[g0].out_offset;
      const int64_t outs = chunks[g1 - 1].out_offset + chunks[g1 - 1].out_frames - out0;
#pragma omp parallel for schedule(static)
      for (size_t i = g0; i < g1; ++i) {
        const Chunk& ch = chunks[i];
        for (int64_t u = 0; u < ch.out_frames; ++u) {
          float* row = cols2.get() + (ch.out_offset - out0 + u) * 3 * d;
          for (int64_t k = 0; k < 3; ++k) {
            const int64_t src = 2 * u - 1 + k;
            if (src < 0 || src >= ch.frames)
              std::fill_n(row + k * d, d, 0.0f);
            else
              std::copy_n(h1.get() + (h1_offset[i - g0] + src) * d, d, row + k * d);
          }
        }
      }
      conv2_.forward(cols2.get(), outs, x.get() + out0 * d);
      kernels::gelu_erf(x.get() + out0 * d, outs * d, cm);
      for (size_t i = g0; i < g1; ++i)  // positions restart at 0 in every chunk
        kernels::add_inplace(x.get() + chunks[i].out_offset * d, positions_.data(), chunks[i].out_frames * d, cm);
      g0 = g1;
    }
  }
  if (observer) observer(-1, x.get(), M);

  auto h = aligned_array<float>(static_cast<size_t>(M * d));
  auto qkv = aligned_array<float>(static_cast<size_t>(M * 3 * d));
  auto attn = aligned_array<float>(static_cast<size_t>(M * d));
  const int64_t rows_at_once = std::min(M, MLP_ROW_CHUNK);
  auto mid = aligned_array<float>(static_cast<size_t>(rows_at_once * c.d_ff));
  kernels::AttentionParams ap;
  ap.n_tokens = M;
  ap.n_heads = ap.n_kv_heads = c.n_heads;
  ap.d_head = d / c.n_heads;
  ap.scale = 1.0f / std::sqrt(static_cast<float>(ap.d_head));
  ap.cu_seqlens = cu_seqlens;  // attention within each chunk
  constexpr float LN_EPS = 1e-5f;

  const double attn_flop = kernels::attention_flop(ap);
  profile::Sequence ops;  // --profile: each op's time (core/profile.h)
  for (int64_t j = 0; j < c.n_layers; ++j) {
    const AudioLayerWeights& L = layers_[static_cast<size_t>(j)];
    ops.next("audio layer_norm");
    kernels::layer_norm(x.get(), M, d, L.ln1_w.data(), L.ln1_b.data(), LN_EPS, h.get(), cm);
    ops.next("audio GEMM q·k·v", L.qkv.flop(M));
    L.qkv.forward(h.get(), M, qkv.get());
    ops.next("audio bf16 rounding");
    kernels::round_activations(qkv.get(), M * 3 * d, cm);
    ops.next("audio attention", attn_flop);
    kernels::attention(qkv.get(), 3 * d, qkv.get() + d, 3 * d, qkv.get() + 2 * d, 3 * d, attn.get(), d, ap, cm);
    ops.next("audio GEMM out", L.out.flop(M));
    L.out.forward(attn.get(), M, h.get());
    ops.next("audio residual add, layer_norm");
    kernels::add_inplace(x.get(), h.get(), M * d, cm);
    kernels::layer_norm(x.get(), M, d, L.ln2_w.data(), L.ln2_b.data(), LN_EPS, h.get(), cm);
    for (int64_t r0 = 0; r0 < M; r0 += rows_at_once) {
      const int64_t rows = std::min(rows_at_once, M - r0);
      ops.next("audio GEMM fc1", L.fc1.flop(rows));
      L.fc1.forward(h.get() + r0 * d, rows, mid.get());
      ops.next("audio GELU");
      kernels::gelu_erf(mid.get(), rows * c.d_ff, cm);
      ops.next("audio GEMM fc2", L.fc2.flop(rows));
      L.fc2.forward(mid.get(), rows, h.get() + r0 * d);
    }
    ops.next("audio residual add");
    kernels::add_inplace(x.get(), h.get(), M * d, cm);
    ops.end();
    if (observer) observer(j, x.get(), M);
  }

  // Per audio: average pairs of encoder frames (an odd last frame is dropped), ln_post, projection.
  int64_t pooled_rows = 0;
  for (size_t a = 0; a < audios.size(); ++a) pooled_rows += (audio_offset[a + 1] - audio_offset[a]) / 2;
  auto pooled = aligned_array<float>(static_cast<size_t>(pooled_rows * d));
  int64_t p = 0;
  for (size_t a = 0; a < audios.size(); ++a) {
    const int64_t n = (audio_offset[a + 1] - audio_offset[a]) / 2;
    const float* src = x.get() + audio_offset[a] * d;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t e = 0; e < d; ++e)
        pooled[(p + i) * d + e] = (src[(2 * i) * d + e] + src[(2 * i + 1) * d + e]) * 0.5f;
    p += n;
  }
  kernels::round_activations(pooled.get(), pooled_rows * d, cm);
  kernels::layer_norm(pooled.get(), pooled_rows, d, ln_post_w_.data(), ln_post_b_.data(), LN_EPS, pooled.get(), cm);
  proj_.forward(pooled.get(), pooled_rows, out);
  kernels::round_activations(out, pooled_rows * c.out_d_model, cm);
}

size_t AudioEncoder::packed_bytes() const {
  size_t n = conv1_.packed_bytes() + conv2_.packed_bytes() + proj_.packed_bytes();
  for (const auto& L : layers_) n += L.qkv.packed_bytes() + L.out.packed_bytes() + L.fc1.packed_bytes() + L.fc2.packed_bytes();
  return n;
}

int64_t AudioEncoder::matmul_params() const {
  const AudioConfig& c = config_;
  const int64_t d = c.d_model;
  return 3 * c.n_mel * d + 3 * d * d + c.n_layers * (4 * d * d + 2 * d * c.d_ff) + d * c.out_d_model;
}

double audio_flops(const AudioConfig& c, const std::vector<int64_t>& valid_frames) {
  const double d = static_cast<double>(c.d_model);
  double flops = 0;
  for (int64_t T : valid_frames) {
    const double t = static_cast<double>(T);
    const double M = static_cast<double>(AudioEncoder::encoder_frames(T));
    double pairs = 0;  // Σ over chunks of (encoder frames)²
    for (int64_t f = 0; f < T; f += 2 * c.n_window) {
      const double m = static_cast<double>(AudioEncoder::encoder_frames(std::min<int64_t>(2 * c.n_window, T - f)));
      pairs += m * m;
    }
    flops += 2.0 * t * 3.0 * static_cast<double>(c.n_mel) * d + 2.0 * M * 3.0 * d * d +
             static_cast<double>(c.n_layers) * (2.0 * M * (4.0 * d * d + 2.0 * d * static_cast<double>(c.d_ff)) +
                                                4.0 * d * pairs) +
             2.0 * std::floor(M / 2.0) * d * static_cast<double>(c.out_d_model);
  }
  return flops;
}

}  // namespace oe::model
