// Fuzz target: a JSONL file of items through pipeline::read_item_lines (and parse_item for every line), in the three
// ways the front ends read one: `embed --input` (any id, the line's role), a manifest or BEIR corpus (catalogued:
// ids required and unique, title joined to text) and a query file (every role forced to query). Every line must
// come back as an item or as an error naming the file; every item is then asked what the front ends ask of it.
#include <cstdint>

#include "fuzz_util.h"
#include "pipeline/item.h"

namespace {

namespace fs = std::filesystem;
using oe::pipeline::EmbedItem;
using oe::pipeline::ItemFormat;
using oe::pipeline::ItemLine;

void read_as(const fs::path& file, const ItemFormat& format) {
  int64_t last_line = 0;
  oe::pipeline::read_item_lines(file, format, [&](ItemLine line) {
    if (line.line <= last_line) oe::fuzz::finding("line numbers", "not increasing");
    last_line = line.line;
    if (line.item.has_value() == !line.error.empty()) oe::fuzz::finding("item line", "neither or both item and error");
    if (!line.item) {
      if (line.error.find(file.string()) == std::string::npos) oe::fuzz::finding("error does not name the file", line.error);
      return;
    }
    const EmbedItem& item = *line.item;
    (void)item.modality();
    (void)item.id_string();
    (void)item.request();
    if (format.catalogued && item.id_string().empty()) oe::fuzz::finding("catalogued item", "empty id");
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path file = oe::fuzz::write_input("items.jsonl", data, size);
  ItemFormat format;
  format.base = file.parent_path();
  oe::fuzz::expect_clean([&] { read_as(file, format); }, file.string());
  format.catalogued = true;
  oe::fuzz::expect_clean([&] { read_as(file, format); }, file.string());
  format.catalogued = false;
  format.role = oe::text::Role::Query;
  oe::fuzz::expect_clean([&] { read_as(file, format); }, file.string());
  return 0;
}
