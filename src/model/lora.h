// LoRA adapters of the text decoder (spec omni-embed-nemotron.md §5: r = 16, α = 32 on the decoder's attention and
// MLP projections), in PEFT's layout so that an adapter trained here loads in the Hugging Face ecosystem and one
// trained there loads here:
//   DIR/adapter_config.json          peft_type "LORA", r, lora_alpha, lora_dropout, target_modules, ...
//   DIR/adapter_model.safetensors    base_model.model.<prefix>model.layers.<i>.<module path>.lora_A.weight [r, n_in]
//                                    base_model.model.<prefix>model.layers.<i>.<module path>.lora_B.weight [n_out, r]
// The adapted projection is W + scale · B · A with scale = lora_alpha / r (PEFT's LoraLayer without rsLoRA).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/config.h"

namespace oe::model {

// The decoder projections LoRA can target, in the order of a layer's forward.
enum class LoraModule { Q, K, V, O, Gate, Up, Down };
inline constexpr int LORA_MODULES = 7;
inline constexpr std::array<LoraModule, LORA_MODULES> ALL_LORA_MODULES = {
    LoraModule::Q, LoraModule::K, LoraModule::V, LoraModule::O, LoraModule::Gate, LoraModule::Up, LoraModule::Down};

// PEFT's module name: "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj".
const char* lora_module_name(LoraModule m);
// Accepts the module name or its short form ("q", "gate", ...); InvalidInput listing the choices otherwise.
LoraModule parse_lora_module(const std::string& name);
// [n_out, n_in] of the module's weight in a decoder of config c.
std::array<int64_t, 2> lora_module_shape(const TextConfig& c, LoraModule m);

struct LoraConfig {
  int64_t r = 16;
  double alpha = 32;
  double dropout = 0.05;  // training only; inference ignores it
  std::vector<LoraModule> targets{ALL_LORA_MODULES.begin(), ALL_LORA_MODULES.end()};
  std::string base_model;  // adapter_config.json's base_model_name_or_path (informative)
  double scale() const { return alpha / static_cast<double>(r); }
  bool targets_module(LoraModule m) const;
};

// One adapted projection: ΔW = scale · B · A.
struct LoraWeights {
  int64_t n_in = 0, n_out = 0;
  std::vector<float> a;  // [r, n_in]  (PEFT's lora_A.weight)
  std::vector<float> b;  // [n_out, r] (PEFT's lora_B.weight)
  bool empty() const { return a.empty(); }
};

struct LoraAdapter {
  LoraConfig config;
  std::vector<std::array<LoraWeights, LORA_MODULES>> layers;  // [n_layers][module]; untargeted modules are empty

  LoraWeights& at(int64_t layer, LoraModule m) { return layers.at(static_cast<size_t>(layer))[static_cast<size_t>(m)]; }
  const LoraWeights& at(int64_t layer, LoraModule m) const {
    return layers.at(static_cast<size_t>(layer))[static_cast<size_t>(m)];
  }
  // Every parameter (A then B of each targeted module, layer by layer): for optimizers and checks.
  int64_t parameter_count() const;
};

// A fresh adapter for a decoder of config c, initialised as PEFT does by default (init_lora_weights=True): A from
// kaiming_uniform(a=√5), i.e. uniform in ±1/√n_in, B zeros, so the adapted model starts equal to the base. Seeded.
LoraAdapter init_lora_adapter(const LoraConfig& config, const TextConfig& c, uint64_t seed);

// Reads DIR (adapter_config.json + adapter_model.safetensors, F32/BF16/F16 tensors) for a decoder of config c whose
// checkpoint tensors carry `tensor_prefix` ("" or "thinker."). InvalidInput naming the file and tensor for anything
// that does not fit: another peft_type, use_dora / use_rslora / fan_in_fan_out, a shape that is not this model's,
// a missing or unexpected tensor, non-finite values.
LoraAdapter load_lora_adapter(const std::filesystem::path& dir, const TextConfig& c, const std::string& tensor_prefix);

// Writes DIR in PEFT's layout (fp32 tensors), each file atomically; creates DIR.
void save_lora_adapter(const LoraAdapter& adapter, const std::filesystem::path& dir, const std::string& tensor_prefix);

// w[n_out, n_in] (fp32, row-major) += scale · B · A.
void add_lora_delta(const LoraWeights& lw, double scale, float* w);

// Which adapter DIR holds: a SHA-256 over its adapter_config.json and adapter_model.safetensors (each after its
// name). An index records it so vectors of differently adapted weights are never mixed. IoError when unreadable.
std::string lora_adapter_id(const std::filesystem::path& dir);

}  // namespace oe::model
