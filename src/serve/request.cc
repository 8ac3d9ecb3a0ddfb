#include "serve/request.h"

#include "core/error.h"
#include "pipeline/options.h"
#include "serve/api_error.h"

namespace oe::serve {
namespace {

using nlohmann::json;

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "a list";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "a number";
    default: return "something else";
  }
}

[[noreturn]] void bad(const std::string& where, const std::string& message) {
  const std::string param = where.substr(0, where.find_first_of(".["));
  throw_api(400, where + ": " + message, param);
}

const json& member(const json& obj, const char* key, const std::string& where) {
  if (!obj.is_object()) bad(where, fmt::format("expected an object, got {}", type_name(obj)));
  if (!obj.contains(key) || obj[key].is_null()) bad(where, fmt::format("\"{}\" is required", key));
  return obj[key];
}

std::string string_of(const json& v, const std::string& where) {
  if (!v.is_string()) bad(where, fmt::format("expected a string, got {}", type_name(v)));
  return v.get<std::string>();
}

// A media reference resolved to a file; errors of the resolution become 400s naming `where`.
std::filesystem::path media_file(const std::string& reference, bool plain_base64, const MediaSource& media,
                                 MediaFiles& files, const std::string& where) {
  try {
    return resolve_media(reference, plain_base64, media, files, where);
  } catch (const InvalidInput& e) {
    throw_api(400, e.what(), where.substr(0, where.find_first_of(".[")));
  }
}

// One content part added to `item`.
void add_part(const json& part, pipeline::EmbedItem& item, std::vector<std::string>& texts, const MediaSource& media,
              MediaFiles& files, const std::string& where) {
  const std::string type = string_of(member(part, "type", where), where + ".type");
  if (type == "text") {
    texts.push_back(string_of(member(part, "text", where), where + ".text"));
  } else if (type == "image_url" || type == "video_url" || type == "audio_url") {
    const std::string w = where + "." + type;
    const json& ref = member(part, type.c_str(), where);
    // OpenAI's shape is {"url": ...}; a bare string is taken too.
    const std::string url = ref.is_string() ? ref.get<std::string>() : string_of(member(ref, "url", w), w + ".url");
    auto path = media_file(url, /*plain_base64=*/false, media, files, w);
    (type == "image_url" ? item.images : type == "video_url" ? item.videos : item.audios).push_back(std::move(path));
  } else if (type == "input_audio") {
    const std::string w = where + ".input_audio";
    const json& audio = member(part, "input_audio", where);
    const std::string data = string_of(member(audio, "data", w), w + ".data");
    if (audio.contains("format") && !audio["format"].is_null()) string_of(audio["format"], w + ".format");
    // The container is probed from the bytes; "format" is OpenAI's hint and not needed.
    item.audios.push_back(media_file(data, /*plain_base64=*/data.rfind("data:", 0) != 0, media, files, w + ".data"));
  } else {
    bad(where + ".type", fmt::format("unknown content part type \"{}\" (text, image_url, input_audio, audio_url or "
                                     "video_url)", type));
  }
}

text::Role role_of(const json& v, const std::string& where) {
  const std::string s = string_of(v, where);
  if (s == "query" || s == "search_query") return text::Role::Query;
  if (s == "document" || s == "passage" || s == "search_document") return text::Role::Document;
  bad(where, fmt::format("unknown role \"{}\" (query or document)", s));
}

void check_parts(const json& parts, const RequestLimits& limits, const std::string& where) {
  if (parts.empty()) bad(where, "the content is empty");
  if (static_cast<int64_t>(parts.size()) > limits.max_parts)
    bad(where, fmt::format("{} content parts, at most {} are accepted", parts.size(), limits.max_parts));
}

// One item: a string, or {"role": ..., "content": "text" | [part, ...]}, or a list of parts.
pipeline::EmbedItem parse_input(const json& v, text::Role role, const RequestLimits& limits, const MediaSource& media,
                                MediaFiles& files, const std::string& where) {
  pipeline::EmbedItem item;
  item.role = role;
  if (v.is_string()) {
    item.text = v.get<std::string>();
    return item;
  }
  const json* content = &v;
  std::string content_where = where;
  if (v.is_object()) {
    if (v.contains("role") && !v["role"].is_null()) item.role = role_of(v["role"], where + ".role");
    content = &member(v, "content", where);
    content_where = where + ".content";
    if (content->is_string()) {
      item.text = content->get<std::string>();
      return item;
    }
  }
  if (!content->is_array())
    bad(content_where, fmt::format("expected a string, a list of content parts or an object with \"content\", got {}",
                                   type_name(*content)));
  check_parts(*content, limits, content_where);
  std::vector<std::string> texts;
  for (size_t i = 0; i < content->size(); ++i)
    add_part((*content)[i], item, texts, media, files, fmt::format("{}[{}]", content_where, i));
  for (size_t i = 0; i < texts.size(); ++i) item.text += (i ? "\n" : "") + texts[i];
  return item;
}

bool has(const json& body, const char* key) { return body.contains(key) && !body[key].is_null(); }

}  // namespace

json parse_body(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    // A syntax error, or a number past double's range (out_of_range).
    throw_api(400, fmt::format("the request body is not valid JSON ({})", e.what()), "", "invalid_json");
  }
  if (!j.is_object()) throw_api(400, fmt::format("the request body must be a JSON object, got {}", type_name(j)));
  return j;
}

EmbeddingsRequest parse_embeddings_request(const json& body, const RequestLimits& limits, const MediaSource& media) {
  EmbeddingsRequest r;
  text::Role role = text::Role::Document;
  if (has(body, "input_type")) role = role_of(body["input_type"], "input_type");
  if (has(body, "encoding_format")) {
    const std::string f = string_of(body["encoding_format"], "encoding_format");
    if (f != "float" && f != "base64") bad("encoding_format", fmt::format("\"{}\" is not float or base64", f));
    r.base64 = f == "base64";
  }
  if (has(body, "dimensions")) {
    const json& d = body["dimensions"];
    if (!d.is_number_integer()) bad("dimensions", fmt::format("expected an integer, got {}", type_name(d)));
    if (limits.model_dim > 0 && d.get<int64_t>() != limits.model_dim)
      bad("dimensions", fmt::format("the model's vectors have {} dimensions and are not shortened; {} was asked",
                                    limits.model_dim, d.dump()));
  }
  if (has(body, "truncate")) {
    if (!body["truncate"].is_boolean()) bad("truncate", fmt::format("expected true or false, got {}", type_name(body["truncate"])));
    r.allow_truncation = body["truncate"].get<bool>();
  }
  if (has(body, "fusion")) {
    r.fusion = string_of(body["fusion"], "fusion");
    try {
      pipeline::EmbedOptions().set_fusion(r.fusion);
    } catch (const InvalidInput& e) {
      bad("fusion", e.what());
    }
  }
  const json& input = member(body, "input", "request");
  if (input.is_string()) {
    r.items.push_back(parse_input(input, role, limits, media, *r.files, "input"));
    return r;
  }
  if (!input.is_array()) bad("input", fmt::format("expected a string or a list, got {}", type_name(input)));
  if (input.empty()) bad("input", "the list is empty");
  if (static_cast<int64_t>(input.size()) > limits.max_items)
    bad("input", fmt::format("{} inputs, at most {} are accepted per request", input.size(), limits.max_items));
  if (input[0].is_number_integer())
    bad("input", "token id lists are not accepted: send the text (the server tokenizes it with the model's tokenizer)");
  for (size_t i = 0; i < input.size(); ++i)
    r.items.push_back(parse_input(input[i], role, limits, media, *r.files, fmt::format("input[{}]", i)));
  return r;
}

SearchRequest parse_search_request(const json& body, const RequestLimits& limits, const MediaSource& media) {
  SearchRequest r;
  if (has(body, "like")) {
    if (has(body, "query")) bad("like", "give \"query\" or \"like\", not both");
    const json& like = body["like"];
    if (!like.is_number_integer() || like.get<int64_t>() < 1)
      bad("like", fmt::format("expected the item id of a hit (a positive integer), got {}", like.dump()));
    r.like = like.get<int64_t>();
  } else {
    r.query = parse_input(member(body, "query", "request"), text::Role::Query, limits, media, *r.files, "query");
  }
  r.query.role = text::Role::Query;
  if (has(body, "k")) {
    const json& k = body["k"];
    if (!k.is_number_integer() || k.get<int64_t>() < 1 || k.get<int64_t>() > 1000)
      bad("k", fmt::format("expected an integer from 1 to 1000, got {}", k.dump()));
    r.k = k.get<int64_t>();
  }
  if (has(body, "modality")) {
    const json& m = body["modality"];
    const json list = m.is_array() ? m : json::array({m});
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string w = m.is_array() ? fmt::format("modality[{}]", i) : "modality";
      try {
        r.modalities.push_back(parse_hit_modality(string_of(list[i], w)));
      } catch (const InvalidInput& e) {
        bad(w, e.what());
      }
    }
  }
  if (has(body, "late_weight")) {
    const json& w = body["late_weight"];
    if (!w.is_number() || w.get<double>() < 0 || w.get<double>() > 1)
      bad("late_weight", fmt::format("expected a number from 0 to 1, got {}", w.dump()));
    r.late_weight = w.get<double>();
  }
  return r;
}

}  // namespace oe::serve
