// Mirrors transformers' Qwen2_5OmniVisionEncoder (modeling_qwen2_5_omni.py) as spec qwen25-omni-thinker.md §4
// describes it, with the window permutation applied to the input rows once (see vision_encoder.h).
#include "model/vision_encoder.h"

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

// Rows of the MLP processed at once, bounding the [rows, 2·d_ff] intermediate (row-wise exact).
constexpr int64_t MLP_ROW_CHUNK = 1024;

std::string block_name(int64_t j, const char* rest) { return fmt::format("visual.blocks.{}.{}", j, rest); }

}  // namespace

VisionLayout vision_layout(const std::vector<GridTHW>& grids, int64_t merge, int64_t window_merged) {
  OE_CHECK(merge > 0 && window_merged > 0);
  VisionLayout L;
  L.cu_window.push_back(0);
  L.cu_full.push_back(0);
  const int64_t unit = merge * merge;
  int64_t base = 0;  // processor-order merged index of the current image's first token
  for (size_t g = 0; g < grids.size(); ++g) {
    const GridTHW& G = grids[g];
    if (G.t <= 0 || G.h <= 0 || G.w <= 0 || G.h % merge != 0 || G.w % merge != 0)
      throw InvalidInput(fmt::format("grid {} of {} is ({}, {}, {}): t, h and w must be positive and h, w multiples "
                                     "of the merge size {}",
                                     g + 1, grids.size(), G.t, G.h, G.w, merge));
    const int64_t Hm = G.h / merge, Wm = G.w / merge;
    for (int64_t ti = 0; ti < G.t; ++ti) {
      // Windows of window_merged × window_merged merged tokens from the top-left; edge windows are partial.
      for (int64_t wr = 0; wr < Hm; wr += window_merged)
        for (int64_t wc = 0; wc < Wm; wc += window_merged) {
          const int64_t r_end = std::min(Hm, wr + window_merged), c_end = std::min(Wm, wc + window_merged);
          for (int64_t bi = wr; bi < r_end; ++bi)
            for (int64_t bj = wc; bj < c_end; ++bj) {
              L.order.push_back(base + (ti * Hm + bi) * Wm + bj);
              for (int64_t ii = 0; ii < merge; ++ii)
                for (int64_t jj = 0; jj < merge; ++jj) {
                  L.patch_row.push_back(bi * merge + ii);
                  L.patch_col.push_back(bj * merge + jj);
                }
            }
          L.cu_window.push_back(L.cu_window.back() + (r_end - wr) * (c_end - wc) * unit);
        }
      L.cu_full.push_back(L.cu_full.back() + Hm * Wm * unit);
    }
    base += G.t * Hm * Wm;
  }
  return L;
}

VisionEncoder::VisionEncoder(const VisionConfig& c, const io::Checkpoint& ckpt, const std::string& prefix,
                             kernels::Compute compute, kernels::Bf16Gemm bf16_gemm,
                         const LoadProgress& progress)
    : config_(c), compute_(compute) {
  WeightTable w(ckpt, prefix, bf16_gemm);
  const int64_t d = c.d_model;
  {
    // The Conv3d kernel [d, C, T, P, P] flattened is a [d, C·T·P·P] linear with the patch rows' (c, t, y, x) order.
    const std::string name = "visual.patch_embed.proj.weight";
    const io::TensorInfo& t =
        w.get(name, {d, c.in_channels, c.temporal_patch_size, c.patch_size, c.patch_size});
    patch_embed_ = kernels::PackedLinear(t.data, t.dtype, d, row_len(), nullptr, DType::F32, compute, bf16_gemm);
    ckpt.release(prefix + name);
  }
  blocks_.resize(static_cast<size_t>(c.depth));
  for (int64_t j = 0; j < c.depth; ++j) {
    VisionBlockWeights& B = blocks_[static_cast<size_t>(j)];
    B.norm1 = w.floats(block_name(j, "norm1.weight"), {d}, compute);
    B.norm2 = w.floats(block_name(j, "norm2.weight"), {d}, compute);
    B.qkv = w.linear({block_name(j, "attn.q.weight"), block_name(j, "attn.k.weight"), block_name(j, "attn.v.weight")},
                     {{d, d}, {d, d}, {d, d}},
                     {block_name(j, "attn.q.bias"), block_name(j, "attn.k.bias"), block_name(j, "attn.v.bias")},
                     compute);
    B.proj = w.linear({block_name(j, "attn.proj.weight")}, {{d, d}}, {block_name(j, "attn.proj.bias")}, compute);
    B.gate_up = w.linear({block_name(j, "mlp.gate_proj.weight"), block_name(j, "mlp.up_proj.weight")},
                         {{c.d_ff, d}, {c.d_ff, d}},
                         {block_name(j, "mlp.gate_proj.bias"), block_name(j, "mlp.up_proj.bias")}, compute,
                         /*gated=*/true);
    B.down = w.linear({block_name(j, "mlp.down_proj.weight")}, {{d, c.d_ff}}, {block_name(j, "mlp.down_proj.bias")},
                      compute);
    if (progress) progress(j + 1, c.depth);
  }
  const int64_t merged = d * merge_unit();
  merger_norm_ = w.floats("visual.merger.ln_q.weight", {d}, compute);
  merger_fc1_ = w.linear({"visual.merger.mlp.0.weight"}, {{merged, merged}}, {"visual.merger.mlp.0.bias"}, compute);
  merger_fc2_ = w.linear({"visual.merger.mlp.2.weight"}, {{c.out_d_model, merged}}, {"visual.merger.mlp.2.bias"},
                         compute);
  w.check_no_extra("visual.");
}

int64_t VisionEncoder::window_merged() const {
  return config_.window_size / (config_.spatial_merge_size * config_.patch_size);
}

void VisionEncoder::encode(const float* pixels, const std::vector<GridTHW>& grids, float* out,
                           const VisionObserver& observer, const std::function<void()>& pixels_read) const {
  const VisionConfig& c = config_;
  const kernels::Compute cm = compute_;
  const VisionLayout layout = vision_layout(grids, c.spatial_merge_size, window_merged());
  const int64_t unit = merge_unit(), N = static_cast<int64_t>(layout.patch_row.size()), d = c.d_model,
                dh = c.d_head(), in_len = row_len();
  if (N == 0) return;
  const int64_t n_merged = N / unit;

  // Gather the patch rows into window order (groups of `unit` rows move together), rounded like the reference's
  // cast of pixel_values to the tower's dtype, and embed them, MLP_ROW_CHUNK rows at a time: a copy of the whole
  // pixel array (308 MB for a 12.8-megapixel image) is never held beside it. Each row's result does not depend on
  // how many rows a call takes (the MLP below relies on the same).
  auto x = aligned_array<float>(static_cast<size_t>(N * d));  // residual stream, window order
  {
    const int64_t chunk_units = std::max<int64_t>(1, MLP_ROW_CHUNK / unit);
    auto rows = aligned_array<float>(static_cast<size_t>(std::min(n_merged, chunk_units) * unit * in_len));
    for (int64_t k0 = 0; k0 < n_merged; k0 += chunk_units) {
      const int64_t kn = std::min(chunk_units, n_merged - k0);
      for (int64_t k = k0; k < k0 + kn; ++k)
        std::copy_n(pixels + layout.order[k] * unit * in_len, unit * in_len, rows.get() + (k - k0) * unit * in_len);
      kernels::round_activations(rows.get(), kn * unit * in_len, cm);
      patch_embed_.forward(rows.get(), kn * unit, x.get() + k0 * unit * d);
    }
  }
  if (pixels_read) pixels_read();
  kernels::round_activations(x.get(), N * d, cm);
  auto h = aligned_array<float>(static_cast<size_t>(N * d));

  // Processor-order view of the residual stream for the observer.
  std::vector<float> observed;
  auto observe = [&](int64_t stage) {
    if (!observer) return;
    observed.resize(static_cast<size_t>(N * d));
    for (int64_t k = 0; k < n_merged; ++k)
      std::copy_n(x.get() + k * unit * d, unit * d, observed.data() + layout.order[k] * unit * d);
    observer(stage, observed.data(), N);
  };
  observe(-1);

  auto cos = aligned_array<float>(static_cast<size_t>(N * dh));
  auto sin = aligned_array<float>(static_cast<size_t>(N * dh));
  kernels::vision_rotary_tables(layout.patch_row.data(), layout.patch_col.data(), N, dh, c.rope_theta, cos.get(),
                                sin.get());

  auto qkv = aligned_array<float>(static_cast<size_t>(N * 3 * d));
  auto attn = aligned_array<float>(static_cast<size_t>(N * d));
  const int64_t chunk = std::min(N, MLP_ROW_CHUNK);
  auto act = aligned_array<float>(static_cast<size_t>(chunk * c.d_ff));

  kernels::AttentionParams window_ap;
  window_ap.n_tokens = N;
  window_ap.n_heads = window_ap.n_kv_heads = c.n_heads;
  window_ap.d_head = dh;
  window_ap.scale = 1.0f / std::sqrt(static_cast<float>(dh));
  kernels::AttentionParams full_ap = window_ap;
  window_ap.cu_seqlens = layout.cu_window;
  full_ap.cu_seqlens = layout.cu_full;

  const double window_flop = kernels::attention_flop(window_ap), full_flop = kernels::attention_flop(full_ap);
  profile::Sequence ops;  // --profile: each op's time (core/profile.h)
  for (int64_t j = 0; j < c.depth; ++j) {
    const VisionBlockWeights& B = blocks_[static_cast<size_t>(j)];
    const bool full = std::find(c.fullatt_block_indexes.begin(), c.fullatt_block_indexes.end(), j) !=
                      c.fullatt_block_indexes.end();
    ops.next("vision rms_norm");
    kernels::rms_norm(x.get(), N, d, B.norm1.data(), c.rms_norm_eps, h.get(), cm);
    ops.next("vision GEMM q·k·v", B.qkv.flop(N));
    B.qkv.forward(h.get(), N, qkv.get());  // [N, 3d]: q | k | v, biases added
    ops.next("vision bf16 rounding, rotary");
    kernels::round_activations(qkv.get(), N * 3 * d, cm);
    float* q = qkv.get();
    float* k = q + d;
    float* v = k + d;
    // The vision rotary runs in fp32 on the bf16 q and k and rounds the result (spec §4.3, §10).
    kernels::apply_rotary(q, 3 * d, N, c.n_heads, dh, cos.get(), sin.get(), kernels::Compute::F32);
    kernels::apply_rotary(k, 3 * d, N, c.n_heads, dh, cos.get(), sin.get(), kernels::Compute::F32);
    kernels::round_activations(qkv.get(), N * 3 * d, cm);
    ops.next(full ? "vision attention (full blocks)" : "vision attention (windows)", full ? full_flop : window_flop);
    kernels::attention(q, 3 * d, k, 3 * d, v, 3 * d, attn.get(), d, full ? full_ap : window_ap, cm);
    ops.next("vision GEMM proj", B.proj.flop(N));
    B.proj.forward(attn.get(), N, h.get());
    ops.next("vision residual add, rms_norm");
    kernels::add_inplace(x.get(), h.get(), N * d, cm);
    kernels::rms_norm(x.get(), N, d, B.norm2.data(), c.rms_norm_eps, h.get(), cm);
    for (int64_t r0 = 0; r0 < N; r0 += chunk) {
      const int64_t rows = std::min(chunk, N - r0);
      ops.next("vision GEMM gate·up + SiLU(gate)·up", B.gate_up.flop(rows));
      B.gate_up.forward_silu_mul(h.get() + r0 * d, rows, act.get());  // silu_mul of gate | up (+ biases)
      ops.next("vision GEMM down", B.down.flop(rows));
      B.down.forward(act.get(), rows, h.get() + r0 * d);
    }
    ops.next("vision residual add");
    kernels::add_inplace(x.get(), h.get(), N * d, cm);
    ops.end();
    observe(j);
  }
  ops.next("vision merger");

  // Merger: RMSNorm per patch, the 4 patches of each 2×2 block side by side (contiguous rows), MLP with exact GELU.
  const int64_t merged = d * unit;
  kernels::rms_norm(x.get(), N, d, merger_norm_.data(), c.rms_norm_eps, h.get(), cm);
  auto mid = aligned_array<float>(static_cast<size_t>(n_merged * merged));
  merger_fc1_.forward(h.get(), n_merged, mid.get());
  kernels::gelu_erf(mid.get(), n_merged * merged, cm);  // rounds the linear output first in BF16 mode
  auto res = aligned_array<float>(static_cast<size_t>(n_merged * c.out_d_model));
  merger_fc2_.forward(mid.get(), n_merged, res.get());
  kernels::round_activations(res.get(), n_merged * c.out_d_model, cm);
  ops.end();
  for (int64_t k = 0; k < n_merged; ++k)
    std::copy_n(res.get() + k * c.out_d_model, c.out_d_model, out + layout.order[k] * c.out_d_model);
}

size_t VisionEncoder::packed_bytes() const {
  size_t n = patch_embed_.packed_bytes() + merger_fc1_.packed_bytes() + merger_fc2_.packed_bytes();
  for (const auto& B : blocks_)
    n += B.qkv.packed_bytes() + B.proj.packed_bytes() + B.gate_up.packed_bytes() + B.down.packed_bytes();
  return n;
}

int64_t VisionEncoder::matmul_params() const {
  const VisionConfig& c = config_;
  const int64_t d = c.d_model, merged = d * merge_unit();
  return d * row_len() + c.depth * (4 * d * d + 3 * d * c.d_ff) + merged * merged + merged * c.out_d_model;
}

double vision_flops(const VisionConfig& c, int64_t matmul_params, const std::vector<GridTHW>& grids) {
  const int64_t window_merged = c.window_size / (c.spatial_merge_size * c.patch_size);
  const VisionLayout L = vision_layout(grids, c.spatial_merge_size, window_merged);
  auto pairs = [](const std::vector<int64_t>& cu) {
    double s = 0;
    for (size_t i = 1; i < cu.size(); ++i) s += static_cast<double>(cu[i] - cu[i - 1]) * static_cast<double>(cu[i] - cu[i - 1]);
    return s;
  };
  const double n_patches = static_cast<double>(L.patch_row.size());
  const double n_full = static_cast<double>(c.fullatt_block_indexes.size());
  const double attn = 4.0 * static_cast<double>(c.d_model) *
                      (n_full * pairs(L.cu_full) + (static_cast<double>(c.depth) - n_full) * pairs(L.cu_window));
  // The matmul parameters act once per patch, except the merger's, which act once per merged token.
  const int64_t merged = c.d_model * c.spatial_merge_size * c.spatial_merge_size;
  const double merger_params = static_cast<double>(merged) * static_cast<double>(merged + c.out_d_model);
  const double per_patch = static_cast<double>(matmul_params) - merger_params;
  return 2.0 * per_patch * n_patches +
         2.0 * merger_params * n_patches / static_cast<double>(c.spatial_merge_size * c.spatial_merge_size) + attn;
}

}  // namespace oe::model
