// The embedding pipeline of one or more items: prompt → token ids → TMRoPE positions → bidirectional decoder →
// masked mean over every token → L2 normalisation (spec omni-embed-nemotron.md §2). Items are text, audio, images or
// any mix; images go through the processor (media/image.h) and the vision tower, audio through the log-mel front end
// (media/audio.h) and the audio tower, and their rows replace the <|IMAGE|> and <|AUDIO|> placeholders.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "media/audio.h"
#include "media/image.h"
#include "media/video.h"
#include "model/embed_options.h"
#include "model/model.h"
#include "model/vision_encoder.h"
#include "model/text_decoder.h"
#include "text/prompt.h"

namespace oe::model {

struct EmbedRequest {
  text::Role role = text::Role::Query;
  std::string text;
  std::vector<std::filesystem::path> images;  // placed after the text and the audio, in this order
  std::vector<std::filesystem::path> audios;  // audio files (or videos' audio tracks), after the text
  // Video files, right after the text; their sound joins as EmbedOptions::fusion says.
  std::vector<std::filesystem::path> videos;
};

// One decoded audio clip handed to Embedder::prepare: mono samples at the feature extractor's rate (16 kHz).
struct AudioClip {
  std::string name;  // for messages
  std::vector<float> samples;
  bool truncated = false;  // the source went on past the clip length
};

// One video already decoded, as a window of a long video is embedded: its sampled frames at their final size
// (media::decode_video_ranges; none needed under Fusion::Audio) and its sound (needed unless the fusion is Video).
struct VideoClip {
  std::string name;  // for messages
  media::VideoFrames frames;
  bool has_sound = false;  // false: the video is silent (there), and its frames are embedded alone
  bool silence_reported = false;  // the caller has warned about the silence already (once per file, not per window)
  AudioClip sound;
};

// What the model sees for one item; dumped by --dump-inputs.
struct PreparedInput {
  std::vector<int64_t> input_ids;     // [n_tokens]
  std::vector<int64_t> position_ids;  // [3, n_tokens] (rows T, H, W)
  bool truncated = false;
  int64_t original_tokens = 0;        // before truncation
  // Images: patchified pixels [Σ patches, row_len] and one grid per image, in placeholder order.
  std::vector<GridTHW> image_grids;
  std::vector<float> pixel_values;
  int64_t pixel_row_len = 0;
  // Audio: one log-mel matrix per clip, in placeholder order.
  std::vector<media::LogMel> audio_features;
  bool audio_truncated = false;       // a clip was longer than audio_max_samples and was cut
  // Videos: patchified frames [Σ patches, pixel_row_len], one grid and one seconds-per-temporal-patch per video.
  std::vector<GridTHW> video_grids;
  std::vector<float> video_pixel_values;
  std::vector<float> video_second_per_grid;
  bool use_audio_in_video = false;    // a video block holds its sound (interleaved fusion)
  bool video_truncated = false;       // --max-frames sampled fewer frames than fps asked for
  int64_t silent_videos = 0;          // videos without an audio stream (known when their frames were decoded)
  double preprocess_seconds = 0;      // decoding and preprocessing of the media
  int64_t n_tokens() const { return static_cast<int64_t>(input_ids.size()); }
};

struct Embedding {
  std::vector<float> vector;  // [out_dim], unit length
  int64_t n_tokens = 0;
  bool truncated = false;
  // Set when the item gave no usable vector (NaN or infinite values, from its input or from the weights); `vector`
  // is then empty and must not be used. Callers report it as the item's failure.
  std::string error;
};

// Where the time of embed_prepared went (seconds), for benchmarks and --verbose output.
struct EmbedTimings {
  double vision = 0;
  double audio = 0;
  double decoder = 0;
};

// Items packed as attention segments, as the decoder reads them: token embeddings with the vision and audio towers'
// rows merged in, and TMRoPE positions.
struct DecoderBatch {
  std::vector<float> embeds;          // [n_tokens, d_model]
  std::vector<int64_t> position_ids;  // [3, n_tokens]
  std::vector<int64_t> cu_seqlens;    // {0, end of item 0, ..., n_tokens}
  int64_t n_tokens = 0;
};

class Embedder {
 public:
  Embedder(std::shared_ptr<const Model> model, EmbedOptions options);

  // Renders and tokenizes one item, decoding and preprocessing its images. InvalidInput for bad UTF-8, an
  // unreadable image and the like, naming the input.
  PreparedInput prepare(const EmbedRequest& request) const;
  // The same with another fusion mode than the options' (late fusion prepares a video's two views, Video and Audio).
  PreparedInput prepare(const EmbedRequest& request, Fusion fusion) const;
  // The same for images and audio already decoded (names are used in messages).
  PreparedInput prepare(text::Role role, const std::string& text, const std::vector<media::RgbImage>& images,
                        const std::vector<AudioClip>& audios = {}) const;
  // A text and one decoded video, embedded as `fusion` says (the same input as a file holding just that video).
  PreparedInput prepare(text::Role role, const std::string& text, VideoClip video, Fusion fusion) const;
  // Embeds several prepared items in ONE decoder pass: items are packed one after another as attention segments
  // (no padding), so each vector equals the one computed alone. `last_hidden` (optional) receives the final
  // hidden states [Σ n_tokens, d_model]; `observer` sees the residual stream after each layer.
  // `vision_out` / `audio_out` (optional) receive the vision and audio towers' rows of all items, in order (the
  // vision rows of every item's images first, then those of every item's videos).
  std::vector<Embedding> embed_prepared(const std::vector<PreparedInput>& items,
                                        std::vector<float>* last_hidden = nullptr,
                                        const LayerObserver& observer = {}, EmbedTimings* timings = nullptr,
                                        std::vector<float>* vision_out = nullptr,
                                        std::vector<float>* audio_out = nullptr) const;
  // The same, consuming the items: each item's pixel rows are freed as soon as the vision tower has read them,
  // before its blocks and the decoder run (a 12.8-megapixel image's rows are 308 MB).
  std::vector<Embedding> embed_prepared(std::vector<PreparedInput>&& items, EmbedTimings* timings = nullptr) const;
  // What embed_prepared feeds the decoder for these items (the frozen towers run here); the trainable decoder of
  // src/train starts from it.
  DecoderBatch decoder_inputs(const std::vector<PreparedInput>& items) const;
  // One item; InvalidInput when it gives no usable vector (Embedding::error).
  Embedding embed(const EmbedRequest& request) const;

  const Model& model() const { return *model_; }
  const EmbedOptions& options() const { return options_; }
  // The prompt layout in use: the options' overrides over the checkpoint's defaults.
  const text::PromptOptions& prompts() const { return prompts_; }
  int64_t max_tokens() const;

 private:
  std::shared_ptr<const Model> model_;
  EmbedOptions options_;
  text::PromptOptions prompts_;
  media::VisionPreprocessConfig image_config() const;
  media::AudioFeatureConfig audio_config() const;
  // Log-mel features of the clips (InvalidInput naming a clip too short for one audio token); sets *truncated when
  // a clip went on past the clip length.
  std::vector<media::LogMel> audio_features(const std::vector<AudioClip>& clips, bool* truncated) const;
  // The same for the item's audio clips over its <|AUDIO|> embeddings.
  void merge_audio(const PreparedInput& item, float* embeds, int64_t d, std::vector<float>* audio_out) const;
  // The media of one item, in placeholder order. The first `video_tracks` audios are the videos' sound (in video
  // order); with `interleave` each of them goes inside its video's block.
  struct Media {
    std::vector<media::PixelPatches> videos;
    std::vector<media::LogMel> audios;
    std::vector<media::PixelPatches> images;
    size_t video_tracks = 0;
    std::vector<bool> video_has_track;  // per video: its sound is among the first video_tracks audios
    bool interleave = false;
  };
  // Adds one video's frames (unless `fusion` is Audio) and its sound (as `fusion` says) to an item's media, before any
  // other audio; counts a truncated frame budget and a silent video.
  void add_video(Media& m, std::vector<AudioClip>& clips, VideoClip video, Fusion fusion,
                 const media::VisionPreprocessConfig& config, bool* truncated, int64_t* silent) const;
  DecoderBatch pack(const std::vector<PreparedInput>& items, std::vector<PreparedInput>* consumed,
                    EmbedTimings* timings, std::vector<float>* vision_out, std::vector<float>* audio_out) const;
  PreparedInput assemble(text::Role role, const std::string& text, Media media) const;
  // Encodes the item's images (or videos) with the vision tower and writes their rows over its <|IMAGE|> (or
  // <|VIDEO|>) embeddings (embeds: the item's rows).
  // `release` (optional) is `pixels` itself, to be freed once the tower has read it.
  void merge_vision(const std::vector<GridTHW>& grids, const std::vector<float>& pixels, int64_t row_len,
                    int64_t token, const char* kind, const PreparedInput& item, float* embeds, int64_t d,
                    std::vector<float>* vision_out, std::vector<float>* release) const;
  std::vector<Embedding> embed_items(const std::vector<PreparedInput>& items, std::vector<PreparedInput>* consumed,
                                     std::vector<float>* last_hidden, const LayerObserver& observer,
                                     EmbedTimings* timings, std::vector<float>* vision_out,
                                     std::vector<float>* audio_out) const;

  std::vector<int64_t> tail_ids_;  // tokens of the closing "<|im_end|>\n"
};

// Writes what the model sees for one item, in the Hugging Face shapes, so another implementation can be fed the
// same inputs: `dir`/input_ids.npy (int64 [1, S]) and `dir`/position_ids.npy (int64 [3, 1, S]); with images also
// pixel_values.npy (float32 [Σ patches, row_len]) and image_grid_thw.npy (int64 [n_images, 3]); with videos
// pixel_values_videos.npy, video_grid_thw.npy, video_second_per_grid.npy (float32 [n_videos]) and
// use_audio_in_video.npy (int64 [1]); with audio
// input_features.npy (float32 [n_audios, n_mel, n_frames]) and feature_attention_mask.npy (int64 [n_audios,
// n_frames]), as the processor gives them. Creates `dir`.
void write_prepared_input(const std::filesystem::path& dir, const PreparedInput& input);

// Text-only positions: all three rows equal 0..n-1 (thinker spec §8.1).
std::vector<int64_t> text_position_ids(int64_t n_tokens);

}  // namespace oe::model
