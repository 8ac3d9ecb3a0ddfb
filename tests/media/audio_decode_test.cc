// Tests of audio decoding and resampling (src/media/audio_decode.cc) against what the reference loader
// (librosa.load(path, sr=16000)) gives: WAVs written byte by byte with exact expected values; tests/media/soxr_oracle.py
// (numpy + the system libsoxr through ctypes, as python-soxr calls it) as the independent oracle of the channel mean
// and the resampler; files made with the ffmpeg CLI for the other containers and codecs. Every input is generated
// into a temporary folder.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <fstream>
#include <limits>
#include <numbers>
#include <optional>

#include <fmt/format.h>

#include "common/run_command.h"
#include "common/ffmpeg.h"
#include "common/temp_dir.h"
#include "core/error.h"
#include "core/timer.h"
#include "io/npy.h"
#include "media/audio.h"

namespace oe::media {
namespace {

namespace fs = std::filesystem;
using oe::testing::TempDir;

// AddressSanitizer builds (GCC says so with __SANITIZE_ADDRESS__, Clang with __has_feature).
#if defined(__SANITIZE_ADDRESS__)
#define OE_TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OE_TEST_UNDER_ASAN 1
#endif
#endif
#ifdef OE_TEST_UNDER_ASAN
constexpr bool UNDER_ASAN = true;
#else
constexpr bool UNDER_ASAN = false;
#endif

static_assert(std::endian::native == std::endian::little, "the WAV writer stores samples in host byte order");

// ---------------------------------------------------------------------------------------------------------------
// WAV files written by hand

struct WavFormat {
  uint16_t tag = 1;  // 1: integer PCM, 3: IEEE float
  int channels = 1;
  int rate = 16000;
  int bits = 16;
};

template <typename T>
void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}

// A canonical 44-byte-header WAV around `data`; the header declares `declared_data_bytes` when given.
std::vector<uint8_t> wav_bytes(const WavFormat& f, const std::vector<uint8_t>& data,
                               std::optional<uint32_t> declared_data_bytes = std::nullopt) {
  const uint32_t data_bytes = declared_data_bytes.value_or(static_cast<uint32_t>(data.size()));
  const auto block_align = static_cast<uint16_t>(f.channels * f.bits / 8);
  std::vector<uint8_t> b;
  for (char c : std::string("RIFF")) b.push_back(static_cast<uint8_t>(c));
  put<uint32_t>(b, 36 + data_bytes);
  for (char c : std::string("WAVEfmt ")) b.push_back(static_cast<uint8_t>(c));
  put<uint32_t>(b, 16);
  put<uint16_t>(b, f.tag);
  put<uint16_t>(b, static_cast<uint16_t>(f.channels));
  put<uint32_t>(b, static_cast<uint32_t>(f.rate));
  put<uint32_t>(b, static_cast<uint32_t>(f.rate) * block_align);
  put<uint16_t>(b, block_align);
  put<uint16_t>(b, static_cast<uint16_t>(f.bits));
  for (char c : std::string("data")) b.push_back(static_cast<uint8_t>(c));
  put<uint32_t>(b, data_bytes);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

void write_bytes(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << p;
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

template <typename T>
std::vector<uint8_t> le_bytes(const std::vector<T>& values) {
  std::vector<uint8_t> b;
  for (T v : values) put(b, v);
  return b;
}

std::vector<uint8_t> s24_bytes(const std::vector<int32_t>& values) {
  std::vector<uint8_t> b;
  for (int32_t v : values) {
    const auto u = static_cast<uint32_t>(v);
    b.insert(b.end(), {static_cast<uint8_t>(u), static_cast<uint8_t>(u >> 8), static_cast<uint8_t>(u >> 16)});
  }
  return b;
}

// A deterministic test signal in [-0.9, 0.9], interleaved [n_frames, channels]: one tone per channel and noise.
std::vector<double> test_signal(int channels, int rate, int64_t n_frames, uint32_t seed) {
  std::vector<double> x(static_cast<size_t>(n_frames * channels));
  uint32_t s = seed * 2654435761u + 7;
  for (int64_t i = 0; i < n_frames; ++i) {
    for (int c = 0; c < channels; ++c) {
      s = s * 1664525u + 1013904223u;
      const double noise = (static_cast<double>(s >> 8) / (1 << 24) - 0.5) * 0.2;
      const double tone = 0.6 * std::sin(2 * std::numbers::pi * (330.0 + 170.0 * c) * i / rate + c);
      x[i * channels + c] = tone + noise;
    }
  }
  return x;
}

template <typename T>
std::vector<T> quantize(const std::vector<double>& x, double full_scale, double offset = 0) {
  std::vector<T> q(x.size());
  for (size_t i = 0; i < x.size(); ++i) q[i] = static_cast<T>(std::lround(x[i] * full_scale + offset));
  return q;
}

fs::path write_wav(const fs::path& p, const WavFormat& f, const std::vector<uint8_t>& data) {
  write_bytes(p, wav_bytes(f, data));
  return p;
}

// ---------------------------------------------------------------------------------------------------------------
// Tools: the ffmpeg CLI and the soxr oracle

using oe::testing::ffmpeg;
using oe::testing::q;

bool soxr_oracle(const std::string& args) {
  const std::string cmd =
      fmt::format("\"{}\" \"{}/tests/media/soxr_oracle.py\" {}", OE_PYTHON, OE_SOURCE_DIR, args);
  std::string out;
  const int rc = oe::testing::run_command(cmd, &out);
  if (rc != 0) {
    ADD_FAILURE() << "the soxr oracle failed (exit " << rc << "): " << cmd << "\n" << out.substr(0, 4000)
                  << "\n(it needs Python 3 with numpy and libsoxr.so.0)";
  }
  return rc == 0;
}

std::vector<float> read_f32(const fs::path& p) {
  const Tensor t = io::read_npy(p);
  EXPECT_EQ(t.dtype(), DType::F32) << p;
  return std::vector<float>(t.ptr<float>(), t.ptr<float>() + t.numel());
}

void write_f32(const fs::path& p, std::vector<float> values) {
  io::write_npy(p, Tensor::view(values.data(), {static_cast<int64_t>(values.size())}, DType::F32));
}

struct Difference {
  double max_abs = 0;
  int64_t n_different = 0;
};

Difference difference(const std::vector<float>& got, const std::vector<float>& want) {
  Difference d;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double e = std::abs(double(got[i]) - double(want[i]));
    d.max_abs = std::max(d.max_abs, e);
    d.n_different += got[i] != want[i];
  }
  return d;
}

// The share of the signal's energy in the sinusoid of `freq` (a least-squares sine and cosine fit), away from the
// first and last 0.1 s where codecs prime and pad.
double tone_share(const std::vector<float>& x, double freq, int64_t rate) {
  const int64_t begin = rate / 10, end = static_cast<int64_t>(x.size()) - rate / 10;
  double c = 0, s = 0, energy = 0;
  for (int64_t i = begin; i < end; ++i) {
    const double w = 2 * std::numbers::pi * freq * static_cast<double>(i) / static_cast<double>(rate);
    c += x[i] * std::cos(w);
    s += x[i] * std::sin(w);
    energy += double(x[i]) * x[i];
  }
  return energy > 0 ? 2 * (c * c + s * s) / static_cast<double>(end - begin) / energy : 0;
}

// Runs `f`, expecting an exception of type E; returns its message ("" after recording a failure otherwise).
template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception";
  return "";
}

bool mentions(const std::string& message, const std::string& part) { return message.find(part) != std::string::npos; }

// ---------------------------------------------------------------------------------------------------------------
// Passthrough and scaling: a 16 kHz file is not resampled, so the decoded values are exactly soundfile's.

TEST(AudioDecode, S16MonoAt16kPassesThroughBitExact) {
  TempDir dir;
  const std::vector<int16_t> values = {0, 1, -1, 16384, -16384, 32767, -32768, 12345};
  const fs::path p = write_wav(dir / "s16.wav", {}, le_bytes(values));
  const Audio a = decode_audio(p);
  const std::vector<float> want = {0.0f, 3.0517578125e-05f, -3.0517578125e-05f, 0.5f, -0.5f, 0.999969482421875f,
                                   -1.0f, 0.376739501953125f};
  EXPECT_EQ(a.samples, want);
  EXPECT_EQ(a.sample_rate, 16000);
  EXPECT_FALSE(a.truncated);
  EXPECT_EQ(a.info.codec, "pcm_s16le");
  EXPECT_EQ(a.info.source_rate, 16000);
  EXPECT_EQ(a.info.source_channels, 1);
}

TEST(AudioDecode, Float32MonoAt16kPassesThroughBitExact) {
  TempDir dir;
  // -0.0, a subnormal, values past full scale and one with all mantissa bits: every bit must survive.
  const std::vector<float> values = {-0.0f, 1e-40f, 1.5f, -2.25f, 0.1f, std::bit_cast<float>(0x3f7fffffu), -1e-3f};
  const fs::path p = write_wav(dir / "f32.wav", {.tag = 3, .bits = 32}, le_bytes(values));
  const Audio a = decode_audio(p);
  ASSERT_EQ(a.samples.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(a.samples[i]), std::bit_cast<uint32_t>(values[i])) << "sample " << i;
  }
  EXPECT_EQ(a.info.codec, "pcm_f32le");
}

TEST(AudioDecode, SampleFormatsScaleAsSoundfile) {
  struct Case {
    std::string name;
    WavFormat format;
    std::vector<uint8_t> data;
    std::vector<float> want;
  };
  const std::vector<Case> cases = {
      {"u8", {.bits = 8}, {0, 1, 64, 127, 128, 129, 192, 255},
       {-1.0f, -0.9921875f, -0.5f, -0.0078125f, 0.0f, 0.0078125f, 0.5f, 0.9921875f}},
      {"s16", {.bits = 16}, le_bytes<int16_t>({0, 1, -1, 16384, -16384, 32767, -32768, 12345}),
       {0.0f, 3.0517578125e-05f, -3.0517578125e-05f, 0.5f, -0.5f, 0.999969482421875f, -1.0f, 0.376739501953125f}},
      {"s24", {.bits = 24}, s24_bytes({0, 1, -1, 0x400000, -8388608, 8388607, 1234567}),
       {0.0f, 1.1920928955078125e-07f, -1.1920928955078125e-07f, 0.5f, -1.0f, 0.9999998807907104f,
        0.14717185497283936f}},
      // INT32_MAX rounds to 2^31 in float32 before the scaling: exactly 1.0, as soundfile gives.
      {"s32", {.bits = 32}, le_bytes<int32_t>({0, 1, -1, 1 << 30, INT32_MIN, INT32_MAX, 123456789}),
       {0.0f, 4.656612873077393e-10f, -4.656612873077393e-10f, 0.5f, -1.0f, 1.0f, 0.057489048689603806f}},
      {"f32", {.tag = 3, .bits = 32}, le_bytes<float>({0.25f, -1.0f, 1.5f, 1e-3f}), {0.25f, -1.0f, 1.5f, 1e-3f}},
      // Doubles past float's range become infinities, as numpy's astype(float32) and C's cast give.
      {"f64", {.tag = 3, .bits = 64}, le_bytes<double>({0.1, -0.7, 1e-10, 2.5, 1.0 / 3, 1e300, -1e300}),
       {0.10000000149011612f, -0.699999988079071f, 1.000000013351432e-10f, 2.5f, 0.3333333432674408f,
        std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}},
  };
  TempDir dir;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Audio a = decode_audio(write_wav(dir / (c.name + ".wav"), c.format, c.data));
    EXPECT_EQ(a.samples, c.want);
  }
}

TEST(AudioDecode, StereoIsTheFloat32MeanOfTheChannels) {
  TempDir dir;
  // Frames (L, R): the mean of the float32 values, rounded as float32; numpy's sum starts from +0, so two -0.0
  // channels give +0.0 (the same value, a different bit pattern).
  const std::vector<float> frames = {-0.0f, -0.0f, 1.0f, 0.5f, 0.1f, 0.2f, 3e-8f, 1.0f, -1.0f, 1.0f};
  const Audio a = decode_audio(write_wav(dir / "st.wav", {.tag = 3, .channels = 2, .bits = 32}, le_bytes(frames)));
  ASSERT_EQ(a.samples.size(), 5u);
  EXPECT_EQ(std::bit_cast<uint32_t>(a.samples[0]), 0u);
  EXPECT_EQ(a.samples[1], 0.75f);
  EXPECT_EQ(a.samples[2], (0.1f + 0.2f) / 2.0f);
  EXPECT_EQ(a.samples[3], (3e-8f + 1.0f) / 2.0f);
  EXPECT_EQ(a.samples[4], 0.0f);
  EXPECT_EQ(a.info.source_channels, 2);
}

// ---------------------------------------------------------------------------------------------------------------
// Against the oracle: the mean as numpy computes it, and libsoxr HQ as python-soxr calls it (one-shot on the whole
// signal, while the decoder feeds libsoxr frame by frame).

struct OracleCase {
  std::string name;
  WavFormat format;
  double seconds;
};

void PrintTo(const OracleCase& c, std::ostream* os) { *os << c.name; }

class AudioOracle : public ::testing::TestWithParam<OracleCase> {};

std::vector<uint8_t> encode(const std::vector<double>& x, int bits) {
  switch (bits) {
    case 8: return quantize<uint8_t>(x, 127, 128);
    case 16: return le_bytes(quantize<int16_t>(x, 32767));
    case 24: return s24_bytes(quantize<int32_t>(x, 8388607));
    default: return le_bytes(quantize<int32_t>(x, 2147483647.0));
  }
}

void expect_matches_oracle(const fs::path& wav, const fs::path& npy, const std::string& what) {
  ASSERT_TRUE(soxr_oracle(q(wav) + " " + q(npy)));
  const std::vector<float> want = read_f32(npy);
  const Audio got = decode_audio(wav);
  ASSERT_EQ(got.samples.size(), want.size()) << "the length must be librosa's ceil(L * 16000 / sr) exactly";
  const Difference d = difference(got.samples, want);
  if (got.info.source_rate == 16000) {
    EXPECT_EQ(d.n_different, 0) << what << ": without resampling the mean must be bit exact";
  }
  // Both sides run the same libsoxr with the same specs; its output does not depend on how the input is cut, so
  // the samples agree bit for bit here. 1e-6 leaves room for a libsoxr build whose SIMD kernels sum in another
  // order.
  EXPECT_LE(d.max_abs, 1e-6) << what;
  std::printf("[ oracle   ] %s: %zu samples, %lld differ, max |diff| %.3g\n", what.c_str(), want.size(),
              static_cast<long long>(d.n_different), d.max_abs);
}

TEST_P(AudioOracle, MatchesLibrosaLoad) {
  const OracleCase& c = GetParam();
  TempDir dir;
  const auto n_frames = static_cast<int64_t>(c.seconds * c.format.rate);
  const fs::path wav = write_wav(dir / "in.wav", c.format,
                                 encode(test_signal(c.format.channels, c.format.rate, n_frames, 11), c.format.bits));
  expect_matches_oracle(wav, dir / "want.npy", c.name);
}

INSTANTIATE_TEST_SUITE_P(
    Wav, AudioOracle,
    ::testing::Values(OracleCase{"stereo_44100_s16", {.channels = 2, .rate = 44100, .bits = 16}, 1.5},
                      OracleCase{"stereo_48000_s24", {.channels = 2, .rate = 48000, .bits = 24}, 0.7},
                      OracleCase{"mono_8000_u8", {.channels = 1, .rate = 8000, .bits = 8}, 1.0},
                      OracleCase{"mono_11025_s16_odd_length", {.channels = 1, .rate = 11025, .bits = 16}, 0.4321},
                      // 16 kHz: no resampling; the mean alone, bit for bit. 32-bit samples make the float32 sums
                      // round, so the order of the additions shows: in order below 8 channels, numpy's pairwise
                      // sum from 8 on.
                      OracleCase{"3ch_16000_s32_mean", {.channels = 3, .rate = 16000, .bits = 32}, 0.5},
                      OracleCase{"9ch_16000_s32_mean", {.channels = 9, .rate = 16000, .bits = 32}, 0.5},
                      OracleCase{"6ch_32000_s16", {.channels = 6, .rate = 32000, .bits = 16}, 0.5}),
    [](const auto& info) { return info.param.name; });

TEST(AudioOracleSpeech, Espeak22050Hz) {
  TempDir dir;
  const fs::path wav = dir / "speech.wav";
  std::string out;
  const std::string cmd = "espeak-ng -w " + q(wav) + " 'The quick brown fox jumps over the lazy dog.'";
  ASSERT_EQ(oe::testing::run_command(cmd, &out), 0) << cmd << "\n" << out;
  const Audio a = decode_audio(wav);
  EXPECT_EQ(a.info.source_rate, 22050);
  EXPECT_GT(a.samples.size(), 16000u);
  expect_matches_oracle(wav, dir / "want.npy", "espeak_22050");
}

TEST(AudioOracleResample, OneShotMatchesSoxr) {
  TempDir dir;
  struct Rates {
    int64_t in, out;
  };
  for (const Rates r : {Rates{8000, 16000}, Rates{11025, 16000}, Rates{48000, 16000}, Rates{96000, 16000},
                        Rates{16000, 24000}}) {
    const std::string name = fmt::format("{}_to_{}", r.in, r.out);
    SCOPED_TRACE(name);
    const int64_t n = r.in / 3 + 17;
    const std::vector<double> x = test_signal(1, static_cast<int>(r.in), n, static_cast<uint32_t>(r.in));
    const std::vector<float> mono(x.begin(), x.end());
    write_f32(dir / (name + ".in.npy"), mono);
    ASSERT_TRUE(soxr_oracle(fmt::format("{} {} --in-rate {} --sr {}", q(dir / (name + ".in.npy")),
                                        q(dir / (name + ".want.npy")), r.in, r.out)));
    const std::vector<float> want = read_f32(dir / (name + ".want.npy"));
    const std::vector<float> got = resample(mono, r.in, r.out);
    ASSERT_EQ(got.size(), static_cast<size_t>(std::ceil(double(n) * r.out / r.in)));
    ASSERT_EQ(got.size(), want.size());
    const Difference d = difference(got, want);
    EXPECT_LE(d.max_abs, 1e-6);  // as in expect_matches_oracle
    std::printf("[ oracle   ] resample %s: %zu samples, %lld differ, max |diff| %.3g\n", name.c_str(), got.size(),
                static_cast<long long>(d.n_different), d.max_abs);
  }
  const std::vector<float> x = {0.5f, -0.25f, 1.0f};
  EXPECT_EQ(resample(x, 22050, 22050), x);
  EXPECT_TRUE(resample({}, 44100, 16000).empty());
}

// ---------------------------------------------------------------------------------------------------------------
// Containers and codecs, made with the ffmpeg CLI from one 440 Hz tone.

class AudioFormats : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const std::string sine44 = "-f lavfi -i sine=frequency=440:sample_rate=44100:duration=1";
    const std::string sine48 = "-f lavfi -i sine=frequency=440:sample_rate=48000:duration=1";
    const std::string video = "-f lavfi -i testsrc=size=64x48:rate=10:duration=1";
    ok_ = ffmpeg(sine44 + " " + q(path("tone.wav"))) && ffmpeg(sine48 + " " + q(path("tone48.wav"))) &&
          ffmpeg("-i " + q(path("tone.wav")) + " -c:a flac " + q(path("tone.flac"))) &&
          ffmpeg("-i " + q(path("tone.wav")) + " -c:a libmp3lame " + q(path("tone.mp3"))) &&
          ffmpeg("-i " + q(path("tone.wav")) + " -c:a libvorbis " + q(path("tone.ogg"))) &&
          ffmpeg("-i " + q(path("tone.wav")) + " -c:a libopus " + q(path("tone.opus"))) &&
          ffmpeg("-i " + q(path("tone.wav")) + " -c:a aac " + q(path("tone.m4a"))) &&
          ffmpeg(video + " -i " + q(path("tone48.wav")) + " -c:v mpeg4 -c:a aac -shortest " + q(path("video.mp4"))) &&
          ffmpeg(video + " -i " + q(path("tone48.wav")) + " -c:v libvpx -c:a libopus -shortest " +
                 q(path("video.webm"))) &&
          ffmpeg(video + " -i " + q(path("tone48.wav")) + " -c:v mpeg4 -c:a flac -shortest " + q(path("video.mkv")));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(ok_) << "making the test files with the ffmpeg CLI failed"; }
  static fs::path path(const std::string& name) { return *dir_ / name; }

  static TempDir* dir_;
  static bool ok_;
};
TempDir* AudioFormats::dir_ = nullptr;
bool AudioFormats::ok_ = false;

TEST_F(AudioFormats, LossyCodecsDecodeTheTone) {
  struct Case {
    std::string file, codec;
    int64_t source_rate;
  };
  for (const Case& c : {Case{"tone.mp3", "mp3", 44100}, Case{"tone.ogg", "vorbis", 44100},
                        Case{"tone.opus", "opus", 48000}, Case{"tone.m4a", "aac", 44100},
                        Case{"video.mp4", "aac", 48000}, Case{"video.webm", "opus", 48000}}) {
    SCOPED_TRACE(c.file);
    const Audio a = decode_audio(path(c.file));
    EXPECT_EQ(a.info.codec, c.codec);
    EXPECT_EQ(a.info.source_rate, c.source_rate);
    EXPECT_EQ(a.info.source_channels, 1);
    EXPECT_NEAR(a.info.duration_seconds, 1.0, 0.1);
    EXPECT_EQ(a.sample_rate, 16000);
    // One second of tone; codecs add or drop up to about a frame of priming and padding (AAC's last 1024-sample
    // frame, Vorbis's first half block): 800 samples at 16 kHz is 2200 at 44.1 kHz.
    EXPECT_NEAR(static_cast<double>(a.samples.size()), 16000.0, 800.0);
    EXPECT_GT(tone_share(a.samples, 440, 16000), 0.98);
    EXPECT_LT(tone_share(a.samples, 660, 16000), 0.01);
  }
}

TEST_F(AudioFormats, FlacEqualsItsWav) {
  const Audio wav = decode_audio(path("tone.wav"));
  const Audio flac = decode_audio(path("tone.flac"));
  EXPECT_EQ(flac.info.codec, "flac");
  EXPECT_EQ(wav.samples.size(), 16000u);
  EXPECT_EQ(flac.samples, wav.samples);
  EXPECT_GT(tone_share(wav.samples, 440, 16000), 0.999);
  // The audio track of a video container, after the video stream.
  const Audio mkv = decode_audio(path("video.mkv"));
  EXPECT_EQ(mkv.info.codec, "flac");
  EXPECT_EQ(mkv.samples, decode_audio(path("tone48.wav")).samples);
}

TEST_F(AudioFormats, Flac24BitStereoEqualsItsWav) {
  TempDir dir;
  const std::vector<double> x = test_signal(2, 48000, 24000, 5);
  const fs::path wav = write_wav(dir / "s24.wav", {.channels = 2, .rate = 48000, .bits = 24}, encode(x, 24));
  ASSERT_TRUE(ffmpeg("-i " + q(wav) + " -c:a flac " + q(dir / "s24.flac")));
  const Audio flac = decode_audio(dir / "s24.flac");
  EXPECT_EQ(flac.info.source_channels, 2);
  EXPECT_EQ(flac.samples.size(), 8000u);
  EXPECT_EQ(flac.samples, decode_audio(wav).samples);
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming

// Reads the whole stream in pieces of varying size.
std::vector<float> read_in_pieces(const fs::path& p) {
  AudioStream stream(p);
  std::vector<float> out;
  const int64_t sizes[] = {1, 2, 3, 7, 100, 999, 4096, 13};
  for (int i = 0;; ++i) {
    const size_t before = out.size();
    const int64_t n = stream.read(sizes[i % 8], out);
    EXPECT_EQ(static_cast<size_t>(n), out.size() - before);
    EXPECT_LE(n, sizes[i % 8]);
    if (n == 0) break;
  }
  std::vector<float> more;
  EXPECT_EQ(stream.read(10, more), 0);  // done stays done
  return out;
}

TEST_F(AudioFormats, SmallReadsEqualTheWholeDecode) {
  TempDir dir;
  const fs::path wav = write_wav(dir / "st.wav", {.channels = 2, .rate = 44100},
                                 encode(test_signal(2, 44100, 30000, 3), 16));
  for (const fs::path& p : {wav, path("tone.mp3"), path("tone.opus")}) {
    SCOPED_TRACE(p.filename().string());
    const Audio whole = decode_audio(p);
    ASSERT_FALSE(whole.samples.empty());
    EXPECT_EQ(read_in_pieces(p), whole.samples);
  }
}

TEST(AudioStreaming, FrameByFrameResamplingEqualsOneShot) {
  // The decoder feeds libsoxr one decoded frame at a time; the one-shot helper gives it the whole signal at once.
  TempDir dir;
  const fs::path wav = write_wav(dir / "st.wav", {.channels = 2, .rate = 44100},
                                 encode(test_signal(2, 44100, 50000, 9), 16));
  const Audio native = decode_audio(wav, 0, /*target_rate=*/44100);
  ASSERT_EQ(native.samples.size(), 50000u);
  EXPECT_EQ(decode_audio(wav).samples, resample(native.samples, 44100, 16000));
}

TEST(AudioStreaming, MaxSamplesGivesThePrefixAndSetsTruncated) {
  TempDir dir;
  const fs::path wav = write_wav(dir / "st.wav", {.channels = 2, .rate = 44100},
                                 encode(test_signal(2, 44100, 44100, 4), 16));
  const Audio full = decode_audio(wav);
  ASSERT_EQ(full.samples.size(), 16000u);
  EXPECT_FALSE(full.truncated);
  for (const int64_t k : {1, 777, 5000, 15999}) {
    SCOPED_TRACE(k);
    const Audio part = decode_audio(wav, k);
    ASSERT_EQ(part.samples.size(), static_cast<size_t>(k));
    EXPECT_TRUE(part.truncated);
    EXPECT_TRUE(std::equal(part.samples.begin(), part.samples.end(), full.samples.begin()));
  }
  for (const int64_t k : {16000, 16001, 1000000}) {
    SCOPED_TRACE(k);
    const Audio all = decode_audio(wav, k);
    EXPECT_FALSE(all.truncated);
    EXPECT_EQ(all.samples, full.samples);
  }
  // A 16 kHz file (no resampler): the same rules.
  const fs::path s16 = write_wav(dir / "m.wav", {}, le_bytes<int16_t>({1, 2, 3, 4, 5}));
  EXPECT_TRUE(decode_audio(s16, 4).truncated);
  EXPECT_FALSE(decode_audio(s16, 5).truncated);
  EXPECT_EQ(decode_audio(s16, 4).samples.size(), 4u);
}

TEST(AudioStreaming, TenHourFileDecodesItsPrefixInBoundedMemory) {
  TempDir dir;
  // 10 hours of 8 kHz u8 mono declared in the header; the data region is a hole in a sparse file (zero bytes, which
  // are -1.0 as u8), so it costs no disk.
  const uint32_t data_bytes = 10u * 3600u * 8000u;
  const fs::path p = dir / "long.wav";
  write_bytes(p, wav_bytes({.rate = 8000, .bits = 8}, {}, data_bytes));
  fs::resize_file(p, 44 + static_cast<uintmax_t>(data_bytes));

  // Peak RSS from here on: writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0). Measured from
  // the current RSS, so that a failed reset shows as a failure rather than passing on an earlier, higher peak.
  std::ofstream("/proc/self/clear_refs") << "5";
  const long long before = current_rss_bytes();
  const int64_t max_samples = 2'048'000;
  const Audio a = decode_audio(p, max_samples);
  const long long growth = peak_rss_bytes() - before;

  EXPECT_NEAR(a.info.duration_seconds, 36000.0, 1.0);
  ASSERT_EQ(static_cast<int64_t>(a.samples.size()), max_samples);
  EXPECT_TRUE(a.truncated);
  for (int64_t i = 16000; i < max_samples; i += 997) ASSERT_NEAR(a.samples[i], -1.0f, 1e-4f) << i;
  // The output alone is 8 MB; decoding the whole file would hold 2.3 GB. AddressSanitizer's allocator keeps freed
  // blocks in quarantine and adds redzones, which shows as more resident memory (11.5 MiB measured, 8.4 without).
  const long long bound = (UNDER_ASAN ? 96ll : 48ll) << 20;
  EXPECT_LT(growth, bound) << "peak RSS grew by " << (growth >> 20) << " MiB";
  std::printf("[ memory   ] 10-hour file, %lld samples: peak RSS grew by %.1f MiB\n",
              static_cast<long long>(max_samples), static_cast<double>(growth) / (1 << 20));
}

// ---------------------------------------------------------------------------------------------------------------
// Bad inputs: a clear error naming the file, or what the reference would decode.

TEST(AudioErrors, MissingFileAndFolder) {
  TempDir dir;
  const fs::path missing = dir / "missing.wav";
  std::string m = error_of<IoError>([&] { decode_audio(missing); });
  EXPECT_TRUE(mentions(m, missing.string())) << m;
  m = error_of<IoError>([&] { AudioStream s(dir.path()); });
  EXPECT_TRUE(mentions(m, dir.path().string())) << m;
}

TEST(AudioErrors, NonAudioFiles) {
  TempDir dir;
  const fs::path text = dir / "notes.txt";
  std::ofstream(text) << "this is not audio\n";
  std::string m = error_of<InvalidInput>([&] { decode_audio(text); });
  EXPECT_TRUE(mentions(m, text.string())) << m;

  const fs::path png = dir / "image.png";
  ASSERT_TRUE(ffmpeg("-f lavfi -i testsrc=size=32x32 -frames:v 1 " + q(png)));
  m = error_of<InvalidInput>([&] { decode_audio(png); });
  EXPECT_TRUE(mentions(m, png.string())) << m;
  EXPECT_TRUE(mentions(m, "no audio stream")) << m;

  const fs::path video = dir / "silent.mp4";
  ASSERT_TRUE(ffmpeg("-f lavfi -i testsrc=size=64x48:rate=10:duration=1 -c:v mpeg4 " + q(video)));
  m = error_of<InvalidInput>([&] { decode_audio(video); });
  EXPECT_TRUE(mentions(m, video.string())) << m;
  EXPECT_TRUE(mentions(m, "no audio stream")) << m;

  const fs::path empty = dir / "empty.wav";
  std::ofstream(empty).flush();
  m = error_of<InvalidInput>([&] { decode_audio(empty); });
  EXPECT_TRUE(mentions(m, empty.string())) << m;
}

TEST(AudioErrors, ZeroSampleWavIsEmpty) {
  TempDir dir;
  for (const int rate : {16000, 44100}) {
    const Audio a = decode_audio(write_wav(dir / fmt::format("empty{}.wav", rate), {.channels = 2, .rate = rate}, {}));
    EXPECT_TRUE(a.samples.empty());
    EXPECT_FALSE(a.truncated);
    EXPECT_EQ(a.info.source_rate, rate);
  }
}

TEST(AudioErrors, TruncatedWav) {
  TempDir dir;
  const std::vector<uint8_t> full = wav_bytes({.rate = 22050}, encode(test_signal(1, 22050, 22050, 8), 16));
  // The header cut short: not readable.
  const fs::path header = dir / "header.wav";
  write_bytes(header, std::vector<uint8_t>(full.begin(), full.begin() + 30));
  const std::string m = error_of<InvalidInput>([&] { decode_audio(header); });
  EXPECT_TRUE(mentions(m, header.string())) << m;
  // The data cut short (the header declares more): what is there, like the reference, which reads to the cut.
  const fs::path cut = dir / "cut.wav";
  write_bytes(cut, std::vector<uint8_t>(full.begin(), full.begin() + 44 + 2 * 10000));
  write_bytes(dir / "short.wav", wav_bytes({.rate = 22050}, std::vector<uint8_t>(full.begin() + 44,
                                                                                  full.begin() + 44 + 2 * 10000)));
  const Audio a = decode_audio(cut);
  EXPECT_EQ(a.samples.size(), static_cast<size_t>(std::ceil(10000 * (16000.0 / 22050))));
  EXPECT_EQ(a.samples, decode_audio(dir / "short.wav").samples);
  // A header and no data at all, though it declares a second: FFmpeg (like libsndfile) takes the data size from
  // the file, so this is a 0-sample WAV.
  const fs::path none = dir / "none.wav";
  write_bytes(none, std::vector<uint8_t>(full.begin(), full.begin() + 44));
  EXPECT_TRUE(decode_audio(none).samples.empty());
}

TEST_F(AudioFormats, TruncatedMp3DecodesWhatIsThere) {
  TempDir dir;
  const std::vector<uint8_t> mp3 = read_bytes(path("tone.mp3"));
  const fs::path cut = dir / "cut.mp3";
  write_bytes(cut, std::vector<uint8_t>(mp3.begin(), mp3.begin() + static_cast<ptrdiff_t>(mp3.size() * 3 / 10)));
  const Audio full = decode_audio(path("tone.mp3"));
  const Audio a = decode_audio(cut);
  // About 30% of the second (the first MP3 frame is the encoder's info tag, not audio).
  EXPECT_GT(a.samples.size(), 3000u);
  EXPECT_LT(a.samples.size(), 5600u);
  // The same frames decode to the same samples; only the resampler's last filter length differs (it is flushed
  // at the cut instead of seeing the following audio).
  const size_t same = a.samples.size() - 600;
  EXPECT_TRUE(std::equal(a.samples.begin(), a.samples.begin() + static_cast<ptrdiff_t>(same), full.samples.begin()));
}

TEST(AudioErrors, CorruptData) {
  TempDir dir;
  const std::vector<uint8_t> wav = wav_bytes({.rate = 44100}, encode(test_signal(1, 44100, 44100, 2), 16));
  write_bytes(dir / "in.wav", wav);
  ASSERT_TRUE(ffmpeg("-i " + q(dir / "in.wav") + " -c:a flac " + q(dir / "in.flac")));
  // FLAC whose audio frames are all noise: the metadata blocks (walked by their headers: a last-block flag and type
  // byte, then a 24-bit length) declare a second of audio, and nothing after them decodes.
  std::vector<uint8_t> flac = read_bytes(dir / "in.flac");
  size_t at = 4;  // after "fLaC"
  for (bool last = false; !last;) {
    ASSERT_LT(at + 4, flac.size());
    last = flac[at] & 0x80;
    at += 4 + (size_t(flac[at + 1]) << 16 | size_t(flac[at + 2]) << 8 | flac[at + 3]);
  }
  ASSERT_LT(at + 1000, flac.size());
  uint32_t s = 12345;
  for (size_t i = at; i < flac.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    flac[i] = static_cast<uint8_t>(s >> 24);
  }
  const fs::path bad_flac = dir / "bad.flac";
  write_bytes(bad_flac, flac);
  std::string m = error_of<InvalidInput>([&] { decode_audio(bad_flac); });
  EXPECT_TRUE(mentions(m, bad_flac.string())) << m;
  EXPECT_TRUE(mentions(m, "corrupt")) << m;

  // A WAV whose format tag names no codec.
  std::vector<uint8_t> tagged = wav;
  tagged[20] = 0x34, tagged[21] = 0x12;
  const fs::path bad_tag = dir / "tag.wav";
  write_bytes(bad_tag, tagged);
  m = error_of<InvalidInput>([&] { decode_audio(bad_tag); });
  EXPECT_TRUE(mentions(m, bad_tag.string())) << m;
}

TEST(AudioErrors, AbsurdChannelCountsAndRates) {
  TempDir dir;
  const fs::path many = write_wav(dir / "many.wav", {.channels = 300, .rate = 16000}, std::vector<uint8_t>(600 * 4));
  std::string m = error_of<InvalidInput>([&] { decode_audio(many); });
  EXPECT_TRUE(mentions(m, many.string()) && mentions(m, "channels")) << m;
  const fs::path slow = write_wav(dir / "slow.wav", {.rate = 5}, std::vector<uint8_t>(100));
  m = error_of<InvalidInput>([&] { decode_audio(slow); });
  EXPECT_TRUE(mentions(m, slow.string()) && mentions(m, "5 Hz")) << m;
  const fs::path fine = write_wav(dir / "fine.wav", {}, std::vector<uint8_t>(100));
  EXPECT_THROW(decode_audio(fine, 0, /*target_rate=*/0), InvalidInput);
  EXPECT_THROW(resample(std::vector<float>(10), 0, 16000), InvalidInput);
  EXPECT_THROW(resample(std::vector<float>(10), 44100, -16000), InvalidInput);
}

}  // namespace
}  // namespace oe::media
