// omni-embed bench: text, image-, audio- and video-document embedding speed on the 3B shapes, as tokens/s and percent of this machine's measured
// peak, with the PyTorch eager and llama.cpp peers run in the same invocation (notes/peers.md).
// Each (dtype) configuration runs in a child process of this binary, so its peak RSS is its own.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "core/threads.h"
#include "core/timer.h"
#include "io/hub.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"
#include "model/embedder.h"
#include "model/test_model.h"

namespace oe::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct BenchArgs {
  std::string model;
  std::string tokens = "16,128,512,2048";
  std::string images = "448,1344";
  std::string audio = "10,30,128";  // seconds
  std::string video = "10,60";      // seconds of 640×360 video with sound
  std::string video_fusion = "separate,interleaved";
  bool video_sweep = false;         // the paper's sequence-length experiment on a 60 s clip
  // internal (sweep children): the video budget of this run
  int64_t video_max_pixels = 50'176;
  double fps = 2.0;
  double audio_max_seconds = 128;
  std::string dtypes = "bf16,fp32";
  std::string bf16_gemm = "auto";   // comma-separated bf16 GEMM kernels (a child takes one)
  int threads = 0;
  int repeats = 3;
  std::string peers = "torch,llama.cpp";
  std::string report;
  bool child = false;  // internal: run one dtype and print JSON lines
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');)
    if (!part.empty()) out.push_back(part);
  return out;
}

// A temporary folder removed with its contents at scope exit.
struct ScratchDir {
  fs::path dir;
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "omni-embed-bench-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw IoError("cannot create a temporary folder for the benchmark media");
    dir = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

fs::path default_bench_model() { return omni_embed_cache_dir() / "test-models" / "3b-bf16"; }

// Ids of exactly n tokens in the query layout: the chat head and prefix, filler text tokens, the closing tokens.
model::PreparedInput bench_input(const model::Embedder& e, int64_t n) {
  const auto& tok = e.model().tokenizer();
  auto parts = text::chat_parts(e.options().prompts);
  auto head = tok.encode(parts.head + e.options().prompts.query_prefix);
  auto tail = tok.encode(parts.tail);
  auto filler = tok.encode(" the quick brown fox jumps over the lazy dog");
  model::PreparedInput p;
  p.input_ids.assign(head.begin(), head.end());
  for (size_t i = 0; static_cast<int64_t>(p.input_ids.size() + tail.size()) < n; ++i)
    p.input_ids.push_back(filler[i % filler.size()]);
  p.input_ids.insert(p.input_ids.end(), tail.begin(), tail.end());
  p.input_ids.resize(static_cast<size_t>(n));
  p.position_ids = model::text_position_ids(n);
  return p;
}

// A square image of random pixels (the preprocessing and the encoders do not depend on the content).
media::RgbImage bench_image(int64_t size) {
  media::RgbImage im;
  im.width = im.height = size;
  im.pixels.resize(static_cast<size_t>(size * size * 3));
  uint32_t x = 2463534242u;
  for (auto& p : im.pixels) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p = static_cast<uint8_t>(x >> 24);
  }
  return im;
}

// A clip of `seconds` at 16 kHz: a chirp with a little noise (the encoders do not depend on the content).
model::AudioClip bench_audio(int64_t seconds) {
  model::AudioClip c;
  c.name = fmt::format("{} s bench clip", seconds);
  c.samples.resize(static_cast<size_t>(seconds * 16000));
  uint32_t x = 88172645u;
  for (size_t i = 0; i < c.samples.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    const double t = static_cast<double>(i) / 16000.0;
    c.samples[i] = static_cast<float>(0.3 * std::sin(2 * M_PI * (200.0 + 20.0 * t) * t) +
                                      0.01 * (static_cast<double>(x >> 8) / 16777216.0 - 0.5));
  }
  return c;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A 640×360, 25 fps H.264 test video of `seconds` with a 44.1 kHz stereo AAC tone, written with the ffmpeg CLI
// into `dir` (the same clip bench/peers/torch_video.py makes).
fs::path bench_video(const fs::path& dir, int64_t seconds) {
  const fs::path out = dir / fmt::format("bench-{}s.mp4", seconds);
  if (fs::exists(out)) return out;
  const std::string cmd = fmt::format(
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=640x360:rate=25:duration={0} -f lavfi -i "
      "sine=frequency=440:sample_rate=44100:duration={0} -ac 2 -c:v libx264 -pix_fmt yuv420p -c:a aac {1}",
      seconds, shell_quote(out.string()));
  if (std::system(cmd.c_str()) != 0)
    throw IoError(fmt::format("cannot write the benchmark video with the ffmpeg CLI (is ffmpeg installed?): {}", cmd));
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Timings of one media document: a validated warm-up, then `repeats` runs of prepare + embed.
struct MediaRun {
  model::PreparedInput input;
  std::vector<double> total, prepare, tower, decoder, audio;
};

template <class Prepare>
MediaRun time_media_item(const model::Embedder& e, int repeats, Prepare prepare, double model::EmbedTimings::*tower) {
  MediaRun r;
  r.input = prepare();
  auto v = e.embed_prepared({r.input}).front().vector;
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  if (!std::isfinite(norm) || std::abs(norm - 1.0) > 1e-3)
    throw InternalError(fmt::format("benchmark output is not a unit vector (norm² {})", norm));
  for (int i = 0; i < repeats; ++i) {
    Timer total, prep;
    auto p = prepare();
    r.prepare.push_back(prep.seconds());
    model::EmbedTimings t;
    e.embed_prepared({p}, nullptr, {}, &t);
    r.total.push_back(total.seconds());
    r.tower.push_back(t.*tower);
    r.decoder.push_back(t.decoder);
    r.audio.push_back(t.audio);
  }
  return r;
}

// The engine column of this process's rows: "omni-embed", or "omni-embed/onednn" and "omni-embed/amx" when bf16
// runs on a kernel chosen with --bf16-gemm (the comparison rows).
std::string& engine_label() {
  static std::string label = "omni-embed";
  return label;
}

// The rows the peers are compared against: omni-embed in bf16 on the kernel it uses by default on this CPU (plain
// "omni-embed", or that kernel's row in a --bf16-gemm comparison).
bool is_reference_row(const json& r) {
  const std::string engine = r.value("engine", "");
  const std::string default_kernel =
      std::string("omni-embed/") + kernels::bf16_gemm_name(kernels::resolve_bf16_gemm(kernels::Bf16Gemm::Auto));
  return r.value("dtype", "") == "bf16" && (engine == "omni-embed" || engine == default_kernel);
}

// The JSON row of a media document; `tower` names the encoder's keys ("vision", "audio_encoder").
json media_row(const MediaRun& r, double tower_flops, double decoder_flops, double peak, const char* peak_unit,
               kernels::Compute compute, const std::string& tower) {
  const double med = median(r.total), tower_med = median(r.tower), dec_med = median(r.decoder);
  auto percent = [&](double flops, double seconds) {
    return peak > 0 && seconds > 0 ? 100.0 * flops / seconds / 1e9 / peak : 0.0;
  };
  return json{{"engine", engine_label()}, {"dtype", kernels::compute_name(compute)}, {"tokens", r.input.n_tokens()},
              {"threads", num_threads()}, {"seconds_median", med},
              {"seconds_min", *std::min_element(r.total.begin(), r.total.end())},
              {"seconds_max", *std::max_element(r.total.begin(), r.total.end())}, {tower + "_seconds", tower_med},
              {"decoder_seconds", dec_med}, {"gflops", (tower_flops + decoder_flops) / med / 1e9},
              {"peak_gflops", peak}, {"peak_unit", peak_unit},
              {"percent_of_peak", percent(tower_flops + decoder_flops, med)},
              {tower + "_percent_of_peak", percent(tower_flops, tower_med)},
              {"decoder_percent_of_peak", percent(decoder_flops, dec_med)},
              {"model_flops", tower_flops + decoder_flops}, {"peak_rss_bytes", peak_rss_bytes()}};
}

int run_child(const BenchArgs& a) {
  set_num_threads(a.threads);
  const auto compute = parse_compute(a.dtypes);
  const kernels::Bf16Gemm gemm = kernels::parse_bf16_gemm(a.bf16_gemm);
  kernels::set_bf16_gemm(gemm);
  if (compute == kernels::Compute::BF16 && gemm != kernels::Bf16Gemm::Auto)
    engine_label() = std::string("omni-embed/") + kernels::bf16_gemm_name(kernels::resolve_bf16_gemm(gemm));
  // The peak of the unit the matmuls really run on: AMX tiles for bf16 where present, else AVX-512.
  const double vector_peak = kernels::measure_peak_gflops(compute, num_threads(), 1.0);
  const double amx_peak = compute == kernels::Compute::BF16 ? kernels::measure_amx_peak_gflops(num_threads(), 1.0) : 0;
  const double peak = std::max(vector_peak, amx_peak);
  const char* peak_unit = amx_peak > vector_peak ? "AMX tdpbf16ps"
                          : compute == kernels::Compute::BF16 ? "AVX-512 vdpbf16ps" : "AVX-512 vfmadd";
  Timer load_timer;
  model::LoadOptions lo;
  lo.compute = compute;
  auto m = model::Model::load(a.model, lo);
  const double load_s = load_timer.seconds();
  model::EmbedOptions eo;
  eo.prompts = m->prompt_defaults();
  model::Embedder e(m, eo);
  eo.video.max_pixels = a.video_max_pixels;
  eo.video.fps = a.fps;
  eo.audio_max_samples = std::llround(a.audio_max_seconds * 16000.0);
  const auto& dec = m->text_decoder();
  for (const auto& tstr : split(a.tokens)) {
    if (tstr == "none") continue;
    const int64_t n = std::stoll(tstr);
    if (n < 1 || n > m->config().text.max_position_embeddings)
      throw InvalidInput(fmt::format("--tokens: {} is outside [1, {}]", n, m->config().text.max_position_embeddings));
    auto input = bench_input(e, n);
    // Validate before timing: a unit vector of finite values.
    auto v = e.embed_prepared({input}).front().vector;
    double norm = 0;
    for (float x : v) norm += static_cast<double>(x) * x;
    if (!std::isfinite(norm) || std::abs(norm - 1.0) > 1e-3)
      throw InternalError(fmt::format("benchmark output is not a unit vector (norm² {})", norm));
    std::vector<double> times;
    for (int r = 0; r < a.repeats; ++r) {
      Timer t;
      e.embed_prepared({input});
      times.push_back(t.seconds());
    }
    const double med = median(times);
    const double flops = model::decoder_flops(dec.config(), dec.matmul_params(), {n});
    json j{{"engine", engine_label()}, {"dtype", kernels::compute_name(compute)}, {"tokens", n},
           {"threads", num_threads()}, {"seconds_median", med},
           {"seconds_min", *std::min_element(times.begin(), times.end())},
           {"seconds_max", *std::max_element(times.begin(), times.end())}, {"tokens_per_second", n / med},
           {"gflops", flops / med / 1e9}, {"peak_gflops", peak}, {"peak_unit", peak_unit},
           {"percent_of_peak", peak > 0 ? 100.0 * flops / med / 1e9 / peak : 0.0},
           {"model_flops", flops}, {"load_seconds", load_s}, {"packed_weight_bytes", dec.packed_bytes()},
           {"peak_rss_bytes", peak_rss_bytes()}};
    std::cout << j.dump() << std::endl;
  }
  for (const auto& size_str : split(a.images)) {
    if (size_str == "none") continue;
    const int64_t size = std::stoll(size_str);
    const media::RgbImage image = bench_image(size);
    const auto& enc = m->vision_encoder();
    const MediaRun r = time_media_item(e, a.repeats, [&] { return e.prepare(text::Role::Document, "", {image}); },
                                       &model::EmbedTimings::vision);
    int64_t image_tokens = 0;
    for (const auto& g : r.input.image_grids) image_tokens += g.patches() / enc.merge_unit();
    const double vflops = model::vision_flops(enc.config(), enc.matmul_params(), r.input.image_grids);
    json j = media_row(r, vflops, model::decoder_flops(dec.config(), dec.matmul_params(), {r.input.n_tokens()}),
                       peak, peak_unit, compute, "vision");
    j["image"] = size;
    j["image_tokens"] = image_tokens;
    j["preprocess_seconds"] = median(r.prepare);
    std::cout << j.dump() << std::endl;
  }
  for (const auto& sec_str : split(a.audio)) {
    if (sec_str == "none") continue;
    const int64_t seconds = std::stoll(sec_str);
    const model::AudioClip clip = bench_audio(seconds);
    const auto& enc = m->audio_encoder();
    const MediaRun r = time_media_item(e, a.repeats, [&] { return e.prepare(text::Role::Document, "", {}, {clip}); },
                                       &model::EmbedTimings::audio);
    const int64_t frames = r.input.audio_features.front().valid_frames;
    json j = media_row(r, model::audio_flops(enc.config(), {frames}),
                       model::decoder_flops(dec.config(), dec.matmul_params(), {r.input.n_tokens()}), peak, peak_unit,
                       compute, "audio_encoder");
    j["audio_seconds"] = seconds;
    j["audio_tokens"] = media::audio_token_count(frames);
    j["frontend_seconds"] = median(r.prepare);
    j["frontend_percent_of_total"] = 100.0 * median(r.prepare) / median(r.total);
    std::cout << j.dump() << std::endl;
  }
  if (a.video != "none") {
    ScratchDir tmp;
    for (const auto& sec_str : split(a.video)) {
      const int64_t seconds = std::stoll(sec_str);
      const fs::path clip = bench_video(tmp.dir, seconds);
      for (const auto& fusion : split(a.video_fusion)) {
        model::EmbedOptions vo = eo;
        vo.fusion = model::parse_fusion(fusion);
        model::Embedder ve(m, vo);
        model::EmbedRequest req;
        req.role = text::Role::Document;
        req.videos = {clip};
        const MediaRun r = time_media_item(ve, a.repeats, [&] { return ve.prepare(req); }, &model::EmbedTimings::vision);
        const auto& venc = m->vision_encoder();
        const double vflops = model::vision_flops(venc.config(), venc.matmul_params(), r.input.video_grids);
        std::vector<int64_t> frames;
        int64_t audio_tokens = 0;
        for (const auto& f : r.input.audio_features) {
          frames.push_back(f.valid_frames);
          audio_tokens += media::audio_token_count(f.valid_frames);
        }
        const double aflops = frames.empty() ? 0.0 : model::audio_flops(m->audio_encoder().config(), frames);
        json j = media_row(r, vflops + aflops,
                           model::decoder_flops(dec.config(), dec.matmul_params(), {r.input.n_tokens()}), peak,
                           peak_unit, compute, "encoders");
        int64_t video_tokens = 0;
        for (const auto& g : r.input.video_grids) video_tokens += g.patches() / venc.merge_unit();
        j["video_seconds"] = seconds;
        j["fusion"] = fusion;
        j["video_tokens"] = video_tokens;
        j["audio_tokens"] = audio_tokens;
        j["video_max_pixels"] = a.video_max_pixels;
        j["fps"] = a.fps;
        j["audio_max_seconds"] = a.audio_max_seconds;
        j["decode_seconds"] = median(r.prepare);
        j["decode_percent_of_total"] = 100.0 * median(r.prepare) / median(r.total);
        // media_row's "encoders" keys mix two towers timed apart: report each tower on its own instead.
        j.erase("encoders_seconds");
        j.erase("encoders_percent_of_peak");
        j["vision_seconds"] = median(r.tower);
        j["audio_encoder_seconds"] = median(r.audio);
        if (peak > 0 && median(r.tower) > 0)
          j["vision_percent_of_peak"] = 100.0 * vflops / median(r.tower) / 1e9 / peak;
        if (peak > 0 && median(r.audio) > 0)
          j["audio_encoder_percent_of_peak"] = 100.0 * aflops / median(r.audio) / 1e9 / peak;
        j["media_tokens_per_second_of_media"] = static_cast<double>(video_tokens + audio_tokens) / seconds;
        std::cout << j.dump() << std::endl;
      }
    }
  }
  return 0;
}

// Runs a command, returning the JSON objects it printed one per line (other lines are ignored).
std::vector<json> run_json_lines(const std::string& cmd) {
  std::vector<json> out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[1 << 16];
  while (std::fgets(buf, sizeof buf, p)) {
    try {
      auto j = json::parse(buf);
      if (j.is_object()) out.push_back(j);
    } catch (const json::exception&) {
    }
  }
  pclose(p);
  return out;
}


std::string machine_name() {
  FILE* f = std::fopen("/proc/cpuinfo", "r");
  std::string name = "unknown CPU";
  if (!f) return name;
  char line[512];
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "model name", 10) == 0) {
      const char* c = std::strchr(line, ':');
      if (c) name = std::string(c + 2, std::strcspn(c + 2, "\n"));
      break;
    }
  }
  std::fclose(f);
  return fmt::format("machine: {}, {} hardware threads", name, hardware_threads());
}

// Table cells of a result row: its percent of peak and its peak RSS ("" when the row has none).
std::string percent_cell(const json& r) {
  return r.contains("percent_of_peak") ? fmt::format("{:.1f}", r.value("percent_of_peak", 0.0)) : "";
}
std::string rss_cell(const json& r) {
  return r.contains("peak_rss_bytes")
             ? fmt::format("{:.2f} GB", static_cast<double>(r.value("peak_rss_bytes", int64_t{0})) / 1e9)
             : "";
}

// Video documents: one line per (engine, length, fusion, budget), the time split into decode + resize, vision tower,
// audio tower and decoder, and how much slower a peer is than omni-embed bf16 on the same setting.
void print_video_table(const std::vector<json>& rows) {
  auto key = [](const json& r) {
    return fmt::format("{}|{}|{}|{}|{}", r.value("video_seconds", int64_t{0}), r.value("fusion", ""),
                       r.value("video_max_pixels", int64_t{50176}), r.value("fps", 2.0),
                       r.value("audio_max_seconds", 128.0));
  };
  std::map<std::string, double> ours;
  for (const auto& r : rows)
    if (r.contains("video_seconds") && is_reference_row(r))
      ours[key(r)] = r.value("seconds_median", 0.0);
  bool header = false;
  for (const auto& r : rows) {
    if (!r.contains("video_seconds")) continue;
    if (!header) {
      std::printf("\nvideo documents with sound, 640x360 (end to end: decode + resize, vision, audio, decoder)\n");
      std::printf("%-20s %-5s %5s %-11s %7s %4s %5s %7s %7s %8s %7s %8s %7s %7s %6s %9s %s\n", "engine", "dtype",
                  "video", "fusion", "max px", "fps", "aud s", "tokens", "tok/s", "s/item", "decode", "vision", "audio",
                  "dec s", "%peak", "peak RSS", "vs omni-embed bf16");
      header = true;
    }
    const std::string name = r.contains("engine") ? r.value("engine", "") : r.value("peer", "?");
    const double s = r.value("seconds_median", 0.0);
    std::string ratio;
    if (!r.contains("engine") && ours.count(key(r)) && ours[key(r)] > 0)
      ratio = fmt::format("{:.2f}x slower", s / ours[key(r)]);
    std::printf("%-20s %-5s %5s %-11s %7lld %4g %5g %7lld %7.1f %8.2f %7.2f %8.2f %7.2f %7.2f %6s %9s %s\n",
                name.c_str(), r.value("dtype", "").c_str(),
                fmt::format("{} s", r.value("video_seconds", int64_t{0})).c_str(), r.value("fusion", "").c_str(),
                static_cast<long long>(r.value("video_max_pixels", int64_t{50176})), r.value("fps", 2.0),
                r.value("audio_max_seconds", 128.0), static_cast<long long>(r.value("tokens", int64_t{0})),
                static_cast<double>(r.value("video_tokens", int64_t{0}) + r.value("audio_tokens", int64_t{0})) /
                    std::max<double>(1.0, static_cast<double>(r.value("video_seconds", int64_t{1}))),
                s, r.value("decode_seconds", 0.0),
                r.value("vision_seconds", 0.0), r.value("audio_encoder_seconds", 0.0), r.value("decoder_seconds", 0.0),
                percent_cell(r).c_str(),
                rss_cell(r).c_str(),
                ratio.c_str());
  }
}

// One row per measurement; peers get their time ratio to omni-embed bf16 at the same length.
void print_table(const std::vector<json>& rows) {
  std::map<int64_t, double> ours;
  for (const auto& r : rows)
    if (is_reference_row(r))
      ours[r.value("tokens", int64_t{0})] = r.value("seconds_median", 0.0);
  std::printf("\n%s\n", machine_name().c_str());
  std::printf("%-14s %-5s %7s %10s %10s %9s %8s %10s %s\n", "engine", "dtype", "tokens", "s/item", "tokens/s",
              "GFLOP/s", "%peak", "peak RSS", "vs omni-embed bf16");
  for (const auto& r : rows) {
    if (r.contains("image") || r.contains("audio_seconds") || r.contains("video_seconds")) continue;
    if (r.contains("skipped")) {
      std::printf("%-14s skipped: %s\n", r.value("peer", "?").c_str(), r.value("skipped", "").c_str());
      continue;
    }
    const std::string name = r.contains("engine") ? r.value("engine", "") : r.value("peer", "?");
    const int64_t n = r.value("tokens", int64_t{0});
    const double s = r.value("seconds_median", 0.0);
    std::string ratio = "";
    if (!r.contains("engine") && ours.count(n) && ours[n] > 0) ratio = fmt::format("{:.2f}x slower", s / ours[n]);
    std::printf("%-14s %-5s %7lld %10.3f %10.1f %9s %8s %10s %s\n", name.c_str(), r.value("dtype", "").c_str(),
                static_cast<long long>(n), s, s > 0 ? static_cast<double>(n) / s : 0.0,
                r.contains("gflops") ? fmt::format("{:.0f}", r.value("gflops", 0.0)).c_str() : "",
                percent_cell(r).c_str(),
                rss_cell(r).c_str(),
                ratio.c_str());
  }
  std::map<int64_t, double> ours_image;
  for (const auto& r : rows)
    if (r.contains("image") && is_reference_row(r))
      ours_image[r.value("image", int64_t{0})] = r.value("seconds_median", 0.0);
  bool header = false;
  for (const auto& r : rows) {
    if (!r.contains("image")) continue;
    if (!header) {
      std::printf("\nimage documents (end to end: preprocessing + vision encoder + decoder)\n");
      std::printf("%-14s %-5s %9s %7s %9s %8s %8s %8s %8s %8s %s\n", "engine", "dtype", "image", "tokens", "s/item",
                  "prep s", "vision s", "dec s", "%peak", "peak RSS", "vs omni-embed bf16");
      header = true;
    }
    const std::string name = r.contains("engine") ? r.value("engine", "") : r.value("peer", "?");
    const int64_t size = r.value("image", int64_t{0});
    const double s = r.value("seconds_median", 0.0);
    std::string ratio;
    if (!r.contains("engine") && ours_image.count(size) && ours_image[size] > 0)
      ratio = fmt::format("{:.2f}x slower", s / ours_image[size]);
    std::printf("%-14s %-5s %9s %7lld %9.3f %8.3f %8.3f %8.3f %8s %8s %s\n", name.c_str(),
                r.value("dtype", "").c_str(), fmt::format("{0}x{0}", size).c_str(),
                static_cast<long long>(r.value("tokens", int64_t{0})), s, r.value("preprocess_seconds", 0.0),
                r.value("vision_seconds", 0.0), r.value("decoder_seconds", 0.0),
                percent_cell(r).c_str(),
                rss_cell(r).c_str(),
                ratio.c_str());
  }
  std::map<int64_t, double> ours_audio;
  for (const auto& r : rows)
    if (r.contains("audio_seconds") && is_reference_row(r))
      ours_audio[r.value("audio_seconds", int64_t{0})] = r.value("seconds_median", 0.0);
  header = false;
  for (const auto& r : rows) {
    if (!r.contains("audio_seconds")) continue;
    if (!header) {
      std::printf("\naudio documents (end to end: log-mel front end + audio encoder + decoder)\n");
      std::printf("%-20s %-5s %6s %7s %9s %8s %9s %8s %8s %8s %s\n", "engine", "dtype", "audio", "tokens", "s/item",
                  "front s", "encoder s", "dec s", "%peak", "peak RSS", "vs omni-embed bf16");
      header = true;
    }
    const std::string name = r.contains("engine") ? r.value("engine", "") : r.value("peer", "?");
    const int64_t sec = r.value("audio_seconds", int64_t{0});
    const double s = r.value("seconds_median", 0.0);
    std::string ratio;
    if (!r.contains("engine") && ours_audio.count(sec) && ours_audio[sec] > 0)
      ratio = fmt::format("{:.2f}x slower", s / ours_audio[sec]);
    std::printf("%-20s %-5s %6s %7lld %9.3f %8.3f %9.3f %8.3f %8s %8s %s\n", name.c_str(), r.value("dtype", "").c_str(),
                fmt::format("{} s", sec).c_str(), static_cast<long long>(r.value("tokens", int64_t{0})), s,
                r.value("frontend_seconds", 0.0), r.value("audio_encoder_seconds", 0.0), r.value("decoder_seconds", 0.0),
                percent_cell(r).c_str(),
                rss_cell(r).c_str(),
                ratio.c_str());
  }
  print_video_table(rows);
  std::set<std::string> seen;
  for (const auto& r : rows)
    if (r.contains("peak_gflops") && seen.insert(r.value("dtype", "")).second)
      std::printf("measured %s peak on %d threads: %.0f GFLOP/s (%s)\n", r.value("dtype", "").c_str(),
                  r.value("threads", 0), r.value("peak_gflops", 0.0), r.value("peak_unit", "").c_str());
}

int run_parent(BenchArgs a) {
  if (a.model.empty()) {
    fs::path dir = default_bench_model();
    if (!fs::exists(dir / "config.json")) {
      std::fprintf(stderr, "bench: writing the 3b random-weight test model to %s (once, ~9.4 GB)\n", dir.c_str());
      model::TestModelOptions o;
      o.preset = model::TestPreset::Full3B;
      o.progress = true;
      model::write_test_model(dir, o);
    }
    a.model = dir.string();
  } else {
    a.model = io::resolve_model_path(a.model).string();
  }
  if (a.tokens != "none" && (a.tokens.empty() || a.tokens.find_first_not_of("0123456789,") != std::string::npos))
    throw InvalidInput(fmt::format("--tokens '{}': expected comma-separated token counts, e.g. 128,512, or none",
                                   a.tokens));
  if (a.repeats < 1) throw InvalidInput("--repeats must be at least 1");
  if (a.images != "none") {
    if (a.images.empty() || a.images.find_first_not_of("0123456789,") != std::string::npos)
      throw InvalidInput(fmt::format("--images '{}': expected comma-separated square sizes in pixels, e.g. 448,1344, "
                                     "or none", a.images));
    for (const auto& sz : split(a.images))
      if (std::stoll(sz) < 28 || std::stoll(sz) > 8192)
        throw InvalidInput(fmt::format("--images: {} is outside [28, 8192]", sz));
  }
  if (a.audio != "none") {
    if (a.audio.empty() || a.audio.find_first_not_of("0123456789,") != std::string::npos)
      throw InvalidInput(fmt::format("--audio '{}': expected comma-separated lengths in seconds, e.g. 10,30,128, or "
                                     "none", a.audio));
    for (const auto& sec : split(a.audio))
      if (std::stoll(sec) < 1 || std::stoll(sec) > 128)
        throw InvalidInput(fmt::format("--audio: {} s is outside [1, 128] (the model card's clip length)", sec));
  }
  if (a.video != "none") {
    if (a.video.empty() || a.video.find_first_not_of("0123456789,") != std::string::npos)
      throw InvalidInput(fmt::format("--video '{}': expected comma-separated lengths in seconds, e.g. 10,60, or none",
                                     a.video));
    for (const auto& sec : split(a.video))
      if (std::stoll(sec) < 1 || std::stoll(sec) > 3600)
        throw InvalidInput(fmt::format("--video: {} s is outside [1, 3600]", sec));
    for (const auto& f : split(a.video_fusion))
      if (model::parse_fusion(f) == model::Fusion::Late)
        throw InvalidInput("--video-fusion: late is two separate passes (video, audio); time those modes instead");
  }
  const int threads = a.threads > 0 ? a.threads : hardware_threads();
  std::vector<json> rows;
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::vector<std::string> gemms = split(a.bf16_gemm);
  if (gemms.empty()) throw InvalidInput("--bf16-gemm: expected auto, onednn, amx or a comma-separated list of them");
  for (const auto& g : gemms)  // refuse an unknown name, or amx on a CPU without it, before any run
    if (kernels::parse_bf16_gemm(g) == kernels::Bf16Gemm::Amx) kernels::set_bf16_gemm(kernels::Bf16Gemm::Amx);
  kernels::set_bf16_gemm(kernels::Bf16Gemm::Auto);
  for (const auto& dt : split(a.dtypes)) {
    // bf16 once per requested kernel; fp32 always runs on oneDNN, once.
    for (const auto& g : parse_compute(dt) == kernels::Compute::BF16 ? gemms : std::vector<std::string>{"auto"}) {
      std::string cmd =
          fmt::format("{} bench --child --model {} --tokens {} --images {} --audio {} --video {} --video-fusion {} "
                      "--dtype {} --bf16-gemm {} --threads {} --repeats {}",
                      shell_quote(self), shell_quote(a.model), a.tokens, a.images, a.audio, a.video, a.video_fusion,
                      dt, g, threads, a.repeats);
      std::fprintf(stderr, "bench: omni-embed %s (bf16 GEMM: %s), tokens %s, %d threads\n", dt.c_str(), g.c_str(),
                   a.tokens.c_str(), threads);
      auto r = run_json_lines(cmd);
      if (r.empty()) throw InternalError(fmt::format("benchmark child failed: {}", cmd));
      rows.insert(rows.end(), r.begin(), r.end());
    }
  }
  if (a.video_sweep) {
    // The paper's sequence-length experiment on a clip of the first --video length (60 s by default), one axis at a
    // time around the model card's budget; each setting in its own process so that its peak memory is its own.
    struct Setting {
      int64_t max_pixels;
      double fps, audio_s;
    };
    const std::vector<Setting> sweep = {{12'544, 2, 128}, {50'176, 2, 128}, {200'704, 2, 128}, {50'176, 1, 128},
                                        {50'176, 4, 128}, {50'176, 2, 32},  {50'176, 2, 300}};
    const std::string sweep_seconds = a.video == "none" ? "60" : split(a.video).front();
    for (const auto& dt : split(a.dtypes))
      for (const Setting& st : sweep) {
        const std::string cmd = fmt::format(
            "{} bench --child --model {} --tokens none --images none --audio none --video {} --video-fusion separate "
            "--video-max-pixels {} --fps {} --audio-max-seconds {} --dtype {} --threads {} --repeats {}",
            shell_quote(self), shell_quote(a.model), sweep_seconds, st.max_pixels, st.fps, st.audio_s, dt, threads,
            a.repeats);
        std::fprintf(stderr, "bench: video sweep, max pixels %lld, fps %g, audio %g s (%s)\n",
                     static_cast<long long>(st.max_pixels), st.fps, st.audio_s, dt.c_str());
        auto r = run_json_lines(cmd);
        if (r.empty()) throw InternalError(fmt::format("benchmark child failed: {}", cmd));
        rows.insert(rows.end(), r.begin(), r.end());
      }
  }
  const fs::path peers_dir = fs::path(OE_SOURCE_DIR) / "bench" / "peers";
  for (const auto& peer : split(a.peers)) {
    std::string cmd;
    if (a.tokens == "none" && (peer == "torch" || peer == "llama.cpp"))
      cmd = "";  // no text rows: only the peer's media rows below
    else if (peer == "torch")
      cmd = fmt::format("/usr/bin/python3 {} --tokens {} --threads {} --repeats {}",
                        shell_quote((peers_dir / "torch_eager.py").string()), a.tokens, threads, a.repeats);
    else if (peer == "llama.cpp")
      cmd = fmt::format("bash {} --tokens {} --threads {}", shell_quote((peers_dir / "llama_cpp.sh").string()),
                        a.tokens, threads);
    else if (peer == "none")
      continue;
    else
      throw InvalidInput(fmt::format("unknown peer '{}': expected torch, llama.cpp or none", peer));
    if (!cmd.empty()) {
      std::fprintf(stderr, "bench: peer %s\n", peer.c_str());
      auto r = run_json_lines(cmd);
      if (r.empty()) r.push_back(json{{"peer", peer}, {"skipped", "the peer script printed no result"}});
      rows.insert(rows.end(), r.begin(), r.end());
    }
    if (peer == "torch" && a.images != "none") {
      const std::string vcmd = fmt::format("/usr/bin/python3 {} --images {} --threads {} --repeats {}",
                                           shell_quote((peers_dir / "torch_vision.py").string()), a.images, threads,
                                           a.repeats);
      std::fprintf(stderr, "bench: peer torch (image documents)\n");
      auto v = run_json_lines(vcmd);
      if (v.empty()) v.push_back(json{{"peer", "torch-vision"}, {"skipped", "the peer script printed no result"}});
      rows.insert(rows.end(), v.begin(), v.end());
    }
    if (peer == "torch" && a.audio != "none") {
      const std::string acmd = fmt::format("/usr/bin/python3 {} --audio-seconds {} --threads {} --repeats {}",
                                           shell_quote((peers_dir / "torch_audio.py").string()), a.audio, threads,
                                           a.repeats);
      std::fprintf(stderr, "bench: peer torch (audio documents)\n");
      auto v = run_json_lines(acmd);
      if (v.empty()) v.push_back(json{{"peer", "torch-audio"}, {"skipped", "the peer script printed no result"}});
      rows.insert(rows.end(), v.begin(), v.end());
    }
    if (peer == "torch" && a.video != "none") {
      const std::string vcmd = fmt::format("/usr/bin/python3 {} --video-seconds {} --fusion {} --threads {} --repeats {}",
                                           shell_quote((peers_dir / "torch_video.py").string()), a.video,
                                           a.video_fusion, threads, a.repeats);
      std::fprintf(stderr, "bench: peer torch (video documents)\n");
      auto v = run_json_lines(vcmd);
      if (v.empty()) v.push_back(json{{"peer", "torch-video"}, {"skipped", "the peer script printed no result"}});
      rows.insert(rows.end(), v.begin(), v.end());
    }
  }
  print_table(rows);
  if (!a.report.empty()) {
    std::FILE* f = std::fopen(a.report.c_str(), "w");
    if (!f) throw IoError(fmt::format("cannot write --report {}", a.report));
    for (const auto& r : rows) std::fprintf(f, "%s\n", r.dump().c_str());
    std::fclose(f);
  }
  return 0;
}

}  // namespace

VerbRunner register_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* sub = app.add_subcommand(
      "bench", "Benchmark text, image, audio and video embedding on the 3B shapes against the PyTorch and llama.cpp peers");
  sub->add_option("--model", a->model, "Checkpoint (default: a 3b random-weight test model, written once to the cache)");
  sub->add_option("--tokens", a->tokens, "Comma-separated item lengths in tokens (or none)")->capture_default_str();
  sub->add_option("--images", a->images,
                  "Comma-separated square image sizes for image-document rows (or none)")
      ->capture_default_str();
  sub->add_option("--audio", a->audio, "Comma-separated audio lengths in seconds for audio-document rows (or none)")
      ->capture_default_str();
  sub->add_option("--video", a->video,
                  "Comma-separated lengths in seconds of 640x360 video with sound for video-document rows (or none)")
      ->capture_default_str();
  sub->add_option("--video-fusion", a->video_fusion, "Comma-separated fusion modes of the video rows")
      ->capture_default_str();
  sub->add_flag("--video-sweep", a->video_sweep,
                "Also run the paper's sequence-length sweep on a clip of the first --video length (max pixels 12544/50176/200704, fps 1/2/4, "
                "audio 32/128/300 s): tokens, time and peak memory per setting");
  sub->add_option("--video-max-pixels", a->video_max_pixels, "(internal) video budget of a sweep child")->group("");
  sub->add_option("--fps", a->fps, "(internal) frames per second of a sweep child")->group("");
  sub->add_option("--audio-max-seconds", a->audio_max_seconds, "(internal) clip length of a sweep child")->group("");
  sub->add_option("--dtype", a->dtypes, "Comma-separated precisions: bf16, fp32")->capture_default_str();
  sub->add_option("--bf16-gemm", a->bf16_gemm,
                  "Comma-separated kernels for the bf16 rows, each in its own run: auto (the project's AMX GEMM where "
                  "the CPU has AMX, else oneDNN), onednn, amx")
      ->capture_default_str();
  sub->add_option("--threads", a->threads, "Threads (default: all cores)");
  sub->add_option("--repeats", a->repeats, "Timed runs per length (after one validated warm-up)")->capture_default_str();
  sub->add_option("--peers", a->peers, "Peers to run in the same invocation: torch, llama.cpp, none")->capture_default_str();
  sub->add_option("--report", a->report, "Also write every result as JSON lines to this file");
  sub->add_flag("--child", a->child, "(internal) run one configuration")->group("");
  return [a] { return a->child ? run_child(*a) : run_parent(*a); };
}

}  // namespace oe::cli
