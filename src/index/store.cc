#include "index/store.h"

#include <algorithm>

#include <fmt/format.h>

#include "index/folder_store.h"

namespace oe::index {

std::unique_ptr<Store> Store::open_for_writing(const std::filesystem::path& location, const IndexSettings& settings,
                                               bool reset_on_mismatch) {
  return FolderStore::open_for_writing(location, settings, reset_on_mismatch);
}

std::unique_ptr<Store> Store::open(const std::filesystem::path& location) { return FolderStore::open(location); }

std::string settings_difference(const IndexSettings& stored, const IndexSettings& wanted) {
  const auto& aliases = wanted.fingerprint_aliases;
  if (stored.model_fingerprint != wanted.model_fingerprint &&
      std::find(aliases.begin(), aliases.end(), stored.model_fingerprint) == aliases.end())
    return fmt::format("it was built with model {} (fingerprint {}), not {} (fingerprint {})", stored.model,
                       stored.model_fingerprint.substr(0, 12), wanted.model, wanted.model_fingerprint.substr(0, 12));
  if (stored.adapter_id != wanted.adapter_id) {
    auto adapter = [](const IndexSettings& s) {
      return s.adapter_id.empty() ? std::string("no adapter")
                                  : fmt::format("adapter {} (id {})", s.adapter, s.adapter_id.substr(0, 12));
    };
    return fmt::format("it was built with {}, not {}", adapter(stored), adapter(wanted));
  }
  if (stored.dim != wanted.dim)
    return fmt::format("its vectors have {} dimensions, not {}", stored.dim, wanted.dim);
  if (stored.embedding != wanted.embedding)
    return fmt::format("it was built with other embedding settings ({} instead of {})", stored.embedding,
                       wanted.embedding);
  return "";
}

}  // namespace oe::index
