#include "serve/routes.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "io/read.h"
#include "search/late_fusion.h"

namespace oe::serve {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

std::string dump(const ordered_json& j) { return j.dump(-1, ' ', false, ordered_json::error_handler_t::replace); }

// A vector as OpenAI writes it: a JSON list of floats (shortest form that reads back to the same float32), or the
// base64 of its little-endian float32 bytes.
std::string vector_json(const std::vector<float>& v, bool base64) {
  if (!base64) return fmt::format("[{}]", fmt::join(v, ","));
  std::string bytes(v.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), v.data(), bytes.size());  // x86-64 and every target here are little-endian
  return "\"" + encode_base64(bytes) + "\"";
}

// The one modality of a set of items, "mixed" when they differ.
std::string modality_of(const std::vector<pipeline::EmbedItem>& items) {
  std::string m;
  for (const auto& it : items) {
    const std::string name = modality_name(it.modality());
    if (m.empty()) m = name;
    else if (m != name) return "mixed";
  }
  return m;
}

// The vectors of a job that ran, or the ApiException of the first item that failed.
void check_items(const JobResult& r, bool allow_truncation, const std::string& where, const MediaFiles& files) {
  if (!r.error.empty()) throw_api(500, files.redact(fmt::format("embedding failed: {}", r.error)), "", "internal_error");
  for (size_t i = 0; i < r.items.size(); ++i) {
    const std::string name = where == "query" ? where : fmt::format("{}[{}]", where, i);
    if (!r.items[i].ok())
      throw_api(400, files.redact(fmt::format("{}: {}", name, r.items[i].error)), where, "invalid_input");
    for (const auto& v : r.items[i].vectors)
      if (v.truncated && !allow_truncation)
        throw_api(400, fmt::format("{}: longer than the model's context ({} tokens kept) and \"truncate\" is false",
                                   name, v.n_tokens), where, "input_too_long");
  }
}

// Runs `f`, turning an ApiException into its answer (and the call's logged error).
template <typename F>
Answer answer_of(Call& call, F&& f) {
  try {
    return f();
  } catch (const ApiException& e) {
    call.error = e.error.message;
    return Answer::error(e.error);
  }
}

}  // namespace

Answer Answer::error(const ApiError& e) {
  Answer a;
  a.status = e.status;
  a.body = e.body();
  if (e.status == 429 || e.status == 503) a.retry_after = 1;
  return a;
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

Routes::Routes(const ServerOptions& options, Metrics& metrics, Worker& worker)
    : options_(options), metrics_(metrics), worker_(worker), spool_(std::make_shared<SpoolDir>()),
      thumbnails_(options.thumbnails), ffmpeg_slots_(std::max(1, options.max_thumbnail_jobs)) {
  media_.spool = spool_;
  media_.root = options.media_root;
}

void Routes::set_backend(std::shared_ptr<const Backend> backend) {
  std::lock_guard lock(mutex_);
  backend_ = std::move(backend);
}

std::shared_ptr<const Backend> Routes::backend() const {
  std::lock_guard lock(mutex_);
  return backend_;
}

std::optional<Answer> Routes::handle(const std::shared_ptr<Call>& call, std::function<void(Answer)> later) {
  const std::string path = call->target.substr(0, call->target.find('?'));
  static const std::map<std::string, std::string> ROUTES = {
      {"/v1/embeddings", "POST"}, {"/v1/search", "POST"},   {"/v1/models", "GET"},     {"/health", "GET"},
      {"/ready", "GET"},          {"/metrics", "GET"},      {"/v1/index", "GET"},      {"/v1/thumbnail", "GET"},
      {"/v1/media", "GET"},       {"/v1/preview", "GET"},   {"/", "GET"},             {"/index.html", "GET"},    {"/app.js", "GET"},
      {"/style.css", "GET"}};
  const auto route = ROUTES.find(path);
  call->route = route == ROUTES.end() ? "other" : path;
  try {
    if (route == ROUTES.end()) throw_api(404, fmt::format("no route {} (see GET /v1/models)", path), "", "not_found");
    if (call->method != route->second && !(route->second == "GET" && call->method == "HEAD"))
      throw_api(405, fmt::format("{} takes {}, not {}", path, route->second, call->method), "", "method_not_allowed");
    if (path == "/health") return Answer{200, R"({"status":"ok"})"};
    if (path == "/metrics") return Answer{200, "", "text/plain; version=0.0.4"};  // filled by the server
    if (path == "/ready") {
      if (!ready()) throw_api(503, "the model is still loading", "", "not_ready");
      return Answer{200, R"({"status":"ready"})"};
    }
    if (path.rfind("/v1/", 0) != 0) {  // the page's own files: no data in them, so no key
      auto f = page_file(path, options_.web_root);
      if (!f)
        throw_api(404, page_compiled_in() || !options_.web_root.empty()
                           ? fmt::format("no page file {}", path)
                           : std::string("this build has no search page: it is compiled from web/ when the build "
                                         "finds node and TypeScript (scripts/setup.sh installs them), or serve it "
                                         "with --web-root"),
                  "", "not_found");
      Answer a{200, std::move(f->body), f->content_type};
      a.headers = {{"Cache-Control", "no-cache"}, {"X-Content-Type-Options", "nosniff"},
                   {"Content-Security-Policy",
                    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; style-src 'self'; "
                    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'"}};
      return a;
    }
    if (!options_.api_key.empty()) {
      const std::string prefix = "Bearer ";
      const std::string& h = call->authorization;
      std::string given = h.rfind(prefix, 0) == 0 ? h.substr(prefix.size()) : std::string();
      // The page's <img> and <video> elements cannot send a header: for the two routes they read, the page's
      // cookie (SameSite=Strict, so another site's page cannot make the browser send it) carries the key.
      const bool by_cookie = h.empty() && (path == "/v1/thumbnail" || path == "/v1/media" || path == "/v1/preview");
      if (by_cookie) given = cookie_value(call->cookie, "omni_embed_key");
      if (h.empty() && given.empty())
        throw_api(401, "missing API key: send \"Authorization: Bearer KEY\"", "", "invalid_api_key");
      if (!constant_time_equal(given, options_.api_key)) throw_api(401, "the API key is not valid", "", "invalid_api_key");
    }
    if (path == "/v1/models") return models();
    const auto b = backend();
    if (!b) throw_api(503, "the model is still loading; retry when GET /ready answers 200", "", "not_ready");
    if (path == "/v1/embeddings") return embeddings(call, *b, std::move(later));
    if (path == "/v1/search") return search(call, b, std::move(later));
    if (!b->store) throw_api(404, fmt::format("{} needs an index: start the server with --index DIR", path), "", "no_index");
    if (path == "/v1/index") return index_info(*b);
    if (path == "/v1/thumbnail") return thumbnail(call, b, std::move(later));
    if (path == "/v1/preview") return preview(call, b, std::move(later));
    return media_file(*call, *b);
  } catch (const ApiException& e) {
    call->error = e.error.message;
    return Answer::error(e.error);
  }
}

Answer Routes::models() const {
  ordered_json m;
  m["id"] = options_.model_id;
  m["object"] = "model";
  m["created"] = 0;
  m["owned_by"] = "omni-embed";
  ordered_json j;
  j["object"] = "list";
  j["data"] = ordered_json::array({m});
  return Answer{200, dump(j)};
}

void Routes::submit(const std::shared_ptr<Job>& job) {
  job->deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                      std::chrono::duration<double>(options_.request_timeout_seconds));
  if (!worker_.submit(job))
    throw_api(429, fmt::format("the server is busy ({} requests queued); retry after a second", worker_.queued()), "",
              "queue_full", "rate_limit_error");
}

std::optional<Answer> Routes::embeddings(const std::shared_ptr<Call>& call, const Backend& b,
                                         std::function<void(Answer)> later) {
  RequestLimits limits = options_.limits;
  limits.model_dim = b.model->config().text.d_model;
  auto request = std::make_shared<EmbeddingsRequest>(parse_embeddings_request(parse_body(call->body), limits, media_));
  call->items = static_cast<int64_t>(request->items.size());
  call->modality = modality_of(request->items);
  auto job = std::make_shared<Job>();
  job->encoder = &b.encoder(request->fusion.empty() ? b.fusion : request->fusion);
  job->items = request->items;
  job->files = request->files;
  const std::string model_id = options_.model_id;
  job->done = [call, request, later, model_id](JobResult r) {
    if (r.dropped) return;  // its client already had its answer (504, or it left)
    call->queue_seconds = r.queue_seconds;
    later(answer_of(*call, [&] {
      check_items(r, request->allow_truncation, "input", *request->files);
      std::string data;
      int64_t tokens = 0;
      for (size_t i = 0; i < r.items.size(); ++i) {
        const auto& vs = r.items[i].vectors;
        bool truncated = false;
        for (const auto& v : vs) {
          tokens += v.n_tokens;
          truncated = truncated || v.truncated;
        }
        data += fmt::format("{}{{\"object\":\"embedding\",\"index\":{},\"embedding\":{}", i ? "," : "", i,
                            vector_json(vs.front().vector, request->base64));
        if (vs.size() == 2) data += ",\"audio_embedding\":" + vector_json(vs[1].vector, request->base64);
        if (truncated) data += ",\"truncated\":true";
        data += "}";
      }
      call->tokens = tokens;
      return Answer{200, fmt::format(R"({{"object":"list","data":[{}],"model":{},"usage":{{"prompt_tokens":{},"total_tokens":{}}}}})",
                                     data, dump(model_id), tokens, tokens)};
    }));
  };
  call->job = job;
  submit(job);
  return std::nullopt;
}

std::optional<Answer> Routes::search(const std::shared_ptr<Call>& call, const std::shared_ptr<const Backend>& b,
                                     std::function<void(Answer)> later) {
  if (!b->store) throw_api(404, "search needs an index: start the server with --index DIR", "", "no_index");
  auto request = std::make_shared<SearchRequest>(parse_search_request(parse_body(call->body), options_.limits, media_));
  if (request->late_weight) {
    try {
      search::check_late_fusion_weight(*request->late_weight);
    } catch (const InvalidInput& e) {
      throw_api(400, fmt::format("late_weight: {}", e.what()), "late_weight");
    }
  }
  call->items = 1;
  if (request->like) {  // "more like this": the item's stored vector, nothing to embed
    std::optional<std::vector<float>> v;
    {
      std::lock_guard lock(search_mutex_);
      v = b->store->vector_of(*request->like);
    }
    if (!v) throw_api(404, fmt::format("like: no item {} in the index", *request->like), "like", "not_found");
    call->modality = "like";
    return search_answer(*call, *b, *request, v->data(), 0);
  }
  call->modality = modality_name(request->query.modality());
  auto job = std::make_shared<Job>();
  job->encoder = &b->retriever->query_encoder();
  job->items = {request->query};
  job->files = request->files;
  job->done = [this, call, request, later, b](JobResult r) {
    if (r.dropped) return;
    call->queue_seconds = r.queue_seconds;
    later(answer_of(*call, [&] {
      check_items(r, /*allow_truncation=*/true, "query", *request->files);
      const model::Embedding& q = r.items[0].vectors.front();
      return search_answer(*call, *b, *request, q.vector.data(), q.n_tokens);
    }));
  };
  call->job = job;
  submit(job);
  return std::nullopt;
}

Answer Routes::search_answer(Call& call, const Backend& b, const SearchRequest& request, const float* query,
                             int64_t n_tokens) {
  call.tokens = n_tokens;
  std::vector<index::Hit> hits;
  {
    std::lock_guard lock(search_mutex_);
    if (request.late_weight && b.retriever->late_fusion()) {
      search::RetrieverOptions ro = b.retriever_options;
      ro.late_weight = *request.late_weight;
      hits = search::Retriever(b.model, *b.store, ro).search(*b.store, query, request.k, request.modalities);
    } else {
      hits = b.retriever->search(*b.store, query, request.k, request.modalities);
    }
  }
  ordered_json data = ordered_json::array();
  for (size_t i = 0; i < hits.size(); ++i) {
    ordered_json h = search::hit_json(hits[i], i + 1);
    h["item"] = hits[i].item_id;  // for "like", /v1/thumbnail and /v1/media
    data.push_back(std::move(h));
  }
  ordered_json out;
  out["object"] = "list";
  out["data"] = std::move(data);
  out["usage"] = {{"prompt_tokens", n_tokens}, {"total_tokens", n_tokens}};
  return Answer{200, dump(out)};
}

Answer Routes::index_info(const Backend& b) {
  ordered_json j;
  std::lock_guard lock(search_mutex_);
  const index::StoreStats stats = b.store->stats();
  j["object"] = "index";
  j["model"] = options_.model_id;
  j["sources"] = stats.sources;
  j["failed"] = stats.failed;
  j["items"] = stats.items;
  j["dim"] = b.store->settings().dim;
  j["vectors"] = b.store->settings().vectors;
  j["modalities"] = b.store->items_by_modality();
  j["late_fusion"] = b.retriever->late_fusion();
  j["late_weight"] = b.retriever_options.late_weight;
  return Answer{200, dump(j)};
}

Routes::IndexedFile Routes::indexed_file(const Call& call, const Backend& b) {
  const auto item = query_param(call.target, "item");
  const auto path = query_param(call.target, "path");
  if (!item == !path) throw_api(400, "name the file with ?item=ID (a hit's item) or ?path=PATH (a hit's path)", "item");
  IndexedFile f;
  std::lock_guard lock(search_mutex_);
  if (item) {
    int64_t id = 0;
    const auto [end, ec] = std::from_chars(item->data(), item->data() + item->size(), id);
    if (ec != std::errc() || end != item->data() + item->size() || id < 1)
      throw_api(400, fmt::format("item: expected an item id (a positive integer), got \"{}\"", *item), "item");
    const index::Hit h = b.store->describe({id}).front();
    if (h.path.empty()) throw_api(404, fmt::format("item: no item {} in the index", id), "item", "not_found");
    const auto source = b.store->find_source(h.key);
    f.file = h.path;
    f.modality = h.modality;
    f.start = h.unit == "s" ? h.start : 0;
    f.end = h.unit == "s" ? h.end : 0;
    f.content_hash = source ? source->content_hash : "";
  } else {
    const auto source = b.store->find_source_by_path(*path);
    if (!source || source->status != "ok")
      throw_api(404, fmt::format("path: {} is not a file of the index", *path), "path", "not_found");
    f.file = source->path;
    f.modality = source->modality;
    f.content_hash = source->content_hash;
  }
  std::error_code ec;
  if (!f.file.is_absolute() || !std::filesystem::is_regular_file(f.file, ec))
    throw_api(404, fmt::format("{}: the indexed file is no longer there", f.file.string()), "", "not_found");
  return f;
}

std::optional<Answer> Routes::thumbnail(const std::shared_ptr<Call>& call, const std::shared_ptr<const Backend>& b,
                                        std::function<void(Answer)> later) {
  IndexedFile f = indexed_file(*call, *b);
  call->modality = f.modality;
  if (f.modality != "image" && f.modality != "video")
    throw_api(404, fmt::format("{}: a {} item has no thumbnail (images and videos do)", f.file.string(), f.modality),
              "item", "no_thumbnail");
  double seconds = f.start;
  if (const auto t = query_param(call->target, "t")) {
    char* end = nullptr;
    seconds = std::strtod(t->c_str(), &end);
    if (t->empty() || *end != '\0' || !std::isfinite(seconds) || seconds < 0 || seconds > 1e7)
      throw_api(400, fmt::format("t: expected seconds from 0, got \"{}\"", *t), "t");
  }
  int size = 320;
  if (const auto s = query_param(call->target, "size")) {
    const auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), size);
    if (ec != std::errc() || end != s->data() + s->size() || size < 16 || size > 1024)
      throw_api(400, fmt::format("size: expected pixels from 16 to 1024, got \"{}\"", *s), "size");
  }
  const bool video = f.modality == "video";
  if (!video) seconds = 0;
  const std::string key = fmt::format("{}|{}|{:.3f}|{}", f.content_hash.empty() ? f.file.string() : f.content_hash,
                                      video, seconds, size);
  return off_thread(call, std::move(later), [this, f, video, seconds, size, key] {
    Answer a{200, thumbnails_.get(f.file, video, seconds, size, key), "image/jpeg"};
    a.headers = {{"Cache-Control", "private, max-age=3600"}, {"X-Content-Type-Options", "nosniff"}};
    return a;
  });
}

std::optional<Answer> Routes::preview(const std::shared_ptr<Call>& call, const std::shared_ptr<const Backend>& b,
                                      std::function<void(Answer)> later) {
  IndexedFile f = indexed_file(*call, *b);
  call->modality = f.modality;
  if (f.modality != "audio" && f.modality != "video")
    throw_api(404, fmt::format("{}: a {} item has no preview (audio and video do)", f.file.string(), f.modality),
              "item", "no_preview");
  const bool video = f.modality == "video";
  const double seconds = f.end > f.start ? std::min(f.end - f.start, MAX_PREVIEW_SECONDS) : MAX_PREVIEW_SECONDS;
  const std::string key = fmt::format("{}|{}|{:.3f}|{:.3f}", f.content_hash.empty() ? f.file.string() : f.content_hash,
                                      video, f.start, seconds);
  return off_thread(call, std::move(later), [this, call, f, video, seconds, key] {
    const std::string webm = thumbnails_.preview(f.file, video, f.start, seconds, key);
    const auto range = parse_range(call->range, static_cast<int64_t>(webm.size()));
    Answer a{range ? 206 : 200, "", video ? "video/webm" : "audio/webm"};
    a.body = range ? webm.substr(static_cast<size_t>(range->first), static_cast<size_t>(range->last - range->first + 1))
                   : webm;
    a.headers = {{"Accept-Ranges", "bytes"}, {"Cache-Control", "private, max-age=3600"},
                 {"X-Content-Type-Options", "nosniff"}};
    if (range) a.headers.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", range->first, range->last, webm.size()));
    return a;
  });
}

std::optional<Answer> Routes::off_thread(const std::shared_ptr<Call>& call, std::function<void(Answer)> later,
                                         std::function<Answer()> make) {
  // A page asks for a screenful of thumbnails at once: they wait for one of the max_thumbnail_jobs FFmpeg slots, and
  // only past max_thumbnail_queue waiting or running is a request refused.
  if (thumbnails_pending_.fetch_add(1) >= options_.max_thumbnail_queue) {
    --thumbnails_pending_;
    throw_api(429, fmt::format("{} thumbnails and previews are already waiting; retry after a second",
                               options_.max_thumbnail_queue),
              "", "busy", "rate_limit_error");
  }
  // FFmpeg takes from milliseconds to seconds: on a thread of its own, not on the connections' threads.
  std::thread([this, call, later = std::move(later), make = std::move(make)] {
    ffmpeg_slots_.acquire();
    Answer answer = answer_of(*call, make);
    ffmpeg_slots_.release();
    --thumbnails_pending_;  // before the answer: once it is out, a draining server may be destroyed
    later(std::move(answer));
  }).detach();
  return std::nullopt;
}

Answer Routes::media_file(const Call& call, const Backend& b) {
  const IndexedFile f = indexed_file(call, b);
  std::error_code ec;
  const int64_t size = static_cast<int64_t>(std::filesystem::file_size(f.file, ec));
  if (ec) throw_api(404, fmt::format("{}: cannot be read: {}", f.file.string(), ec.message()), "", "not_found");
  const auto range = parse_range(call.range, size);
  const int64_t cap = options_.max_media_range_bytes;
  if (!range && size > cap)
    throw_api(413, fmt::format("{} is {} bytes, more than one answer carries ({}): ask for byte ranges (a Range "
                               "header), as browsers' players do", f.file.string(), size, cap),
              "Range", "range_required");
  const int64_t first = range ? range->first : 0;
  const int64_t last = range ? std::min(range->last, first + cap - 1) : size - 1;
  Answer a{range ? 206 : 200, "", content_type_for(f.file)};
  a.body = io::read_file_range(f.file, first, last - first + 1);
  a.headers = {{"Accept-Ranges", "bytes"}, {"Cache-Control", "private, max-age=3600"},
               {"X-Content-Type-Options", "nosniff"}, {"Content-Disposition", "inline"}};
  if (range) a.headers.emplace_back("Content-Range", fmt::format("bytes {}-{}/{}", first, last, size));
  return a;
}

std::shared_ptr<Backend> Backend::make(std::shared_ptr<const model::Model> model, const pipeline::EmbedOptions& options,
                                       const std::filesystem::path& index_dir, search::RetrieverOptions retriever) {
  options.validate();
  auto b = std::make_shared<Backend>();
  b->model = model;
  b->options = options;
  b->fusion = options.fusion_name();
  for (const char* name : {"separate", "interleaved", "video", "audio", "late"}) {
    pipeline::EmbedOptions o = options;
    o.set_fusion(name);
    b->encoders[name] = std::make_unique<pipeline::Encoder>(model, o);
  }
  b->retriever_options = retriever;
  if (!index_dir.empty()) {
    b->store = index::Store::open(index_dir);
    b->store->prepare_search();
    b->retriever = std::make_unique<search::Retriever>(model, *b->store, retriever);
  }
  return b;
}

const pipeline::Encoder& Backend::encoder(const std::string& fusion_name) const {
  const auto it = encoders.find(fusion_name);
  OE_CHECK(it != encoders.end(), "no encoder for fusion {}", fusion_name);
  return *it->second;
}

}  // namespace oe::serve
