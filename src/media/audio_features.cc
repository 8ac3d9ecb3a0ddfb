// The Whisper log-mel front end (spec qwen25-omni-thinker.md §6.3), mirroring transformers'
// WhisperFeatureExtractor._np_extract_fbank_features (numpy path: audio_utils.spectrogram + mel_filter_bank).
// Everything runs in double precision and is cast to float32 at the end, as the reference computes its FFT, power,
// mel product and log10 in float64 (it stores the spectrum as complex64 in between, a ≤ 2e-7 effect on the
// features that is not reproduced). A float32 DFT would not do: its error, relative to a frame's strongest bin,
// swamps the weak bins that decide which values sit on the clip's floor.
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "media/audio.h"
#include "media/audio_fft.h"

namespace oe::media {

namespace {

using Complex = std::complex<double>;

constexpr double MEL_FLOOR = 1e-10;     // log10 clamps the mel power here
constexpr double LOG_RANGE = 8.0;       // values more than 8 decades below the clip's maximum are raised to it
// The Slaney mel scale: linear (3 mel per 200 Hz) below 1 kHz, logarithmic above (27 mel per factor of 6.4).
constexpr double MEL_BREAK_HZ = 1000.0;
constexpr double MEL_BREAK = 15.0;
const double MEL_PER_LOG_HZ = 27.0 / std::log(6.4);
// Limits that keep the sizes far from integer overflow; real configs are orders of magnitude below.
constexpr int64_t MAX_N_FFT = 1 << 16;
constexpr int64_t MAX_N_MEL = 1 << 12;
constexpr int64_t MAX_SAMPLES_LIMIT = int64_t{1} << 34;

// The plain product: std::complex's operator* adds NaN/Inf recovery (a libgcc call) that finite data never needs.
inline Complex mul(Complex a, Complex b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}
// -i·z
inline Complex mul_neg_i(Complex z) { return {z.imag(), -z.real()}; }

// Forward complex DFT (X[k] = Σ x[t]·e^{-2πi·kt/n}) of any size: mixed-radix decimation in time, with dedicated
// butterflies for radices 2, 4 and 5 and a direct one for any other prime factor.
class ComplexFft {
 public:
  explicit ComplexFft(int64_t n) : n_(n), twiddles_(static_cast<size_t>(n)) {
    OE_CHECK(n >= 1, "FFT size {}", n);
    for (int64_t i = 0; i < n; ++i) {
      const double angle = -2.0 * std::numbers::pi * static_cast<double>(i) / static_cast<double>(n);
      twiddles_[static_cast<size_t>(i)] = {std::cos(angle), std::sin(angle)};
    }
    int64_t rest = n;
    for (const int64_t p : {4, 2, 3, 5}) {
      while (rest % p == 0) radices_.push_back(p), rest /= p;
    }
    for (int64_t p = 7; rest > 1; p += 2) {
      while (rest % p == 0) radices_.push_back(p), rest /= p;
    }
  }

  int64_t size() const { return n_; }
  // `in` and `out` hold n values each and must not overlap.
  void forward(const Complex* in, Complex* out) const {
    if (n_ == 1) {
      out[0] = in[0];
      return;
    }
    pass(in, 1, out, n_, 0);
  }

 private:
  // DFT of the n values in[0], in[stride], ... into out[0..n): the radix's p sub-transforms of m = n/p points
  // into out[q·m ..], then m butterflies combining out[k + q·m] over q, each with the twiddles W_n^{qk}, which are
  // twiddles_[q·k·stride] (stride = N/n).
  void pass(const Complex* in, int64_t stride, Complex* out, int64_t n, size_t level) const {
    const int64_t p = radices_[level], m = n / p;
    if (m == 1) {
      for (int64_t q = 0; q < p; ++q) out[q] = in[q * stride];
    } else {
      for (int64_t q = 0; q < p; ++q) pass(in + q * stride, stride * p, out + q * m, m, level + 1);
    }
    switch (p) {
      case 2: return radix2(out, m, stride);
      case 4: return radix4(out, m, stride);
      case 5: return radix5(out, m, stride);
      default: return radix_generic(out, m, p, stride);
    }
  }

  Complex twiddle(int64_t i) const { return twiddles_[static_cast<size_t>(i)]; }

  void radix2(Complex* x, int64_t m, int64_t stride) const {
    for (int64_t k = 0; k < m; ++k) {
      const Complex t0 = x[k], t1 = mul(x[k + m], twiddle(k * stride));
      x[k] = t0 + t1;
      x[k + m] = t0 - t1;
    }
  }

  void radix4(Complex* x, int64_t m, int64_t stride) const {
    for (int64_t k = 0; k < m; ++k) {
      const int64_t w = k * stride;
      const Complex t0 = x[k], t1 = mul(x[k + m], twiddle(w)), t2 = mul(x[k + 2 * m], twiddle(2 * w));
      const Complex t3 = mul(x[k + 3 * m], twiddle(3 * w));
      const Complex a0 = t0 + t2, a1 = t0 - t2, b0 = t1 + t3, b1 = mul_neg_i(t1 - t3);
      x[k] = a0 + b0;
      x[k + m] = a1 + b1;
      x[k + 2 * m] = a0 - b0;
      x[k + 3 * m] = a1 - b1;
    }
  }

  // Pairs q and 5 − q share the cosine of their root and have opposite sines.
  void radix5(Complex* x, int64_t m, int64_t stride) const {
    for (int64_t k = 0; k < m; ++k) {
      const int64_t w = k * stride;
      const Complex t0 = x[k], t1 = mul(x[k + m], twiddle(w)), t2 = mul(x[k + 2 * m], twiddle(2 * w));
      const Complex t3 = mul(x[k + 3 * m], twiddle(3 * w)), t4 = mul(x[k + 4 * m], twiddle(4 * w));
      const Complex a = t1 + t4, b = t2 + t3, c = t1 - t4, d = t2 - t3;
      const Complex r1 = t0 + a * cos1_ + b * cos2_, r2 = t0 + a * cos2_ + b * cos1_;
      const Complex i1 = mul_neg_i(c * sin1_ + d * sin2_), i2 = mul_neg_i(c * sin2_ - d * sin1_);
      x[k] = t0 + a + b;
      x[k + m] = r1 + i1;
      x[k + 4 * m] = r1 - i1;
      x[k + 2 * m] = r2 + i2;
      x[k + 3 * m] = r2 - i2;
    }
  }

  // Any other prime radix: the direct p-point DFT, its roots W_p^j = twiddles_[j·N/p].
  void radix_generic(Complex* x, int64_t m, int64_t p, int64_t stride) const {
    std::vector<Complex> t(static_cast<size_t>(p));
    const int64_t root = n_ / p;
    for (int64_t k = 0; k < m; ++k) {
      for (int64_t q = 0; q < p; ++q) t[static_cast<size_t>(q)] = mul(x[k + q * m], twiddle(q * k * stride));
      for (int64_t s = 0; s < p; ++s) {
        Complex acc = t[0];
        for (int64_t q = 1; q < p; ++q) acc += mul(t[static_cast<size_t>(q)], twiddle((q * s % p) * root));
        x[k + s * m] = acc;
      }
    }
  }

  int64_t n_;
  std::vector<Complex> twiddles_;  // W_N^i = e^{-2πi·i/N}, i < N
  std::vector<int64_t> radices_;
  const double cos1_ = std::cos(2 * std::numbers::pi / 5), cos2_ = std::cos(4 * std::numbers::pi / 5);
  const double sin1_ = std::sin(2 * std::numbers::pi / 5), sin2_ = std::sin(4 * std::numbers::pi / 5);
};

// One-sided DFT (n/2 + 1 bins) of a real frame of even length n, through a complex FFT of n/2 points on the
// even/odd samples packed as z[t] = x[2t] + i·x[2t+1].
class RealFft {
 public:
  explicit RealFft(int64_t n) : half_(n / 2), twiddles_(static_cast<size_t>(n / 2)) {
    OE_CHECK(n >= 2 && n % 2 == 0, "real FFT size {} must be even", n);
    for (int64_t k = 0; k < n / 2; ++k) {
      const double angle = -2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(n);
      twiddles_[static_cast<size_t>(k)] = {std::cos(angle), std::sin(angle)};
    }
  }

  // `scratch` holds n complex values; `out` receives n/2 + 1 bins.
  void forward(const double* x, Complex* out, Complex* scratch) const {
    const int64_t h = half_.size();
    Complex* z = scratch;
    Complex* zf = scratch + h;
    for (int64_t t = 0; t < h; ++t) z[t] = {x[2 * t], x[2 * t + 1]};
    half_.forward(z, zf);
    // Even part E = (Z[k] + conj Z[h−k]) / 2, odd part O = −i (Z[k] − conj Z[h−k]) / 2, X[k] = E + W_n^k O.
    out[0] = {zf[0].real() + zf[0].imag(), 0.0};
    out[h] = {zf[0].real() - zf[0].imag(), 0.0};
    for (int64_t k = 1; k < h; ++k) {
      const Complex a = zf[k], b = std::conj(zf[h - k]);
      const Complex even = (a + b) * 0.5, odd = mul_neg_i((a - b) * 0.5);
      out[k] = even + mul(twiddles_[static_cast<size_t>(k)], odd);
    }
  }

 private:
  ComplexFft half_;
  std::vector<Complex> twiddles_;  // W_n^k, k < n/2
};

double hz_to_mel(double f) {
  return f < MEL_BREAK_HZ ? 3.0 * f / 200.0 : MEL_BREAK + std::log(f / MEL_BREAK_HZ) * MEL_PER_LOG_HZ;
}

double mel_to_hz(double m) {
  return m < MEL_BREAK ? 200.0 * m / 3.0 : MEL_BREAK_HZ * std::exp((m - MEL_BREAK) / MEL_PER_LOG_HZ);
}

// numpy.linspace(a, b, n): a + i·step, the last point exactly b.
std::vector<double> linspace(double a, double b, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  const double step = n > 1 ? (b - a) / static_cast<double>(n - 1) : 0.0;
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = a + static_cast<double>(i) * step;
  if (n > 1) v.back() = b;
  return v;
}

// The mel bank by rows of non-zero weights: filter m covers bins [first[m], first[m] + weights[m].size()).
struct SparseMelBank {
  std::vector<int64_t> first;
  std::vector<std::vector<double>> weights;
};

SparseMelBank sparse_mel_bank(const AudioFeatureConfig& config) {
  const std::vector<double> dense = mel_filter_bank(config);
  const int64_t n_bins = config.n_fft / 2 + 1;
  SparseMelBank bank;
  for (int64_t m = 0; m < config.n_mel; ++m) {
    int64_t lo = 0, hi = n_bins;
    while (lo < hi && dense[static_cast<size_t>(lo * config.n_mel + m)] == 0.0) ++lo;
    while (hi > lo && dense[static_cast<size_t>((hi - 1) * config.n_mel + m)] == 0.0) --hi;
    bank.first.push_back(lo);
    std::vector<double>& w = bank.weights.emplace_back();
    for (int64_t k = lo; k < hi; ++k) w.push_back(dense[static_cast<size_t>(k * config.n_mel + m)]);
  }
  return bank;
}


// The clip as the STFT sees it: `length` real samples, zeros up to n, reflected (numpy "reflect", edge sample
// not repeated) for n_fft/2 samples on both ends.
struct PaddedClip {
  const float* samples;
  int64_t length;  // real samples, ≤ n
  int64_t n;       // max_samples

  int64_t reflect(int64_t i) const { return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i); }
  double at(int64_t i) const {
    const int64_t r = reflect(i);
    return r < length ? static_cast<double>(samples[r]) : 0.0;
  }
};

// log10 of the mel power of one frame (n_mel values) from its windowed samples.
struct FrameWorker {
  const RealFft& fft;
  const SparseMelBank& bank;
  std::vector<Complex> spectrum, scratch;
  std::vector<double> power;

  FrameWorker(const RealFft& f, const SparseMelBank& b, int64_t n_fft)
      : fft(f), bank(b), spectrum(static_cast<size_t>(n_fft / 2 + 1)), scratch(static_cast<size_t>(n_fft)),
        power(static_cast<size_t>(n_fft / 2 + 1)) {}

  void log_mel(const double* frame, double* out) {
    fft.forward(frame, spectrum.data(), scratch.data());
    for (size_t k = 0; k < spectrum.size(); ++k) {
      power[k] = spectrum[k].real() * spectrum[k].real() + spectrum[k].imag() * spectrum[k].imag();
    }
    for (size_t m = 0; m < bank.weights.size(); ++m) {
      const std::vector<double>& w = bank.weights[m];
      const double* p = power.data() + bank.first[m];
      double acc = 0.0;
      for (size_t k = 0; k < w.size(); ++k) acc += w[k] * p[k];
      out[m] = std::log10(std::max(acc, MEL_FLOOR));
    }
  }
};

// log10 of the mel power of frames 0..n_frames−1 of the clip: [n_frames, n_mel], frames spread over the threads.
std::vector<double> frame_logs(const PaddedClip& clip, const AudioFeatureConfig& config, int64_t n_frames) {
  const int64_t n_fft = config.n_fft, hop = config.hop_length, n_mel = config.n_mel;
  std::vector<double> window(static_cast<size_t>(n_fft));  // periodic Hann
  for (int64_t t = 0; t < n_fft; ++t) {
    window[static_cast<size_t>(t)] =
        0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(t) / static_cast<double>(n_fft));
  }
  const RealFft fft(n_fft);
  const SparseMelBank bank = sparse_mel_bank(config);
  std::vector<double> logs(static_cast<size_t>(n_frames * n_mel));
#pragma omp parallel if (n_frames > 64)
  {
    FrameWorker worker(fft, bank, n_fft);
    std::vector<double> frame(static_cast<size_t>(n_fft));
#pragma omp for schedule(static)
    for (int64_t j = 0; j < n_frames; ++j) {
      const int64_t a = hop * j - n_fft / 2;
      for (int64_t t = 0; t < n_fft; ++t) {
        frame[static_cast<size_t>(t)] = clip.at(a + t) * window[static_cast<size_t>(t)];
      }
      worker.log_mel(frame.data(), &logs[static_cast<size_t>(j * n_mel)]);
    }
  }
  return logs;
}

}  // namespace

void validate(const AudioFeatureConfig& c) {
  const auto require = [](bool ok, const std::string& what) {
    if (!ok) throw InvalidInput("audio feature settings: " + what);
  };
  require(c.n_mel > 0 && c.n_mel <= MAX_N_MEL, fmt::format("feature_size must be in [1, {}], got {}", MAX_N_MEL,
                                                             c.n_mel));
  require(c.sampling_rate > 0, fmt::format("sampling_rate must be positive, got {}", c.sampling_rate));
  require(c.n_fft >= 2 && c.n_fft <= MAX_N_FFT && c.n_fft % 2 == 0,
          fmt::format("n_fft must be even and in [2, {}], got {}", MAX_N_FFT, c.n_fft));
  require(c.hop_length > 0 && c.hop_length <= c.n_fft,
          fmt::format("hop_length must be in [1, n_fft = {}], got {}", c.n_fft, c.hop_length));
  // The reflection padding of n_fft/2 must fit in the clip (one reflection, as numpy's for a long enough clip).
  require(c.max_samples >= c.n_fft && c.max_samples <= MAX_SAMPLES_LIMIT && c.max_samples % c.hop_length == 0,
          fmt::format("n_samples must be a multiple of hop_length = {} in [n_fft = {}, {}], got {}", c.hop_length,
                      c.n_fft, MAX_SAMPLES_LIMIT, c.max_samples));
}

std::vector<double> mel_filter_bank(const AudioFeatureConfig& config) {
  validate(config);
  const int64_t n_bins = config.n_fft / 2 + 1, n_mel = config.n_mel;
  const double nyquist = static_cast<double>(config.sampling_rate) / 2.0;
  const std::vector<double> freqs = linspace(0.0, nyquist, n_bins);
  std::vector<double> fpts = linspace(hz_to_mel(0.0), hz_to_mel(nyquist), n_mel + 2);
  for (double& f : fpts) f = mel_to_hz(f);
  std::vector<double> bank(static_cast<size_t>(n_bins * n_mel));  // [n_bins, n_mel]
  for (int64_t m = 0; m < n_mel; ++m) {
    const double lo = fpts[static_cast<size_t>(m)], mid = fpts[static_cast<size_t>(m + 1)];
    const double hi = fpts[static_cast<size_t>(m + 2)];
    const double norm = 2.0 / (hi - lo);  // Slaney: each triangle has unit area in Hz
    for (int64_t k = 0; k < n_bins; ++k) {
      const double f = freqs[static_cast<size_t>(k)];
      const double tri = std::max(0.0, std::min((f - lo) / (mid - lo), (hi - f) / (hi - mid)));
      bank[static_cast<size_t>(k * n_mel + m)] = tri * norm;
    }
  }
  return bank;
}

LogMel log_mel(std::span<const float> samples, const AudioFeatureConfig& config) {
  validate(config);
  const int64_t n_fft = config.n_fft, hop = config.hop_length, n_mel = config.n_mel;
  const PaddedClip clip{samples.data(), std::min<int64_t>(static_cast<int64_t>(samples.size()), config.max_samples),
                        config.max_samples};
  LogMel out;
  out.n_mel = n_mel;
  out.n_frames = config.max_samples / hop;  // the STFT's 1 + max_samples/hop frames, the last one dropped
  out.valid_frames = audio_valid_frames(static_cast<int64_t>(samples.size()), config);

  // Frame j reads clip[hop·j − n_fft/2, hop·j + n_fft/2), reflected at both ends. A frame that starts at or after
  // the end of the real samples reads only zeros: power 0, the floor value, no transform needed. The frames that
  // do read real samples are exactly the ones before: a frame reading the left reflection also reads sample 0, and
  // the right reflection of a kept frame (which starts at most n − hop − n_fft/2) reaches only samples after its
  // start.
  const int64_t n_computed =
      clip.length == 0 ? 0 : std::min(out.n_frames, (clip.length + n_fft / 2 + hop - 1) / hop);
  const std::vector<double> logs = frame_logs(clip, config, n_computed);  // [n_computed, n_mel]

  // The floor is relative to the maximum over every frame of the clip. No value is below the all-zero frames'
  // log10(MEL_FLOOR), so starting from it gives that maximum whether or not such frames exist.
  const double silent = std::log10(MEL_FLOOR);
  double g = silent;
  for (const double v : logs) g = std::max(g, v);
  const double floor = g - LOG_RANGE;
  const auto scale = [floor](double v) { return static_cast<float>((std::max(v, floor) + 4.0) / 4.0); };
  out.values.assign(static_cast<size_t>(n_mel * out.n_frames), scale(silent));  // [n_mel, n_frames]
  constexpr int64_t TILE = 64;  // frames per tile of the transpose: both sides stay in cache
  for (int64_t j0 = 0; j0 < n_computed; j0 += TILE) {
    const int64_t j1 = std::min(n_computed, j0 + TILE);
    for (int64_t m = 0; m < n_mel; ++m) {
      float* row = &out.values[static_cast<size_t>(m * out.n_frames)];
      for (int64_t j = j0; j < j1; ++j) row[j] = scale(logs[static_cast<size_t>(j * n_mel + m)]);
    }
  }
  return out;
}

int64_t audio_valid_frames(int64_t n_samples, const AudioFeatureConfig& config) {
  OE_CHECK(n_samples >= 0 && config.hop_length > 0, "n_samples {} hop_length {}", n_samples, config.hop_length);
  const int64_t kept = std::min(n_samples, config.max_samples);
  return (kept + config.hop_length - 1) / config.hop_length;
}

int64_t audio_token_count(int64_t valid_frames) {
  // ((T − 1)//2 + 1 − 2)//2 + 1: two stride-2 reductions (conv2, then the average pool); every operand below is
  // non-negative once T ≥ 3, so C++ division is Python's floor division here.
  if (valid_frames < 3) return 0;
  return ((valid_frames - 1) / 2 + 1 - 2) / 2 + 1;
}

namespace detail {

void complex_fft(std::span<const std::complex<double>> in, std::span<std::complex<double>> out) {
  OE_CHECK(in.size() == out.size() && !in.empty(), "complex_fft: {} in, {} out", in.size(), out.size());
  ComplexFft(static_cast<int64_t>(in.size())).forward(in.data(), out.data());
}

void real_fft(std::span<const double> in, std::span<std::complex<double>> out) {
  OE_CHECK(in.size() >= 2 && in.size() % 2 == 0 && out.size() == in.size() / 2 + 1, "real_fft: {} in, {} out",
           in.size(), out.size());
  const RealFft fft(static_cast<int64_t>(in.size()));
  std::vector<Complex> scratch(in.size());
  fft.forward(in.data(), out.data(), scratch.data());
}

}  // namespace detail

}  // namespace oe::media
