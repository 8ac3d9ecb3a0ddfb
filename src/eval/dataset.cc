#include "eval/dataset.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/timer.h"
#include "index/indexer.h"
#include "index/knn.h"
#include "index/late_fusion.h"
#include "io/atomic_file.h"
#include "io/hash.h"

namespace oe::eval {
namespace {

namespace fs = std::filesystem;

const std::set<std::string> MODES = {"all", "text", "image", "audio", "video"};

// Keeps only the content of `mode`; false when nothing is left.
bool restrict_to(index::SourceSpec& s, const std::string& mode) {
  if (mode == "all") return true;
  if (mode != "text") s.text.clear();
  if (mode != "image") s.images.clear();
  if (mode != "audio") s.audio.clear();
  if (mode != "video") s.video.clear();
  s.modality = mode;
  const bool empty = s.text.empty() && s.images.empty() && s.audio.empty() && s.video.empty();
  // The hash must tell the modes apart even when the manifest line is the same.
  s.manifest_line += "\nmode=" + mode;
  return !empty;
}

struct Embedded {
  std::vector<std::string> ids;  // row -> manifest id
  std::vector<float> matrix;
  std::vector<uint8_t> sound;    // row -> 1 for the sound vector of a video in late fusion
  int64_t embedded = 0;
};

// Embeds `found` into the store at `dir` (re-using what is there) and returns the vectors of found's ids.
Embedded embed_into(const model::Embedder& embedder, const index::IndexSettings& settings, const fs::path& dir,
                    const index::Discovery& found, text::Role role, int64_t batch_tokens,
                    std::vector<std::pair<std::string, std::string>>& failures,
                    const std::function<void(int64_t, int64_t)>& progress) {
  auto store = index::Store::open_for_writing(dir, settings, /*reset_on_mismatch=*/true);
  index::IndexerOptions io;
  io.batch_tokens = batch_tokens;
  io.prune = true;  // the cache holds exactly this corpus
  io.role = role;
  index::Indexer indexer(embedder, *store, io);
  const auto report = indexer.run(found, [&](int64_t done, int64_t total, const std::string&) {
    if (progress) progress(done, total);
  });
  std::map<std::string, std::string> id_of_key;
  for (const auto& s : found.sources) id_of_key[s.key] = s.id;
  for (const auto& [path, why] : report.failures) failures.emplace_back(path, why);
  Embedded out;
  out.embedded = report.segments;
  std::vector<int64_t> item_ids;
  store->load_vectors(item_ids, out.matrix);
  const auto keys = store->item_keys();
  for (int64_t id : item_ids) {
    auto it = id_of_key.find(keys.at(id));
    OE_CHECK(it != id_of_key.end(), "cached vector of an unknown item");
    out.ids.push_back(it->second);
  }
  for (const auto& hit : store->describe(item_ids)) out.sound.push_back(hit.modality == index::SOUND_VIEW ? 1 : 0);
  OE_CHECK(out.sound.size() == out.ids.size());
  return out;
}

}  // namespace

DatasetRun run_dataset(const model::Embedder& embedder, const std::string& model_name, const DatasetOptions& o,
                       const DatasetProgress& progress) {
  Timer timer;
  if (!MODES.count(o.modality))
    throw InvalidInput(fmt::format("modality '{}': expected all, text, image, audio or video", o.modality));
  const fs::path corpus_path = o.dataset / "corpus.jsonl", queries_path = o.dataset / "queries.jsonl",
                 qrels_path = o.dataset / "qrels" / (o.split + ".tsv");
  for (const auto& p : {corpus_path, queries_path, qrels_path})
    if (!fs::is_regular_file(p))
      throw InvalidInput(fmt::format("{} is not a BEIR dataset: {} is missing", o.dataset.string(), p.string()));

  DatasetRun r;
  r.modality = o.modality;
  r.qrels = with_context("reading qrels", [&] { return read_qrels(qrels_path, QrelsFormat::BeirTsv); });

  index::Discovery corpus = index::discover({corpus_path});
  index::Discovery queries = index::discover({queries_path});
  for (const auto& e : corpus.errors) r.failures.emplace_back("corpus", e);
  for (const auto& e : queries.errors) r.failures.emplace_back("queries", e);
  std::set<std::string> corpus_ids;
  {
    std::vector<index::SourceSpec> kept;
    for (auto& s : corpus.sources) {
      corpus_ids.insert(s.id);
      if (restrict_to(s, o.modality))
        kept.push_back(std::move(s));
      else
        ++r.left_out;
    }
    corpus.sources = std::move(kept);
  }
  r.corpus_size = static_cast<int64_t>(corpus.sources.size());
  // Only judged queries are run (as BEIR does).
  {
    std::vector<index::SourceSpec> kept;
    for (auto& s : queries.sources)
      if (r.qrels.count(s.id)) kept.push_back(std::move(s));
    queries.sources = std::move(kept);
  }
  r.queries = static_cast<int64_t>(queries.sources.size());
  int64_t unknown = 0;
  for (const auto& [qid, docs] : r.qrels)
    for (const auto& [docid, rel] : docs) unknown += !corpus_ids.count(docid);
  if (unknown > 0)
    r.warnings.push_back(fmt::format("{}: {} judgment(s) name corpus ids that are not in {}; they count as relevant "
                                     "documents never retrieved",
                                     qrels_path.string(), unknown, corpus_path.string()));
  if (r.corpus_size == 0)
    throw InvalidInput(fmt::format("{}: no corpus item has {} content", o.dataset.string(), o.modality));
  if (r.queries == 0)
    throw InvalidInput(
        fmt::format("{}: no query of queries.jsonl is judged in {}", o.dataset.string(), qrels_path.string()));

  // The cache folder is keyed by what changes the vectors: the weights and the embedding settings.
  const model::Model& model = embedder.model();
  index::IndexSettings settings;
  settings.model = model_name;
  settings.model_fingerprint = model.fingerprint();
  settings.embedding = index::embedding_settings_json(embedder.options());
  settings.dim = model.config().text.d_model;
  settings.text_window = 0;  // documents are embedded whole (truncated at the context limit), as BEIR does
  settings.media_window = 0;  // and audio whole (cut at the clip length), as the model card embeds it
  settings.text_overlap = 0;
  const std::string key = io::sha256_hex(settings.model_fingerprint + "\n" + settings.embedding).substr(0, 16);
  const fs::path cache = (o.cache.empty() ? o.dataset / ".omni-embed-cache" : o.cache) / key;

  auto corpus_vectors = embed_into(embedder, settings, cache / ("corpus-" + o.modality), corpus, text::Role::Document,
                                   o.batch_tokens, r.failures, [&](int64_t d, int64_t t) {
                                     if (progress) progress("embedding corpus (" + o.modality + ")", d, t);
                                   });
  auto query_vectors = embed_into(o.query_embedder ? *o.query_embedder : embedder, settings, cache / "queries",
                                  queries, text::Role::Query, o.batch_tokens,
                                  r.failures, [&](int64_t d, int64_t t) {
                                    if (progress) progress("embedding queries", d, t);
                                  });
  r.corpus_embedded = corpus_vectors.embedded;
  r.queries_embedded = query_vectors.embedded;

  const int64_t d = settings.dim;
  const int64_t n_rows = static_cast<int64_t>(corpus_vectors.ids.size());
  OE_CHECK(std::count(query_vectors.sound.begin(), query_vectors.sound.end(), 1) == 0, "a query with two vectors");
  if (std::count(corpus_vectors.sound.begin(), corpus_vectors.sound.end(), 1) > 0) {
    // Late fusion: every row's score, then one score per document (frames and sound combined), ranked.
    index::check_late_fusion_weight(o.late_weight);
    const auto all = index::exact_top_k(corpus_vectors.matrix.data(), n_rows, d, query_vectors.matrix.data(),
                                        static_cast<int64_t>(query_vectors.ids.size()), n_rows);
    for (size_t q = 0; q < query_vectors.ids.size(); ++q) {
      std::map<std::string, std::pair<float, std::optional<float>>> by_doc;  // frames (or only) score, sound
      for (int64_t j = 0; j < all.k; ++j) {
        const int64_t row = all.labels[q * all.k + j];
        if (row < 0) continue;
        auto& entry = by_doc[corpus_vectors.ids[row]];
        const float score = all.scores[q * all.k + j];
        if (corpus_vectors.sound[row])
          entry.second = score;
        else
          entry.first = score;
      }
      std::vector<ScoredDoc> docs;
      for (const auto& [docid, s] : by_doc)
        docs.push_back({docid, s.second ? index::late_fusion_score(s.first, *s.second, o.late_weight) : s.first});
      std::stable_sort(docs.begin(), docs.end(), [](const ScoredDoc& a, const ScoredDoc& b) { return a.score > b.score; });
      if (static_cast<int64_t>(docs.size()) > o.top) docs.resize(static_cast<size_t>(o.top));
      r.run[query_vectors.ids[q]] = std::move(docs);
    }
    r.seconds = timer.seconds();
    return r;
  }
  const auto top = index::exact_top_k(corpus_vectors.matrix.data(), n_rows, d, query_vectors.matrix.data(),
                                      static_cast<int64_t>(query_vectors.ids.size()), o.top);
  for (size_t q = 0; q < query_vectors.ids.size(); ++q) {
    auto& docs = r.run[query_vectors.ids[q]];
    for (int64_t j = 0; j < top.k; ++j) {
      const int64_t row = top.labels[q * top.k + j];
      if (row >= 0) docs.push_back({corpus_vectors.ids[row], top.scores[q * top.k + j]});
    }
  }
  r.seconds = timer.seconds();
  return r;
}

void write_run(const fs::path& path, const Run& run, const std::string& tag) {
  io::AtomicFile f(path);
  for (const auto& [qid, docs] : run) {
    std::vector<ScoredDoc> ranked = docs;
    sort_trec(ranked);
    for (size_t i = 0; i < ranked.size(); ++i)
      f.write(fmt::format("{} Q0 {} {} {} {}\n", qid, ranked[i].docid, i + 1, ranked[i].score, tag));
  }
  f.commit();
}

}  // namespace oe::eval
