// Filling an index from discovered sources (discovery.h). Each source's content hash (SHA-256 of its bytes, its
// manifest line and the segmenting settings) decides whether it is skipped, embedded for the first time, or
// re-embedded. Long texts and audio files are cut into segments (segments.h); a video under late fusion is two
// vectors of one segment (pipeline/views.h). Sources are committed to the store in batches, each source with all of
// its segments in one transaction. A source that fails (unreadable, wrong format, unsupported) is reported and
// recorded as failed without stopping the run; a previously indexed version of it is kept when its file cannot be
// read.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "index/store.h"
#include "ingest/discovery.h"
#include "pipeline/batcher.h"
#include "pipeline/encoder.h"
#include "pipeline/views.h"

namespace oe::ingest {

struct IndexerOptions {
  int64_t batch_tokens = 4096;  // tokens per forward pass (and per committed batch of sources)
  bool prune = false;           // remove stored sources of these origins that were not found
  text::Role role = text::Role::Document;
  int64_t max_text_bytes = int64_t{64} << 20;  // the largest text file embedded (--max-text-bytes)
};

struct IndexReport {
  int64_t added = 0, updated = 0, unchanged = 0, failed = 0, removed = 0, missing = 0, segments = 0;
  std::vector<std::pair<std::string, std::string>> failures;  // (path, why)
  double seconds = 0;
};

// Progress: sources done, total, the source being worked on.
using IndexProgress = std::function<void(int64_t done, int64_t total, const std::string& current)>;

class Indexer {
 public:
  Indexer(const pipeline::Encoder& encoder, index::Store& store, IndexerOptions options);
  IndexReport run(const Discovery& found, const IndexProgress& progress = {});

 private:
  // A source on its way into the store: its record and its segments, whose vectors arrive as their passes run.
  struct Pending {
    index::SourceRecord record;
    std::vector<index::Segment> segments;
    bool existed = false;
    bool failed = false;       // its queued vectors are dropped
    std::string vector_error;  // a segment gave no usable vector: the source fails when it is committed
  };
  // SHA-256 over what is embedded and how it is cut; sets record.size for a file. Errors of reading propagate.
  std::string content_hash(const SourceSpec& spec, index::SourceRecord& record) const;
  // Cuts the source into segments and queues their inputs; returns the tokens queued.
  int64_t queue_source(const SourceSpec& spec, Pending& p, const std::function<void(const std::string&)>& progress);
  int64_t queue_text_windows(const std::string& text, Pending& p);
  int64_t queue_audio_windows(const SourceSpec& spec, const std::string& text, Pending& p,
                              const std::function<void(const std::string&)>& progress);
  int64_t queue_video_windows(const SourceSpec& spec, const std::string& text, Pending& p,
                              const std::function<void(const std::string&)>& progress);
  int64_t queue_whole(const SourceSpec& spec, const std::string& text, Pending& p);
  // Queues the views of one segment; its vectors are filled in when their forward pass has run.
  int64_t queue_segment(index::Segment segment, std::vector<pipeline::PreparedView> views, Pending& p);
  // Runs what is queued and writes the pending sources in one transaction.
  void commit(IndexReport& report);
  // Removes (--prune) or counts the stored sources of the run's origins that were not found again.
  void remove_gone(const Discovery& found, const std::set<std::string>& seen, IndexReport& report);

  const pipeline::Encoder& encoder_;
  index::Store& store_;
  IndexerOptions options_;
  pipeline::Batcher batcher_;
  std::deque<Pending> pending_;  // stable addresses: queued vectors are written into them
};

// Reads a text source's file: a regular file of at most `max_bytes` (InvalidInput beyond, or for an empty one).
std::string read_text_source(const std::filesystem::path& file, int64_t max_bytes);

}  // namespace oe::ingest
