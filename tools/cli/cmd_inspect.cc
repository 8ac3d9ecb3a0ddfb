// omni-embed inspect: what a checkpoint holds, without loading or packing any weight.
#include <cstdio>
#include <map>

#include "common.h"
#include "core/error.h"
#include "io/hub.h"
#include "io/safetensors.h"
#include "model/config.h"

namespace oe::cli {
namespace {

struct InspectArgs {
  std::string model = DEFAULT_MODEL;
  std::string revision = "main";
};

std::string tower_of(const std::string& name, const std::string& prefix) {
  std::string n = name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
  if (n.rfind("model.", 0) == 0) return n.rfind("model.embed_tokens", 0) == 0 ? "text embeddings" : "text decoder";
  if (n.rfind("visual.", 0) == 0) return "vision encoder";
  if (n.rfind("audio_tower.", 0) == 0) return "audio encoder";
  if (n.rfind("lm_head", 0) == 0) return "lm_head (unused)";
  return "other (ignored)";
}

int run_inspect(const InspectArgs& a) {
  auto dir = io::resolve_model_path(a.model, a.revision);
  auto cfg = with_context("loading config", [&] { return model::ModelConfig::load(dir); });
  auto ckpt = with_context("opening weights", [&] { return io::Checkpoint::open(dir); });
  const auto& t = cfg.text;
  std::printf("model        %s\n", dir.string().c_str());
  std::printf("layout       %s (model_type %s, tensor prefix \"%s\")\n", model::layout_name(cfg.layout),
              cfg.model_type.c_str(), cfg.tensor_prefix.c_str());
  std::printf("text         d_model %lld, n_layers %lld, n_heads %lld, n_kv_heads %lld, d_head %lld, d_ff %lld, "
              "vocab %lld, rope_theta %g, mrope_section [%d, %d, %d], max_positions %lld\n",
              (long long)t.d_model, (long long)t.n_layers, (long long)t.n_heads, (long long)t.n_kv_heads,
              (long long)t.d_head, (long long)t.d_ff, (long long)t.vocab_size, t.rope_theta, t.mrope_section[0],
              t.mrope_section[1], t.mrope_section[2], (long long)t.max_position_embeddings);
  const auto& v = cfg.vision;
  std::printf("vision       depth %lld, d_model %lld, n_heads %lld, d_ff %lld, patch %lld, window %lld, "
              "full-attention blocks [%s], out %lld\n",
              (long long)v.depth, (long long)v.d_model, (long long)v.n_heads, (long long)v.d_ff,
              (long long)v.patch_size, (long long)v.window_size, fmt::format("{}", fmt::join(v.fullatt_block_indexes, ", ")).c_str(),
              (long long)v.out_d_model);
  const auto& au = cfg.audio;
  std::printf("audio        n_layers %lld, d_model %lld, n_heads %lld, d_ff %lld, n_mel %lld, n_window %lld, out %lld\n",
              (long long)au.n_layers, (long long)au.d_model, (long long)au.n_heads, (long long)au.d_ff,
              (long long)au.n_mel, (long long)au.n_window, (long long)au.out_d_model);

  std::map<std::string, std::pair<int64_t, size_t>> towers;  // params, bytes
  std::map<std::string, int64_t> dtypes;
  int64_t total = 0;
  for (const auto& name : ckpt.names()) {
    const auto& info = ckpt.get(name);
    auto& tw = towers[tower_of(name, cfg.tensor_prefix)];
    int64_t n = shape_numel(info.shape);
    tw.first += n;
    tw.second += info.nbytes;
    dtypes[dtype_name(info.dtype)] += n;
    total += n;
  }
  std::printf("tensors      %zu, %lld parameters (%.3f B)\n", ckpt.size(), static_cast<long long>(total),
              static_cast<double>(total) / 1e9);
  for (const auto& [dt, n] : dtypes) std::printf("  dtype %-6s %.3f B parameters\n", dt.c_str(), static_cast<double>(n) / 1e9);
  for (const auto& [tw, pb] : towers)
    std::printf("  %-18s %12lld parameters  %8.3f GB on disk\n", tw.c_str(), static_cast<long long>(pb.first),
                static_cast<double>(pb.second) / 1e9);
  const auto& dec = towers["text decoder"];
  std::printf("memory       text embedding: decoder packed in bf16 ≈ %.2f GB (fp32 ≈ %.2f GB), embeddings stay "
              "memory-mapped\n",
              static_cast<double>(dec.first) * 2 / 1e9, static_cast<double>(dec.first) * 4 / 1e9);
  return 0;
}

}  // namespace

VerbRunner register_inspect(CLI::App& app) {
  auto a = std::make_shared<InspectArgs>();
  auto* sub = app.add_subcommand("inspect", "Print a checkpoint's config, tensors, parameters per tower and memory");
  sub->add_option("--model", a->model, "Checkpoint folder or Hugging Face id")->capture_default_str();
  sub->add_option("--revision", a->revision, "Hub revision")->capture_default_str();
  return [a] { return run_inspect(*a); };
}

}  // namespace oe::cli
