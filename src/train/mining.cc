// Hard-negative mining: the filters of NV-Retriever as pure functions, and the pass over an embedded BEIR dataset.
#include "train/mining.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "eval/trec.h"
#include "io/atomic_file.h"

namespace oe::train {
namespace {

namespace fs = std::filesystem;

struct FilterName {
  NegativeFilter filter;
  const char* name;
};
constexpr FilterName FILTER_NAMES[] = {{NegativeFilter::PercPos, "perc-pos"},
                                       {NegativeFilter::MarginPos, "margin-pos"},
                                       {NegativeFilter::Abs, "abs"},
                                       {NegativeFilter::TopKShifted, "top-k-shifted"},
                                       {NegativeFilter::TopK, "top-k"},
                                       {NegativeFilter::Sample, "sample"}};

// Whether a candidate scoring `s` passes the filter's score rule (top-k and top-k-shifted have none).
bool passes(NegativeFilter filter, double s, double positive, const FilterOptions& o) {
  switch (filter) {
    case NegativeFilter::Abs: return s < o.threshold;
    case NegativeFilter::MarginPos: return s < positive - o.margin;
    case NegativeFilter::PercPos:
    case NegativeFilter::Sample: return s < o.perc * positive;
    case NegativeFilter::TopK:
    case NegativeFilter::TopKShifted: return true;
  }
  return true;
}

// A uniform double in [0, 1) from 53 bits of the generator (std::mt19937_64's sequence is fixed by the standard; the
// standard distributions are not).
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// The shortest decimal of a 32-bit score, as a JSON number.
double json_score(float s) { return std::stod(fmt::format("{}", s)); }

nlohmann::ordered_json paths_json(const std::vector<fs::path>& paths) {
  if (paths.size() == 1) return paths.front().string();
  nlohmann::ordered_json a = nlohmann::ordered_json::array();
  for (const auto& p : paths) a.push_back(p.string());
  return a;
}

}  // namespace

std::optional<NegativeFilter> negative_filter_from_name(const std::string& name) {
  for (const auto& f : FILTER_NAMES)
    if (name == f.name) return f.filter;
  return std::nullopt;
}

const char* negative_filter_name(NegativeFilter filter) {
  for (const auto& f : FILTER_NAMES)
    if (filter == f.filter) return f.name;
  return "?";
}

void FilterOptions::validate() const {
  if (negatives < 1)
    throw InvalidInput(fmt::format("--negatives {}: expected at least 1 negative per pair", negatives));
  if (!(perc > 0 && perc <= 1)) throw InvalidInput(fmt::format("--perc {}: expected a fraction in (0, 1]", perc));
  if (!(margin >= 0) || !std::isfinite(margin))
    throw InvalidInput(fmt::format("--margin {}: expected a margin ≥ 0", margin));
  if (!std::isfinite(threshold)) throw InvalidInput(fmt::format("--threshold {}: expected a score", threshold));
  if (shift < 0) throw InvalidInput(fmt::format("--shift {}: expected a number of candidates ≥ 0", shift));
  if (sample_top < 1) throw InvalidInput(fmt::format("--sample-top {}: expected at least 1 candidate", sample_top));
  if (!(temperature > 0) || !std::isfinite(temperature))
    throw InvalidInput(fmt::format("--temperature {}: expected a temperature > 0", temperature));
}

std::vector<size_t> sample_softmax(const std::vector<float>& scores, int64_t k, double temperature, uint64_t seed) {
  OE_CHECK(temperature > 0 && k >= 0);
  const size_t n = scores.size(), draws = std::min(n, static_cast<size_t>(k));
  if (n == 0) return {};
  // Weights relative to the best score, so exp never overflows.
  const float best = *std::max_element(scores.begin(), scores.end());
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = std::exp((static_cast<double>(scores[i]) - best) / temperature);
  std::mt19937_64 rng(seed);
  std::vector<size_t> out;
  while (out.size() < draws) {
    double total = 0;
    for (double x : w) total += x;
    const double u = uniform01(rng) * total;
    size_t pick = n;
    double acc = 0;
    for (size_t i = 0; i < n; ++i) {
      if (w[i] <= 0) continue;
      pick = i;  // the last one with weight left, should rounding leave u past the end
      acc += w[i];
      if (u < acc) break;
    }
    OE_CHECK(pick < n, "no weight left to draw from");
    out.push_back(pick);
    w[pick] = 0;
  }
  return out;
}

uint64_t pair_seed(uint64_t seed, const std::string& query_id, const std::string& positive_id) {
  // FNV-1a over the seed's bytes and the two ids (a 0 byte between them), then splitmix64's finaliser.
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](unsigned char c) { h = (h ^ c) * 0x100000001b3ull; };
  for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(seed >> (8 * i)));
  for (char c : query_id) mix(static_cast<unsigned char>(c));
  mix(0);
  for (char c : positive_id) mix(static_cast<unsigned char>(c));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

Selection select_negatives(const std::vector<Candidate>& candidates, float positive_score, const FilterOptions& o,
                           uint64_t seed) {
  Selection sel;
  const size_t k = static_cast<size_t>(o.negatives);
  const size_t first = o.filter == NegativeFilter::TopKShifted
                           ? std::min(candidates.size(), static_cast<size_t>(o.shift))
                           : 0;
  sel.removed = static_cast<int64_t>(first);
  std::vector<size_t> pool;  // positions that pass, in rank order
  for (size_t i = first; i < candidates.size(); ++i) {
    if (passes(o.filter, candidates[i].score, positive_score, o))
      pool.push_back(i);
    else
      ++sel.removed;
  }
  if (o.filter == NegativeFilter::Sample) {
    if (pool.size() > static_cast<size_t>(o.sample_top)) pool.resize(static_cast<size_t>(o.sample_top));
    std::vector<float> scores;
    for (size_t i : pool) scores.push_back(candidates[i].score);
    std::vector<size_t> drawn;
    for (size_t j : sample_softmax(scores, o.negatives, o.temperature, seed)) drawn.push_back(pool[j]);
    std::sort(drawn.begin(), drawn.end());  // best first
    pool = std::move(drawn);
  }
  for (size_t i = 0; i < pool.size() && sel.negatives.size() < k; ++i) sel.negatives.push_back(candidates[pool[i]]);
  return sel;
}

nlohmann::ordered_json item_json(const pipeline::EmbedItem& item) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  if (!item.text.empty() || !item.has_media()) j["text"] = item.text;
  if (!item.images.empty()) j["image"] = paths_json(item.images);
  if (!item.audios.empty()) j["audio"] = paths_json(item.audios);
  if (!item.videos.empty()) j["video"] = paths_json(item.videos);
  return j;
}

nlohmann::ordered_json MineReport::to_json() const {
  nlohmann::ordered_json j;
  j["filter"] = filter;
  j["queries"] = queries;
  j["pairs"] = pairs;
  j["candidates"] = candidates;
  j["removed"] = removed;
  j["negatives"] = negatives;
  j["short_pairs"] = short_pairs;
  j["short_queries"] = short_queries;
  j["positives_missing"] = positives_missing;
  j["mean_positive_score"] = mean_positive_score;
  j["mean_negative_score"] = mean_negative_score;
  j["corpus"] = run.corpus_size;
  j["corpus_embedded"] = run.corpus_embedded;
  j["queries_embedded"] = run.queries_embedded;
  j["failed"] = run.failures.size();
  j["seconds"] = run.seconds;
  return j;
}

namespace {

// The most positives any query has: the ranking goes that much deeper so that `depth` candidates remain.
int64_t most_positives(const fs::path& qrels_path) {
  if (!fs::is_regular_file(qrels_path)) return 0;  // run_dataset says what is missing
  int64_t most = 0;
  for (const auto& [qid, docs] : eval::read_qrels(qrels_path, eval::QrelsFormat::BeirTsv)) {
    int64_t n = 0;
    for (const auto& [docid, rel] : docs) n += rel > 0;
    most = std::max(most, n);
  }
  return most;
}

// The candidates of one query: its ranking with the positives left out, cut at `depth`.
std::vector<Candidate> candidates_of(const std::vector<eval::ScoredDoc>& ranked, const std::set<std::string>& positives,
                                     int64_t depth) {
  std::vector<Candidate> out;
  for (const auto& d : ranked) {
    if (static_cast<int64_t>(out.size()) == depth) break;
    if (!positives.count(d.docid)) out.push_back({d.docid, d.score});
  }
  return out;
}

// One output line.
std::string pair_line(const eval::DatasetRun& r, const std::string& qid, const std::string& pid, float positive_score,
                      const Selection& sel) {
  nlohmann::ordered_json j;
  j["query"] = item_json(r.query_items.at(qid));
  j["positive"] = item_json(r.corpus_items.at(pid));
  j["negatives"] = nlohmann::ordered_json::array();
  for (const auto& n : sel.negatives) j["negatives"].push_back(item_json(r.corpus_items.at(n.id)));
  j["query_id"] = qid;
  j["positive_id"] = pid;
  j["negative_ids"] = nlohmann::ordered_json::array();
  j["positive_score"] = json_score(positive_score);
  j["negative_scores"] = nlohmann::ordered_json::array();
  for (const auto& n : sel.negatives) {
    j["negative_ids"].push_back(n.id);
    j["negative_scores"].push_back(json_score(n.score));
  }
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace

MineReport mine(const pipeline::Encoder& encoder, const std::string& model_name, const MineOptions& o,
                const eval::DatasetProgress& progress) {
  o.filter.validate();
  if (o.depth < 1) throw InvalidInput(fmt::format("--depth {}: expected at least 1 candidate per query", o.depth));
  const fs::path out_dir = fs::absolute(o.out).parent_path();
  if (!fs::is_directory(out_dir))
    throw InvalidInput(fmt::format("--out {}: the folder {} does not exist", o.out.string(), out_dir.string()));
  io::AtomicFile out(o.out);  // fails now, not after the embedding, when the folder cannot be written

  eval::DatasetOptions d = o.dataset;
  d.keep_items = true;
  d.top = o.depth + most_positives(d.dataset / "qrels" / (d.split + ".tsv"));
  MineReport rep;
  rep.filter = negative_filter_name(o.filter.filter);
  rep.run = eval::run_dataset(encoder, model_name, d, progress);
  const eval::DatasetRun& r = rep.run;
  double sum_pos = 0, sum_neg = 0;
  for (const auto& [qid, scores] : r.judged_scores) {
    std::set<std::string> positives;
    for (const auto& [docid, rel] : r.qrels.at(qid))
      if (rel > 0) positives.insert(docid);
    auto ranked = r.run.find(qid);
    const auto candidates =
        candidates_of(ranked == r.run.end() ? std::vector<eval::ScoredDoc>{} : ranked->second, positives, o.depth);
    bool any = false, short_query = false;
    for (const auto& pid : positives) {
      auto s = scores.find(pid);
      if (s == scores.end()) {
        ++rep.positives_missing;
        continue;
      }
      const Selection sel = select_negatives(candidates, s->second, o.filter, pair_seed(o.filter.seed, qid, pid));
      out.write(pair_line(r, qid, pid, s->second, sel));
      any = true;
      ++rep.pairs;
      rep.candidates += static_cast<int64_t>(candidates.size());
      rep.removed += sel.removed;
      rep.negatives += static_cast<int64_t>(sel.negatives.size());
      sum_pos += s->second;
      for (const auto& n : sel.negatives) sum_neg += n.score;
      if (static_cast<int64_t>(sel.negatives.size()) < o.filter.negatives) {
        ++rep.short_pairs;
        short_query = true;
      }
    }
    rep.queries += any;
    rep.short_queries += short_query;
  }
  // Positives of judged queries whose query itself was not embedded are not counted: the query is not there.
  out.commit();
  rep.mean_positive_score = rep.pairs ? sum_pos / static_cast<double>(rep.pairs) : 0;
  rep.mean_negative_score = rep.negatives ? sum_neg / static_cast<double>(rep.negatives) : 0;
  rep.run.run.clear();
  return rep;
}

}  // namespace oe::train
