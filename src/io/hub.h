// Resolving --model to a local checkpoint folder: a folder given directly, or a Hugging Face Hub id looked up in
// the local Hugging Face cache (the layout huggingface_hub writes; downloading is hub_download.h's).
#pragma once

#include <filesystem>
#include <string>

namespace oe::io {

// The Hugging Face hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
// ~/.cache/huggingface/hub (empty variables count as unset). `source`, when given, receives which rule chose it
// (e.g. "$HF_HUB_CACHE"), for messages.
std::filesystem::path hf_hub_cache_dir(std::string* source = nullptr);

// Resolves --model: an existing local folder is used as is; otherwise `id` ("owner/name") is looked up in the
// Hugging Face cache (hf_hub_cache_dir()): folder models--owner--name, revision from refs/<revision> (a commit hash
// is also accepted directly), snapshot snapshots/<hash>/, which must contain config.json. When not found:
// InvalidInput whose message says exactly where it looked and how to get the weights (`omni-embed download`,
// `huggingface-cli download owner/name` or `git lfs clone`, or set HF_HOME), and that
// `omni-embed make-test-model` can write a random-weight model for trying the tool. A folder without config.json is
// also an error naming it.
std::filesystem::path resolve_model_path(const std::string& model, const std::string& revision = "main");

}  // namespace oe::io
