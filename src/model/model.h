// A loaded Omni-Embed-Nemotron (or base Qwen2.5-Omni thinker) checkpoint: config, tokenizer, prompt defaults and
// the towers that were asked for. Immutable once loaded and shared between threads; per-request state lives in
// the caller (Embedder).
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/compute.h"
#include "model/config.h"
#include "media/audio.h"
#include "media/image.h"
#include "model/audio_encoder.h"
#include "model/text_decoder.h"
#include "model/vision_encoder.h"
#include "text/prompt.h"
#include "text/tokenizer.h"

namespace oe::model {

struct LoadOptions {
  kernels::Compute compute = kernels::Compute::BF16;
  LoadProgress progress;  // called as the decoder's layers are packed
  bool load_vision = false;  // load the vision tower now rather than on first use
  // The kernel of every BF16 linear layer of the towers (Unsupported: amx on a CPU without AMX).
  kernels::Bf16Gemm bf16_gemm = kernels::Bf16Gemm::Auto;
  // A LoRA adapter folder in PEFT's layout (model/lora.h) applied to the decoder's weights as they are packed;
  // empty: none.
  std::filesystem::path adapter;
  // false: the text decoder keeps only its token embeddings (and the towers load as usual); its forward() then
  // refuses to run. For training, whose trainable decoder reads the layers from the checkpoint itself.
  bool decoder_layers = true;
};

class Model {
 public:
  // `dir`: a checkpoint folder (config.json, tokenizer.json, safetensors). Only the text decoder is read and
  // packed here; the vision and audio towers are neither read nor paged in (their tensors stay untouched in the
  // memory map) until first used. Errors carry the stage: "loading config", "loading tokenizer", "loading text
  // decoder".
  static std::shared_ptr<const Model> load(const std::filesystem::path& dir, const LoadOptions& options = {});

  const std::filesystem::path& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const text::Tokenizer& tokenizer() const { return *tokenizer_; }
  const TextDecoder& text_decoder() const { return *text_; }
  // The vision tower, loaded and packed on the first call (thread-safe; a failed load is retried by the next call).
  const VisionEncoder& vision_encoder() const;
  bool vision_loaded() const;
  // The audio tower, likewise loaded on the first call.
  const AudioEncoder& audio_encoder() const;
  bool audio_loaded() const;
  // The image processor's settings from preprocessor_config.json (defaults when absent).
  const media::VisionPreprocessConfig& vision_preprocess() const { return vision_preprocess_; }
  // The audio feature extractor's settings from the same file.
  const media::AudioFeatureConfig& audio_preprocess() const { return audio_preprocess_; }
  // Prompt defaults: the chat template's system turn and the prefixes from config_sentence_transformers.json.
  const text::PromptOptions& prompt_defaults() const { return prompts_; }
  kernels::Compute compute() const { return compute_; }
  kernels::Bf16Gemm bf16_gemm() const { return bf16_gemm_; }
  double load_seconds() const { return load_seconds_; }
  // Which weights these are: model_fingerprint(dir()), computed on the first call (only the index and the
  // evaluation need it, so loading for `embed` does not pay for it). Thread-safe.
  const std::string& fingerprint() const;
  // The fingerprints that also name these weights: the one earlier versions recorded in their indexes
  // (legacy_model_fingerprint), so such an index is still this model's.
  std::vector<std::string> fingerprint_aliases() const;
  // Whether an index's recorded fingerprint names these weights: the fingerprint, or one of its aliases.
  bool has_fingerprint(const std::string& recorded) const;
  // The LoRA adapter applied at load (LoadOptions::adapter; empty: none) and its lora_adapter_id (empty: none).
  const std::filesystem::path& adapter_dir() const { return adapter_dir_; }
  const std::string& adapter_id() const { return adapter_id_; }

 private:
  Model() = default;
  std::filesystem::path dir_;
  ModelConfig config_;
  std::unique_ptr<io::Checkpoint> ckpt_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::unique_ptr<TextDecoder> text_;
  mutable std::mutex vision_mutex_;
  mutable std::unique_ptr<VisionEncoder> vision_;
  mutable std::mutex audio_mutex_;
  mutable std::unique_ptr<AudioEncoder> audio_;
  media::VisionPreprocessConfig vision_preprocess_;
  media::AudioFeatureConfig audio_preprocess_;
  text::PromptOptions prompts_;
  kernels::Compute compute_ = kernels::Compute::BF16;
  kernels::Bf16Gemm bf16_gemm_ = kernels::Bf16Gemm::Auto;
  double load_seconds_ = 0;
  std::filesystem::path adapter_dir_;
  std::string adapter_id_;
  mutable std::once_flag fingerprint_once_;
  mutable std::string fingerprint_;
};

// Reads the prompts of config_sentence_transformers.json ({"prompts": {"query": ..., "document"|"passage": ...}})
// into `options` when the file exists; leaves the defaults otherwise.
void read_sentence_transformers_prompts(const std::filesystem::path& dir, text::PromptOptions& options);

// Which weights these are, however the checkpoint is split into shards: a SHA-256 over config.json, tokenizer.json
// and, for every tensor in name order, its name, dtype, shape and three 4 KiB samples of its bytes (start, middle,
// end; all of a smaller tensor). Cheap for a 9 GB checkpoint (at most 12 KiB read per tensor), and
// different for any two checkpoints an index could plausibly confuse (another model, another fine-tune, another
// random seed). An index records it so vectors from different weights are never mixed.
std::string model_fingerprint(const std::filesystem::path& dir);
// What earlier versions computed instead, per *.safetensors file (name, size, header, three 64 KiB samples of its
// data): the same weights split otherwise got another one. Kept to recognise the indexes that recorded it.
std::string legacy_model_fingerprint(const std::filesystem::path& dir);

}  // namespace oe::model
