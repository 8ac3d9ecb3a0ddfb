// PNG, BMP, TIFF and GIF through FFmpeg's decoders (the whole file is one packet), then the decoder's pixel format
// brought to what Pillow's modes and convert("RGB") give:
//   8-bit RGB(A)/BGR(A)/grey/grey+alpha: the samples; palette: the palette colour; 1-bit: 0 or 255;
//   16 bits per sample with 3 or 4 channels, and 16-bit grey+alpha: the high byte (Pillow unpacks "RGB;16B",
//   "RGBA;16B", "LA;16B" by keeping the most significant byte);
//   16-bit grey: Pillow opens it as mode "I" (32-bit integers) and convert("RGB") clips to 0..255, no scaling;
//   5- and 6-bit fields of 16-bit BMP pixels: v * 255 / 31 (or 63) truncated, as Pillow's "BGR;15"/"BGR;16"
//   unpackers give (checked exhaustively against Pillow 9.4; libswscale replicates bits instead, up to 1 higher).
// Other pixel formats (rare in these containers) go through libswscale to RGB24/RGBA.
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "core/error.h"
#include "media/ffmpeg_util.h"
#include "media/image_internal.h"

namespace oe::media::detail {

namespace {

struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using ffmpeg::CodecContextPtr;
using ffmpeg::FramePtr;
using ffmpeg::PacketPtr;
using SwsPtr = std::unique_ptr<SwsContext, SwsFree>;

AVCodecID codec_id(ImageFormat format) {
  switch (format) {
    case ImageFormat::Png: return AV_CODEC_ID_PNG;
    case ImageFormat::Bmp: return AV_CODEC_ID_BMP;
    case ImageFormat::Tiff: return AV_CODEC_ID_TIFF;
    case ImageFormat::Gif: return AV_CODEC_ID_GIF;
    default: break;
  }
  OE_CHECK(false, "no FFmpeg decoder is used for {}", format_name(format));
  return AV_CODEC_ID_NONE;
}

CodecContextPtr open_decoder(ImageFormat format, int64_t max_pixels) {
  const AVCodec* codec = avcodec_find_decoder(codec_id(format));
  if (!codec) throw Unsupported(fmt::format("this FFmpeg build has no {} decoder", format_name(format)));
  CodecContextPtr ctx(avcodec_alloc_context3(codec));
  if (!ctx) throw std::bad_alloc();
  ctx->thread_count = 1;
  ctx->max_pixels = max_pixels;  // a second bomb guard, inside the decoder's own size checks
  const int err = avcodec_open2(ctx.get(), codec, nullptr);
  if (err < 0) {
    throw Unsupported(fmt::format("cannot open FFmpeg's {} decoder: {}", format_name(format), ffmpeg::error_text(err)));
  }
  return ctx;
}

static_assert(FFMPEG_INPUT_PADDING >= AV_INPUT_BUFFER_PADDING_SIZE);

// The packet of the whole file: `bytes` themselves when they are followed by FFmpeg's padding (`padded`), wrapped in
// a buffer FFmpeg references without copying or freeing, else a padded copy.
PacketPtr file_packet(std::span<const uint8_t> bytes, bool padded) {
  PacketPtr packet(av_packet_alloc());
  if (!packet) throw std::bad_alloc();
  if (!padded) {
    if (av_new_packet(packet.get(), static_cast<int>(bytes.size())) < 0) throw std::bad_alloc();
    std::memcpy(packet->data, bytes.data(), bytes.size());
    return packet;
  }
  auto* data = const_cast<uint8_t*>(bytes.data());  // read only: the buffer is flagged so
  packet->buf = av_buffer_create(
      data, bytes.size() + AV_INPUT_BUFFER_PADDING_SIZE, [](void*, uint8_t*) {}, nullptr, AV_BUFFER_FLAG_READONLY);
  if (!packet->buf) throw std::bad_alloc();
  packet->data = data;
  packet->size = static_cast<int>(bytes.size());
  return packet;
}

FramePtr decode_frame(std::span<const uint8_t> bytes, bool padded, ImageFormat format, int64_t max_pixels) {
  if (bytes.size() > static_cast<size_t>(INT_MAX - AV_INPUT_BUFFER_PADDING_SIZE)) {
    throw InvalidInput(fmt::format("{} file of {} bytes is too large", format_name(format), bytes.size()));
  }
  CodecContextPtr ctx = open_decoder(format, max_pixels);
  PacketPtr packet = file_packet(bytes, padded);
  FramePtr frame(av_frame_alloc());
  if (!frame) throw std::bad_alloc();
  int err = avcodec_send_packet(ctx.get(), packet.get());
  if (err >= 0) err = avcodec_receive_frame(ctx.get(), frame.get());
  if (err == AVERROR(EAGAIN)) {  // a decoder that holds the frame back until it is told the input has ended
    avcodec_send_packet(ctx.get(), nullptr);
    err = avcodec_receive_frame(ctx.get(), frame.get());
  }
  if (err < 0) {
    throw InvalidInput(
        fmt::format("corrupt or truncated {} data (FFmpeg: {})", format_name(format), ffmpeg::error_text(err)));
  }
  if (frame->decode_error_flags || (frame->flags & AV_FRAME_FLAG_CORRUPT)) {
    throw InvalidInput(fmt::format("corrupt or truncated {} data (FFmpeg flagged the frame)", format_name(format)));
  }
  return frame;
}

// Where the bytes of one pixel's R, G, B (and alpha, -1 if none) are in a packed pixel format; for 16-bit samples
// the offset of the most significant byte, which is what Pillow keeps.
struct PackedLayout {
  int bytes_per_pixel = 0;
  int rgb[3] = {0, 0, 0};
  int alpha = -1;
};

std::optional<PackedLayout> packed_layout(AVPixelFormat f) {
  switch (f) {
    case AV_PIX_FMT_RGB24: return PackedLayout{3, {0, 1, 2}, -1};
    case AV_PIX_FMT_BGR24: return PackedLayout{3, {2, 1, 0}, -1};
    case AV_PIX_FMT_RGBA: return PackedLayout{4, {0, 1, 2}, 3};
    case AV_PIX_FMT_BGRA: return PackedLayout{4, {2, 1, 0}, 3};
    case AV_PIX_FMT_ARGB: return PackedLayout{4, {1, 2, 3}, 0};
    case AV_PIX_FMT_ABGR: return PackedLayout{4, {3, 2, 1}, 0};
    case AV_PIX_FMT_RGB0: return PackedLayout{4, {0, 1, 2}, -1};
    case AV_PIX_FMT_BGR0: return PackedLayout{4, {2, 1, 0}, -1};
    case AV_PIX_FMT_0RGB: return PackedLayout{4, {1, 2, 3}, -1};
    case AV_PIX_FMT_0BGR: return PackedLayout{4, {3, 2, 1}, -1};
    case AV_PIX_FMT_GRAY8: return PackedLayout{1, {0, 0, 0}, -1};
    case AV_PIX_FMT_YA8: return PackedLayout{2, {0, 0, 0}, 1};
    case AV_PIX_FMT_RGB48BE: return PackedLayout{6, {0, 2, 4}, -1};
    case AV_PIX_FMT_RGB48LE: return PackedLayout{6, {1, 3, 5}, -1};
    case AV_PIX_FMT_RGBA64BE: return PackedLayout{8, {0, 2, 4}, 6};
    case AV_PIX_FMT_RGBA64LE: return PackedLayout{8, {1, 3, 5}, 7};
    case AV_PIX_FMT_YA16BE: return PackedLayout{4, {0, 0, 0}, 2};
    case AV_PIX_FMT_YA16LE: return PackedLayout{4, {1, 1, 1}, 3};
    default: return std::nullopt;
  }
}

// Calls pixel(x, y, row) for every pixel, `row` pointing at the start of row y of plane 0.
template <typename F>
void for_each_pixel(const AVFrame& f, F&& pixel) {
  for (int y = 0; y < f.height; ++y) {
    const uint8_t* row = f.data[0] + static_cast<ptrdiff_t>(y) * f.linesize[0];
    for (int x = 0; x < f.width; ++x) pixel(static_cast<int64_t>(y) * f.width + x, x, row);
  }
}

void convert_packed(const AVFrame& f, const PackedLayout& layout, bool keep_alpha, DecodedImage& out) {
  if (keep_alpha && layout.alpha >= 0) out.alpha.resize(static_cast<size_t>(f.width) * f.height);
  uint8_t* rgb = out.rgb.pixels.data();
  for_each_pixel(f, [&](int64_t i, int x, const uint8_t* row) {
    const uint8_t* p = row + static_cast<ptrdiff_t>(x) * layout.bytes_per_pixel;
    for (int c = 0; c < 3; ++c) rgb[3 * i + c] = p[layout.rgb[c]];
    if (!out.alpha.empty()) out.alpha[i] = p[layout.alpha];
  });
}

void convert_special(const AVFrame& f, AVPixelFormat format, bool keep_alpha, DecodedImage& out) {
  uint8_t* rgb = out.rgb.pixels.data();
  auto put = [&](int64_t i, uint8_t r, uint8_t g, uint8_t b) {
    rgb[3 * i] = r, rgb[3 * i + 1] = g, rgb[3 * i + 2] = b;
  };
  switch (format) {
    case AV_PIX_FMT_GRAY16BE:
    case AV_PIX_FMT_GRAY16LE: {
      const bool big = format == AV_PIX_FMT_GRAY16BE;
      for_each_pixel(f, [&](int64_t i, int x, const uint8_t* row) {
        const uint32_t v = big ? (row[2 * x] << 8 | row[2 * x + 1]) : (row[2 * x + 1] << 8 | row[2 * x]);
        const auto g = static_cast<uint8_t>(std::min<uint32_t>(v, 255));
        put(i, g, g, g);
      });
      return;
    }
    case AV_PIX_FMT_MONOBLACK:
    case AV_PIX_FMT_MONOWHITE: {
      const uint8_t one = format == AV_PIX_FMT_MONOBLACK ? 255 : 0;
      for_each_pixel(f, [&](int64_t i, int x, const uint8_t* row) {
        const uint8_t g = (row[x >> 3] >> (7 - (x & 7))) & 1 ? one : static_cast<uint8_t>(255 - one);
        put(i, g, g, g);
      });
      return;
    }
    case AV_PIX_FMT_PAL8: {
      // FFmpeg's palette entries are native-endian 0xAARRGGBB.
      const auto* palette = reinterpret_cast<const uint32_t*>(f.data[1]);
      if (keep_alpha) out.alpha.resize(static_cast<size_t>(f.width) * f.height);
      for_each_pixel(f, [&](int64_t i, int x, const uint8_t* row) {
        const uint32_t c = palette[row[x]];
        put(i, static_cast<uint8_t>(c >> 16), static_cast<uint8_t>(c >> 8), static_cast<uint8_t>(c));
        if (keep_alpha) out.alpha[i] = static_cast<uint8_t>(c >> 24);
      });
      return;
    }
    default: OE_CHECK(false, "unhandled pixel format");
  }
}

// 16-bit packed RGB: the 16-bit word's byte order and the bit positions of the fields.
struct Packed16 {
  bool big_endian = false;
  int red_shift = 0, green_shift = 0, blue_shift = 0;
  int green_bits = 5;
};

std::optional<Packed16> packed16_layout(AVPixelFormat f) {
  switch (f) {
    case AV_PIX_FMT_RGB555LE: return Packed16{false, 10, 5, 0, 5};
    case AV_PIX_FMT_RGB555BE: return Packed16{true, 10, 5, 0, 5};
    case AV_PIX_FMT_BGR555LE: return Packed16{false, 0, 5, 10, 5};
    case AV_PIX_FMT_BGR555BE: return Packed16{true, 0, 5, 10, 5};
    case AV_PIX_FMT_RGB565LE: return Packed16{false, 11, 5, 0, 6};
    case AV_PIX_FMT_RGB565BE: return Packed16{true, 11, 5, 0, 6};
    case AV_PIX_FMT_BGR565LE: return Packed16{false, 0, 5, 11, 6};
    case AV_PIX_FMT_BGR565BE: return Packed16{true, 0, 5, 11, 6};
    default: return std::nullopt;
  }
}

void convert_packed16(const AVFrame& f, const Packed16& layout, DecodedImage& out) {
  const auto expand = [](uint32_t word, int shift, int bits) {
    const uint32_t max = (1u << bits) - 1;
    return static_cast<uint8_t>(((word >> shift) & max) * 255 / max);
  };
  uint8_t* rgb = out.rgb.pixels.data();
  for_each_pixel(f, [&](int64_t i, int x, const uint8_t* row) {
    const uint8_t* p = row + 2 * x;
    const uint32_t word = layout.big_endian ? (p[0] << 8 | p[1]) : (p[1] << 8 | p[0]);
    rgb[3 * i] = expand(word, layout.red_shift, 5);
    rgb[3 * i + 1] = expand(word, layout.green_shift, layout.green_bits);
    rgb[3 * i + 2] = expand(word, layout.blue_shift, 5);
  });
}

bool is_special(AVPixelFormat f) {
  return f == AV_PIX_FMT_GRAY16BE || f == AV_PIX_FMT_GRAY16LE || f == AV_PIX_FMT_MONOBLACK ||
         f == AV_PIX_FMT_MONOWHITE || f == AV_PIX_FMT_PAL8;
}

// Any other pixel format: libswscale to RGB24, or RGBA when the alpha is needed.
void convert_with_swscale(const AVFrame& f, bool keep_alpha, DecodedImage& out) {
  const AVPixelFormat target = keep_alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24;
  SwsPtr sws(sws_getContext(f.width, f.height, static_cast<AVPixelFormat>(f.format), f.width, f.height, target,
                            SWS_POINT | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
  if (!sws) {
    const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(f.format));
    throw Unsupported(fmt::format("decoded pixel format {} cannot be converted to RGB", name ? name : "?"));
  }
  FramePtr converted(av_frame_alloc());
  if (!converted) throw std::bad_alloc();
  converted->format = target;
  converted->width = f.width;
  converted->height = f.height;
  if (av_frame_get_buffer(converted.get(), 0) < 0) throw std::bad_alloc();
  sws_scale(sws.get(), f.data, f.linesize, 0, f.height, converted->data, converted->linesize);
  convert_packed(*converted, *packed_layout(target), keep_alpha, out);
}

// GIF: FFmpeg paints the canvas outside the first frame and the frame's transparent pixels with a background colour
// (transparent pixels come out with alpha 0). Pillow keeps palette indices there (see GifFrame); this puts back the
// palette colours Pillow's convert("RGB") shows.
void apply_pillow_gif_rules(const GifFrame& gif, DecodedImage& out) {
  const auto colour = [&](int index) -> const uint8_t* {
    const size_t at = static_cast<size_t>(index) * 3;
    return index >= 0 && at + 3 <= gif.palette.size() ? &gif.palette[at] : nullptr;
  };
  const uint8_t* outside = colour(gif.transparent_index >= 0 ? gif.transparent_index : 0);
  const uint8_t* transparent = colour(gif.transparent_index);
  const int64_t w = out.rgb.width, h = out.rgb.height;
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      const int64_t i = y * w + x;
      const bool inside = x >= gif.left && x < gif.left + gif.width && y >= gif.top && y < gif.top + gif.height;
      const uint8_t* c = !inside ? outside : (out.alpha[i] == 0 ? transparent : nullptr);
      if (c) std::memcpy(&out.rgb.pixels[3 * i], c, 3);
    }
  }
  out.alpha.clear();  // the first frame is mode "P" (or "L"): nothing to composite
}

bool frame_points_into(const AVFrame& frame, const std::string& file) {
  const auto begin = reinterpret_cast<uintptr_t>(file.data());
  for (const uint8_t* plane : frame.data) {
    const auto at = reinterpret_cast<uintptr_t>(plane);
    if (plane && at >= begin && at - begin < file.size()) return true;
  }
  return false;
}

}  // namespace

DecodedImage decode_ffmpeg(std::span<const uint8_t> bytes, const ImageHeader& header, int64_t max_pixels,
                           std::string* file) {
  ffmpeg::quiet_log();
  // FFmpeg's own size check (av_image_check_size2 without a pixel format): (8·w + 1024)·(h + 128) < 2^31. A larger
  // image is valid and Pillow reads it, but this decoder cannot: say so rather than "corrupt".
  if ((8 * header.width + 1024) * (header.height + 128) >= int64_t{INT32_MAX})
    throw Unsupported(fmt::format("a {}x{} {} image is larger than FFmpeg's image decoders take ((8·width + 1024)·"
                                  "(height + 128) must stay under 2^31)",
                                  header.width, header.height, format_name(header.format)));
  const FramePtr frame = decode_frame(bytes, file != nullptr, header.format, max_pixels);
  // The packet and the decoder are gone (decode_frame's locals), and the frame holds its own pixels (checked: no
  // decoder of these formats hands out the packet's bytes, but one that did keeps the file): the file is no longer
  // needed while the frame is converted.
  if (file && !frame_points_into(*frame, *file)) std::string().swap(*file);
  if (frame->width != header.width || frame->height != header.height) {
    throw InvalidInput(fmt::format("the {} header says {}x{} but FFmpeg decoded {}x{}", format_name(header.format),
                                   header.width, header.height, frame->width, frame->height));
  }
  DecodedImage out;
  out.rgb.width = frame->width;
  out.rgb.height = frame->height;
  out.rgb.pixels.resize(static_cast<size_t>(out.rgb.width * out.rgb.height) * 3);
  const bool is_gif = header.format == ImageFormat::Gif;
  const bool keep_alpha = header.pillow_rgba || is_gif;
  const auto format = static_cast<AVPixelFormat>(frame->format);
  if (const auto layout = packed_layout(format)) {
    convert_packed(*frame, *layout, keep_alpha, out);
  } else if (is_special(format)) {
    convert_special(*frame, format, keep_alpha, out);
  } else if (const auto layout16 = packed16_layout(format)) {
    convert_packed16(*frame, *layout16, out);
  } else {
    convert_with_swscale(*frame, keep_alpha, out);
  }
  if (is_gif && !out.alpha.empty()) apply_pillow_gif_rules(header.gif, out);
  return out;
}

}  // namespace oe::media::detail
