#include "ingest/indexer.h"

#include <optional>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "ingest/segments.h"
#include "io/hash.h"
#include "io/read.h"
#include "media/video.h"
#include "pipeline/views.h"

namespace oe::ingest {
namespace {

namespace fs = std::filesystem;

}  // namespace

std::string read_text_source(const fs::path& file, int64_t max_bytes) {
  std::string text =
      io::read_file(file, io::ReadCap{static_cast<uint64_t>(max_bytes), "text file", "--max-text-bytes"});
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw InvalidInput("the text file is empty");
  return text;
}

Indexer::Indexer(const pipeline::Encoder& encoder, index::Store& store, IndexerOptions options)
    : encoder_(encoder), store_(store), options_(options), batcher_(encoder.embedder(), options.batch_tokens) {}

std::string Indexer::content_hash(const SourceSpec& spec, index::SourceRecord& record) const {
  const index::IndexSettings& s = store_.settings();
  io::Sha256 h;
  h.update(spec.manifest_line).update(std::string_view("\0", 1));
  h.update(fmt::format("text_window={};text_overlap={};media_window={};media_overlap={}\n", s.text_window,
                       s.text_overlap, s.media_window, s.media_overlap));
  // Videos are cut into windows since this line: a video indexed whole before is embedded again, in windows.
  if (!spec.item.videos.empty()) h.update(std::string_view("video windows\n"));
  if (!spec.file.empty()) {
    std::error_code ec;
    record.size = static_cast<int64_t>(fs::file_size(spec.file, ec));
    h.update_file(spec.file);
  }
  for (const auto* list : {&spec.item.images, &spec.item.audios, &spec.item.videos})
    for (const auto& f : *list)
      if (f != spec.file) h.update(f.string()).update(std::string_view("\0", 1)).update_file(f);
  return h.hex();
}

int64_t Indexer::queue_segment(index::Segment segment, std::vector<pipeline::PreparedView> views, Pending& p) {
  int64_t tokens = 0;
  const Modality item_modality = modality_from_name(segment.modality).value_or(Modality::Text);
  for (auto& v : views) {
    if (v.input.truncated)
      log_warn("{}: {} tokens truncated to {} (the model's context limit)", p.record.path, v.input.original_tokens,
               v.input.n_tokens());
    tokens += v.input.n_tokens();
    index::Segment s = segment;
    s.modality = modality_name(pipeline::view_modality(v.view, item_modality));
    const size_t slot = p.segments.size();
    p.segments.push_back(std::move(s));
    std::vector<model::PreparedInput> group;
    group.push_back(std::move(v.input));
    batcher_.add(std::move(group), [&p, slot](std::vector<model::Embedding> e, double) {
      if (p.failed) return;
      if (!e.front().error.empty()) p.vector_error = e.front().error;
      p.segments[slot].vector = std::move(e.front().vector);
      p.segments[slot].n_tokens = e.front().n_tokens;
    });
  }
  return tokens;
}

int64_t Indexer::queue_text_windows(const std::string& text, Pending& p) {
  const index::IndexSettings& s = store_.settings();
  const auto windows = text_windows(encoder_.model().tokenizer(), text, s.text_window, s.text_overlap);
  int64_t tokens = 0;
  for (size_t i = 0; i < windows.size(); ++i) {
    const std::string piece = text.substr(windows[i].begin, windows[i].end - windows[i].begin);
    index::Segment seg;
    seg.index = static_cast<int64_t>(i);
    seg.modality = modality_name(Modality::Text);
    if (windows.size() > 1) {
      seg.unit = "char";
      seg.start = static_cast<double>(char_offset(text, windows[i].begin));
      seg.end = static_cast<double>(char_offset(text, windows[i].end));
    }
    seg.preview = preview_of(piece);
    pipeline::EmbedItem item;
    item.role = options_.role;
    item.text = piece;
    tokens += queue_segment(std::move(seg), pipeline::prepare_views(encoder_, item), p);
  }
  return tokens;
}

int64_t Indexer::queue_audio_windows(const SourceSpec& spec, const std::string& text, Pending& p,
                                     const std::function<void(const std::string&)>& progress) {
  const index::IndexSettings& s = store_.settings();
  const fs::path& path = spec.item.audios.front();
  AudioWindows windows(path, s.media_window, s.media_overlap);  // its errors name the file
  int64_t tokens = 0;
  AudioWindows::Window w;
  while (windows.next(w)) {
    index::Segment seg;
    seg.index = static_cast<int64_t>(p.segments.size());
    seg.modality = modality_name(spec.modality);
    seg.unit = std::string("s");  // (not = "s": GCC 12 warns falsely, -Wrestrict, on the inlined assign)
    seg.start = w.start;
    seg.end = w.end;
    seg.preview = preview_of(text);
    model::AudioClip clip{fmt::format("{} at {:.0f} s", path.string(), w.start), std::move(w.samples), false};
    std::vector<pipeline::PreparedView> views;
    views.push_back({pipeline::View::Whole, encoder_.embedder().prepare(options_.role, text, {}, {clip})});
    tokens += queue_segment(std::move(seg), std::move(views), p);
    // Windows are embedded as soon as a forward pass' worth is queued, so a long file never sits in memory.
    if (batcher_.pending_tokens() == 0) progress(fmt::format("{} ({:.0f} s embedded)", spec.path, w.end));
  }
  return tokens;
}

int64_t Indexer::queue_video_windows(const SourceSpec& spec, const std::string& text, Pending& p,
                                     const std::function<void(const std::string&)>& progress) {
  const index::IndexSettings& s = store_.settings();
  const fs::path& path = spec.item.videos.front();
  const model::Embedder& embedder = encoder_.embedder();
  const media::VideoInfo info = media::probe_video(path);  // its errors name the file
  const std::vector<media::VideoRange> windows = media::video_windows(info, s.media_window, s.media_overlap);
  if (windows.size() == 1) return queue_whole(spec, text, p);  // no longer than a window: embedded as a whole video
  const bool late = encoder_.options().late_fusion;
  const model::Fusion fusion = embedder.options().fusion;
  const bool sound_alone = !late && fusion == model::Fusion::Audio;
  // Each window's sound is cut from the track as the windows come (none is needed for the frames alone).
  std::optional<AudioCuts> sound;
  const bool wants_sound = late || fusion != model::Fusion::Video;
  if (info.has_audio && wants_sound) sound.emplace(path);
  if (!info.has_audio && wants_sound && !sound_alone)  // said once for the file, not for each window
    log_warn("{}: the video has no audio track; the frames of its {} windows are embedded alone", path.string(),
             windows.size());
  int64_t tokens = 0;
  const auto queue_window = [&](size_t i, media::VideoFrames&& frames) {
    const media::VideoRange& w = windows[i];
    model::VideoClip clip;
    clip.name = fmt::format("{} at {:.0f} s", path.string(), w.start);
    clip.frames = std::move(frames);
    clip.silence_reported = !info.has_audio;
    if (sound) {
      clip.sound = {clip.name, sound->take(w.start, w.end), false};
      clip.has_sound = std::ssize(clip.sound.samples) >= MIN_AUDIO_SAMPLES;  // the track may end before the frames
    }
    if (sound_alone && !clip.has_sound) {
      log_warn("{}: the sound ends before this window; it is not indexed (--fusion audio)", clip.name);
      return;
    }
    index::Segment seg;
    seg.index = static_cast<int64_t>(i);
    seg.modality = modality_name(spec.modality);
    seg.unit = std::string("s");  // (not = "s": GCC 12 warns falsely, -Wrestrict, on the inlined assign)
    seg.start = w.start;
    seg.end = w.end;
    seg.preview = preview_of(text);
    tokens += queue_segment(std::move(seg), pipeline::prepare_views(encoder_, options_.role, text, std::move(clip)), p);
    // Windows are embedded as soon as a forward pass' worth is queued, so a long video never sits in memory.
    if (batcher_.pending_tokens() == 0) progress(fmt::format("{} ({:.0f} s embedded)", spec.path, w.end));
  };
  if (sound_alone) {
    if (!sound) throw InvalidInput(fmt::format("{}: the video has no sound to embed (--fusion audio)", path.string()));
    for (size_t i = 0; i < windows.size(); ++i) queue_window(i, {});
    return tokens;
  }
  const size_t decoded = media::decode_video_ranges(path, embedder.options().video, info, windows, queue_window);
  if (decoded < windows.size())
    log_warn("{}: the video ends early (a damaged file): {} of its {} windows are indexed", path.string(), decoded,
             windows.size());
  return tokens;
}

int64_t Indexer::queue_whole(const SourceSpec& spec, const std::string& text, Pending& p) {
  index::Segment seg;
  seg.modality = modality_name(spec.modality);
  seg.preview = preview_of(text);
  // Several clips or videos in one entry, or media_window 0: one item, each clip cut to the clip length, each video's
  // frames sampled over its whole length (--fps, at most --max-frames).
  pipeline::EmbedItem item = spec.item;
  item.role = options_.role;
  item.text = text;
  return queue_segment(std::move(seg), pipeline::prepare_views(encoder_, item), p);
}

int64_t Indexer::queue_source(const SourceSpec& spec, Pending& p,
                              const std::function<void(const std::string&)>& progress) {
  const std::string text = spec.text_from_file ? read_text_source(spec.file, options_.max_text_bytes) : spec.item.text;
  const pipeline::EmbedItem& it = spec.item;
  if (it.audios.size() == 1 && it.images.empty() && it.videos.empty() && store_.settings().media_window > 0)
    return queue_audio_windows(spec, text, p, progress);
  if (it.videos.size() == 1 && it.images.empty() && it.audios.empty() && store_.settings().media_window > 0)
    return queue_video_windows(spec, text, p, progress);
  if (!it.has_media()) return queue_text_windows(text, p);
  return queue_whole(spec, text, p);
}

void Indexer::commit(IndexReport& report) {
  batcher_.flush();
  if (pending_.empty()) return;
  std::vector<index::Store::SourceUpdate> updates;
  for (Pending& p : pending_) {
    if (p.record.status == "ok" && !p.vector_error.empty()) {  // never stored as if it were good
      report.failures.emplace_back(p.record.path, p.vector_error);
      ++report.failed;
      p.record.status = "failed";
      p.record.error = p.vector_error;
      p.segments.clear();
    }
    if (p.record.status == "ok") {
      (p.existed ? report.updated : report.added) += 1;
      report.segments += static_cast<int64_t>(p.segments.size());
    }
    updates.push_back({std::move(p.record), std::move(p.segments)});
  }
  pending_.clear();
  store_.put(updates);
}

IndexReport Indexer::run(const Discovery& found, const IndexProgress& progress) {
  Timer timer;
  IndexReport report;
  std::set<std::string> seen;
  const int64_t total = static_cast<int64_t>(found.sources.size());
  int64_t done = 0, queued = 0;
  for (const SourceSpec& spec : found.sources) {
    if (progress) progress(done, total, spec.path);
    ++done;
    if (!seen.insert(spec.key).second) continue;  // the same file reached through two inputs
    const std::optional<index::SourceRecord> stored = store_.find_source(spec.key);
    Pending& p = pending_.emplace_back();
    p.existed = stored.has_value();
    p.record = {0, spec.key, spec.path, spec.origin, "", 0, modality_name(spec.modality), 0, "ok", ""};
    auto fail = [&](const std::string& why) {
      report.failures.emplace_back(spec.path, why);
      ++report.failed;
      p.failed = true;
      p.record.status = "failed";
      p.record.error = why;
      p.segments.clear();
    };
    try {
      p.record.content_hash = content_hash(spec, p.record);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Internal) throw;
      fail(e.what());
      // Unreadable now: what was indexed before is kept.
      if (stored && stored->status == "ok") pending_.pop_back();
      continue;
    }
    if (stored && stored->status == "ok" && stored->content_hash == p.record.content_hash) {
      ++report.unchanged;
      pending_.pop_back();
      continue;
    }
    try {
      queued += queue_source(spec, p, [&](const std::string& what) {
        if (progress) progress(done - 1, total, what);
      });
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Internal) throw;
      fail(e.what());
    } catch (const std::bad_alloc&) {
      fail("out of memory while decoding and preparing it (lower the media budgets)");
    }
    if (queued >= options_.batch_tokens) {
      commit(report);
      queued = 0;
    }
  }
  commit(report);
  if (progress) progress(total, total, "");
  remove_gone(found, seen, report);
  report.seconds = timer.seconds();
  return report;
}

void Indexer::remove_gone(const Discovery& found, const std::set<std::string>& seen, IndexReport& report) {
  // Stored sources of these origins that were not found again.
  std::set<std::string> origins(found.origins.begin(), found.origins.end());
  std::vector<std::string> gone;
  for (const auto& s : store_.sources())
    if (origins.count(s.origin) && !seen.count(s.key)) gone.push_back(s.key);
  if (options_.prune)
    report.removed = store_.remove(gone);
  else
    report.missing = static_cast<int64_t>(gone.size());
}

}  // namespace oe::ingest
