// LoRA adapters of the text decoder in PEFT's layout (see lora.h). The facts of the layout follow PEFT's
// LoraConfig (tuners/lora/config.py), get_peft_model_state_dict (utils/save_and_load.py: the adapter name is
// dropped from the keys, PeftModel prefixes them with "base_model.model.") and check_target_module_exists
// (tuners/tuners_utils.py: a str target_modules is a regex full-matched against each module's name, a list matches
// names and name suffixes).
#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <regex>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/hash.h"
#include "io/json.h"
#include "io/safetensors.h"

namespace oe::model {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* CONFIG_FILE = "adapter_config.json";
constexpr const char* WEIGHTS_FILE = "adapter_model.safetensors";
// What PeftModel puts in front of the base model's own module names in a saved state dict.
constexpr const char* PEFT_PREFIX = "base_model.model.";

bool is_attention(LoraModule m) { return m == LoraModule::Q || m == LoraModule::K || m == LoraModule::V || m == LoraModule::O; }

// "self_attn.q_proj", "mlp.gate_proj", ...: the module's path inside a decoder layer.
std::string module_path(LoraModule m) {
  return fmt::format("{}.{}", is_attention(m) ? "self_attn" : "mlp", lora_module_name(m));
}

// The module's name in the base model, as PEFT's target_modules sees it.
std::string module_key(const std::string& prefix, int64_t il, LoraModule m) {
  return fmt::format("{}model.layers.{}.{}", prefix, il, module_path(m));
}

std::string tensor_name(const std::string& prefix, int64_t il, LoraModule m, char which) {
  return fmt::format("{}{}.lora_{}.weight", PEFT_PREFIX, module_key(prefix, il, m), which);
}

std::string short_name(LoraModule m) {
  std::string s = lora_module_name(m);
  return s.substr(0, s.size() - 5);  // without "_proj"
}

// A regex that full-matches exactly the targeted decoder projections, with or without the nested layout's
// "thinker." in front, and none of the vision or audio towers' modules of the same names.
std::string target_regex(const std::vector<LoraModule>& targets) {
  std::vector<std::string> attn, mlp;
  for (LoraModule m : ALL_LORA_MODULES) {
    if (std::find(targets.begin(), targets.end(), m) == targets.end()) continue;
    (is_attention(m) ? attn : mlp).push_back(short_name(m));
  }
  std::vector<std::string> parts;
  if (!attn.empty()) parts.push_back(fmt::format("self_attn\\.({})_proj", fmt::join(attn, "|")));
  if (!mlp.empty()) parts.push_back(fmt::format("mlp\\.({})_proj", fmt::join(mlp, "|")));
  const std::string alt = parts.size() == 1 ? parts[0] : fmt::format("({})", fmt::join(parts, "|"));
  return "(thinker\\.)?model\\.layers\\.\\d+\\." + alt;
}

// lora_alpha as PEFT writes it: an integer when it is one.
json number_json(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) return static_cast<int64_t>(v);
  return v;
}

// The fields of adapter_config.json this engine cannot honour must hold their neutral value.
void check_neutral_fields(const json& j, const std::string& where) {
  auto is_false = [&](const char* key) { return !j.contains(key) || j[key].is_null() || j[key] == false; };
  auto is_empty = [&](const char* key) { return !j.contains(key) || j[key].is_null() || j[key].empty(); };
  if (!is_false("use_dora"))
    throw InvalidInput(fmt::format("{}: use_dora is set; DoRA adapters are not supported (only plain LoRA)", where));
  if (!is_false("use_rslora"))
    throw InvalidInput(fmt::format("{}: use_rslora is set; rank-stabilised LoRA is not supported", where));
  if (!is_false("fan_in_fan_out"))
    throw InvalidInput(fmt::format("{}: fan_in_fan_out is set; the decoder's projections are nn.Linear (false)", where));
  if (!is_false("lora_bias"))
    throw InvalidInput(fmt::format("{}: lora_bias is set; adapters with their own biases are not supported", where));
  if (j.contains("bias") && !j["bias"].is_null() && j["bias"] != "none")
    throw InvalidInput(fmt::format("{}: bias is {}; only \"none\" is supported", where, j["bias"].dump()));
  if (!is_empty("layers_to_transform"))
    throw InvalidInput(fmt::format("{}: layers_to_transform is {}; only adapters of every layer (null) are supported",
                                   where, j["layers_to_transform"].dump()));
  for (const char* key : {"rank_pattern", "alpha_pattern"})
    if (!is_empty(key))
      throw InvalidInput(fmt::format("{}: {} is {}; per-module ranks and alphas are not supported (must be empty)",
                                     where, key, j[key].dump()));
  if (!is_empty("modules_to_save"))
    throw InvalidInput(fmt::format("{}: modules_to_save is {}; adapters that replace whole modules are not supported",
                                   where, j["modules_to_save"].dump()));
  if (!is_empty("layer_replication"))
    throw InvalidInput(fmt::format("{}: layer_replication is not supported", where));
}

// The decoder modules target_modules names (as in lora.h's LoraModule), for module names with `prefix`.
std::vector<LoraModule> config_targets(const json& t, const TextConfig& c, const std::string& prefix,
                                       const std::string& where) {
  std::vector<LoraModule> out;
  if (t.is_array()) {
    for (const auto& v : t) {
      if (!v.is_string()) throw InvalidInput(fmt::format("{}: target_modules must hold strings", where));
      const std::string name = v.get<std::string>();
      bool known = false;
      for (LoraModule m : ALL_LORA_MODULES) known |= name == lora_module_name(m);
      if (!known)
        throw InvalidInput(fmt::format("{}: target_modules names \"{}\", which is not one of the decoder projections "
                                       "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj",
                                       where, name));
      const LoraModule m = parse_lora_module(name);
      if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
    }
  } else if (t.is_string()) {
    std::regex re;
    try {
      re = std::regex(t.get<std::string>());
    } catch (const std::regex_error& e) {
      throw InvalidInput(fmt::format("{}: target_modules {} is not a regular expression this engine reads ({})", where,
                                     t.dump(), e.what()));
    }
    // Which projections it matches, the same in every layer.
    for (LoraModule m : ALL_LORA_MODULES) {
      int64_t matched = 0;
      for (int64_t il = 0; il < c.n_layers; ++il) matched += std::regex_match(module_key(prefix, il, m), re) ? 1 : 0;
      if (matched == c.n_layers) out.push_back(m);
      else if (matched != 0)
        throw InvalidInput(fmt::format("{}: target_modules {} matches {} in {} of {} layers; only adapters of every "
                                       "layer are supported",
                                       where, t.dump(), lora_module_name(m), matched, c.n_layers));
    }
  } else {
    throw InvalidInput(fmt::format("{}: target_modules must be a list of module names or a regular expression", where));
  }
  if (out.empty())
    throw InvalidInput(fmt::format("{}: target_modules {} targets none of the text decoder's projections", where,
                                   t.dump()));
  std::sort(out.begin(), out.end());
  return out;
}

LoraConfig read_config(const json& j, const fs::path& path) {
  const std::string where = path.string();
  if (!j.is_object()) throw InvalidInput(fmt::format("{}: expected a JSON object", where));
  if (!j.contains("peft_type") || j["peft_type"] != "LORA")
    throw InvalidInput(fmt::format("{}: peft_type is {}, expected \"LORA\"", where,
                                   j.contains("peft_type") ? j["peft_type"].dump() : "absent"));
  check_neutral_fields(j, where);
  LoraConfig cfg;
  cfg.r = io::json_integer(j, "r");
  if (cfg.r <= 0) throw InvalidInput(fmt::format("{}: r must be positive, not {}", where, cfg.r));
  if (!j.contains("lora_alpha") || !j["lora_alpha"].is_number())
    throw InvalidInput(fmt::format("{}: lora_alpha must be a number", where));
  cfg.alpha = j["lora_alpha"].get<double>();
  if (!std::isfinite(cfg.alpha)) throw InvalidInput(fmt::format("{}: lora_alpha must be finite", where));
  cfg.dropout = j.contains("lora_dropout") && j["lora_dropout"].is_number() ? j["lora_dropout"].get<double>() : 0.0;
  if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
    cfg.base_model = j["base_model_name_or_path"].get<std::string>();
  if (!j.contains("target_modules") || j["target_modules"].is_null())
    throw InvalidInput(fmt::format("{}: target_modules is missing", where));
  return cfg;
}

// The checkpoint prefix the adapter's tensors use ("" or "thinker."): PEFT names them after the model class it
// wrapped, which need not be the layout of the checkpoint they are applied to.
std::string tensor_prefix_of(const io::Checkpoint& ckpt, const std::string& fallback) {
  const std::string nested = std::string(PEFT_PREFIX) + "thinker.";
  for (const std::string& name : ckpt.names()) {
    if (name.rfind(nested, 0) == 0) return "thinker.";
    if (name.rfind(std::string(PEFT_PREFIX) + "model.", 0) == 0) return "";
  }
  return fallback;
}

// One tensor as floats, checked for shape, dtype and finiteness; the adapter's tensors must be of one size.
std::vector<float> read_tensor(const io::Checkpoint& ckpt, const std::string& name, const Shape& shape,
                               int64_t config_r, const std::string& where) {
  if (!ckpt.has(name))
    throw InvalidInput(fmt::format("{}: missing tensor \"{}\" (expected shape {})", where, name, shape_str(shape)));
  const io::TensorInfo& t = ckpt.get(name);
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
    throw InvalidInput(fmt::format("{}: tensor \"{}\" has dtype {}; expected F32, BF16 or F16", where, name,
                                   dtype_name(t.dtype)));
  if (t.shape != shape) {
    // Say which it is: another rank than adapter_config.json's r, or another model.
    const std::string a_suffix = ".lora_A.weight";
    const bool is_a = name.size() > a_suffix.size() &&
                      name.compare(name.size() - a_suffix.size(), a_suffix.size(), a_suffix) == 0;
    const bool rank_only = t.shape.size() == 2 && (is_a ? t.shape[1] == shape[1] : t.shape[0] == shape[0]);
    throw InvalidInput(fmt::format("{}: tensor \"{}\" has shape {}, expected {}{}", where, name, shape_str(t.shape),
                                   shape_str(shape),
                                   rank_only ? fmt::format(" (its rank is not adapter_config.json's r = {})", config_r)
                                             : std::string(" (an adapter of another model?)")));
  }
  std::vector<float> out(static_cast<size_t>(shape_numel(shape)));
  convert_to_f32(t.data, t.dtype, out.size(), out.data());
  for (size_t i = 0; i < out.size(); ++i)
    if (!std::isfinite(out[i]))
      throw InvalidInput(fmt::format("{}: tensor \"{}\" holds a non-finite value ({}) at element {}", where, name,
                                     out[i], i));
  return out;
}

}  // namespace

const char* lora_module_name(LoraModule m) {
  switch (m) {
    case LoraModule::Q: return "q_proj";
    case LoraModule::K: return "k_proj";
    case LoraModule::V: return "v_proj";
    case LoraModule::O: return "o_proj";
    case LoraModule::Gate: return "gate_proj";
    case LoraModule::Up: return "up_proj";
    case LoraModule::Down: return "down_proj";
  }
  return "?";
}

LoraModule parse_lora_module(const std::string& name) {
  for (LoraModule m : ALL_LORA_MODULES)
    if (name == lora_module_name(m) || name == short_name(m)) return m;
  throw InvalidInput(fmt::format("unknown LoRA target module \"{}\": choose from q_proj, k_proj, v_proj, o_proj, "
                                 "gate_proj, up_proj, down_proj (or q, k, v, o, gate, up, down)",
                                 name));
}

std::array<int64_t, 2> lora_module_shape(const TextConfig& c, LoraModule m) {
  const int64_t q_dim = c.n_heads * c.d_head, kv_dim = c.n_kv_heads * c.d_head;
  switch (m) {
    case LoraModule::Q: return {q_dim, c.d_model};
    case LoraModule::K:
    case LoraModule::V: return {kv_dim, c.d_model};
    case LoraModule::O: return {c.d_model, q_dim};
    case LoraModule::Gate:
    case LoraModule::Up: return {c.d_ff, c.d_model};
    case LoraModule::Down: return {c.d_model, c.d_ff};
  }
  return {0, 0};
}

bool LoraConfig::targets_module(LoraModule m) const {
  return std::find(targets.begin(), targets.end(), m) != targets.end();
}

int64_t LoraAdapter::parameter_count() const {
  int64_t n = 0;
  for (const auto& layer : layers)
    for (const LoraWeights& w : layer) n += static_cast<int64_t>(w.a.size() + w.b.size());
  return n;
}

LoraAdapter init_lora_adapter(const LoraConfig& config, const TextConfig& c, uint64_t seed) {
  if (config.r <= 0) throw InvalidInput(fmt::format("LoRA rank r must be positive, not {}", config.r));
  if (config.targets.empty()) throw InvalidInput("LoRA needs at least one target module");
  LoraAdapter adapter;
  adapter.config = config;
  adapter.layers.resize(static_cast<size_t>(c.n_layers));
  std::mt19937_64 rng(seed);
  for (int64_t il = 0; il < c.n_layers; ++il) {
    for (LoraModule m : ALL_LORA_MODULES) {
      if (!config.targets_module(m)) continue;
      const auto [n_out, n_in] = lora_module_shape(c, m);
      LoraWeights& w = adapter.at(il, m);
      w.n_in = n_in;
      w.n_out = n_out;
      // kaiming_uniform_(a=√5) on [r, n_in]: gain √(2 / (1 + 5)), bound gain · √(3 / n_in) = 1 / √n_in.
      const double bound = 1.0 / std::sqrt(static_cast<double>(n_in));
      std::uniform_real_distribution<double> u(-bound, bound);
      w.a.resize(static_cast<size_t>(config.r * n_in));
      for (float& x : w.a) x = static_cast<float>(u(rng));
      w.b.assign(static_cast<size_t>(n_out * config.r), 0.0f);
    }
  }
  return adapter;
}

LoraAdapter load_lora_adapter(const fs::path& dir, const TextConfig& c, const std::string& tensor_prefix) {
  const fs::path config_path = dir / CONFIG_FILE, weights_path = dir / WEIGHTS_FILE;
  if (!fs::is_directory(dir))
    throw InvalidInput(fmt::format("adapter {} is not a folder (expected {} and {} in it)", dir.string(), CONFIG_FILE,
                                   WEIGHTS_FILE));
  if (!fs::exists(weights_path))
    throw InvalidInput(fmt::format("adapter {}: no {} (a PEFT adapter saved with safe_serialization)", dir.string(),
                                   WEIGHTS_FILE));
  LoraAdapter adapter;
  const json j = io::read_json_file(config_path);
  adapter.config = read_config(j, config_path);
  const io::Checkpoint ckpt = io::Checkpoint::open(weights_path);
  const std::string where = weights_path.string();
  const std::string prefix = tensor_prefix_of(ckpt, tensor_prefix);
  adapter.config.targets = config_targets(j["target_modules"], c, prefix, config_path.string());
  const int64_t r = adapter.config.r;

  std::set<std::string> expected;
  adapter.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t il = 0; il < c.n_layers; ++il) {
    for (LoraModule m : adapter.config.targets) {
      const auto [n_out, n_in] = lora_module_shape(c, m);
      LoraWeights& w = adapter.at(il, m);
      w.n_in = n_in;
      w.n_out = n_out;
      const std::string a_name = tensor_name(prefix, il, m, 'A'), b_name = tensor_name(prefix, il, m, 'B');
      w.a = read_tensor(ckpt, a_name, {r, n_in}, r, where);
      w.b = read_tensor(ckpt, b_name, {n_out, r}, r, where);
      expected.insert(a_name);
      expected.insert(b_name);
    }
  }
  for (const std::string& name : ckpt.names()) {
    if (expected.count(name)) continue;
    // A decoder projection adapter_config.json does not target, a layer the model lacks, or another tower's module.
    static const std::regex decoder_tensor(
        R"(base_model\.model\.(thinker\.)?model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.lora_[AB]\.weight)");
    std::smatch mm;
    std::string why = "only LoRA weights of the text decoder's projections are supported";
    if (std::regex_match(name, mm, decoder_tensor))
      why = mm[2].length() > 9 || std::stoll(mm[2].str()) >= c.n_layers
                ? fmt::format("the model has {} layers", c.n_layers)
                : fmt::format("adapter_config.json's target_modules does not target {}", mm[4].str());
    throw InvalidInput(fmt::format("{}: unexpected tensor \"{}\" ({})", where, name, why));
  }
  return adapter;
}

void save_lora_adapter(const LoraAdapter& adapter, const fs::path& dir, const std::string& tensor_prefix) {
  const LoraConfig& cfg = adapter.config;
  OE_CHECK(cfg.r > 0 && !cfg.targets.empty());
  std::vector<io::TensorSpec> specs;
  std::vector<const std::vector<float>*> data;
  for (size_t il = 0; il < adapter.layers.size(); ++il) {
    for (LoraModule m : ALL_LORA_MODULES) {
      const LoraWeights& w = adapter.layers[il][static_cast<size_t>(m)];
      if (!cfg.targets_module(m)) continue;
      if (w.empty() || w.a.size() != static_cast<size_t>(cfg.r * w.n_in) ||
          w.b.size() != static_cast<size_t>(w.n_out * cfg.r))
        throw InvalidInput(fmt::format("saving the adapter: layer {} {} does not hold r = {} weights of [{}, {}]", il,
                                       lora_module_name(m), cfg.r, w.n_out, w.n_in));
      specs.push_back({tensor_name(tensor_prefix, static_cast<int64_t>(il), m, 'A'), DType::F32, {cfg.r, w.n_in}});
      data.push_back(&w.a);
      specs.push_back({tensor_name(tensor_prefix, static_cast<int64_t>(il), m, 'B'), DType::F32, {w.n_out, cfg.r}});
      data.push_back(&w.b);
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("cannot create the adapter folder {}: {}", dir.string(), ec.message()));
  size_t next = 0;
  io::write_safetensors(dir / WEIGHTS_FILE, specs, [&](const io::TensorSpec& s, void* buffer) {
    const std::vector<float>& v = *data[next++];
    OE_CHECK(v.size() * sizeof(float) == s.nbytes());
    std::memcpy(buffer, v.data(), s.nbytes());
  });

  // What PEFT's LoraConfig reads back (PeftConfig.from_pretrained), in its own key names.
  json j = {{"peft_type", "LORA"},
            {"task_type", "FEATURE_EXTRACTION"},
            {"base_model_name_or_path", cfg.base_model.empty() ? json(nullptr) : json(cfg.base_model)},
            {"revision", nullptr},
            {"inference_mode", true},
            {"r", cfg.r},
            {"lora_alpha", number_json(cfg.alpha)},
            {"lora_dropout", cfg.dropout},
            {"target_modules", target_regex(cfg.targets)},
            {"exclude_modules", nullptr},
            {"bias", "none"},
            {"fan_in_fan_out", false},
            {"use_rslora", false},
            {"use_dora", false},
            {"init_lora_weights", true},
            {"modules_to_save", nullptr},
            {"layers_to_transform", nullptr},
            {"layers_pattern", nullptr},
            {"rank_pattern", json::object()},
            {"alpha_pattern", json::object()},
            {"auto_mapping", nullptr}};
  io::write_json_file(dir / CONFIG_FILE, j);
}

void add_lora_delta(const LoraWeights& lw, double scale, float* w) {
  OE_CHECK(!lw.empty() && lw.n_in > 0 && lw.n_out > 0);
  const int64_t r = static_cast<int64_t>(lw.a.size()) / lw.n_in;
  OE_CHECK(r * lw.n_in == static_cast<int64_t>(lw.a.size()) && static_cast<int64_t>(lw.b.size()) == lw.n_out * r);
  const float s = static_cast<float>(scale);
  // Row o of W gains Σ_k (s · B[o, k]) · A[k, :].
  for (int64_t o = 0; o < lw.n_out; ++o) {
    float* row = w + o * lw.n_in;
    for (int64_t k = 0; k < r; ++k) {
      const float coef = s * lw.b[static_cast<size_t>(o * r + k)];
      if (coef == 0.0f) continue;
      const float* a = lw.a.data() + k * lw.n_in;
      for (int64_t i = 0; i < lw.n_in; ++i) row[i] += coef * a[i];
    }
  }
}

std::string lora_adapter_id(const fs::path& dir) {
  io::Sha256 h;
  for (const char* name : {CONFIG_FILE, WEIGHTS_FILE}) {
    h.update(name).update(std::string_view("\0", 1));
    h.update_file(dir / name);
  }
  return h.hex();
}

}  // namespace oe::model
