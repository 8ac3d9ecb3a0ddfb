// The index, search and eval --dataset verbs end to end on the tiny test models: incremental indexing, pruning,
// per-file failures, search equal to brute force over the stored vectors, refusals that keep the data, the
// SIGKILL crash test, and a BEIR dataset scored from cached vectors.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "index/sqlite.h"
#include "index/store.h"
#include "common/files.h"
#include "common/json_lines.h"
#include "test_util.h"

extern char** environ;

namespace oe {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::string cli() { return OE_CLI; }
std::string model(const char* name = "tiny-f32") { return testing::test_model(name).string(); }
const fs::path DEMO = fs::path(OE_SOURCE_DIR) / "datasets" / "quality-demo";

using testing::Outcome;

Outcome run(const TempDir& tmp, const std::string& args) {
  return testing::run_split(fmt::format("'{}' {}", cli(), args), (tmp / "stderr.txt").string());
}

using testing::write_file;

using testing::json_lines;

// A small media library: texts (one long enough to be split), two pictures, a broken picture, an unknown file
// type and a hidden file.
void make_library(const fs::path& dir) {
  write_file(dir / "notes" / "cat.txt", "The cat sat on the warm mat all afternoon.");
  std::string lecture;
  for (int i = 0; i < 120; ++i) lecture += fmt::format("Sentence {} of the thermodynamics lecture on entropy. ", i);
  write_file(dir / "notes" / "lecture.md", lecture);
  fs::create_directories(dir / "pictures");
  fs::copy_file(DEMO / "images" / "shape-red-circle-0.png", dir / "pictures" / "red-circle.png",
                fs::copy_options::overwrite_existing);
  fs::copy_file(DEMO / "images" / "shape-blue-star-0.png", dir / "pictures" / "blue-star.png",
                fs::copy_options::overwrite_existing);
  write_file(dir / "pictures" / "broken.png", "\x89PNG\r\n\x1a\n but then nothing");
  write_file(dir / "misc" / "data.bin", "binary");
  write_file(dir / ".hidden" / "secret.txt", "not indexed");
}

std::string index_args(const fs::path& lib, const fs::path& idx, const std::string& extra = "") {
  return fmt::format("index '{}' --index '{}' --model '{}' --text-window 64 --text-overlap 8 --format json {}",
                     lib.string(), idx.string(), model(), extra);
}

TEST(IndexCli, IndexesIncrementallyReportsFailuresAndPrunes) {
  TempDir tmp;
  const fs::path lib = tmp / "lib", idx = tmp / "idx";
  make_library(lib);
  auto o = run(tmp, index_args(lib, idx));
  EXPECT_EQ(o.rc, 1) << o.err;  // one file failed; the rest is indexed
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["added"], 4);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["ignored"], 1);
  EXPECT_GT(j["vectors"].get<int>(), 5);  // the lecture is split into windows
  EXPECT_NE(o.err.find("broken.png"), std::string::npos) << o.err;

  o = run(tmp, index_args(lib, idx));
  j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["added"], 0);
  EXPECT_EQ(j["unchanged"], 4);
  EXPECT_EQ(j["segments_embedded"], 0);

  write_file(lib / "notes" / "cat.txt", "The cat moved to the sofa.");
  fs::remove(lib / "pictures" / "blue-star.png");
  fs::remove(lib / "pictures" / "broken.png");
  o = run(tmp, index_args(lib, idx));
  EXPECT_EQ(o.rc, 0) << o.err;
  j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["updated"], 1);
  EXPECT_EQ(j["unchanged"], 2);
  EXPECT_EQ(j["missing"], 2);  // kept until --prune
  o = run(tmp, index_args(lib, idx, "--prune"));
  j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["removed"], 2);
  EXPECT_EQ(j["sources"], 3);
  auto store = index::Store::open(idx);
  EXPECT_TRUE(store->check().ok());
  EXPECT_FALSE(store->find_source((fs::weakly_canonical(lib) / "pictures" / "blue-star.png").string()));
}

TEST(IndexCli, SearchEqualsBruteForceOverTheStoredVectors) {
  TempDir tmp;
  const fs::path lib = tmp / "lib", idx = tmp / "idx";
  make_library(lib);
  run(tmp, index_args(lib, idx));
  const std::string query = "entropy in the lecture";
  auto o = run(tmp, fmt::format("search '{}' --index '{}' -k 5 --format json", query, idx.string()));
  ASSERT_EQ(o.rc, 0) << o.err;  // the model recorded in the index is used when --model is not given
  const auto hits = json_lines(o.out);
  ASSERT_EQ(hits.size(), 5u);
  // The query vector as `embed` computes it, and the stored vectors, ranked by brute force.
  auto e = run(tmp, fmt::format("embed --model '{}' --query '{}'", model(), query));
  ASSERT_EQ(e.rc, 0) << e.err;
  const auto qv = json_lines(e.out).at(0)["embedding"].get<std::vector<float>>();
  auto store = index::Store::open(idx);
  std::vector<int64_t> ids;
  std::vector<float> m;
  store->load_vectors(ids, m);
  const size_t d = qv.size();
  std::vector<std::pair<float, int64_t>> scored;
  for (size_t i = 0; i < ids.size(); ++i) {
    float s = 0;
    for (size_t c = 0; c < d; ++c) s += m[i * d + c] * qv[c];
    scored.push_back({s, ids[i]});
  }
  std::sort(scored.begin(), scored.end(), [](auto& a, auto& b) { return a.first > b.first; });
  const auto expected = store->describe({scored[0].second, scored[1].second, scored[2].second, scored[3].second,
                                         scored[4].second});
  for (size_t r = 0; r < 5; ++r) {
    EXPECT_EQ(hits[r]["path"], expected[r].path) << "rank " << r + 1;
    EXPECT_EQ(hits[r]["segment"], expected[r].segment) << "rank " << r + 1;
    EXPECT_NEAR(hits[r]["score"].get<double>(), scored[r].first, 2e-6);
  }
  // Segments of the split text carry character offsets.
  o = run(tmp, fmt::format("search '{}' --index '{}' -k 50 --format json --modality text", query, idx.string()));
  bool has_span = false;
  for (const auto& h : json_lines(o.out)) {
    EXPECT_EQ(h["modality"], "text");
    if (h.contains("start")) has_span = h["unit"] == "characters" && h["end"] > h["start"];
  }
  EXPECT_TRUE(has_span) << o.out;
  // An image query.
  o = run(tmp, fmt::format("search --image '{}' --index '{}' -k 2 --modality image --format json",
                           (DEMO / "images" / "shape-red-circle-1.png").string(), idx.string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  EXPECT_EQ(json_lines(o.out).size(), 2u);
}

TEST(IndexCli, RefusalsKeepTheStoredData) {
  TempDir tmp;
  const fs::path lib = tmp / "lib", idx = tmp / "idx";
  make_library(lib);
  run(tmp, index_args(lib, idx));
  const int64_t items = index::Store::open(idx)->stats().items;
  // Another model (other weights): search and index refuse, naming the reason.
  auto o = run(tmp, fmt::format("search cat --index '{}' --model '{}'", idx.string(), model("tiny-bf16")));
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("was built with model"), std::string::npos) << o.err;
  o = run(tmp, fmt::format("search cat --index '{}' --model '{}' --allow-mismatch", idx.string(), model("tiny-bf16")));
  EXPECT_EQ(o.rc, 0) << o.err;
  o = run(tmp, fmt::format("index '{}' --index '{}' --model '{}'", lib.string(), idx.string(), model("tiny-bf16")));
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("--rebuild"), std::string::npos) << o.err;
  // Other prompt settings are refused too.
  o = run(tmp, index_args(lib, idx, "--query-prefix 'Q: '"));
  EXPECT_NE(o.err.find("other embedding settings"), std::string::npos) << o.err;
  EXPECT_EQ(index::Store::open(idx)->stats().items, items);
  // A manifest with a line that is not JSON: the line is reported with its number, the others are indexed.
  write_file(tmp / "m" / "items.jsonl",
        "{\"id\": \"a\", \"text\": \"first\"}\n{not json\n{\"id\": \"b\", \"text\": \"second\", \"image\": \"x.png\"}\n"
        "{\"text\": \"no id\"}\n");
  fs::copy_file(DEMO / "images" / "shape-blue-star-0.png", tmp / "m" / "x.png");
  o = run(tmp, fmt::format("index '{}' --index '{}' --model '{}' --format json", (tmp / "m" / "items.jsonl").string(),
                           (tmp / "idx2").string(), model()));
  EXPECT_EQ(o.rc, 1);
  EXPECT_NE(o.err.find("items.jsonl line 2: not valid JSON"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("items.jsonl line 4: every entry needs an \"id\""), std::string::npos) << o.err;
  EXPECT_EQ(nlohmann::json::parse(o.out)["added"], 2);
  // An index written by another format version.
  {
    index::Database db(idx / "catalog.sqlite", false);
    db.exec("UPDATE meta SET value = '2' WHERE key = 'format_version'");
  }
  o = run(tmp, index_args(lib, idx));
  EXPECT_NE(o.err.find("format version 2"), std::string::npos) << o.err;
  o = run(tmp, fmt::format("search cat --index '{}'", idx.string()));
  EXPECT_NE(o.err.find("format version 2"), std::string::npos) << o.err;
  {
    index::Database db(idx / "catalog.sqlite", false);
    db.exec("UPDATE meta SET value = '1' WHERE key = 'format_version'");
  }
  EXPECT_EQ(index::Store::open(idx)->stats().items, items);
}

// Starts `omni-embed args...`, output discarded; returns the pid.
pid_t spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  std::string exe = cli();
  argv.push_back(exe.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

TEST(IndexCli, SurvivesSigkillAtRandomMomentsTwentyTimes) {
  TempDir tmp;
  const fs::path lib = tmp / "lib", idx = tmp / "idx", ref = tmp / "ref";
  std::mt19937 rng(20261126);
  auto text_of = [&](int i, int version) {
    std::string s;
    const int sentences = 3 + (i * 7) % 40;
    for (int k = 0; k < sentences; ++k)
      s += fmt::format("File {} version {} sentence {} about topic {}. ", i, version, k, (i + k) % 9);
    return s;
  };
  for (int i = 0; i < 40; ++i) write_file(lib / fmt::format("doc{:02d}.txt", i), text_of(i, 0));
  for (const char* name : {"shape-red-circle-0.png", "shape-green-ring-1.png", "scan-invoice-42.png"})
    if (fs::exists(DEMO / "images" / name)) fs::copy_file(DEMO / "images" / name, lib / name);
  const std::vector<std::string> args = {"index",         lib.string(), "--index",      idx.string(),
                                         "--model",       model(),      "--text-window", "32",
                                         "--text-overlap", "4",         "--batch-tokens", "192"};
  // How long one uninterrupted run takes (into a scratch index): the kills land anywhere within it.
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::vector<std::string> scratch = args;
    scratch[3] = (tmp / "scratch").string();
    const pid_t pid = spawn(scratch);
    ASSERT_GT(pid, 0);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const double full_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  // The kills land at random within a window of 70% of that run. The rounds re-embed only what changed, so they
  // are shorter, by how much depends on the machine's load: a round that finishes before its kill narrows the
  // window (a fixed one let 16 of 20 rounds finish first in a CI run).
  auto window_us = static_cast<uint64_t>(full_ms * 700);
  int killed_mid_run = 0;
  bool catalog_seen = false;
  for (int round = 0; round < 20; ++round) {
    // Change the library between rounds, so that every run has work to be killed in: rewrite half the files,
    // add and delete some.
    const int i = static_cast<int>(rng() % 40);
    for (int f = round % 2; f < 40; f += 2)
      if (fs::exists(lib / fmt::format("doc{:02d}.txt", f)))
        write_file(lib / fmt::format("doc{:02d}.txt", f), text_of(f, round + 1));
    if (round % 5 == 2) write_file(lib / fmt::format("new{:02d}.txt", round), text_of(round + 50, round));
    if (round % 7 == 3) fs::remove(lib / fmt::format("doc{:02d}.txt", i));
    std::vector<std::string> a = args;
    if (round % 2) a.push_back("--prune");
    const pid_t pid = spawn(a);
    ASSERT_GT(pid, 0);
    std::this_thread::sleep_for(
        std::chrono::microseconds(static_cast<int64_t>(rng() % std::max<uint64_t>(window_us, 1))));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    killed_mid_run += WIFSIGNALED(status);
    if (!WIFSIGNALED(status)) window_us = window_us * 6 / 10;
    // Whatever moment it died at, the index opens and is consistent (or, killed before it created the catalog in
    // the first rounds, does not exist yet).
    if (!fs::exists(idx / "catalog.sqlite")) {
      EXPECT_FALSE(catalog_seen) << "round " << round << ": the catalog disappeared";
      continue;
    }
    catalog_seen = true;
    auto store = index::Store::open(idx);
    const auto report = store->check();
    ASSERT_TRUE(report.ok()) << "round " << round << ": " << report.problems.front();
  }
  EXPECT_GE(killed_mid_run, 8) << "most kills should land before the run ends";
  // A final run completes the index; it must equal an index built in one go.
  std::vector<std::string> a = args;
  a.push_back("--prune");
  for (const auto& [dir, what] : {std::pair{idx, "resumed"}, std::pair{ref, "reference"}}) {
    a[3] = dir.string();
    const pid_t pid = spawn(a);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << what;
  }
  auto resumed = index::Store::open(idx), reference = index::Store::open(ref);
  EXPECT_TRUE(resumed->check().ok());
  const auto rs = resumed->sources(), fs_ = reference->sources();
  ASSERT_EQ(rs.size(), fs_.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    EXPECT_EQ(rs[i].key, fs_[i].key);
    EXPECT_EQ(rs[i].content_hash, fs_[i].content_hash) << rs[i].key;
    EXPECT_EQ(rs[i].status, "ok") << rs[i].key;
  }
  // Every file once, with the same segments and vectors (cosine, since batches are packed differently).
  EXPECT_EQ(resumed->stats().items, reference->stats().items);
  std::vector<int64_t> ids_a, ids_b;
  std::vector<float> va, vb;
  resumed->load_vectors(ids_a, va);
  reference->load_vectors(ids_b, vb);
  std::map<std::pair<std::string, int64_t>, size_t> row_b;
  const auto hb = reference->describe(ids_b);
  for (size_t r = 0; r < hb.size(); ++r) row_b[{hb[r].key, hb[r].segment}] = r;
  const auto ha = resumed->describe(ids_a);
  const size_t d = static_cast<size_t>(resumed->settings().dim);
  ASSERT_EQ(row_b.size(), ha.size());
  for (size_t r = 0; r < ha.size(); ++r) {
    auto it = row_b.find({ha[r].key, ha[r].segment});
    ASSERT_NE(it, row_b.end()) << ha[r].key << " segment " << ha[r].segment;
    EXPECT_GT(testing::cosine(&va[r * d], &vb[it->second * d], d), 0.99999) << ha[r].key;
  }
}

TEST(EvalDataset, ScoresTheQualityDemoFromCachedVectors) {
  TempDir tmp;
  const std::string base = fmt::format("eval --dataset '{}' --model '{}' --cache '{}' --format json", DEMO.string(),
                                       model(), (tmp / "cache").string());
  auto o =
      run(tmp, base + fmt::format(" --modality all,text,image,audio --save-run '{}'", (tmp / "run").string()));
  ASSERT_EQ(o.rc, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["modes"]["all"]["corpus"], 224);
  EXPECT_EQ(j["modes"]["all"]["queries"], 43);  // 3 of them spoken
  EXPECT_EQ(j["modes"]["audio"]["corpus"], 24);
  EXPECT_EQ(j["modes"]["text"]["corpus"].get<int>() + j["modes"]["image"]["corpus"].get<int>() +
                j["modes"]["audio"]["corpus"].get<int>(),
            224);
  EXPECT_EQ(j["modes"]["all"]["failed"], 0);
  EXPECT_NE(o.err.find("(all): 224 corpus items (224 embedded now"), std::string::npos) << o.err;
  // The saved run, scored by the independent oracle of trec_eval's definitions, gives the same values.
  for (const char* mode : {"all", "image", "audio"}) {
    std::string oracle;
    ASSERT_EQ(testing::run_stdout(fmt::format("'{}' '{}/tests/eval/trec_oracle.py' --qrels '{}' --run '{}.{}'",
                                              OE_PYTHON, OE_SOURCE_DIR, (DEMO / "qrels" / "test.tsv").string(),
                                              (tmp / "run").string(), mode),
                                  &oracle),
              0);
    const auto want = nlohmann::json::parse(oracle)["metrics"];
    for (const auto& [name, value] : want.items())
      EXPECT_NEAR(j["modes"][mode]["metrics"][name].get<double>(), value.get<double>(), 1e-12) << mode << " " << name;
  }
  // Again: nothing is embedded, the numbers are the same.
  auto again = run(tmp, base + " --modality all");
  ASSERT_EQ(again.rc, 0) << again.err;
  EXPECT_NE(again.err.find("224 corpus items (0 embedded now"), std::string::npos) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["modes"]["all"]["metrics"], j["modes"]["all"]["metrics"]);
}

TEST(EvalDataset, BadDatasetsGetClearMessages) {
  TempDir tmp;
  const fs::path ds = tmp / "ds";
  write_file(ds / "corpus.jsonl",
        "{\"_id\": \"d1\", \"title\": \"Cats\", \"text\": \"Cats purr.\"}\n"
        "{\"_id\": \"d2\", \"title\": \"\", \"text\": \"Dogs bark.\"}\n"
        "not json\n"
        "{\"_id\": \"d3\", \"text\": \"\", \"image\": \"missing.png\"}\n");
  write_file(ds / "queries.jsonl", "{\"_id\": \"q1\", \"text\": \"purring\"}\n{\"_id\": \"q2\", \"text\": \"unjudged\"}\n");
  write_file(ds / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tghost\t2\n");
  auto o = run(tmp, fmt::format("eval --dataset '{}' --model '{}' --format json", ds.string(), model()));
  EXPECT_EQ(o.rc, 1) << o.err;  // a corpus line and an image failed; the rest is scored
  EXPECT_NE(o.err.find("corpus.jsonl line 3: not valid JSON"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("missing.png"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("1 judgment(s) name corpus ids that are not in"), std::string::npos) << o.err;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["modes"]["all"]["queries"], 1);
  // d1 is first or second of two retrieved documents; "ghost" (relevance 2) is never retrieved.
  const double ndcg = j["modes"]["all"]["metrics"]["ndcg_cut_10"].get<double>();
  const double idcg = 2.0 + 1.0 / std::log2(3.0);  // ghost (2) then d1 (1)
  EXPECT_TRUE(std::abs(ndcg - 1.0 / idcg) < 1e-12 || std::abs(ndcg - (1.0 / std::log2(3.0)) / idcg) < 1e-12) << ndcg;
  o = run(tmp, fmt::format("eval --dataset '{}' --model '{}'", (tmp / "nothing").string(), model()));
  EXPECT_NE(o.rc, 0);
  fs::create_directories(tmp / "empty");
  o = run(tmp, fmt::format("eval --dataset '{}' --model '{}'", (tmp / "empty").string(), model()));
  EXPECT_NE(o.err.find("is not a BEIR dataset"), std::string::npos) << o.err;
  o = run(tmp, fmt::format("eval --dataset '{}' --model '{}' --fusion early", ds.string(), model()));
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.err.find("--fusion"), std::string::npos) << o.err;  // not a mode: the choices are listed
  // Late fusion changes nothing for a corpus without videos (the same two items fail).
  o = run(tmp, fmt::format("eval --dataset '{}' --model '{}' --fusion late --format json", ds.string(), model()));
  EXPECT_EQ(o.rc, 1) << o.err;
  EXPECT_EQ(nlohmann::json::parse(o.out)["modes"]["all"]["metrics"]["ndcg_cut_10"].get<double>(), ndcg);
}

}  // namespace
}  // namespace oe
