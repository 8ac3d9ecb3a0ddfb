// omni-embed embed: embeds queries and documents; one JSON line per item on stdout (or a .npy matrix).
#include <cmath>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/npy.h"
#include "pipeline/encoder.h"
#include "pipeline/item.h"
#include "pipeline/stream.h"

namespace oe::cli {
namespace {

struct EmbedArgs {
  ModelArgs model;
  std::vector<std::string> queries;
  bool document = false;
  std::vector<std::string> texts;
  std::string input;
  std::string format = "json";
  std::string output;
  std::string dump_inputs;
  pipeline::EmbedOptions options;
  int64_t batch_tokens = 2048;
  int64_t max_text_bytes = pipeline::ItemFormat{}.max_line_bytes;
  std::vector<std::string> images;
  std::vector<std::string> audios;
  std::vector<std::string> videos;
};

std::vector<pipeline::EmbedItem> items_from_args(const EmbedArgs& a) {
  std::vector<pipeline::EmbedItem> items;
  auto add = [&](text::Role role, const std::string& text) {
    pipeline::EmbedItem it;
    it.role = role;
    it.text = text;
    items.push_back(std::move(it));
  };
  for (const auto& q : a.queries) add(text::Role::Query, q);
  // A media-only command line embeds one document.
  const bool has_media = !a.images.empty() || !a.audios.empty() || !a.videos.empty();
  const bool document = a.document || (has_media && a.queries.empty());
  if (document) {
    if (a.texts.empty()) add(text::Role::Document, "");
    for (const auto& t : a.texts) add(text::Role::Document, t);
  } else if (!a.texts.empty()) {
    throw InvalidInput("--text needs --document (queries are given with --query TEXT)");
  }
  if (has_media) {
    // The media belong to the one document, or to the one query when there is no document.
    if (items.size() != 1)
      throw InvalidInput("--image, --audio and --video belong to a single item: give one --document (with at most one "
                         "--text) or one --query; use --input ITEMS.jsonl for several items with media");
    items.front().images.assign(a.images.begin(), a.images.end());
    items.front().audios.assign(a.audios.begin(), a.audios.end());
    items.front().videos.assign(a.videos.begin(), a.videos.end());
  }
  return items;
}

// One output line: ordered keys, the vector with the shortest decimal form of each float32 that round-trips. Under
// late fusion a video's line holds "embedding" (its frames) and "audio_embedding" (its sound).
std::string result_line(const pipeline::ItemResult& r) {
  nlohmann::ordered_json j;
  j["index"] = r.index;
  if (!r.item.id.is_null()) j["id"] = r.item.id;
  j["role"] = text::role_name(r.item.role);
  if (!r.ok()) {
    j["error"] = r.error;
    // Error texts may quote the bad input's bytes; invalid UTF-8 is replaced, never fatal.
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  const model::Embedding& e = r.vectors.front();
  const model::Embedding* sound = r.vectors.size() == 2 ? &r.vectors[1] : nullptr;
  j["n_tokens"] = e.n_tokens + (sound ? sound->n_tokens : 0);
  j["seconds"] = std::round(r.seconds * 1e6) / 1e6;
  if (e.truncated || (sound && sound->truncated)) j["truncated"] = true;
  if (sound) j["fusion"] = "late";
  std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  line.pop_back();  // reopen the object to append the vectors
  line += fmt::format(",\"embedding\":[{}]", fmt::join(e.vector, ","));
  if (sound) line += fmt::format(",\"audio_embedding\":[{}]", fmt::join(sound->vector, ","));
  return line + "}";
}

void write_npy_matrix(const std::string& path, const std::vector<std::vector<float>>& rows) {
  if (path.empty()) throw InvalidInput("--format npy needs --output FILE.npy");
  const int64_t d = rows.empty() ? 0 : static_cast<int64_t>(rows[0].size());
  Tensor m({static_cast<int64_t>(rows.size()), d}, DType::F32);
  for (size_t i = 0; i < rows.size(); ++i) std::copy(rows[i].begin(), rows[i].end(), m.ptr<float>() + i * d);
  io::write_npy(path, m);
}

int run_embed(const EmbedArgs& a) {
  std::vector<pipeline::EmbedItem> items = items_from_args(a);
  std::vector<pipeline::ItemLine> lines;
  if (!a.input.empty()) {
    pipeline::ItemFormat format;
    format.base = std::filesystem::path(a.input).parent_path();
    format.max_line_bytes = a.max_text_bytes;
    pipeline::read_item_lines(a.input, format, [&](pipeline::ItemLine l) { lines.push_back(std::move(l)); });
  }
  if (items.empty() && lines.empty())
    throw InvalidInput("nothing to embed: give --query TEXT, --document [--text TEXT] or --input ITEMS.jsonl");
  if (a.options.late_fusion && a.format == "npy")
    throw InvalidInput("--fusion late gives two vectors per video (frames and sound); use --format json");
  a.options.validate();

  const pipeline::Encoder encoder(load_model(a.model), a.options);
  const int64_t total = static_cast<int64_t>(items.size() + lines.size());
  Progress progress("embedding", total);
  Timer wall;
  int64_t failures = 0, done = 0, tokens = 0;
  std::vector<std::vector<float>> matrix;  // for --format npy
  auto print = [&](const pipeline::ItemResult& r) {
    ++done;
    progress.clear();
    if (!r.ok()) {
      ++failures;
      log_warn("item {}: {}", r.index, r.error);
    }
    for (const auto& v : r.vectors) tokens += v.n_tokens;
    if (a.format == "npy") {
      if (r.ok()) matrix.push_back(r.vectors.front().vector);
    } else {
      std::cout << result_line(r) << '\n' << std::flush;
    }
  };
  auto prepared = [&](const pipeline::ItemResult& r, const pipeline::PreparedView& v) {
    if (v.input.truncated)
      log_warn("item {}: {} tokens truncated to {} (--max-tokens / the model's context limit)", r.index,
               v.input.original_tokens, v.input.n_tokens());
    if (!a.dump_inputs.empty())
      model::write_prepared_input(std::filesystem::path(a.dump_inputs) /
                                      (std::to_string(r.index) + (v.view == pipeline::View::Sound ? "-audio" : "")),
                                  v.input);
  };
  pipeline::ItemStream stream(encoder, a.batch_tokens, print, prepared);
  auto step = [&] {
    progress.update(done, fmt::format("{:.0f} tokens/s", static_cast<double>(tokens) / std::max(wall.seconds(), 1e-9)));
  };
  for (auto& it : items) {
    stream.add(std::move(it));
    step();
  }
  for (auto& l : lines) {
    if (l.item)
      stream.add(std::move(*l.item));
    else
      stream.add_error({}, std::move(l.error));
    step();
  }
  stream.finish();
  progress.update(done);
  progress.finish();
  if (a.format == "npy") write_npy_matrix(a.output, matrix);
  if (failures > 0) {
    log_warn("{} of {} items failed", failures, total);
    return 1;
  }
  return 0;
}

}  // namespace

VerbRunner register_embed(CLI::App& app) {
  auto a = std::make_shared<EmbedArgs>();
  auto* sub = app.add_subcommand("embed", "Embed queries and documents (one JSON line per item)");
  add_model_options(*sub, a->model);
  sub->add_option("--query", a->queries, "A query text to embed (repeatable)")->allow_extra_args(false);
  sub->add_flag("--document", a->document, "Embed a document (its text from --text; an empty text is allowed)");
  sub->add_option("--text", a->texts, "The document's text (with --document; repeatable for several documents)")
      ->allow_extra_args(false);
  sub->add_option("--input", a->input,
                  "JSONL file, one item per line: {\"id\": ..., \"role\": \"query\"|\"document\", \"text\": ..., "
                  "\"image\": PATH or [PATH, ...], \"audio\": PATH or [PATH, ...], \"video\": PATH or [PATH, ...]} "
                  "(paths relative to the file's folder)")
      ->check(CLI::ExistingFile);
  sub->add_option("--format", a->format, "Output: json (one line per item on stdout) or npy (--output)")
      ->check(CLI::IsMember({"json", "npy"}))
      ->capture_default_str();
  sub->add_option("--output", a->output, "Output file for --format npy ([n_items, dim] float32)");
  sub->add_option("--image", a->images,
                  "An image file for the item (repeatable; after its text). Alone it makes an image document")
      ->allow_extra_args(false);
  sub->add_option("--audio", a->audios,
                  "An audio file, or a video whose audio track is used, for the item (repeatable; after its text, "
                  "before its images). Alone it makes an audio document")
      ->allow_extra_args(false);
  sub->add_option("--video", a->videos,
                  "A video file for the item (repeatable; right after its text). Its frames and its sound are "
                  "embedded as --fusion says. Alone it makes a video document; with --fusion late each item line "
                  "also has \"audio_embedding\" (the sound alone) next to \"embedding\" (the frames alone)")
      ->allow_extra_args(false);
  add_embed_options(*sub, a->options);
  sub->add_option("--dump-inputs", a->dump_inputs,
                  "Write what the model saw per item: DIR/<index>/input_ids.npy [1,S], position_ids.npy [3,1,S]; "
                  "with images also pixel_values.npy [patches,1176] and image_grid_thw.npy [n,3]; with audio "
                  "input_features.npy [n,128,frames] and feature_attention_mask.npy [n,frames]; with videos "
                  "pixel_values_videos.npy, video_grid_thw.npy, video_second_per_grid.npy and use_audio_in_video.npy "
                  "(late fusion: the sound view in DIR/<index>-audio)");
  sub->add_option("--max-text-bytes", a->max_text_bytes, "Longest line of an --input file, in bytes")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--batch-tokens", a->batch_tokens, "Pack items into one forward pass up to this many tokens")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return [a] { return run_embed(*a); };
}

}  // namespace oe::cli
