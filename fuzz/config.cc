// Fuzz target: a checkpoint's two configuration files. The input is written as both config.json
// (model::ModelConfig::load, typed and validated hyper-parameters) and preprocessor_config.json
// (model::PreprocessorConfig::load, the image processor's and the feature extractor's settings); a preprocessor
// configuration that loads is then used the way the processors use it (smart_resize with its pixel limits, the
// audio frame and token counts), so a value that validates must also be one they can run with.
#include <cstdint>

#include "fuzz_util.h"
#include "media/audio.h"
#include "media/image.h"
#include "model/config.h"
#include "model/preprocessor_config.h"

namespace {

namespace fs = std::filesystem;

void use_preprocessor_config(const oe::model::PreprocessorConfig& c) {
  for (const auto& size : {std::pair<int64_t, int64_t>{480, 640}, {28, 28}, {1, 300}, {4000, 30}}) {
    oe::fuzz::expect_clean([&] {
      const oe::media::ResizedSize r =
          oe::media::smart_resize(size.first, size.second, c.vision.factor(), c.vision.min_pixels, c.vision.max_pixels);
      if (r.height <= 0 || r.width <= 0) oe::fuzz::finding("smart_resize", "a side is not positive");
    });
  }
  for (const int64_t n : {int64_t{0}, int64_t{1}, int64_t{16000}, c.audio.max_samples, c.audio.max_samples + 1}) {
    (void)oe::media::audio_token_count(oe::media::audio_valid_frames(n, c.audio));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path config = oe::fuzz::write_input("config.json", data, size);
  oe::fuzz::expect_clean([&] { (void)oe::model::ModelConfig::load(config.parent_path()); }, config.string());

  const fs::path preprocessor = oe::fuzz::write_input("preprocessor_config.json", data, size);
  oe::fuzz::expect_clean(
      [&] { use_preprocessor_config(oe::model::PreprocessorConfig::load(preprocessor.parent_path())); },
      preprocessor.string());
  return 0;
}
