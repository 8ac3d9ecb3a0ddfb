// The server's embedding worker: requests are queued as jobs, and each lane's thread takes every job waiting in its
// lane and runs their items through the pipeline's ItemStream, so items of many requests share forward passes packed
// by the one token-budget Batcher (each item its own attention segment: every vector equals the one computed alone).
// Two lanes, each with its own thread (the media lane optionally several): jobs with only text, and jobs with media. A long video then shares the cores
// with short text queries instead of holding them until it is done. The queue is bounded (submit refuses when it is
// full); a job cancelled (its client left, or its deadline passed) before its lane takes it is dropped unrun.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/encoder.h"
#include "pipeline/item.h"
#include "pipeline/stream.h"
#include "serve/media.h"

namespace oe::serve {

enum class Lane { Text = 0, Media = 1 };
const char* lane_name(Lane lane);

struct JobResult {
  std::vector<pipeline::ItemResult> items;  // in the job's order
  std::string error;                        // why the job did not run ("" when it did)
  bool dropped = false;                     // cancelled or past its deadline before it ran
  double queue_seconds = 0, run_seconds = 0;
};

struct Job {
  const pipeline::Encoder* encoder = nullptr;  // the options its items are embedded with (outlives the job)
  std::vector<pipeline::EmbedItem> items;
  std::shared_ptr<MediaFiles> files;  // kept until the job is done
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point submitted;  // set by Worker::submit
  std::atomic<bool> cancelled{false};
  // Called once, on the lane's thread, when the job has run or has been dropped.
  std::function<void(JobResult)> done;

  Lane lane() const;  // media when any item has media
};

// What a round of a lane did, for the metrics.
struct RoundStats {
  Lane lane = Lane::Text;
  int64_t jobs = 0, items = 0, tokens = 0;
  double seconds = 0;
};

class Worker {
 public:
  struct Options {
    int64_t max_batch_tokens = 8192;  // one forward pass (pipeline::Batcher)
    int64_t max_queue = 256;          // jobs waiting in both lanes together
    int64_t max_round_items = 512;    // items one round takes from its lane
    int media_threads = 2;            // threads taking rounds from the media lane (decoding runs on them)
  };
  Worker(Options options, std::function<void(const RoundStats&)> on_round = {});
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Queues the job; false (and nothing queued) when the queue is full or the worker is stopping.
  bool submit(std::shared_ptr<Job> job);
  // Marks every queued job cancelled (its lane drops it unrun).
  void cancel_queued();
  // Runs what is queued, then stops the lanes' threads. Idempotent.
  void stop();
  int64_t queued() const;
  int64_t running() const { return running_.load(); }

 private:
  void run_lane(Lane lane);
  void run_round(Lane lane, std::vector<std::shared_ptr<Job>> jobs);

  Options options_;
  std::function<void(const RoundStats&)> on_round_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queues_[2];
  bool stopping_ = false;
  std::atomic<int64_t> running_{0};
  std::vector<std::thread> threads_;
};

}  // namespace oe::serve
