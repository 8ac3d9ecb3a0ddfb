#include "model/rope_index.h"

#include <algorithm>

#include "core/error.h"

namespace oe::model {
namespace {

// ⌊ti·spg·pps⌋ in fp32, in the reference's multiplication order (spec §10 item 7).
int64_t time_offset(int64_t ti, float spg, const TokenIds& tok) {
  return static_cast<int64_t>(static_cast<float>(ti) * spg * static_cast<float>(tok.position_id_per_seconds));
}

// Length of the run of `id` starting at i.
int64_t run_length(const std::vector<int64_t>& ids, int64_t i, int64_t id) {
  int64_t run = 0;
  while (i + run < static_cast<int64_t>(ids.size()) && ids[static_cast<size_t>(i + run)] == id) ++run;
  return run;
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> chunked_index(const std::vector<int64_t>& values, int64_t tokens_per_chunk,
                                                       int64_t subtract) {
  OE_CHECK(tokens_per_chunk > 0);
  std::vector<std::pair<int64_t, int64_t>> chunks;
  int64_t start = 0, k = 1;
  const int64_t n = static_cast<int64_t>(values.size());
  for (int64_t i = 0; i < n; ++i) {
    if (values[static_cast<size_t>(i)] - subtract >= k * tokens_per_chunk) {
      chunks.emplace_back(start, i);
      start = i;
      ++k;
    }
  }
  chunks.emplace_back(start, n);
  return chunks;
}

std::vector<InterleavedRun> interleaved_runs(const GridTHW& g, float spg, int64_t audio_tokens, int64_t merge,
                                             const TokenIds& tok) {
  const int64_t per_slice = (g.h / merge) * (g.w / merge);
  std::vector<int64_t> video_time;
  video_time.reserve(static_cast<size_t>(g.t * per_slice));
  for (int64_t ti = 0; ti < g.t; ++ti) video_time.insert(video_time.end(), static_cast<size_t>(per_slice), time_offset(ti, spg, tok));
  std::vector<int64_t> audio_time(static_cast<size_t>(audio_tokens));
  for (int64_t a = 0; a < audio_tokens; ++a) audio_time[static_cast<size_t>(a)] = a;
  const int64_t tpc = tok.position_id_per_seconds * tok.seconds_per_chunk;
  const auto vc = chunked_index(video_time, tpc), ac = chunked_index(audio_time, tpc);
  std::vector<InterleavedRun> runs;
  for (size_t j = 0; j < std::max(vc.size(), ac.size()); ++j) {
    if (j < vc.size() && vc[j].second > vc[j].first) runs.push_back({true, vc[j].second - vc[j].first});
    if (j < ac.size() && ac[j].second > ac[j].first) runs.push_back({false, ac[j].second - ac[j].first});
  }
  return runs;
}

std::vector<int64_t> tmrope_position_ids(const std::vector<int64_t>& ids, const TokenIds& tok, int64_t merge,
                                         const RopeMedia& media) {
  const int64_t n = static_cast<int64_t>(ids.size());
  OE_CHECK(merge > 0);
  OE_CHECK(media.video_second_per_grid.size() == media.videos.size());
  std::vector<int64_t> pos(static_cast<size_t>(3 * n));
  int64_t* T = pos.data();
  int64_t* H = T + n;
  int64_t* W = H + n;
  size_t next_image = 0, next_video = 0;
  int64_t next = 0;  // position of the next text token
  int64_t i = 0;
  auto at = [&](int64_t k) { return k < n ? ids[static_cast<size_t>(k)] : -1; };
  auto take_video = [&](int64_t where) {
    if (next_video >= media.videos.size())
      throw InvalidInput(fmt::format("video placeholder at token {} has no video left to fill it ({} given)", where,
                                     media.videos.size()));
    return next_video++;
  };
  while (i < n) {
    const int64_t id = ids[static_cast<size_t>(i)];
    if (id == tok.vision_start && at(i + 1) == tok.audio_start) {
      // A video with its audio interleaved (spec §8.2, use_audio_in_video): both bos tokens share position b, the
      // video and audio tokens count from b + 1 chunk by chunk, both eos tokens share (max of the last chunk) + 1.
      const size_t v = take_video(i);
      if (v >= media.video_audio_tokens.size())
        throw InvalidInput(fmt::format("video {} at token {} is interleaved with audio but has no audio length", v + 1,
                                       i));
      const GridTHW g = media.videos[v];
      const float spg = media.video_second_per_grid[v];
      const int64_t Wm = g.w / merge, per_slice = (g.h / merge) * Wm;
      const int64_t b = next, base = b + 1;
      T[i] = H[i] = W[i] = T[i + 1] = H[i + 1] = W[i + 1] = b;
      i += 2;
      int64_t k_video = 0, k_audio = 0, last_max = b;
      for (const InterleavedRun& r : interleaved_runs(g, spg, media.video_audio_tokens[v], merge, tok)) {
        const int64_t want = r.video ? tok.video : tok.audio;
        if (run_length(ids, i, want) < r.count)
          throw InvalidInput(fmt::format("interleaved video {} needs a run of {} {} tokens at token {}", v + 1, r.count,
                                         r.video ? "video" : "audio", i));
        last_max = 0;
        for (int64_t c = 0; c < r.count; ++c, ++i) {
          if (r.video) {
            const int64_t k = k_video++, ti = k / per_slice, y = (k % per_slice) / Wm, x = k % Wm;
            T[i] = base + time_offset(ti, spg, tok);
            H[i] = base + y;
            W[i] = base + x;
          } else {
            T[i] = H[i] = W[i] = base + k_audio++;
          }
          last_max = std::max({last_max, T[i], H[i], W[i]});
        }
      }
      if (at(i) != tok.audio_end || at(i + 1) != tok.vision_end)
        throw InvalidInput(fmt::format("interleaved video {} is not closed by <|audio_eos|><|vision_eos|> at token {}",
                                       v + 1, i));
      T[i] = H[i] = W[i] = T[i + 1] = H[i + 1] = W[i + 1] = last_max + 1;
      next = last_max + 2;
      i += 2;
      continue;
    }
    const bool is_image = id == tok.image, is_video = id == tok.video;
    if (!is_image && !is_video) {
      T[i] = H[i] = W[i] = next++;
      ++i;
      continue;
    }
    const char* kind = is_image ? "image" : "video";
    size_t item = 0;
    if (is_image) {
      if (next_image >= media.images.size())
        throw InvalidInput(fmt::format("image placeholder at token {} has no image left to fill it ({} given)", i,
                                       media.images.size()));
      item = next_image++;
    } else {
      item = take_video(i);
    }
    const GridTHW g = is_image ? media.images[item] : media.videos[item];
    const float spg = is_image ? 0.0f : media.video_second_per_grid[item];
    const int64_t Hm = g.h / merge, Wm = g.w / merge, count = g.t * Hm * Wm;
    const int64_t run = run_length(ids, i, id);
    if (run != count)
      throw InvalidInput(fmt::format("{} {} needs {} placeholder tokens but the sequence has a run of {} at token {}",
                                     kind, item + 1, count, run, i));
    const int64_t base = next;
    int64_t max_offset = std::max<int64_t>({0, Hm - 1, Wm - 1});
    for (int64_t ti = 0; ti < g.t; ++ti) {
      const int64_t t_off = is_image ? 0 : time_offset(ti, spg, tok);
      max_offset = std::max(max_offset, t_off);
      for (int64_t y = 0; y < Hm; ++y)
        for (int64_t x = 0; x < Wm; ++x, ++i) {
          T[i] = base + t_off;
          H[i] = base + y;
          W[i] = base + x;
        }
    }
    next = base + max_offset + 1;
  }
  if (next_image != media.images.size() || next_video != media.videos.size())
    throw InvalidInput(fmt::format("the sequence has placeholders for {} image(s) and {} video(s) but {} and {} were "
                                   "given",
                                   next_image, next_video, media.images.size(), media.videos.size()));
  return pos;
}

}  // namespace oe::model
