// What an item is, for every front end: a text with its role, and media files in the model card's order (videos
// right after the text, then audio, then images). Items come from the command line, from JSON lines (`embed
// --input`, index manifests, BEIR corpora and queries) and, later, from HTTP requests; the one JSON form is
//   {"id": ..., "role": "query"|"document", "title": ..., "text": ..., "image": P | [P, ...], "audio": ..., "video": ...}
// with media paths relative to the file's folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/modality.h"
#include "model/embedder.h"

namespace oe::pipeline {

struct EmbedItem {
  nlohmann::json id;  // as given (null: none)
  text::Role role = text::Role::Document;
  std::string text;
  std::vector<std::filesystem::path> images, audios, videos;

  // text, image, audio or video when the item has one kind of content (text also for an empty document), mixed
  // when it has several.
  Modality modality() const;
  bool has_media() const { return !images.empty() || !audios.empty() || !videos.empty(); }
  model::EmbedRequest request() const;
  // The manifest id as a string ("" when there is none).
  std::string id_string() const;
};

// How a JSON line becomes an item.
struct ItemFormat {
  std::filesystem::path base;         // relative media paths are relative to it
  std::optional<text::Role> role;     // every item's role; unset: the line's "role", default document
  // An entry of a manifest or a BEIR file: "id" (or BEIR's "_id"), a string or an integer, is required; "title" is
  // joined to "text" with a space and the result stripped, as BEIR and MTEB do; an entry with neither text nor media
  // is refused. Otherwise (`embed --input`) the text is taken as it is, "id" is any JSON value echoed back, and an
  // item with nothing is an empty document.
  bool catalogued = false;
  // The longest line read (--max-text-bytes): a longer one is an error of its own, the lines after it are read.
  int64_t max_line_bytes = int64_t{64} << 20;
};

// InvalidInput saying what is wrong with the entry (a query with nothing to embed, a media path that is not a
// string, a missing id, ...).
EmbedItem parse_item(const nlohmann::json& entry, const ItemFormat& format);

// Reads a JSONL file of items, calling `take` for every line that is not blank, in order, with its 1-based line
// number and either the item or the reason it is not one ("FILE line N: not valid JSON (...)", "FILE line N: ...").
// A catalogued file's ids must be unique. A value null is the same as an absent key. IoError when the file cannot be
// read or is not a regular file; InvalidInput for a line longer than format.max_line_bytes (the file's reading
// stops there: what follows the cut is not a line).
struct ItemLine {
  int64_t line = 0;
  std::optional<EmbedItem> item;
  std::string canonical;  // the line's JSON, parsed and written again (what an index's content hash covers)
  std::string error;
};
void read_item_lines(const std::filesystem::path& file, const ItemFormat& format,
                     const std::function<void(ItemLine)>& take);

}  // namespace oe::pipeline
