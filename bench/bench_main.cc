// omni-embed-bench, the benchmark of omni-embed: text, image-, audio- and video-document embedding speed on the 3B
// shapes, as tokens/s and percent of this machine's measured peak, with the PyTorch eager and llama.cpp peers run in
// the same invocation (notes/peers.md). This file owns the flags and the orchestration: the parent runs each
// configuration (dtype, bf16 GEMM kernel, video sweep setting) in a child process of this binary, so that its peak
// RSS is its own, then the peers, and prints the tables (report.h). A child times its rows (runner.h).
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "args.h"
#include "core/error.h"
#include "core/threads.h"
#include "io/hub.h"
#include "kernels/compute.h"
#include "kernels/matmul.h"
#include "model/embedder.h"
#include "pipeline/options.h"
#include "model/test_model.h"
#include "peers.h"
#include "report.h"
#include "runner.h"

namespace oe::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Rows = std::vector<json>;

void add_options(CLI::App& app, BenchArgs& a) {
  app.add_option("--model", a.model, "Checkpoint (default: a 3b random-weight test model, written once to the cache)");
  app.add_option("--tokens", a.tokens, "Comma-separated item lengths in tokens (or none)")->capture_default_str();
  app.add_option("--images", a.images, "Comma-separated square image sizes for image-document rows (or none)")
      ->capture_default_str();
  app.add_option("--audio", a.audio, "Comma-separated audio lengths in seconds for audio-document rows (or none)")
      ->capture_default_str();
  app.add_option("--video", a.video,
                 "Comma-separated lengths in seconds of 640x360 video with sound for video-document rows (or none)")
      ->capture_default_str();
  app.add_option("--video-fusion", a.video_fusion, "Comma-separated fusion modes of the video rows")
      ->capture_default_str();
  app.add_flag("--video-sweep", a.video_sweep,
               "Also run the paper's sequence-length sweep on a clip of the first --video length (max pixels "
               "12544/50176/200704, fps 1/2/4, audio 32/128/300 s): tokens, time and peak memory per setting");
  app.add_option("--video-max-pixels", a.video_max_pixels, "(internal) video budget of a sweep child")->group("");
  app.add_option("--fps", a.fps, "(internal) frames per second of a sweep child")->group("");
  app.add_option("--audio-max-seconds", a.audio_max_seconds, "(internal) clip length of a sweep child")->group("");
  app.add_option("--dtype", a.dtypes, "Comma-separated precisions: bf16, fp32")->capture_default_str();
  app.add_option("--bf16-gemm", a.bf16_gemm,
                 "Comma-separated kernels for the bf16 rows, each in its own run: auto (the project's AMX GEMM where "
                 "the CPU has AMX, else oneDNN), onednn, amx")
      ->capture_default_str();
  app.add_option("--threads", a.threads, "Threads (default: all cores)")->check(CLI::Range(0, MAX_THREADS));
  app.add_option("--repeats", a.repeats, "Timed runs per length (after one validated warm-up)")->capture_default_str();
  app.add_option("--peers", a.peers, "Peers to run in the same invocation: torch, llama.cpp, none")
      ->capture_default_str();
  app.add_option("--report", a.report, "Also write every result as JSON lines to this file");
  app.add_flag("--profile", a.profile,
               "After each row's timed runs, one more run with every operation timed: where the item's time went "
               "(per operation: ms, share of the item, GFLOP/s, share of the peak and, on AMX, of the fed-tile "
               "ceiling, page faults)");
  app.add_flag("--child", a.child, "(internal) run one configuration")->group("");
}

// A flag of comma-separated whole numbers, or "none".
struct NumberList {
  const char* flag;      // "--images"
  const char* expected;  // what the list holds, with an example
  int64_t lo = 0, hi = 0;  // the range of each number (unchecked when hi is 0)
  const char* unit = "";   // after the number in the range message
  const char* note = "";   // after the range
};

void check_number_list(const std::string& value, const NumberList& l) {
  if (value == "none") return;
  if (value.empty() || value.find_first_not_of("0123456789,") != std::string::npos)
    throw InvalidInput(fmt::format("{} '{}': expected {}, or none", l.flag, value, l.expected));
  if (l.hi == 0) return;
  for (const auto& v : split(value))
    if (std::stoll(v) < l.lo || std::stoll(v) > l.hi)
      throw InvalidInput(fmt::format("{}: {}{} is outside [{}, {}]{}", l.flag, v, l.unit, l.lo, l.hi, l.note));
}

// Resolves --model, writing the default 3b test model on first use.
void resolve_model(BenchArgs& a) {
  if (!a.model.empty()) {
    a.model = io::resolve_model_path(a.model).string();
    return;
  }
  const fs::path dir = model::test_models_dir() / "3b-bf16";
  if (!fs::exists(dir / "config.json")) {
    std::fprintf(stderr, "bench: writing the 3b random-weight test model to %s (once, ~9.4 GB)\n", dir.c_str());
    model::TestModelOptions o;
    o.preset = model::TestPreset::Full3B;
    o.progress = true;
    model::write_test_model(dir, o);
  }
  a.model = dir.string();
}

// Refuses a bad flag before any run starts.
void check_args(const BenchArgs& a) {
  check_number_list(a.tokens, {"--tokens", "comma-separated token counts, e.g. 128,512"});
  if (a.repeats < 1) throw InvalidInput("--repeats must be at least 1");
  check_number_list(a.images, {"--images", "comma-separated square sizes in pixels, e.g. 448,1344", 28, 8192});
  check_number_list(a.audio, {"--audio", "comma-separated lengths in seconds, e.g. 10,30,128", 1, 128, " s",
                              " (the model card's clip length)"});
  check_number_list(a.video, {"--video", "comma-separated lengths in seconds, e.g. 10,60", 1, 3600, " s"});
  if (a.video != "none")
    for (const auto& f : split(a.video_fusion)) {
      pipeline::EmbedOptions o;
      o.set_fusion(f);
      if (o.late_fusion)
        throw InvalidInput("--video-fusion: late is two separate passes (video, audio); time those modes instead");
    }
}

// The --bf16-gemm list; an unknown name, or amx on a CPU without it, is refused here, before any run.
std::vector<std::string> bf16_gemms(const BenchArgs& a) {
  const std::vector<std::string> gemms = split(a.bf16_gemm);
  if (gemms.empty()) throw InvalidInput("--bf16-gemm: expected auto, onednn, amx or a comma-separated list of them");
  for (const auto& g : gemms) kernels::resolve_bf16_gemm(kernels::parse_bf16_gemm(g));
  return gemms;
}

// Runs one child of this binary and adds its rows; a child that prints none failed.
void add_child_rows(const std::string& cmd, Rows& rows) {
  const Rows r = run_json_lines(cmd);
  if (r.empty()) throw InternalError(fmt::format("benchmark child failed: {}", cmd));
  rows.insert(rows.end(), r.begin(), r.end());
}

// One child per dtype, and per requested kernel for bf16 (fp32 always runs on oneDNN, once).
void add_dtype_rows(const BenchArgs& a, const std::string& self, int threads, Rows& rows) {
  const std::vector<std::string> gemms = bf16_gemms(a), fp32_gemm = {"auto"};
  for (const auto& dt : split(a.dtypes))
    for (const auto& g : kernels::parse_compute(dt) == kernels::Compute::BF16 ? gemms : fp32_gemm) {
      std::fprintf(stderr, "bench: omni-embed %s (bf16 GEMM: %s), tokens %s, %d threads\n", dt.c_str(), g.c_str(),
                   a.tokens.c_str(), threads);
      add_child_rows(fmt::format("{} --child --model {} --tokens {} --images {} --audio {} --video {} "
                                 "--video-fusion {} --dtype {} --bf16-gemm {} --threads {} --repeats {}{}",
                                 shell_quote(self), shell_quote(a.model), a.tokens, a.images, a.audio, a.video,
                                 a.video_fusion, dt, g, threads, a.repeats, a.profile ? " --profile" : ""),
                     rows);
    }
}

// The paper's sequence-length experiment on a clip of the first --video length (60 s by default), one axis at a time
// around the model card's budget; each setting in its own process so that its peak memory is its own.
void add_video_sweep_rows(const BenchArgs& a, const std::string& self, int threads, Rows& rows) {
  struct Setting {
    int64_t max_pixels;
    double fps, audio_s;
  };
  const std::vector<Setting> sweep = {{12'544, 2, 128}, {50'176, 2, 128}, {200'704, 2, 128}, {50'176, 1, 128},
                                      {50'176, 4, 128}, {50'176, 2, 32},  {50'176, 2, 300}};
  const std::string sweep_seconds = a.video == "none" ? "60" : split(a.video).front();
  for (const auto& dt : split(a.dtypes))
    for (const Setting& st : sweep) {
      std::fprintf(stderr, "bench: video sweep, max pixels %lld, fps %g, audio %g s (%s)\n",
                   static_cast<long long>(st.max_pixels), st.fps, st.audio_s, dt.c_str());
      add_child_rows(fmt::format("{} --child --model {} --tokens none --images none --audio none --video {} "
                                 "--video-fusion separate --video-max-pixels {} --fps {} --audio-max-seconds {} "
                                 "--dtype {} --threads {} --repeats {}",
                                 shell_quote(self), shell_quote(a.model), sweep_seconds, st.max_pixels, st.fps,
                                 st.audio_s, dt, threads, a.repeats),
                     rows);
    }
}

int run_parent(BenchArgs a) {
  resolve_model(a);
  check_args(a);
  const int threads = a.threads > 0 ? a.threads : hardware_threads();
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  Rows rows;
  add_dtype_rows(a, self, threads, rows);
  if (a.video_sweep) add_video_sweep_rows(a, self, threads, rows);
  const Rows peers = run_peers(a, threads);
  rows.insert(rows.end(), peers.begin(), peers.end());
  print_tables(rows);
  if (!a.report.empty()) write_report(a.report, rows);
  return 0;
}

}  // namespace
}  // namespace oe::bench

int main(int argc, char** argv) {
  CLI::App app{"omni-embed-bench: the benchmark of omni-embed. Text, image, audio and video embedding speed on the 3B "
               "shapes, against the PyTorch eager and llama.cpp peers"};
  oe::bench::BenchArgs a;
  oe::bench::add_options(app, a);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return a.child ? oe::bench::run_child(a) : oe::bench::run_parent(a);
  } catch (const oe::Error& e) {
    std::fprintf(stderr, "omni-embed-bench: error: %s\n", e.what());
    return e.kind() == oe::ErrorKind::Internal ? 70 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "omni-embed-bench: internal error: %s\n", e.what());
    return 70;
  }
}
