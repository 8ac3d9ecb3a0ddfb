#include "common.h"

#include <cmath>

#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "core/error.h"
#include "core/threads.h"
#include "io/hub.h"
#include "kernels/matmul.h"

namespace oe::cli {
namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

void add_media_window_options(CLI::App& app, double& window, double& overlap, const std::string& what) {
  app.add_option("--media-window", window,
                 "Seconds per window of long audio and video (frames and sound of a window together; " + what + ")")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--media-overlap", overlap, "Seconds shared by consecutive audio and video windows")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
}

void check_media_window(double window, double overlap, const pipeline::EmbedOptions& options) {
  if (window <= 0) return;
  if (overlap >= window)
    throw InvalidInput(
        fmt::format("--media-overlap ({} s) must be shorter than --media-window ({} s)", overlap, window));
  if (window > options.model.audio_max_seconds)
    throw InvalidInput(fmt::format(
        "--media-window ({} s) is longer than the audio clip length --audio-max-seconds ({} s)", window,
        options.model.audio_max_seconds));
}

void add_model_options(CLI::App& app, ModelArgs& args) {
  app.add_option("--model", args.model,
                 "Checkpoint folder, or a Hugging Face id looked up in the local Hub cache (HF_HUB_CACHE / HF_HOME)")
      ->capture_default_str();
  app.add_option("--revision", args.revision, "Hub revision (branch or tag) for a Hub id")->capture_default_str();
  app.add_option("--dtype", args.dtype, "Compute precision: bf16 (weights bf16, fp32 accumulation) or fp32")
      ->check(CLI::IsMember({"bf16", "fp32", "f32"}))
      ->capture_default_str();
  app.add_option("--bf16-gemm", args.bf16_gemm,
                 "Kernel of the bf16 linear layers: auto (the AMX GEMM where the CPU has AMX, else oneDNN), onednn or amx")
      ->check(CLI::IsMember({"auto", "onednn", "amx"}))
      ->capture_default_str();
  app.add_option("--threads", args.threads, "Threads (default: all cores)")->check(CLI::Range(0, MAX_THREADS));
  app.add_option("--adapter", args.adapter,
                 "A LoRA adapter folder (PEFT's adapter_config.json + adapter_model.safetensors) applied to the text "
                 "decoder at load")
      ->check(CLI::ExistingDirectory);
}

void add_embed_options(CLI::App& app, pipeline::EmbedOptions& o) {
  model::EmbedOptions& m = o.model;
  app.add_option("--image-min-pixels", m.image_min_pixels,
                 "Smallest image area after resizing (default: the model's preprocessor_config.json, 3136)")
      ->check(CLI::PositiveNumber);
  app.add_option("--image-max-pixels", m.image_max_pixels,
                 "Largest image area after resizing (default: the model's preprocessor_config.json, 12845056)")
      ->check(CLI::PositiveNumber);
  app.add_flag("--exif-orientation", m.image_decode.apply_exif_orientation,
               "Rotate images by their EXIF orientation first (the reference does not)");
  app.add_option("--max-image-pixels", m.image_decode.max_decoded_pixels,
                 "Refuse image files larger than this many pixels before decoding")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-image-bytes", m.image_decode.max_file_bytes,
                 "Refuse image files larger than this many bytes before reading them")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-image-decode-bytes", m.image_decode.max_decode_bytes,
                 "Refuse images whose decoding would take more memory than this many bytes (estimated from the "
                 "header: the file, the decoder's buffers, the RGB pixels)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--audio-max-seconds", m.audio_max_seconds,
                 "Audio clip length: longer audio is cut (with a warning), the rest is not even decoded")
      ->check(CLI::Range(0.03, 3600.0))
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--fusion", [&o](const std::string& v) { o.set_fusion(v); },
         "How a video's frames and sound are embedded: separate (video block then audio block, one vector: the "
         "model card's), interleaved (2-second chunks, TMRoPE), video (frames only), audio (sound only), late "
         "(two vectors, frames and sound, scores combined at search time)")
      ->check(CLI::IsMember({"separate", "interleaved", "video", "audio", "late"}))
      ->default_str(o.fusion_name());
  app.add_option_function<std::string>(
         "--video-pipeline",
         [&m](const std::string& v) { m.video.pipeline = v == "st" ? media::VideoPipeline::St : media::VideoPipeline::Card; },
         "Video frame preprocessing: card (qwen-omni-utils sampling and resize, then the processor's; the model "
         "card's) or st (the sentence-transformers processor path)")
      ->check(CLI::IsMember({"card", "st"}))
      ->default_str(m.video.pipeline == media::VideoPipeline::St ? "st" : "card");
  app.add_option("--fps", m.video.fps, "Video frames sampled per second")->check(CLI::Range(0.01, 60.0))->capture_default_str();
  app.add_option("--video-min-pixels", m.video.min_pixels, "Smallest video frame area after resizing")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--video-max-pixels", m.video.max_pixels,
                 "Largest video frame area after resizing (at most 64 merged tokens per 2 frames at the default)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-video-frame-pixels", m.video.max_frame_pixels,
                 "Refuse videos whose frames are larger than this many pixels (default: 8192x4352, the largest "
                 "frame H.264, HEVC and AV1 allow)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-video-decode-bytes", m.video.max_decode_bytes,
                 "Refuse videos whose decoding would hold more memory than this many bytes (the decoder's frames, "
                 "counted as they are allocated, and one RGB frame)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-frames", m.video.max_frames,
                 "Most frames sampled from one video: longer videos are sampled more sparsely (with a warning)")
      ->check(CLI::Range(int64_t{2}, int64_t{100'000}))
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--attention", [&m](const std::string& v) { m.attention = model::parse_attention(v); },
         "Decoder attention: bidirectional (the model's) or causal")
      ->check(CLI::IsMember({"bidirectional", "causal"}))
      ->default_str(model::attention_name(m.attention));
  // Before the prefixes: an explicit prefix given with it wins (callbacks run in the order options are added).
  app.add_flag_callback(
      "--no-prefix", [&m] { m.query_prefix = m.document_prefix = std::string(); }, "Use no role prefixes");
  app.add_option("--query-prefix", m.query_prefix, "Override the query prefix (default from the model: \"query: \")");
  app.add_option("--document-prefix", m.document_prefix,
                 "Override the document prefix (default from the model: \"passage: \")");
  app.add_option("--system-prompt", m.system_prompt, "Override the chat layout's system turn");
  app.add_option("--max-tokens", m.max_tokens, "Truncate items longer than this (default: the model's context)")
      ->check(CLI::PositiveNumber);
}

std::shared_ptr<const model::Model> load_model(const ModelArgs& args) {
  set_num_threads(args.threads);
  std::filesystem::path dir = io::resolve_model_path(args.model, args.revision);
  model::LoadOptions lo;
  lo.compute = kernels::parse_compute(args.dtype);
  lo.bf16_gemm = kernels::parse_bf16_gemm(args.bf16_gemm);
  lo.adapter = args.adapter;
  lo.decoder_layers = args.decoder_layers;
  Progress progress("loading weights (layers)", 0);
  lo.progress = [&](int64_t done, int64_t total) {
    progress.set_total(total);
    progress.update(done);
  };
  auto m = with_context(fmt::format("loading model {}", dir.string()), [&] { return model::Model::load(dir, lo); });
  progress.finish();
  return m;
}

Progress::Progress(std::string what, int64_t total)
    : what_(std::move(what)), total_(total), tty_(isatty(STDERR_FILENO) != 0), start_(now_seconds()) {}

void Progress::update(int64_t done, const std::string& extra) {
  if (!tty_) return;
  double t = now_seconds();
  if (last_draw_ >= 0 && t - last_draw_ < 0.1 && done < total_) return;
  last_draw_ = t;
  double elapsed = t - start_;
  std::string eta;
  if (total_ > 0 && done > 0 && done < total_) {
    int s = static_cast<int>(elapsed / static_cast<double>(done) * static_cast<double>(total_ - done));
    eta = fmt::format(", ETA {}:{:02d}", s / 60, s % 60);
  }
  if (total_ > 0) {
    int width = 24, filled = static_cast<int>(width * done / total_);
    std::fprintf(stderr, "\r%s [%s%s] %lld/%lld%s%s%s\033[K", what_.c_str(), std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), eta.c_str(), extra.empty() ? "" : ", ", extra.c_str());
  } else {
    std::fprintf(stderr, "\r%s %lld%s%s\033[K", what_.c_str(), static_cast<long long>(done),
                 extra.empty() ? "" : ", ", extra.c_str());
  }
  std::fflush(stderr);
}

void Progress::set_total(int64_t total) { total_ = total; }

void Progress::clear() {
  if (tty_ && last_draw_ >= 0) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    last_draw_ = -1;
  }
}

void Progress::finish() {
  if (tty_ && last_draw_ >= 0) std::fprintf(stderr, "\n");
}

void StageProgress::operator()(const std::string& stage, int64_t done, int64_t total) {
  if (stage != stage_) {
    bar_.clear();
    bar_ = Progress(stage, total);
    stage_ = stage;
  }
  bar_.update(done);
}

}  // namespace oe::cli
