// Unit tests of src/media/image.h that need no oracle: smart_resize on hand-computed cases, resize invariants,
// patchify's token order (spec §4.2), the processor config, and decoding of hand-built files, good and bad.
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "media/image_internal.h"
#include "media/media_test_util.h"

namespace oe::media {
namespace {

using namespace oe::media::testing;

// ---------------------------------------------------------------------------------------------------------------
// Hand-built files

void append_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void append_png_chunk(std::vector<uint8_t>& out, const char* type, const std::vector<uint8_t>& data) {
  append_be32(out, static_cast<uint32_t>(data.size()));
  std::vector<uint8_t> body(type, type + 4);
  body.insert(body.end(), data.begin(), data.end());
  out.insert(out.end(), body.begin(), body.end());
  append_be32(out, static_cast<uint32_t>(crc32(0, body.data(), static_cast<uInt>(body.size()))));
}

std::vector<uint8_t> png_ihdr(uint32_t width, uint32_t height, uint8_t depth, uint8_t colour_type) {
  std::vector<uint8_t> d;
  append_be32(d, width);
  append_be32(d, height);
  d.insert(d.end(), {depth, colour_type, 0, 0, 0});
  return d;
}

// An 8-bit PNG (colour type 2 = RGB, 6 = RGBA) of `samples` ([h, w, channels]), zlib-compressed.
std::vector<uint8_t> make_png(uint32_t width, uint32_t height, uint8_t colour_type,
                              const std::vector<uint8_t>& samples) {
  const size_t row = samples.size() / height;
  std::vector<uint8_t> raw;
  for (uint32_t y = 0; y < height; ++y) {
    raw.push_back(0);  // filter type None
    raw.insert(raw.end(), samples.begin() + y * row, samples.begin() + (y + 1) * row);
  }
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> packed(packed_size);
  EXPECT_EQ(compress(packed.data(), &packed_size, raw.data(), static_cast<uLong>(raw.size())), Z_OK);
  packed.resize(packed_size);
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  append_png_chunk(png, "IHDR", png_ihdr(width, height, 8, colour_type));
  append_png_chunk(png, "IDAT", packed);
  append_png_chunk(png, "IEND", {});
  return png;
}

// A PNG that is only a signature, an IHDR claiming `width`x`height`, and IEND: no pixel data at all.
std::vector<uint8_t> png_header_only(uint32_t width, uint32_t height) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  append_png_chunk(png, "IHDR", png_ihdr(width, height, 8, 2));
  append_png_chunk(png, "IEND", {});
  return png;
}

// SOI and a baseline frame header (SOF0) claiming `width`x`height` with 3 components, then nothing.
std::vector<uint8_t> jpeg_header_only(uint16_t width, uint16_t height) {
  std::vector<uint8_t> j = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 17, 8};
  j.insert(j.end(), {uint8_t(height >> 8), uint8_t(height), uint8_t(width >> 8), uint8_t(width), 3});
  for (uint8_t id = 1; id <= 3; ++id) j.insert(j.end(), {id, 0x11, 0});
  return j;
}

// A 24-bit BMP info header claiming `width`x`height`, without pixel data.
std::vector<uint8_t> bmp_header_only(int32_t width, int32_t height) {
  std::vector<uint8_t> b = {'B', 'M'};
  auto le32 = [&](uint32_t v) { for (int s = 0; s < 32; s += 8) b.push_back(static_cast<uint8_t>(v >> s)); };
  auto le16 = [&](uint16_t v) { b.push_back(uint8_t(v)), b.push_back(uint8_t(v >> 8)); };
  le32(54), le32(0), le32(54), le32(40), le32(static_cast<uint32_t>(width)), le32(static_cast<uint32_t>(height));
  le16(1), le16(24), le32(0), le32(0), le32(2835), le32(2835), le32(0), le32(0);
  return b;
}

// A little-endian TIFF whose only IFD says ImageWidth = ImageLength = `side` (LONG), without strips.
std::vector<uint8_t> tiff_header_only(uint32_t side) {
  std::vector<uint8_t> t = {'I', 'I', 42, 0, 8, 0, 0, 0, 2, 0};
  for (uint16_t tag : {uint16_t{256}, uint16_t{257}}) {
    t.insert(t.end(), {uint8_t(tag), uint8_t(tag >> 8), 4, 0, 1, 0, 0, 0});
    for (int s = 0; s < 32; s += 8) t.push_back(static_cast<uint8_t>(side >> s));
  }
  t.insert(t.end(), {0, 0, 0, 0});
  return t;
}

template <typename E, typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

// ---------------------------------------------------------------------------------------------------------------
// smart_resize (expected values computed by hand from spec §6.1.2 and checked with qwen-omni-utils' formula)

TEST(SmartResize, RoundsHalfToEven) {
  EXPECT_EQ(smart_resize(350, 350, 28, 3136, 12845056).height, 336);  // 12.5 -> 12, not 13
  const ResizedSize s = smart_resize(350, 378, 28, 3136, 12845056);  // 12.5 -> 12 and 13.5 -> 14
  EXPECT_EQ(s.height, 336);
  EXPECT_EQ(s.width, 392);
  const ResizedSize t = smart_resize(70, 700, 28, 3136, 12845056);  // 2.5 -> 2
  EXPECT_EQ(t.height, 56);
  EXPECT_EQ(t.width, 700);
  EXPECT_EQ(smart_resize(98, 700, 28, 3136, 12845056).height, 112);  // 3.5 -> 4
}

TEST(SmartResize, SmallImagesGrowToMinPixels) {
  // 10x10: both sides round to 0, clamped to 28; 784 < 3136 so beta = sqrt(3136/100) = 5.6 and 28·ceil(56/28) = 56.
  ResizedSize s = smart_resize(10, 10, 28, 3136, 12845056);
  EXPECT_EQ(s.height, 56);
  EXPECT_EQ(s.width, 56);
  s = smart_resize(28, 28, 28, 3136, 12845056);  // beta = 2
  EXPECT_EQ(s.height, 56);
  EXPECT_EQ(s.width, 56);
  s = smart_resize(1, 1, 28, 3136, 12845056);  // beta = 56
  EXPECT_EQ(s.height, 56);
  EXPECT_EQ(s.width, 56);
}

TEST(SmartResize, LargeImagesShrinkToMaxPixels) {
  // 3304·4004 > 12,845,056: beta = sqrt(3300·4000 / 12845056) = 1.01367...; 3300/beta/28 = 116.3 -> 3248 and
  // 4000/beta/28 = 140.9 -> 3920.
  ResizedSize s = smart_resize(3300, 4000, 28, 3136, 12845056);
  EXPECT_EQ(s.height, 3248);
  EXPECT_EQ(s.width, 3920);
  EXPECT_LE(s.height * s.width, 12845056);
  s = smart_resize(800, 1000, 28, 3136, 256 * 28 * 28);  // beta = sqrt(800000/200704) = 1.9965
  EXPECT_EQ(s.height, 392);
  EXPECT_EQ(s.width, 476);
}

TEST(SmartResize, RefusesExtremeAspectRatios) {
  EXPECT_NO_THROW(smart_resize(1, 200, 28, 3136, 12845056));  // exactly the limit is allowed
  const std::string m = error_message<InvalidInput>([] { smart_resize(1, 201, 28, 3136, 12845056); });
  EXPECT_NE(m.find("201"), std::string::npos) << m;
  EXPECT_NE(m.find("200"), std::string::npos) << m;
  EXPECT_NE(m.find("aspect ratio"), std::string::npos) << m;
  EXPECT_THROW(smart_resize(0, 10, 28, 3136, 12845056), InvalidInput);
  EXPECT_THROW(smart_resize(10, -1, 28, 3136, 12845056), InvalidInput);
}

// ---------------------------------------------------------------------------------------------------------------
// resize_bicubic invariants (exactness against Pillow is in image_oracle_test.cc)

TEST(ResizeBicubic, SameSizeIsACopy) {
  const RgbImage img = noise_image(31, 17, 1);
  const RgbImage out = resize_bicubic(img, 31, 17);
  EXPECT_EQ(image_difference(out, img), "");
}

TEST(ResizeBicubic, ConstantImagesStayConstant) {
  // The fixed-point weights of every output sum to 2^22 within a few units, far below what could move a value.
  for (auto [w, h, ow, oh] : {std::array<int64_t, 4>{1, 1, 5, 3}, {40, 30, 7, 90}, {3, 500, 60, 2}}) {
    RgbImage img;
    img.width = w, img.height = h;
    img.pixels.resize(static_cast<size_t>(w * h * 3));
    for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i % 3 == 0 ? 7 : 250);
    const RgbImage out = resize_bicubic(img, ow, oh);
    ASSERT_EQ(out.width, ow);
    ASSERT_EQ(out.height, oh);
    for (size_t i = 0; i < out.pixels.size(); ++i) ASSERT_EQ(out.pixels[i], i % 3 == 0 ? 7 : 250) << i;
  }
}

TEST(ResizeBicubic, ConsumingTheSourceGivesTheSamePixelsAndFreesIt) {
  // Both passes, one pass each way, and an unchanged size.
  for (auto [ow, oh] : {std::array<int64_t, 2>{13, 40}, {31, 9}, {50, 17}, {31, 17}}) {
    const RgbImage img = noise_image(31, 17, 3);
    RgbImage consumed = img;
    const RgbImage out = resize_bicubic(std::move(consumed), ow, oh);
    EXPECT_EQ(image_difference(out, resize_bicubic(img, ow, oh)), "") << ow << "x" << oh;
    EXPECT_TRUE(consumed.pixels.empty()) << ow << "x" << oh;
  }
}

TEST(ResizeBicubic, RefusesEmptyTargets) {
  const RgbImage img = noise_image(4, 4, 2);
  EXPECT_THROW(resize_bicubic(img, 0, 4), InvalidInput);
  EXPECT_THROW(resize_bicubic(img, 4, -2), InvalidInput);
}

// ---------------------------------------------------------------------------------------------------------------
// patchify: the token order of spec §4.2, checked from an image whose pixels encode their own position

TEST(Patchify, RowsFollowTheMergeBlockOrder) {
  VisionPreprocessConfig config;
  config.mean = {0, 0, 0};
  config.std = {1, 1, 1};
  RgbImage img;  // 56 wide, 84 high: grid 6 x 4 patches, merged 3 x 2
  img.width = 56, img.height = 84;
  img.pixels.resize(56 * 84 * 3);
  for (int64_t y = 0; y < 84; ++y) {
    for (int64_t x = 0; x < 56; ++x) {
      for (int c = 0; c < 3; ++c) img.pixels[(y * 56 + x) * 3 + c] = static_cast<uint8_t>((x + 2 * y + 50 * c) % 256);
    }
  }
  const RgbImage* frames[] = {&img};
  const PixelPatches p = patchify(frames, config);
  ASSERT_EQ(p.grid_t, 1);
  ASSERT_EQ(p.grid_h, 6);
  ASSERT_EQ(p.grid_w, 4);
  ASSERT_EQ(p.row_len, 1176);
  ASSERT_EQ(p.values.size(), size_t(24 * 1176));
  const int64_t merged_w = 2;
  for (int64_t bi = 0; bi < 3; ++bi) {
    for (int64_t bj = 0; bj < merged_w; ++bj) {
      for (int64_t ii = 0; ii < 2; ++ii) {
        for (int64_t jj = 0; jj < 2; ++jj) {
          const int64_t n = ((bi * merged_w + bj) * 2 + ii) * 2 + jj;  // spec §4.2 with ti = 0
          const int64_t r = 2 * bi + ii, col = 2 * bj + jj;           // patch row and column
          for (int c = 0; c < 3; ++c) {
            for (int t = 0; t < 2; ++t) {
              for (int y = 0; y < 14; ++y) {
                for (int x = 0; x < 14; ++x) {
                  const int64_t px = col * 14 + x, py = r * 14 + y;
                  const float want = static_cast<float>(((px + 2 * py + 50 * c) % 256) / 255.0);
                  const float got = p.values[n * 1176 + ((c * 2 + t) * 14 + y) * 14 + x];
                  ASSERT_EQ(got, want) << "row " << n << " c " << c << " t " << t << " y " << y << " x " << x;
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST(Patchify, PadsTheLastFrameToTheTemporalPatch) {
  VisionPreprocessConfig config;
  const RgbImage a = noise_image(28, 28, 3), b = noise_image(28, 28, 4), c = noise_image(28, 28, 5);
  const RgbImage* frames[] = {&a, &b, &c};
  const PixelPatches p = patchify(frames, config);
  ASSERT_EQ(p.grid_t, 2);
  ASSERT_EQ(p.n_rows(), 2 * 2 * 2);
  // In the second temporal group both temporal slots hold frame c: for every row and channel, slot 1 == slot 0.
  for (int64_t row = 4; row < 8; ++row) {
    for (int ch = 0; ch < 3; ++ch) {
      const float* slot0 = &p.values[row * 1176 + (ch * 2 + 0) * 196];
      const float* slot1 = &p.values[row * 1176 + (ch * 2 + 1) * 196];
      for (int k = 0; k < 196; ++k) ASSERT_EQ(slot0[k], slot1[k]);
    }
  }
  // and the first group differs between its slots (frames a and b)
  EXPECT_NE(p.values[0], p.values[196]);
}

TEST(Patchify, RefusesBadFrames) {
  VisionPreprocessConfig config;
  const RgbImage odd = noise_image(30, 28, 1), ok = noise_image(28, 28, 2), other = noise_image(56, 28, 3);
  const RgbImage* bad_size[] = {&odd};
  EXPECT_THROW(patchify(bad_size, config), InvalidInput);
  const RgbImage* mixed[] = {&ok, &other};
  EXPECT_THROW(patchify(mixed, config), InvalidInput);
  EXPECT_THROW(patchify(std::span<const RgbImage* const>(), config), InvalidInput);
}

TEST(PreprocessImage, RefusesExtremeAspectRatio) {
  const RgbImage img = noise_image(1, 2000, 6);
  const std::string m = error_message<InvalidInput>([&] { preprocess_image(img, VisionPreprocessConfig{}); });
  EXPECT_NE(m.find("aspect ratio"), std::string::npos) << m;
  EXPECT_NE(m.find("2000"), std::string::npos) << m;
  EXPECT_NE(m.find("200"), std::string::npos) << m;
}

TEST(PreprocessImage, GridFollowsSmartResize) {
  const PixelPatches p = preprocess_image(noise_image(350, 350, 7), VisionPreprocessConfig{});
  EXPECT_EQ(p.grid_t, 1);
  EXPECT_EQ(p.grid_h, 24);  // 336 / 14
  EXPECT_EQ(p.grid_w, 24);
  EXPECT_EQ(p.values.size(), size_t(24 * 24 * 1176));
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding hand-built files

TEST(DecodeImage, PngRoundTripIsExact) {
  const RgbImage img = noise_image(5, 3, 11);
  TempDir dir;
  write_bytes(dir / "x.png", make_png(5, 3, 2, img.pixels));
  EXPECT_EQ(image_difference(decode_image(dir / "x.png"), img), "");
}

TEST(DecodeImage, RgbaIsCompositedOntoWhiteWithPillowsRounding) {
  // Expected pixels from Pillow 9.4: Image.new("RGB", (4, 1), white).paste(rgba, mask=alpha).
  const std::vector<uint8_t> rgba = {200, 100, 0, 128, 10, 250, 77, 1, 0, 0, 0, 254, 255, 255, 255, 0};
  const std::vector<uint8_t> want = {227, 177, 127, 254, 255, 254, 1, 1, 1, 255, 255, 255};
  TempDir dir;
  write_bytes(dir / "a.png", make_png(4, 1, 6, rgba));
  EXPECT_EQ(decode_image(dir / "a.png").pixels, want);
}

TEST(DecodeImage, FormatComesFromTheBytesNotTheName) {
  const RgbImage img = noise_image(4, 4, 12);
  TempDir dir;
  write_bytes(dir / "photo.jpg", make_png(4, 4, 2, img.pixels));
  EXPECT_EQ(image_difference(decode_image(dir / "photo.jpg"), img), "");
}

TEST(DecodeImage, RefusesEmptyFile) {
  TempDir dir;
  write_bytes(dir / "empty.png", {});
  const std::string m = error_message<InvalidInput>([&] { decode_image(dir / "empty.png"); });
  EXPECT_NE(m.find("empty.png"), std::string::npos) << m;
  EXPECT_NE(m.find("empty"), std::string::npos) << m;
}

TEST(DecodeImage, RefusesTextNamedJpg) {
  TempDir dir;
  const std::string text = "this is not a picture\n";
  write_bytes(dir / "notes.jpg", std::vector<uint8_t>(text.begin(), text.end()));
  const std::string m = error_message<InvalidInput>([&] { decode_image(dir / "notes.jpg"); });
  EXPECT_NE(m.find("notes.jpg"), std::string::npos) << m;
  EXPECT_NE(m.find("not an image"), std::string::npos) << m;
}

TEST(DecodeImage, RefusesTruncatedPng) {
  const std::vector<uint8_t> png = make_png(64, 48, 2, noise_image(64, 48, 13).pixels);
  TempDir dir;
  for (size_t keep : {png.size() / 2, png.size() - 20, size_t{40}, size_t{20}, size_t{8}, size_t{3}}) {
    SCOPED_TRACE(keep);
    write_bytes(dir / "cut.png", std::vector<uint8_t>(png.begin(), png.begin() + static_cast<ptrdiff_t>(keep)));
    const std::string m = error_message<InvalidInput>([&] { decode_image(dir / "cut.png"); });
    EXPECT_NE(m.find("cut.png"), std::string::npos) << m;
  }
}

TEST(DecodeImage, RefusesDecompressionBombsFromTheHeader) {
  TempDir dir;
  const std::pair<std::string, std::vector<uint8_t>> files[] = {
      {"bomb.png", png_header_only(30000, 30000)},
      {"bomb.jpg", jpeg_header_only(30000, 30000)},
      {"bomb.bmp", bmp_header_only(30000, -30000)},
      {"bomb.tif", tiff_header_only(30000)},
  };
  for (const auto& [name, bytes] : files) {
    SCOPED_TRACE(name);
    write_bytes(dir / name, bytes);
    const std::string m = error_message<InvalidInput>([&] { decode_image(dir / name); });
    EXPECT_NE(m.find(name), std::string::npos) << m;
    EXPECT_NE(m.find("900000000 pixels"), std::string::npos) << m;
    EXPECT_NE(m.find("limit of 178956970"), std::string::npos) << m;
  }
  // A lower limit applies the same way to a small, valid file.
  ImageDecodeOptions options;
  options.max_decoded_pixels = 100;
  write_bytes(dir / "small.png", make_png(20, 20, 2, noise_image(20, 20, 14).pixels));
  const std::string m = error_message<InvalidInput>([&] { decode_image(dir / "small.png", options); });
  EXPECT_NE(m.find("limit of 100 pixels"), std::string::npos) << m;
}

TEST(DecodeImage, BombMessageCountsThePixelsOfTheLargestHeader) {
  // Found by fuzz/image.cc: the largest PNG header, 2^32 − 1 on each side, overflowed the pixel count of the message
  // (signed overflow, undefined; a negative count in practice).
  const std::vector<uint8_t> png = png_header_only(0xFFFFFFFFu, 0xFFFFFFFFu);
  const std::string m = error_message<InvalidInput>([&] { decode_image(png, "huge.png"); });
  EXPECT_NE(m.find("4294967295x4294967295 = 18446744065119617025 pixels"), std::string::npos) << m;
}

TEST(DecodeImage, MissingFileIsAnIoError) {
  TempDir dir;
  const std::string m = error_message<IoError>([&] { decode_image(dir / "nope.png"); });
  EXPECT_NE(m.find("nope.png"), std::string::npos) << m;
}

TEST(DecodeImage, BytesOverloadNamesTheInput) {
  const std::vector<uint8_t> junk = {'G', 'I', 'F', '8', '9', 'a', 1};
  const std::string m = error_message<InvalidInput>([&] { decode_image(junk, "upload #3"); });
  EXPECT_NE(m.find("upload #3"), std::string::npos) << m;
}

// ---------------------------------------------------------------------------------------------------------------
// Hostile files: what is read, how much, and what a PNG's metadata may inflate to

// `png` with a compressed metadata chunk of `type` (zTXt or iCCP: name, NUL, method 0, zlib stream) inserted after
// IHDR, its stream inflating to `inflated` zero bytes.
std::vector<uint8_t> with_compressed_chunk(const std::vector<uint8_t>& png, const char* type, size_t inflated) {
  const std::vector<uint8_t> zeros(inflated, 0);
  uLongf packed_size = compressBound(static_cast<uLong>(zeros.size()));
  std::vector<uint8_t> packed(packed_size);
  EXPECT_EQ(compress2(packed.data(), &packed_size, zeros.data(), static_cast<uLong>(zeros.size()), 9), Z_OK);
  packed.resize(packed_size);
  std::vector<uint8_t> data = {'k', 'e', 'y', 0, 0};
  data.insert(data.end(), packed.begin(), packed.end());
  std::vector<uint8_t> chunk;
  append_png_chunk(chunk, type, data);
  std::vector<uint8_t> out;
  out.reserve(png.size() + chunk.size());
  out.insert(out.end(), png.begin(), png.begin() + 33);  // signature and IHDR
  out.insert(out.end(), chunk.begin(), chunk.end());
  out.insert(out.end(), png.begin() + 33, png.end());
  return out;
}

TEST(DecodeImage, PngMetadataBombsAreRefusedAndSmallMetadataIsNot) {
  const RgbImage img = noise_image(8, 8, 21);
  const std::vector<uint8_t> png = make_png(8, 8, 2, img.pixels);
  TempDir dir;
  for (const char* type : {"zTXt", "iCCP"}) {
    write_bytes(dir / "bomb.png", with_compressed_chunk(png, type, size_t{64} << 20));  // 64 MiB from ~64 KiB
    const std::string m = error_message<InvalidInput>([&] { decode_image(dir / "bomb.png"); });
    EXPECT_NE(m.find(fmt::format("a PNG {} chunk inflates to more than 1 MiB", type)), std::string::npos) << m;
    EXPECT_NE(m.find("bomb.png"), std::string::npos) << m;
  }
  write_bytes(dir / "ok.png", with_compressed_chunk(png, "zTXt", 500 * 1024));
  EXPECT_EQ(image_difference(decode_image(dir / "ok.png"), img), "");
}

TEST(DecodeImage, ReadsOnlyRegularFilesWithinTheCap) {
  TempDir dir;
  // A device and a named pipe are refused before any read (neither blocks nor reads forever).
  std::string m = error_message<IoError>([&] { decode_image("/dev/zero"); });
  EXPECT_NE(m.find("/dev/zero: is a character device, expected a regular file"), std::string::npos) << m;
  ASSERT_EQ(::mkfifo((dir / "pipe.png").c_str(), 0600), 0);
  m = error_message<IoError>([&] { decode_image(dir / "pipe.png"); });
  EXPECT_NE(m.find("is a FIFO (named pipe), expected a regular file"), std::string::npos) << m;
  const RgbImage img = noise_image(8, 8, 22);
  write_bytes(dir / "x.png", make_png(8, 8, 2, img.pixels));
  ImageDecodeOptions small;
  small.max_file_bytes = 64;
  m = error_message<InvalidInput>([&] { decode_image(dir / "x.png", small); });
  EXPECT_NE(m.find("the image file is larger than"), std::string::npos) << m;
  EXPECT_NE(m.find("--max-image-bytes"), std::string::npos) << m;
}

// A valid PNG larger than FFmpeg's decoders take ((8·w + 1024)·(h + 128) < 2^31) is said to be too large for the
// decoder, not "corrupt", when the pixel limit has been raised above it.
TEST(DecodeImage, LargerThanFfmpegTakesIsUnsupportedNotCorrupt) {
  TempDir dir;
  write_bytes(dir / "huge.png", png_header_only(20000, 20000));
  ImageDecodeOptions raised;
  raised.max_decoded_pixels = 500'000'000;
  raised.max_decode_bytes = int64_t{4} << 30;
  const std::string m = error_message<Unsupported>([&] { decode_image(dir / "huge.png", raised); });
  EXPECT_NE(m.find("20000x20000 PNG image is larger than FFmpeg's image decoders take"), std::string::npos) << m;
}

// A PNG header of `width`x`height` with the given bit depth and colour type, and no pixel data.
std::vector<uint8_t> png_header_only(uint32_t width, uint32_t height, uint8_t depth, uint8_t colour_type) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  append_png_chunk(png, "IHDR", png_ihdr(width, height, depth, colour_type));
  append_png_chunk(png, "IEND", {});
  return png;
}

// The process's peak resident memory so far, in KiB.
long peak_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

TEST(DecodeImage, ALargeFileItsHeaderRefusesIsNotReadWhole) {
  TempDir dir;
  // The deep header of the test below, then 400 MB of (sparse) data: refused from the file's first bytes, before
  // the whole file is read. Read whole, it would raise the peak by 400 MB.
  const std::filesystem::path big = dir / "deep-and-large.png";
  write_bytes(big, png_header_only(7000, 7000, 16, 6));
  std::filesystem::resize_file(big, 400'000'000);
  ImageDecodeOptions o;
  o.max_file_bytes = int64_t{1} << 30;
  const long before = peak_rss_kib();
  const std::string m = error_message<InvalidInput>([&] { decode_image(big, o); });
  EXPECT_NE(m.find("deep-and-large.png"), std::string::npos) << m;
  EXPECT_NE(m.find("takes about"), std::string::npos) << m;
  EXPECT_LT(peak_rss_kib() - before, 100'000) << "the refused file was read (peak " << peak_rss_kib() << " KiB)";
  // A header that fits goes on to the whole file (and fails there for what it is: a header and zeros).
  const std::filesystem::path fits = dir / "fits-and-large.png";
  write_bytes(fits, png_header_only(2000, 2000, 8, 2));
  std::filesystem::resize_file(fits, 20'000'000);
  EXPECT_EQ(error_message<InvalidInput>([&] { decode_image(fits, o); }).find("of memory"), std::string::npos);
}

TEST(DecodeImage, RefusesImagesWhoseDecodingTakesTooMuchMemory) {
  TempDir dir;
  // 7000x7000 16-bit RGBA: within the pixel limit, but FFmpeg's frame alone is 8 bytes a pixel (374 MiB) beside our
  // 4 (RGB and alpha): about 561 MiB, over the default 384 MiB, refused before any decoder runs.
  write_bytes(dir / "deep.png", png_header_only(7000, 7000, 16, 6));
  std::string m = error_message<InvalidInput>([&] { decode_image(dir / "deep.png"); });
  EXPECT_NE(m.find("deep.png"), std::string::npos) << m;
  EXPECT_NE(m.find("decoding this 7000x7000 PNG image takes about 561 MiB of memory, over the limit of 384 MiB"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("--max-image-decode-bytes"), std::string::npos) << m;
  // The same size at 8 bits RGB fits (3 + 3 bytes a pixel: 281 MiB); it then fails for what it is, a header only.
  write_bytes(dir / "rgb.png", png_header_only(7000, 7000, 8, 2));
  m = error_message<InvalidInput>([&] { decode_image(dir / "rgb.png"); });
  EXPECT_EQ(m.find("of memory"), std::string::npos) << m;
  // Raising the limit lets the deep one through to the decoder too.
  ImageDecodeOptions raised;
  raised.max_decode_bytes = int64_t{600} << 20;
  m = error_message<InvalidInput>([&] { decode_image(dir / "deep.png", raised); });
  EXPECT_EQ(m.find("of memory"), std::string::npos) << m;
  // Decoding from bytes in memory counts the padded copy FFmpeg gets of them.
  const std::vector<uint8_t> rgb = png_header_only(7000, 7000, 8, 2);
  ImageDecodeOptions tight;
  tight.max_decode_bytes = int64_t{281} << 20;
  EXPECT_EQ(error_message<InvalidInput>([&] { decode_image(dir / "rgb.png", tight); }).find("of memory"),
            std::string::npos);
  tight.max_decode_bytes = 7000LL * 7000 * 6 - 1;
  EXPECT_NE(error_message<InvalidInput>([&] { decode_image(rgb, "in memory", tight); }).find("of memory"),
            std::string::npos);
}

TEST(DecodeImage, DecodingMemoryFollowsTheFormatsHeader) {
  using detail::decode_memory;
  using detail::ImageFormat;
  const auto header = [](std::vector<uint8_t> bytes, ImageFormat format) {
    return detail::read_header(bytes, format);
  };
  const uint64_t P = 1000 * 1000;
  // PNG through FFmpeg: its frame (bytes a pixel by depth and colour type) and our RGB (+ alpha for RGBA); the file
  // either freed after decoding or counted, and copied once when it comes as a caller's bytes.
  EXPECT_EQ(decode_memory(header(png_header_only(1000, 1000, 8, 2), ImageFormat::Png), 0, false, true, false), 6 * P);
  EXPECT_EQ(decode_memory(header(png_header_only(1000, 1000, 16, 2), ImageFormat::Png), 0, false, true, false),
            9 * P);
  EXPECT_EQ(decode_memory(header(png_header_only(1000, 1000, 16, 6), ImageFormat::Png), 0, false, true, false),
            12 * P);
  EXPECT_EQ(decode_memory(header(png_header_only(1000, 1000, 8, 3), ImageFormat::Png), 0, false, true, false), 4 * P);
  EXPECT_EQ(decode_memory(header(png_header_only(1000, 1000, 8, 2), ImageFormat::Png), 10 * P, false, true, false),
            13 * P);
  EXPECT_EQ(decode_memory(header(png_header_only(1000, 1000, 8, 2), ImageFormat::Png), P, true, false, false), 8 * P);
  // A turned image: a copy of the RGB beside the output.
  EXPECT_EQ(decode_memory(header(png_header_only(1000, 1000, 8, 0), ImageFormat::Png), 0, false, true, true), 6 * P);
  // Baseline JPEG: libjpeg writes into our buffer as it reads the file. Progressive: whole-image coefficients, 2
  // bytes a sample (4:4:4 here: 3 samples a pixel).
  std::vector<uint8_t> jpeg = jpeg_header_only(1000, 1000);
  EXPECT_EQ(decode_memory(header(jpeg, ImageFormat::Jpeg), 5 * P, false, false, false), 8 * P);
  jpeg[3] = 0xC2;
  EXPECT_EQ(decode_memory(header(jpeg, ImageFormat::Jpeg), 5 * P, false, false, false), 14 * P);
}

}  // namespace
}  // namespace oe::media
