// JPEG through libjpeg-turbo, the library Pillow links, with Pillow's settings (JpegImagePlugin / JpegDecode.c): the
// library's defaults (islow IDCT, fancy upsampling, block smoothing) and an output colour space chosen from the
// component count: 1 -> grey ("L"), 3 -> RGB, 4 -> CMYK read with Adobe's inverted polarity ("CMYK;I", which Pillow
// assumes for every CMYK JPEG) and then converted with Pillow's cmyk2rgb.
//
// libjpeg reports fatal errors through error_exit, which must not return. Throwing a C++ exception through libjpeg's
// C frames is undefined, so error_exit longjmps back to a setjmp in a small function that holds no C++ objects, and
// the caller turns the saved message into an exception.
// jpeglib.h uses size_t and FILE without including their headers.
#include <algorithm>
#include <cstddef>
#include <cstdio>

#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>

#include <fmt/format.h>

#include "core/error.h"
#include "media/image_internal.h"

namespace oe::media::detail {

namespace {

struct JpegErrors {
  jpeg_error_mgr pub;  // first member: libjpeg hands back a pointer to it
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX] = {};
  bool hit_end_of_data = false;  // the source ran dry and libjpeg inserted a fake EOI
};

void on_error_exit(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  longjmp(errors->jump, 1);
}

// Warnings are not printed. Premature end of data is remembered: Pillow refuses truncated files ("image file is
// truncated"), while libjpeg would fill the rest of the image with grey.
void on_emit_message(j_common_ptr cinfo, int msg_level) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) errors->hit_end_of_data = true;
}

// Owns the decompressor; destroyed whether decoding finished or failed.
struct JpegDecompressor {
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
  bool created = false;

  JpegDecompressor() {
    cinfo.err = jpeg_std_error(&errors.pub);
    errors.pub.error_exit = on_error_exit;
    errors.pub.emit_message = on_emit_message;
  }
  ~JpegDecompressor() {
    if (created) jpeg_destroy_decompress(&cinfo);
  }
  JpegDecompressor(const JpegDecompressor&) = delete;
  JpegDecompressor& operator=(const JpegDecompressor&) = delete;
};

// The two functions below call setjmp; they hold no objects with destructors, so the longjmp skips nothing.
bool read_jpeg_header(JpegDecompressor& d, const uint8_t* data, size_t size) {
  if (setjmp(d.errors.jump)) return false;
  jpeg_create_decompress(&d.cinfo);
  d.created = true;
  jpeg_mem_src(&d.cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&d.cinfo, TRUE);
  return true;
}

// Decodes every scanline into `out` (rows of `row_bytes`). Returns false on a libjpeg error.
bool read_jpeg_scanlines(JpegDecompressor& d, uint8_t* out, size_t row_bytes) {
  if (setjmp(d.errors.jump)) return false;
  jpeg_start_decompress(&d.cinfo);
  while (d.cinfo.output_scanline < d.cinfo.output_height) {
    JSAMPROW row = out + d.cinfo.output_scanline * row_bytes;
    jpeg_read_scanlines(&d.cinfo, &row, 1);
  }
  return true;
}

// Reads the rest of the stream (the EOI marker). A missing EOI after complete image data is accepted.
bool finish_jpeg(JpegDecompressor& d) {
  if (setjmp(d.errors.jump)) return false;
  jpeg_finish_decompress(&d.cinfo);
  return true;
}

[[noreturn]] void jpeg_failed(const JpegDecompressor& d) {
  throw InvalidInput(fmt::format("corrupt JPEG data: {} (libjpeg)", d.errors.message));
}

J_COLOR_SPACE pillow_output_space(int n_components) {
  switch (n_components) {
    case 1: return JCS_GRAYSCALE;
    case 3: return JCS_RGB;
    case 4: return JCS_CMYK;
  }
  throw Unsupported(fmt::format("JPEG with {} colour components (Pillow reads 1, 3 or 4)", n_components));
}

// Brings libjpeg's output (grey, RGB or stored CMYK) at the start of `buffer` to RGB in place, and sizes `buffer` to
// the RGB pixels. Grey is spread from the last pixel back, CMYK converted from the first pixel on: neither
// overwrites a sample it has yet to read. (CMYK's fourth byte a pixel stays allocated until the image is freed.)
void to_rgb_in_place(std::vector<uint8_t>& buffer, int n_components, int64_t n_pixels) {
  uint8_t* p = buffer.data();
  if (n_components == 1) {
    for (int64_t i = n_pixels - 1; i >= 0; --i) p[3 * i] = p[3 * i + 1] = p[3 * i + 2] = p[i];
  } else if (n_components == 4) {
    for (int64_t i = 0; i < 4 * n_pixels; ++i) p[i] = static_cast<uint8_t>(255 - p[i]);  // "CMYK;I": the inverse
    uint8_t rgb[3];
    for (int64_t i = 0; i < n_pixels; ++i) {  // pixel i's RGB goes to bytes 3i..3i+2, at or before its CMYK at 4i
      cmyk_to_rgb(p + 4 * i, rgb, 1);
      std::copy_n(rgb, 3, p + 3 * i);
    }
  }
  buffer.resize(static_cast<size_t>(n_pixels) * 3);
}

}  // namespace

DecodedImage decode_jpeg(std::span<const uint8_t> bytes, const ImageHeader& header) {
  JpegDecompressor d;
  if (!read_jpeg_header(d, bytes.data(), bytes.size())) jpeg_failed(d);
  const int n_components = d.cinfo.num_components;
  d.cinfo.out_color_space = pillow_output_space(n_components);
  if (int64_t{d.cinfo.image_width} != header.width || int64_t{d.cinfo.image_height} != header.height) {
    throw InvalidInput(fmt::format("JPEG frame header says {}x{} but libjpeg reads {}x{}", header.width,
                                   header.height, d.cinfo.image_width, d.cinfo.image_height));
  }
  const int64_t n_pixels = header.width * header.height;
  // One buffer for libjpeg's samples and the RGB made of them in place: room for 3 bytes a pixel, or 4 for CMYK.
  DecodedImage out;
  out.rgb.width = header.width;
  out.rgb.height = header.height;
  std::vector<uint8_t>& buffer = out.rgb.pixels;
  buffer.resize(static_cast<size_t>(n_pixels * std::max(n_components, 3)));
  if (!read_jpeg_scanlines(d, buffer.data(), static_cast<size_t>(header.width * n_components))) jpeg_failed(d);
  if (d.errors.hit_end_of_data) throw InvalidInput("truncated JPEG: the data ends before the image is complete");
  if (!finish_jpeg(d)) jpeg_failed(d);
  to_rgb_in_place(buffer, n_components, n_pixels);
  return out;
}

}  // namespace oe::media::detail
