#include "model/rope_index.h"

#include <algorithm>

#include "core/error.h"

namespace oe::model {

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
  while (i < n) {
    const int64_t id = ids[static_cast<size_t>(i)];
    const bool is_image = id == tok.image, is_video = id == tok.video;
    if (!is_image && !is_video) {
      T[i] = H[i] = W[i] = next++;
      ++i;
      continue;
    }
    const char* kind = is_image ? "image" : "video";
    const auto& grids = is_image ? media.images : media.videos;
    size_t& item = is_image ? next_image : next_video;
    if (item >= grids.size())
      throw InvalidInput(fmt::format("{} placeholder at token {} has no {} left to fill it ({} given)", kind, i, kind,
                                     grids.size()));
    const GridTHW g = grids[item];
    const float spg = is_image ? 0.0f : media.video_second_per_grid[item];
    ++item;
    const int64_t Hm = g.h / merge, Wm = g.w / merge, count = g.t * Hm * Wm;
    int64_t run = 0;
    while (i + run < n && ids[static_cast<size_t>(i + run)] == id) ++run;
    if (run != count)
      throw InvalidInput(fmt::format("{} {} needs {} placeholder tokens but the sequence has a run of {} at token {}",
                                     kind, item, count, run, i));
    const int64_t base = next;
    int64_t max_offset = std::max<int64_t>({0, Hm - 1, Wm - 1});
    for (int64_t ti = 0; ti < g.t; ++ti) {
      // ⌊ti·spg·pps⌋ in fp32, in the reference's multiplication order (spec §10 item 7).
      const int64_t t_off =
          is_image ? 0
                   : static_cast<int64_t>(static_cast<float>(ti) * spg *
                                          static_cast<float>(tok.position_id_per_seconds));
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
