#include "serve/routes.h"

#include <cmath>
#include <cstring>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
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
    : options_(options), metrics_(metrics), worker_(worker), spool_(std::make_shared<SpoolDir>()) {
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
      {"/v1/embeddings", "POST"}, {"/v1/search", "POST"}, {"/v1/models", "GET"},
      {"/health", "GET"},         {"/ready", "GET"},      {"/metrics", "GET"}};
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
    if (!options_.api_key.empty()) {
      const std::string prefix = "Bearer ";
      const std::string& h = call->authorization;
      const std::string given = h.rfind(prefix, 0) == 0 ? h.substr(prefix.size()) : std::string();
      if (h.empty()) throw_api(401, "missing API key: send \"Authorization: Bearer KEY\"", "", "invalid_api_key");
      if (!constant_time_equal(given, options_.api_key)) throw_api(401, "the API key is not valid", "", "invalid_api_key");
    }
    if (path == "/v1/models") return models();
    const auto b = backend();
    if (!b) throw_api(503, "the model is still loading; retry when GET /ready answers 200", "", "not_ready");
    if (path == "/v1/embeddings") return embeddings(call, *b, std::move(later));
    return search(call, b, std::move(later));
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
      call->tokens = q.n_tokens;
      std::vector<index::Hit> hits;
      {
        std::lock_guard lock(search_mutex_);
        if (request->late_weight && b->retriever->late_fusion()) {
          search::RetrieverOptions ro = b->retriever_options;
          ro.late_weight = *request->late_weight;
          hits = search::Retriever(b->model, *b->store, ro).search(*b->store, q.vector.data(), request->k,
                                                                   request->modalities);
        } else {
          hits = b->retriever->search(*b->store, q.vector.data(), request->k, request->modalities);
        }
      }
      ordered_json data = ordered_json::array();
      for (size_t i = 0; i < hits.size(); ++i) data.push_back(search::hit_json(hits[i], i + 1));
      ordered_json out;
      out["object"] = "list";
      out["data"] = std::move(data);
      out["usage"] = {{"prompt_tokens", q.n_tokens}, {"total_tokens", q.n_tokens}};
      return Answer{200, dump(out)};
    }));
  };
  call->job = job;
  submit(job);
  return std::nullopt;
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
