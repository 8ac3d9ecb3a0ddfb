// Safetensors writer: streams the header and then each tensor's bytes (produced by a fill callback into one
// reusable buffer), so writing a multi-GB checkpoint needs memory for one tensor only.
#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "io/safetensors.h"

namespace oe::io {

namespace fs = std::filesystem;

namespace {

void validate_specs(const fs::path& path, const std::vector<TensorSpec>& specs) {
  std::set<std::string> seen;
  for (const TensorSpec& s : specs) {
    if (s.name.empty() || s.name == "__metadata__") {
      throw InvalidInput(fmt::format("{}: invalid tensor name '{}'", path.string(), s.name));
    }
    if (!seen.insert(s.name).second) {
      throw InvalidInput(fmt::format("{}: tensor '{}' is listed twice", path.string(), s.name));
    }
    for (int64_t d : s.shape) {
      if (d < 0) {
        throw InvalidInput(fmt::format("{}: tensor '{}' has a negative dimension in {}", path.string(), s.name,
                                       shape_str(s.shape)));
      }
    }
  }
}

// The JSON header, padded with spaces to a multiple of 8 bytes so the data block starts 8-byte aligned.
std::string make_header(const std::vector<TensorSpec>& specs, const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const TensorSpec& s : specs) {
    const uint64_t n = s.nbytes();
    h[s.name] = {{"dtype", dtype_name(s.dtype)}, {"shape", s.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string text = h.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

}  // namespace

void write_safetensors(const fs::path& path, const std::vector<TensorSpec>& specs, const FillFn& fill,
                       const std::map<std::string, std::string>& metadata) {
  validate_specs(path, specs);
  const std::string header = make_header(specs, metadata);
  size_t max_bytes = 1;
  for (const TensorSpec& s : specs) max_bytes = std::max(max_bytes, s.nbytes());

  AtomicFile out(path);
  const uint64_t header_len = header.size();  // little-endian on every supported host
  out.write(&header_len, 8);
  out.write(header);
  AlignedPtr<uint8_t> buffer = aligned_array<uint8_t>(max_bytes);
  for (const TensorSpec& s : specs) {
    fill(s, buffer.get());
    out.write(buffer.get(), s.nbytes());
  }
  out.commit();
}

void write_checkpoint(const fs::path& dir, const std::vector<TensorSpec>& specs, const FillFn& fill,
                      size_t max_shard_bytes) {
  validate_specs(dir, specs);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("{}: cannot create folder: {}", dir.string(), ec.message()));
  const fs::path index_path = dir / "model.safetensors.index.json", single_path = dir / "model.safetensors";

  uint64_t total = 0;
  for (const TensorSpec& s : specs) total += s.nbytes();
  if (total <= max_shard_bytes) {
    write_safetensors(single_path, specs, fill);
    fs::remove(index_path, ec);  // a stale index would take precedence over the new file
    return;
  }

  // Greedy split in the given order, as transformers does: a new shard starts when the next tensor would not fit;
  // a tensor larger than max_shard_bytes gets a shard of its own.
  std::vector<std::vector<TensorSpec>> shards(1);
  uint64_t current = 0;
  for (const TensorSpec& s : specs) {
    if (!shards.back().empty() && current + s.nbytes() > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(s);
    current += s.nbytes();
  }
  nlohmann::json weight_map = nlohmann::json::object();  // sorted keys, as transformers writes it
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", k + 1, shards.size());
    write_safetensors(dir / name, shards[k], fill);
    for (const TensorSpec& s : shards[k]) weight_map[s.name] = name;
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_text_file(index_path, index.dump(2) + "\n");
  fs::remove(single_path, ec);  // the index wins anyway; do not leave a second, stale copy around
}

}  // namespace oe::io
