// omni-embed embed: embeds queries and documents; one JSON line per item on stdout (or a .npy matrix).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/npy.h"
#include "model/embedder.h"

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
  EmbedSettingsArgs settings;
  int64_t batch_tokens = 2048;
  std::vector<std::string> images;
  std::vector<std::string> audios;
  std::vector<std::string> videos;
};

// One item to embed, or the reason it cannot be.
struct Item {
  int64_t index = 0;
  nlohmann::json id;  // from the JSONL "id", when given
  model::EmbedRequest request;
  std::string error;
  int views = 0;  // prepared inputs of the item in the batch: 2 for a video in late fusion (frames, sound)
};

std::vector<Item> items_from_args(const EmbedArgs& a) {
  std::vector<Item> items;
  auto add = [&](text::Role role, const std::string& text) {
    Item it;
    it.index = static_cast<int64_t>(items.size());
    it.request.role = role;
    it.request.text = text;
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
    for (const auto& im : a.images) items.front().request.images.emplace_back(im);
    for (const auto& au : a.audios) items.front().request.audios.emplace_back(au);
    for (const auto& v : a.videos) items.front().request.videos.emplace_back(v);
  }
  return items;
}

// "image": "PATH" or ["PATH", ...]; relative paths are relative to the JSONL file's folder.
std::vector<std::filesystem::path> media_paths(const nlohmann::json& v, const char* key,
                                               const std::filesystem::path& base) {
  std::vector<std::filesystem::path> out;
  auto add = [&](const nlohmann::json& e) {
    if (!e.is_string() || e.get<std::string>().empty())
      throw InvalidInput(fmt::format("\"{}\" must be a file path or a list of file paths", key));
    std::filesystem::path p = e.get<std::string>();
    out.push_back(p.is_absolute() ? p : base / p);
  };
  if (v.is_array()) {
    for (const auto& e : v) add(e);
  } else {
    add(v);
  }
  return out;
}

Item item_from_line(const std::string& line, int64_t index, const std::string& source) {
  Item it;
  it.index = index;
  try {
    auto j = nlohmann::json::parse(line);
    if (!j.is_object()) throw InvalidInput("expected a JSON object");
    if (j.contains("id")) it.id = j["id"];
    std::string role = j.value("role", "document");
    it.request.role = text::parse_role(role);
    const std::filesystem::path base = std::filesystem::path(source).parent_path();
    if (j.contains("image")) it.request.images = media_paths(j["image"], "image", base);
    if (j.contains("audio")) it.request.audios = media_paths(j["audio"], "audio", base);
    if (j.contains("video")) it.request.videos = media_paths(j["video"], "video", base);
    if (j.contains("text")) {
      if (!j["text"].is_string()) throw InvalidInput("\"text\" must be a string");
      it.request.text = j["text"].get<std::string>();
    } else if (it.request.role == text::Role::Query && it.request.images.empty() && it.request.audios.empty() &&
               it.request.videos.empty()) {
      throw InvalidInput("a query needs \"text\", \"image\", \"audio\" or \"video\"");
    }
  } catch (const nlohmann::json::exception& e) {
    it.error = fmt::format("{} line {}: not valid JSON ({})", source, index + 1, e.what());
  } catch (const Error& e) {
    it.error = fmt::format("{} line {}: {}", source, index + 1, e.what());
  }
  return it;
}

// One output line: ordered keys, the vector with the shortest decimal form of each float32 that round-trips.
// `sound` is the second vector of a video in late fusion (its sound alone; `e` is then the frames alone).
std::string result_line(const Item& it, const model::Embedding* e, double seconds,
                        const model::Embedding* sound = nullptr) {
  nlohmann::ordered_json j;
  j["index"] = it.index;
  if (!it.id.is_null()) j["id"] = it.id;
  j["role"] = text::role_name(it.request.role);
  if (!e) {
    j["error"] = it.error;
    // Error texts may quote the bad input's bytes; invalid UTF-8 is replaced, never fatal.
    return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  j["n_tokens"] = e->n_tokens + (sound ? sound->n_tokens : 0);
  j["seconds"] = std::round(seconds * 1e6) / 1e6;
  if (e->truncated || (sound && sound->truncated)) j["truncated"] = true;
  if (sound) j["fusion"] = "late";
  std::string line = j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  line.pop_back();  // reopen the object to append the vectors
  line += fmt::format(",\"embedding\":[{}]", fmt::join(e->vector, ","));
  if (sound) line += fmt::format(",\"audio_embedding\":[{}]", fmt::join(sound->vector, ","));
  return line + "}";
}

class Runner {
 public:
  explicit Runner(const EmbedArgs& a) : a_(a) {}
  int run();

 private:
  void flush_batch();
  void emit(const Item& it, const model::Embedding* e, double seconds, const model::Embedding* sound = nullptr);

  const EmbedArgs& a_;
  std::unique_ptr<model::Embedder> embedder_;
  std::vector<Item> pending_;
  std::vector<model::PreparedInput> prepared_;
  int64_t pending_tokens_ = 0;
  std::vector<std::vector<float>> matrix_;  // for --format npy
  int64_t failures_ = 0, done_ = 0, tokens_ = 0;
  Progress* progress_ = nullptr;
};

void Runner::emit(const Item& it, const model::Embedding* e, double seconds, const model::Embedding* sound) {
  ++done_;
  if (progress_) progress_->clear();
  if (!e) {
    ++failures_;
    log_warn("item {}: {}", it.index, it.error);
  } else {
    tokens_ += e->n_tokens;
  }
  if (a_.format == "npy") {
    if (e) matrix_.push_back(e->vector);
    return;
  }
  std::cout << result_line(it, e, seconds, sound) << '\n' << std::flush;
}

// Embeds the pending items in one pass and prints every pending line (failed items included) in input order.
void Runner::flush_batch() {
  if (pending_.empty()) return;
  std::vector<model::Embedding> embs;
  double secs = 0;
  if (!prepared_.empty()) {
    Timer t;
    embs = embedder_->embed_prepared(prepared_);
    secs = t.seconds();
  }
  size_t k = 0;
  for (const auto& it : pending_) {
    if (!it.error.empty()) {
      emit(it, nullptr, 0);
      continue;
    }
    // The batch's wall time, apportioned by token count.
    const auto& e = embs[k++];
    const model::Embedding* sound = it.views == 2 ? &embs[k++] : nullptr;
    const int64_t n = e.n_tokens + (sound ? sound->n_tokens : 0);
    emit(it, &e, secs * static_cast<double>(n) / static_cast<double>(pending_tokens_), sound);
  }
  pending_.clear();
  prepared_.clear();
  pending_tokens_ = 0;
}

int Runner::run() {
  std::vector<Item> items = items_from_args(a_);
  std::vector<std::string> lines;
  if (!a_.input.empty()) {
    std::ifstream in(a_.input);
    if (!in) throw IoError(fmt::format("cannot open --input {}", a_.input));
    for (std::string line; std::getline(in, line);)
      if (line.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(line);
  }
  if (items.empty() && lines.empty())
    throw InvalidInput("nothing to embed: give --query TEXT, --document [--text TEXT] or --input ITEMS.jsonl");

  auto model = load_model(a_.model);
  embedder_ = std::make_unique<model::Embedder>(model, make_embed_options(*model, a_.settings));

  const bool late = embedder_->options().fusion == model::Fusion::Late;
  if (late && a_.format == "npy")
    throw InvalidInput("--fusion late gives two vectors per video (frames and sound); use --format json");
  const int64_t total = static_cast<int64_t>(items.size() + lines.size());
  Progress progress("embedding", total);
  progress_ = &progress;
  Timer wall;
  auto handle = [&](Item it) {
    if (it.error.empty()) {
      try {
        // Late fusion embeds a video twice: its frames alone (the "embedding") and its sound alone.
        std::vector<model::PreparedInput> views;
        if (late && !it.request.videos.empty()) {
          views.push_back(embedder_->prepare(it.request, model::Fusion::Video));
          if (views.front().silent_videos == 0)
            views.push_back(embedder_->prepare(it.request, model::Fusion::Audio));
          else
            log_warn("item {}: a video has no audio track, so only its frames are embedded (no \"audio_embedding\")",
                     it.index);
        } else {
          views.push_back(embedder_->prepare(it.request, late ? model::Fusion::Separate : embedder_->options().fusion));
        }
        int64_t n_tokens = 0;
        for (size_t v = 0; v < views.size(); ++v) {
          const auto& p = views[v];
          if (p.truncated)
            log_warn("item {}: {} tokens truncated to {} (--max-tokens / the model's context limit)", it.index,
                     p.original_tokens, p.n_tokens());
          if (!a_.dump_inputs.empty())
            model::write_prepared_input(std::filesystem::path(a_.dump_inputs) /
                                            (std::to_string(it.index) + (v == 1 ? "-audio" : "")),
                                        p);
          n_tokens += p.n_tokens();
        }
        if (pending_tokens_ > 0 && pending_tokens_ + n_tokens > a_.batch_tokens) flush_batch();
        pending_tokens_ += n_tokens;
        it.views = static_cast<int>(views.size());
        for (auto& p : views) prepared_.push_back(std::move(p));
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::Internal) throw;
        it.error = e.what();
      }
    }
    pending_.push_back(std::move(it));  // failed items wait too, so lines keep the input order
    if (pending_tokens_ >= a_.batch_tokens) flush_batch();
    progress.update(done_, fmt::format("{:.0f} tokens/s", static_cast<double>(tokens_) / std::max(wall.seconds(), 1e-9)));
  };
  for (auto& it : items) handle(std::move(it));
  for (size_t i = 0; i < lines.size(); ++i)
    handle(item_from_line(lines[i], static_cast<int64_t>(items.size() + i), a_.input));
  flush_batch();
  progress.update(done_);
  progress.finish();

  if (a_.format == "npy") {
    if (a_.output.empty()) throw InvalidInput("--format npy needs --output FILE.npy");
    const int64_t d = matrix_.empty() ? 0 : static_cast<int64_t>(matrix_[0].size());
    Tensor m({static_cast<int64_t>(matrix_.size()), d}, DType::F32);
    for (size_t i = 0; i < matrix_.size(); ++i) std::copy(matrix_[i].begin(), matrix_[i].end(), m.ptr<float>() + i * d);
    io::write_npy(a_.output, m);
  }
  if (failures_ > 0) {
    log_warn("{} of {} items failed", failures_, total);
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
  add_embed_settings_options(*sub, a->settings);
  sub->add_option("--dump-inputs", a->dump_inputs,
                  "Write what the model saw per item: DIR/<index>/input_ids.npy [1,S], position_ids.npy [3,1,S]; "
                  "with images also pixel_values.npy [patches,1176] and image_grid_thw.npy [n,3]; with audio "
                  "input_features.npy [n,128,frames] and feature_attention_mask.npy [n,frames]; with videos "
                  "pixel_values_videos.npy, video_grid_thw.npy, video_second_per_grid.npy and use_audio_in_video.npy "
                  "(late fusion: the sound view in DIR/<index>-audio)");
  sub->add_option("--batch-tokens", a->batch_tokens, "Pack items into one forward pass up to this many tokens")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return [a] { return Runner(*a).run(); };
}

}  // namespace oe::cli
