// --adapter and merge-adapter end to end on the tiny test model: an index records the adapter it was built with,
// refuses to grow with another one (or none), and search uses it; a merged checkpoint embeds like the adapter.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/json_lines.h"
#include "model/lora.h"
#include "model/model.h"
#include "test_util.h"

namespace oe::model {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

testing::Outcome run(const TempDir& tmp, const std::string& args) {
  return testing::run_split(fmt::format("'{}' {}", OE_CLI, args), (tmp / "stderr.txt").string());
}

// An adapter with random non-zero B (so it changes the vectors).
fs::path write_adapter(const fs::path& dir, uint64_t seed) {
  const TextConfig c = ModelConfig::load(testing::test_model("tiny-f32")).text;
  LoraAdapter a = init_lora_adapter(LoraConfig{}, c, seed);
  uint64_t x = seed;
  for (auto& layer : a.layers)
    for (LoraWeights& w : layer)
      for (float& v : w.b) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        v = (static_cast<float>(x >> 40) / static_cast<float>(1 << 24) - 0.5f) * 0.1f;
      }
  save_lora_adapter(a, dir, "");
  return dir;
}

std::string model_args(const std::string& extra = "") {
  return fmt::format("--model '{}' --dtype fp32 {}", testing::test_model("tiny-f32").string(), extra);
}

TEST(LoraCli, AnIndexKeepsItsAdapterAndSearchUsesIt) {
  TempDir tmp;
  const fs::path lib = tmp / "lib", idx = tmp / "idx", plain = tmp / "plain";
  testing::write_file(lib / "cat.txt", "The cat sat on the warm mat all afternoon.");
  testing::write_file(lib / "rain.txt", "Heavy rain is expected over the mountains tonight.");
  testing::write_file(lib / "code.md", "A function returns the sum of two integers.");
  const fs::path a = write_adapter(tmp / "adapter-a", 6), b = write_adapter(tmp / "adapter-b", 9);
  const auto index = [&](const fs::path& into, const std::string& extra) {
    return run(tmp, fmt::format("index '{}' --index '{}' --format json {}", lib.string(), into.string(), model_args(extra)));
  };

  auto o = index(idx, fmt::format("--adapter '{}'", a.string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(nlohmann::json::parse(o.out)["added"], 3);
  // The same adapter again: nothing to do.
  o = index(idx, fmt::format("--adapter '{}'", a.string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(nlohmann::json::parse(o.out)["unchanged"], 3);
  // Another adapter, or none: refused, saying so.
  o = index(idx, fmt::format("--adapter '{}'", b.string()));
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("built with adapter " + a.string()), std::string::npos) << o.err;
  o = index(idx, "");
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("not no adapter"), std::string::npos) << o.err;
  ASSERT_EQ(index(plain, "").rc, 0);
  o = index(plain, fmt::format("--adapter '{}'", a.string()));
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("built with no adapter"), std::string::npos) << o.err;

  // search: the recorded adapter by default, the same one given explicitly, another one refused.
  const auto search = [&](const fs::path& in, const std::string& extra) {
    return run(tmp, fmt::format("search 'where is the cat' --index '{}' --format json -k 3 --dtype fp32 {}",
                                in.string(), extra));
  };
  const auto recorded = search(idx, "");
  ASSERT_EQ(recorded.rc, 0) << recorded.err;
  EXPECT_EQ(testing::json_lines(recorded.out).size(), 3u);
  const auto explicit_a = search(idx, fmt::format("--adapter '{}'", a.string()));
  ASSERT_EQ(explicit_a.rc, 0) << explicit_a.err;
  EXPECT_EQ(explicit_a.out, recorded.out);
  o = search(idx, fmt::format("--adapter '{}'", b.string()));
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("was built with adapter"), std::string::npos) << o.err;
  o = search(plain, fmt::format("--adapter '{}'", a.string()));
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("search without --adapter"), std::string::npos) << o.err;
  // The adapter is really used: the same library without it scores otherwise.
  const auto unadapted = search(plain, "");
  ASSERT_EQ(unadapted.rc, 0) << unadapted.err;
  EXPECT_NE(unadapted.out, recorded.out);
}

TEST(LoraCli, MergeAdapterEmbedsLikeTheAdapter) {
  TempDir tmp;
  const fs::path a = write_adapter(tmp / "adapter", 6), merged = tmp / "merged";
  auto o = run(tmp, fmt::format("merge-adapter --model '{}' --adapter '{}' --out '{}'",
                                testing::test_model("tiny-f32").string(), a.string(), merged.string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  const std::string query = "embed --query 'a cat on a mat'";
  const auto with_adapter = run(tmp, fmt::format("{} {}", query, model_args(fmt::format("--adapter '{}'", a.string()))));
  const auto from_merged = run(tmp, fmt::format("{} --model '{}' --dtype fp32", query, merged.string()));
  const auto base = run(tmp, fmt::format("{} {}", query, model_args()));
  ASSERT_EQ(with_adapter.rc, 0) << with_adapter.err;
  ASSERT_EQ(from_merged.rc, 0) << from_merged.err;
  ASSERT_EQ(base.rc, 0) << base.err;
  const auto vec = [](const testing::Outcome& r) {
    return testing::json_lines(r.out).at(0).at("embedding").get<std::vector<float>>();
  };
  EXPECT_GE(testing::cosine(vec(with_adapter), vec(from_merged)), 0.99999);
  EXPECT_LT(testing::cosine(vec(with_adapter), vec(base)), 0.999);
  // Never over an existing checkpoint.
  o = run(tmp, fmt::format("merge-adapter --model '{}' --adapter '{}' --out '{}'",
                           testing::test_model("tiny-f32").string(), a.string(), merged.string()));
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("not empty"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace oe::model
