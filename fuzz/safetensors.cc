// Fuzz target: a safetensors checkpoint. The input is written twice: as a single model.safetensors (its 8-byte header
// length, JSON header and data block go through io::Checkpoint::open of the file), and as the
// model.safetensors.index.json of a folder that also holds two valid shards (the sharded path of Checkpoint::open).
// Every tensor a checkpoint hands out is read whole and released, and release() checks that its bytes lie inside the
// file's mapping.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "io/safetensors.h"

namespace {

namespace fs = std::filesystem;
using oe::io::Checkpoint;
using oe::io::TensorSpec;

// The folder of the sharded checkpoint: two shards whose names and tensors the seed indexes refer to.
const fs::path& sharded_dir() {
  static const fs::path dir = [] {
    const fs::path d = oe::fuzz::scratch_dir() / "sharded";
    fs::create_directories(d);
    const auto fill = [](const TensorSpec& spec, void* buffer) {
      auto* bytes = static_cast<uint8_t*>(buffer);
      for (size_t i = 0; i < spec.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + spec.name.size());
    };
    oe::io::write_safetensors(d / "model-00001-of-00002.safetensors",
                              {{"a", oe::DType::F32, {2, 3}}, {"b", oe::DType::BF16, {4}}}, fill);
    oe::io::write_safetensors(d / "model-00002-of-00002.safetensors",
                              {{"c", oe::DType::I64, {2}}, {"d", oe::DType::U8, {0}}, {"e.w", oe::DType::F16, {3, 1}}},
                              fill);
    return d;
  }();
  return dir;
}

// Reads every byte of every tensor (a read outside the mapping faults) and releases it (a range outside it is an
// InternalError, which expect_clean reports).
void read_all(const Checkpoint& ck) {
  uint64_t sum = 0;
  for (const std::string& name : ck.names()) {
    const oe::io::TensorInfo& t = ck.get(name);
    if (static_cast<uint64_t>(oe::shape_numel(t.shape)) * oe::dtype_size(t.dtype) != t.nbytes) {
      oe::fuzz::finding("tensor size", name);
    }
    const auto* p = static_cast<const uint8_t*>(t.data);
    for (size_t i = 0; i < t.nbytes; ++i) sum += p[i];
    ck.release(name);
  }
  volatile uint64_t keep = sum;
  (void)keep;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path file = oe::fuzz::write_input("model.safetensors", data, size);
  oe::fuzz::expect_clean([&] { read_all(Checkpoint::open(file)); }, file.string());

  // Errors name the index or the shard it points at, both inside the folder.
  const fs::path& dir = sharded_dir();
  oe::fuzz::write_input("sharded/model.safetensors.index.json", data, size);
  oe::fuzz::expect_clean([&] { read_all(Checkpoint::open(dir)); }, dir.string());
  return 0;
}
