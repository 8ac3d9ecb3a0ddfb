// The model inputs of one item: usually one, and for a video under late fusion two, its frames alone and its sound
// alone (omni-embed-nemotron.md §3, the fourth audio+video mode), whose scores search combines.
#pragma once

#include <vector>

#include "model/embedder.h"
#include "pipeline/encoder.h"
#include "pipeline/item.h"

namespace oe::pipeline {

enum class View {
  Whole,  // the item as the options' fusion mode embeds it (for a late-fusion video: its frames)
  Sound,  // the sound of the item's videos alone: the second vector of a video under late fusion
};
// The modality a view is stored under in an index: the item's own, or video-sound for the sound view.
Modality view_modality(View view, Modality item);

struct PreparedView {
  View view = View::Whole;
  model::PreparedInput input;
};

// Decodes and preprocesses the item (errors name the file). A silent video under late fusion gives its frames alone,
// with a warning naming the file.
std::vector<PreparedView> prepare_views(const Encoder& encoder, const EmbedItem& item);
// The same for a text and one decoded video (a window of a long video).
std::vector<PreparedView> prepare_views(const Encoder& encoder, text::Role role, const std::string& text,
                                        model::VideoClip video);

}  // namespace oe::pipeline
