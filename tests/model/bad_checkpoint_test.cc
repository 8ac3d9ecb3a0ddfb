// Malformed checkpoints: each is a clear error naming the problem, from the library and from the CLI.
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "test_util.h"

namespace oe::model {
namespace {

namespace fs = std::filesystem;

// A copy of the tiny checkpoint whose tensors pass through `edit` (which may drop, reshape or add entries).
struct Edit {
  std::string drop;
  std::string reshape;
  Shape new_shape;
  std::string add;
};

fs::path edited_copy(const fs::path& dst, const Edit& edit) {
  const fs::path src = testing::test_model("tiny-f32");
  fs::copy(src, dst, fs::copy_options::recursive);
  fs::remove(dst / "model.safetensors");
  auto ckpt = io::Checkpoint::open(src);
  std::vector<io::TensorSpec> specs;
  for (const auto& name : ckpt.names()) {
    if (name == edit.drop) continue;
    const auto& t = ckpt.get(name);
    specs.push_back({name, t.dtype, name == edit.reshape ? edit.new_shape : t.shape});
  }
  if (!edit.add.empty()) specs.push_back({edit.add, DType::F32, {4}});
  io::write_safetensors(dst / "model.safetensors", specs, [&](const io::TensorSpec& s, void* buf) {
    std::memset(buf, 0, s.nbytes());
    if (ckpt.has(s.name)) std::memcpy(buf, ckpt.get(s.name).data, std::min(s.nbytes(), ckpt.get(s.name).nbytes));
  });
  return dst;
}

std::string load_error(const fs::path& dir) {
  try {
    Model::load(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(BadCheckpoint, MissingTensorIsNamed) {
  testing::TempDir tmp;
  auto dir = edited_copy(tmp.path() / "m", {.drop = "model.layers.1.self_attn.k_proj.bias"});
  auto err = load_error(dir);
  EXPECT_NE(err.find("missing tensor \"model.layers.1.self_attn.k_proj.bias\""), std::string::npos) << err;
  EXPECT_NE(err.find("loading text decoder"), std::string::npos) << err;
}

TEST(BadCheckpoint, WrongShapeIsNamedWithBothShapes) {
  testing::TempDir tmp;
  auto dir = edited_copy(tmp.path() / "m", {.reshape = "model.layers.2.mlp.down_proj.weight", .new_shape = {64, 8}});
  auto err = load_error(dir);
  EXPECT_NE(err.find("\"model.layers.2.mlp.down_proj.weight\" has shape [64, 8], expected [64, 160]"), std::string::npos)
      << err;
}

TEST(BadCheckpoint, UnexpectedTensorIsNamed) {
  testing::TempDir tmp;
  auto dir = edited_copy(tmp.path() / "m", {.add = "model.layers.3.input_layernorm.weight"});
  auto err = load_error(dir);
  EXPECT_NE(err.find("unexpected tensors"), std::string::npos) << err;
  EXPECT_NE(err.find("model.layers.3.input_layernorm.weight"), std::string::npos) << err;
}

TEST(BadCheckpoint, VisionAndAudioTowersAreNotNeededForText) {
  // Text-only work neither reads nor validates the other towers: dropping one of their tensors does not matter.
  testing::TempDir tmp;
  auto dir = edited_copy(tmp.path() / "m", {.drop = "visual.blocks.0.attn.q.weight"});
  EXPECT_EQ(load_error(dir), "");
}

TEST(BadCheckpoint, ConfigWithoutRequiredKey) {
  testing::TempDir tmp;
  fs::copy(testing::test_model("tiny-f32"), tmp.path() / "m", fs::copy_options::recursive);
  auto cfg = io::read_json_file(tmp.path() / "m" / "config.json");
  cfg["text_config"].erase("rms_norm_eps");
  io::write_json_file(tmp.path() / "m" / "config.json", cfg);
  auto err = load_error(tmp.path() / "m");
  EXPECT_NE(err.find("loading config"), std::string::npos) << err;
  EXPECT_NE(err.find("\"rms_norm_eps\""), std::string::npos) << err;
}

TEST(BadCheckpoint, TruncatedWeightsAndLyingHeaderFromTheCli) {
  testing::TempDir tmp;
  const fs::path dir = tmp.path() / "m";
  fs::copy(testing::test_model("tiny-f32"), dir, fs::copy_options::recursive);
  const fs::path weights = dir / "model.safetensors";
  const std::string cli = fmt::format("{}/tools/cli/omni-embed", OE_BINARY_DIR);

  fs::resize_file(weights, fs::file_size(weights) / 2);
  std::string out;
  int rc = testing::run_command(fmt::format("{} embed --model {} --query hello --dtype fp32", cli, dir.string()), &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("model.safetensors"), std::string::npos) << out;
  EXPECT_EQ(out.find("internal error"), std::string::npos) << out;

  // A header whose first tensor claims to end far beyond the file.
  fs::remove(weights);
  {
    std::string header = R"({"model.norm.weight":{"dtype":"F32","shape":[64],"data_offsets":[0,1000000000]}})";
    std::ofstream f(weights, std::ios::binary);
    uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header << std::string(256, '\0');
  }
  rc = testing::run_command(fmt::format("{} embed --model {} --query hello", cli, dir.string()), &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("model.norm.weight"), std::string::npos) << out;
}

TEST(BadCheckpoint, MissingModelFolderSaysHowToGetWeights) {
  std::string out;
  const std::string cli = fmt::format("{}/tools/cli/omni-embed", OE_BINARY_DIR);
  testing::TempDir tmp;
  int rc = testing::run_command(fmt::format("HF_HUB_CACHE={} {} embed --query hello", tmp.path().string(), cli), &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("nvidia/omni-embed-nemotron-3b"), std::string::npos) << out;
  EXPECT_NE(out.find("download"), std::string::npos) << out;
}

}  // namespace
}  // namespace oe::model
