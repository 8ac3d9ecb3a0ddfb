// `omni-embed serve`: the HTTP front of the pipeline. Boost.Beast on a small pool of Asio threads reads and writes
// every connection asynchronously (a slow client holds no thread), with a deadline on each read (slow-loris), header
// and body size limits (a Content-Length over the limit is refused before the body is read), and a cap on open
// connections. Embedding runs on the Worker's lanes; a request waits there with its own deadline (504), is dropped
// when its client disconnects, and a full queue answers 429 with Retry-After. SIGTERM and SIGINT stop accepting,
// let the requests in flight finish, then return from wait().
//
// Routes: POST /v1/embeddings, POST /v1/search (with an index), GET /v1/models, /health, /ready (503 until the model
// is loaded), /metrics (Prometheus text). With an index, also the search page: GET / (and its /app.js, /style.css),
// /v1/index (what the index holds), /v1/thumbnail, /v1/media and /v1/preview (only for files the index names:
// browse.h); those three GETs also accept the API key as the cookie omni_embed_key, which the page sets (an <img> or
// <video> sends no header). One JSON log line per request on stderr.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "index/store.h"
#include "pipeline/options.h"
#include "search/retriever.h"
#include "serve/browse.h"
#include "serve/request.h"
#include "serve/worker.h"

namespace oe::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port (port() says which)
  std::string api_key;                  // "" : no authentication
  std::filesystem::path media_root;     // "" : requests may not name files
  int64_t max_body_bytes = int64_t{64} << 20;
  int64_t max_header_bytes = 16 << 10;
  int64_t max_connections = 512;
  int io_threads = 2;
  double read_timeout_seconds = 30;     // a whole request (headers and body) must arrive within this
  double request_timeout_seconds = 300; // queued plus embedding time of one request
  double drain_timeout_seconds = 60;    // the longest a shutdown waits for requests in flight
  Worker::Options worker;
  RequestLimits limits;
  std::string model_id = "omni-embed";  // what /v1/models and responses name
  std::filesystem::path web_root;       // "" : the search page compiled into the binary
  ThumbnailOptions thumbnails;
  int max_thumbnail_jobs = 2;           // FFmpeg runs (thumbnails, previews) at once; more wait
  int max_thumbnail_queue = 64;         // waiting or running; more are answered 429
  int64_t max_media_range_bytes = int64_t{8} << 20;  // the most one /v1/media answer carries (players ask in ranges)
};

// What the routes embed and search with, once the model is loaded.
struct Backend {
  std::shared_ptr<const model::Model> model;
  pipeline::EmbedOptions options;
  // One encoder per fusion mode a request may ask for ("separate", ..., "late"); the server's own is `fusion`.
  std::map<std::string, std::unique_ptr<pipeline::Encoder>> encoders;
  std::string fusion;
  std::unique_ptr<index::Store> store;  // with --index
  std::unique_ptr<search::Retriever> retriever;
  search::RetrieverOptions retriever_options;

  // InvalidInput for options no item could be embedded with, or an index the model cannot search.
  static std::shared_ptr<Backend> make(std::shared_ptr<const model::Model> model, const pipeline::EmbedOptions& options,
                                       const std::filesystem::path& index_dir, search::RetrieverOptions retriever);
  const pipeline::Encoder& encoder(const std::string& fusion_name) const;
};

class Server {
 public:
  // Binds the address (IoError naming it when it cannot) and starts the I/O threads; requests that need the model
  // answer 503 until set_backend.
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;
  void set_backend(std::shared_ptr<const Backend> backend, double load_seconds);
  // Blocks until a signal (SIGTERM, SIGINT) or shutdown() has drained the requests in flight.
  void wait();
  // Starts the same drain as a signal.
  void shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Compares two secrets in time that depends only on their lengths' maximum, not on where they differ.
bool constant_time_equal(const std::string& a, const std::string& b);

}  // namespace oe::serve
