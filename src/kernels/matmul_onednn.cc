// PackedLinear (BF16 layers on AMX CPUs go to amx_gemm.h instead) and the single-threaded local GEMMs of attention
// on oneDNN 2.6 `matmul` (notes/cpu-gemm.md):
// weights converted and pre-packed once (format_tag::any + reorder), one primitive per shape created on first use
// and kept in a map guarded by a mutex. The only file of the project that includes oneDNN (3.x changed the API).
#include <omp.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <unordered_map>

#include "core/error.h"
#include "core/log.h"
#include "core/tensor.h"
#include "kernels/amx_gemm.h"
#include "kernels/local_gemm.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/vec_math.h"

namespace oe::kernels {
namespace {

using dnnl::memory;
using Dt = memory::data_type;
using Tag = memory::format_tag;

// M used to ask oneDNN for its preferred packed-weight layout; the layout does not depend on M for the brgemm
// kernels (notes/cpu-gemm.md §3), and other M reuse it through an explicit weights descriptor.
constexpr int64_t LAYOUT_REFERENCE_M = 64;
// Row block of the AMX kernels; BF16 calls with more rows are padded to a multiple of it (PackedLinear::forward).
constexpr int64_t M_BLOCK = 32;

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// One stream per calling thread.
dnnl::stream& thread_stream() {
  thread_local dnnl::stream s(cpu_engine());
  return s;
}

// A growable 64-byte aligned buffer; one per calling thread and purpose (scratchpads, bf16 activations).
class ThreadBuffer {
 public:
  void* get(size_t bytes) {
    if (bytes > size_) {
      buf_ = aligned_array<uint8_t>(bytes);
      size_ = bytes;
    }
    return buf_.get();
  }

 private:
  AlignedPtr<uint8_t> buf_;
  size_t size_ = 0;
};

ThreadBuffer& thread_scratchpad() {
  thread_local ThreadBuffer b;
  return b;
}

Dt elem_dt(Compute c) { return c == Compute::F32 ? Dt::f32 : Dt::bf16; }

// Threads a primitive created now would use: oneDNN runs nested calls on one thread, and a primitive must run with
// the thread count it was created for.
int team_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

// Runs make() with the calling task's OpenMP thread count set to nthr (oneDNN reads it when creating a primitive).
template <typename F>
auto with_omp_threads(int nthr, F&& make) {
  struct Restore {
    int n;
    ~Restore() { omp_set_num_threads(n); }
  } restore{omp_get_max_threads()};
  omp_set_num_threads(nthr);
  return make();
}

[[noreturn]] void rethrow(const dnnl::error& e, const std::string& what) {
  throw InternalError(fmt::format("oneDNN: {}: {} (status {})", what, e.what(), static_cast<int>(e.status)));
}

dnnl::primitive_attr user_scratchpad_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// A matmul primitive with the descriptors its arguments need.
struct MatmulPrim {
  dnnl::matmul prim;
  memory::desc src, weights, dst, scratchpad;
  size_t scratch_bytes = 0;
};

// Logs once per process when oneDNN picks its reference kernel (a layout or shape its fast kernels do not take).
void warn_if_reference(const dnnl::matmul::primitive_desc& pd, int64_t m, int64_t k, int64_t n) {
  static std::once_flag once;
  const std::string impl = pd.impl_info_str();
  if (impl.rfind("ref", 0) == 0)
    std::call_once(once,
                   [&] { log_warn("oneDNN matmul {}x{}x{} runs its slow reference kernel ({})", m, k, n, impl); });
}

// Dense src [m, k], weights `w` (packed), optional bias [1, n] f32, dense dst [m, n] f32. oneDNN 2.6's brgemm
// kernels take no row strides for src and dst (a strided call falls back to the reference kernel), so callers
// copy strided data through dense buffers.
std::shared_ptr<MatmulPrim> make_matmul(Dt t, int64_t m, int64_t k, int64_t n, const memory::desc& w, bool bias,
                                        int nthr) {
  return with_omp_threads(nthr, [&] {
    auto p = std::make_shared<MatmulPrim>();
    p->src = memory::desc({m, k}, t, Tag::ab);
    p->dst = memory::desc({m, n}, Dt::f32, Tag::ab);
    p->weights = w;
    memory::desc b_md = bias ? memory::desc({1, n}, Dt::f32, Tag::ab) : memory::desc();
    auto d = bias ? dnnl::matmul::desc(p->src, w, b_md, p->dst) : dnnl::matmul::desc(p->src, w, p->dst);
    dnnl::matmul::primitive_desc pd(d, user_scratchpad_attr(), cpu_engine());
    warn_if_reference(pd, m, k, n);
    p->scratchpad = pd.scratchpad_desc();
    p->scratch_bytes = p->scratchpad.get_size();
    p->prim = dnnl::matmul(pd);
    return p;
  });
}

// The packed layout oneDNN prefers for weights [k, n] of element type t.
memory::desc preferred_weights_layout(Dt t, int64_t k, int64_t n, bool bias, int nthr) {
  return with_omp_threads(nthr, [&] {
    memory::desc src({LAYOUT_REFERENCE_M, k}, t, Tag::ab), dst({LAYOUT_REFERENCE_M, n}, Dt::f32, Tag::ab);
    memory::desc w_any({k, n}, t, Tag::any);
    memory::desc b_md = bias ? memory::desc({1, n}, Dt::f32, Tag::ab) : memory::desc();
    auto d = bias ? dnnl::matmul::desc(src, w_any, b_md, dst) : dnnl::matmul::desc(src, w_any, dst);
    return dnnl::matmul::primitive_desc(d, user_scratchpad_attr(), cpu_engine()).weights_desc();
  });
}

void execute(const MatmulPrim& p, const void* src, const void* weights, const float* bias, float* dst) {
  dnnl::engine& eng = cpu_engine();
  std::unordered_map<int, memory> args;
  args.emplace(DNNL_ARG_SRC, memory(p.src, eng, const_cast<void*>(src)));
  args.emplace(DNNL_ARG_WEIGHTS, memory(p.weights, eng, const_cast<void*>(weights)));
  args.emplace(DNNL_ARG_DST, memory(p.dst, eng, dst));
  if (bias) {
    memory::desc b_md({1, p.dst.dims()[1]}, Dt::f32, Tag::ab);
    args.emplace(DNNL_ARG_BIAS, memory(b_md, eng, const_cast<float*>(bias)));
  }
  if (p.scratch_bytes > 0)
    args.emplace(DNNL_ARG_SCRATCHPAD, memory(p.scratchpad, eng, thread_scratchpad().get(p.scratch_bytes)));
  dnnl::stream& s = thread_stream();
  p.prim.execute(s, args);
  s.wait();
}

// Reorders src (a plain memory) into dst (the packed layout), with the calling task's threads.
void reorder_into(const memory::desc& src_md, const void* src, const memory::desc& dst_md, void* dst) {
  dnnl::engine& eng = cpu_engine();
  memory s(src_md, eng, const_cast<void*>(src)), d(dst_md, eng, dst);
  dnnl::stream& st = thread_stream();
  dnnl::reorder(s, d).execute(st, s, d);
  st.wait();
}

// Converts n elements to bf16 bits, via f32 for F16 sources.
void to_bf16_bits(const void* src, DType t, int64_t n, uint16_t* dst) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float f = t == DType::F32   ? static_cast<const float*>(src)[i]
              : t == DType::F16 ? f16_to_f32(static_cast<const f16_t*>(src)[i])
                                : bf16_to_f32(static_cast<const bf16_t*>(src)[i]);
    dst[i] = detail::to_bf16_bits(f);
  }
}

void to_f32(const void* src, DType t, int64_t n, float* dst) {
  constexpr int64_t CHUNK = 1 << 16;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < n; c += CHUNK)
    convert_to_f32(static_cast<const char*>(src) + c * dtype_size(t), t, static_cast<size_t>(std::min(CHUNK, n - c)),
                   dst + c);
}

}  // namespace

Bf16Gemm resolve_bf16_gemm(Bf16Gemm g) {
  if (g == Bf16Gemm::Amx && !amx::available())
    throw Unsupported(
        "the AMX bf16 GEMM needs a CPU with AMX-BF16 (Intel Sapphire Rapids or later) and a kernel that grants the "
        "tile state");
  if (g != Bf16Gemm::Auto) return g;
  return amx::available() ? Bf16Gemm::Amx : Bf16Gemm::OneDnn;
}

const char* bf16_gemm_name(Bf16Gemm g) {
  return g == Bf16Gemm::Auto ? "auto" : g == Bf16Gemm::OneDnn ? "onednn" : "amx";
}

Bf16Gemm parse_bf16_gemm(const std::string& s) {
  for (Bf16Gemm g : {Bf16Gemm::Auto, Bf16Gemm::OneDnn, Bf16Gemm::Amx})
    if (s == bf16_gemm_name(g)) return g;
  throw InvalidInput(fmt::format("unknown bf16 GEMM \"{}\": choose auto, onednn or amx", s));
}

// ---------------------------------------------------------------------------------------------------------------
// PackedLinear

struct PackedLinear::Impl {
  int64_t n_out = 0, n_in = 0;
  Compute compute = Compute::F32;
  memory::desc w_md;  // packed layout of W as oneDNN weights [n_in, n_out]
  AlignedPtr<uint8_t> w_packed;
  AlignedPtr<float> bias;   // n_out floats or null
  amx::PackedWeight amx_w;  // set when the layer runs on the AMX GEMM (then w_md and w_packed are empty)
  bool gated = false;       // forward_silu_mul only (amx_w, if set, is packed gated)

  using Key = std::pair<int64_t, int>;  // m, threads
  mutable std::mutex mu;
  mutable std::map<Key, std::shared_ptr<const MatmulPrim>> prims;

  const MatmulPrim& prim(int64_t m) const {
    int nthr = team_threads();
    Key key{m, nthr};
    std::lock_guard<std::mutex> lock(mu);
    auto it = prims.find(key);
    if (it == prims.end()) {
      try {
        it = prims.emplace(key, make_matmul(elem_dt(compute), m, n_in, n_out, w_md, bias != nullptr, nthr)).first;
      } catch (const dnnl::error& e) {
        rethrow(e, fmt::format("creating matmul [{}x{}]·[{}x{}]ᵀ", m, n_in, n_out, n_in));
      }
    }
    return *it->second;
  }
};

PackedLinear::PackedLinear(const void* w, DType w_type, int64_t n_out, int64_t n_in, const void* bias, DType bias_type,
                           Compute compute, Bf16Gemm bf16_gemm, bool gated) {
  OE_CHECK(w != nullptr && n_out > 0 && n_in > 0, "PackedLinear needs a weight, got [{}, {}]", n_out, n_in);
  if (w_type != DType::F32 && w_type != DType::BF16 && w_type != DType::F16)
    throw Unsupported(fmt::format("linear weight of type {} (expected F32, BF16 or F16)", dtype_name(w_type)));
  auto impl = std::make_shared<Impl>();
  impl->n_out = n_out;
  impl->n_in = n_in;
  impl->compute = compute;
  impl->gated = gated;
  OE_CHECK(!gated || n_out % 2 == 0, "a gated linear layer stacks gate and up: {} rows", n_out);
  if (bias) {
    impl->bias = aligned_array<float>(static_cast<size_t>(n_out));
    convert_to_f32(bias, bias_type, static_cast<size_t>(n_out), impl->bias.get());
  }
  if (compute == Compute::BF16 && resolve_bf16_gemm(bf16_gemm) == Bf16Gemm::Amx) {
    const bool amx_gated = gated;  // SiLU(gate)·up from the accumulator tiles (amx::linear_silu_mul)
    if (w_type == DType::BF16) {
      impl->amx_w = amx::PackedWeight(static_cast<const uint16_t*>(w), n_out, n_in, amx_gated);
    } else {  // a transient bf16 copy, then pack
      AlignedPtr<uint16_t> tmp = aligned_array<uint16_t>(static_cast<size_t>(n_out * n_in));
      to_bf16_bits(w, w_type, n_out * n_in, tmp.get());
      impl->amx_w = amx::PackedWeight(tmp.get(), n_out, n_in, amx_gated);
    }
    impl_ = std::move(impl);
    return;
  }
  const Dt t = elem_dt(compute);
  const size_t n = static_cast<size_t>(n_out * n_in);
  try {
    impl->w_md = preferred_weights_layout(t, n_in, n_out, bias != nullptr, team_threads());
    impl->w_packed = aligned_array<uint8_t>(impl->w_md.get_size());
    // W [n_out, n_in] row-major is the oneDNN weights [n_in, n_out] in the transposed plain layout `ba`.
    if (w_type == DType::F32 || (w_type == DType::BF16 && compute == Compute::BF16)) {
      memory::desc src_md({n_in, n_out}, w_type == DType::F32 ? Dt::f32 : Dt::bf16, Tag::ba);
      reorder_into(src_md, w, impl->w_md, impl->w_packed.get());
    } else if (compute == Compute::BF16) {  // F16 source: a transient bf16 copy (converted via f32), then pack
      AlignedPtr<uint16_t> tmp = aligned_array<uint16_t>(n);
      to_bf16_bits(w, w_type, static_cast<int64_t>(n), tmp.get());
      reorder_into(memory::desc({n_in, n_out}, Dt::bf16, Tag::ba), tmp.get(), impl->w_md, impl->w_packed.get());
    } else {  // F32 compute from BF16 or F16: a transient f32 copy, then pack
      AlignedPtr<float> tmp = aligned_array<float>(n);
      to_f32(w, w_type, static_cast<int64_t>(n), tmp.get());
      reorder_into(memory::desc({n_in, n_out}, Dt::f32, Tag::ba), tmp.get(), impl->w_md, impl->w_packed.get());
    }
  } catch (const dnnl::error& e) {
    rethrow(e,
            fmt::format("packing a [{}, {}] {} weight for {}", n_out, n_in, dtype_name(w_type), compute_name(compute)));
  }
  impl_ = std::move(impl);
}

void PackedLinear::forward(const float* x, int64_t m, float* y, int64_t ldx, int64_t ldy) const {
  OE_CHECK(impl_ != nullptr, "forward on an empty PackedLinear");
  const Impl& im = *impl_;
  if (ldx == 0) ldx = im.n_in;
  if (ldy == 0) ldy = im.n_out;
  OE_CHECK(m >= 0 && ldx >= im.n_in && ldy >= im.n_out, "m={} ldx={} ldy={} for [{}, {}]", m, ldx, ldy, im.n_out,
           im.n_in);
  if (m == 0) return;
  OE_CHECK(!im.amx_w.gated(), "forward on a gated AMX layer (its columns are interleaved): use forward_silu_mul");
  if (im.amx_w.data() != nullptr) {
    amx::linear(im.amx_w, im.bias.get(), x, m, ldx, y, ldy);
    return;
  }
  const int64_t k = im.n_in, n = im.n_out;
  const bool parallel = m * std::max(k, n) >= (1 << 16);
  // oneDNN 2.6's AMX kernels run a row count that is not a multiple of the 32-row tile block through a much slower
  // tail path (278 rows took 1.5–2× the time of 288 here); in BF16 mode the rows are padded with zeros to a whole
  // block, which costs only the copy of the extra output rows. Rows are independent, so the result is the same.
  const int64_t m_exec =
      im.compute == Compute::BF16 && m > M_BLOCK && m % M_BLOCK != 0 ? (m + M_BLOCK - 1) / M_BLOCK * M_BLOCK : m;
  // Dense source: bf16 rows (BF16 mode), or a dense copy of strided f32 rows; per calling thread, reused.
  const void* src = x;
  if (im.compute == Compute::BF16 || ldx != k) {
    thread_local ThreadBuffer act;
    void* buf = act.get(static_cast<size_t>(m_exec * k) * (im.compute == Compute::BF16 ? 2 : 4));
    if (im.compute == Compute::BF16) {
      auto* xb = static_cast<uint16_t*>(buf);
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t i = 0; i < m; ++i)
#pragma omp simd
        for (int64_t j = 0; j < k; ++j) xb[i * k + j] = detail::to_bf16_bits(x[i * ldx + j]);
      std::fill(xb + m * k, xb + m_exec * k, uint16_t{0});
    } else {
      auto* xf = static_cast<float*>(buf);
#pragma omp parallel for schedule(static) if (parallel)
      for (int64_t i = 0; i < m; ++i) std::copy_n(x + i * ldx, k, xf + i * k);
    }
    src = buf;
  }
  // Dense destination: y itself, or a per-thread buffer copied into the (strided) rows of y afterwards.
  float* dst = y;
  thread_local ThreadBuffer out;
  if (ldy != n || m_exec != m) dst = static_cast<float*>(out.get(static_cast<size_t>(m_exec * n) * 4));
  const MatmulPrim& p = im.prim(m_exec);
  try {
    execute(p, src, im.w_packed.get(), im.bias.get(), dst);
  } catch (const dnnl::error& e) {
    rethrow(e, fmt::format("matmul [{}x{}]·[{}x{}]ᵀ", m_exec, k, n, k));
  }
  if (dst != y) {
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t i = 0; i < m; ++i) std::copy_n(dst + i * n, n, y + i * ldy);
  }
}

void PackedLinear::forward_silu_mul(const float* x, int64_t m, float* act, int64_t ldx, int64_t ld_act) const {
  OE_CHECK(impl_ != nullptr && impl_->gated, "forward_silu_mul on a layer not built as gated");
  const Impl& im = *impl_;
  const int64_t d = im.n_out / 2;
  if (ldx == 0) ldx = im.n_in;
  if (ld_act == 0) ld_act = d;
  OE_CHECK(m >= 0 && ldx >= im.n_in && ld_act >= d, "m={} ldx={} ld_act={} for [{}, {}]", m, ldx, ld_act, im.n_out,
           im.n_in);
  if (m == 0) return;
  if (im.amx_w.gated()) {
    amx::linear_silu_mul(im.amx_w, im.bias.get(), x, m, ldx, act, ld_act);
    return;
  }
  // gate | up into a per-thread buffer (as a separate forward and silu_mul would), then the products.
  thread_local ThreadBuffer gate_up;
  float* gu = static_cast<float*>(gate_up.get(static_cast<size_t>(m * im.n_out) * sizeof(float)));
  forward(x, m, gu, ldx, im.n_out);
  silu_mul(gu, im.n_out, gu + d, im.n_out, act, ld_act, m, d, im.compute);
}

int64_t PackedLinear::n_out() const { return impl_ ? impl_->n_out : 0; }
int64_t PackedLinear::n_in() const { return impl_ ? impl_->n_in : 0; }
Compute PackedLinear::compute() const { return impl_ ? impl_->compute : Compute::F32; }
size_t PackedLinear::packed_bytes() const {
  if (!impl_) return 0;
  return impl_->amx_w.data() != nullptr ? impl_->amx_w.bytes() : impl_->w_md.get_size();
}
const char* PackedLinear::kernel_name() const { return impl_ && impl_->amx_w.data() != nullptr ? "amx" : "onednn"; }

// ---------------------------------------------------------------------------------------------------------------
// Local GEMMs (local_gemm.h): primitives for one thread, cached per shape for the life of the process.

namespace detail {
namespace {

struct LocalCache {
  std::mutex mu;
  std::map<std::tuple<int, int64_t, int64_t>, memory::desc> layouts;  // (type, k, n)
  std::map<std::tuple<int, int64_t, int64_t, int64_t, bool>, std::shared_ptr<const dnnl::reorder>> packers;
  std::map<std::tuple<int, int64_t, int64_t, int64_t>, std::shared_ptr<const MatmulPrim>> gemms;
};

LocalCache& local_cache() {
  static LocalCache c;
  return c;
}

// Call with the cache locked.
const memory::desc& local_layout(LocalCache& c, Compute type, int64_t k, int64_t n) {
  auto key = std::make_tuple(static_cast<int>(type), k, n);
  auto it = c.layouts.find(key);
  if (it == c.layouts.end())
    it = c.layouts.emplace(key, preferred_weights_layout(elem_dt(type), k, n, /*bias=*/false, /*nthr=*/1)).first;
  return it->second;
}

}  // namespace

size_t local_gemm_packed_b_bytes(Compute type, int64_t k, int64_t n) {
  LocalCache& c = local_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  try {
    return local_layout(c, type, k, n).get_size();
  } catch (const dnnl::error& e) {
    rethrow(e, fmt::format("local GEMM layout [{}, {}]", k, n));
  }
}

void local_gemm_pack_b(Compute type, int64_t k, int64_t n, const float* b, int64_t ldb, bool b_is_nk, void* packed) {
  LocalCache& c = local_cache();
  memory::desc src_md({k, n}, Dt::f32, b_is_nk ? memory::dims{1, ldb} : memory::dims{ldb, 1});
  memory::desc dst_md;
  std::shared_ptr<const dnnl::reorder> r;
  try {
    std::lock_guard<std::mutex> lock(c.mu);
    dst_md = local_layout(c, type, k, n);
    auto key = std::make_tuple(static_cast<int>(type), k, n, ldb, b_is_nk);
    auto it = c.packers.find(key);
    if (it == c.packers.end()) {
      auto made = with_omp_threads(1, [&] {
        return std::make_shared<const dnnl::reorder>(
            dnnl::reorder::primitive_desc(cpu_engine(), src_md, cpu_engine(), dst_md));
      });
      it = c.packers.emplace(key, std::move(made)).first;
    }
    r = it->second;
  } catch (const dnnl::error& e) {
    rethrow(e, fmt::format("local GEMM packing reorder [{}, {}]", k, n));
  }
  dnnl::engine& eng = cpu_engine();
  memory s(src_md, eng, const_cast<float*>(b)), d(dst_md, eng, packed);
  dnnl::stream& st = thread_stream();
  r->execute(st, s, d);
  st.wait();
}

void local_gemm(Compute type, int64_t m, int64_t k, int64_t n, const void* a, const void* packed_b, float* c) {
  LocalCache& cache = local_cache();
  std::shared_ptr<const MatmulPrim> p;
  try {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto key = std::make_tuple(static_cast<int>(type), m, k, n);
    auto it = cache.gemms.find(key);
    if (it == cache.gemms.end()) {
      const memory::desc& w = local_layout(cache, type, k, n);
      it = cache.gemms.emplace(key, make_matmul(elem_dt(type), m, k, n, w, /*bias=*/false, /*nthr=*/1)).first;
    }
    p = it->second;
  } catch (const dnnl::error& e) {
    rethrow(e, fmt::format("creating local GEMM [{}x{}]·[{}x{}]", m, k, k, n));
  }
  try {
    execute(*p, a, packed_b, nullptr, c);
  } catch (const dnnl::error& e) {
    rethrow(e, fmt::format("local GEMM [{}x{}]·[{}x{}]", m, k, k, n));
  }
}

}  // namespace detail
void gemm_f32_nt(const float* a, int64_t m, const float* b, int64_t n, int64_t k, float* c) {
  if (m == 0 || n == 0) return;
  const dnnl_status_t st = dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
  OE_CHECK(st == dnnl_success, "dnnl_sgemm failed with status {}", static_cast<int>(st));
}

void gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
              const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const dnnl_status_t st =
      dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  OE_CHECK(st == dnnl_success, "dnnl_sgemm failed with status {}", static_cast<int>(st));
}

}  // namespace oe::kernels
