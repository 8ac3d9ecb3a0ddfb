// The result tables and the --report file of omni-embed-bench (report.h).
#include "report.h"

#include "args.h"

#include <algorithm>
#include <iterator>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/threads.h"
#include "kernels/matmul.h"

namespace oe::bench {
namespace {

using nlohmann::json;
using Rows = std::vector<json>;
// What a row is compared on within its table (its length, size or setting).
using KeyFn = std::function<std::string(const json&)>;

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

// The engine of one of our rows, or the peer's name.
std::string name_of(const json& r) { return r.contains("engine") ? r.value("engine", "") : r.value("peer", "?"); }

bool is_media_row(const json& r) {
  return r.contains("image") || r.contains("audio_seconds") || r.contains("video_seconds");
}

// The median seconds of the reference rows by key, over the rows that have `field` (every row when null).
std::map<std::string, double> reference_seconds(const Rows& rows, const char* field, const KeyFn& key) {
  std::map<std::string, double> ours;
  for (const auto& r : rows)
    if ((!field || r.contains(field)) && is_reference_row(r)) ours[key(r)] = r.value("seconds_median", 0.0);
  return ours;
}

// "N.NNx slower" for a peer's row with a reference row of the same key; "" otherwise.
std::string ratio_cell(const json& r, const std::map<std::string, double>& ours, const KeyFn& key) {
  if (r.contains("engine")) return "";
  const auto it = ours.find(key(r));
  if (it == ours.end() || it->second <= 0) return "";
  return fmt::format("{:.2f}x slower", r.value("seconds_median", 0.0) / it->second);
}

// The rows that have `field`, in order.
Rows rows_with(const Rows& rows, const char* field) {
  Rows out;
  std::copy_if(rows.begin(), rows.end(), std::back_inserter(out), [&](const json& r) { return r.contains(field); });
  return out;
}

// The video budget of a row written without one (the model card's).
const BenchArgs DEFAULTS;

std::string text_key(const json& r) { return std::to_string(r.value("tokens", int64_t{0})); }
std::string video_key(const json& r) {
  return fmt::format("{}|{}|{}|{}|{}", r.value("video_seconds", int64_t{0}), r.value("fusion", ""),
                     r.value("video_max_pixels", DEFAULTS.video_max_pixels), r.value("fps", DEFAULTS.fps),
                     r.value("audio_max_seconds", DEFAULTS.audio_max_seconds));
}

// Text items, one row per measurement; peers get their time ratio to omni-embed bf16 at the same length.
void print_text_table(const Rows& rows) {
  const auto ours = reference_seconds(rows, nullptr, text_key);
  std::printf("\n%s\n", machine_name().c_str());
  std::printf("%-14s %-5s %7s %10s %10s %9s %8s %10s %s\n", "engine", "dtype", "tokens", "s/item", "tokens/s",
              "GFLOP/s", "%peak", "peak RSS", "vs omni-embed bf16");
  for (const auto& r : rows) {
    if (is_media_row(r)) continue;
    if (r.contains("skipped")) {
      std::printf("%-14s skipped: %s\n", r.value("peer", "?").c_str(), r.value("skipped", "").c_str());
      continue;
    }
    const int64_t n = r.value("tokens", int64_t{0});
    const double s = r.value("seconds_median", 0.0);
    const std::string gflops = r.contains("gflops") ? fmt::format("{:.0f}", r.value("gflops", 0.0)) : "";
    std::printf("%-14s %-5s %7lld %10.3f %10.1f %9s %8s %10s %s\n", name_of(r).c_str(), r.value("dtype", "").c_str(),
                static_cast<long long>(n), s, s > 0 ? static_cast<double>(n) / s : 0.0, gflops.c_str(),
                percent_cell(r).c_str(), rss_cell(r).c_str(), ratio_cell(r, ours, text_key).c_str());
  }
}

// A table of image or audio documents: engine, dtype, the item, tokens, seconds per item, then the item's
// preparation, its encoder and the decoder.
struct MediaTable {
  const char* field;        // the rows' key that holds the item ("image", "audio_seconds")
  const char* item_format;  // the item cell, from that key's value
  const char* title;
  const char* item_header;
  const char* prep_header;
  const char* tower_header;
  const char* prep_key;   // seconds of the preparation
  const char* tower_key;  // seconds of the encoder
  int name_width, item_width, tower_width;
};

void print_media_table(const Rows& rows, const MediaTable& t) {
  const Rows items = rows_with(rows, t.field);
  if (items.empty()) return;
  const std::string field = t.field;
  const auto key = [&](const json& r) { return std::to_string(r.value(field, int64_t{0})); };
  const auto ours = reference_seconds(rows, t.field, key);
  std::printf("\n%s\n", t.title);
  std::printf("%-*s %-5s %*s %7s %9s %8s %*s %8s %8s %8s %s\n", t.name_width, "engine", "dtype", t.item_width,
              t.item_header, "tokens", "s/item", t.prep_header, t.tower_width, t.tower_header, "dec s", "%peak",
              "peak RSS", "vs omni-embed bf16");
  for (const auto& r : items)
    std::printf("%-*s %-5s %*s %7lld %9.3f %8.3f %*.3f %8.3f %8s %8s %s\n", t.name_width, name_of(r).c_str(),
                r.value("dtype", "").c_str(), t.item_width,
                fmt::format(fmt::runtime(t.item_format), r.value(field, int64_t{0})).c_str(),
                static_cast<long long>(r.value("tokens", int64_t{0})), r.value("seconds_median", 0.0),
                r.value(t.prep_key, 0.0), t.tower_width, r.value(t.tower_key, 0.0), r.value("decoder_seconds", 0.0),
                percent_cell(r).c_str(), rss_cell(r).c_str(), ratio_cell(r, ours, key).c_str());
}

const MediaTable IMAGE_TABLE = {"image", "{0}x{0}",
                                "image documents (end to end: preprocessing + vision encoder + decoder)",
                                "image", "prep s", "vision s", "preprocess_seconds", "vision_seconds",
                                /*name_width=*/14, /*item_width=*/9, /*tower_width=*/8};
const MediaTable AUDIO_TABLE = {"audio_seconds", "{} s",
                                "audio documents (end to end: log-mel front end + audio encoder + decoder)",
                                "audio", "front s", "encoder s", "frontend_seconds", "audio_encoder_seconds",
                                /*name_width=*/20, /*item_width=*/6, /*tower_width=*/9};

// Video documents: one line per (engine, length, fusion, budget), the time split into decode + resize, vision tower,
// audio tower and decoder, and how much slower a peer is than omni-embed bf16 on the same setting.
void print_video_table(const Rows& rows) {
  const Rows videos = rows_with(rows, "video_seconds");
  if (videos.empty()) return;
  const auto ours = reference_seconds(rows, "video_seconds", video_key);
  std::printf("\nvideo documents with sound, 640x360 (end to end: decode + resize, vision, audio, decoder)\n");
  std::printf("%-20s %-5s %5s %-11s %7s %4s %5s %7s %7s %8s %7s %8s %7s %7s %6s %9s %s\n", "engine", "dtype", "video",
              "fusion", "max px", "fps", "aud s", "tokens", "tok/s", "s/item", "decode", "vision", "audio", "dec s",
              "%peak", "peak RSS", "vs omni-embed bf16");
  for (const auto& r : videos) {
    const double media_tokens_per_s =
        static_cast<double>(r.value("video_tokens", int64_t{0}) + r.value("audio_tokens", int64_t{0})) /
        std::max<double>(1.0, static_cast<double>(r.value("video_seconds", int64_t{1})));
    std::printf("%-20s %-5s %5s %-11s %7lld %4g %5g %7lld %7.1f %8.2f %7.2f %8.2f %7.2f %7.2f %6s %9s %s\n",
                name_of(r).c_str(), r.value("dtype", "").c_str(),
                fmt::format("{} s", r.value("video_seconds", int64_t{0})).c_str(), r.value("fusion", "").c_str(),
                static_cast<long long>(r.value("video_max_pixels", DEFAULTS.video_max_pixels)),
                r.value("fps", DEFAULTS.fps), r.value("audio_max_seconds", DEFAULTS.audio_max_seconds),
                static_cast<long long>(r.value("tokens", int64_t{0})),
                media_tokens_per_s, r.value("seconds_median", 0.0), r.value("decode_seconds", 0.0),
                r.value("vision_seconds", 0.0), r.value("audio_encoder_seconds", 0.0), r.value("decoder_seconds", 0.0),
                percent_cell(r).c_str(), rss_cell(r).c_str(), ratio_cell(r, ours, video_key).c_str());
  }
}

}  // namespace

bool is_reference_row(const json& r) {
  const std::string engine = r.value("engine", "");
  const std::string default_kernel =
      std::string("omni-embed/") + kernels::bf16_gemm_name(kernels::resolve_bf16_gemm(kernels::Bf16Gemm::Auto));
  return r.value("dtype", "") == "bf16" && (engine == "omni-embed" || engine == default_kernel);
}

// What a row measured, in words: "text 512 tokens", "image 448", "audio 30 s", "video 10 s separate".
std::string item_of(const json& r) {
  if (r.contains("image")) return fmt::format("image {}x{}", r.value("image", 0), r.value("image", 0));
  if (r.contains("audio_seconds")) return fmt::format("audio {} s", r.value("audio_seconds", 0));
  if (r.contains("video_seconds"))
    return fmt::format("video {} s {}", r.value("video_seconds", 0), r.value("fusion", ""));
  return fmt::format("text {} tokens", r.value("tokens", 0));
}

// --profile: per row, where one run's time went.
void print_profiles(const Rows& rows) {
  for (const auto& r : rows) {
    if (!r.contains("profile")) continue;
    const json& p = r["profile"];
    const bool fed = r.contains("fed_ceiling_gflops");
    std::printf("\nwhere the time goes: %s %s, %s, one run of %.3f s (peak %.0f GFLOP/s%s)\n", name_of(r).c_str(),
                r.value("dtype", "").c_str(), item_of(r).c_str(), p.value("seconds", 0.0),
                r.value("peak_gflops", 0.0),
                fed ? fmt::format(", fed-tile ceiling {:.0f}", r.value("fed_ceiling_gflops", 0.0)).c_str() : "");
    std::printf("%-34s %9s %7s %6s %9s %7s %7s %9s\n", "operation", "ms", "% item", "calls", "GFLOP/s", "% peak",
                fed ? "% fed" : "", "faults");
    for (const auto& o : p["ops"]) {
      const bool has_rate = o.contains("gflops");
      std::printf("%-34s %9.1f %7.1f %6s %9s %7s %7s %9s\n", o.value("op", "").c_str(), 1e3 * o.value("seconds", 0.0),
                  o.value("percent_of_item", 0.0),
                  o.contains("calls") ? std::to_string(o.value("calls", int64_t{0})).c_str() : "",
                  has_rate ? fmt::format("{:.0f}", o.value("gflops", 0.0)).c_str() : "",
                  has_rate ? fmt::format("{:.1f}", o.value("percent_of_peak", 0.0)).c_str() : "",
                  has_rate && fed ? fmt::format("{:.1f}", o.value("percent_of_fed_ceiling", 0.0)).c_str() : "",
                  o.contains("minor_faults") ? std::to_string(o.value("minor_faults", int64_t{0})).c_str() : "");
    }
  }
}

void print_tables(const Rows& rows) {
  print_text_table(rows);
  print_media_table(rows, IMAGE_TABLE);
  print_media_table(rows, AUDIO_TABLE);
  print_video_table(rows);
  print_profiles(rows);
  std::set<std::string> seen;
  for (const auto& r : rows)
    if (r.contains("peak_gflops") && seen.insert(r.value("dtype", "")).second)
      std::printf("measured %s peak on %d threads: %.0f GFLOP/s (%s; measured again around each row, and each "
                  "row's percentages use the mean of the two)\n",
                  r.value("dtype", "").c_str(), r.value("threads", 0), r.value("peak_gflops", 0.0),
                  r.value("peak_unit", "").c_str());
}

void write_report(const std::string& path, const Rows& rows) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw IoError(fmt::format("cannot write --report {}", path));
  for (const auto& r : rows) std::fprintf(f, "%s\n", r.dump().c_str());
  std::fclose(f);
}

}  // namespace oe::bench
