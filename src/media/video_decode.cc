// Video files through FFmpeg (spec qwen25-omni-thinker.md §6.2.1 step 1): the probe (the container's header and a
// packet-counting pass over the video stream, the frame count the reference reader reports), and a streaming decode
// that keeps only the sampled frames, each resized as soon as it is decoded.
//
// Pixels: frame k is the k-th frame the decoder outputs, converted to RGB24 by libswscale exactly as the ffmpeg CLI's
// auto-inserted scale filter does for `-pix_fmt rgb24` (vf_scale in FFmpeg 5.1): flags "bicubic" (the CLI's default
// sws_flags), the input matrix from the frame's colorspace ("auto"; BT.601 when unspecified) and the input range
// from the frame's color_range. The same library in the same process gives the same bytes as the CLI. Rotation and
// sample aspect ratio metadata are ignored, as the reference reader (decord) ignores them.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/cpu.h>
#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include <fmt/format.h>

#include "core/error.h"
#include "media/ffmpeg_util.h"
#include "media/video.h"
#include "media/video_internal.h"

namespace oe::media {

namespace {

namespace fs = std::filesystem;
using ffmpeg::CodecContextPtr;
using ffmpeg::FormatPtr;
using ffmpeg::FramePtr;
using ffmpeg::PacketPtr;

struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using SwsPtr = std::unique_ptr<SwsContext, SwsFree>;

// Isolated undecodable packets are skipped as the CLI does (a cut last frame); more than MAX_BAD_PACKETS of them (or
// 1% of the packets), or MAX_BAD_PACKETS_IN_A_ROW in a row, and the data is corrupt.
constexpr int64_t MAX_BAD_PACKETS = 2;
constexpr int MAX_BAD_PACKETS_IN_A_ROW = 32;
constexpr int64_t MAX_FRAME_SIDE = 16384;
// Frame threading holds one frame per thread besides the reference frames: the decoder gets fewer threads when
// its frames are large, so that the frames in flight stay near this budget (an 8K H.264 stream on FFmpeg's automatic
// count, 17 threads on a 16-core machine, would hold about 1 GB of frames; 4K gets 5 threads, 1080p FFmpeg's count).
constexpr int64_t DECODER_FRAMES_BUDGET = int64_t{64} << 20;
constexpr int FFMPEG_MAX_AUTO_THREADS = 16;  // libavcodec's MAX_AUTO_THREADS (pthread.c)

// The header's frame in the decoder's pixel format.
int64_t frame_bytes(const AVCodecParameters& par) {
  const auto format = static_cast<AVPixelFormat>(par.format);
  const int bytes = format == AV_PIX_FMT_NONE ? -1 : av_image_get_buffer_size(format, par.width, par.height, 1);
  return bytes > 0 ? bytes : int64_t{par.width} * par.height * 4;  // an unknown format: 4 bytes a pixel
}

// The decoder's thread count: FFmpeg's automatic choice (0) where the frames are small, else as many threads as
// DECODER_FRAMES_BUDGET holds frames of this stream, at least 1 and at most what the automatic choice would take.
int decoder_threads(const AVCodecParameters& par) {
  const int64_t fit = std::max<int64_t>(1, DECODER_FRAMES_BUDGET / std::max<int64_t>(frame_bytes(par), 1));
  if (fit >= FFMPEG_MAX_AUTO_THREADS) return 0;
  return static_cast<int>(std::min<int64_t>(fit, std::min(av_cpu_count() + 1, FFMPEG_MAX_AUTO_THREADS)));
}

// "N audio and M other stream(s)", for the message about a file without a video stream.
std::string describe_streams(const AVFormatContext& fmt) {
  int audio = 0, other = 0;
  for (unsigned i = 0; i < fmt.nb_streams; ++i) {
    (fmt.streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO ? audio : other) += 1;
  }
  if (fmt.nb_streams == 0) return "no streams";
  return fmt::format("{} audio and {} other stream(s)", audio, other);
}

// An opened container with its video stream chosen; every other stream is discarded by the demuxer.
struct VideoSource {
  FormatPtr format;
  int stream_index = -1;
  const AVCodec* decoder = nullptr;
  const AVStream* stream() const { return format->streams[stream_index]; }
};

VideoSource open_video(const fs::path& path, int64_t max_frame_pixels) {
  VideoSource v;
  v.format = ffmpeg::open_file(path, "video", max_frame_pixels);
  const int err = av_find_best_stream(v.format.get(), AVMEDIA_TYPE_VIDEO, -1, -1, &v.decoder, 0);
  if (err == AVERROR_STREAM_NOT_FOUND) {
    throw InvalidInput(fmt::format("the file has no video stream (it has {})", describe_streams(*v.format)));
  }
  if (err == AVERROR_DECODER_NOT_FOUND) {
    for (unsigned i = 0; i < v.format->nb_streams; ++i) {
      const AVCodecParameters& par = *v.format->streams[i]->codecpar;
      if (par.codec_type != AVMEDIA_TYPE_VIDEO) continue;
      if (par.codec_id == AV_CODEC_ID_NONE) throw InvalidInput("the video codec is unknown (a damaged header)");
      throw Unsupported(fmt::format("this FFmpeg build has no decoder for the {} video codec",
                                    avcodec_get_name(par.codec_id)));
    }
  }
  if (err < 0) throw InvalidInput(fmt::format("cannot select a video stream: {}", ffmpeg::error_text(err)));
  v.stream_index = err;
  if (v.stream()->disposition & AV_DISPOSITION_ATTACHED_PIC) {
    throw InvalidInput("the file has no video stream (only an attached cover picture)");
  }
  for (unsigned i = 0; i < v.format->nb_streams; ++i) {
    if (static_cast<int>(i) != v.stream_index) v.format->streams[i]->discard = AVDISCARD_ALL;
  }
  const AVCodecParameters& par = *v.stream()->codecpar;
  if (par.width < 0 || par.height < 0 || par.width > MAX_FRAME_SIDE || par.height > MAX_FRAME_SIDE) {
    throw InvalidInput(fmt::format("a video of {}x{} is outside the supported 1..{} pixels per side", par.width,
                                   par.height, MAX_FRAME_SIDE));
  }
  return v;
}

double frame_rate(const AVStream& s, int64_t total_frames, double duration) {
  if (s.avg_frame_rate.num > 0 && s.avg_frame_rate.den > 0) return av_q2d(s.avg_frame_rate);
  if (s.r_frame_rate.num > 0 && s.r_frame_rate.den > 0) return av_q2d(s.r_frame_rate);
  return duration > 0 ? static_cast<double>(total_frames) / duration : 0.0;
}

// RGB24 conversion as vf_scale configures libswscale for the CLI (see the file comment).
class RgbConverter {
 public:
  explicit RgbConverter(int64_t max_pixels) : max_pixels_(max_pixels) {}

  RgbImage convert(const AVFrame& f) {
    if (f.width <= 0 || f.height <= 0 || f.width > MAX_FRAME_SIDE || f.height > MAX_FRAME_SIDE ||
        int64_t{f.width} * f.height > max_pixels_) {
      throw InvalidInput(fmt::format("the decoder produced a frame of {}x{}", f.width, f.height));
    }
    configure(f);
    // libswscale's SIMD may write past the end of a row: convert into padded rows, then close the gaps in place
    // (row y moves down to y·width·3 from y·linesize, never over a row not yet moved), so no second copy of the
    // frame is held.
    const int linesize = FFALIGN(f.width * 3, 64) + 64;
    RgbImage out;
    out.width = f.width;
    out.height = f.height;
    out.pixels.resize(static_cast<size_t>(linesize) * f.height + 64);
    uint8_t* dst[4] = {out.pixels.data(), nullptr, nullptr, nullptr};
    const int dst_stride[4] = {linesize, 0, 0, 0};
    const int rows = sws_scale(sws_.get(), f.data, f.linesize, 0, f.height, dst, dst_stride);
    if (rows != f.height) throw InternalError(fmt::format("libswscale converted {} of {} rows", rows, f.height));
    const auto row_bytes = static_cast<size_t>(out.width * 3);
    for (int64_t y = 1; y < out.height; ++y) {
      std::memmove(&out.pixels[y * row_bytes], &out.pixels[y * linesize], row_bytes);
    }
    out.pixels.resize(row_bytes * out.height);
    return out;
  }

 private:
  void configure(const AVFrame& f) {
    if (sws_ && f.width == width_ && f.height == height_ && f.format == format_ && f.colorspace == colorspace_ &&
        f.color_range == range_) {
      return;
    }
    const auto src = static_cast<AVPixelFormat>(f.format);
    sws_.reset(sws_getContext(f.width, f.height, src, f.width, f.height, AV_PIX_FMT_RGB24, SWS_BICUBIC, nullptr,
                              nullptr, nullptr));
    if (!sws_) {
      const char* name = av_get_pix_fmt_name(src);
      throw Unsupported(fmt::format("the decoded pixel format {} cannot be converted to RGB", name ? name : "?"));
    }
    int *inv_table = nullptr, *table = nullptr;
    int src_range = 0, dst_range = 0, brightness = 0, contrast = 0, saturation = 0;
    if (sws_getColorspaceDetails(sws_.get(), &inv_table, &src_range, &table, &dst_range, &brightness, &contrast,
                                 &saturation) >= 0) {
      // vf_scale's parse_yuv_type("auto", colorspace): values outside 1..10, and 8 (YCgCo), mean BT.601.
      int space = f.colorspace;
      if (space < 1 || space > 10 || space == 8) space = AVCOL_SPC_BT470BG;
      const int* coefficients = sws_getCoefficients(space);
      if (f.color_range != AVCOL_RANGE_UNSPECIFIED) src_range = f.color_range == AVCOL_RANGE_JPEG;
      sws_setColorspaceDetails(sws_.get(), coefficients, src_range, coefficients, dst_range, brightness, contrast,
                               saturation);
    }
    width_ = f.width, height_ = f.height, format_ = f.format, colorspace_ = f.colorspace, range_ = f.color_range;
  }

  int64_t max_pixels_;
  SwsPtr sws_;
  int width_ = 0, height_ = 0, format_ = -1;
  AVColorSpace colorspace_ = AVCOL_SPC_UNSPECIFIED;
  AVColorRange range_ = AVCOL_RANGE_UNSPECIFIED;
};

// The bytes of the frames a decoder holds at once (its reference frames, one frame per thread, the frame it hands
// out), counted through a get_buffer2 that wraps FFmpeg's default buffers: a frame that would take them over the
// budget is not allocated (the decoder gets ENOMEM) and exceeded() says why. Called from the decoder's threads.
// Decoders without direct rendering (AV_CODEC_CAP_DR1) allocate their frames themselves and are not counted; the
// frame-size limit still bounds them.
class FrameBudget {
 public:
  explicit FrameBudget(int64_t limit) : limit_(limit) {}
  FrameBudget(const FrameBudget&) = delete;
  FrameBudget& operator=(const FrameBudget&) = delete;

  void attach(AVCodecContext& c) {
    c.opaque = this;
    c.get_buffer2 = &FrameBudget::get_buffer;
  }
  bool exceeded() const { return exceeded_.load(); }
  int64_t limit() const { return limit_; }

 private:
  struct Held {
    FrameBudget* budget;
    AVBufferRef* original;
    int64_t bytes;
  };

  static void release(void* opaque, uint8_t*) {
    auto* h = static_cast<Held*>(opaque);
    h->budget->held_ -= h->bytes;
    av_buffer_unref(&h->original);
    delete h;
  }

  static int get_buffer(AVCodecContext* c, AVFrame* f, int flags) {
    auto* self = static_cast<FrameBudget*>(c->opaque);
    const int err = avcodec_default_get_buffer2(c, f, flags);
    if (err < 0) return err;
    int64_t total = 0;
    for (AVBufferRef*& buf : f->buf) {
      if (!buf) continue;
      const auto bytes = static_cast<int64_t>(buf->size);
      auto* h = new (std::nothrow) Held{self, buf, bytes};
      AVBufferRef* wrapped = h ? av_buffer_create(buf->data, buf->size, &release, h, 0) : nullptr;
      if (!wrapped) {
        delete h;
        av_frame_unref(f);
        return AVERROR(ENOMEM);
      }
      total = self->held_ += bytes;
      buf = wrapped;
    }
    if (total > self->limit_) {
      self->exceeded_ = true;
      av_frame_unref(f);  // gives the bytes back
      return AVERROR(ENOMEM);
    }
    return 0;
  }

  const int64_t limit_;
  std::atomic<int64_t> held_{0};
  std::atomic<bool> exceeded_{false};
};

// The streaming decoder behind detail::decode_frames_at.
class FrameDecoder {
 public:
  FrameDecoder(const fs::path& path, std::span<const int64_t> indices, int64_t total_frames,
               const std::function<void(int64_t, const RgbImage&)>& on_frame,
               const std::function<void(int64_t, int64_t)>& progress, const detail::DecodeLimits& limits)
      : source_(open_video(path, limits.max_frame_pixels)),
        indices_(indices),
        total_(total_frames),
        on_frame_(on_frame),
        progress_(progress),
        limits_(limits),
        budget_(frames_budget(*source_.stream()->codecpar, limits)),
        converter_(limits.max_frame_pixels) {
    OE_CHECK(std::is_sorted(indices.begin(), indices.end()) && indices.front() >= 0,
             "frame indices must be sorted and not negative");
    codec_.reset(avcodec_alloc_context3(source_.decoder));
    packet_.reset(av_packet_alloc());
    frame_.reset(av_frame_alloc());
    if (!codec_ || !packet_ || !frame_) throw std::bad_alloc();
    int err = avcodec_parameters_to_context(codec_.get(), source_.stream()->codecpar);
    if (err >= 0) {
      codec_->pkt_timebase = source_.stream()->time_base;
      // FFmpeg's choice, as the CLI, unless the frames are large; threading does not change the frames.
      codec_->thread_count = decoder_threads(*source_.stream()->codecpar);
      // FFmpeg refuses a larger frame before allocating it (a stream may change size after its header).
      codec_->max_pixels = limits.max_frame_pixels;
      budget_.attach(*codec_);
      err = avcodec_open2(codec_.get(), source_.decoder, nullptr);
    }
    if (err < 0) {
      throw InvalidInput(fmt::format("cannot open the {} decoder: {}", source_.decoder->name, ffmpeg::error_text(err)));
    }
  }

  // Returns the number of frames decoded.
  int64_t run() {
    while (!done()) {
      const int err = av_read_frame(source_.format.get(), packet_.get());
      if (err < 0) {
        // The end of the file, or a demuxer that gives up inside the data (a cut file): drain the decoder.
        if (err != AVERROR_EOF && n_packets_ == 0) {
          throw InvalidInput(fmt::format("cannot read the video data: {}", ffmpeg::error_text(err)));
        }
        decode(nullptr);
        break;
      }
      if (packet_->stream_index == source_.stream_index) {
        ++n_packets_;
        decode(packet_.get());
      }
      av_packet_unref(packet_.get());
    }
    if (n_decoded_ == 0 && bad_total_ > 0) {
      throw InvalidInput(fmt::format("corrupt video data: no packet could be decoded (FFmpeg: {})", first_error_));
    }
    return n_decoded_;
  }

 private:
  bool done() const { return next_ == indices_.size(); }

  // What the decoder's frames may hold: the limit less the RGB copy of one frame and the caller's buffers. Refuses a
  // stream whose one frame with those is already over the limit, before anything is decoded.
  static int64_t frames_budget(const AVCodecParameters& par, const detail::DecodeLimits& limits) {
    const int64_t beside = int64_t{par.width} * par.height * 3 + limits.other_bytes, frame = frame_bytes(par);
    if (frame + beside > limits.max_decode_bytes) {
      throw InvalidInput(fmt::format(
          "decoding this {} video takes at least {} MiB of memory (one decoded frame, its RGB copy and its resize), "
          "over the limit of {} MiB (VideoOptions::max_decode_bytes, --max-video-decode-bytes)",
          describe(par), (frame + beside) >> 20, limits.max_decode_bytes >> 20));
    }
    return limits.max_decode_bytes - beside;
  }

  static std::string describe(const AVCodecParameters& par) {
    const char* format = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par.format));
    return fmt::format("{}x{} {}", par.width, par.height, format ? format : "?");
  }

  void check_budget() const {
    if (!budget_.exceeded()) return;
    throw InvalidInput(fmt::format(
        "decoding this {} video would hold more than {} MiB of decoded frames at once (its reference frames and the "
        "decoder's threads; the rest of the limit goes to one RGB frame and its resize), over the limit of {} MiB "
        "(VideoOptions::max_decode_bytes, --max-video-decode-bytes)",
        describe(*source_.stream()->codecpar), budget_.limit() >> 20, limits_.max_decode_bytes >> 20));
  }

  void decode(const AVPacket* p) {
    int err = avcodec_send_packet(codec_.get(), p);
    if (err < 0 && err != AVERROR_EOF) {
      check_budget();
      note_bad_packet(err);
      if (p) return;
    }
    while (!done()) {
      err = avcodec_receive_frame(codec_.get(), frame_.get());
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
      if (err < 0) {
        check_budget();
        note_bad_packet(err);
        return;
      }
      bad_in_a_row_ = 0;
      consume_frame();
      av_frame_unref(frame_.get());
    }
  }

  void consume_frame() {
    const int64_t k = n_decoded_++;
    if (indices_[next_] == k) {
      const RgbImage rgb = converter_.convert(*frame_);
      for (; next_ < indices_.size() && indices_[next_] == k; ++next_) on_frame_(k, rgb);
    }
    if (progress_) progress_(n_decoded_, total_);
  }

  void note_bad_packet(int err) {
    ++bad_total_;
    if (first_error_.empty()) first_error_ = ffmpeg::error_text(err);
    if (++bad_in_a_row_ > MAX_BAD_PACKETS_IN_A_ROW) {
      throw InvalidInput(fmt::format("corrupt video data: {} packets in a row could not be decoded (FFmpeg: {})",
                                     bad_in_a_row_, first_error_));
    }
    if (bad_total_ > std::max<int64_t>(MAX_BAD_PACKETS, n_packets_ / 100)) {
      throw InvalidInput(fmt::format("corrupt video data: {} of the first {} packets could not be decoded (FFmpeg: {})",
                                     bad_total_, n_packets_, first_error_));
    }
  }

  VideoSource source_;
  std::span<const int64_t> indices_;
  int64_t total_ = 0;
  const std::function<void(int64_t, const RgbImage&)>& on_frame_;
  const std::function<void(int64_t, int64_t)>& progress_;
  detail::DecodeLimits limits_;
  FrameBudget budget_;  // before the codec context: the codec gives its frames back to it when it is freed
  CodecContextPtr codec_;
  PacketPtr packet_;
  FramePtr frame_;
  RgbConverter converter_;
  size_t next_ = 0;  // the next entry of indices_ to serve
  int64_t n_decoded_ = 0;
  int64_t n_packets_ = 0;
  int64_t bad_total_ = 0;
  int bad_in_a_row_ = 0;
  std::string first_error_;
};

VideoInfo probe(const fs::path& path, int64_t max_frame_pixels) {
  VideoSource v = open_video(path, max_frame_pixels);
  const AVStream& s = *v.stream();
  VideoInfo info;
  info.width = s.codecpar->width;
  info.height = s.codecpar->height;
  info.codec = avcodec_get_name(s.codecpar->codec_id);
  for (unsigned i = 0; i < v.format->nb_streams; ++i) {
    info.has_audio = info.has_audio || v.format->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
  }
  if (s.duration != AV_NOPTS_VALUE && s.duration > 0) {
    info.duration_seconds = static_cast<double>(s.duration) * av_q2d(s.time_base);
  } else if (v.format->duration != AV_NOPTS_VALUE && v.format->duration > 0) {
    info.duration_seconds = static_cast<double>(v.format->duration) / AV_TIME_BASE;
  }
  // The frame count: the video stream's packets, read to the end (or to where a damaged file stops).
  PacketPtr packet(av_packet_alloc());
  if (!packet) throw std::bad_alloc();
  for (;;) {
    const int err = av_read_frame(v.format.get(), packet.get());
    if (err < 0) {
      if (err != AVERROR_EOF && info.total_frames == 0) {
        throw InvalidInput(fmt::format("cannot read the video data: {}", ffmpeg::error_text(err)));
      }
      break;
    }
    if (packet->stream_index == v.stream_index) ++info.total_frames;
    av_packet_unref(packet.get());
  }
  if (info.total_frames == 0) throw InvalidInput("the video stream has no frame");
  if (info.width <= 0 || info.height <= 0) {
    throw InvalidInput(fmt::format(
        "the video stream declares no frame size ({}x{}): a damaged header, or a first frame over the limit of {} "
        "pixels (--max-video-frame-pixels)",
        info.width, info.height, max_frame_pixels));
  }
  info.fps = frame_rate(s, info.total_frames, info.duration_seconds);
  return info;
}

}  // namespace

namespace detail {

int64_t decode_frames_at(const fs::path& path, std::span<const int64_t> indices, int64_t total_frames,
                         const std::function<void(int64_t, const RgbImage&)>& on_frame,
                         const std::function<void(int64_t, int64_t)>& progress, const DecodeLimits& limits) {
  ffmpeg::quiet_log();
  if (indices.empty()) return 0;
  return FrameDecoder(path, indices, total_frames, on_frame, progress, limits).run();
}

}  // namespace detail

VideoInfo probe_video(const fs::path& path) {
  ffmpeg::quiet_log();
  return with_context(path.string(), [&] { return probe(path, VideoOptions{}.max_frame_pixels); });
}

namespace {

void check_decode_limits(const VideoInfo& info, const VideoOptions& options) {
  if (options.max_frame_pixels <= 0 || options.max_decode_bytes <= 0) {
    throw InvalidInput(fmt::format("video max frame pixels {} and max decode bytes {} must be positive",
                                   options.max_frame_pixels, options.max_decode_bytes));
  }
  if (info.width * info.height > options.max_frame_pixels) {
    throw InvalidInput(fmt::format(
        "a video frame of {}x{} ({} pixels) is over the limit of {} (VideoOptions::max_frame_pixels, "
        "--max-video-frame-pixels)",
        info.width, info.height, info.width * info.height, options.max_frame_pixels));
  }
}

// One range of decode_ranges: its frame plan, its two resizes and the frames sampled so far.
struct RangeInProgress {
  detail::FramePlan plan;
  ResizedSize first, second;
  size_t next = 0;  // the next entry of plan.indices to fill
  VideoFrames frames;
  bool complete() const { return next == plan.indices.size(); }
};

// decode_video_ranges without the file name prefixed to errors.
size_t decode_ranges(const fs::path& path, const VideoOptions& options, const VideoInfo& info,
                     const std::vector<VideoRange>& ranges, const std::function<void(size_t, VideoFrames&&)>& on_range,
                     const std::function<void(int64_t, int64_t)>& progress) {
  check_decode_limits(info, options);
  const bool card = options.pipeline == VideoPipeline::Card;
  std::vector<RangeInProgress> todo(ranges.size());
  std::vector<int64_t> wanted;  // every sampled index once, sorted
  int64_t resize_bytes = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const VideoRange& r = ranges[i];
    OE_CHECK(r.first_frame >= 0 && r.last_frame < info.total_frames && r.first_frame <= r.last_frame &&
                 (i == 0 || (r.first_frame >= ranges[i - 1].first_frame && r.last_frame >= ranges[i - 1].last_frame)),
             "video range {}: frames {}..{} of {}", i, r.first_frame, r.last_frame, info.total_frames);
    RangeInProgress& t = todo[i];
    t.plan = card ? detail::plan_card_frames(r.frame_count(), info.fps, options, r.first_frame)
                  : detail::plan_st_frames(r.frame_count(), info.fps, options, r.first_frame);
    const auto n = static_cast<int64_t>(t.plan.indices.size());
    // The target sizes come from the stream's declared size (all frames end up the same size).
    t.first = card ? card_first_resize(info.height, info.width, n, options)
                   : smart_resize(info.height, info.width, detail::VIDEO_FACTOR, options.min_pixels, options.max_pixels);
    t.second = card ? smart_resize(t.first.height, t.first.width, detail::VIDEO_FACTOR, options.min_pixels,
                                   options.max_pixels)
                    : t.first;
    t.frames.info = info;
    t.frames.truncated = t.plan.truncated;
    t.frames.frames.reserve(static_cast<size_t>(n));
    wanted.insert(wanted.end(), t.plan.indices.begin(), t.plan.indices.end());
    // The first resize holds its width pass (float RGB at the new width, the old height) and its height pass.
    resize_bytes = std::max(resize_bytes, 12 * t.first.width * (info.height + t.first.height));
  }
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());

  size_t handed = 0;  // ranges before this one were handed out
  const auto hand_out = [&](size_t i) {
    on_range(i, std::move(todo[i].frames));
    todo[i] = {};  // frees the plan too
    ++handed;
  };
  const auto on_frame = [&](int64_t k, const RgbImage& rgb) {
    for (size_t i = handed; i < todo.size() && ranges[i].first_frame <= k; ++i) {
      RangeInProgress& t = todo[i];
      for (; !t.complete() && t.plan.indices[t.next] == k; ++t.next) {  // an index sampled twice is kept twice
        RgbImage resized = resize_bicubic_antialias(rgb, t.first.width, t.first.height);
        if (card) resized = resize_bicubic(resized, t.second.width, t.second.height);
        t.frames.frames.push_back(std::move(resized));
        t.frames.indices.push_back(k);
      }
    }
    while (handed < todo.size() && todo[handed].complete()) hand_out(handed);
  };
  detail::decode_frames_at(path, wanted, info.total_frames, on_frame, progress,
                           {options.max_frame_pixels, options.max_decode_bytes, resize_bytes});
  // A damaged file ended before the last sampled index: the range in progress keeps what was decoded.
  for (size_t i = handed; i < todo.size() && !todo[i].frames.frames.empty(); ++i) {
    VideoFrames& f = todo[i].frames;
    f.n_missing = static_cast<int64_t>(todo[i].plan.indices.size() - f.frames.size());
    if (card && f.frames.size() % 2 == 1) {  // keep the count even, as the card pipeline's is
      f.frames.push_back(f.frames.back());
      f.indices.push_back(f.indices.back());
    }
    hand_out(i);
  }
  if (handed == 0) {
    const size_t n = ranges.empty() ? 0 : todo.front().plan.indices.size();
    throw InvalidInput(fmt::format("none of the {} sampled frames could be decoded (the stream counts {} frames)", n,
                                   info.total_frames));
  }
  return handed;
}

}  // namespace

size_t decode_video_ranges(const fs::path& path, const VideoOptions& options, const VideoInfo& info,
                           const std::vector<VideoRange>& ranges,
                           const std::function<void(size_t, VideoFrames&&)>& on_range,
                           const std::function<void(int64_t, int64_t)>& progress) {
  ffmpeg::quiet_log();
  OE_CHECK(!ranges.empty(), "no video range");
  return with_context(path.string(), [&] { return decode_ranges(path, options, info, ranges, on_range, progress); });
}

VideoFrames decode_video_frames(const fs::path& path, const VideoOptions& options,
                                const std::function<void(int64_t, int64_t)>& progress) {
  ffmpeg::quiet_log();
  return with_context(path.string(), [&] {
    const VideoInfo info = probe(path, options.max_frame_pixels);
    VideoRange whole;
    whole.end = static_cast<double>(info.total_frames) / info.fps;
    whole.last_frame = info.total_frames - 1;
    VideoFrames out;
    decode_ranges(path, options, info, {whole}, [&](size_t, VideoFrames&& f) { out = std::move(f); }, progress);
    return out;
  });
}

}  // namespace oe::media
