// Items in, results out in the same order: each item is prepared (its views), queued on the token-budget Batcher,
// and its result (the vectors of its views, or the error that stopped it) is handed on as soon as it and every item
// before it are complete. A bad item never stops the others. For `embed` and for any front end that answers a list
// of items (the server).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "pipeline/batcher.h"
#include "pipeline/encoder.h"
#include "pipeline/item.h"
#include "pipeline/views.h"

namespace oe::pipeline {

struct ItemResult {
  int64_t index = 0;               // position in the stream, from 0
  EmbedItem item;
  std::string error;               // why the item has no vectors ("" when it has)
  std::vector<View> views;         // what each vector is
  std::vector<model::Embedding> vectors;
  double seconds = 0;              // the item's share of its forward pass' wall time
  bool ok() const { return error.empty(); }
};

class ItemStream {
 public:
  using Done = std::function<void(const ItemResult&)>;
  // Sees every prepared input before it is queued (warnings, --dump-inputs).
  using Prepared = std::function<void(const ItemResult&, const PreparedView&)>;

  ItemStream(const Encoder& encoder, int64_t batch_tokens, Done done, Prepared prepared = {});

  // Prepares the item and queues it; InvalidInput and other per-item errors become its result.
  void add(EmbedItem item);
  // An item that could not even be read (a bad JSON line), in its place in the order.
  void add_error(EmbedItem item, std::string error);
  // Runs what is queued and hands on every remaining result.
  void finish();

 private:
  void hand_on_ready();

  const Encoder& encoder_;
  Batcher batcher_;
  Done done_;
  Prepared prepared_;
  struct Slot {
    ItemResult result;
    bool ready = false;
  };
  std::deque<Slot> pending_;  // stable addresses: queued vectors are written into them
  int64_t next_index_ = 0;
};

}  // namespace oe::pipeline
