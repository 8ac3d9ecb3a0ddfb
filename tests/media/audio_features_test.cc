// The Whisper log-mel front end (src/media/audio_features.cc) against the independent numpy reference
// (tools/reference/audio_features.py, run with OE_PYTHON), plus its FFT against a direct DFT, the frame and token
// arithmetic of spec §5 / §6.3, and the preprocessor_config loading.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/run_command.h"
#include "common/temp_dir.h"
#include "core/error.h"
#include "io/npy.h"
#include "media/audio.h"
#include "media/audio_fft.h"

namespace oe::media {


namespace {

using ::oe::testing::TempDir;
using Complex = std::complex<double>;
namespace fs = std::filesystem;

constexpr int64_t EMBED_MAX_SAMPLES = 2'048'000;  // the embedding model's max_length (128 s)
constexpr int64_t RATE = 16000;
// Both sides compute in float64 and round once to float32; what is left is float32 rounding (~1e-7) and the
// summation order of the DFT and the mel product, far below this.
constexpr double FEATURE_TOLERANCE = 1e-4;

std::string shell_quote(const std::string& s) { return "'" + s + "'"; }

AudioFeatureConfig config_with_max(int64_t max_samples) {
  AudioFeatureConfig c;
  c.max_samples = max_samples;
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// Signals

std::vector<float> sine(int64_t n, double hz, double amplitude) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    x[static_cast<size_t>(i)] =
        static_cast<float>(amplitude * std::sin(2.0 * std::numbers::pi * hz * static_cast<double>(i) / RATE));
  }
  return x;
}

// A linear chirp from f0 to f1 Hz plus white noise 40 dB down.
std::vector<float> chirp_noise(int64_t n, double f0, double f1, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 0.003);
  const double duration = static_cast<double>(n) / RATE;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / RATE;
    const double phase = 2.0 * std::numbers::pi * (f0 * t + 0.5 * (f1 - f0) / duration * t * t);
    x[static_cast<size_t>(i)] = static_cast<float>(0.3 * std::sin(phase) + noise(rng));
  }
  return x;
}

std::vector<float> noisy_tones(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> noise(-0.05, 0.05);
  std::vector<float> x = sine(n, 220.0, 0.4);
  const std::vector<float> y = sine(n, 3150.0, 0.1);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(x[i] + y[i] + noise(rng));
  return x;
}

// ---------------------------------------------------------------------------------------------------------------
// The reference

struct Reference {
  Tensor features;  // float32 [n_mel, n_frames]
  int64_t valid_frames = -1;
  int64_t tokens = -1;
};

// Runs tools/reference/audio_features.py on `samples`; a failure of the script is a test failure.
Reference run_reference(const std::vector<float>& samples, int64_t max_samples, const TempDir& dir,
                        const std::string& name) {
  const fs::path in = dir / (name + ".in.npy"), out = dir / (name + ".out.npy");
  Tensor t({static_cast<int64_t>(samples.size())}, DType::F32);
  std::copy(samples.begin(), samples.end(), t.ptr<float>());
  io::write_npy(in, t);
  const std::string cmd = fmt::format("{} {} {} {} --max-samples {}", shell_quote(OE_PYTHON),
                                      shell_quote(std::string(OE_SOURCE_DIR) + "/tools/reference/audio_features.py"),
                                      shell_quote(in.string()), shell_quote(out.string()), max_samples);
  std::string printed;
  const int rc = oe::testing::run_command(cmd, &printed);
  Reference r;
  if (rc != 0) {
    ADD_FAILURE() << "the reference failed (exit " << rc << "): " << cmd << "\n" << printed;
    return r;
  }
  std::sscanf(printed.c_str(), "valid_frames %ld tokens %ld", &r.valid_frames, &r.tokens);
  r.features = io::read_npy(out);
  return r;
}

// log_mel against the reference on one clip; returns the largest absolute difference.
double expect_parity(const std::vector<float>& samples, int64_t max_samples, const std::string& name) {
  TempDir dir;
  const Reference want = run_reference(samples, max_samples, dir, name);
  if (want.features.empty()) return HUGE_VAL;
  const LogMel got = log_mel(samples, config_with_max(max_samples));
  EXPECT_EQ(got.n_mel, 128);
  EXPECT_EQ(got.n_frames, max_samples / 160);
  EXPECT_EQ(got.valid_frames, want.valid_frames) << name;
  EXPECT_EQ(audio_token_count(got.valid_frames), want.tokens) << name;
  EXPECT_EQ(want.features.shape(), (Shape{got.n_mel, got.n_frames})) << name;
  if (want.features.numel() != static_cast<int64_t>(got.values.size())) return HUGE_VAL;
  double max_abs = 0.0;
  int64_t worst = 0;
  for (int64_t i = 0; i < want.features.numel(); ++i) {
    const double d = std::abs(static_cast<double>(got.values[static_cast<size_t>(i)]) - want.features.ptr<float>()[i]);
    if (d > max_abs) max_abs = d, worst = i;
  }
  EXPECT_LE(max_abs, FEATURE_TOLERANCE) << name << ": worst at mel " << worst / got.n_frames << ", frame "
                                        << worst % got.n_frames;
  std::printf("[ parity   ] %-28s L=%zu max_samples=%ld T=%ld max|diff|=%.3g\n", name.c_str(), samples.size(),
              max_samples, got.valid_frames, max_abs);
  return max_abs;
}

// ---------------------------------------------------------------------------------------------------------------
// Parity cases

TEST(AudioFeaturesParity, Sine440OneSecond) { expect_parity(sine(RATE, 440.0, 0.5), EMBED_MAX_SAMPLES, "sine_1s"); }

TEST(AudioFeaturesParity, EspeakSpeechSevenSeconds) {
  // scripts/setup.sh installs both; a missing one is a setup defect, so it fails rather than skips.
  ASSERT_EQ(oe::testing::run_command("command -v espeak-ng && command -v ffmpeg"), 0)
      << "espeak-ng and ffmpeg are needed to make the speech clip (scripts/setup.sh installs them)";
  TempDir dir;
  const fs::path wav = dir / "speech.wav", raw = dir / "speech.raw";
  const std::string text = "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
                           "How vexingly quick daft zebras jump, said the narrator.";
  std::string log;
  ASSERT_EQ(oe::testing::run_command(fmt::format("espeak-ng -w {} {}", shell_quote(wav.string()), shell_quote(text)),
                                     &log), 0) << log;
  // espeak-ng writes 22,050 Hz; ffmpeg's resampler makes the 16 kHz floats that both implementations read.
  ASSERT_EQ(oe::testing::run_command(fmt::format("ffmpeg -nostdin -loglevel error -y -i {} -ar 16000 -f f32le {}",
                                                 shell_quote(wav.string()), shell_quote(raw.string())), &log), 0)
      << log;
  std::ifstream f(raw, std::ios::binary);
  std::vector<float> x(static_cast<size_t>(7 * RATE));
  f.read(reinterpret_cast<char*>(x.data()), static_cast<std::streamsize>(x.size() * sizeof(float)));
  ASSERT_EQ(f.gcount(), static_cast<std::streamsize>(x.size() * sizeof(float))) << "speech shorter than 7 s";
  expect_parity(x, EMBED_MAX_SAMPLES, "espeak_speech_7s");
}

TEST(AudioFeaturesParity, ChirpAndNoise35SecondsOverManyChunks) {
  expect_parity(chirp_noise(35 * RATE, 30.0, 7900.0, /*seed=*/1), EMBED_MAX_SAMPLES, "chirp_noise_35s");
}

TEST(AudioFeaturesParity, SilenceIsFlatAtMinusOneAndAHalf) {
  const std::vector<float> x(static_cast<size_t>(3 * RATE), 0.0f);
  expect_parity(x, EMBED_MAX_SAMPLES, "silence_3s");
  // log10(1e-10) = −10 everywhere, so the floor is −18 and every value is (−10 + 4) / 4.
  const LogMel got = log_mel(x, config_with_max(EMBED_MAX_SAMPLES));
  for (float v : got.values) ASSERT_EQ(v, -1.5f);
}

TEST(AudioFeaturesParity, ShortClip) {
  expect_parity(noisy_tones(4800, /*seed=*/2), EMBED_MAX_SAMPLES, "clip_0.3s");
}

// Longer than max_samples: the clip is cut and the reflection at its end reads real samples.
TEST(AudioFeaturesParity, TruncatedClipReflectsRealSamplesAtTheEnd) {
  expect_parity(chirp_noise(40'000, 100.0, 6000.0, /*seed=*/3), 32'000, "truncated_40000_of_32000");
  // Ending 100 samples before max_samples: the end reflection reads both real samples and padding zeros.
  expect_parity(chirp_noise(31'900, 100.0, 6000.0, /*seed=*/4), 32'000, "ends_100_before_max");
  expect_parity(chirp_noise(32'000, 100.0, 6000.0, /*seed=*/5), 32'000, "exactly_max_samples");
}

TEST(AudioFeaturesParity, LengthsNotAMultipleOfTheHop) {
  expect_parity(noisy_tones(16'001, /*seed=*/6), EMBED_MAX_SAMPLES, "len_16001");
  expect_parity(noisy_tones(12'345, /*seed=*/7), EMBED_MAX_SAMPLES, "len_12345");
}

TEST(AudioFeaturesParity, FewerThanThreeFramesGiveNoToken) {
  expect_parity(noisy_tones(200, /*seed=*/8), EMBED_MAX_SAMPLES, "len_200_T2");
  expect_parity(noisy_tones(321, /*seed=*/9), EMBED_MAX_SAMPLES, "len_321_T3");
  EXPECT_EQ(audio_token_count(audio_valid_frames(200, config_with_max(EMBED_MAX_SAMPLES))), 0);
  EXPECT_EQ(audio_token_count(audio_valid_frames(321, config_with_max(EMBED_MAX_SAMPLES))), 1);
}

TEST(AudioFeaturesParity, DefaultMaxSamples) {
  expect_parity(chirp_noise(2 * RATE + 77, 200.0, 5000.0, /*seed=*/10), AudioFeatureConfig{}.max_samples,
                "default_4800000");
}

TEST(AudioFeatures, EmptyInputGivesTheFloorAndNoValidFrame) {
  expect_parity({}, 32'000, "empty");
  const LogMel got = log_mel({}, config_with_max(32'000));
  EXPECT_EQ(got.valid_frames, 0);
  ASSERT_EQ(got.values.size(), size_t{128 * 200});
  for (float v : got.values) ASSERT_EQ(v, -1.5f);
}

TEST(AudioFeatures, MelFilterBankMatchesTheReference) {
  TempDir dir;
  const fs::path out = dir / "bank.npy";
  const std::string script =
      "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); from audio_features import mel_filter_bank; "
      "np.save(sys.argv[2], mel_filter_bank(128, 400, 16000))";
  std::string log;
  ASSERT_EQ(oe::testing::run_command(fmt::format("{} -c {} {} {}", shell_quote(OE_PYTHON), shell_quote(script),
                                                 shell_quote(std::string(OE_SOURCE_DIR) + "/tools/reference"),
                                                 shell_quote(out.string())), &log), 0) << log;
  // read_npy converts float64 to float32: the weights (all below 2^-4) are compared at float32's half ulp there.
  const Tensor want = io::read_npy(out);
  const std::vector<double> got = mel_filter_bank(AudioFeatureConfig{});
  ASSERT_EQ(want.shape(), (Shape{201, 128}));
  ASSERT_EQ(got.size(), size_t{201 * 128});
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = want.ptr<float>()[i];
    ASSERT_NEAR(got[i], w, 0x1p-29) << "bin " << i / 128 << ", mel " << i % 128;
    ASSERT_EQ(got[i] == 0.0, w == 0.0f) << "support differs at bin " << i / 128 << ", mel " << i % 128;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// FFT against a direct DFT

std::vector<Complex> direct_dft(const std::vector<Complex>& x) {
  const auto n = static_cast<int64_t>(x.size());
  std::vector<Complex> out(x.size());
  for (int64_t k = 0; k < n; ++k) {
    Complex acc = 0.0;
    for (int64_t t = 0; t < n; ++t) {
      const double angle = -2.0 * std::numbers::pi * static_cast<double>(k * t % n) / static_cast<double>(n);
      acc += x[static_cast<size_t>(t)] * Complex(std::cos(angle), std::sin(angle));
    }
    out[static_cast<size_t>(k)] = acc;
  }
  return out;
}

// max |a − b| / max |b|
double relative_error(std::span<const Complex> a, std::span<const Complex> b) {
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < b.size(); ++i) {
    err = std::max(err, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return err / scale;
}

TEST(AudioFft, ComplexMatchesDirectDft) {
  std::mt19937 rng(11);
  std::normal_distribution<double> g(0.0, 1.0);
  // radix 4, 2, 5 and the generic prime path (3, 7, 97), alone and mixed; 200 is the size n_fft = 400 uses
  for (int n : {1, 2, 3, 4, 5, 7, 8, 16, 20, 25, 40, 49, 97, 100, 125, 200, 210, 256, 400, 1000}) {
    std::vector<Complex> x(static_cast<size_t>(n));
    for (Complex& v : x) v = {g(rng), g(rng)};
    std::vector<Complex> got(x.size());
    detail::complex_fft(x, got);
    EXPECT_LE(relative_error(got, direct_dft(x)), 1e-12) << "n = " << n;
  }
}

TEST(AudioFft, RealMatchesDirectDft) {
  std::mt19937 rng(12);
  std::normal_distribution<double> g(0.0, 1.0);
  for (int n : {2, 4, 6, 10, 14, 50, 200, 400, 402, 512}) {
    std::vector<double> x(static_cast<size_t>(n));
    for (double& v : x) v = g(rng);
    std::vector<Complex> got(static_cast<size_t>(n / 2 + 1));
    detail::real_fft(x, got);
    const std::vector<Complex> full = direct_dft(std::vector<Complex>(x.begin(), x.end()));
    EXPECT_LE(relative_error(got, std::span<const Complex>(full).first(got.size())), 1e-12) << "n = " << n;
  }
}

TEST(AudioFft, SingleToneLandsInItsBin) {
  // cos(2π·5t/400) has exactly X[5] = 200 and nothing elsewhere.
  std::vector<double> x(400);
  for (int t = 0; t < 400; ++t) x[static_cast<size_t>(t)] = std::cos(2.0 * std::numbers::pi * 5 * t / 400);
  std::vector<Complex> got(201);
  detail::real_fft(x, got);
  for (int k = 0; k < 201; ++k) EXPECT_NEAR(std::abs(got[static_cast<size_t>(k)]), k == 5 ? 200.0 : 0.0, 1e-10) << k;
}

// ---------------------------------------------------------------------------------------------------------------
// Frames and tokens (spec §5.5 and §6.3)

TEST(AudioFeatures, ValidFramesAndTokenCounts) {
  const AudioFeatureConfig c;  // max_samples 4,800,000
  EXPECT_EQ(audio_valid_frames(RATE, c), 100);
  EXPECT_EQ(audio_token_count(100), 25);
  EXPECT_EQ(audio_valid_frames(10 * RATE, c), 1000);
  EXPECT_EQ(audio_token_count(1000), 250);
  EXPECT_EQ(audio_valid_frames(300 * RATE, c), 30000);
  EXPECT_EQ(audio_token_count(30000), 7500);
  EXPECT_EQ(audio_valid_frames(400 * RATE, c), 30000);  // truncated to max_samples
  EXPECT_EQ(audio_valid_frames(200 * RATE, config_with_max(EMBED_MAX_SAMPLES)), 12800);
  EXPECT_EQ(audio_valid_frames(0, c), 0);
  EXPECT_EQ(audio_valid_frames(1, c), 1);
  EXPECT_EQ(audio_valid_frames(160, c), 1);
  EXPECT_EQ(audio_valid_frames(161, c), 2);
  const int64_t tokens[] = {0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3};  // T = 0..11
  for (int64_t t = 0; t < 12; ++t) EXPECT_EQ(audio_token_count(t), tokens[t]) << "T = " << t;
  EXPECT_EQ(audio_token_count(-5), 0);
}

TEST(AudioFeatures, RejectsAnInvalidConfig) {
  AudioFeatureConfig c;
  c.max_samples = 32'001;  // not a multiple of the hop
  EXPECT_THROW(log_mel(sine(1000, 440.0, 0.5), c), InvalidInput);
  c = AudioFeatureConfig{};
  c.n_fft = 401;
  EXPECT_THROW(mel_filter_bank(c), InvalidInput);
}

}  // namespace
}  // namespace oe::media
