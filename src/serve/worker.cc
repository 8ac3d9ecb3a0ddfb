#include "serve/worker.h"

#include <map>

#include "core/error.h"
#include "core/log.h"

namespace oe::serve {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

const char* lane_name(Lane lane) { return lane == Lane::Text ? "text" : "media"; }

Lane Job::lane() const {
  for (const auto& it : items)
    if (it.has_media()) return Lane::Media;
  return Lane::Text;
}

Worker::Worker(Options options, std::function<void(const RoundStats&)> on_round)
    : options_(options), on_round_(std::move(on_round)) {
  OE_CHECK(options_.max_batch_tokens > 0 && options_.max_queue > 0 && options_.max_round_items > 0 &&
           options_.media_threads > 0);
  threads_.emplace_back([this] { run_lane(Lane::Text); });
  for (int i = 0; i < options_.media_threads; ++i) threads_.emplace_back([this] { run_lane(Lane::Media); });
}

Worker::~Worker() { stop(); }

bool Worker::submit(std::shared_ptr<Job> job) {
  OE_CHECK(job && job->encoder && job->done, "a job needs an encoder and a completion");
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || static_cast<int64_t>(queues_[0].size() + queues_[1].size()) >= options_.max_queue) return false;
    job->submitted = Clock::now();
    queues_[static_cast<int>(job->lane())].push_back(std::move(job));
  }
  wake_.notify_all();
  return true;
}

void Worker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

void Worker::cancel_queued() {
  std::lock_guard lock(mutex_);
  for (auto& q : queues_)
    for (auto& job : q) job->cancelled = true;
}

int64_t Worker::queued() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(queues_[0].size() + queues_[1].size());
}

void Worker::run_lane(Lane lane) {
  auto& queue = queues_[static_cast<int>(lane)];
  for (;;) {
    std::vector<std::shared_ptr<Job>> jobs;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue.empty(); });
      if (queue.empty()) return;  // stopping, and nothing left
      // Every waiting job, up to the round's item count (at least one job).
      int64_t items = 0;
      while (!queue.empty() && (jobs.empty() || items + static_cast<int64_t>(queue.front()->items.size()) <=
                                                    options_.max_round_items)) {
        items += static_cast<int64_t>(queue.front()->items.size());
        jobs.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      running_ += static_cast<int64_t>(jobs.size());
    }
    run_round(lane, std::move(jobs));
  }
}

void Worker::run_round(Lane lane, std::vector<std::shared_ptr<Job>> jobs) {
  const auto start = Clock::now();
  // Jobs whose client is gone or whose time is up are dropped here, before anything is computed for them.
  std::vector<std::shared_ptr<Job>> live;
  for (auto& job : jobs) {
    if (job->cancelled.load() || Clock::now() >= job->deadline) {
      JobResult r;
      r.dropped = true;
      r.error = job->cancelled.load() ? "cancelled" : "deadline passed while queued";
      --running_;
      job->done(std::move(r));
    } else {
      live.push_back(std::move(job));
    }
  }
  std::vector<JobResult> results(live.size());
  RoundStats stats;
  stats.lane = lane;
  stats.jobs = static_cast<int64_t>(live.size());
  // One stream per set of options, in the jobs' order; its results come back in the order the items went in.
  std::map<const pipeline::Encoder*, std::vector<size_t>> by_encoder;
  for (size_t j = 0; j < live.size(); ++j) {
    by_encoder[live[j]->encoder].push_back(j);
    results[j].items.resize(live[j]->items.size());
    results[j].queue_seconds = std::chrono::duration<double>(start - live[j]->submitted).count();
  }
  for (auto& [encoder, members] : by_encoder) {
    std::vector<std::pair<size_t, size_t>> where;  // stream index -> (job, item)
    auto take = [&](const pipeline::ItemResult& r) {
      const auto [j, i] = where[static_cast<size_t>(r.index)];
      results[j].items[i] = r;
      for (const auto& v : r.vectors) stats.tokens += v.n_tokens;
    };
    try {
      pipeline::ItemStream stream(*encoder, options_.max_batch_tokens, take);
      for (size_t j : members) {
        for (size_t i = 0; i < live[j]->items.size(); ++i) {
          where.emplace_back(j, i);
          stream.add(live[j]->items[i]);
          ++stats.items;
        }
      }
      stream.finish();
    } catch (const std::exception& e) {
      log_warn("serve: a {} round of {} jobs failed: {}", lane_name(lane), members.size(), e.what());
      for (size_t j : members) results[j].error = e.what();
    }
  }
  stats.seconds = seconds_since(start);
  // The round is counted before its answers go out, so whoever gets one sees it in the metrics.
  if (on_round_ && stats.jobs > 0) on_round_(stats);
  for (size_t j = 0; j < live.size(); ++j) {
    results[j].run_seconds = stats.seconds;
    --running_;
    live[j]->done(std::move(results[j]));
  }
}

}  // namespace oe::serve
