// Typed, validated model configuration from a Hugging Face config.json, in either layout:
//   flat  : model_type "nvomniembed", text_config / vision_config / audio_config at top level, tensors unprefixed;
//   nested: model_type "qwen2_5_omni", everything under thinker_config, tensors prefixed "thinker.".
// Every hyper-parameter of the towers comes from here; model code has no magic numbers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace oe::model {

enum class ConfigLayout { NvOmniEmbed, Qwen25Omni };
const char* layout_name(ConfigLayout l);  // "nvomniembed" | "qwen2_5_omni"

struct TextConfig {
  int64_t d_model = 0;     // hidden_size
  int64_t n_layers = 0;    // num_hidden_layers
  int64_t n_heads = 0;     // num_attention_heads
  int64_t n_kv_heads = 0;  // num_key_value_heads
  int64_t d_head = 0;      // head_dim, else hidden_size / num_attention_heads
  int64_t d_ff = 0;        // intermediate_size
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  float rms_norm_eps = 0;
  float rope_theta = 0;
  std::vector<int> mrope_section;  // rope_scaling.mrope_section (or rope_parameters), sums to d_head / 2
  std::string hidden_act;          // must be "silu"
};

struct VisionConfig {
  int64_t depth = 0, d_model = 0, n_heads = 0, d_ff = 0, in_channels = 0, patch_size = 0, temporal_patch_size = 0,
          spatial_merge_size = 0, window_size = 0, out_d_model = 0;
  std::vector<int> fullatt_block_indexes;
  std::string hidden_act;  // must be "silu"
  // Not in config.json: the reference hard-codes them (spec §1.2).
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  int64_t d_head() const { return d_model / n_heads; }
};

struct AudioConfig {
  int64_t n_mel = 0, d_model = 0, n_layers = 0, n_heads = 0, d_ff = 0, max_source_positions = 0, n_window = 0,
          out_d_model = 0;
};

struct TokenIds {
  int64_t audio = 0, audio_start = 0, audio_end = 0, image = 0, video = 0, vision_start = 0, vision_end = 0;
  int64_t position_id_per_seconds = 0, seconds_per_chunk = 0;
};

struct ModelConfig {
  ConfigLayout layout = ConfigLayout::NvOmniEmbed;
  std::string model_type;
  std::string tensor_prefix;  // "" or "thinker."
  TextConfig text;
  VisionConfig vision;
  AudioConfig audio;
  TokenIds tokens;
  nlohmann::json raw;  // the file as read

  // Reads and validates `dir`/config.json; errors name the file and the missing or invalid key.
  static ModelConfig load(const std::filesystem::path& dir);
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
};

}  // namespace oe::model
