// The server's counters, written as Prometheus text (GET /metrics): requests and errors by route and status, the
// queue's depth, items and tokens per batch round, tokens per second of compute, request latency per modality, the
// model's load time. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "serve/worker.h"

namespace oe::serve {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // The _bucket, _sum and _count lines of `name` with `labels` ("" or `key="value",...`).
  void write(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // one per bound, then +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct Gauges {
  int64_t queue_depth = 0, running_jobs = 0, connections = 0;
  bool ready = false;
};

class Metrics {
 public:
  Metrics();
  void request(const std::string& route, int status, const std::string& modality, double seconds);
  void round(const RoundStats& stats);
  void model_loaded(double seconds);
  std::string text(const Gauges& gauges) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, Histogram> latency_;  // by modality
  std::array<Histogram, 2> batch_items_, batch_tokens_;
  std::array<uint64_t, 2> rounds_{}, tokens_{};
  std::array<double, 2> compute_seconds_{};
  double model_load_seconds_ = 0;
};

}  // namespace oe::serve
