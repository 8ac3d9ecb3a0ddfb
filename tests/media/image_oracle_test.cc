// Parity of the image path with Pillow 9.4 (the reference's PIL.Image.open + RGB conversion + Image.resize BICUBIC,
// then the Qwen2VL processor's normalise and patchify). tests/media/pil_oracle.py writes >= 50 varied test images
// (formats, modes, bit depths, sizes around the rounding and pixel limits, EXIF orientations) and Pillow's output
// for each; every decoded and resized pixel must be identical, and pixel_values within 1e-6.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "media/media_test_util.h"

namespace oe::media {
namespace {

using namespace oe::media::testing;
namespace fs = std::filesystem;

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

// The oracle's file prefix of a manifest case (pil_oracle.py case_prefix).
std::string case_stem(const nlohmann::json& c) {
  std::string stem = c.at("file").get<std::string>();
  for (char& ch : stem) ch = ch == '.' ? '_' : ch;
  if (c.contains("tag")) stem.append("_").append(c.at("tag").get<std::string>());
  return stem;
}

struct Tally {
  int cases = 0, decode_exact = 0, resize_exact = 0, pixel_values_checked = 0;
  double pixel_values_max_abs = 0.0;
};

// Compares pixel_values and the grid with the oracle's; the values are computed from the oracle's resized image so
// that a resize difference cannot hide or cause a normalisation difference.
void check_patches(const RgbImage& resized, const VisionPreprocessConfig& config, const fs::path& prefix,
                   Tally& tally) {
  const Tensor grid = io::read_npy(prefix.string() + ".grid.npy");
  ASSERT_EQ(grid.numel(), 3);
  const fs::path pv_file = prefix.string() + ".pixel_values.npy";
  if (!fs::exists(pv_file)) {  // outputs over 4 Mpx: the oracle writes only the grid
    EXPECT_EQ(grid.ptr<int64_t>()[1], resized.height / config.patch_size);
    EXPECT_EQ(grid.ptr<int64_t>()[2], resized.width / config.patch_size);
    return;
  }
  const RgbImage* frames[] = {&resized};
  const PixelPatches p = patchify(frames, config);
  EXPECT_EQ(p.grid_t, grid.ptr<int64_t>()[0]);
  EXPECT_EQ(p.grid_h, grid.ptr<int64_t>()[1]);
  EXPECT_EQ(p.grid_w, grid.ptr<int64_t>()[2]);
  const Tensor want = io::read_npy(pv_file);
  ASSERT_EQ(want.rank(), 2);
  ASSERT_EQ(want.dim(0), p.n_rows());
  ASSERT_EQ(want.dim(1), p.row_len);
  double max_abs = 0.0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    max_abs = std::max(max_abs, std::abs(double(p.values[i]) - double(want.ptr<float>()[i])));
  }
  EXPECT_LE(max_abs, 1e-6);
  ++tally.pixel_values_checked;
  tally.pixel_values_max_abs = std::max(tally.pixel_values_max_abs, max_abs);
}

void check_case(const fs::path& dir, const nlohmann::json& c, Tally& tally) {
  const std::string file = c.at("file").get<std::string>();
  const fs::path prefix = dir / case_stem(c);
  ImageDecodeOptions options;
  options.apply_exif_orientation = c.value("exif", false);
  const RgbImage want_decoded = read_rgb_npy(prefix.string() + ".decoded.npy");
  try {
    const RgbImage decoded = decode_image(dir / file, options);
    const std::string diff = image_difference(decoded, want_decoded);
    // A case may carry a tolerance, with the reason next to it in pil_oracle.py (CMYK TIFF).
    const int tolerance = c.value("decode_tolerance", 0);
    if (tolerance == 0) {
      EXPECT_EQ(diff, "") << "decoded pixels differ from Pillow's";
    } else {
      const int max_abs = max_abs_difference(decoded, want_decoded);
      EXPECT_TRUE(max_abs >= 0 && max_abs <= tolerance) << diff;
    }
    tally.decode_exact += diff.empty();
  } catch (const Error& e) {
    ADD_FAILURE() << "decode failed: " << e.what();
  }

  VisionPreprocessConfig config;
  config.min_pixels = c.value("min_pixels", config.min_pixels);
  config.max_pixels = c.value("max_pixels", config.max_pixels);
  const RgbImage want_resized = read_rgb_npy(prefix.string() + ".resized.npy");
  const ResizedSize size =
      smart_resize(want_decoded.height, want_decoded.width, config.factor(), config.min_pixels, config.max_pixels);
  EXPECT_EQ(size.height, want_resized.height) << "smart_resize";
  EXPECT_EQ(size.width, want_resized.width) << "smart_resize";
  const std::string diff = image_difference(resize_bicubic(want_decoded, size.width, size.height), want_resized);
  EXPECT_EQ(diff, "") << "resized pixels differ from Pillow's";
  tally.resize_exact += diff.empty();
  check_patches(want_resized, config, prefix, tally);
}

TEST(PillowOracle, GeneratedImagesDecodeResizeAndPatchifyExactly) {
  TempDir dir;
  ASSERT_TRUE(run_oracle(fmt::format("suite \"{}\"", dir.path().string()), dir / "oracle.log"));
  const nlohmann::json cases = read_json(dir / "manifest.json").at("cases");
  ASSERT_GE(cases.size(), 50u) << "the oracle wrote too few cases";
  Tally tally;
  for (const auto& c : cases) {
    SCOPED_TRACE(case_stem(c));
    check_case(dir.path(), c, tally);
    ++tally.cases;
  }
  // The expectations are Pillow 9.4's (Debian 12); other versions differ in places (16-bit grey PNG modes, GIF
  // frame loading), which the version in the summary helps to spot.
  const std::string version = read_json(dir / "reference.json").value("pillow_version", std::string("?"));
  std::printf("[ oracle   ] Pillow %s, %d images: %d decoded exactly, %d resized exactly, %d pixel_values "
              "compared (max |diff| %g)\n",
              version.c_str(), tally.cases, tally.decode_exact, tally.resize_exact, tally.pixel_values_checked,
              tally.pixel_values_max_abs);
}

TEST(PillowOracle, ResizeMatchesOnRandomSizes) {
  TempDir dir;
  ASSERT_TRUE(run_oracle(fmt::format("resize-cases \"{}\" --count 80", dir.path().string()), dir / "oracle.log"));
  const nlohmann::json cases = read_json(dir / "cases.json").at("cases");
  ASSERT_GE(cases.size(), 80u);
  int n_exact = 0;
  for (const auto& c : cases) {
    const std::string name = c.at("name").get<std::string>();
    const auto out = c.at("out").get<std::vector<int64_t>>();
    SCOPED_TRACE(fmt::format("{}: {}x{} -> {}x{}", name, c.at("in")[0].get<int64_t>(), c.at("in")[1].get<int64_t>(),
                             out[0], out[1]));
    const RgbImage in = read_rgb_npy(dir / (name + ".in.npy"));
    const RgbImage want = read_rgb_npy(dir / (name + ".out.npy"));
    const std::string diff = image_difference(resize_bicubic(in, out[0], out[1]), want);
    EXPECT_EQ(diff, "");
    n_exact += diff.empty();
  }
  std::printf("[ oracle   ] %d of %zu random resizes identical to Pillow\n", n_exact, cases.size());
}

// Damaged copies of the generated files (truncated at many points, bytes overwritten) must decode or throw an
// oe::Error, never crash or hang; ASan/UBSan builds run this too.
TEST(PillowOracle, DamagedFilesFailCleanly) {
  TempDir dir;
  ASSERT_TRUE(run_oracle(fmt::format("generate \"{}\"", dir.path().string()), dir / "oracle.log"));
  const nlohmann::json cases = read_json(dir / "manifest.json").at("cases");
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  int n_tried = 0, n_failed_cleanly = 0;
  for (const auto& c : cases) {
    const std::vector<uint8_t> original = read_bytes(dir / c.at("file").get<std::string>());
    if (original.size() > 300'000) continue;
    for (int k = 0; k < 24; ++k) {
      std::vector<uint8_t> bytes = original;
      if (k < 12) {  // cut somewhere in the k-th twelfth of the file
        const size_t cut = original.size() * static_cast<size_t>(k) / 12 + next() % (original.size() / 12 + 1);
        bytes.resize(std::min(cut, original.size() - 1));
      } else {
        for (int m = 0; m < 1 + k % 4; ++m) bytes[next() % bytes.size()] = static_cast<uint8_t>(next() >> 24);
      }
      ImageDecodeOptions options;
      options.apply_exif_orientation = true;
      ++n_tried;
      try {
        decode_image(bytes, c.at("file").get<std::string>(), options);
      } catch (const Error& e) {
        ++n_failed_cleanly;
        EXPECT_TRUE(e.kind() == ErrorKind::InvalidInput || e.kind() == ErrorKind::Unsupported) << e.what();
      }
    }
  }
  EXPECT_GT(n_failed_cleanly, n_tried / 4) << "damaged files should mostly be refused";
  std::printf("[ damaged  ] %d damaged files: %d refused with an error, the rest decoded\n", n_tried,
              n_failed_cleanly);
}

}  // namespace
}  // namespace oe::media
