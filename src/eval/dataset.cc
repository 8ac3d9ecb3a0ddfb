#include "eval/dataset.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "core/timer.h"
#include "ingest/indexer.h"
#include "io/atomic_file.h"
#include "io/hash.h"
#include "search/late_fusion.h"
#include "search/retriever.h"

namespace oe::eval {
namespace {

namespace fs = std::filesystem;

// Keeps only the content of `mode`; false when nothing is left.
bool restrict_to(ingest::SourceSpec& s, const std::string& mode) {
  if (mode == "all") return true;
  pipeline::EmbedItem& it = s.item;
  if (mode != "text") it.text.clear();
  if (mode != "image") it.images.clear();
  if (mode != "audio") it.audios.clear();
  if (mode != "video") it.videos.clear();
  s.modality = *modality_from_name(mode);
  const bool empty = it.text.empty() && !it.has_media();
  // The hash must tell the modes apart even when the manifest line is the same.
  s.manifest_line += "\nmode=" + mode;
  return !empty;
}

// Embeds `found` into the store at `dir` (re-using what is there) and returns the vectors of found's ids.
search::CorpusMatrix embed_into(const pipeline::Encoder& encoder, const index::IndexSettings& settings,
                                const fs::path& dir, const ingest::Discovery& found, text::Role role,
                                int64_t batch_tokens, int64_t* embedded,
                                std::vector<std::pair<std::string, std::string>>& failures,
                                const std::function<void(int64_t, int64_t)>& progress) {
  auto store = index::Store::open_for_writing(dir, settings, /*reset_on_mismatch=*/true);
  ingest::IndexerOptions io;
  io.batch_tokens = batch_tokens;
  io.prune = true;  // the cache holds exactly this corpus
  io.role = role;
  ingest::Indexer indexer(encoder, *store, io);
  const auto report = indexer.run(found, [&](int64_t done, int64_t total, const std::string&) {
    if (progress) progress(done, total);
  });
  std::map<std::string, std::string> id_of_key;
  for (const auto& s : found.sources) id_of_key[s.key] = s.id;
  for (const auto& [path, why] : report.failures) failures.emplace_back(path, why);
  *embedded = report.segments;
  search::CorpusMatrix out;
  std::vector<int64_t> item_ids;
  store->load_vectors(item_ids, out.vectors);
  const auto keys = store->item_keys();
  for (int64_t id : item_ids) {
    auto it = id_of_key.find(keys.at(id));
    OE_CHECK(it != id_of_key.end(), "cached vector of an unknown item");
    out.ids.push_back(it->second);
  }
  for (const auto& hit : store->describe(item_ids)) {
    out.sound.push_back(hit.modality == modality_name(Modality::VideoSound) ? 1 : 0);
    out.segment.push_back(hit.segment);
  }
  OE_CHECK(out.sound.size() == out.ids.size());
  return out;
}

// The corpus of `mode` (items without such content left out and counted) and the judged queries.
void read_dataset(const DatasetOptions& o, const fs::path& corpus_path, const fs::path& queries_path,
                  ingest::Discovery& corpus, ingest::Discovery& queries, DatasetRun& r) {
  corpus = ingest::discover({corpus_path});
  queries = ingest::discover({queries_path});
  for (const auto& e : corpus.errors) r.failures.emplace_back("corpus", e);
  for (const auto& e : queries.errors) r.failures.emplace_back("queries", e);
  std::set<std::string> corpus_ids;
  std::vector<ingest::SourceSpec> kept;
  for (auto& s : corpus.sources) {
    corpus_ids.insert(s.id);
    if (restrict_to(s, o.modality))
      kept.push_back(std::move(s));
    else
      ++r.left_out;
  }
  corpus.sources = std::move(kept);
  r.corpus_size = static_cast<int64_t>(corpus.sources.size());
  // Only judged queries are run (as BEIR does).
  kept.clear();
  for (auto& s : queries.sources)
    if (r.qrels.count(s.id)) kept.push_back(std::move(s));
  queries.sources = std::move(kept);
  r.queries = static_cast<int64_t>(queries.sources.size());
  int64_t unknown = 0;
  for (const auto& [qid, docs] : r.qrels)
    for (const auto& [docid, rel] : docs) unknown += !corpus_ids.count(docid);
  if (unknown > 0)
    r.warnings.push_back(fmt::format("{}: {} judgment(s) name corpus ids that are not in {}; they count as relevant "
                                     "documents never retrieved",
                                     (o.dataset / "qrels" / (o.split + ".tsv")).string(), unknown,
                                     corpus_path.string()));
}

// Each query's score against each of its judged documents that was embedded, the way Retriever::rank scores it: the
// inner product of unit vectors, a video's two views fused under late fusion.
void score_judged(const search::CorpusMatrix& corpus, const search::CorpusMatrix& queries, int64_t d, bool late,
                  double late_weight, const Qrels& qrels, DatasetRun& r) {
  std::map<std::string, std::vector<int64_t>> rows_of;
  for (int64_t row = 0; row < corpus.rows(); ++row) rows_of[corpus.ids[row]].push_back(row);
  for (int64_t q = 0; q < queries.rows(); ++q) {
    auto judged = qrels.find(queries.ids[q]);
    if (judged == qrels.end()) continue;
    const float* qv = queries.vectors.data() + q * d;
    auto& out = r.judged_scores[queries.ids[q]];
    for (const auto& [docid, rel] : judged->second) {
      auto it = rows_of.find(docid);
      if (it == rows_of.end()) continue;
      std::vector<search::ScoredView> views;
      for (int64_t row : it->second) {
        const float* dv = corpus.vectors.data() + row * d;
        double dot = 0;
        for (int64_t i = 0; i < d; ++i) dot += static_cast<double>(qv[i]) * dv[i];
        views.push_back({docid, late && corpus.sound[row] != 0, static_cast<float>(dot), corpus.segment[row]});
      }
      // A document scores as its best window, as it ranks (search::rank_documents).
      const auto ranked = search::rank_documents(views, late, late_weight);
      if (!ranked.empty()) out[docid] = ranked.front().second;  // empty: a sound view without its frames (not ranked)
    }
  }
}

// The items (as restricted to the modality mode), by id.
std::map<std::string, pipeline::EmbedItem> items_by_id(ingest::Discovery& found) {
  std::map<std::string, pipeline::EmbedItem> out;
  for (auto& s : found.sources) out.emplace(s.id, std::move(s.item));
  return out;
}

}  // namespace

DatasetRun run_dataset(const pipeline::Encoder& encoder, const std::string& model_name, const DatasetOptions& o,
                       const DatasetProgress& progress) {
  Timer timer;
  if (std::find(MODALITY_MODES.begin(), MODALITY_MODES.end(), o.modality) == MODALITY_MODES.end())
    throw InvalidInput(fmt::format("modality '{}': expected all, text, image, audio or video", o.modality));
  const fs::path corpus_path = o.dataset / "corpus.jsonl", queries_path = o.dataset / "queries.jsonl",
                 qrels_path = o.dataset / "qrels" / (o.split + ".tsv");
  for (const auto& p : {corpus_path, queries_path, qrels_path})
    if (!fs::is_regular_file(p))
      throw InvalidInput(fmt::format("{} is not a BEIR dataset: {} is missing", o.dataset.string(), p.string()));

  DatasetRun r;
  r.modality = o.modality;
  r.qrels = with_context("reading qrels", [&] { return read_qrels(qrels_path, QrelsFormat::BeirTsv); });
  ingest::Discovery corpus, queries;
  read_dataset(o, corpus_path, queries_path, corpus, queries, r);
  if (r.corpus_size == 0)
    throw InvalidInput(fmt::format("{}: no corpus item has {} content", o.dataset.string(), o.modality));
  if (r.queries == 0)
    throw InvalidInput(
        fmt::format("{}: no query of queries.jsonl is judged in {}", o.dataset.string(), qrels_path.string()));

  // The cache folder is keyed by what changes the vectors: the weights and the embedding settings.
  const model::Model& model = encoder.model();
  index::IndexSettings settings;
  settings.model = model_name;
  settings.model_fingerprint = model.fingerprint();
  settings.embedding = encoder.recorded_json();
  settings.dim = model.config().text.d_model;
  settings.text_window = 0;  // documents are embedded whole (truncated at the context limit), as BEIR does
  // and audio and video whole (audio cut at the clip length), as the model card embeds them, unless --media-window
  // asks for windows: then a document ranks once, as its best window (search::rank_documents).
  settings.media_window = o.media_window;
  settings.media_overlap = o.media_overlap;
  settings.text_overlap = 0;
  settings.adapter = model.adapter_dir().string();
  settings.adapter_id = model.adapter_id();
  // (the adapter and the media windows enter the key only when there are some, so older caches keep their folders)
  const std::string windows =
      o.media_window > 0 ? fmt::format("\nmedia window {} overlap {}", o.media_window, o.media_overlap) : "";
  const std::string key = io::sha256_hex(settings.model_fingerprint + "\n" + settings.embedding +
                                         (settings.adapter_id.empty() ? "" : "\nadapter " + settings.adapter_id) +
                                         windows)
                              .substr(0, 16);
  const fs::path cache = (o.cache.empty() ? o.dataset / ".omni-embed-cache" : o.cache) / key;

  search::RetrieverOptions ro;
  ro.late_weight = o.late_weight;
  const search::Retriever retriever(encoder.model_ptr(), encoder.options(), ro);
  const auto corpus_vectors = embed_into(encoder, settings, cache / ("corpus-" + o.modality), corpus,
                                         text::Role::Document, o.batch_tokens, &r.corpus_embedded, r.failures,
                                         [&](int64_t d, int64_t t) {
                                           if (progress) progress("embedding corpus (" + o.modality + ")", d, t);
                                         });
  index::IndexSettings query_settings = settings;  // a query is one vector, whatever its length
  query_settings.media_window = 0;
  query_settings.media_overlap = 0;
  const auto query_vectors = embed_into(retriever.query_encoder(), query_settings, cache / "queries", queries,
                                        text::Role::Query, o.batch_tokens, &r.queries_embedded, r.failures,
                                        [&](int64_t d, int64_t t) {
                                          if (progress) progress("embedding queries", d, t);
                                        });
  OE_CHECK(std::count(query_vectors.sound.begin(), query_vectors.sound.end(), 1) == 0, "a query with two vectors");
  const auto ranked = retriever.rank(corpus_vectors, query_vectors.vectors.data(), query_vectors.rows(),
                                     settings.dim, o.top);
  for (size_t q = 0; q < ranked.size(); ++q) {
    auto& docs = r.run[query_vectors.ids[q]];
    for (const auto& d : ranked[q]) docs.push_back({d.id, d.score});
  }
  if (o.keep_items) {
    score_judged(corpus_vectors, query_vectors, settings.dim, retriever.late_fusion(), o.late_weight, r.qrels, r);
    r.corpus_items = items_by_id(corpus);
    r.query_items = items_by_id(queries);
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
