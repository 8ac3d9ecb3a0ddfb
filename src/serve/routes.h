// What each route answers, apart from the network (server.cc): authentication, readiness, the request's JSON turned
// into a job for the worker, and the job's vectors turned into OpenAI's response shape.
#pragma once

#include <atomic>
#include <semaphore>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "serve/api_error.h"
#include "serve/browse.h"
#include "serve/metrics.h"
#include "serve/server.h"
#include "serve/worker.h"

namespace oe::serve {

struct Answer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  int retry_after = 0;  // seconds, for 429 and 503 (0: no header)
  std::vector<std::pair<std::string, std::string>> headers;  // more headers (Content-Range, Cache-Control, ...)

  static Answer error(const ApiError& e);
};

// One request being answered, and what its log line says.
struct Call {
  uint64_t id = 0;
  std::string method, target, authorization;
  std::string cookie, range;  // the Cookie and Range headers (the page's players and thumbnails)
  std::string body;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::string route;     // the route it matched ("" : none)
  std::string modality;  // of its items ("mixed" when they differ)
  int64_t items = 0, tokens = 0;
  double queue_seconds = 0;
  std::string error;              // the error message answered, if any
  std::shared_ptr<Job> job;       // while it waits on the worker
};

class Routes {
 public:
  Routes(const ServerOptions& options, Metrics& metrics, Worker& worker);

  void set_backend(std::shared_ptr<const Backend> backend);
  bool ready() const { return backend() != nullptr; }
  // Answers now, or submits a job and returns nothing: `later` is then called once, on a worker thread.
  std::optional<Answer> handle(const std::shared_ptr<Call>& call, std::function<void(Answer)> later);

 private:
  std::shared_ptr<const Backend> backend() const;
  std::optional<Answer> embeddings(const std::shared_ptr<Call>& call, const Backend& b, std::function<void(Answer)> later);
  std::optional<Answer> search(const std::shared_ptr<Call>& call, const std::shared_ptr<const Backend>& b,
                               std::function<void(Answer)> later);
  Answer models() const;
  // The search page's routes: its files, what the index holds, thumbnails and the indexed files (browse.h).
  Answer index_info(const Backend& b);
  std::optional<Answer> thumbnail(const std::shared_ptr<Call>& call, const std::shared_ptr<const Backend>& b,
                                  std::function<void(Answer)> later);
  Answer media_file(const Call& call, const Backend& b);
  std::optional<Answer> preview(const std::shared_ptr<Call>& call, const std::shared_ptr<const Backend>& b,
                                std::function<void(Answer)> later);
  // Runs `make` (FFmpeg) on a thread of its own, at most max_thumbnail_jobs at once and max_thumbnail_queue waiting
  // or running (429 beyond), and answers with what it returns.
  std::optional<Answer> off_thread(const std::shared_ptr<Call>& call, std::function<void(Answer)> later,
                                   std::function<Answer()> make);
  static constexpr double MAX_PREVIEW_SECONDS = 30;
  // The indexed source a thumbnail or media request names (?item=ID or ?path=...): 404 for anything the index does
  // not hold. Returns its file, modality, the item's start second and the source's content hash.
  struct IndexedFile {
    std::filesystem::path file;
    std::string modality, content_hash;
    double start = 0, end = 0;  // the item's time range (seconds; 0, 0: none)
  };
  IndexedFile indexed_file(const Call& call, const Backend& b);
  // The answer of a search once the query vector is known.
  Answer search_answer(Call& call, const Backend& b, const SearchRequest& request, const float* query,
                       int64_t n_tokens);
  // Queues the job; ApiException 429 when the queue is full.
  void submit(const std::shared_ptr<Job>& job);

  const ServerOptions& options_;
  Metrics& metrics_;
  Worker& worker_;
  std::shared_ptr<SpoolDir> spool_;
  MediaSource media_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Backend> backend_;
  std::mutex search_mutex_;  // one reader of the store at a time
  Thumbnails thumbnails_;
  std::atomic<int> thumbnails_pending_{0};  // waiting for or holding an FFmpeg slot
  std::counting_semaphore<1024> ffmpeg_slots_;
};

}  // namespace oe::serve
