#include "index/indexer.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/timer.h"
#include "io/hash.h"
#include "media/audio.h"

namespace oe::index {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uintmax_t MAX_TEXT_FILE_BYTES = 64ull << 20;
constexpr size_t PREVIEW_CHARS = 160;

bool is_utf8_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Code points in text[0, end).
int64_t char_offset(const std::string& text, size_t end) {
  int64_t n = 0;
  for (size_t i = 0; i < end; ++i) n += !is_utf8_continuation(static_cast<unsigned char>(text[i]));
  return n;
}

// The first `max_chars` code points, whitespace runs collapsed to one space.
std::string preview_of(std::string_view text) {
  std::string out;
  size_t chars = 0;
  bool space = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (!is_utf8_continuation(c)) {
      if (chars == PREVIEW_CHARS) break;
      if (space) {
        out += ' ';
        ++chars;
        space = false;
      }
      ++chars;
    }
    out += static_cast<char>(c);
  }
  return out;
}

std::string absolute_string(const fs::path& p) {
  std::error_code ec;
  fs::path a = fs::weakly_canonical(fs::absolute(p), ec);
  return (ec ? fs::absolute(p).lexically_normal() : a).string();
}

std::vector<fs::path> manifest_paths(const json& v, const char* key, const fs::path& base) {
  std::vector<fs::path> out;
  auto add = [&](const json& e) {
    if (!e.is_string() || e.get<std::string>().empty())
      throw InvalidInput(fmt::format("\"{}\" must be a file path or a list of file paths", key));
    fs::path p = e.get<std::string>();
    out.push_back(p.is_absolute() ? p : base / p);
  };
  if (v.is_array()) {
    for (const auto& e : v) add(e);
  } else if (!v.is_null()) {
    add(v);
  }
  return out;
}

void read_manifest(const fs::path& manifest, Discovery& d) {
  const std::string origin = absolute_string(manifest);
  std::ifstream in(manifest);
  if (!in) {
    d.errors.push_back(fmt::format("{}: cannot open the manifest", manifest.string()));
    return;
  }
  const fs::path base = fs::path(origin).parent_path();
  std::set<std::string> seen;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      json j = json::parse(line);
      if (!j.is_object()) throw InvalidInput("expected a JSON object");
      const json* idv = j.contains("id") ? &j["id"] : j.contains("_id") ? &j["_id"] : nullptr;
      if (!idv || !(idv->is_string() || idv->is_number_integer()))
        throw InvalidInput("every entry needs an \"id\" (a string or an integer)");
      const std::string id = idv->is_string() ? idv->get<std::string>() : std::to_string(idv->get<int64_t>());
      if (id.empty()) throw InvalidInput("\"id\" is empty");
      if (!seen.insert(id).second) throw InvalidInput(fmt::format("id \"{}\" appears twice", id));
      SourceSpec s;
      s.key = origin + "#" + id;
      s.id = id;
      s.origin = origin;
      s.manifest_line = j.dump();
      for (const char* k : {"title", "text"})
        if (j.contains(k) && !j[k].is_string() && !j[k].is_null())
          throw InvalidInput(fmt::format("\"{}\" must be a string", k));
      const std::string title = j.value("title", json("")).is_string() ? j.value("title", std::string()) : "";
      const std::string body = j.contains("text") && j["text"].is_string() ? j["text"].get<std::string>() : "";
      // BEIR joins title and text with a space and strips the result (and so does MTEB).
      s.text = title.empty() ? body : title + " " + body;
      const size_t b = s.text.find_first_not_of(" \t\r\n"), e = s.text.find_last_not_of(" \t\r\n");
      s.text = b == std::string::npos ? "" : s.text.substr(b, e - b + 1);
      if (j.contains("image")) s.images = manifest_paths(j["image"], "image", base);
      if (j.contains("audio")) s.audio = manifest_paths(j["audio"], "audio", base);
      if (j.contains("video")) s.video = manifest_paths(j["video"], "video", base);
      const int kinds = !s.text.empty() + !s.images.empty() + !s.audio.empty() + !s.video.empty();
      if (kinds == 0 && !j.contains("text"))
        throw InvalidInput("the entry has no \"text\", \"image\", \"audio\" or \"video\"");
      s.modality = kinds > 1            ? "mixed"
                   : !s.images.empty()  ? "image"
                   : !s.audio.empty()   ? "audio"
                   : !s.video.empty()   ? "video"
                                        : "text";
      s.path = !s.images.empty() ? s.images[0].string()
               : !s.audio.empty() ? s.audio[0].string()
               : !s.video.empty() ? s.video[0].string()
                                  : manifest.filename().string() + "#" + id;
      d.sources.push_back(std::move(s));
    } catch (const json::exception& e) {
      d.errors.push_back(fmt::format("{} line {}: not valid JSON ({})", manifest.string(), n, e.what()));
    } catch (const InvalidInput& e) {
      d.errors.push_back(fmt::format("{} line {}: {}", manifest.string(), n, e.what()));
    }
  }
}

SourceSpec file_source(const fs::path& file, const std::string& modality, const std::string& origin) {
  SourceSpec s;
  s.key = s.path = absolute_string(file);
  s.origin = origin;
  s.modality = modality;
  s.file = file;
  if (modality == "text") s.text_from_file = true;
  if (modality == "image") s.images = {file};
  if (modality == "audio") s.audio = {file};
  if (modality == "video") s.video = {file};
  return s;
}

}  // namespace

std::string modality_of_file(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::map<std::string, std::string> table = {
      {".txt", "text"},   {".md", "text"},    {".markdown", "text"}, {".png", "image"},  {".jpg", "image"},
      {".jpeg", "image"}, {".webp", "image"}, {".bmp", "image"},     {".gif", "image"},  {".tif", "image"},
      {".tiff", "image"}, {".wav", "audio"},  {".mp3", "audio"},     {".flac", "audio"}, {".ogg", "audio"},
      {".m4a", "audio"},  {".opus", "audio"}, {".mp4", "video"},     {".mkv", "video"},  {".webm", "video"},
      {".mov", "video"},  {".avi", "video"}};
  auto it = table.find(ext);
  return it == table.end() ? "" : it->second;
}

Discovery discover(const std::vector<fs::path>& inputs, const fs::path& skip) {
  Discovery d;
  const std::string skip_abs = skip.empty() ? "" : absolute_string(skip);
  for (const auto& input : inputs) {
    std::error_code ec;
    if (!fs::exists(input, ec)) throw InvalidInput(fmt::format("{} does not exist", input.string()));
    const std::string origin = absolute_string(input);
    d.origins.push_back(origin);
    if (fs::is_directory(input, ec)) {
      std::vector<fs::path> files;
      fs::recursive_directory_iterator it(input, fs::directory_options::skip_permission_denied, ec), end;
      if (ec) d.errors.push_back(fmt::format("{}: cannot read the folder ({})", input.string(), ec.message()));
      for (; !ec && it != end; it.increment(ec)) {
        const fs::path& p = it->path();
        const std::string name = p.filename().string();
        const bool dir = it->is_directory(ec);
        if ((!name.empty() && name[0] == '.') || (!skip_abs.empty() && absolute_string(p) == skip_abs)) {
          if (dir) it.disable_recursion_pending();
          continue;
        }
        if (!dir && it->is_regular_file(ec)) files.push_back(p);
      }
      if (ec)
        d.errors.push_back(fmt::format("{}: walking the folder stopped early ({})", input.string(), ec.message()));
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        const std::string m = modality_of_file(f);
        if (m.empty()) {
          ++d.ignored;
          continue;
        }
        d.sources.push_back(file_source(f, m, origin));
      }
    } else if (input.extension() == ".jsonl") {
      read_manifest(input, d);
    } else {
      const std::string m = modality_of_file(input);
      if (m.empty())
        d.errors.push_back(fmt::format("{}: unknown file type (text: .txt .md; images: .png .jpg .webp .bmp .gif .tif; "
                                       "manifests: .jsonl)",
                                       input.string()));
      else
        d.sources.push_back(file_source(input, m, origin));
    }
  }
  return d;
}

std::vector<TextWindow> text_windows(const text::Tokenizer& tokenizer, const std::string& text, int64_t window,
                                     int64_t overlap) {
  if (window <= 0 || static_cast<int64_t>(tokenizer.encode(text).size()) <= window) return {{0, text.size()}};
  // Words: [whitespace][non-whitespace] runs, each with its token count.
  struct Word {
    size_t begin, end;
    int64_t tokens;
  };
  std::vector<Word> words;
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; };
  for (size_t i = 0; i < text.size();) {
    size_t j = i;
    while (j < text.size() && is_space(text[j])) ++j;
    while (j < text.size() && !is_space(text[j])) ++j;
    words.push_back({i, j, static_cast<int64_t>(tokenizer.encode(std::string_view(text).substr(i, j - i)).size())});
    i = j;
  }
  overlap = std::clamp<int64_t>(overlap, 0, window - 1);
  std::vector<TextWindow> out;
  for (size_t first = 0; first < words.size();) {
    size_t last = first;  // exclusive
    int64_t tokens = 0;
    while (last < words.size() && (last == first || tokens + words[last].tokens <= window))
      tokens += words[last++].tokens;
    out.push_back({words[first].begin, words[last - 1].end});
    if (last == words.size()) break;
    // The next window starts so that it repeats at most `overlap` tokens of this one, and always moves on.
    size_t next = last;
    int64_t shared = 0;
    while (next > first + 1 && shared + words[next - 1].tokens <= overlap) shared += words[--next].tokens;
    first = next;
  }
  return out;
}

std::string embedding_settings_json(const model::EmbedOptions& o) {
  nlohmann::ordered_json j;
  j["system_prompt"] = o.prompts.system_prompt;
  j["query_prefix"] = o.prompts.query_prefix;
  j["document_prefix"] = o.prompts.document_prefix;
  j["attention"] = o.attention == model::AttentionMode::Causal ? "causal" : "bidirectional";
  j["max_tokens"] = o.max_tokens;
  j["image_min_pixels"] = o.image_min_pixels;
  j["image_max_pixels"] = o.image_max_pixels;
  j["exif_orientation"] = o.image_decode.apply_exif_orientation;
  j["audio_max_samples"] = o.audio_max_samples;
  // Video settings are recorded only when they differ from the defaults, so indexes made before videos were
  // supported keep matching the settings of a plain run.
  const model::EmbedOptions defaults;
  const media::VideoOptions& v = o.video;
  const media::VideoOptions& d = defaults.video;
  if (o.fusion != defaults.fusion || v.pipeline != d.pipeline || v.fps != d.fps || v.min_pixels != d.min_pixels ||
      v.max_pixels != d.max_pixels || v.max_frames != d.max_frames) {
    j["video"] = {{"fusion", model::fusion_name(o.fusion)},
                  {"pipeline", v.pipeline == media::VideoPipeline::St ? "st" : "card"},
                  {"fps", v.fps},
                  {"min_pixels", v.min_pixels},
                  {"max_pixels", v.max_pixels},
                  {"max_frames", v.max_frames}};
  }
  return j.dump();
}

model::EmbedOptions embed_options_from_settings(const std::string& settings_json, model::EmbedOptions base) {
  try {
    const json j = json::parse(settings_json);
    base.prompts.system_prompt = j.at("system_prompt").get<std::string>();
    base.prompts.query_prefix = j.at("query_prefix").get<std::string>();
    base.prompts.document_prefix = j.at("document_prefix").get<std::string>();
    base.attention = j.at("attention").get<std::string>() == "causal" ? model::AttentionMode::Causal
                                                                      : model::AttentionMode::Bidirectional;
    base.max_tokens = j.at("max_tokens").get<int64_t>();
    base.image_min_pixels = j.at("image_min_pixels").get<int64_t>();
    base.image_max_pixels = j.at("image_max_pixels").get<int64_t>();
    base.image_decode.apply_exif_orientation = j.at("exif_orientation").get<bool>();
    base.audio_max_samples = j.at("audio_max_samples").get<int64_t>();
    if (j.contains("video")) {
      const json& v = j["video"];
      base.fusion = model::parse_fusion(v.at("fusion").get<std::string>());
      base.video.pipeline = v.at("pipeline").get<std::string>() == "st" ? media::VideoPipeline::St
                                                                        : media::VideoPipeline::Card;
      base.video.fps = v.at("fps").get<double>();
      base.video.min_pixels = v.at("min_pixels").get<int64_t>();
      base.video.max_pixels = v.at("max_pixels").get<int64_t>();
      base.video.max_frames = v.at("max_frames").get<int64_t>();
    }
  } catch (const json::exception& e) {
    throw InvalidInput(fmt::format("unreadable embedding settings in the index ({})", e.what()));
  }
  return base;
}

// A source on its way into the store: its record and the prepared inputs of its segments.
struct Indexer::Pending {
  SourceRecord record;
  std::vector<Segment> segments;
  std::vector<model::PreparedInput> inputs;
  bool existed = false;
};

Indexer::Indexer(const model::Embedder& embedder, Store& store, IndexerOptions options)
    : embedder_(embedder), store_(store), options_(options) {}

void Indexer::embed_inputs(std::vector<Pending*> pending) {
  // Embed every prepared segment, in forward passes of about batch_tokens. The inputs of a source belong to its
  // last segments (earlier ones may have been embedded already, see run()).
  std::vector<model::PreparedInput*> all;
  std::vector<Segment*> targets;
  for (Pending* p : pending) {
    const size_t first = p->segments.size() - p->inputs.size();
    for (size_t i = 0; i < p->inputs.size(); ++i) {
      all.push_back(&p->inputs[i]);
      targets.push_back(&p->segments[first + i]);
    }
  }
  for (size_t i = 0; i < all.size();) {
    std::vector<model::PreparedInput> batch;
    int64_t tokens = 0;
    size_t j = i;
    while (j < all.size() && (j == i || tokens + all[j]->n_tokens() <= options_.batch_tokens)) {
      tokens += all[j]->n_tokens();
      batch.push_back(std::move(*all[j]));
      ++j;
    }
    auto embs = embedder_.embed_prepared(batch);
    for (size_t k = 0; k < embs.size(); ++k) {
      targets[i + k]->vector = std::move(embs[k].vector);
      targets[i + k]->n_tokens = embs[k].n_tokens;
    }
    i = j;
  }
  for (Pending* p : pending) p->inputs.clear();
}

void Indexer::flush(std::vector<Pending>& pending, IndexReport& report) {
  if (pending.empty()) return;
  std::vector<Pending*> all;
  for (auto& p : pending) all.push_back(&p);
  embed_inputs(all);
  std::vector<Store::SourceUpdate> updates;
  for (auto& p : pending) {
    if (p.record.status == "ok") {
      (p.existed ? report.updated : report.added) += 1;
      report.segments += static_cast<int64_t>(p.segments.size());
    }
    updates.push_back({std::move(p.record), std::move(p.segments)});
  }
  store_.put(updates);
  pending.clear();
}

void Indexer::add_audio_windows(const SourceSpec& spec, const std::string& text, Pending& p,
                                const std::function<void(const std::string&)>& progress) {
  const IndexSettings& settings = store_.settings();
  const fs::path& path = spec.audio.front();
  media::AudioStream stream(path);  // its errors name the file
  const double rate = static_cast<double>(stream.target_rate());
  const int64_t window = std::llround(settings.media_window * rate);
  const int64_t step = window - std::llround(settings.media_overlap * rate);
  OE_CHECK(window > 0 && step > 0, "media window {} s, overlap {} s", settings.media_window, settings.media_overlap);
  // The audio is read once, window by window; windows are embedded as soon as a forward pass' worth is prepared, so
  // memory holds one pass of features and the vectors, whatever the file's length.
  std::vector<float> buffer;
  int64_t start = 0, tokens = 0;
  for (;;) {
    int64_t fresh = 0;
    while (static_cast<int64_t>(buffer.size()) < window) {
      const int64_t n = stream.read(window - static_cast<int64_t>(buffer.size()), buffer);
      if (n == 0) break;
      fresh += n;
    }
    // The previous window ended with the stream; a tail too short for one audio token (under 21 ms) is dropped.
    if (start > 0 && (fresh == 0 || buffer.size() < 2 * 160 + 1)) break;
    if (buffer.empty()) throw InvalidInput(fmt::format("{}: the audio stream has no samples", path.string()));
    const bool more = static_cast<int64_t>(buffer.size()) == window;
    Segment seg;
    seg.index = static_cast<int64_t>(p.segments.size());
    seg.modality = spec.modality;
    seg.unit = "s";
    seg.start = static_cast<double>(start) / rate;
    seg.end = static_cast<double>(start + static_cast<int64_t>(buffer.size())) / rate;
    seg.preview = preview_of(text);
    model::AudioClip clip{fmt::format("{} at {:.0f} s", path.string(), seg.start), buffer, false};
    p.inputs.push_back(embedder_.prepare(options_.role, text, {}, {clip}));
    p.segments.push_back(std::move(seg));
    tokens += p.inputs.back().n_tokens();
    if (tokens >= options_.batch_tokens) {
      embed_inputs({&p});
      tokens = 0;
      progress(fmt::format("{} ({:.0f} s embedded)", spec.path, static_cast<double>(start) / rate));
    }
    if (!more) break;
    buffer.erase(buffer.begin(), buffer.begin() + step);
    start += step;
  }
}

IndexReport Indexer::run(const Discovery& found, const IndexProgress& progress) {
  Timer timer;
  IndexReport report;
  const IndexSettings& settings = store_.settings();
  std::vector<Pending> pending;
  int64_t pending_tokens = 0;
  std::set<std::string> seen;
  const int64_t total = static_cast<int64_t>(found.sources.size());
  int64_t done = 0;
  for (const SourceSpec& spec : found.sources) {
    if (progress) progress(done, total, spec.path);
    ++done;
    if (!seen.insert(spec.key).second) continue;  // the same file reached through two inputs
    const std::optional<SourceRecord> stored = store_.find_source(spec.key);
    Pending p;
    p.existed = stored.has_value();
    SourceRecord& r = p.record;
    r.key = spec.key;
    r.path = spec.path;
    r.origin = spec.origin;
    r.modality = spec.modality;
    r.status = "ok";
    auto fail = [&](const std::string& why) {
      report.failures.emplace_back(spec.path, why);
      ++report.failed;
      r.status = "failed";
      r.error = why;
      p.segments.clear();
      p.inputs.clear();
    };
    // The content hash: what is embedded and how it is cut.
    try {
      io::Sha256 h;
      h.update(spec.manifest_line).update(std::string_view("\0", 1));
      h.update(fmt::format("text_window={};text_overlap={};media_window={};media_overlap={}\n", settings.text_window,
                           settings.text_overlap, settings.media_window, settings.media_overlap));
      if (!spec.file.empty()) {
        std::error_code ec;
        r.size = static_cast<int64_t>(fs::file_size(spec.file, ec));
        h.update_file(spec.file);
      }
      for (const auto* list : {&spec.images, &spec.audio, &spec.video})
        for (const auto& f : *list)
          if (f != spec.file) h.update(f.string()).update(std::string_view("\0", 1)).update_file(f);
      r.content_hash = h.hex();
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Internal) throw;
      // Unreadable now: keep what was indexed before, report it, and move on.
      report.failures.emplace_back(spec.path, e.what());
      ++report.failed;
      if (stored && stored->status == "ok") continue;
      fail(e.what());
      pending.push_back(std::move(p));
      continue;
    }
    if (stored && stored->status == "ok" && stored->content_hash == r.content_hash) {
      ++report.unchanged;
      continue;
    }
    try {
      std::string text = spec.text;
      if (spec.text_from_file) {
        std::error_code ec;
        if (fs::file_size(spec.file, ec) > MAX_TEXT_FILE_BYTES)
          throw InvalidInput(fmt::format("text file larger than {} MiB", MAX_TEXT_FILE_BYTES >> 20));
        std::ifstream in(spec.file, std::ios::binary);
        std::ostringstream ss;
        ss << in.rdbuf();
        if (!in) throw IoError("cannot read the file");
        text = ss.str();
        if (text.find_first_not_of(" \t\r\n") == std::string::npos) throw InvalidInput("the text file is empty");
      }
      if (spec.audio.size() == 1 && spec.images.empty() && spec.video.empty() && settings.media_window > 0) {
        add_audio_windows(spec, text, p, [&](const std::string& what) {
          if (progress) progress(done - 1, total, what);
        });
      } else if (spec.images.empty() && spec.audio.empty() && spec.video.empty()) {
        const auto windows =
            text_windows(embedder_.model().tokenizer(), text, settings.text_window, settings.text_overlap);
        for (size_t i = 0; i < windows.size(); ++i) {
          const std::string piece = text.substr(windows[i].begin, windows[i].end - windows[i].begin);
          Segment seg;
          seg.index = static_cast<int64_t>(i);
          seg.modality = "text";
          if (windows.size() > 1) {
            seg.unit = "char";
            seg.start = static_cast<double>(char_offset(text, windows[i].begin));
            seg.end = static_cast<double>(char_offset(text, windows[i].end));
          }
          seg.preview = preview_of(piece);
          model::EmbedRequest req;
          req.role = options_.role;
          req.text = piece;
          p.inputs.push_back(embedder_.prepare(req));
          p.segments.push_back(std::move(seg));
        }
      } else {
        Segment seg;
        seg.modality = spec.modality;
        seg.preview = preview_of(text);
        model::EmbedRequest req;
        req.role = options_.role;
        req.text = text;
        req.images = spec.images;
        // Several clips in one entry, or media_window 0: one item, each clip cut to the clip length.
        req.audios = spec.audio;
        // A video is one item, its frames sampled over its whole length (--fps, at most --max-frames).
        req.videos = spec.video;
        if (!req.videos.empty() && embedder_.options().fusion == model::Fusion::Late) {
          // Late fusion: the frames view, and the sound view as a second vector of the same segment.
          p.inputs.push_back(embedder_.prepare(req, model::Fusion::Video));
          p.segments.push_back(seg);
          if (p.inputs.back().silent_videos == 0) {
            p.inputs.push_back(embedder_.prepare(req, model::Fusion::Audio));
            seg.modality = SOUND_VIEW;
            p.segments.push_back(std::move(seg));
          }
        } else {
          p.inputs.push_back(embedder_.prepare(req));
          p.segments.push_back(std::move(seg));
        }
      }
      for (const auto& in : p.inputs) {
        if (in.truncated)
          log_warn("{}: {} tokens truncated to {} (the model's context limit)", spec.path, in.original_tokens,
                   in.n_tokens());
        pending_tokens += in.n_tokens();
      }
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::Internal) throw;
      fail(e.what());
    }
    pending.push_back(std::move(p));
    if (pending_tokens >= options_.batch_tokens) {
      flush(pending, report);
      pending_tokens = 0;
    }
  }
  flush(pending, report);
  if (progress) progress(total, total, "");

  // Stored sources of these origins that were not found again.
  std::set<std::string> origins(found.origins.begin(), found.origins.end());
  std::vector<std::string> gone;
  for (const auto& s : store_.sources())
    if (origins.count(s.origin) && !seen.count(s.key)) gone.push_back(s.key);
  if (options_.prune) {
    report.removed = store_.remove(gone);
  } else {
    report.missing = static_cast<int64_t>(gone.size());
  }
  report.seconds = timer.seconds();
  return report;
}

}  // namespace oe::index
