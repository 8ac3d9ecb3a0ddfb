#include "model/preprocessor_config.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json.h"

namespace oe::model {
namespace {

using nlohmann::json;

std::array<float, 3> json_triplet(const json& j, const char* key, std::array<float, 3> fallback) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  auto is_float = [](const json& x) {  // a double past float's range has no float value (the cast would be undefined)
    return x.is_number() && std::fabs(x.get<double>()) <= std::numeric_limits<float>::max();
  };
  if (!v.is_array() || v.size() != 3 || !is_float(v[0]) || !is_float(v[1]) || !is_float(v[2]))
    throw InvalidInput(fmt::format("'{}' must be an array of 3 numbers within float's range, got {}", key, v.dump()));
  return {v[0].get<float>(), v[1].get<float>(), v[2].get<float>()};
}

media::VisionPreprocessConfig vision_from_json(const json& j) {
  media::VisionPreprocessConfig c;
  c.patch_size = io::json_positive_int(j, "patch_size", c.patch_size);
  c.temporal_patch_size = io::json_positive_int(j, "temporal_patch_size", c.temporal_patch_size);
  c.merge_size = io::json_positive_int(j, "merge_size", c.merge_size);
  // Newer transformers write the pixel limits as size.shortest_edge / size.longest_edge.
  const json size = j.contains("size") && j.at("size").is_object() ? j.at("size") : json::object();
  c.min_pixels = io::json_positive_int(j, "min_pixels", io::json_positive_int(size, "shortest_edge", c.min_pixels));
  c.max_pixels = io::json_positive_int(j, "max_pixels", io::json_positive_int(size, "longest_edge", c.max_pixels));
  c.mean = json_triplet(j, "image_mean", c.mean);
  c.std = json_triplet(j, "image_std", c.std);
  media::validate(c);
  return c;
}

media::AudioFeatureConfig audio_from_json(const json& j) {
  media::AudioFeatureConfig c;
  c.n_mel = io::json_positive_int(j, "feature_size", c.n_mel);
  c.sampling_rate = io::json_positive_int(j, "sampling_rate", c.sampling_rate);
  c.n_fft = io::json_positive_int(j, "n_fft", c.n_fft);
  c.hop_length = io::json_positive_int(j, "hop_length", c.hop_length);
  c.max_samples = io::json_positive_int(j, "n_samples", c.max_samples);
  media::validate(c);
  return c;
}

}  // namespace

PreprocessorConfig PreprocessorConfig::load(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / "preprocessor_config.json";
  PreprocessorConfig c;
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return c;
  const json j = io::read_json_file(file);
  with_context(file.string(), [&] {
    if (!j.is_object()) throw InvalidInput("expected a JSON object");
    c.vision = vision_from_json(j);
    c.audio = audio_from_json(j);
  });
  return c;
}

}  // namespace oe::model
