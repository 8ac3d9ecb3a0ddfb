#include "core/modality.h"

#include <iterator>

#include "core/error.h"

namespace oe {
namespace {

// Indexed by a modality's number - 1.
constexpr const char* NAMES[] = {"text", "image", "audio", "video", "mixed", "video-sound"};

}  // namespace

const char* modality_name(Modality m) {
  const auto code = static_cast<size_t>(m);
  if (code < 1 || code > std::size(NAMES))
    throw InternalError(fmt::format("modality_name: {} is not a modality", code));
  return NAMES[code - 1];
}

std::optional<Modality> modality_from_name(std::string_view name) {
  for (size_t i = 0; i < std::size(NAMES); ++i)
    if (name == NAMES[i]) return static_cast<Modality>(i + 1);
  return std::nullopt;
}

Modality parse_hit_modality(const std::string& name) {
  const std::optional<Modality> m = modality_from_name(name);
  if (!m || *m == Modality::VideoSound)
    throw InvalidInput(fmt::format("--modality {}: expected {}", name, HIT_MODALITIES));
  return *m;
}

}  // namespace oe
