// The timed rows of one child process of omni-embed-bench (runner.h): synthetic documents of each modality, a
// validated warm-up, the timed runs, and the JSON row of each with its percent of this machine's measured peak.
#include "runner.h"

#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/profile.h"
#include "core/threads.h"
#include "core/timer.h"
#include "kernels/compute.h"
#include "kernels/matmul.h"
#include "kernels/peak.h"
#include "model/embedder.h"
#include "pipeline/encoder.h"

namespace oe::bench {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// What every row of this child shares: the model, the options of its documents, the unit its matmuls run on.
struct Child {
  const BenchArgs& a;
  std::shared_ptr<const model::Model> m;
  pipeline::EmbedOptions eo;
  kernels::Compute compute = kernels::Compute::BF16;
  // "omni-embed", or "omni-embed/onednn" and "omni-embed/amx" when bf16 runs on a kernel chosen with --bf16-gemm
  // (the comparison rows).
  std::string engine = "omni-embed";
  // The peak of the unit the matmuls run on, measured right before and right after the current row (their mean),
  // and on AMX the fed-tile ceiling (kernels/peak.h) likewise.
  double peak = 0, fed = 0;
  const char* peak_unit = "";
  double load_seconds = 0;
};

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

// Ids of exactly n tokens in the query layout: the chat head and prefix, filler text tokens, the closing tokens.
model::PreparedInput bench_input(const model::Embedder& e, int64_t n) {
  const auto& tok = e.model().tokenizer();
  auto parts = text::chat_parts(e.prompts());
  auto head = tok.encode(parts.head + e.prompts().query_prefix);
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

// The next value of a xorshift32 sequence (media whose content the encoders do not depend on).
uint32_t xorshift(uint32_t& x) {
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

// A square image of random pixels.
media::RgbImage bench_image(int64_t size) {
  media::RgbImage im;
  im.width = im.height = size;
  im.pixels.resize(static_cast<size_t>(size * size * 3));
  uint32_t x = 2463534242u;
  for (auto& p : im.pixels) p = static_cast<uint8_t>(xorshift(x) >> 24);
  return im;
}

// A clip of `seconds` at 16 kHz: a chirp with a little noise.
model::AudioClip bench_audio(int64_t seconds) {
  model::AudioClip c;
  c.name = fmt::format("{} s bench clip", seconds);
  c.samples.resize(static_cast<size_t>(seconds * 16000));
  uint32_t x = 88172645u;
  for (size_t i = 0; i < c.samples.size(); ++i) {
    const double noise = static_cast<double>(xorshift(x) >> 8) / 16777216.0 - 0.5;
    const double t = static_cast<double>(i) / 16000.0;
    c.samples[i] = static_cast<float>(0.3 * std::sin(2 * M_PI * (200.0 + 20.0 * t) * t) + 0.01 * noise);
  }
  return c;
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

// Validation before timing: the output must be a unit vector of finite values.
void check_unit_vector(const std::vector<float>& v) {
  double norm = 0;
  for (float x : v) norm += static_cast<double>(x) * x;
  if (!std::isfinite(norm) || std::abs(norm - 1.0) > 1e-3)
    throw InternalError(fmt::format("benchmark output is not a unit vector (norm² {})", norm));
}

// The peak of the unit the matmuls really run on: AMX tiles for bf16 where present, else AVX-512; `seconds` of
// measuring.
void measure_peak(Child& c, double seconds) {
  const double vector_peak = kernels::measure_peak_gflops(c.compute, num_threads(), seconds);
  const double amx_peak =
      c.compute == kernels::Compute::BF16 ? kernels::measure_amx_peak_gflops(num_threads(), seconds) : 0;
  c.peak = std::max(vector_peak, amx_peak);
  c.fed = amx_peak > vector_peak ? kernels::measure_amx_fed_gflops(num_threads(), seconds) : 0;
  c.peak_unit = amx_peak > vector_peak                  ? "AMX tdpbf16ps"
                : c.compute == kernels::Compute::BF16 ? "AVX-512 vdpbf16ps"
                                                      : "AVX-512 vfmadd";
}

// Runs a row's timed work between two measurements of the peak and keeps their mean as the row's peak, so that a
// VM's drift over the benchmark cancels out of the row's percentages.
template <class Timed>
void with_row_peak(Child& c, Timed timed) {
  measure_peak(c, 0.25);
  const double peak0 = c.peak, fed0 = c.fed;
  timed();
  measure_peak(c, 0.25);
  c.peak = 0.5 * (c.peak + peak0);
  c.fed = 0.5 * (c.fed + fed0);
}

double percent_of_peak(double flops, double seconds, double peak) {
  return peak > 0 && seconds > 0 ? 100.0 * flops / seconds / 1e9 / peak : 0.0;
}

// The keys every row has: who ran it, the time of `n_tokens` (median and spread) and its share of the peak.
json timed_row(const Child& c, int64_t n_tokens, const std::vector<double>& times, double flops) {
  const double med = median(times);
  json j{{"engine", c.engine}, {"dtype", kernels::compute_name(c.compute)}, {"tokens", n_tokens},
              {"threads", num_threads()}, {"seconds_median", med},
              {"seconds_min", *std::min_element(times.begin(), times.end())},
              {"seconds_max", *std::max_element(times.begin(), times.end())}, {"gflops", flops / med / 1e9},
              {"peak_gflops", c.peak}, {"peak_unit", c.peak_unit},
              {"percent_of_peak", percent_of_peak(flops, med, c.peak)}, {"model_flops", flops},
              {"peak_rss_bytes", peak_rss_bytes()}};
  if (c.fed > 0) {
    j["fed_ceiling_gflops"] = c.fed;
    j["percent_of_fed_ceiling"] = percent_of_peak(flops, med, c.fed);
  }
  return j;
}

// One more run with every operation timed (--profile): the row's "profile", one entry per operation in the order
// they first ran, then "other" (what no scope covers: the embedding lookup, pooling, the towers' unprofiled parts),
// each with its share of the run; operations that declared their arithmetic get GFLOP/s and shares of the peaks.
template <class Run>
json profile_of(const Child& c, Run run) {
  profile::take();
  profile::enable(true);
  Timer t;
  run();
  const double total = t.seconds();
  profile::enable(false);
  json ops = json::array();
  double covered = 0;
  for (const auto& op : profile::take()) {
    covered += op.seconds;
    json o{{"op", op.op},
           {"seconds", op.seconds},
           {"calls", op.calls},
           {"percent_of_item", 100.0 * op.seconds / total},
           {"minor_faults", op.minor_faults}};
    if (op.flop > 0) {
      o["gflops"] = op.flop / op.seconds / 1e9;
      o["percent_of_peak"] = percent_of_peak(op.flop, op.seconds, c.peak);
      if (c.fed > 0) o["percent_of_fed_ceiling"] = percent_of_peak(op.flop, op.seconds, c.fed);
    }
    ops.push_back(std::move(o));
  }
  ops.push_back(json{{"op", "other"}, {"seconds", total - covered}, {"percent_of_item", 100.0 * (total - covered) / total}});
  return json{{"seconds", total}, {"ops", std::move(ops)}};
}

double decoder_flops(const Child& c, int64_t n_tokens) {
  const auto& dec = c.m->text_decoder();
  return model::decoder_flops(dec.config(), dec.matmul_params(), {n_tokens});
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
  check_unit_vector(e.embed_prepared({r.input}).front().vector);
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

// The JSON row of a media document; `tower` names the encoder's keys ("vision", "audio_encoder").
json media_row(const Child& c, const MediaRun& r, double tower_flops, const std::string& tower) {
  const double dec_flops = decoder_flops(c, r.input.n_tokens());
  const double tower_med = median(r.tower), dec_med = median(r.decoder);
  json j = timed_row(c, r.input.n_tokens(), r.total, tower_flops + dec_flops);
  j[tower + "_seconds"] = tower_med;
  j["decoder_seconds"] = dec_med;
  j[tower + "_percent_of_peak"] = percent_of_peak(tower_flops, tower_med, c.peak);
  j["decoder_percent_of_peak"] = percent_of_peak(dec_flops, dec_med, c.peak);
  return j;
}

void text_rows(Child& c, const model::Embedder& e) {
  const int64_t max_n = c.m->config().text.max_position_embeddings;
  for (const auto& tstr : split(c.a.tokens)) {
    if (tstr == "none") continue;
    const int64_t n = std::stoll(tstr);
    if (n < 1 || n > max_n) throw InvalidInput(fmt::format("--tokens: {} is outside [1, {}]", n, max_n));
    auto input = bench_input(e, n);
    check_unit_vector(e.embed_prepared({input}).front().vector);
    std::vector<double> times;
    with_row_peak(c, [&] {
      for (int r = 0; r < c.a.repeats; ++r) {
        Timer t;
        e.embed_prepared({input});
        times.push_back(t.seconds());
      }
    });
    json j = timed_row(c, n, times, decoder_flops(c, n));
    if (c.a.profile) j["profile"] = profile_of(c, [&] { e.embed_prepared({input}); });
    j["tokens_per_second"] = n / median(times);
    j["load_seconds"] = c.load_seconds;
    j["packed_weight_bytes"] = c.m->text_decoder().packed_bytes();
    std::cout << j.dump() << std::endl;
  }
}

void image_rows(Child& c, const model::Embedder& e) {
  const auto& enc = c.m->vision_encoder();
  for (const auto& size_str : split(c.a.images)) {
    if (size_str == "none") continue;
    const int64_t size = std::stoll(size_str);
    const media::RgbImage image = bench_image(size);
    MediaRun r;
    with_row_peak(c, [&] {
      r = time_media_item(e, c.a.repeats, [&] { return e.prepare(text::Role::Document, "", {image}); },
                          &model::EmbedTimings::vision);
    });
    int64_t image_tokens = 0;
    for (const auto& g : r.input.image_grids) image_tokens += g.patches() / enc.merge_unit();
    json j = media_row(c, r, model::vision_flops(enc.config(), enc.matmul_params(), r.input.image_grids), "vision");
    j["image"] = size;
    j["image_tokens"] = image_tokens;
    j["preprocess_seconds"] = median(r.prepare);
    if (c.a.profile) j["profile"] = profile_of(c, [&] { e.embed_prepared({r.input}); });
    std::cout << j.dump() << std::endl;
  }
}

void audio_rows(Child& c, const model::Embedder& e) {
  for (const auto& sec_str : split(c.a.audio)) {
    if (sec_str == "none") continue;
    const int64_t seconds = std::stoll(sec_str);
    const model::AudioClip clip = bench_audio(seconds);
    MediaRun r;
    with_row_peak(c, [&] {
      r = time_media_item(e, c.a.repeats, [&] { return e.prepare(text::Role::Document, "", {}, {clip}); },
                          &model::EmbedTimings::audio);
    });
    const int64_t frames = r.input.audio_features.front().valid_frames;
    json j = media_row(c, r, model::audio_flops(c.m->audio_encoder().config(), {frames}), "audio_encoder");
    j["audio_seconds"] = seconds;
    j["audio_tokens"] = media::audio_token_count(frames);
    j["frontend_seconds"] = median(r.prepare);
    j["frontend_percent_of_total"] = 100.0 * median(r.prepare) / median(r.total);
    if (c.a.profile) j["profile"] = profile_of(c, [&] { e.embed_prepared({r.input}); });
    std::cout << j.dump() << std::endl;
  }
}

// The row of one video clip in one fusion mode, with the video budget of this child.
json video_row(Child& c, const fs::path& clip, int64_t seconds, const std::string& fusion) {
  pipeline::EmbedOptions vo = c.eo;
  vo.set_fusion(fusion);
  const pipeline::Encoder encoder(c.m, vo);
  const model::Embedder& ve = encoder.embedder();
  model::EmbedRequest req;
  req.role = text::Role::Document;
  req.videos = {clip};
  MediaRun r;
  with_row_peak(c, [&] {
    r = time_media_item(ve, c.a.repeats, [&] { return ve.prepare(req); }, &model::EmbedTimings::vision);
  });
  const auto& venc = c.m->vision_encoder();
  const double vflops = model::vision_flops(venc.config(), venc.matmul_params(), r.input.video_grids);
  std::vector<int64_t> frames;
  int64_t audio_tokens = 0, video_tokens = 0;
  for (const auto& f : r.input.audio_features) {
    frames.push_back(f.valid_frames);
    audio_tokens += media::audio_token_count(f.valid_frames);
  }
  for (const auto& g : r.input.video_grids) video_tokens += g.patches() / venc.merge_unit();
  const double aflops = frames.empty() ? 0.0 : model::audio_flops(c.m->audio_encoder().config(), frames);
  json j = media_row(c, r, vflops + aflops, "encoders");
  j.update(json{{"video_seconds", seconds}, {"fusion", fusion}, {"video_tokens", video_tokens},
                {"audio_tokens", audio_tokens}, {"video_max_pixels", c.a.video_max_pixels}, {"fps", c.a.fps},
                {"audio_max_seconds", c.a.audio_max_seconds}, {"decode_seconds", median(r.prepare)},
                {"decode_percent_of_total", 100.0 * median(r.prepare) / median(r.total)}});
  // media_row's "encoders" keys mix two towers timed apart: report each tower on its own instead.
  j.erase("encoders_seconds");
  j.erase("encoders_percent_of_peak");
  j["vision_seconds"] = median(r.tower);
  j["audio_encoder_seconds"] = median(r.audio);
  if (c.peak > 0 && median(r.tower) > 0)
    j["vision_percent_of_peak"] = percent_of_peak(vflops, median(r.tower), c.peak);
  if (c.peak > 0 && median(r.audio) > 0)
    j["audio_encoder_percent_of_peak"] = percent_of_peak(aflops, median(r.audio), c.peak);
  j["media_tokens_per_second_of_media"] = static_cast<double>(video_tokens + audio_tokens) / seconds;
  if (c.a.profile) j["profile"] = profile_of(c, [&] { ve.embed_prepared({r.input}); });
  return j;
}

void video_rows(Child& c) {
  if (c.a.video == "none") return;
  ScratchDir tmp;
  for (const auto& sec_str : split(c.a.video)) {
    const int64_t seconds = std::stoll(sec_str);
    const fs::path clip = bench_video(tmp.dir, seconds);
    for (const auto& fusion : split(c.a.video_fusion))
      std::cout << video_row(c, clip, seconds, fusion).dump() << std::endl;
  }
}

}  // namespace

int run_child(const BenchArgs& a) {
  set_num_threads(a.threads);
  Child c{a};
  c.compute = kernels::parse_compute(a.dtypes);
  const kernels::Bf16Gemm gemm = kernels::parse_bf16_gemm(a.bf16_gemm);
  if (c.compute == kernels::Compute::BF16 && gemm != kernels::Bf16Gemm::Auto)
    c.engine = std::string("omni-embed/") + kernels::bf16_gemm_name(kernels::resolve_bf16_gemm(gemm));
  measure_peak(c, 1.0);
  Timer load_timer;
  model::LoadOptions lo;
  lo.compute = c.compute;
  lo.bf16_gemm = gemm;
  c.m = model::Model::load(a.model, lo);
  c.load_seconds = load_timer.seconds();
  // Every option first, then the embedder: it keeps a copy of them.
  c.eo.model.video.max_pixels = a.video_max_pixels;
  c.eo.model.video.fps = a.fps;
  c.eo.model.audio_max_seconds = a.audio_max_seconds;
  const pipeline::Encoder encoder(c.m, c.eo);
  const model::Embedder& e = encoder.embedder();
  text_rows(c, e);
  image_rows(c, e);
  audio_rows(c, e);
  video_rows(c);
  return 0;
}

}  // namespace oe::bench
