// Merging a LoRA adapter into a checkpoint (`omni-embed merge-adapter`): a complete Hugging Face checkpoint folder
// whose adapted decoder projections are W + scale · B · A, so that any loader (this engine without --adapter,
// transformers without PEFT) gives the adapted model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>

namespace oe::model {

struct MergeOptions {
  // Called as tensors are written: (bytes written so far, bytes of all tensors).
  std::function<void(uint64_t done, uint64_t total)> progress;
  size_t max_shard_bytes = size_t(5) << 30;  // as io::write_checkpoint
};

// Writes `out_dir`: every file of `model_dir` but its safetensors copied (config, tokenizer, preprocessor, ...),
// and every tensor copied in its own dtype except the projections the adapter targets, which become
// W + scale · B · A computed in fp32 and stored in the tensor's dtype (rounded to nearest even for BF16).
// Atomic: everything goes to a sibling folder `out_dir`.tmp-<pid> that is renamed onto `out_dir` at the end (and
// removed on failure). InvalidInput when `out_dir` exists and is not an empty folder, or when the adapter does not
// fit the model (load_lora_adapter's errors).
void merge_lora_checkpoint(const std::filesystem::path& model_dir, const std::filesystem::path& adapter_dir,
                           const std::filesystem::path& out_dir, const MergeOptions& options = {});

}  // namespace oe::model
