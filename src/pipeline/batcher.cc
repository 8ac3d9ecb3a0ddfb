#include "pipeline/batcher.h"

#include "core/error.h"
#include "core/timer.h"

namespace oe::pipeline {

Batcher::Batcher(const model::Embedder& embedder, int64_t max_tokens) : embedder_(embedder), max_tokens_(max_tokens) {
  OE_CHECK(max_tokens > 0, "batch of {} tokens", max_tokens);
}

void Batcher::add(std::vector<model::PreparedInput> group, Sink sink) {
  int64_t tokens = 0;
  for (const auto& in : group) tokens += in.n_tokens();
  if (pending_tokens_ > 0 && pending_tokens_ + tokens > max_tokens_) flush();
  groups_.push_back({inputs_.size(), group.size(), tokens, std::move(sink)});
  for (auto& in : group) inputs_.push_back(std::move(in));
  pending_tokens_ += tokens;
  if (pending_tokens_ >= max_tokens_) flush();
}

void Batcher::flush() {
  if (groups_.empty()) return;
  std::vector<model::PreparedInput> inputs = std::move(inputs_);
  std::vector<Group> groups = std::move(groups_);
  const int64_t tokens = pending_tokens_;
  inputs_.clear();
  groups_.clear();
  pending_tokens_ = 0;
  const size_t n_inputs = inputs.size();
  std::vector<model::Embedding> vectors;
  double seconds = 0;
  if (!inputs.empty()) {
    Timer timer;
    model::EmbedTimings t;
    vectors = embedder_.embed_prepared(std::move(inputs), &t);  // frees each item's pixels once the tower read them
    seconds = timer.seconds();
    timings_.vision += t.vision;
    timings_.audio += t.audio;
    timings_.decoder += t.decoder;
  }
  OE_CHECK(vectors.size() == n_inputs);
  for (Group& g : groups) {
    std::vector<model::Embedding> mine(std::make_move_iterator(vectors.begin() + static_cast<std::ptrdiff_t>(g.first)),
                                       std::make_move_iterator(vectors.begin() +
                                                               static_cast<std::ptrdiff_t>(g.first + g.count)));
    const double share = tokens > 0 ? seconds * static_cast<double>(g.tokens) / static_cast<double>(tokens) : 0.0;
    g.sink(std::move(mine), share);
  }
}

}  // namespace oe::pipeline
