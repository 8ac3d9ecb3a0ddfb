#include "pipeline/views.h"

#include <fmt/ranges.h>

#include "core/log.h"

namespace oe::pipeline {

Modality view_modality(View view, Modality item) { return view == View::Sound ? Modality::VideoSound : item; }

std::vector<PreparedView> prepare_views(const Encoder& encoder, const EmbedItem& item) {
  const model::Embedder& embedder = encoder.embedder();
  const model::EmbedRequest request = item.request();
  std::vector<PreparedView> views;
  if (!encoder.options().late_fusion || item.videos.empty()) {
    views.push_back({View::Whole, embedder.prepare(request)});
    return views;
  }
  views.push_back({View::Whole, embedder.prepare(request, model::Fusion::Video)});
  if (views.front().input.silent_videos > 0) {
    std::vector<std::string> names;
    for (const auto& v : item.videos) names.push_back(v.string());
    log_warn("{}: a video has no audio track, so only its frames are embedded (no sound vector)",
             fmt::join(names, ", "));
    return views;
  }
  views.push_back({View::Sound, embedder.prepare(request, model::Fusion::Audio)});
  return views;
}

}  // namespace oe::pipeline
