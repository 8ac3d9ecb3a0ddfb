#include "model/config.h"

#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "io/json.h"

namespace oe::model {
namespace {

using nlohmann::json;

// Reads typed keys of one JSON object and names the object in every error.
class Reader {
 public:
  Reader(const json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) throw InvalidInput(fmt::format("{}: expected a JSON object", where_));
  }
  const json& at(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) throw InvalidInput(fmt::format("{}: missing required key \"{}\"", where_, key));
    return *it;
  }
  bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  int64_t integer(const char* key, int64_t min_value = 1) const {
    const json& v = at(key);
    if (!v.is_number_integer()) throw InvalidInput(fmt::format("{}: \"{}\" must be an integer, got {}", where_, key, v.dump()));
    int64_t x = v.get<int64_t>();
    if (x < min_value) throw InvalidInput(fmt::format("{}: \"{}\" must be >= {}, got {}", where_, key, min_value, x));
    return x;
  }
  int64_t integer_or(const char* key, int64_t fallback) const { return has(key) ? integer(key) : fallback; }
  std::string string(const char* key) const {
    const json& v = at(key);
    if (!v.is_string()) throw InvalidInput(fmt::format("{}: \"{}\" must be a string, got {}", where_, key, v.dump()));
    return v.get<std::string>();
  }
  float number(const char* key) const {
    const json& v = at(key);
    // A double past float's range has no float value (the cast would be undefined).
    if (!v.is_number() || std::fabs(v.get<double>()) > std::numeric_limits<float>::max())
      throw InvalidInput(fmt::format("{}: \"{}\" must be a number within float's range, got {}", where_, key, v.dump()));
    return v.get<float>();
  }
  std::vector<int> int_list(const json& v, const char* key) const {
    if (!v.is_array()) throw InvalidInput(fmt::format("{}: \"{}\" must be a list of integers", where_, key));
    std::vector<int> out;
    for (const auto& e : v) {
      if (!e.is_number_integer()) throw InvalidInput(fmt::format("{}: \"{}\" must be a list of integers", where_, key));
      out.push_back(e.get<int>());
    }
    return out;
  }
  std::vector<int> int_list(const char* key) const { return int_list(at(key), key); }
  Reader sub(const char* key) const { return Reader(at(key), where_ + "." + key); }
  const std::string& where() const { return where_; }
  const json& j() const { return j_; }

 private:
  const json& j_;
  std::string where_;
};

TextConfig parse_text(const Reader& r) {
  TextConfig t;
  t.d_model = r.integer("hidden_size");
  t.n_layers = r.integer("num_hidden_layers");
  t.n_heads = r.integer("num_attention_heads");
  t.n_kv_heads = r.integer("num_key_value_heads");
  t.d_head = r.integer_or("head_dim", t.d_model / t.n_heads);
  t.d_ff = r.integer("intermediate_size");
  t.vocab_size = r.integer("vocab_size");
  t.max_position_embeddings = r.integer_or("max_position_embeddings", 32768);
  t.rms_norm_eps = r.number("rms_norm_eps");
  t.rope_theta = r.number("rope_theta");
  t.hidden_act = r.has("hidden_act") ? r.string("hidden_act") : "silu";
  // transformers 4.x writes rope_scaling, v5 rope_parameters.
  const char* rope_key = r.has("rope_scaling") ? "rope_scaling" : "rope_parameters";
  Reader rope = r.sub(rope_key);
  t.mrope_section = rope.int_list("mrope_section");

  if (t.n_heads % t.n_kv_heads != 0)
    throw InvalidInput(fmt::format("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", r.where(),
                                   t.n_heads, t.n_kv_heads));
  if (t.d_head % 2 != 0) throw InvalidInput(fmt::format("{}: head_dim {} must be even", r.where(), t.d_head));
  int sum = std::accumulate(t.mrope_section.begin(), t.mrope_section.end(), 0);
  if (t.mrope_section.size() != 3 || sum != t.d_head / 2)
    throw InvalidInput(fmt::format("{}: mrope_section must have 3 entries summing to head_dim/2 = {}, got [{}]",
                                   r.where(), t.d_head / 2, fmt::join(t.mrope_section, ", ")));
  if (t.hidden_act != "silu")
    throw Unsupported(fmt::format("{}: hidden_act \"{}\" (only silu is implemented)", r.where(), t.hidden_act));
  return t;
}

VisionConfig parse_vision(const Reader& r) {
  VisionConfig v;
  v.depth = r.integer("depth");
  v.d_model = r.integer("hidden_size");
  v.n_heads = r.integer("num_heads");
  v.d_ff = r.integer("intermediate_size");
  v.in_channels = r.has("in_channels") ? r.integer("in_channels") : r.integer("in_chans");
  v.patch_size = r.integer("patch_size");
  v.temporal_patch_size = r.integer("temporal_patch_size");
  v.spatial_merge_size = r.integer("spatial_merge_size");
  v.window_size = r.integer("window_size");
  v.out_d_model = r.integer("out_hidden_size");
  v.fullatt_block_indexes = r.int_list("fullatt_block_indexes");
  v.hidden_act = r.has("hidden_act") ? r.string("hidden_act") : "silu";
  if (v.hidden_act != "silu")
    throw Unsupported(fmt::format("{}: hidden_act \"{}\" (only silu is implemented)", r.where(), v.hidden_act));
  if (v.d_model % v.n_heads != 0 || (v.d_model / v.n_heads) % 4 != 0)
    throw InvalidInput(fmt::format("{}: hidden_size {} / num_heads {} must be a whole head size divisible by 4 "
                                   "(the 2-D rotary splits it in row and column halves)",
                                   r.where(), v.d_model, v.n_heads));
  const int64_t merged_patch = v.spatial_merge_size * v.patch_size;
  if (v.window_size % merged_patch != 0)
    throw InvalidInput(fmt::format("{}: window_size {} is not a multiple of spatial_merge_size·patch_size = {}",
                                   r.where(), v.window_size, merged_patch));
  for (int b : v.fullatt_block_indexes)
    if (b < 0 || b >= v.depth)
      throw InvalidInput(fmt::format("{}: fullatt_block_indexes has {}, outside [0, depth = {})", r.where(), b, v.depth));
  return v;
}

AudioConfig parse_audio(const Reader& r) {
  AudioConfig a;
  a.n_mel = r.integer("num_mel_bins");
  a.d_model = r.integer("d_model");
  a.n_layers = r.integer("encoder_layers");
  a.n_heads = r.integer("encoder_attention_heads");
  a.d_ff = r.integer("encoder_ffn_dim");
  a.max_source_positions = r.integer("max_source_positions");
  a.n_window = r.integer("n_window");
  a.out_d_model = r.integer("output_dim");
  return a;
}

TokenIds parse_tokens(const Reader& r) {
  TokenIds t;
  t.audio = r.integer("audio_token_index", 0);
  t.image = r.integer("image_token_index", 0);
  t.video = r.integer("video_token_index", 0);
  t.audio_start = r.integer("audio_start_token_id", 0);
  t.audio_end = r.integer("audio_end_token_id", 0);
  t.vision_start = r.integer("vision_start_token_id", 0);
  t.vision_end = r.integer("vision_end_token_id", 0);
  t.position_id_per_seconds = r.integer("position_id_per_seconds");
  t.seconds_per_chunk = r.integer("seconds_per_chunk");
  return t;
}

}  // namespace

const char* layout_name(ConfigLayout l) { return l == ConfigLayout::NvOmniEmbed ? "nvomniembed" : "qwen2_5_omni"; }

ModelConfig ModelConfig::from_json(const json& j, const std::string& source) {
  Reader top(j, source);
  ModelConfig c;
  c.raw = j;
  c.model_type = top.has("model_type") ? top.string("model_type") : "";
  // The nested layout is recognised by its thinker_config, whatever the model_type says.
  bool nested = top.has("thinker_config");
  if (!nested && c.model_type != "nvomniembed" && !top.has("text_config"))
    throw InvalidInput(fmt::format("{}: neither \"thinker_config\" (qwen2_5_omni layout) nor \"text_config\" "
                                   "(nvomniembed layout) found; is this an Omni-Embed-Nemotron / Qwen2.5-Omni config?",
                                   source));
  c.layout = nested ? ConfigLayout::Qwen25Omni : ConfigLayout::NvOmniEmbed;
  c.tensor_prefix = nested ? "thinker." : "";
  Reader body = nested ? top.sub("thinker_config") : top;
  c.text = parse_text(body.sub("text_config"));
  c.vision = parse_vision(body.sub("vision_config"));
  c.audio = parse_audio(body.sub("audio_config"));
  c.tokens = parse_tokens(body);
  return c;
}

ModelConfig ModelConfig::load(const std::filesystem::path& dir) {
  auto path = dir / "config.json";
  return from_json(io::read_json_file(path), path.string());
}

}  // namespace oe::model
