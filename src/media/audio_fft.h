// The FFTs behind the log-mel front end (audio_features.cc), declared for their tests: a mixed-radix complex FFT in
// double precision (radix 2, 4, 5 steps and a direct step for other primes) and a real FFT of even length through a
// half-length complex one. Internal to src/media; audio.h is the public interface.
#pragma once

#include <complex>
#include <span>

namespace oe::media::detail {

// out[k] = Σ in[n]·exp(−2πi·nk/N), N = in.size() = out.size() ≥ 1.
void complex_fft(std::span<const std::complex<double>> in, std::span<std::complex<double>> out);
// The one-sided transform of real input of even length N: out has N/2 + 1 bins.
void real_fft(std::span<const double> in, std::span<std::complex<double>> out);

}  // namespace oe::media::detail
