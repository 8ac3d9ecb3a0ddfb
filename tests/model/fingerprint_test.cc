// The model fingerprint names the weights, not the way a checkpoint is split into shards; the fingerprint earlier
// versions recorded still names them (an alias), so their indexes stay usable.
#include <fstream>

#include <gtest/gtest.h>

#include "common/temp_dir.h"
#include "io/safetensors.h"
#include "model/model.h"

namespace oe::model {
namespace {

namespace fs = std::filesystem;

// Tensors of several sizes (one under the 12 KiB read whole, others sampled), with values from their position.
const std::vector<io::TensorSpec> SPECS = {
    {"a.bias", DType::F32, {16}}, {"b.weight", DType::F32, {64, 96}}, {"c.weight", DType::BF16, {300, 257}}};

void fill(const io::TensorSpec& spec, void* buffer) {
  auto* bytes = static_cast<uint8_t*>(buffer);
  for (size_t i = 0; i < spec.nbytes(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + spec.name.size());
}

// A checkpoint folder: config.json, tokenizer.json and the tensors, in shards of at most `shard_bytes`.
fs::path write_model(const fs::path& dir, size_t shard_bytes, const io::FillFn& f = fill,
                     const std::string& config = R"({"model_type": "test"})") {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << config;
  std::ofstream(dir / "tokenizer.json") << R"({"model": {}})";
  io::write_checkpoint(dir, SPECS, f, shard_bytes);
  return dir;
}

TEST(Fingerprint, TheSameWeightsInOtherShardsHaveTheSameFingerprint) {
  oe::testing::TempDir tmp;
  const fs::path one = write_model(tmp / "one", size_t(1) << 30);
  const fs::path three = write_model(tmp / "three", 40000);
  ASSERT_TRUE(fs::exists(one / "model.safetensors"));
  ASSERT_TRUE(fs::exists(three / "model.safetensors.index.json"));
  EXPECT_EQ(model_fingerprint(one), model_fingerprint(three));
  // What earlier versions computed differed (it hashed each file), and stays what it was for each folder.
  EXPECT_NE(legacy_model_fingerprint(one), legacy_model_fingerprint(three));
  EXPECT_NE(legacy_model_fingerprint(one), model_fingerprint(one));
}

TEST(Fingerprint, OtherWeightsOrAnotherConfigHaveAnother) {
  oe::testing::TempDir tmp;
  const std::string base = model_fingerprint(write_model(tmp / "base", size_t(1) << 30));
  // One byte at the start of the sampled tensor, one in the middle of it, one in the small tensor.
  for (const auto& [name, at] : {std::pair{"c.weight", size_t(0)}, std::pair{"c.weight", size_t(300 * 257)},
                                 std::pair{"a.bias", size_t(63)}}) {
    const fs::path dir = tmp / fmt::format("{}-{}", name, at);
    write_model(dir, size_t(1) << 30, [&](const io::TensorSpec& spec, void* buffer) {
      fill(spec, buffer);
      if (spec.name == name) static_cast<uint8_t*>(buffer)[at] ^= 1;
    });
    EXPECT_NE(model_fingerprint(dir), base) << name << " byte " << at;
  }
  EXPECT_NE(model_fingerprint(write_model(tmp / "config", size_t(1) << 30, fill, R"({"model_type": "other"})")),
            base);
}

}  // namespace
}  // namespace oe::model
