// LoRA adapters in PEFT's layout (model/lora.h, model/lora_merge.h): what is written is what PEFT reads (key names,
// adapter_config.json fields, a target_modules regex that spares the vision and audio towers), a save → load round
// trip is bit-identical, malformed adapters are refused naming the file and tensor, and an adapter applied at load
// gives the same vectors as the checkpoint it is merged into.
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "core/error.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/embedder.h"
#include "model/lora.h"
#include "model/lora_merge.h"
#include "model/model.h"
#include "test_util.h"

namespace oe::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::TempDir;

TextConfig tiny_config() { return ModelConfig::load(testing::test_model("tiny-f32")).text; }

// A fresh adapter with B filled with values uniform in ±b_range (0: PEFT's initial zeros).
LoraAdapter random_adapter(const TextConfig& c, uint64_t seed, float b_range,
                           std::vector<LoraModule> targets = {ALL_LORA_MODULES.begin(), ALL_LORA_MODULES.end()}) {
  LoraConfig cfg;
  cfg.targets = std::move(targets);
  cfg.base_model = "nvidia/omni-embed-nemotron-3b";
  LoraAdapter a = init_lora_adapter(cfg, c, seed);
  std::mt19937_64 rng(seed + 1000);
  std::uniform_real_distribution<float> u(-b_range, b_range);
  for (auto& layer : a.layers)
    for (LoraWeights& w : layer)
      for (float& x : w.b) x = b_range > 0 ? u(rng) : 0.0f;
  return a;
}

// Rewrites DIR/adapter_model.safetensors through `edit` (name → spec and bytes).
using TensorMap = std::map<std::string, std::pair<io::TensorSpec, std::vector<uint8_t>>>;
void edit_tensors(const fs::path& dir, const std::function<void(TensorMap&)>& edit) {
  const fs::path file = dir / "adapter_model.safetensors";
  TensorMap tensors;
  {
    const io::Checkpoint ckpt = io::Checkpoint::open(file);
    for (const std::string& name : ckpt.names()) {
      const io::TensorInfo& t = ckpt.get(name);
      const auto* p = static_cast<const uint8_t*>(t.data);
      tensors[name] = {{name, t.dtype, t.shape}, std::vector<uint8_t>(p, p + t.nbytes)};
    }
  }
  edit(tensors);
  std::vector<io::TensorSpec> specs;
  for (const auto& [name, t] : tensors) specs.push_back(t.first);
  io::write_safetensors(file, specs, [&](const io::TensorSpec& s, void* buffer) {
    const auto& bytes = tensors.at(s.name).second;
    ASSERT_EQ(bytes.size(), s.nbytes()) << s.name;
    std::memcpy(buffer, bytes.data(), bytes.size());
  });
}

void edit_config(const fs::path& dir, const std::function<void(json&)>& edit) {
  json j = io::read_json_file(dir / "adapter_config.json");
  edit(j);
  io::write_json_file(dir / "adapter_config.json", j);
}

// The InvalidInput message of loading DIR ("" when it loads).
std::string load_error(const fs::path& dir, const TextConfig& c) {
  try {
    load_lora_adapter(dir, c, "");
  } catch (const InvalidInput& e) {
    return e.what();
  }
  return "";
}

const std::string Q0_A = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";

TEST(Lora, ModuleNamesShapesAndParsing) {
  const TextConfig c = tiny_config();
  EXPECT_STREQ(lora_module_name(LoraModule::Gate), "gate_proj");
  EXPECT_EQ(parse_lora_module("down_proj"), LoraModule::Down);
  EXPECT_EQ(parse_lora_module("k"), LoraModule::K);
  EXPECT_THROW(parse_lora_module("fc1"), InvalidInput);
  const auto kv = lora_module_shape(c, LoraModule::V);
  EXPECT_EQ(kv[0], c.n_kv_heads * c.d_head);
  EXPECT_EQ(kv[1], c.d_model);
  const auto down = lora_module_shape(c, LoraModule::Down);
  EXPECT_EQ(down[0], c.d_model);
  EXPECT_EQ(down[1], c.d_ff);
}

TEST(Lora, InitIsPeftsDefaultAndSeeded) {
  const TextConfig c = tiny_config();
  LoraConfig cfg;
  const LoraAdapter a = init_lora_adapter(cfg, c, 7), b = init_lora_adapter(cfg, c, 7), d = init_lora_adapter(cfg, c, 8);
  const LoraWeights& w = a.at(1, LoraModule::Down);
  ASSERT_EQ(w.a.size(), static_cast<size_t>(cfg.r * c.d_ff));
  ASSERT_EQ(w.b.size(), static_cast<size_t>(c.d_model * cfg.r));
  const float bound = 1.0f / std::sqrt(static_cast<float>(c.d_ff));
  float lo = 1, hi = -1;
  for (float x : w.a) lo = std::min(lo, x), hi = std::max(hi, x);
  EXPECT_GE(lo, -bound);
  EXPECT_LE(hi, bound);
  EXPECT_LT(lo, -0.8f * bound);  // spread over the whole range
  EXPECT_GT(hi, 0.8f * bound);
  for (float x : w.b) ASSERT_EQ(x, 0.0f);
  EXPECT_EQ(a.at(0, LoraModule::Q).a, b.at(0, LoraModule::Q).a);
  EXPECT_NE(a.at(0, LoraModule::Q).a, d.at(0, LoraModule::Q).a);
  EXPECT_NE(a.at(0, LoraModule::Q).a, a.at(0, LoraModule::K).a);
  const int64_t per_layer = [&] {
    int64_t n = 0;
    for (LoraModule m : ALL_LORA_MODULES) {
      const auto s = lora_module_shape(c, m);
      n += cfg.r * (s[0] + s[1]);
    }
    return n;
  }();
  EXPECT_EQ(a.parameter_count(), c.n_layers * per_layer);
}

TEST(Lora, SaveLoadRoundTripIsBitIdentical) {
  const TextConfig c = tiny_config();
  TempDir tmp;
  for (const std::string prefix : {"", "thinker."}) {
    for (const auto& targets : {std::vector<LoraModule>{ALL_LORA_MODULES.begin(), ALL_LORA_MODULES.end()},
                                std::vector<LoraModule>{LoraModule::Q, LoraModule::V, LoraModule::Down}}) {
      LoraAdapter a = random_adapter(c, 3, 0.05f, targets);
      a.config.alpha = 24;
      a.config.dropout = 0.1;
      const fs::path dir = tmp / fmt::format("a{}{}", prefix, targets.size());
      save_lora_adapter(a, dir, prefix);
      const LoraAdapter b = load_lora_adapter(dir, c, prefix);
      EXPECT_EQ(b.config.r, a.config.r);
      EXPECT_EQ(b.config.alpha, 24);
      EXPECT_EQ(b.config.dropout, 0.1);
      EXPECT_EQ(b.config.targets, targets);
      EXPECT_EQ(b.config.base_model, "nvidia/omni-embed-nemotron-3b");
      ASSERT_EQ(b.layers.size(), static_cast<size_t>(c.n_layers));
      for (int64_t il = 0; il < c.n_layers; ++il)
        for (LoraModule m : ALL_LORA_MODULES) {
          EXPECT_EQ(b.at(il, m).a, a.config.targets_module(m) ? a.at(il, m).a : std::vector<float>{});
          EXPECT_EQ(b.at(il, m).b, a.config.targets_module(m) ? a.at(il, m).b : std::vector<float>{});
        }
      EXPECT_EQ(b.parameter_count(), a.parameter_count());
    }
  }
}

TEST(Lora, WritesWhatPeftReads) {
  const TextConfig c = tiny_config();
  TempDir tmp;
  save_lora_adapter(random_adapter(c, 1, 0), tmp / "all", "");
  const json j = io::read_json_file(tmp / "all" / "adapter_config.json");
  EXPECT_EQ(j.at("peft_type"), "LORA");
  EXPECT_EQ(j.at("task_type"), "FEATURE_EXTRACTION");
  EXPECT_EQ(j.at("r"), 16);
  EXPECT_TRUE(j.at("lora_alpha").is_number_integer());
  EXPECT_EQ(j.at("lora_alpha"), 32);
  EXPECT_EQ(j.at("lora_dropout"), 0.05);
  EXPECT_EQ(j.at("bias"), "none");
  EXPECT_EQ(j.at("base_model_name_or_path"), "nvidia/omni-embed-nemotron-3b");
  for (const char* key : {"fan_in_fan_out", "use_rslora", "use_dora"}) EXPECT_EQ(j.at(key), false) << key;
  EXPECT_EQ(j.at("init_lora_weights"), true);
  EXPECT_EQ(j.at("inference_mode"), true);
  for (const char* key : {"modules_to_save", "layers_to_transform", "layers_pattern"}) EXPECT_TRUE(j.at(key).is_null()) << key;
  EXPECT_EQ(j.at("rank_pattern"), json::object());
  EXPECT_EQ(j.at("alpha_pattern"), json::object());

  // target_modules: a regex PEFT full-matches against module names; only the decoder's projections match.
  ASSERT_TRUE(j.at("target_modules").is_string());
  const std::regex all(j.at("target_modules").get<std::string>());
  for (const char* yes : {"model.layers.0.self_attn.q_proj", "model.layers.27.mlp.down_proj",
                          "thinker.model.layers.3.self_attn.o_proj", "model.layers.1.mlp.gate_proj"})
    EXPECT_TRUE(std::regex_match(yes, all)) << yes;
  for (const char* no : {"visual.blocks.0.mlp.gate_proj", "audio_tower.layers.0.self_attn.q_proj",
                         "thinker.visual.blocks.0.mlp.up_proj", "thinker.audio_tower.layers.0.self_attn.k_proj",
                         "talker.model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.q_proj.lora_A",
                         "model.layers.0.self_attn", "lm_head", "model.embed_tokens"})
    EXPECT_FALSE(std::regex_match(no, all)) << no;

  save_lora_adapter(random_adapter(c, 1, 0, {LoraModule::Q, LoraModule::V}), tmp / "qv", "thinker.");
  const std::regex qv(io::read_json_file(tmp / "qv" / "adapter_config.json").at("target_modules").get<std::string>());
  EXPECT_TRUE(std::regex_match("thinker.model.layers.0.self_attn.v_proj", qv));
  EXPECT_FALSE(std::regex_match("thinker.model.layers.0.self_attn.k_proj", qv));
  EXPECT_FALSE(std::regex_match("model.layers.0.mlp.up_proj", qv));

  // The state dict's keys: PeftModel's prefix, the module name, lora_A / lora_B, no adapter name; fp32.
  const io::Checkpoint all_t = io::Checkpoint::open(tmp / "all" / "adapter_model.safetensors");
  EXPECT_EQ(all_t.size(), static_cast<size_t>(c.n_layers * LORA_MODULES * 2));
  const io::TensorInfo& a = all_t.get(Q0_A);
  EXPECT_EQ(a.dtype, DType::F32);
  EXPECT_EQ(a.shape, (Shape{16, c.d_model}));
  const io::TensorInfo& b = all_t.get("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  EXPECT_EQ(b.shape, (Shape{c.d_model, 16}));
  const io::Checkpoint qv_t = io::Checkpoint::open(tmp / "qv" / "adapter_model.safetensors");
  EXPECT_EQ(qv_t.size(), static_cast<size_t>(c.n_layers * 2 * 2));
  EXPECT_TRUE(qv_t.has("base_model.model.thinker.model.layers.0.self_attn.v_proj.lora_B.weight"));
  for (const std::string& name : qv_t.names()) EXPECT_EQ(name.find(".default."), std::string::npos) << name;
}

TEST(Lora, ReadsPeftsOtherSpellings) {
  const TextConfig c = tiny_config();
  TempDir tmp;
  const LoraAdapter a = random_adapter(c, 2, 0.1f, {LoraModule::Q, LoraModule::V});
  save_lora_adapter(a, tmp / "a", "");
  // A list of module names (PEFT matches them as name suffixes), and BF16 tensors.
  edit_config(tmp / "a", [](json& j) { j["target_modules"] = {"v_proj", "q_proj"}; });
  edit_tensors(tmp / "a", [](TensorMap& t) {
    for (auto& [name, e] : t) {
      const size_t n = e.second.size() / 4;
      std::vector<uint8_t> bf(n * 2);
      f32_to_bf16_array(reinterpret_cast<const float*>(e.second.data()), n, reinterpret_cast<bf16_t*>(bf.data()));
      e.first.dtype = DType::BF16;
      e.second = std::move(bf);
    }
  });
  const LoraAdapter b = load_lora_adapter(tmp / "a", c, "");
  EXPECT_EQ(b.config.targets, (std::vector<LoraModule>{LoraModule::Q, LoraModule::V}));
  const auto& x = a.at(1, LoraModule::V).b;
  const auto& y = b.at(1, LoraModule::V).b;
  ASSERT_EQ(x.size(), y.size());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], round_bf16(x[i])) << i;
  // Tensors named after the other checkpoint layout ("thinker.") apply to this one.
  save_lora_adapter(a, tmp / "nested", "thinker.");
  EXPECT_EQ(load_lora_adapter(tmp / "nested", c, "").at(0, LoraModule::Q).a, a.at(0, LoraModule::Q).a);
}

TEST(Lora, MalformedAdaptersAreRefusedNamingTheFileAndTensor) {
  const TextConfig c = tiny_config();
  TempDir tmp;
  int n = 0;
  // A valid adapter in a new folder, then `edit` it; the load must fail with all of `expected` in the message.
  auto refused = [&](const std::function<void(const fs::path&)>& edit, std::vector<std::string> expected) {
    const fs::path dir = tmp / fmt::format("case{}", n++);
    save_lora_adapter(random_adapter(c, 5, 0.01f), dir, "");
    ASSERT_EQ(load_error(dir, c), "") << "the unedited adapter loads";
    edit(dir);
    const std::string msg = load_error(dir, c);
    ASSERT_NE(msg, "") << "case " << n - 1 << " was accepted";
    for (const auto& e : expected) EXPECT_NE(msg.find(e), std::string::npos) << "\"" << e << "\" not in: " << msg;
  };
  const auto tensors = [&](const std::function<void(TensorMap&)>& f) {
    return [f](const fs::path& d) { edit_tensors(d, f); };
  };
  const auto config = [&](const std::function<void(json&)>& f) { return [f](const fs::path& d) { edit_config(d, f); }; };

  // Wrong shape (another model's width).
  refused(tensors([](TensorMap& t) {
            auto& e = t.at(Q0_A);
            e.first.shape[1] -= 1;
            e.second.resize(e.first.nbytes());
          }),
          {"adapter_model.safetensors", Q0_A, "shape"});
  // Missing and extra tensors.
  refused(tensors([](TensorMap& t) { t.erase(Q0_A); }), {"adapter_model.safetensors", "missing", Q0_A});
  refused(tensors([](TensorMap& t) {
            auto e = t.at(Q0_A);
            e.first.name = "base_model.model.visual.blocks.0.mlp.gate_proj.lora_A.weight";
            t[e.first.name] = e;
          }),
          {"unexpected", "visual.blocks.0.mlp.gate_proj"});
  refused(tensors([](TensorMap& t) {
            auto e = t.at(Q0_A);
            e.first.name = "base_model.model.model.layers.99.self_attn.q_proj.lora_A.weight";
            t[e.first.name] = e;
          }),
          {"unexpected", "layers.99", fmt::format("{} layers", c.n_layers)});
  // r of the config is not the tensors' rank.
  refused(config([](json& j) { j["r"] = 8; }), {"r = 8", "shape"});
  // Non-finite values.
  refused(tensors([](TensorMap& t) {
            auto& e = t.at("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight");
            reinterpret_cast<float*>(e.second.data())[5] = std::numeric_limits<float>::quiet_NaN();
          }),
          {"non-finite", "layers.1.mlp.up_proj.lora_B"});
  refused(tensors([](TensorMap& t) {
            reinterpret_cast<float*>(t.at(Q0_A).second.data())[0] = std::numeric_limits<float>::infinity();
          }),
          {"non-finite", Q0_A});
  // Another dtype.
  refused(tensors([](TensorMap& t) {
            auto& e = t.at(Q0_A);
            e.first.dtype = DType::I32;
          }),
          {Q0_A, "I32"});
  // Variants of LoRA this engine does not apply.
  refused(config([](json& j) { j["use_dora"] = true; }), {"adapter_config.json", "use_dora"});
  refused(config([](json& j) { j["use_rslora"] = true; }), {"use_rslora"});
  refused(config([](json& j) { j["fan_in_fan_out"] = true; }), {"fan_in_fan_out"});
  refused(config([](json& j) { j["layers_to_transform"] = {0}; }), {"layers_to_transform"});
  refused(config([](json& j) { j["rank_pattern"] = {{"q_proj", 8}}; }), {"rank_pattern"});
  refused(config([](json& j) { j["alpha_pattern"] = {{"q_proj", 8}}; }), {"alpha_pattern"});
  refused(config([](json& j) { j["modules_to_save"] = {"lm_head"}; }), {"modules_to_save"});
  refused(config([](json& j) { j["peft_type"] = "IA3"; }), {"peft_type", "LORA"});
  // target_modules inconsistent with the tensors, or naming other towers' modules, or only some layers.
  refused(config([](json& j) { j["target_modules"] = {"q_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}; }),
          {"unexpected", "layers.0.self_attn.v_proj", "does not target v_proj"});
  refused(config([](json& j) { j["target_modules"] = {"q_proj", "fc1"}; }), {"fc1"});
  refused(config([](json& j) { j["target_modules"] = R"(model\.layers\.0\.self_attn\.q_proj)"; }), {fmt::format("1 of {} layers", c.n_layers)});
  refused(config([](json& j) { j["target_modules"] = "visual.*"; }), {"none of the text decoder"});
  refused([](const fs::path& d) { fs::remove(d / "adapter_model.safetensors"); }, {"adapter_model.safetensors"});
}

std::vector<std::vector<float>> embed_all(const std::shared_ptr<const Model>& m) {
  Embedder e(m, EmbedOptions{});
  std::vector<std::vector<float>> out;
  for (const auto& [role, text] : {std::pair{text::Role::Query, "what did the cat do"},
                                   std::pair{text::Role::Document, "The cat sat on the warm mat all afternoon."}})
    out.push_back(e.embed({role, text}).vector);
  return out;
}

std::shared_ptr<const Model> load(const fs::path& dir, kernels::Compute compute, const fs::path& adapter = {}) {
  LoadOptions lo;
  lo.compute = compute;
  lo.adapter = adapter;
  return Model::load(dir, lo);
}

TEST(LoraModel, AZeroAdapterLeavesTheVectorsUnchanged) {
  const TextConfig c = tiny_config();
  TempDir tmp;
  save_lora_adapter(random_adapter(c, 4, 0), tmp / "zero", "");
  for (auto [name, compute] : {std::pair{"tiny-f32", kernels::Compute::F32}, std::pair{"tiny-bf16", kernels::Compute::BF16}}) {
    const auto base = load(testing::test_model(name), compute);
    const auto adapted = load(testing::test_model(name), compute, tmp / "zero");
    EXPECT_TRUE(base->adapter_id().empty());
    EXPECT_EQ(adapted->adapter_id().size(), 64u);
    EXPECT_EQ(embed_all(base), embed_all(adapted)) << name;
  }
}

TEST(LoraModel, AnAdapterAtLoadEqualsTheMergedCheckpoint) {
  const TextConfig c = tiny_config();
  TempDir tmp;
  save_lora_adapter(random_adapter(c, 6, 0.05f), tmp / "adapter", "");
  save_lora_adapter(random_adapter(c, 9, 0.05f), tmp / "other", "");
  EXPECT_NE(lora_adapter_id(tmp / "adapter"), lora_adapter_id(tmp / "other"));

  const fs::path base_dir = testing::test_model("tiny-f32");
  const auto base = embed_all(load(base_dir, kernels::Compute::F32));
  const auto at_load = load(base_dir, kernels::Compute::F32, tmp / "adapter");
  EXPECT_EQ(at_load->adapter_id(), lora_adapter_id(tmp / "adapter"));
  EXPECT_EQ(at_load->adapter_dir(), tmp / "adapter");
  const auto adapted = embed_all(at_load);
  for (size_t i = 0; i < base.size(); ++i) EXPECT_LT(testing::cosine(base[i], adapted[i]), 0.999) << i;

  merge_lora_checkpoint(base_dir, tmp / "adapter", tmp / "merged");
  const auto merged_model = load(tmp / "merged", kernels::Compute::F32);
  EXPECT_TRUE(merged_model->adapter_id().empty());
  const auto merged = embed_all(merged_model);
  for (size_t i = 0; i < base.size(); ++i) EXPECT_GE(testing::cosine(adapted[i], merged[i]), 0.99999) << i;

  // The same adapter on the nested layout ("thinker." tensors) gives the same vectors as on the flat one.
  const auto nested = embed_all(load(testing::test_model("tiny-f32-qwen"), kernels::Compute::F32, tmp / "adapter"));
  for (size_t i = 0; i < base.size(); ++i) EXPECT_EQ(nested[i], adapted[i]) << i;

  // bf16: the merged fp32 weight is rounded to bf16 once, at load or in the merged checkpoint.
  const fs::path bf16_dir = testing::test_model("tiny-bf16");
  merge_lora_checkpoint(bf16_dir, tmp / "adapter", tmp / "merged-bf16");
  const auto a = embed_all(load(bf16_dir, kernels::Compute::BF16, tmp / "adapter"));
  const auto b = embed_all(load(tmp / "merged-bf16", kernels::Compute::BF16));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_GE(testing::cosine(a[i], b[i]), 0.999) << i;
}

TEST(LoraMerge, WritesACompleteCheckpointAndOnlyChangesTheTargets) {
  const TextConfig c = tiny_config();
  TempDir tmp;
  LoraAdapter adapter = random_adapter(c, 6, 0.05f, {LoraModule::V, LoraModule::Up});
  save_lora_adapter(adapter, tmp / "adapter", "");
  const fs::path base_dir = testing::test_model("tiny-bf16"), out = tmp / "merged";
  merge_lora_checkpoint(base_dir, tmp / "adapter", out);
  for (const char* f : {"config.json", "tokenizer.json", "preprocessor_config.json", "1_Pooling/config.json"})
    EXPECT_EQ(testing::read_file(out / f), testing::read_file(base_dir / f)) << f;
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();

  const io::Checkpoint before = io::Checkpoint::open(base_dir), after = io::Checkpoint::open(out);
  ASSERT_EQ(after.names(), before.names());
  int changed = 0;
  for (const std::string& name : before.names()) {
    const io::TensorInfo &x = before.get(name), &y = after.get(name);
    ASSERT_EQ(y.dtype, x.dtype) << name;
    ASSERT_EQ(y.shape, x.shape) << name;
    const bool same = std::memcmp(x.data, y.data, x.nbytes) == 0;
    const bool target = name.find("self_attn.v_proj.weight") != std::string::npos ||
                        name.find("mlp.up_proj.weight") != std::string::npos;
    const bool decoder = name.rfind("model.layers.", 0) == 0;
    EXPECT_EQ(same, !(target && decoder)) << name;
    changed += same ? 0 : 1;
  }
  EXPECT_EQ(changed, 2 * c.n_layers);
  // One merged tensor, recomputed here: bf16(W + scale · B · A).
  const std::string name = "model.layers.1.mlp.up_proj.weight";
  const io::TensorInfo& w = before.get(name);
  std::vector<float> expect(static_cast<size_t>(shape_numel(w.shape)));
  convert_to_f32(w.data, w.dtype, expect.size(), expect.data());
  const LoraWeights& lw = adapter.at(1, LoraModule::Up);
  for (int64_t o = 0; o < lw.n_out; ++o)
    for (int64_t i = 0; i < lw.n_in; ++i) {
      double d = 0;
      for (int64_t k = 0; k < adapter.config.r; ++k) d += double(lw.b[o * adapter.config.r + k]) * lw.a[k * lw.n_in + i];
      expect[o * lw.n_in + i] += static_cast<float>(adapter.config.scale() * d);
    }
  std::vector<float> got(expect.size());
  convert_to_f32(after.get(name).data, DType::BF16, got.size(), got.data());
  int off = 0;
  for (size_t i = 0; i < got.size(); ++i) off += std::fabs(got[i] - round_bf16(expect[i])) > 1e-6f * std::fabs(expect[i]) + 1e-9f;
  EXPECT_LE(off, static_cast<int>(got.size() / 100)) << "values differ beyond a rounding tie";

  // A second merge into the same folder is refused, and leaves it as it was.
  try {
    merge_lora_checkpoint(base_dir, tmp / "adapter", out);
    ADD_FAILURE() << "merged into a non-empty folder";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("not empty"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(out / "config.json"));
  // An adapter of another model is refused before anything is written.
  LoraAdapter wrong = adapter;
  for (auto& layer : wrong.layers)
    for (LoraWeights& lw2 : layer)
      if (!lw2.empty()) lw2.n_in += 1, lw2.a.resize(static_cast<size_t>(wrong.config.r * lw2.n_in));
  save_lora_adapter(wrong, tmp / "wrong", "");
  EXPECT_THROW(merge_lora_checkpoint(base_dir, tmp / "wrong", tmp / "merged2"), InvalidInput);
  EXPECT_FALSE(fs::exists(tmp / "merged2"));
}

}  // namespace
}  // namespace oe::model
