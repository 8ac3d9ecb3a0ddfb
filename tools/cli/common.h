// Options and helpers shared by the verbs of the omni-embed binary.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "kernels/compute.h"
#include "model/embedder.h"
#include "model/model.h"

namespace oe::cli {

inline constexpr const char* DEFAULT_MODEL = "nvidia/omni-embed-nemotron-3b";

struct ModelArgs {
  std::string model = DEFAULT_MODEL;
  std::string revision = "main";
  std::string dtype = "bf16";
  int threads = 0;
};

// Where omni-embed keeps what it generates for itself (test models for the demo and the benchmark):
// $OMNI_EMBED_CACHE, else ~/.cache/omni-embed.
std::filesystem::path omni_embed_cache_dir();

// How items are embedded (prompt layout, attention, limits): the options shared by embed, index and eval.
struct EmbedSettingsArgs {
  std::string attention = "bidirectional";
  std::optional<std::string> query_prefix, document_prefix, system_prompt;
  bool no_prefix = false;
  int64_t max_tokens = 0;
  int64_t image_min_pixels = 0, image_max_pixels = 0;
  bool exif_orientation = false;
  int64_t max_image_pixels = 0;
  double audio_max_seconds = 128.0;  // the model card's max_length, 2,048,000 samples at 16 kHz
  // Videos (the model card's budget by default).
  std::string fusion = "separate";
  std::string video_pipeline = "card";
  double fps = 2.0;
  int64_t video_min_pixels = 6'272, video_max_pixels = 50'176;
  int64_t max_frames = 768;
};
void add_embed_settings_options(CLI::App& app, EmbedSettingsArgs& args);
// The model's defaults with the user's overrides applied.
model::EmbedOptions make_embed_options(const model::Model& model, const EmbedSettingsArgs& args);

// Adds --model, --revision, --dtype, --threads to a verb.
void add_model_options(CLI::App& app, ModelArgs& args);
kernels::Compute parse_compute(const std::string& dtype);  // "bf16" | "fp32" (also "f32")
// Sets the thread count, resolves --model (local folder or Hugging Face cache) and loads the model.
std::shared_ptr<const model::Model> load_model(const ModelArgs& args);

// A one-line progress display on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  Progress(std::string what, int64_t total);
  void update(int64_t done, const std::string& extra = "");
  void set_total(int64_t total);
  // Erases the drawn line (before other output goes to the same terminal); the next update redraws it.
  void clear();
  void finish();

 private:
  std::string what_;
  int64_t total_;
  bool tty_;
  double start_;
  double last_draw_ = -1;
};

// A verb: registers its subcommand and returns the function that runs it (returning the exit code).
using VerbRunner = std::function<int()>;
VerbRunner register_embed(CLI::App& app);
VerbRunner register_inspect(CLI::App& app);
VerbRunner register_make_test_model(CLI::App& app);
VerbRunner register_tokenize(CLI::App& app);
VerbRunner register_bench(CLI::App& app);
VerbRunner register_demo(CLI::App& app);
VerbRunner register_download(CLI::App& app);
VerbRunner register_eval(CLI::App& app);
VerbRunner register_index(CLI::App& app);
VerbRunner register_search(CLI::App& app);

}  // namespace oe::cli
