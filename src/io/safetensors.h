// Safetensors checkpoints: one file or shards listed by model.safetensors.index.json, memory-mapped read-only.
// Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [b, e]}, ...,
// "__metadata__": {...}}, then the data block; offsets are relative to the data block.
// Every header is validated against the file size at open: a truncated file, offsets outside the data block or
// overlapping, a byte count that disagrees with dtype × shape, an unknown dtype: each is an IoError/InvalidInput
// naming the file and the tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace oe::io {

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  const void* data = nullptr;  // into the mapping; valid while the Checkpoint lives
  size_t nbytes = 0;
  std::string file;            // file name, for messages
};

// One mapped .safetensors file.
class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return path_; }
  // Drops this process's resident pages of [data, data + nbytes) (madvise DONTNEED); re-reading pages them in.
  void release(const void* data, size_t nbytes) const;

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All tensors of a checkpoint folder (model.safetensors, or the shards named by model.safetensors.index.json),
// or of a single .safetensors file path.
class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& dir_or_file);

  bool has(const std::string& name) const;
  // Throws InvalidInput naming the tensor and the checkpoint when absent.
  const TensorInfo& get(const std::string& name) const;
  std::vector<std::string> names() const;
  size_t size() const { return index_.size(); }
  // Frees the resident pages of one tensor after it was copied or packed.
  void release(const std::string& name) const;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, std::pair<const TensorInfo*, const SafetensorsFile*>> index_;
};

// Streaming writer: the header is written from the specs, then each tensor's bytes are produced by `fill` into a
// buffer of exactly spec.nbytes and appended, so a multi-GB checkpoint never has to be held in memory.
struct TensorSpec {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  size_t nbytes() const { return static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype); }
};
using FillFn = std::function<void(const TensorSpec& spec, void* buffer)>;

// Writes one file (tensor data in the order given). Atomic: writes path + ".tmp" then renames.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorSpec>& specs, const FillFn& fill,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// Writes `dir`/model.safetensors when everything fits in one shard of max_shard_bytes, otherwise
// model-0000k-of-0000n.safetensors plus model.safetensors.index.json, as Hugging Face does.
void write_checkpoint(const std::filesystem::path& dir, const std::vector<TensorSpec>& specs, const FillFn& fill,
                      size_t max_shard_bytes = size_t(5) << 30);

DType dtype_from_safetensors(const std::string& s);  // "F32" | "BF16" | "F16" | "I32" | "I64" | "U8"

}  // namespace oe::io
