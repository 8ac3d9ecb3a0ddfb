// omni-embed search: embeds one query (text, images, audio and/or video) and prints the index's nearest items.
#include <cmath>
#include <iostream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "core/log.h"
#include "index/indexer.h"
#include "index/late_fusion.h"

namespace oe::cli {
namespace {

struct SearchArgs {
  ModelArgs model;
  bool model_given = false;
  std::string index;
  std::string text;
  std::vector<std::string> images, audio, video;
  int64_t k = 10;
  std::vector<std::string> modalities;
  std::string format = "table";
  bool allow_mismatch = false;
  int64_t ef_search = 0;
  double late_weight = 0.5;
};

std::string span_of(const index::Hit& h) {
  if (h.unit == "s") return fmt::format("{:.1f}-{:.1f} s", h.start, h.end);
  if (h.unit == "char") return fmt::format("chars {:.0f}-{:.0f}", h.start, h.end);
  return "";
}

int run_search(SearchArgs a) {
  if (a.text.empty() && a.images.empty() && a.audio.empty() && a.video.empty())
    throw InvalidInput("nothing to search for: give a query TEXT, --image, --audio or --video");
  for (const auto& m : a.modalities)
    if (m != "text" && m != "image" && m != "audio" && m != "video" && m != "mixed")
      throw InvalidInput(fmt::format("--modality {}: expected text, image, audio, video or mixed", m));
  auto store = index::Store::open(a.index);
  const index::IndexSettings& s = store->settings();
  if (!a.model_given) a.model.model = s.model;
  auto model = load_model(a.model);
  if (model->fingerprint() != s.model_fingerprint) {
    const std::string msg = fmt::format("index {} was built with model {} (fingerprint {}), not {} (fingerprint {})",
                                        a.index, s.model, s.model_fingerprint.substr(0, 12), a.model.model,
                                        model->fingerprint().substr(0, 12));
    if (!a.allow_mismatch) throw InvalidInput(msg + "; --allow-mismatch searches anyway");
    log_warn("{}: the scores are not meaningful", msg);
  }
  // The query is embedded with the prompt layout the index was built with.
  model::EmbedOptions options = index::embed_options_from_settings(s.embedding, model::EmbedOptions{});
  const bool late = options.fusion == model::Fusion::Late;
  // A video query is one vector: in a late-fusion index it is embedded the model card's way (separate).
  if (late) options.fusion = model::Fusion::Separate;
  model::Embedder embedder(model, options);
  model::EmbedRequest req;
  req.role = text::Role::Query;
  req.text = a.text;
  for (const auto& im : a.images) req.images.emplace_back(im);
  for (const auto& au : a.audio) req.audios.emplace_back(au);
  for (const auto& v : a.video) req.videos.emplace_back(v);
  const model::Embedding q = with_context("embedding the query", [&] { return embedder.embed(req); });
  if (static_cast<int64_t>(q.vector.size()) != s.dim)
    throw InvalidInput(
        fmt::format("the model gives {}-d vectors but the index holds {}-d ones", q.vector.size(), s.dim));
  // A late-fusion index ranks each video by the weighted sum of its frames and sound scores.
  const auto hits = late ? index::late_fusion_search(*store, q.vector.data(), a.k, a.late_weight, a.modalities,
                                                     a.ef_search)
                         : store->search(q.vector.data(), a.k, a.modalities, a.ef_search);

  if (a.format == "json") {
    for (size_t i = 0; i < hits.size(); ++i) {
      const auto& h = hits[i];
      nlohmann::ordered_json j;
      j["rank"] = i + 1;
      j["score"] = std::round(static_cast<double>(h.score) * 1e6) / 1e6;
      j["path"] = h.path;
      j["modality"] = h.modality;
      j["segment"] = h.segment;
      if (h.unit == "s" || h.unit == "char") {
        j["start"] = h.start;
        j["end"] = h.end;
        j["unit"] = h.unit == "s" ? "seconds" : "characters";
      }
      if (!h.preview.empty()) j["preview"] = h.preview;
      if (h.key != h.path) j["key"] = h.key;
      std::cout << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
    }
    return 0;
  }
  if (hits.empty()) {
    std::cout << "no results (the index is empty, or nothing of that modality)\n";
    return 0;
  }
  std::cout << fmt::format("{:>4}  {:>8}  {:<8}  {}\n", "rank", "score", "modality", "path");
  for (size_t i = 0; i < hits.size(); ++i) {
    const auto& h = hits[i];
    std::string where = h.path;
    const std::string span = span_of(h);
    if (!span.empty()) where += " [" + span + "]";
    std::cout << fmt::format("{:>4}  {:>8.4f}  {:<8}  {}\n", i + 1, h.score, h.modality, where);
    if (!h.preview.empty()) {
      // At most 100 bytes, cut at a character boundary.
      size_t n = std::min<size_t>(h.preview.size(), 100);
      while (n < h.preview.size() && n > 0 && (static_cast<unsigned char>(h.preview[n]) & 0xC0) == 0x80) --n;
      std::cout << fmt::format("{:>24}{}\n", "", h.preview.substr(0, n));
    }
  }
  return 0;
}

}  // namespace

VerbRunner register_search(CLI::App& app) {
  auto a = std::make_shared<SearchArgs>();
  auto* sub = app.add_subcommand("search", "Search an index with a text, an image, an audio clip and/or a video");
  add_model_options(*sub, a->model);
  sub->add_option("query", a->text, "The query text");
  sub->add_option("--index", a->index, "The index folder")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--image", a->images, "An image as (part of) the query (repeatable)")->check(CLI::ExistingFile);
  sub->add_option("--audio", a->audio,
                  "An audio file (or a video's audio track) as (part of) the query (repeatable; cut to the index's "
                  "clip length)")
      ->check(CLI::ExistingFile);
  sub->add_option("--video", a->video,
                  "A video file as (part of) the query (repeatable; frames and sound as the index's --fusion, "
                  "separate in a late-fusion index)")
      ->check(CLI::ExistingFile);
  sub->add_option("--late-weight", a->late_weight,
                  "In an index made with --fusion late: a video's score is W · frames score + (1 − W) · sound score")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("-k,--top", a->k, "How many hits")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--modality", a->modalities,
                  "Only hits of this modality (repeatable): text, image, audio, video, mixed")
      ->delimiter(',');
  sub->add_option("--format", a->format, "Output: table or json (one line per hit)")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  sub->add_flag("--allow-mismatch", a->allow_mismatch, "Search an index built with another model anyway");
  sub->add_option("--ef-search", a->ef_search, "HNSW search beam width (default 64, at least k)")
      ->check(CLI::NonNegativeNumber);
  return [a, sub] {
    a->model_given = sub->count("--model") > 0;
    return run_search(*a);
  };
}

}  // namespace oe::cli
