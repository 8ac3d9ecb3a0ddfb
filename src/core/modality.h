// The modality vocabulary every layer shares: what a source or one of its segments holds. The names are what an
// index's catalog stores and what users type (--modality); the numbers are the codes of an index's flat vector
// cache, so they are never renumbered.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace oe {

enum class Modality : uint8_t {
  Text = 1,
  Image = 2,
  Audio = 3,
  Video = 4,
  Mixed = 5,       // more than one of the above in one item
  VideoSound = 6,  // the sound of a video embedded alone: its second vector under late fusion (pipeline/views.h)
};

// "text", "image", "audio", "video", "mixed", "video-sound".
const char* modality_name(Modality m);
std::optional<Modality> modality_from_name(std::string_view name);

// What hits can be filtered by (a user's --modality): every modality but the sound view, which is part of its
// video's hit. InvalidInput listing the choices for another name.
Modality parse_hit_modality(const std::string& name);
inline constexpr const char* HIT_MODALITIES = "text, image, audio, video or mixed";

}  // namespace oe
