// Options and helpers shared by the verbs of the omni-embed binary.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "kernels/compute.h"
#include "model/model.h"
#include "pipeline/options.h"

namespace oe::cli {

inline constexpr const char* DEFAULT_MODEL = "nvidia/omni-embed-nemotron-3b";

struct ModelArgs {
  std::string model = DEFAULT_MODEL;
  std::string revision = "main";
  std::string dtype = "bf16";
  std::string bf16_gemm = "auto";
  int threads = 0;
  std::string adapter;  // a LoRA adapter folder (PEFT layout); empty: none
  bool decoder_layers = true;  // false: load only the decoder's token embeddings (train reads the layers itself)
};

// Binds the flags of how items are embedded (prompt layout, attention, limits, media budgets, --fusion) to `options`,
// the pipeline's own struct: its defaults are the flags' defaults. Shared by embed, index and eval.
void add_embed_options(CLI::App& app, pipeline::EmbedOptions& options);

// --media-window and --media-overlap (index, eval): long audio and video cut into windows of `window` seconds,
// consecutive ones sharing `overlap`. `what` ends the window flag's help (its default and meaning in that verb).
void add_media_window_options(CLI::App& app, double& window, double& overlap, const std::string& what);
// InvalidInput for an overlap not shorter than the window, or a window longer than the audio clip length (a window's
// sound is embedded whole). A window of 0 (whole media) passes.
void check_media_window(double window, double overlap, const pipeline::EmbedOptions& options);

// Adds --model, --revision, --dtype, --bf16-gemm, --threads, --adapter to a verb.
void add_model_options(CLI::App& app, ModelArgs& args);
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

// Progress of work in named stages (eval's and mine's "corpus", then "queries"): a fresh line per stage. Its
// operator() is an eval::DatasetProgress.
class StageProgress {
 public:
  void operator()(const std::string& stage, int64_t done, int64_t total);
  void finish() { bar_.finish(); }

 private:
  Progress bar_{"embedding", 0};
  std::string stage_;
};

// A verb: registers its subcommand and returns the function that runs it (returning the exit code).
using VerbRunner = std::function<int()>;
VerbRunner register_embed(CLI::App& app);
VerbRunner register_inspect(CLI::App& app);
VerbRunner register_make_test_model(CLI::App& app);
VerbRunner register_tokenize(CLI::App& app);
VerbRunner register_demo(CLI::App& app);
VerbRunner register_download(CLI::App& app);
VerbRunner register_eval(CLI::App& app);
VerbRunner register_index(CLI::App& app);
VerbRunner register_search(CLI::App& app);
VerbRunner register_serve(CLI::App& app);
VerbRunner register_merge_adapter(CLI::App& app);
VerbRunner register_mine(CLI::App& app);
VerbRunner register_train(CLI::App& app);

}  // namespace oe::cli
