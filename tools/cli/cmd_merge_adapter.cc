// omni-embed merge-adapter: a LoRA adapter merged into the model's weights, written as a new checkpoint folder.
#include <cstdio>

#include "common.h"
#include "core/timer.h"
#include "io/hub.h"
#include "model/lora_merge.h"

namespace oe::cli {
namespace {

struct MergeArgs {
  std::string model = DEFAULT_MODEL;
  std::string revision = "main";
  std::string adapter;
  std::string out;
};

int run_merge(const MergeArgs& a) {
  const std::filesystem::path dir = io::resolve_model_path(a.model, a.revision);
  Progress progress("merging (MiB)", 0);
  model::MergeOptions o;
  o.progress = [&](uint64_t done, uint64_t total) {
    progress.set_total(static_cast<int64_t>(total >> 20));
    progress.update(static_cast<int64_t>(done >> 20));
  };
  Timer t;
  model::merge_lora_checkpoint(dir, a.adapter, a.out, o);
  progress.finish();
  std::fprintf(stderr, "merged %s into %s: wrote %s in %.1f s\n", a.adapter.c_str(), dir.string().c_str(),
               a.out.c_str(), t.seconds());
  return 0;
}

}  // namespace

VerbRunner register_merge_adapter(CLI::App& app) {
  auto a = std::make_shared<MergeArgs>();
  auto* sub = app.add_subcommand("merge-adapter",
                                 "Merge a LoRA adapter into the model's weights: a new checkpoint folder that needs no "
                                 "--adapter");
  sub->add_option("--model", a->model,
                  "Checkpoint folder, or a Hugging Face id looked up in the local Hub cache (HF_HUB_CACHE / HF_HOME)")
      ->capture_default_str();
  sub->add_option("--revision", a->revision, "Hub revision (branch or tag) for a Hub id")->capture_default_str();
  sub->add_option("--adapter", a->adapter,
                  "The LoRA adapter folder (PEFT's adapter_config.json + adapter_model.safetensors)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--out", a->out, "The new checkpoint folder (must not exist, or be empty)")->required();
  return [a] { return run_merge(*a); };
}

}  // namespace oe::cli
