// Fuzz target: the settings JSON an index records. The input is read as the embedding settings of
// pipeline::EmbedOptions::from_recorded (the string a search reads back to embed its queries), and stored as the
// settings of a real catalog (its meta table in catalog.sqlite), which index::Catalog::read_settings parses; the
// embedding string found there goes through from_recorded as well, as search/retriever.cc does. Options that read
// are validated, as a front end does before using them.
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "index/catalog.h"
#include "index/sqlite.h"
#include "media/audio.h"
#include "pipeline/options.h"

namespace {

namespace fs = std::filesystem;
using oe::pipeline::EmbedOptions;

// An index folder with a complete catalog, created once per process, and a connection that rewrites its settings
// (without syncing: the file is scratch).
struct ScratchIndex {
  fs::path dir = oe::fuzz::scratch_dir() / "index";
  std::unique_ptr<oe::index::Database> db;

  ScratchIndex() {
    fs::create_directories(dir);
    oe::index::Catalog::create(dir, oe::index::IndexSettings{});
    db = std::make_unique<oe::index::Database>(dir / oe::index::CATALOG, /*read_only=*/false);
    db->exec("PRAGMA synchronous=OFF");
    db->exec("PRAGMA journal_mode=MEMORY");
  }
  void store_settings(std::string_view text) {
    db->prepare("UPDATE meta SET value = ? WHERE key = 'settings'").bind(1, text).run();
  }
};

void read_embedding(const std::string& text) {
  const EmbedOptions options = EmbedOptions::from_recorded(text, oe::media::AudioFeatureConfig{});
  (void)options.fusion_name();
  options.validate();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static ScratchIndex catalog;
  const std::string text(oe::fuzz::as_text(data, size));
  oe::fuzz::expect_clean([&] { read_embedding(text); });

  catalog.store_settings(text);
  oe::fuzz::expect_clean(
      [&] {
        const oe::index::IndexSettings s = oe::index::Catalog::open_existing(catalog.dir)->read_settings();
        oe::fuzz::expect_clean([&] { read_embedding(s.embedding); });
      },
      catalog.dir.string());
  return 0;
}
