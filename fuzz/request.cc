// Fuzz target: an HTTP request body of `omni-embed serve` through serve::parse_body, then as an embeddings request
// and as a search request (serve/request.h), with a media root holding one file and a symbolic link out of it. Every
// body must become a request or an ApiException with a 4xx status whose body is OpenAI's error JSON; a media path that
// is accepted must lie under the root; the inline files of a request must be gone once it is.
#include <cstdint>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "fuzz_util.h"
#include "serve/api_error.h"
#include "serve/request.h"

namespace {

namespace fs = std::filesystem;
using oe::serve::ApiException;

struct Setup {
  oe::serve::MediaSource media;
  oe::serve::RequestLimits limits;
  Setup() {
    const fs::path root = oe::fuzz::scratch_dir() / "root";
    fs::create_directories(root / "sub");
    std::ofstream(root / "sub/a.png") << "not really a png";
    std::ofstream(oe::fuzz::scratch_dir() / "outside.txt") << "outside";
    std::error_code ec;
    fs::create_symlink(oe::fuzz::scratch_dir() / "outside.txt", root / "out.png", ec);
    media.root = fs::canonical(root);
    media.spool = std::make_shared<oe::serve::SpoolDir>(oe::fuzz::scratch_dir());
    limits.model_dim = 2048;
  }
};

void check_paths(const std::vector<oe::pipeline::EmbedItem>& items, const Setup& s) {
  for (const auto& it : items)
    for (const auto* list : {&it.images, &it.audios, &it.videos})
      for (const auto& p : *list) {
        const std::string path = p.string();
        if (path.rfind(s.media.root.string() + "/", 0) != 0 && path.rfind(s.media.spool->path().string() + "/", 0) != 0)
          oe::fuzz::finding("a media path outside the root and the spool", path);
      }
}

template <typename F>
void expect_api_clean(F&& f) {
  try {
    oe::fuzz::expect_clean(f);
  } catch (const ApiException& e) {
    if (e.error.status < 400 || e.error.status >= 500) oe::fuzz::finding("status", std::to_string(e.error.status));
    const auto j = nlohmann::json::parse(e.error.body(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j["error"]["message"].is_string()) oe::fuzz::finding("error body", e.error.body());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Setup setup;
  const std::string body(oe::fuzz::as_text(data, size));
  expect_api_clean([&] {
    const nlohmann::json j = oe::serve::parse_body(body);
    expect_api_clean([&] {
      {
        const auto r = oe::serve::parse_embeddings_request(j, setup.limits, setup.media);
        check_paths(r.items, setup);
      }
      if (!fs::is_empty(setup.media.spool->path())) oe::fuzz::finding("spool", "inline files left behind");
    });
    expect_api_clean([&] {
      const auto r = oe::serve::parse_search_request(j, setup.limits, setup.media);
      check_paths({r.query}, setup);
    });
  });
  return 0;
}
