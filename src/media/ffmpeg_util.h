// What the FFmpeg-based decoders of src/media share: owning pointers for FFmpeg's objects, error texts, and
// silencing FFmpeg's own log (its lines would only repeat what our exceptions say, and flood a batch job that meets
// many bad files). Internal to src/media.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
}

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"
#include "media/video.h"

namespace oe::media::ffmpeg {

struct FormatClose {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecContextFree {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatClose>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, CodecContextFree>;
using FramePtr = std::unique_ptr<AVFrame, FrameFree>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFree>;

inline std::string error_text(int err) {
  char text[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, text, sizeof(text));
  return text;
}

// Errors of the operating system (the file is missing, unreadable, ...) rather than of its content.
inline bool is_system_io_error(int err) {
  switch (err) {
    case AVERROR(ENOENT): case AVERROR(EACCES): case AVERROR(EPERM): case AVERROR(EISDIR): case AVERROR(EIO):
    case AVERROR(ENOTDIR): case AVERROR(ELOOP): case AVERROR(ENAMETOOLONG): case AVERROR(EMFILE):
    case AVERROR(ENFILE): return true;
    default: return false;
  }
}

// Opens a local file's container through the "file" protocol only (no playlist may reach the network; a colon in
// the name is not read as a protocol) and reads its stream info. IoError when the file cannot be opened,
// InvalidInput "not a <kind> file FFmpeg can read" when its content cannot be parsed. Reading the stream info may
// decode a frame of each stream (a video's first frame, an audio file's cover picture): FFmpeg refuses to allocate one
// over max_frame_pixels there (without it, a 12000x12000 first frame is decoded whole before any check of ours).
inline FormatPtr open_file(const std::filesystem::path& path, const char* kind,
                           int64_t max_frame_pixels = VideoOptions{}.max_frame_pixels) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (ec && status.type() != std::filesystem::file_type::not_found)
    throw IoError(fmt::format("cannot open the file: {}", ec.message()));
  if (!std::filesystem::exists(status)) throw IoError("cannot open the file: it does not exist");
  if (!std::filesystem::is_regular_file(status)) throw IoError("cannot open the file: it is not a regular file");
  AVDictionary* options = nullptr;
  av_dict_set(&options, "protocol_whitelist", "file", 0);
  AVFormatContext* raw = nullptr;
  const int err = avformat_open_input(&raw, ("file:" + path.string()).c_str(), nullptr, &options);
  av_dict_free(&options);
  if (err < 0) {
    if (is_system_io_error(err)) throw IoError(fmt::format("cannot open the file: {}", error_text(err)));
    throw InvalidInput(fmt::format("not a {} file FFmpeg can read ({})", kind, error_text(err)));
  }
  FormatPtr format(raw);
  std::vector<AVDictionary*> stream_options(format->nb_streams, nullptr);
  for (AVDictionary*& o : stream_options) av_dict_set_int(&o, "max_pixels", max_frame_pixels, 0);
  // A failure here still leaves the streams to choose from.
  avformat_find_stream_info(format.get(), stream_options.empty() ? nullptr : stream_options.data());
  for (AVDictionary*& o : stream_options) av_dict_free(&o);
  return format;
}

inline void quiet_log() {
  static std::once_flag once;
  std::call_once(once, [] { av_log_set_level(AV_LOG_QUIET); });
}

}  // namespace oe::media::ffmpeg
