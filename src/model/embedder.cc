#include "model/embedder.h"

#include <cmath>
#include <functional>

#include "core/error.h"
#include "core/log.h"
#include "core/tensor.h"
#include "core/timer.h"
#include "media/video.h"
#include "io/npy.h"
#include "model/rope_index.h"

namespace oe::model {

namespace {

void write_patches(const std::filesystem::path& dir, const char* values_name, const char* grid_name,
                   const std::vector<float>& values, int64_t row_len, const std::vector<GridTHW>& grids) {
  const int64_t rows = static_cast<int64_t>(values.size()) / row_len;
  Tensor pv({rows, row_len}, DType::F32);
  std::copy(values.begin(), values.end(), pv.ptr<float>());
  io::write_npy(dir / values_name, pv);
  Tensor grid({static_cast<int64_t>(grids.size()), 3}, DType::I64);
  for (size_t i = 0; i < grids.size(); ++i) {
    grid.ptr<int64_t>()[3 * i] = grids[i].t;
    grid.ptr<int64_t>()[3 * i + 1] = grids[i].h;
    grid.ptr<int64_t>()[3 * i + 2] = grids[i].w;
  }
  io::write_npy(dir / grid_name, grid);
}

}  // namespace

std::vector<int64_t> text_position_ids(int64_t n) {
  std::vector<int64_t> pos(static_cast<size_t>(3 * n));
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t i = 0; i < n; ++i) pos[static_cast<size_t>(r * n + i)] = i;
  return pos;
}

void write_prepared_input(const std::filesystem::path& dir, const PreparedInput& p) {
  std::filesystem::create_directories(dir);
  Tensor ids({1, p.n_tokens()}, DType::I64);
  std::copy(p.input_ids.begin(), p.input_ids.end(), ids.ptr<int64_t>());
  io::write_npy(dir / "input_ids.npy", ids);
  Tensor pos({3, 1, p.n_tokens()}, DType::I64);
  std::copy(p.position_ids.begin(), p.position_ids.end(), pos.ptr<int64_t>());
  io::write_npy(dir / "position_ids.npy", pos);
  if (!p.audio_features.empty()) {
    const int64_t n = static_cast<int64_t>(p.audio_features.size());
    const int64_t n_mel = p.audio_features.front().n_mel, frames = p.audio_features.front().n_frames;
    Tensor feats({n, n_mel, frames}, DType::F32);
    Tensor mask({n, frames}, DType::I64);
    for (int64_t a = 0; a < n; ++a) {
      const media::LogMel& f = p.audio_features[static_cast<size_t>(a)];
      OE_CHECK(f.n_mel == n_mel && f.n_frames == frames);
      std::copy(f.values.begin(), f.values.end(), feats.ptr<float>() + a * n_mel * frames);
      for (int64_t t = 0; t < frames; ++t) mask.ptr<int64_t>()[a * frames + t] = t < f.valid_frames ? 1 : 0;
    }
    io::write_npy(dir / "input_features.npy", feats);
    io::write_npy(dir / "feature_attention_mask.npy", mask);
  }
  if (!p.image_grids.empty())
    write_patches(dir, "pixel_values.npy", "image_grid_thw.npy", p.pixel_values, p.pixel_row_len, p.image_grids);
  if (!p.video_grids.empty()) {
    write_patches(dir, "pixel_values_videos.npy", "video_grid_thw.npy", p.video_pixel_values, p.pixel_row_len,
                  p.video_grids);
    Tensor spg({static_cast<int64_t>(p.video_second_per_grid.size())}, DType::F32);
    std::copy(p.video_second_per_grid.begin(), p.video_second_per_grid.end(), spg.ptr<float>());
    io::write_npy(dir / "video_second_per_grid.npy", spg);
    Tensor interleaved({1}, DType::I64);
    interleaved.ptr<int64_t>()[0] = p.use_audio_in_video ? 1 : 0;
    io::write_npy(dir / "use_audio_in_video.npy", interleaved);
  }
}

Embedder::Embedder(std::shared_ptr<const Model> model, EmbedOptions options)
    : model_(std::move(model)), options_(std::move(options)), prompts_(resolve_prompts(options_, *model_)) {
  options_.validate();
  auto tail = model_->tokenizer().encode(text::chat_parts(prompts_).tail);
  tail_ids_.assign(tail.begin(), tail.end());
  if (max_tokens() <= static_cast<int64_t>(tail_ids_.size()) + 1)
    throw InvalidInput(fmt::format("max_tokens {} is too small for the prompt layout", max_tokens()));
}

int64_t Embedder::max_tokens() const {
  int64_t limit = model_->config().text.max_position_embeddings;
  return options_.max_tokens > 0 ? std::min(options_.max_tokens, limit) : limit;
}

media::VisionPreprocessConfig Embedder::image_config() const {
  media::VisionPreprocessConfig c = model_->vision_preprocess();
  if (options_.image_min_pixels > 0) c.min_pixels = options_.image_min_pixels;
  if (options_.image_max_pixels > 0) c.max_pixels = options_.image_max_pixels;
  check_pixel_budget("image", c.min_pixels, c.max_pixels);
  return c;
}

media::AudioFeatureConfig Embedder::audio_config() const {
  media::AudioFeatureConfig c = model_->audio_preprocess();
  const int64_t max_samples = resolved_audio_max_samples(options_, *model_);
  if (max_samples > 0) {
    // The clip length is a whole number of hops (the processor pads to it and frames it exactly).
    c.max_samples = (max_samples + c.hop_length - 1) / c.hop_length * c.hop_length;
  }
  return c;
}

std::vector<media::LogMel> Embedder::audio_features(const std::vector<AudioClip>& clips, bool* truncated) const {
  std::vector<media::LogMel> out;
  if (clips.empty()) return out;
  const media::AudioFeatureConfig config = audio_config();
  for (const auto& clip : clips) {
    const int64_t n = static_cast<int64_t>(clip.samples.size());
    const int64_t frames = media::audio_valid_frames(n, config);
    if (n == 0) throw InvalidInput(fmt::format("{}: the audio has no samples", clip.name));
    for (float x : clip.samples)
      if (!std::isfinite(x)) throw InvalidInput(fmt::format("{}: the audio holds NaN or infinite samples", clip.name));
    if (media::audio_token_count(frames) < 1)
      throw InvalidInput(fmt::format("{}: {} audio samples ({:.3f} s) are too short to embed: at least {} samples at "
                                     "{} Hz (3 mel frames) make one audio token",
                                     clip.name, n, static_cast<double>(n) / static_cast<double>(config.sampling_rate),
                                     2 * config.hop_length + 1, config.sampling_rate));
    *truncated |= clip.truncated || n > config.max_samples;
    out.push_back(media::log_mel(clip.samples, config));
  }
  return out;
}

PreparedInput Embedder::prepare(const EmbedRequest& request) const { return prepare(request, options_.fusion); }

PreparedInput Embedder::prepare(const EmbedRequest& request, Fusion fusion) const {
  Timer timer;
  const media::AudioFeatureConfig audio_cfg = audio_config();
  // Decoding stops at the clip length: a 10-hour file costs no more than 128 s of audio.
  auto decode_clip = [&](const std::filesystem::path& path) {
    media::Audio audio = media::decode_audio(path, audio_cfg.max_samples, audio_cfg.sampling_rate);
    if (audio.truncated)
      log_warn("{}: only the first {:.1f} s of the audio are embedded (the clip length; see --audio-max-seconds)",
               path.string(),
               static_cast<double>(audio_cfg.max_samples) / static_cast<double>(audio_cfg.sampling_rate));
    return AudioClip{path.string(), std::move(audio.samples), audio.truncated};
  };
  const bool any_pixels = !request.images.empty() || (!request.videos.empty() && fusion != Fusion::Audio);
  const media::VisionPreprocessConfig config = any_pixels ? image_config() : media::VisionPreprocessConfig{};
  Media m;
  m.interleave = fusion == Fusion::Interleaved;
  std::vector<AudioClip> clips;
  bool video_truncated = false;
  int64_t silent_videos = 0;
  for (const auto& path : request.videos) {
    VideoClip video;
    video.name = path.string();
    video.has_sound = true;  // in audio mode the frames are not decoded, and decode_audio refuses a silent file
    if (fusion != Fusion::Audio) {
      video.frames = media::decode_video_frames(path, options_.video);  // its errors name the file
      video.has_sound = video.frames.info.has_audio;
    }
    if (fusion != Fusion::Video && video.has_sound) video.sound = decode_clip(path);
    add_video(m, clips, std::move(video), fusion, config, &video_truncated, &silent_videos);
  }
  m.video_tracks = clips.size();
  for (const auto& path : request.audios) clips.push_back(decode_clip(path));
  bool audio_truncated = false;
  m.audios = audio_features(clips, &audio_truncated);
  for (const auto& path : request.images) {
    media::RgbImage image = media::decode_image(path, options_.image_decode);  // its errors name the file
    // Consumed: the decoded pixels are freed once resized, before the patches are allocated.
    m.images.push_back(
        with_context(path.string(), [&] { return media::preprocess_image(std::move(image), config); }));
  }
  const double seconds = timer.seconds();
  PreparedInput p = assemble(request.role, request.text, std::move(m));
  p.preprocess_seconds = seconds;
  p.audio_truncated = audio_truncated;
  p.video_truncated = video_truncated;
  p.silent_videos = silent_videos;
  return p;
}

PreparedInput Embedder::prepare(text::Role role, const std::string& text, const std::vector<media::RgbImage>& images,
                                const std::vector<AudioClip>& audios) const {
  Timer timer;
  Media m;
  const media::VisionPreprocessConfig config = images.empty() ? media::VisionPreprocessConfig{} : image_config();
  for (size_t i = 0; i < images.size(); ++i)
    m.images.push_back(with_context(fmt::format("image {}", i + 1),
                                    [&] { return media::preprocess_image(images[i], config); }));
  bool audio_truncated = false;
  m.audios = audio_features(audios, &audio_truncated);
  const double seconds = timer.seconds();
  PreparedInput p = assemble(role, text, std::move(m));
  p.preprocess_seconds = seconds;
  p.audio_truncated = audio_truncated;
  return p;
}

PreparedInput Embedder::prepare(text::Role role, const std::string& text, VideoClip video, Fusion fusion) const {
  Timer timer;
  const media::VisionPreprocessConfig config =
      fusion != Fusion::Audio ? image_config() : media::VisionPreprocessConfig{};
  Media m;
  m.interleave = fusion == Fusion::Interleaved;
  std::vector<AudioClip> clips;
  bool video_truncated = false, audio_truncated = false;
  int64_t silent_videos = 0;
  add_video(m, clips, std::move(video), fusion, config, &video_truncated, &silent_videos);
  m.audios = audio_features(clips, &audio_truncated);
  const double seconds = timer.seconds();
  PreparedInput p = assemble(role, text, std::move(m));
  p.preprocess_seconds = seconds;
  p.audio_truncated = audio_truncated;
  p.video_truncated = video_truncated;
  p.silent_videos = silent_videos;
  return p;
}

void Embedder::add_video(Media& m, std::vector<AudioClip>& clips, VideoClip video, Fusion fusion,
                         const media::VisionPreprocessConfig& config, bool* truncated, int64_t* silent) const {
  OE_CHECK(clips.size() == m.video_tracks, "a video added after other audio");
  if (fusion != Fusion::Audio) {
    const media::VideoFrames& vf = video.frames;
    OE_CHECK(!vf.frames.empty(), "{}: no frames", video.name);
    if (vf.n_missing > 0)
      log_warn("{}: {} of the sampled frames could not be decoded (a damaged file); the {} that were are embedded",
               video.name, vf.n_missing, vf.frames.size());
    if (vf.truncated) {
      log_warn("{}: {} frames sampled over {:.1f} s, fewer than {:g} per second (the --max-frames budget)",
               video.name, vf.frames.size(), vf.info.duration_seconds, options_.video.fps);
      *truncated = true;
    }
    std::vector<const media::RgbImage*> frames;
    for (const auto& f : vf.frames) frames.push_back(&f);
    m.videos.push_back(with_context(video.name, [&] { return media::patchify(frames, config); }));
    *silent += video.has_sound ? 0 : 1;
  }
  if (fusion != Fusion::Video) {
    if (!video.has_sound && fusion == Fusion::Audio)
      throw InvalidInput(fmt::format("{}: the video has no sound to embed (--fusion audio)", video.name));
    if (!video.has_sound && !video.silence_reported)
      log_warn("{}: the video has no audio track; its frames alone are embedded", video.name);
    m.video_has_track.push_back(video.has_sound);
    if (video.has_sound) clips.push_back(std::move(video.sound));
  }
  m.video_tracks = clips.size();
}

namespace {

// Moves the patches' values into one array (pixel rows of all images, or of all videos) and lists their grids.
int64_t take_patches(std::vector<media::PixelPatches>& from, std::vector<float>& values, std::vector<GridTHW>& grids) {
  if (from.size() == 1 && values.empty()) {  // one image or video, the usual case: moved, not copied beside itself
    grids.push_back({from[0].grid_t, from[0].grid_h, from[0].grid_w});
    values = std::move(from[0].values);
    return from[0].row_len;
  }
  size_t n = 0;
  for (const auto& im : from) n += im.values.size();
  values.reserve(n);
  for (auto& im : from) {
    grids.push_back({im.grid_t, im.grid_h, im.grid_w});
    values.insert(values.end(), im.values.begin(), im.values.end());
    std::vector<float>().swap(im.values);
  }
  return from.empty() ? 0 : from.front().row_len;
}

}  // namespace

PreparedInput Embedder::assemble(text::Role role, const std::string& text, Media m) const {
  if (role == text::Role::Query && text.empty() && m.images.empty() && m.audios.empty() && m.videos.empty())
    throw InvalidInput("the query is empty: a query needs some text, an image, an audio clip or a video");
  const text::Tokenizer& tok = model_->tokenizer();
  const TokenIds& ids = model_->config().tokens;
  const int64_t merge = model_->config().vision.spatial_merge_size;
  const int64_t merge_unit = merge * merge;
  const float second_per_grid = static_cast<float>(model_->vision_preprocess().temporal_patch_size) / 2.0f;
  PreparedInput p;
  // The user content is the prefixed text, then each video block, each audio block and each image block (the
  // document order of spec omni-embed-nemotron.md §2 item 2: text, video, audio, image). Special tokens split the
  // text before pre-tokenization, so tokenizing the parts separately gives the ids of the whole.
  const text::ChatParts parts = text::chat_parts(prompts_);
  auto head = tok.encode(parts.head + prompts_.prefix(role) + text);
  for (int64_t reserved : {ids.image, ids.video, ids.audio})
    if (std::find(head.begin(), head.end(), reserved) != head.end())
      throw InvalidInput(fmt::format("the text contains the special token {}, which only media placeholders may use",
                                     tok.id_to_token(static_cast<int32_t>(reserved))));
  for (const auto* list : {&m.images, &m.videos})
    for (const auto& im : *list)
      if (im.row_len != list->front().row_len || im.n_rows() % merge_unit != 0 ||
          (!m.images.empty() && im.row_len != m.images.front().row_len))
        throw InvalidInput(fmt::format("pixel patches of {} rows × {} do not fit the vision tower", im.n_rows(),
                                       im.row_len));
  RopeMedia rm;
  std::vector<int64_t> media_ids;
  auto append = [&](int64_t id, int64_t count) { media_ids.insert(media_ids.end(), static_cast<size_t>(count), id); };
  size_t track = 0;  // the next video sound among m.audios
  for (size_t v = 0; v < m.videos.size(); ++v) {
    const auto& vid = m.videos[v];
    const GridTHW g{vid.grid_t, vid.grid_h, vid.grid_w};
    rm.videos.push_back(g);
    rm.video_second_per_grid.push_back(second_per_grid);
    const bool has_track = v < m.video_has_track.size() && m.video_has_track[v];
    if (m.interleave && has_track) {
      const int64_t audio_tokens = media::audio_token_count(m.audios[track++].valid_frames);
      rm.video_audio_tokens.push_back(audio_tokens);
      append(ids.vision_start, 1);
      append(ids.audio_start, 1);
      for (const InterleavedRun& r : interleaved_runs(g, second_per_grid, audio_tokens, merge, ids))
        append(r.video ? ids.video : ids.audio, r.count);
      append(ids.audio_end, 1);
      append(ids.vision_end, 1);
      p.use_audio_in_video = true;
    } else {
      rm.video_audio_tokens.push_back(0);
      append(ids.vision_start, 1);
      append(ids.video, vid.n_rows() / merge_unit);
      append(ids.vision_end, 1);
    }
  }
  for (size_t k = m.interleave ? m.video_tracks : 0; k < m.audios.size(); ++k) {
    append(ids.audio_start, 1);
    append(ids.audio, media::audio_token_count(m.audios[k].valid_frames));
    append(ids.audio_end, 1);
  }
  for (const auto& im : m.images) {
    rm.images.push_back({im.grid_t, im.grid_h, im.grid_w});
    append(ids.vision_start, 1);
    append(ids.image, im.n_rows() / merge_unit);
    append(ids.vision_end, 1);
  }
  const int64_t total = static_cast<int64_t>(head.size() + media_ids.size() + tail_ids_.size());
  p.original_tokens = total;
  const int64_t limit = max_tokens();
  size_t keep_head = head.size();
  if (total > limit) {
    // Cut the user text; media blocks are never cut (a partial image would not match its encoder rows).
    const int64_t fixed = static_cast<int64_t>(media_ids.size() + tail_ids_.size());
    const int64_t head_min = static_cast<int64_t>(tok.encode(parts.head).size());
    if (limit - fixed < head_min)
      throw InvalidInput(fmt::format("the item needs {} tokens for its media alone, more than the limit of {} tokens; "
                                     "lower the image or video budget (max pixels, fps, max frames) or the audio "
                                     "length",
                                     fixed + head_min, limit));
    keep_head = static_cast<size_t>(limit - fixed);
    p.truncated = true;
  }
  p.input_ids.assign(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(keep_head));
  p.input_ids.insert(p.input_ids.end(), media_ids.begin(), media_ids.end());
  p.input_ids.insert(p.input_ids.end(), tail_ids_.begin(), tail_ids_.end());
  p.audio_features = std::move(m.audios);
  if (rm.images.empty() && rm.videos.empty()) {
    p.position_ids = text_position_ids(p.n_tokens());  // audio tokens count on like text (spec §8)
    return p;
  }
  p.position_ids = tmrope_position_ids(p.input_ids, ids, merge, rm);
  p.video_second_per_grid = rm.video_second_per_grid;
  const int64_t image_row_len = take_patches(m.images, p.pixel_values, p.image_grids);
  const int64_t video_row_len = take_patches(m.videos, p.video_pixel_values, p.video_grids);
  p.pixel_row_len = image_row_len > 0 ? image_row_len : video_row_len;
  return p;
}

void Embedder::merge_vision(const std::vector<GridTHW>& grids, const std::vector<float>& pixels, int64_t row_len,
                            int64_t token, const char* kind, const PreparedInput& item, float* embeds, int64_t d,
                            std::vector<float>* vision_out, std::vector<float>* release) const {
  const VisionEncoder& enc = model_->vision_encoder();
  if (enc.config().out_d_model != d)
    throw InvalidInput(fmt::format("vision out_hidden_size {} differs from the text hidden_size {}",
                                   enc.config().out_d_model, d));
  if (row_len != enc.row_len())
    throw InvalidInput(fmt::format("pixel rows have {} values but the vision tower takes {}", row_len, enc.row_len()));
  int64_t n_patches = 0;
  for (const auto& g : grids) n_patches += g.patches();
  OE_CHECK(static_cast<int64_t>(pixels.size()) == n_patches * enc.row_len());
  const int64_t n_rows = n_patches / enc.merge_unit();
  const int64_t placeholders = std::count(item.input_ids.begin(), item.input_ids.end(), token);
  if (placeholders != n_rows)
    throw InvalidInput(fmt::format("the item has {} {} placeholder tokens but its {}s give {} rows", placeholders,
                                   kind, kind, n_rows));
  std::vector<float> rows(static_cast<size_t>(n_rows * d));
  std::function<void()> pixels_read;
  if (release) pixels_read = [release] { std::vector<float>().swap(*release); };  // `pixels` is gone after this
  enc.encode(pixels.data(), grids, rows.data(), {}, pixels_read);
  // The encoder rows replace the placeholder embeddings in sequence order (spec §3.4).
  int64_t r = 0;
  for (int64_t i = 0; i < item.n_tokens(); ++i)
    if (item.input_ids[static_cast<size_t>(i)] == token) std::copy_n(rows.data() + (r++) * d, d, embeds + i * d);
  if (vision_out) vision_out->insert(vision_out->end(), rows.begin(), rows.end());
}

void Embedder::merge_audio(const PreparedInput& item, float* embeds, int64_t d, std::vector<float>* audio_out) const {
  const AudioEncoder& enc = model_->audio_encoder();
  if (enc.config().out_d_model != d)
    throw InvalidInput(fmt::format("audio output_dim {} differs from the text hidden_size {}", enc.config().out_d_model,
                                   d));
  std::vector<AudioFeaturesView> views;
  int64_t n_rows = 0;
  for (const auto& f : item.audio_features) {
    if (f.n_mel != enc.config().n_mel)
      throw InvalidInput(fmt::format("audio features have {} mel bins but the audio tower takes {}", f.n_mel,
                                     enc.config().n_mel));
    views.push_back({f.values.data(), f.n_frames, f.valid_frames});
    n_rows += media::audio_token_count(f.valid_frames);
  }
  const int64_t audio_id = model_->config().tokens.audio;
  const int64_t placeholders = std::count(item.input_ids.begin(), item.input_ids.end(), audio_id);
  if (placeholders != n_rows)
    throw InvalidInput(fmt::format("the item has {} audio placeholder tokens but its audio gives {} rows",
                                   placeholders, n_rows));
  std::vector<float> rows(static_cast<size_t>(n_rows * d));
  enc.encode(views, rows.data());
  int64_t r = 0;
  for (int64_t i = 0; i < item.n_tokens(); ++i)
    if (item.input_ids[static_cast<size_t>(i)] == audio_id) std::copy_n(rows.data() + (r++) * d, d, embeds + i * d);
  if (audio_out) audio_out->insert(audio_out->end(), rows.begin(), rows.end());
}

std::vector<Embedding> Embedder::embed_prepared(const std::vector<PreparedInput>& items,
                                                std::vector<float>* last_hidden, const LayerObserver& observer,
                                                EmbedTimings* timings, std::vector<float>* vision_out,
                                                std::vector<float>* audio_out) const {
  return embed_items(items, nullptr, last_hidden, observer, timings, vision_out, audio_out);
}

std::vector<Embedding> Embedder::embed_prepared(std::vector<PreparedInput>&& items, EmbedTimings* timings) const {
  return embed_items(items, &items, nullptr, {}, timings, nullptr, nullptr);
}

// `consumed`, when not null, is `items` itself, whose pixel rows may be freed once read.
DecoderBatch Embedder::decoder_inputs(const std::vector<PreparedInput>& items) const {
  return pack(items, nullptr, nullptr, nullptr, nullptr);
}

DecoderBatch Embedder::pack(const std::vector<PreparedInput>& items, std::vector<PreparedInput>* consumed,
                            EmbedTimings* timings, std::vector<float>* vision_out,
                            std::vector<float>* audio_out) const {
  const TextDecoder& dec = model_->text_decoder();
  const int64_t d = dec.config().d_model;
  // Pack the items as segments: ids and positions concatenated.
  DecoderBatch batch;
  batch.cu_seqlens.push_back(0);
  int64_t total = 0;
  for (const auto& it : items) {
    OE_CHECK(it.n_tokens() > 0 && static_cast<int64_t>(it.position_ids.size()) == 3 * it.n_tokens());
    total += it.n_tokens();
    batch.cu_seqlens.push_back(total);
  }
  batch.n_tokens = total;
  std::vector<int64_t> ids;
  std::vector<int64_t>& pos = batch.position_ids;
  pos.resize(static_cast<size_t>(3 * total));
  ids.reserve(static_cast<size_t>(total));
  for (size_t s = 0; s < items.size(); ++s) {
    const auto& it = items[s];
    const int64_t n = it.n_tokens(), off = batch.cu_seqlens[s];
    ids.insert(ids.end(), it.input_ids.begin(), it.input_ids.end());
    for (int64_t r = 0; r < 3; ++r)
      std::copy_n(it.position_ids.begin() + r * n, n, pos.begin() + r * total + off);
  }
  batch.embeds.resize(static_cast<size_t>(total * d));
  float* embeds = batch.embeds.data();
  dec.embed(ids.data(), total, embeds);
  Timer vision_timer;
  if (vision_out) vision_out->clear();
  const TokenIds& tok = model_->config().tokens;
  const std::vector<int64_t>& cu = batch.cu_seqlens;
  for (size_t s = 0; s < items.size(); ++s)
    if (!items[s].image_grids.empty())
      merge_vision(items[s].image_grids, items[s].pixel_values, items[s].pixel_row_len, tok.image, "image", items[s],
                   embeds + cu[s] * d, d, vision_out, consumed ? &(*consumed)[s].pixel_values : nullptr);
  for (size_t s = 0; s < items.size(); ++s)
    if (!items[s].video_grids.empty())
      merge_vision(items[s].video_grids, items[s].video_pixel_values, items[s].pixel_row_len, tok.video, "video",
                   items[s], embeds + cu[s] * d, d, vision_out,
                   consumed ? &(*consumed)[s].video_pixel_values : nullptr);
  if (timings) timings->vision = vision_timer.seconds();
  Timer audio_timer;
  if (audio_out) audio_out->clear();
  for (size_t s = 0; s < items.size(); ++s)
    if (!items[s].audio_features.empty()) merge_audio(items[s], embeds + cu[s] * d, d, audio_out);
  if (timings) timings->audio = audio_timer.seconds();
  return batch;
}

std::vector<Embedding> Embedder::embed_items(const std::vector<PreparedInput>& items,
                                             std::vector<PreparedInput>* consumed, std::vector<float>* last_hidden,
                                             const LayerObserver& observer, EmbedTimings* timings,
                                             std::vector<float>* vision_out, std::vector<float>* audio_out) const {
  const TextDecoder& dec = model_->text_decoder();
  const int64_t d = dec.config().d_model;
  std::vector<Embedding> out;
  if (items.empty()) return out;
  const DecoderBatch batch = pack(items, consumed, timings, vision_out, audio_out);
  const int64_t total = batch.n_tokens;
  DecoderInput in;
  in.cu_seqlens = batch.cu_seqlens;
  Timer decoder_timer;
  in.inputs_embeds = batch.embeds.data();
  in.position_ids = batch.position_ids.data();
  in.n_tokens = total;
  const std::vector<int64_t> offsets = in.cu_seqlens;
  if (items.size() == 1) in.cu_seqlens.clear();
  std::vector<float> hidden(static_cast<size_t>(total * d));
  dec.forward(in, options_.attention, hidden.data(), observer);
  if (timings) timings->decoder = decoder_timer.seconds();

  // Masked mean over every token of each item, in fp32 (the reference pools bf16 values), then L2.
  for (size_t s = 0; s < items.size(); ++s) {
    const int64_t b = offsets[s];
    const int64_t n = items[s].n_tokens();
    std::vector<double> acc(static_cast<size_t>(d), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < d; ++j) acc[static_cast<size_t>(j)] += hidden[static_cast<size_t>((b + i) * d + j)];
    double norm = 0;
    for (auto& a : acc) {
      a /= static_cast<double>(n);
      norm += a * a;
    }
    norm = std::sqrt(norm);
    Embedding e;
    e.n_tokens = n;
    if (std::isfinite(norm) && norm > 0) {
      e.vector.resize(static_cast<size_t>(d));
      for (int64_t j = 0; j < d; ++j) e.vector[static_cast<size_t>(j)] = static_cast<float>(acc[static_cast<size_t>(j)] / norm);
    } else {
      e.error = std::isfinite(norm) ? "the model gave an all-zero vector for the item (its weights are not usable)"
                                    : "the model gave NaN or infinite values for the item (non-finite values in its "
                                      "input or in the model's weights); no vector is stored for it";
    }
    e.truncated = items[s].truncated || items[s].audio_truncated || items[s].video_truncated;
    out.push_back(std::move(e));
  }
  if (last_hidden) *last_hidden = std::move(hidden);
  return out;
}

Embedding Embedder::embed(const EmbedRequest& request) const {
  PreparedInput p = prepare(request);
  if (p.truncated)
    log_warn("input of {} tokens truncated to {} (the model's context limit)", p.original_tokens, p.n_tokens());
  std::vector<PreparedInput> items;
  items.push_back(std::move(p));
  Embedding e = embed_prepared(std::move(items)).front();
  if (!e.error.empty()) throw InvalidInput(e.error);
  return e;
}

}  // namespace oe::model
