// What each route answers, apart from the network (server.cc): authentication, readiness, the request's JSON turned
// into a job for the worker, and the job's vectors turned into OpenAI's response shape.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "serve/api_error.h"
#include "serve/metrics.h"
#include "serve/server.h"
#include "serve/worker.h"

namespace oe::serve {

struct Answer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  int retry_after = 0;  // seconds, for 429 and 503 (0: no header)

  static Answer error(const ApiError& e);
};

// One request being answered, and what its log line says.
struct Call {
  uint64_t id = 0;
  std::string method, target, authorization;
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
  // Queues the job; ApiException 429 when the queue is full.
  void submit(const std::shared_ptr<Job>& job);

  const ServerOptions& options_;
  Metrics& metrics_;
  Worker& worker_;
  std::shared_ptr<SpoolDir> spool_;
  MediaSource media_;
  mutable std::mutex mutex_;
  std::shared_ptr<const Backend> backend_;
  std::mutex search_mutex_;  // one search of the store at a time
};

}  // namespace oe::serve
