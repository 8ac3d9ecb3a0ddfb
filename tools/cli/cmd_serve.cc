// omni-embed serve: the OpenAI-compatible embedding and search server (src/serve); this file binds its flags.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "core/timer.h"
#include "io/read.h"
#include "serve/server.h"

namespace oe::cli {
namespace {

struct ServeArgs {
  ModelArgs model;
  bool model_given = false;
  std::string index;
  std::string api_key, api_key_file;
  std::string media_root;
  std::string model_id;
  int64_t max_body_mb = 64;
  int64_t thumbnail_cache_mb = 64;
  std::string web_root;
  double late_weight = 0.5;
  bool allow_mismatch = false;
  serve::ServerOptions server;
  pipeline::EmbedOptions options;
};

// One JSON line on stderr, like the request log.
void log_event(nlohmann::ordered_json j) { std::fprintf(stderr, "%s\n", j.dump().c_str()); std::fflush(stderr); }

std::string read_api_key(const std::string& file) {
  std::string key = io::read_file(file, io::ReadCap{4096, "API key file"});
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) key.pop_back();
  if (key.empty()) throw InvalidInput(fmt::format("--api-key-file {}: the file is empty", file));
  return key;
}

int run_serve(ServeArgs a) {
  a.options.validate();
  serve::ServerOptions& o = a.server;
  if (!a.api_key_file.empty()) a.api_key = read_api_key(a.api_key_file);
  o.api_key = a.api_key;
  if (!a.media_root.empty()) o.media_root = std::filesystem::canonical(a.media_root);
  o.max_body_bytes = a.max_body_mb << 20;
  o.thumbnails.cache_bytes = a.thumbnail_cache_mb << 20;
  if (!a.web_root.empty()) o.web_root = std::filesystem::canonical(a.web_root);
  if (!a.index.empty()) {
    const index::IndexSettings recorded = index::Store::open(a.index)->settings();
    if (!a.model_given) a.model.model = recorded.model;
    // The adapter the index was built with, unless another is given (the retriever checks it is the same one).
    if (a.model.adapter.empty()) a.model.adapter = recorded.adapter;
  }
  o.model_id = a.model_id.empty() ? a.model.model : a.model_id;

  serve::Server server(o);
  log_event({{"event", "listening"}, {"host", o.host}, {"port", server.port()}});
  Timer load;
  search::RetrieverOptions ro;
  ro.late_weight = a.late_weight;
  ro.allow_mismatch = a.allow_mismatch;
  auto backend = serve::Backend::make(load_model(a.model), a.options, a.index, ro);
  server.set_backend(std::move(backend), load.seconds());
  log_event({{"event", "ready"}, {"model", o.model_id}, {"load_seconds", load.seconds()}});
  server.wait();
  log_event({{"event", "stopped"}});
  return 0;
}

}  // namespace

VerbRunner register_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* sub = app.add_subcommand("serve", "Serve OpenAI-compatible embeddings (and search over an index, with a "
                                          "search page at /) over HTTP");
  add_model_options(*sub, a->model);
  serve::ServerOptions& o = a->server;
  sub->add_option("--index", a->index, "An index folder to serve POST /v1/search over")->check(CLI::ExistingDirectory);
  sub->add_option("--host", o.host, "Address to listen on")->capture_default_str();
  sub->add_option("--port", o.port, "Port to listen on (0: any free port, printed at start)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  auto* key = sub->add_option("--api-key", a->api_key, "Require \"Authorization: Bearer KEY\" on the /v1 routes");
  sub->add_option("--api-key-file", a->api_key_file, "Read the API key from this file (kept out of the process list)")
      ->check(CLI::ExistingFile)
      ->excludes(key);
  sub->add_option("--media-root", a->media_root,
                  "Requests may name media files under this folder (no \"..\", no symbolic link out of it)")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--served-model-name", a->model_id, "The model id of /v1/models and responses (default: --model)");
  sub->add_option("--max-batch-tokens", o.worker.max_batch_tokens, "Tokens of one forward pass (items of many requests share it)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--media-threads", o.worker.media_threads,
                  "Threads of the media lane: requests with images, audio or video are decoded and embedded on them, "
                  "several at a time with more than one")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_option("--max-queue", o.worker.max_queue, "Requests waiting for the model; more are answered 429")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--max-body-mb", a->max_body_mb, "Largest request body, in MiB (413 above)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}))
      ->capture_default_str();
  sub->add_option("--max-connections", o.max_connections, "Open connections; more are answered 503 and closed")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--io-threads", o.io_threads, "Threads reading and writing connections")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_option("--read-timeout", o.read_timeout_seconds,
                  "Seconds a client has to send a whole request (headers and body); slower ones are disconnected")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  sub->add_option("--request-timeout", o.request_timeout_seconds,
                  "Seconds a request may wait and run before it is answered 504")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  sub->add_option("--drain-timeout", o.drain_timeout_seconds,
                  "On SIGTERM or SIGINT, seconds to let requests in flight finish")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  sub->add_option("--late-weight", a->late_weight,
                  "Search in an index made with --fusion late: W · frames score + (1 − W) · sound score (a request's "
                  "\"late_weight\" overrides it)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--thumbnail-cache-mb", a->thumbnail_cache_mb,
                  "Memory for the search page's thumbnails (made by FFmpeg from the indexed files on demand)")
      ->check(CLI::Range(int64_t{0}, int64_t{65536}))
      ->capture_default_str();
  sub->add_option("--web-root", a->web_root,
                  "Serve the search page's files (index.html, app.js, style.css) from this folder instead of the "
                  "ones built into the binary")
      ->check(CLI::ExistingDirectory);
  sub->add_flag("--allow-mismatch", a->allow_mismatch, "Serve search over an index built with another model anyway");
  add_embed_options(*sub, a->options);
  return [a, sub] {
    a->model_given = sub->count("--model") > 0;
    return run_serve(*a);
  };
}

}  // namespace oe::cli
