#include "serve/metrics.h"

#include <fmt/format.h>

namespace oe::serve {
namespace {

const std::vector<double> LATENCY_BOUNDS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
const std::vector<double> ITEM_BOUNDS = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
const std::vector<double> TOKEN_BOUNDS = {16, 64, 256, 1024, 4096, 16384, 65536};

std::string join_labels(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return "{" + labels + "," + extra + "}";
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? fmt::format("le=\"{}\"", bounds_[i]) : "le=\"+Inf\"";
    out += fmt::format("{}_bucket{} {}\n", name, join_labels(labels, le), cumulative);
  }
  const std::string l = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, l, sum_, name, l, count_);
}

Metrics::Metrics()
    : batch_items_{Histogram(ITEM_BOUNDS), Histogram(ITEM_BOUNDS)},
      batch_tokens_{Histogram(TOKEN_BOUNDS), Histogram(TOKEN_BOUNDS)} {}

void Metrics::request(const std::string& route, int status, const std::string& modality, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  if (!modality.empty() && status < 400) latency_.try_emplace(modality, LATENCY_BOUNDS).first->second.observe(seconds);
}

void Metrics::round(const RoundStats& s) {
  std::lock_guard lock(mutex_);
  const auto l = static_cast<size_t>(s.lane);
  batch_items_[l].observe(static_cast<double>(s.items));
  batch_tokens_[l].observe(static_cast<double>(s.tokens));
  ++rounds_[l];
  tokens_[l] += static_cast<uint64_t>(s.tokens);
  compute_seconds_[l] += s.seconds;
}

void Metrics::model_loaded(double seconds) {
  std::lock_guard lock(mutex_);
  model_load_seconds_ = seconds;
}

std::string Metrics::text(const Gauges& g) const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP omni_embed_requests_total HTTP requests answered, by route and status.\n"
         "# TYPE omni_embed_requests_total counter\n";
  for (const auto& [key, n] : requests_)
    out += fmt::format("omni_embed_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  out += "# HELP omni_embed_errors_total HTTP requests answered with a 4xx or 5xx status, by route and status.\n"
         "# TYPE omni_embed_errors_total counter\n";
  for (const auto& [key, n] : requests_)
    if (key.second >= 400)
      out += fmt::format("omni_embed_errors_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first, key.second, n);
  out += "# HELP omni_embed_request_seconds Latency of successful embedding and search requests, by modality.\n"
         "# TYPE omni_embed_request_seconds histogram\n";
  for (const auto& [modality, h] : latency_)
    h.write(out, "omni_embed_request_seconds", fmt::format("modality=\"{}\"", modality));
  out += "# HELP omni_embed_batch_items Items per batch round of a lane.\n# TYPE omni_embed_batch_items histogram\n";
  for (Lane lane : {Lane::Text, Lane::Media})
    batch_items_[static_cast<size_t>(lane)].write(out, "omni_embed_batch_items", fmt::format("lane=\"{}\"", lane_name(lane)));
  out += "# HELP omni_embed_batch_tokens Tokens per batch round of a lane.\n# TYPE omni_embed_batch_tokens histogram\n";
  for (Lane lane : {Lane::Text, Lane::Media})
    batch_tokens_[static_cast<size_t>(lane)].write(out, "omni_embed_batch_tokens", fmt::format("lane=\"{}\"", lane_name(lane)));
  out += "# HELP omni_embed_tokens_total Tokens embedded, by lane.\n# TYPE omni_embed_tokens_total counter\n";
  out += "# HELP omni_embed_tokens_per_second Tokens embedded per second of a lane's compute time.\n"
         "# TYPE omni_embed_tokens_per_second gauge\n";
  for (Lane lane : {Lane::Text, Lane::Media}) {
    const auto l = static_cast<size_t>(lane);
    out += fmt::format("omni_embed_tokens_total{{lane=\"{}\"}} {}\n", lane_name(lane), tokens_[l]);
    out += fmt::format("omni_embed_tokens_per_second{{lane=\"{}\"}} {}\n", lane_name(lane),
                       compute_seconds_[l] > 0 ? static_cast<double>(tokens_[l]) / compute_seconds_[l] : 0.0);
  }
  out += fmt::format(
      "# HELP omni_embed_queue_depth Jobs waiting in the queue (both lanes).\n# TYPE omni_embed_queue_depth gauge\n"
      "omni_embed_queue_depth {}\n"
      "# HELP omni_embed_running_jobs Jobs in the lanes' current rounds.\n# TYPE omni_embed_running_jobs gauge\n"
      "omni_embed_running_jobs {}\n"
      "# HELP omni_embed_connections Open client connections.\n# TYPE omni_embed_connections gauge\n"
      "omni_embed_connections {}\n"
      "# HELP omni_embed_ready 1 once the model is loaded.\n# TYPE omni_embed_ready gauge\nomni_embed_ready {}\n"
      "# HELP omni_embed_model_load_seconds Time the model took to load.\n# TYPE omni_embed_model_load_seconds gauge\n"
      "omni_embed_model_load_seconds {}\n",
      g.queue_depth, g.running_jobs, g.connections, g.ready ? 1 : 0, model_load_seconds_);
  return out;
}

}  // namespace oe::serve
