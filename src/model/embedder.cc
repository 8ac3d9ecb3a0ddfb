#include "model/embedder.h"

#include <cmath>

#include "core/error.h"
#include "core/log.h"
#include "core/tensor.h"
#include "core/timer.h"
#include "io/npy.h"
#include "model/rope_index.h"

namespace oe::model {

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
  if (p.image_grids.empty()) return;
  const int64_t rows = static_cast<int64_t>(p.pixel_values.size()) / p.pixel_row_len;
  Tensor pv({rows, p.pixel_row_len}, DType::F32);
  std::copy(p.pixel_values.begin(), p.pixel_values.end(), pv.ptr<float>());
  io::write_npy(dir / "pixel_values.npy", pv);
  Tensor grid({static_cast<int64_t>(p.image_grids.size()), 3}, DType::I64);
  for (size_t i = 0; i < p.image_grids.size(); ++i) {
    grid.ptr<int64_t>()[3 * i] = p.image_grids[i].t;
    grid.ptr<int64_t>()[3 * i + 1] = p.image_grids[i].h;
    grid.ptr<int64_t>()[3 * i + 2] = p.image_grids[i].w;
  }
  io::write_npy(dir / "image_grid_thw.npy", grid);
}

Embedder::Embedder(std::shared_ptr<const Model> model, EmbedOptions options)
    : model_(std::move(model)), options_(std::move(options)) {
  auto tail = model_->tokenizer().encode(text::chat_parts(options_.prompts).tail);
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
  if (c.min_pixels > c.max_pixels)
    throw InvalidInput(fmt::format("image min_pixels {} is larger than max_pixels {}", c.min_pixels, c.max_pixels));
  return c;
}

media::AudioFeatureConfig Embedder::audio_config() const {
  media::AudioFeatureConfig c = model_->audio_preprocess();
  if (options_.audio_max_samples > 0) {
    // The clip length is a whole number of hops (the processor pads to it and frames it exactly).
    c.max_samples = (options_.audio_max_samples + c.hop_length - 1) / c.hop_length * c.hop_length;
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

PreparedInput Embedder::prepare(const EmbedRequest& request) const {
  Timer timer;
  std::vector<AudioClip> clips;
  if (!request.audios.empty()) {
    const media::AudioFeatureConfig config = audio_config();
    for (const auto& path : request.audios) {
      // Decoding stops at the clip length: a 10-hour file costs no more than 128 s of audio.
      media::Audio audio = media::decode_audio(path, config.max_samples, config.sampling_rate);
      if (audio.truncated)
        log_warn("{}: only the first {:.1f} s of the audio are embedded (the clip length; see --audio-max-seconds)",
                 path.string(), static_cast<double>(config.max_samples) / static_cast<double>(config.sampling_rate));
      clips.push_back({path.string(), std::move(audio.samples), audio.truncated});
    }
  }
  bool audio_truncated = false;
  std::vector<media::LogMel> audios = audio_features(clips, &audio_truncated);
  std::vector<media::PixelPatches> images;
  const media::VisionPreprocessConfig config = request.images.empty() ? media::VisionPreprocessConfig{} : image_config();
  for (const auto& path : request.images) {
    media::RgbImage image = media::decode_image(path, options_.image_decode);  // its errors name the file
    images.push_back(with_context(path.string(), [&] { return media::preprocess_image(image, config); }));
  }
  const double seconds = timer.seconds();
  PreparedInput p = assemble(request.role, request.text, std::move(images), std::move(audios));
  p.preprocess_seconds = seconds;
  p.audio_truncated = audio_truncated;
  return p;
}

PreparedInput Embedder::prepare(text::Role role, const std::string& text, const std::vector<media::RgbImage>& images,
                                const std::vector<AudioClip>& audios) const {
  Timer timer;
  std::vector<media::PixelPatches> patches;
  const media::VisionPreprocessConfig config = images.empty() ? media::VisionPreprocessConfig{} : image_config();
  for (size_t i = 0; i < images.size(); ++i)
    patches.push_back(with_context(fmt::format("image {}", i + 1),
                                   [&] { return media::preprocess_image(images[i], config); }));
  bool audio_truncated = false;
  std::vector<media::LogMel> features = audio_features(audios, &audio_truncated);
  const double seconds = timer.seconds();
  PreparedInput p = assemble(role, text, std::move(patches), std::move(features));
  p.preprocess_seconds = seconds;
  p.audio_truncated = audio_truncated;
  return p;
}

PreparedInput Embedder::assemble(text::Role role, const std::string& text, std::vector<media::PixelPatches> images,
                                 std::vector<media::LogMel> audios) const {
  if (role == text::Role::Query && text.empty() && images.empty() && audios.empty())
    throw InvalidInput("the query is empty: a query needs some text, an image or an audio clip");
  const text::Tokenizer& tok = model_->tokenizer();
  const TokenIds& ids = model_->config().tokens;
  const int64_t merge_unit = model_->config().vision.spatial_merge_size * model_->config().vision.spatial_merge_size;
  PreparedInput p;
  // The user content is the prefixed text, then each audio block, then each image block (the document order of spec
  // omni-embed-nemotron.md §2 item 2: text, video, audio, image). Special
  // tokens split the text before pre-tokenization, so tokenizing the parts separately gives the ids of the whole.
  const text::ChatParts parts = text::chat_parts(options_.prompts);
  auto head = tok.encode(parts.head + options_.prompts.prefix(role) + text);
  for (int64_t reserved : {ids.image, ids.video, ids.audio})
    if (std::find(head.begin(), head.end(), reserved) != head.end())
      throw InvalidInput(fmt::format("the text contains the special token {}, which only media placeholders may use",
                                     tok.id_to_token(static_cast<int32_t>(reserved))));
  std::vector<int64_t> media_ids;
  for (const auto& a : audios) {
    media_ids.push_back(ids.audio_start);
    media_ids.insert(media_ids.end(), static_cast<size_t>(media::audio_token_count(a.valid_frames)), ids.audio);
    media_ids.push_back(ids.audio_end);
  }
  for (const auto& im : images) {
    if (im.row_len != images.front().row_len || im.n_rows() % merge_unit != 0)
      throw InvalidInput(fmt::format("image patches of {} rows × {} do not fit the vision tower", im.n_rows(),
                                     im.row_len));
    p.image_grids.push_back({im.grid_t, im.grid_h, im.grid_w});
    media_ids.push_back(ids.vision_start);
    media_ids.insert(media_ids.end(), static_cast<size_t>(im.n_rows() / merge_unit), ids.image);
    media_ids.push_back(ids.vision_end);
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
                                     "lower the image budget (max pixels) or the audio length",
                                     fixed + head_min, limit));
    keep_head = static_cast<size_t>(limit - fixed);
    p.truncated = true;
  }
  p.input_ids.assign(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(keep_head));
  p.input_ids.insert(p.input_ids.end(), media_ids.begin(), media_ids.end());
  p.input_ids.insert(p.input_ids.end(), tail_ids_.begin(), tail_ids_.end());
  p.audio_features = std::move(audios);
  if (images.empty()) {
    p.position_ids = text_position_ids(p.n_tokens());  // audio tokens count on like text (spec §8)
  } else {
    RopeMedia rm;
    rm.images = p.image_grids;
    p.position_ids = tmrope_position_ids(p.input_ids, ids, model_->config().vision.spatial_merge_size, rm);
    p.pixel_row_len = images.front().row_len;
    size_t n = 0;
    for (const auto& im : images) n += im.values.size();
    p.pixel_values.reserve(n);
    for (auto& im : images) {
      p.pixel_values.insert(p.pixel_values.end(), im.values.begin(), im.values.end());
      std::vector<float>().swap(im.values);
    }
  }
  return p;
}

void Embedder::merge_images(const PreparedInput& item, float* embeds, int64_t d, std::vector<float>* vision_out) const {
  const VisionEncoder& enc = model_->vision_encoder();
  if (enc.config().out_d_model != d)
    throw InvalidInput(fmt::format("vision out_hidden_size {} differs from the text hidden_size {}",
                                   enc.config().out_d_model, d));
  if (item.pixel_row_len != enc.row_len())
    throw InvalidInput(fmt::format("pixel rows have {} values but the vision tower takes {}", item.pixel_row_len,
                                   enc.row_len()));
  int64_t n_patches = 0;
  for (const auto& g : item.image_grids) n_patches += g.patches();
  OE_CHECK(static_cast<int64_t>(item.pixel_values.size()) == n_patches * enc.row_len());
  const int64_t n_rows = n_patches / enc.merge_unit();
  std::vector<float> rows(static_cast<size_t>(n_rows * d));
  enc.encode(item.pixel_values.data(), item.image_grids, rows.data());
  // The encoder rows replace the <|IMAGE|> embeddings in sequence order (spec §3.4).
  const int64_t image_id = model_->config().tokens.image;
  int64_t r = 0;
  for (int64_t i = 0; i < item.n_tokens(); ++i) {
    if (item.input_ids[static_cast<size_t>(i)] != image_id) continue;
    if (r == n_rows) break;
    std::copy_n(rows.data() + r * d, d, embeds + i * d);
    ++r;
  }
  const int64_t placeholders = std::count(item.input_ids.begin(), item.input_ids.end(), image_id);
  if (placeholders != n_rows)
    throw InvalidInput(fmt::format("the item has {} image placeholder tokens but its images give {} rows",
                                   placeholders, n_rows));
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
  const TextDecoder& dec = model_->text_decoder();
  const int64_t d = dec.config().d_model;
  std::vector<Embedding> out;
  if (items.empty()) return out;
  // Pack the items as segments: ids and positions concatenated.
  DecoderInput in;
  in.cu_seqlens.push_back(0);
  int64_t total = 0;
  for (const auto& it : items) {
    OE_CHECK(it.n_tokens() > 0 && static_cast<int64_t>(it.position_ids.size()) == 3 * it.n_tokens());
    total += it.n_tokens();
    in.cu_seqlens.push_back(total);
  }
  std::vector<int64_t> ids, pos(static_cast<size_t>(3 * total));
  ids.reserve(static_cast<size_t>(total));
  for (size_t s = 0; s < items.size(); ++s) {
    const auto& it = items[s];
    const int64_t n = it.n_tokens(), off = in.cu_seqlens[s];
    ids.insert(ids.end(), it.input_ids.begin(), it.input_ids.end());
    for (int64_t r = 0; r < 3; ++r)
      std::copy_n(it.position_ids.begin() + r * n, n, pos.begin() + r * total + off);
  }
  auto embeds = aligned_array<float>(static_cast<size_t>(total * d));
  dec.embed(ids.data(), total, embeds.get());
  Timer vision_timer;
  if (vision_out) vision_out->clear();
  for (size_t s = 0; s < items.size(); ++s)
    if (!items[s].image_grids.empty())
      merge_images(items[s], embeds.get() + in.cu_seqlens[s] * d, d, vision_out);
  if (timings) timings->vision = vision_timer.seconds();
  Timer audio_timer;
  if (audio_out) audio_out->clear();
  for (size_t s = 0; s < items.size(); ++s)
    if (!items[s].audio_features.empty())
      merge_audio(items[s], embeds.get() + in.cu_seqlens[s] * d, d, audio_out);
  if (timings) timings->audio = audio_timer.seconds();
  Timer decoder_timer;
  in.inputs_embeds = embeds.get();
  in.position_ids = pos.data();
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
    e.vector.resize(static_cast<size_t>(d));
    for (int64_t j = 0; j < d; ++j)
      e.vector[static_cast<size_t>(j)] = static_cast<float>(norm > 0 ? acc[static_cast<size_t>(j)] / norm : 0.0);
    e.n_tokens = n;
    e.truncated = items[s].truncated || items[s].audio_truncated;
    out.push_back(std::move(e));
  }
  if (last_hidden) *last_hidden = std::move(hidden);
  return out;
}

Embedding Embedder::embed(const EmbedRequest& request) const {
  PreparedInput p = prepare(request);
  if (p.truncated)
    log_warn("input of {} tokens truncated to {} (the model's context limit)", p.original_tokens, p.n_tokens());
  return embed_prepared({p}).front();
}

}  // namespace oe::model
