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
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cstring>

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

VideoSource open_video(const fs::path& path) {
  VideoSource v;
  v.format = ffmpeg::open_file(path, "video");
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
  RgbImage convert(const AVFrame& f) {
    if (f.width <= 0 || f.height <= 0 || f.width > MAX_FRAME_SIDE || f.height > MAX_FRAME_SIDE) {
      throw InvalidInput(fmt::format("the decoder produced a frame of {}x{}", f.width, f.height));
    }
    configure(f);
    // libswscale's SIMD may write past the end of a row: convert into padded rows, then copy the pixels out.
    const int linesize = FFALIGN(f.width * 3, 64) + 64;
    scratch_.resize(static_cast<size_t>(linesize) * f.height + 64);
    uint8_t* dst[4] = {scratch_.data(), nullptr, nullptr, nullptr};
    const int dst_stride[4] = {linesize, 0, 0, 0};
    const int rows = sws_scale(sws_.get(), f.data, f.linesize, 0, f.height, dst, dst_stride);
    if (rows != f.height) throw InternalError(fmt::format("libswscale converted {} of {} rows", rows, f.height));
    RgbImage out;
    out.width = f.width;
    out.height = f.height;
    out.pixels.resize(static_cast<size_t>(out.width * out.height * 3));
    for (int64_t y = 0; y < out.height; ++y) {
      std::memcpy(&out.pixels[y * out.width * 3], &scratch_[y * linesize], static_cast<size_t>(out.width * 3));
    }
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

  SwsPtr sws_;
  int width_ = 0, height_ = 0, format_ = -1;
  AVColorSpace colorspace_ = AVCOL_SPC_UNSPECIFIED;
  AVColorRange range_ = AVCOL_RANGE_UNSPECIFIED;
  std::vector<uint8_t> scratch_;
};

// The streaming decoder behind detail::decode_frames_at.
class FrameDecoder {
 public:
  FrameDecoder(const fs::path& path, std::span<const int64_t> indices, int64_t total_frames,
               const std::function<void(int64_t, const RgbImage&)>& on_frame,
               const std::function<void(int64_t, int64_t)>& progress)
      : source_(open_video(path)), indices_(indices), total_(total_frames), on_frame_(on_frame), progress_(progress) {
    OE_CHECK(std::is_sorted(indices.begin(), indices.end()) && indices.front() >= 0,
             "frame indices must be sorted and not negative");
    codec_.reset(avcodec_alloc_context3(source_.decoder));
    packet_.reset(av_packet_alloc());
    frame_.reset(av_frame_alloc());
    if (!codec_ || !packet_ || !frame_) throw std::bad_alloc();
    int err = avcodec_parameters_to_context(codec_.get(), source_.stream()->codecpar);
    if (err >= 0) {
      codec_->pkt_timebase = source_.stream()->time_base;
      codec_->thread_count = 0;  // FFmpeg's choice, as the CLI; threading does not change the frames
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

  void decode(const AVPacket* p) {
    int err = avcodec_send_packet(codec_.get(), p);
    if (err < 0 && err != AVERROR_EOF) {
      note_bad_packet(err);
      if (p) return;
    }
    while (!done()) {
      err = avcodec_receive_frame(codec_.get(), frame_.get());
      if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return;
      if (err < 0) {
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

VideoInfo probe(const fs::path& path) {
  VideoSource v = open_video(path);
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
    throw InvalidInput(fmt::format("the video stream declares no frame size ({}x{})", info.width, info.height));
  }
  info.fps = frame_rate(s, info.total_frames, info.duration_seconds);
  return info;
}

}  // namespace

namespace detail {

int64_t decode_frames_at(const fs::path& path, std::span<const int64_t> indices, int64_t total_frames,
                         const std::function<void(int64_t, const RgbImage&)>& on_frame,
                         const std::function<void(int64_t, int64_t)>& progress) {
  ffmpeg::quiet_log();
  if (indices.empty()) return 0;
  return FrameDecoder(path, indices, total_frames, on_frame, progress).run();
}

}  // namespace detail

VideoInfo probe_video(const fs::path& path) {
  ffmpeg::quiet_log();
  return with_context(path.string(), [&] { return probe(path); });
}

VideoFrames decode_video_frames(const fs::path& path, const VideoOptions& options,
                                const std::function<void(int64_t, int64_t)>& progress) {
  ffmpeg::quiet_log();
  return with_context(path.string(), [&] {
    VideoFrames out;
    out.info = probe(path);
    const bool card = options.pipeline == VideoPipeline::Card;
    detail::FramePlan plan = card ? detail::plan_card_frames(out.info.total_frames, out.info.fps, options)
                                  : detail::plan_st_frames(out.info.total_frames, out.info.fps, options);
    out.truncated = plan.truncated;
    const auto n = static_cast<int64_t>(plan.indices.size());
    // The target sizes come from the stream's declared size (all frames end up the same size).
    const ResizedSize first = card ? card_first_resize(out.info.height, out.info.width, n, options)
                                   : smart_resize(out.info.height, out.info.width, detail::VIDEO_FACTOR,
                                                  options.min_pixels, options.max_pixels);
    const ResizedSize second = card ? smart_resize(first.height, first.width, detail::VIDEO_FACTOR,
                                                   options.min_pixels, options.max_pixels)
                                    : first;
    out.frames.reserve(static_cast<size_t>(n));
    out.indices.reserve(static_cast<size_t>(n));
    const auto on_frame = [&](int64_t k, const RgbImage& rgb) {
      RgbImage resized = resize_bicubic_antialias(rgb, first.width, first.height);
      if (card) resized = resize_bicubic(resized, second.width, second.height);
      out.frames.push_back(std::move(resized));
      out.indices.push_back(k);
    };
    detail::decode_frames_at(path, plan.indices, out.info.total_frames, on_frame, progress);
    out.n_missing = n - static_cast<int64_t>(out.frames.size());
    if (out.frames.empty()) {
      throw InvalidInput(fmt::format("none of the {} sampled frames could be decoded (the stream counts {} frames)",
                                     n, out.info.total_frames));
    }
    if (card && out.frames.size() % 2 == 1) {  // a damaged file: keep the count even, as the card pipeline's is
      out.frames.push_back(out.frames.back());
      out.indices.push_back(out.indices.back());
    }
    return out;
  });
}

}  // namespace oe::media
