// The OpenAI request shapes, turned into the pipeline's items (pipeline/item.h: no item format of the server's own).
//
// POST /v1/embeddings
//   {"model": ..., "input": "text" | ["text", ...] | [{"role": ..., "content": "text" | [part, ...]}, ...],
//    "input_type": "query" | "document" (default document), "encoding_format": "float" | "base64",
//    "dimensions": the model's only, "truncate": true | false, "fusion": "separate" | ... | "late", "user": ...}
// where a part is one of OpenAI's chat content parts
//   {"type": "text", "text": ...}
//   {"type": "image_url", "image_url": {"url": data: URI | path under the media root}}
//   {"type": "input_audio", "input_audio": {"data": base64 | data: URI, "format": "wav" | "mp3" | ...}}
//   {"type": "audio_url", "audio_url": {"url": ...}}, {"type": "video_url", "video_url": {"url": ...}}
// An item's text parts are joined with a newline; its media go in the model card's order whatever the parts' order
// (videos right after the text, then audio, then images: pipeline/item.h).
//
// POST /v1/search  {"query": "text" | [part, ...], "k": 10, "modality": "image" | [...], "late_weight": 0.5}
//                  or {"like": ITEM, ...}: the stored vector of a hit's item is the query ("more like this")
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/modality.h"
#include "pipeline/item.h"
#include "serve/media.h"

namespace oe::serve {

// Limits of one request's content.
struct RequestLimits {
  int64_t max_items = 2048;  // OpenAI's own limit on inputs per request
  int64_t max_parts = 64;    // content parts of one item
  int64_t model_dim = 0;     // the only accepted "dimensions" (0: not checked)
};

struct EmbeddingsRequest {
  std::vector<pipeline::EmbedItem> items;
  bool base64 = false;         // encoding_format
  bool allow_truncation = true;  // "truncate": false refuses an input longer than the context
  std::string fusion;          // "" : the server's
  std::shared_ptr<MediaFiles> files = std::make_shared<MediaFiles>();  // inline media, removed with the request
};

struct SearchRequest {
  pipeline::EmbedItem query;
  std::optional<int64_t> like;  // "more like this": search with this item's stored vector instead of a query
  int64_t k = 10;
  std::vector<Modality> modalities;
  std::optional<double> late_weight;
  std::shared_ptr<MediaFiles> files = std::make_shared<MediaFiles>();
};

// Both throw ApiException (400, naming the field: "input[2].content[0].image_url.url: ...").
EmbeddingsRequest parse_embeddings_request(const nlohmann::json& body, const RequestLimits& limits,
                                           const MediaSource& media);
SearchRequest parse_search_request(const nlohmann::json& body, const RequestLimits& limits, const MediaSource& media);

// The body as JSON; ApiException 400 saying where it is not valid JSON or not an object.
nlohmann::json parse_body(const std::string& body);

}  // namespace oe::serve
