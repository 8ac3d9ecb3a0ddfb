#include "pipeline/stream.h"

#include "core/error.h"

namespace oe::pipeline {

ItemStream::ItemStream(const Encoder& encoder, int64_t batch_tokens, Done done, Prepared prepared)
    : encoder_(encoder),
      batcher_(encoder.embedder(), batch_tokens),
      done_(std::move(done)),
      prepared_(std::move(prepared)) {}

void ItemStream::add(EmbedItem item) {
  Slot& slot = pending_.emplace_back();
  slot.result.index = next_index_++;
  slot.result.item = std::move(item);
  std::vector<model::PreparedInput> group;
  try {
    for (auto& v : prepare_views(encoder_, slot.result.item)) {
      if (prepared_) prepared_(slot.result, v);
      slot.result.views.push_back(v.view);
      group.push_back(std::move(v.input));
    }
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Internal) throw;
    slot.result.error = e.what();
    slot.ready = true;
  } catch (const std::bad_alloc&) {
    slot.result.error = "out of memory while decoding and preparing the item (lower the media budgets)";
    slot.ready = true;
  }
  if (!group.empty() && slot.result.ok()) {
    batcher_.add(std::move(group), [&slot](std::vector<model::Embedding> vectors, double seconds) {
      for (const auto& v : vectors)
        if (!v.error.empty()) slot.result.error = v.error;
      if (slot.result.ok()) slot.result.vectors = std::move(vectors);
      slot.result.seconds = seconds;
      slot.ready = true;
    });
  }
  hand_on_ready();
}

void ItemStream::add_error(EmbedItem item, std::string error) {
  Slot& slot = pending_.emplace_back();
  slot.result.index = next_index_++;
  slot.result.item = std::move(item);
  slot.result.error = std::move(error);
  slot.ready = true;
  hand_on_ready();
}

void ItemStream::finish() {
  batcher_.flush();
  hand_on_ready();
}

void ItemStream::hand_on_ready() {
  for (; !pending_.empty() && pending_.front().ready; pending_.pop_front()) done_(pending_.front().result);
}

}  // namespace oe::pipeline
