#include "pipeline/views.h"

#include <fmt/ranges.h>

#include "core/log.h"

namespace oe::pipeline {

Modality view_modality(View view, Modality item) { return view == View::Sound ? Modality::VideoSound : item; }

namespace {

// The views of an item with videos: under late fusion its frames alone and, unless a video is silent, its sound
// alone; otherwise the item as the fusion mode embeds it. `prepare(fusion)` prepares the item in that mode.
// `quiet`: the caller has already said that the video is silent.
template <typename Prepare>
std::vector<PreparedView> video_views(const Encoder& encoder, const std::string& names, bool quiet,
                                      Prepare&& prepare) {
  std::vector<PreparedView> views;
  if (!encoder.options().late_fusion) {
    views.push_back({View::Whole, prepare(encoder.embedder().options().fusion)});
    return views;
  }
  views.push_back({View::Whole, prepare(model::Fusion::Video)});
  if (views.front().input.silent_videos > 0) {
    if (!quiet)
      log_warn("{}: a video has no audio track, so only its frames are embedded (no sound vector)", names);
    return views;
  }
  views.push_back({View::Sound, prepare(model::Fusion::Audio)});
  return views;
}

}  // namespace

std::vector<PreparedView> prepare_views(const Encoder& encoder, const EmbedItem& item) {
  const model::Embedder& embedder = encoder.embedder();
  const model::EmbedRequest request = item.request();
  if (item.videos.empty()) return {{View::Whole, embedder.prepare(request)}};
  std::vector<std::string> names;
  for (const auto& v : item.videos) names.push_back(v.string());
  return video_views(encoder, fmt::format("{}", fmt::join(names, ", ")), /*quiet=*/false,
                     [&](model::Fusion fusion) { return embedder.prepare(request, fusion); });
}

std::vector<PreparedView> prepare_views(const Encoder& encoder, text::Role role, const std::string& text,
                                        model::VideoClip video) {
  const std::string name = video.name;
  return video_views(encoder, name, video.silence_reported, [&](model::Fusion fusion) {
    // Each view takes what it embeds: late fusion's frames view the frames, its sound view the sound.
    model::VideoClip part;
    part.name = video.name;
    part.has_sound = video.has_sound;
    part.silence_reported = video.silence_reported;
    if (fusion != model::Fusion::Audio) part.frames = std::move(video.frames);
    if (fusion != model::Fusion::Video) part.sound = std::move(video.sound);
    return encoder.embedder().prepare(role, text, std::move(part), fusion);
  });
}

}  // namespace oe::pipeline
