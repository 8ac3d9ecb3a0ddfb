// omni-embed search: embeds one query (text, images, audio and/or video) and prints the index's nearest items.
#include <cmath>
#include <iostream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/modality.h"
#include "search/retriever.h"

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
  std::vector<Modality> modalities;
  for (const auto& m : a.modalities) modalities.push_back(parse_hit_modality(m));
  auto store = index::Store::open(a.index);
  if (!a.model_given) a.model.model = store->settings().model;
  // The adapter the index was built with, unless another is given (the retriever checks it is the same one).
  if (a.model.adapter.empty()) a.model.adapter = store->settings().adapter;
  search::RetrieverOptions ro;
  ro.late_weight = a.late_weight;
  ro.hnsw_ef_search = a.ef_search;
  ro.allow_mismatch = a.allow_mismatch;
  // The query is embedded as the index was built (its recorded settings), one vector.
  const search::Retriever retriever(load_model(a.model), *store, ro);
  pipeline::EmbedItem query;
  query.role = text::Role::Query;
  query.text = a.text;
  query.images.assign(a.images.begin(), a.images.end());
  query.audios.assign(a.audio.begin(), a.audio.end());
  query.videos.assign(a.video.begin(), a.video.end());
  const model::Embedding q = retriever.embed_query(query);
  const auto hits = retriever.search(*store, q.vector.data(), a.k, modalities);

  if (a.format == "json") {
    for (size_t i = 0; i < hits.size(); ++i) {
      nlohmann::ordered_json j = search::hit_json(hits[i], i + 1);
      j["score"] = std::round(static_cast<double>(hits[i].score) * 1e6) / 1e6;  // six decimals on the command line
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
