// Fuzz target: the headers and query strings of the search page's GET routes (serve/browse.h): a Range header
// against a file size, a query string's parameters and a Cookie header. Every Range must give nothing, a range inside
// the file (first <= last < size), or an ApiException 400 or 416; the other two must return without failing.
// Input: 4 bytes of file size (little-endian, may be 0), then the text, used as all three.
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz_util.h"
#include "serve/api_error.h"
#include "serve/browse.h"
#include "serve/web_assets.h"

// This target links browse.cc without the page's generated files: an empty page table, as in a build without Node.
namespace oe::serve::web {
const Asset ASSETS[] = {{nullptr, nullptr, nullptr, 0}};
const size_t N_ASSETS = 0;
}  // namespace oe::serve::web

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t file_size = 0;
  std::memcpy(&file_size, data, 4);
  const std::string text(reinterpret_cast<const char*>(data + 4), size - 4);
  try {
    const auto r = oe::serve::parse_range(text, file_size);
    if (r && !(r->first >= 0 && r->first <= r->last && r->last < static_cast<int64_t>(file_size)))
      oe::fuzz::finding("a range outside the file", text);
  } catch (const oe::serve::ApiException& e) {
    if (e.error.status != 400 && e.error.status != 416) oe::fuzz::finding("status", std::to_string(e.error.status));
  }
  for (const char* name : {"item", "path", "t", "size", ""}) {
    (void)oe::serve::query_param("/v1/thumbnail?" + text, name);
    (void)oe::serve::query_param(text, name);
  }
  (void)oe::serve::cookie_value(text, "omni_embed_key");
  (void)oe::serve::content_type_for(text);
  (void)oe::serve::page_file(text, {});
  return 0;
}
