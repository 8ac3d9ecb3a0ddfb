// The search page's files compiled into the binary: web_assets.cc, generated at build time from web/ by
// cmake/embed_files.cmake (an empty table when the build had no Node.js or TypeScript). Read by serve/browse.cc.
#pragma once

#include <cstddef>

namespace oe::serve::web {

struct Asset {
  const char* path;          // "/index.html", "/app.js", "/style.css"
  const char* content_type;
  const unsigned char* data;
  size_t size;
};
extern const Asset ASSETS[];
extern const size_t N_ASSETS;

}  // namespace oe::serve::web
