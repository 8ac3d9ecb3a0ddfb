// What the model runs for one item, beyond its content: the prompt layout, the attention, the limits and budgets of
// text, images, audio and video, and how a video's frames and sound enter the one sequence. The defaults are the
// model card's. Unset prompt parts and zero budgets take the checkpoint's values, which the Embedder resolves
// (resolve_prompts, resolved_audio_max_samples).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "media/image.h"
#include "media/video.h"
#include "model/model.h"
#include "model/text_decoder.h"
#include "text/prompt.h"

namespace oe::model {

// How a video's frames and its sound enter the model in one sequence (the paper's fusion ablation,
// omni-embed-nemotron.md §3). Late fusion is not a mode of the model: it is two inputs, Video and Audio, whose
// vectors are scored together at search time (pipeline/options.h).
enum class Fusion {
  Separate,     // the video block, then its audio block (the released recipe, the default)
  Interleaved,  // one block with the frames and the sound interleaved in 2-second chunks (TMRoPE early fusion)
  Video,        // the frames alone
  Audio,        // the sound alone
};
const char* fusion_name(Fusion f);             // "separate", "interleaved", "video", "audio"
Fusion parse_fusion(const std::string& name);  // InvalidInput listing the choices

const char* attention_name(AttentionMode m);  // "bidirectional", "causal"
AttentionMode parse_attention(const std::string& name);

struct EmbedOptions {
  AttentionMode attention = AttentionMode::Bidirectional;
  // Prompt layout; unset parts take the checkpoint's (Model::prompt_defaults(): its chat template's system turn, the
  // prefixes of config_sentence_transformers.json).
  std::optional<std::string> system_prompt, query_prefix, document_prefix;
  // Longest token sequence; 0 = the config's max_position_embeddings. Longer items are truncated (the user text
  // is cut, the closing "<|im_end|>\n" kept) and flagged.
  int64_t max_tokens = 0;
  // Image budget in pixels (smart_resize limits); 0 = the checkpoint's preprocessor_config.json.
  int64_t image_min_pixels = 0;
  int64_t image_max_pixels = 0;
  media::ImageDecodeOptions image_decode;
  // Audio clip length: longer audio is cut (and flagged), shorter is zero-padded for the features. The model card's
  // default is 128 s (2,048,000 samples at 16 kHz, at most 3,200 audio tokens); 0 = the checkpoint's
  // preprocessor_config.json n_samples (300 s for the base model).
  double audio_max_seconds = 128.0;
  // Videos: frame sampling and sizes (the model card's defaults, media/video.h), and how frames and sound combine.
  media::VideoOptions video;
  Fusion fusion = Fusion::Separate;

  // InvalidInput naming the option for a value no item could be embedded with (a negative limit, a minimum above
  // its maximum, a non-positive fps, fewer than 2 frames).
  void validate() const;
};

// The one check of a pixel budget: InvalidInput "{what} min pixels {min} is larger than max pixels {max}".
void check_pixel_budget(const std::string& what, int64_t min_pixels, int64_t max_pixels);

// The prompt layout of `options` on `model`: its overrides over the checkpoint's defaults.
text::PromptOptions resolve_prompts(const EmbedOptions& options, const Model& model);
// The clip length in samples at the checkpoint's feature rate (0: the checkpoint's n_samples).
int64_t resolved_audio_max_samples(const EmbedOptions& options, const Model& model);

}  // namespace oe::model
