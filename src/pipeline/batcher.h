// The one token-budget batcher: prepared inputs are packed into forward passes of at most `max_tokens` tokens (an
// input longer than that goes alone), in the order they come, each item its own attention segment, so every vector
// equals the one computed alone (model/embedder.h). Used by embed, index and eval alike.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/embedder.h"

namespace oe::pipeline {

class Batcher {
 public:
  // Receives the vectors of one group, in the group's order, and its share of the pass' wall time (by tokens).
  using Sink = std::function<void(std::vector<model::Embedding> vectors, double seconds)>;

  Batcher(const model::Embedder& embedder, int64_t max_tokens);

  // Queues a group of inputs that go into one pass together (the views of one item, or one segment). The pending
  // pass runs first when the group would not fit in it, and right after when it is full; the group's sink is called
  // when its pass has run. Errors of a pass propagate (its sinks are not called).
  void add(std::vector<model::PreparedInput> group, Sink sink);
  // Runs the pending pass, if any.
  void flush();

  int64_t pending_tokens() const { return pending_tokens_; }
  int64_t max_tokens() const { return max_tokens_; }
  // Where the time of the passes run so far went.
  const model::EmbedTimings& timings() const { return timings_; }

 private:
  struct Group {
    size_t first = 0, count = 0;
    int64_t tokens = 0;
    Sink sink;
  };
  const model::Embedder& embedder_;
  int64_t max_tokens_;
  std::vector<model::PreparedInput> inputs_;
  std::vector<Group> groups_;
  int64_t pending_tokens_ = 0;
  model::EmbedTimings timings_;
};

}  // namespace oe::pipeline
