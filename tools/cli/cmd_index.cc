// omni-embed index: embeds a folder, files or JSONL manifests into an index folder, incrementally and crash-safely.
#include <iostream>

#include <nlohmann/json.hpp>

#include "common.h"
#include "core/error.h"
#include "core/log.h"
#include "ingest/discovery.h"
#include "ingest/indexer.h"
#include "pipeline/encoder.h"

namespace oe::cli {
namespace {

namespace fs = std::filesystem;

struct IndexArgs {
  ModelArgs model;
  pipeline::EmbedOptions options;
  std::vector<std::string> inputs;
  std::string index;
  bool prune = false;
  bool rebuild = false;
  bool check = false;
  std::string vectors = "flat";
  int64_t hnsw_m = 32;
  int64_t hnsw_ef_construction = 80;
  int64_t text_window = 512;
  int64_t text_overlap = 64;
  double media_window = 30, media_overlap = 0;
  int64_t batch_tokens = 4096;
  int64_t max_text_bytes = ingest::IndexerOptions{}.max_text_bytes;
  std::string format = "table";
};

int run_check(const IndexArgs& a) {
  auto store = index::Store::open(a.index);
  const auto stats = store->stats();
  const auto report = store->check();
  const auto& s = store->settings();
  std::cout << fmt::format("index {}: {} sources ({} failed), {} vectors of {} dimensions, {} search, model {}\n",
                           a.index, stats.sources, stats.failed, stats.items, s.dim, s.vectors, s.model);
  for (const auto& p : report.problems) std::cout << "problem: " << p << '\n';
  std::cout << (report.ok() ? "consistent\n" : fmt::format("{} problems\n", report.problems.size()));
  return report.ok() ? 0 : 1;
}

int run_index(const IndexArgs& a) {
  if (a.check && a.inputs.empty()) return run_check(a);
  if (a.inputs.empty()) throw InvalidInput("nothing to index: give folders, files or manifest.jsonl files");
  if (a.text_overlap >= a.text_window)
    throw InvalidInput(fmt::format("--text-overlap ({}) must be smaller than --text-window ({})", a.text_overlap,
                                   a.text_window));
  if (a.media_window < 1) throw InvalidInput(fmt::format("--media-window ({} s) must be at least 1 s", a.media_window));
  check_media_window(a.media_window, a.media_overlap, a.options);
  a.options.validate();
  std::vector<fs::path> inputs(a.inputs.begin(), a.inputs.end());
  ingest::Discovery found = ingest::discover(inputs, a.index, a.max_text_bytes);
  for (const auto& e : found.errors) log_warn("{}", e);

  const pipeline::Encoder encoder(load_model(a.model), a.options);
  index::IndexSettings settings;
  settings.model = a.model.model;
  settings.model_fingerprint = encoder.model().fingerprint();
  settings.fingerprint_aliases = encoder.model().fingerprint_aliases();
  if (!encoder.model().adapter_id().empty()) {
    settings.adapter = fs::absolute(encoder.model().adapter_dir()).lexically_normal().string();
    settings.adapter_id = encoder.model().adapter_id();
  }
  settings.embedding = encoder.recorded_json();
  settings.dim = encoder.model().config().text.d_model;
  settings.vectors = a.vectors;
  settings.hnsw_m = a.hnsw_m;
  settings.hnsw_ef_construction = a.hnsw_ef_construction;
  settings.text_window = a.text_window;
  settings.text_overlap = a.text_overlap;
  settings.media_window = a.media_window;
  settings.media_overlap = a.media_overlap;
  auto store = index::Store::open_for_writing(a.index, settings, a.rebuild);

  ingest::IndexerOptions io;
  io.batch_tokens = a.batch_tokens;
  io.prune = a.prune;
  io.max_text_bytes = a.max_text_bytes;
  ingest::Indexer indexer(encoder, *store, io);
  Progress progress("indexing", static_cast<int64_t>(found.sources.size()));
  auto report = indexer.run(found, [&](int64_t done, int64_t total, const std::string& current) {
    progress.set_total(total);
    progress.update(done, current);
  });
  progress.finish();
  if (store->settings().vectors == "hnsw") log_info("building the HNSW graph");
  store->prepare_search();  // so the first search finds its vector file or graph ready
  for (const auto& [path, why] : report.failures) {
    // Media errors already name the file.
    if (why.find(fs::path(path).filename().string()) != std::string::npos)
      log_warn("{}", why);
    else
      log_warn("{}: {}", path, why);
  }
  const auto stats = store->stats();
  if (a.format == "json") {
    nlohmann::ordered_json j;
    j["index"] = a.index;
    j["added"] = report.added;
    j["updated"] = report.updated;
    j["unchanged"] = report.unchanged;
    j["failed"] = report.failed;
    j["removed"] = report.removed;
    j["missing"] = report.missing;
    j["ignored"] = found.ignored;
    j["segments_embedded"] = report.segments;
    j["sources"] = stats.sources;
    j["vectors"] = stats.items;
    j["seconds"] = report.seconds;
    std::cout << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
  } else {
    std::cout << fmt::format(
        "{}: {} added, {} updated, {} unchanged, {} failed, {} removed ({} segments embedded in {:.1f} s); "
        "the index holds {} sources and {} vectors\n",
        a.index, report.added, report.updated, report.unchanged, report.failed, report.removed, report.segments,
        report.seconds, stats.sources, stats.items);
    if (found.ignored > 0) std::cout << fmt::format("{} file(s) of other types ignored\n", found.ignored);
    if (report.missing > 0)
      std::cout << fmt::format("{} indexed source(s) no longer found; --prune removes them\n", report.missing);
  }
  int rc = (report.failed > 0 || !found.errors.empty()) ? 1 : 0;
  if (a.check && run_check(a) != 0) rc = 1;
  return rc;
}

}  // namespace

VerbRunner register_index(CLI::App& app) {
  auto a = std::make_shared<IndexArgs>();
  auto* sub = app.add_subcommand(
      "index", "Embed folders, files and JSONL manifests into an index folder (incremental; safe to interrupt)");
  add_model_options(*sub, a->model);
  add_embed_options(*sub, a->options);
  sub->add_option("inputs", a->inputs,
                  "Folders (walked recursively), files (.txt .md, images), or manifests (.jsonl: {\"id\", \"text\", "
                  "\"image\", \"audio\", \"video\"} per line)");
  sub->add_option("--index", a->index, "The index folder (created when missing)")->required();
  sub->add_flag("--prune", a->prune, "Remove indexed sources of these inputs that no longer exist");
  sub->add_flag("--rebuild", a->rebuild,
                "Clear an index built with another model or other embedding settings and re-embed everything");
  sub->add_flag("--check", a->check, "Check the index's consistency (alone: check without indexing)");
  sub->add_option("--vectors", a->vectors, "Search structure: flat (exact) or hnsw (approximate, for large indexes)")
      ->check(CLI::IsMember({"flat", "hnsw"}))
      ->capture_default_str();
  sub->add_option("--hnsw-m", a->hnsw_m, "HNSW links per node")->check(CLI::Range(4, 256))->capture_default_str();
  sub->add_option("--hnsw-ef-construction", a->hnsw_ef_construction, "HNSW build beam width")
      ->check(CLI::Range(8, 4096))
      ->capture_default_str();
  sub->add_option("--text-window", a->text_window, "Longest text segment in tokens (longer texts are split)")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  sub->add_option("--text-overlap", a->text_overlap, "Tokens shared by consecutive text segments")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_media_window_options(*sub, a->media_window, a->media_overlap,
                           "hits show the time range; at least 1 s, at most --audio-max-seconds");
  sub->add_option("--max-text-bytes", a->max_text_bytes,
                  "Largest text file, and longest manifest line, in bytes (larger ones are reported and skipped)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--batch-tokens", a->batch_tokens, "Tokens per forward pass and per committed batch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--format", a->format, "Summary: table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  return [a] { return run_index(*a); };
}

}  // namespace oe::cli
