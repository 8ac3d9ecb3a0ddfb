// Downloading a model repository from the Hugging Face Hub into the local cache, in the layout huggingface_hub
// writes (models--owner--name/{blobs,snapshots/<commit>,refs/<revision>}), so resolve_model_path() and Python
// tools find the same files. Partial files are resumed (HTTP Range); files already in the snapshot are skipped.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace oe::io {

struct DownloadOptions {
  std::string endpoint;  // "" = $HF_ENDPOINT, else https://huggingface.co
  std::string token;     // "" = $HF_TOKEN (sent as a bearer token when set)
  // Called during each file's transfer: (file name, bytes so far, total bytes or 0 when unknown).
  std::function<void(const std::string& file, int64_t done, int64_t total)> progress;
};

// Downloads every file of repository `id` ("owner/name") at `revision` into hf_hub_cache_dir() and returns the
// snapshot folder. IoError naming the URL on network or HTTP failures (a later call resumes); InvalidInput for a
// malformed id or a server answer naming unsafe paths.
std::filesystem::path download_model(const std::string& id, const std::string& revision,
                                     const DownloadOptions& options = {});

}  // namespace oe::io
