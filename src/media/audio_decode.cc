// Audio decoding as the reference loader does it (librosa.load(path, sr=16000) through soundfile and python-soxr):
//   1. FFmpeg decodes the best audio stream; samples become float32 with soundfile's scaling
//      (u8: (x − 128)/128, s16: x/2^15, s32 (FFmpeg's container for 24-bit too): x/2^31, s64: x/2^63, float as is,
//      double rounded to float);
//   2. the channel mean in float32 exactly as numpy's mean over the channel axis computes it (see
//      numpy_pairwise_sum);
//   3. libsoxr, quality spec (SOXR_HQ, 0), float32 I/O, one thread, fed as a stream: libsoxr's output does not depend
//      on how its input is cut, so the samples equal python-soxr's one-shot call on the whole signal;
//   4. librosa's fix_length to ceil(L · (target / source)), computed in double as librosa does.
// A stream already at the target rate skips 3 and 4 (librosa returns it untouched).
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/samplefmt.h>
}
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>

#include <fmt/format.h>

#include "core/error.h"
#include "media/audio.h"
#include "media/ffmpeg_util.h"

namespace oe::media {

namespace {

namespace fs = std::filesystem;

constexpr int MAX_CHANNELS = 256;
constexpr int64_t MIN_RATE = 1000;
constexpr int64_t MAX_RATE = 768000;
// Isolated undecodable packets are skipped, as FFmpeg's own tools do (a glitch, a cut last frame); more than
// MAX_BAD_PACKETS of them (or 1% of the packets in a long stream), or this many in a row, and the data is corrupt.
constexpr int64_t MAX_BAD_PACKETS = 2;
constexpr int MAX_BAD_PACKETS_IN_A_ROW = 32;
constexpr int64_t READ_CHUNK = 1 << 16;

struct SoxrDelete {
  void operator()(soxr_t s) const { soxr_delete(s); }
};
using ffmpeg::CodecContextPtr;
using ffmpeg::FormatPtr;
using ffmpeg::FramePtr;
using ffmpeg::PacketPtr;
using SoxrPtr = std::unique_ptr<std::remove_pointer_t<soxr_t>, SoxrDelete>;

void check_rate(int64_t rate, const char* what) {
  if (rate < MIN_RATE || rate > MAX_RATE) {
    throw InvalidInput(fmt::format("{} of {} Hz is outside the supported {}..{} Hz", what, rate, MIN_RATE, MAX_RATE));
  }
}

void check_channels(int64_t channels) {
  if (channels < 1 || channels > MAX_CHANNELS) {
    throw InvalidInput(fmt::format("{} audio channels, expected 1..{}", channels, MAX_CHANNELS));
  }
}

// librosa.resample's output length: int(np.ceil(n * (float(out) / in))), in double like the reference.
int64_t fixed_length(int64_t n, int64_t in_rate, int64_t out_rate) {
  return static_cast<int64_t>(std::ceil(static_cast<double>(n) * (static_cast<double>(out_rate) / in_rate)));
}

// numpy's float32 sum of `n` contiguous values (pairwise_sum in loops_utils.h): soundfile's [frames, channels]
// array transposed makes the channel axis the contiguous one, so numpy's mean over it sums each frame's channels
// this way: in order below 8 values, else 8 interleaved partial sums, halving above 128.
float numpy_pairwise_sum(const float* a, int64_t n) {
  if (n < 8) {
    float res = 0.0f;
    for (int64_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    float r[8];
    std::copy(a, a + 8, r);
    int64_t i = 8;
    for (; i < n - n % 8; i += 8) {
      for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    }
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  int64_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

// Streaming libsoxr, mono float32, with python-soxr's settings.
class Resampler {
 public:
  Resampler(int64_t in_rate, int64_t out_rate) : ratio_(static_cast<double>(out_rate) / in_rate) {
    const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
    soxr_error_t err = nullptr;
    soxr_.reset(soxr_create(static_cast<double>(in_rate), static_cast<double>(out_rate), 1, &err, &io, &quality,
                            &runtime));
    if (err || !soxr_) {
      throw InternalError(fmt::format("libsoxr cannot resample {} Hz to {} Hz: {}", in_rate, out_rate,
                                      err ? err : "soxr_create failed"));
    }
  }

  // Appends what libsoxr outputs for `in` (it keeps its filter's look-ahead until flush).
  void feed(std::span<const float> in, std::vector<float>& out) {
    size_t done = 0;
    while (done < in.size()) {
      size_t idone = 0;
      const size_t odone = process(in.data() + done, in.size() - done, &idone, out);
      OE_CHECK(idone > 0 || odone > 0, "libsoxr consumed no input and produced no output");
      done += idone;
    }
  }

  // End of input: libsoxr pads with zeros and emits its last round(L · ratio) − (emitted so far) samples.
  void flush(std::vector<float>& out) {
    while (process(nullptr, 0, nullptr, out) > 0) {
    }
  }

 private:
  size_t process(const float* in, size_t n, size_t* idone, std::vector<float>& out) {
    // Room for all the output of `n` inputs, so that libsoxr takes the whole input in one call.
    const size_t room = static_cast<size_t>(std::ceil(static_cast<double>(n) * ratio_)) + 1024;
    const size_t old = out.size();
    out.resize(old + room);
    size_t odone = 0;
    const soxr_error_t err = soxr_process(soxr_.get(), in, n, idone, out.data() + old, room, &odone);
    out.resize(old + odone);
    if (err) throw InternalError(fmt::format("libsoxr failed: {}", err));
    return odone;
  }

  SoxrPtr soxr_;
  double ratio_;
};

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Channel-interleaved float32 [n, channels] from a frame of sample type T, packed or planar.
template <typename T, typename Convert>
void gather(const AVFrame& f, int channels, bool planar, float* dst, Convert convert) {
  const int64_t n = f.nb_samples;
  const size_t step = planar ? sizeof(T) : sizeof(T) * channels;
  for (int c = 0; c < channels; ++c) {
    const uint8_t* src = planar ? f.extended_data[c] : f.extended_data[0] + c * sizeof(T);
    for (int64_t i = 0; i < n; ++i) dst[i * channels + c] = convert(load<T>(src + i * step));
  }
}

// numpy's astype(float32): rounded, and ±inf past float's range (where a plain C++ conversion is undefined).
float double_to_float(double x) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  if (std::abs(x) <= std::numeric_limits<float>::max() || std::isnan(x)) return static_cast<float>(x);
  return x > 0 ? inf : -inf;
}

// soundfile's float32 values: libsndfile scales integers by 1/2^(bits−1) (unsigned 8-bit centred first).
void frame_to_float(const AVFrame& f, int channels, float* dst) {
  const auto format = static_cast<AVSampleFormat>(f.format);
  const bool planar = av_sample_fmt_is_planar(format);
  switch (av_get_packed_sample_fmt(format)) {
    case AV_SAMPLE_FMT_U8:
      return gather<uint8_t>(f, channels, planar, dst, [](uint8_t x) { return float(int(x) - 128) / 128.0f; });
    case AV_SAMPLE_FMT_S16:
      return gather<int16_t>(f, channels, planar, dst, [](int16_t x) { return float(x) / 32768.0f; });
    case AV_SAMPLE_FMT_S32:
      return gather<int32_t>(f, channels, planar, dst, [](int32_t x) { return float(x) / 2147483648.0f; });
    case AV_SAMPLE_FMT_S64:
      return gather<int64_t>(f, channels, planar, dst, [](int64_t x) { return float(x) / 9223372036854775808.0f; });
    case AV_SAMPLE_FMT_FLT: return gather<float>(f, channels, planar, dst, [](float x) { return x; });
    case AV_SAMPLE_FMT_DBL: return gather<double>(f, channels, planar, dst, double_to_float);
    default: break;
  }
  const char* name = av_get_sample_fmt_name(format);
  throw Unsupported(fmt::format("the decoder's sample format {} is not handled", name ? name : "?"));
}

AVCodecID first_audio_codec(const AVFormatContext& fmt) {
  for (unsigned i = 0; i < fmt.nb_streams; ++i) {
    if (fmt.streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) return fmt.streams[i]->codecpar->codec_id;
  }
  return AV_CODEC_ID_NONE;
}

std::string describe_streams(const AVFormatContext& fmt) {
  int video = 0, other = 0;
  for (unsigned i = 0; i < fmt.nb_streams; ++i) {
    (fmt.streams[i]->codecpar->codec_type == AVMEDIA_TYPE_VIDEO ? video : other) += 1;
  }
  if (fmt.nb_streams == 0) return "no streams";
  return fmt::format("{} video and {} other stream(s)", video, other);
}

}  // namespace

struct AudioStream::Impl {
  std::string name;                 // the path, for messages
  AudioStreamInfo* info = nullptr;  // the owner's, updated when the first frame tells the real rate
  int64_t target_rate = 0;
  FormatPtr format;
  CodecContextPtr codec;
  PacketPtr packet;
  FramePtr frame;
  int stream_index = -1;

  int64_t source_rate = 0;  // from the first decoded frame
  std::optional<Resampler> resampler;
  std::vector<float> interleaved;  // scratch: one frame, [n, channels]
  std::vector<float> mono;         // scratch: one frame's channel mean
  std::vector<float> ready;        // output not handed out yet, from ready_pos on
  size_t ready_pos = 0;
  int64_t n_source = 0;   // source samples (per channel) decoded
  int64_t n_emitted = 0;  // output samples handed out
  bool finished = false;

  double declared_seconds = 0;  // the audio stream's own duration (not the container's), 0 when unknown
  int64_t n_packets = 0;  // of the audio stream, sent to the decoder
  int bad_in_a_row = 0;
  int64_t bad_total = 0;
  std::string first_error;

  void open(const fs::path& path);
  void advance();
  void decode(const AVPacket* p);
  void consume_frame();
  void note_bad_packet(int err);
  void finish();
  int64_t available() const;
  int64_t take(int64_t n, std::vector<float>& out);
};

void AudioStream::Impl::open(const fs::path& path) {
  format = ffmpeg::open_file(path, "media");
  const AVCodec* decoder = nullptr;
  int err = av_find_best_stream(format.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &decoder, 0);
  if (err == AVERROR_DECODER_NOT_FOUND) {
    const AVCodecID id = first_audio_codec(*format);
    if (id == AV_CODEC_ID_NONE) throw InvalidInput("the audio stream's codec is unknown (a damaged or foreign header)");
    throw Unsupported(fmt::format("this FFmpeg build has no decoder for the {} audio codec", avcodec_get_name(id)));
  }
  if (err < 0) throw InvalidInput(fmt::format("no audio stream (the file has {})", describe_streams(*format)));
  stream_index = err;
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    if (static_cast<int>(i) != stream_index) format->streams[i]->discard = AVDISCARD_ALL;
  }
  const AVStream* stream = format->streams[stream_index];
  const AVCodecParameters& par = *stream->codecpar;
  if (par.ch_layout.nb_channels != 0) check_channels(par.ch_layout.nb_channels);
  if (par.sample_rate != 0) check_rate(par.sample_rate, "a sample rate");

  codec.reset(avcodec_alloc_context3(decoder));
  packet.reset(av_packet_alloc());
  frame.reset(av_frame_alloc());
  if (!codec || !packet || !frame) throw std::bad_alloc();
  err = avcodec_parameters_to_context(codec.get(), &par);
  if (err >= 0) {
    codec->pkt_timebase = stream->time_base;
    codec->thread_count = 1;
    err = avcodec_open2(codec.get(), decoder, nullptr);
  }
  if (err < 0) throw InvalidInput(fmt::format("cannot open the {} decoder: {}", decoder->name, ffmpeg::error_text(err)));

  info->codec = avcodec_get_name(par.codec_id);
  info->source_rate = par.sample_rate;
  info->source_channels = par.ch_layout.nb_channels;
  if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0) {
    declared_seconds = static_cast<double>(stream->duration) * av_q2d(stream->time_base);
    info->duration_seconds = declared_seconds;
  } else if (format->duration != AV_NOPTS_VALUE && format->duration > 0) {
    info->duration_seconds = static_cast<double>(format->duration) / AV_TIME_BASE;
  }
}

// Demuxes one packet and decodes it; at the end of the file drains the decoder and the resampler.
void AudioStream::Impl::advance() {
  const int err = av_read_frame(format.get(), packet.get());
  if (err == AVERROR_EOF) {
    decode(nullptr);
    finish();
    return;
  }
  if (err < 0) {
    // A demuxer that gives up inside the data (a cut file) ends the stream; before any audio it is a bad file.
    if (n_source == 0) throw InvalidInput(fmt::format("cannot read the audio data: {}", ffmpeg::error_text(err)));
    decode(nullptr);
    finish();
    return;
  }
  if (packet->stream_index == stream_index) {
    ++n_packets;
    decode(packet.get());
  }
  av_packet_unref(packet.get());
}

void AudioStream::Impl::decode(const AVPacket* p) {
  int err = avcodec_send_packet(codec.get(), p);
  if (err < 0 && err != AVERROR_EOF) {
    note_bad_packet(err);
    if (p) return;
  }
  for (;;) {
    err = avcodec_receive_frame(codec.get(), frame.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
    if (err < 0) {
      note_bad_packet(err);
      return;
    }
    consume_frame();
    av_frame_unref(frame.get());
  }
}

void AudioStream::Impl::note_bad_packet(int err) {
  ++bad_total;
  if (first_error.empty()) first_error = ffmpeg::error_text(err);
  if (++bad_in_a_row > MAX_BAD_PACKETS_IN_A_ROW) {
    throw InvalidInput(fmt::format("corrupt audio data: {} packets in a row could not be decoded (FFmpeg: {})",
                                   bad_in_a_row, first_error));
  }
  if (bad_total > std::max<int64_t>(MAX_BAD_PACKETS, n_packets / 100)) {
    throw InvalidInput(fmt::format("corrupt audio data: {} of the first {} packets could not be decoded (FFmpeg: {})",
                                   bad_total, n_packets, first_error));
  }
}

void AudioStream::Impl::consume_frame() {
  bad_in_a_row = 0;
  const int channels = frame->ch_layout.nb_channels;
  check_channels(channels);
  if (source_rate == 0) {
    check_rate(frame->sample_rate, "a sample rate");
    source_rate = frame->sample_rate;
    info->source_rate = source_rate;  // a decoder can know better than the container (HE-AAC)
    if (source_rate != target_rate) resampler.emplace(source_rate, target_rate);
  } else if (frame->sample_rate != source_rate) {
    throw InvalidInput(
        fmt::format("the sample rate changes from {} Hz to {} Hz within the stream", source_rate, frame->sample_rate));
  }
  const int64_t n = frame->nb_samples;
  if (n <= 0) return;
  mono.resize(static_cast<size_t>(n));
  if (channels == 1) {
    frame_to_float(*frame, 1, mono.data());  // soundfile gives a mono file as a 1-D array: no mean at all
  } else {
    interleaved.resize(static_cast<size_t>(n) * channels);
    frame_to_float(*frame, channels, interleaved.data());
    // numpy's mean: the reduction starts from the identity 0, then true_divide by the count as float32.
    for (int64_t i = 0; i < n; ++i) {
      float sum = 0.0f;
      sum += numpy_pairwise_sum(&interleaved[i * channels], channels);
      mono[i] = sum / static_cast<float>(channels);
    }
  }
  n_source += n;
  if (resampler) {
    resampler->feed(mono, ready);
  } else {
    ready.insert(ready.end(), mono.begin(), mono.end());
  }
}

void AudioStream::Impl::finish() {
  if (resampler) resampler->flush(ready);
  if (n_source == 0 && bad_total > 0) {
    throw InvalidInput(fmt::format("corrupt audio data: no packet could be decoded (FFmpeg: {})", first_error));
  }
  if (n_source == 0 && declared_seconds > 0) {
    throw InvalidInput(fmt::format("corrupt audio data: the stream declares {:.3f} s of audio, but none could be read",
                                   declared_seconds));
  }
  const int64_t total = resampler ? fixed_length(n_source, source_rate, target_rate) : n_source;
  OE_CHECK(total >= n_emitted, "{} samples handed out, but the stream's length is {}", n_emitted, total);
  ready.resize(ready_pos + static_cast<size_t>(total - n_emitted), 0.0f);  // zero-pad or trim, as fix_length
  finished = true;
}

// What may be handed out now: never past the length the samples seen so far already imply (librosa trims the
// resampler's output to ceil(L · ratio), and that bound only grows with L).
int64_t AudioStream::Impl::available() const {
  const auto buffered = static_cast<int64_t>(ready.size() - ready_pos);
  if (finished || !resampler) return buffered;
  return std::max<int64_t>(0, std::min(buffered, fixed_length(n_source, source_rate, target_rate) - n_emitted));
}

int64_t AudioStream::Impl::take(int64_t n, std::vector<float>& out) {
  const int64_t k = std::min(n, available());
  out.insert(out.end(), ready.begin() + static_cast<ptrdiff_t>(ready_pos),
             ready.begin() + static_cast<ptrdiff_t>(ready_pos + k));
  ready_pos += static_cast<size_t>(k);
  n_emitted += k;
  // Keep the buffer at about one read's worth: drop what was handed out once it is most of it.
  if (ready_pos == ready.size()) {
    ready.clear(), ready_pos = 0;
  } else if (ready_pos > (1u << 16) && ready_pos * 2 > ready.size()) {
    ready.erase(ready.begin(), ready.begin() + static_cast<ptrdiff_t>(ready_pos));
    ready_pos = 0;
  }
  return k;
}

AudioStream::AudioStream(const fs::path& path, int64_t target_rate)
    : impl_(std::make_unique<Impl>()), target_rate_(target_rate) {
  ffmpeg::quiet_log();
  impl_->name = path.string();
  with_context(impl_->name, [&] {
    check_rate(target_rate, "a target rate");
    impl_->info = &info_;
    impl_->target_rate = target_rate;
    impl_->open(path);
  });
}

AudioStream::~AudioStream() = default;

int64_t AudioStream::read(int64_t n, std::vector<float>& out) {
  if (n <= 0) return 0;
  return with_context(impl_->name, [&] {
    while (!impl_->finished && impl_->available() < n) impl_->advance();
    return impl_->take(n, out);
  });
}

Audio decode_audio(const fs::path& path, int64_t max_samples, int64_t target_rate) {
  AudioStream stream(path, target_rate);
  Audio audio;
  audio.sample_rate = target_rate;
  if (max_samples > 0) {
    const double estimate = stream.info().duration_seconds * static_cast<double>(target_rate) + 1.0;
    audio.samples.reserve(static_cast<size_t>(std::min<double>(static_cast<double>(max_samples), estimate)));
    while (static_cast<int64_t>(audio.samples.size()) < max_samples) {
      const int64_t want = std::min<int64_t>(READ_CHUNK, max_samples - static_cast<int64_t>(audio.samples.size()));
      if (stream.read(want, audio.samples) == 0) break;
    }
    if (static_cast<int64_t>(audio.samples.size()) == max_samples) {
      std::vector<float> probe;  // one sample more tells whether the full decode would be longer
      audio.truncated = stream.read(1, probe) > 0;
    }
  } else {
    while (stream.read(READ_CHUNK, audio.samples) > 0) {
    }
  }
  audio.info = stream.info();
  return audio;
}

std::vector<float> resample(std::span<const float> mono, int64_t in_rate, int64_t out_rate) {
  if (in_rate == out_rate) return std::vector<float>(mono.begin(), mono.end());
  check_rate(in_rate, "an input rate");
  check_rate(out_rate, "an output rate");
  const int64_t n = static_cast<int64_t>(mono.size());
  Resampler resampler(in_rate, out_rate);
  std::vector<float> out;
  out.reserve(static_cast<size_t>(fixed_length(n, in_rate, out_rate)) + 1024);
  resampler.feed(mono, out);
  resampler.flush(out);
  out.resize(static_cast<size_t>(fixed_length(n, in_rate, out_rate)), 0.0f);
  return out;
}

}  // namespace oe::media
