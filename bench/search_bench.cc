// Search benchmark: exact (flat inner product) and HNSW search over N random unit vectors of dimension D, the
// shapes of an omni-embed index (D = 2048).
//
//   search_bench [--n 1000000] [--d 2048] [--queries 200] [--k 10] [--hnsw-n N] [--hnsw-m 32]
//                [--ef-construction 80] [--ef-search 16,64,256] [--threads T] [--skip-hnsw]
//                [--clusters C [--spread 0.5]] [--store-n N]
//
// --store-n N times what `omni-embed search` does instead: an index folder (SQLite catalog) of N random vectors is
// written to a temporary folder, then searched with one query: the first search reads the catalog and writes the
// memory-mapped vector file, later ones (a new Store each time, as a new process would) map that file after checking
// its checksum; the cost of that check alone is printed last.
//
// Exact search is timed two ways: one query at a time (latency; it streams the whole matrix, so its bound is memory
// bandwidth, reported against the rate of a vectorised sum over the same matrix, a lower bound of it), and all
// queries in one call (throughput; one sgemm per block of rows, reported against the measured fp32 FMA peak). HNSW is
// built over the first --hnsw-n vectors (default: all) and its recall@k is measured against exact search over the same
// vectors. Random vectors are the hardest case for a graph index (no clusters, every neighbour nearly as far as any
// other), so its recall there is a lower bound for real embeddings; --clusters draws vectors around C centres instead.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <random>
#include <string>
#include <vector>

#include "core/threads.h"
#include "core/timer.h"
#include "index/knn.h"
#include "index/store.h"
#include "io/hash.h"
#include "kernels/peak.h"

#ifndef OE_GIT_COMMIT
#define OE_GIT_COMMIT "unknown"
#endif

namespace {

struct Args {
  int64_t n = 1000000, d = 2048, queries = 200, k = 10, hnsw_n = -1, hnsw_m = 32, ef_construction = 80;
  std::vector<int64_t> ef_search = {16, 64, 256};
  int threads = 0;
  bool skip_hnsw = false;
  int64_t store_n = 0;   // > 0: also time Store::search on an index of this many vectors (then exit)
  int64_t clusters = 0;  // > 0: vectors drawn around this many random centres instead of uniformly
  double spread = 0.5;   // with clusters: noise norm relative to the centre's
};

// Rows of unit vectors from a per-row seeded generator (deterministic for any thread count). With `centres`
// ([n_centres, d] unit rows), each row is a random centre plus Gaussian noise of relative norm `spread`: data with
// the cluster structure real embeddings have, where uniform random vectors have none.
void random_unit_rows(float* out, int64_t rows, int64_t d, uint64_t seed, const std::vector<float>* centres = nullptr,
                      double spread = 0) {
  const int64_t n_centres = centres ? static_cast<int64_t>(centres->size()) / d : 0;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    std::mt19937_64 rng(seed * 1000003 + static_cast<uint64_t>(r));
    std::normal_distribution<float> nd;
    float* v = out + r * d;
    const float* centre = n_centres ? centres->data() + static_cast<int64_t>(rng() % n_centres) * d : nullptr;
    const float noise = centre ? static_cast<float>(spread / std::sqrt(static_cast<double>(d))) : 1.0f;
    double norm = 0;
    for (int64_t c = 0; c < d; ++c) {
      v[c] = (centre ? centre[c] : 0.0f) + noise * nd(rng);
      norm += static_cast<double>(v[c]) * v[c];
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (int64_t c = 0; c < d; ++c) v[c] *= inv;
  }
}

// Read bandwidth (GB/s): summing a buffer far larger than the caches, vectorised, on all threads.
double measure_read_bandwidth(const float* data, int64_t n) {
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    oe::Timer t;
    double total = 0;
#pragma omp parallel reduction(+ : total)
    {
      const int nt = omp_get_num_threads(), id = omp_get_thread_num();
      const int64_t chunk = (n / nt) & ~int64_t{63};
      const int64_t begin = id * chunk, end = id == nt - 1 ? n : begin + chunk;
      float s = 0;
      int64_t i = begin;
#ifdef __AVX512F__
      // Eight independent accumulators, so the sum is bound by memory, not by the add latency.
      __m512 acc[8];
      for (auto& v : acc) v = _mm512_set1_ps(0.0f);
      for (; i + 128 <= end; i += 128) {
        _mm_prefetch(reinterpret_cast<const char*>(data + i + 1024), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(data + i + 1024 + 64), _MM_HINT_T0);
        for (int u = 0; u < 8; ++u) acc[u] = _mm512_add_ps(acc[u], _mm512_loadu_ps(data + i + 16 * u));
      }
      alignas(64) float lanes[16];
      for (auto& v : acc) {
        _mm512_store_ps(lanes, v);
        for (float x : lanes) s += x;
      }
#endif
      for (; i < end; ++i) s += data[i];
      total += s;
    }
    const double gbs = static_cast<double>(n) * 4 / t.seconds() / 1e9;
    if (total == 12345.678) std::printf(" ");  // keeps the sum alive
    best = std::max(best, gbs);
  }
  return best;
}

std::string fmt_clusters(int64_t clusters, double spread) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%lld clusters, spread %.2f", static_cast<long long>(clusters), spread);
  return buf;
}

int store_bench(const Args& a) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("search_bench_store_" + std::to_string(::getpid()));
  oe::index::IndexSettings s;
  s.model = "random";
  s.model_fingerprint = "random";
  s.embedding = "{}";
  s.dim = a.d;
  std::vector<float> rows(static_cast<size_t>(1000 * a.d)), query(static_cast<size_t>(a.d));
  random_unit_rows(query.data(), 1, a.d, 9);
  oe::Timer tw;
  {
    auto store = oe::index::Store::open_for_writing(dir, s);
    for (int64_t b = 0; b < a.store_n; b += 1000) {
      const int64_t n = std::min<int64_t>(1000, a.store_n - b);
      random_unit_rows(rows.data(), n, a.d, 100 + static_cast<uint64_t>(b));
      std::vector<oe::index::Store::SourceUpdate> ups(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        auto& u = ups[static_cast<size_t>(i)];
        u.source.key = "/random/";
        u.source.key += std::to_string(b + i);
        u.source.path = u.source.key;
        u.source.origin = "/random";
        u.source.content_hash.assign(1, '-');  // (a one-char literal trips GCC 12's -Wrestrict)
        u.source.modality = "text";
        u.source.status = "ok";
        oe::index::Segment seg;
        seg.modality = "text";
        seg.vector.assign(rows.begin() + i * a.d, rows.begin() + (i + 1) * a.d);
        u.segments.push_back(std::move(seg));
      }
      store->put(ups);
    }
  }
  std::printf("index of %lld vectors written in %.1f s\n", static_cast<long long>(a.store_n), tw.seconds());
  for (int rep = 0; rep < 4; ++rep) {
    oe::Timer t;
    auto store = oe::index::Store::open(dir);
    const auto hits = store->search(query.data(), a.k);
    std::printf("search %d (new Store, top %zu): %.1f ms%s\n", rep + 1, hits.size(), t.seconds() * 1e3,
                rep == 0 ? " (reads the catalog, writes the vector file)" : " (maps the vector file)");
  }
  // What checking the vector file costs each new Store (its checksum, read from the page cache), and what the
  // cryptographic hash of the catalog's content hashes would cost in its place.
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("flat-", 0) != 0) continue;
    const double mb = static_cast<double>(fs::file_size(e.path())) / 1e6;
    oe::Timer tx;
    oe::io::cache_checksum_file_hex(e.path());
    const double xxh = tx.seconds();
    oe::Timer ts;
    oe::io::sha256_file_hex(e.path());
    const double sha = ts.seconds();
    std::printf("checksum of the %.0f MB vector file: XXH3-128 %.1f ms (%.1f GB/s), SHA-256 %.1f ms (%.1f GB/s)\n", mb,
                xxh * 1e3, mb / 1e3 / xxh, sha * 1e3, mb / 1e3 / sha);
  }
  fs::remove_all(dir);
  return 0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double recall_at_k(const oe::index::TopK& exact, const oe::index::TopK& approx, int64_t nq) {
  int64_t hit = 0;
  for (int64_t q = 0; q < nq; ++q)
    for (int64_t i = 0; i < exact.k; ++i) {
      const int64_t want = exact.labels[q * exact.k + i];
      for (int64_t j = 0; j < approx.k; ++j) hit += approx.labels[q * approx.k + j] == want;
    }
  return static_cast<double>(hit) / static_cast<double>(nq * exact.k);
}

bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(s + " needs a value");
      return argv[++i];
    };
    if (s == "--n") a.n = std::stoll(next());
    else if (s == "--d") a.d = std::stoll(next());
    else if (s == "--queries") a.queries = std::stoll(next());
    else if (s == "--k") a.k = std::stoll(next());
    else if (s == "--hnsw-n") a.hnsw_n = std::stoll(next());
    else if (s == "--hnsw-m") a.hnsw_m = std::stoll(next());
    else if (s == "--ef-construction") a.ef_construction = std::stoll(next());
    else if (s == "--threads") a.threads = std::stoi(next());
    else if (s == "--skip-hnsw") a.skip_hnsw = true;
    else if (s == "--clusters") a.clusters = std::stoll(next());
    else if (s == "--store-n") a.store_n = std::stoll(next());
    else if (s == "--spread") a.spread = std::stod(next());
    else if (s == "--ef-search") {
      a.ef_search.clear();
      std::string v = next();
      for (size_t p = 0; p < v.size();) {
        size_t c = v.find(',', p);
        a.ef_search.push_back(std::stoll(v.substr(p, c == std::string::npos ? std::string::npos : c - p)));
        p = c == std::string::npos ? v.size() : c + 1;
      }
    } else {
      std::fprintf(stderr, "search_bench: unknown argument %s (see the comment at the top of search_bench.cc)\n",
                   s.c_str());
      return false;
    }
  }
  if (a.hnsw_n < 0 || a.hnsw_n > a.n) a.hnsw_n = a.n;
  return a.n > 0 && a.d > 0 && a.queries > 0 && a.k > 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // lines appear as they are measured, also into a file
  Args a;
  try {
    if (!parse(argc, argv, a)) return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "search_bench: %s\n", e.what());
    return 2;
  }
  oe::set_num_threads(a.threads);
  const int threads = oe::num_threads();
  if (a.store_n > 0) return store_bench(a);
  std::printf("search_bench (commit %s): n=%lld d=%lld queries=%lld k=%lld threads=%d data=%s\n", OE_GIT_COMMIT,
              static_cast<long long>(a.n), static_cast<long long>(a.d), static_cast<long long>(a.queries),
              static_cast<long long>(a.k), threads,
              a.clusters > 0 ? fmt_clusters(a.clusters, a.spread).c_str() : "uniform random unit vectors");
  const double fp32_peak = oe::kernels::measure_peak_gflops(oe::kernels::Compute::F32, threads);
  oe::Timer gen;
  std::vector<float> base(static_cast<size_t>(a.n * a.d)), queries(static_cast<size_t>(a.queries * a.d));
  std::vector<float> centres;
  if (a.clusters > 0) {
    centres.resize(static_cast<size_t>(a.clusters * a.d));
    random_unit_rows(centres.data(), a.clusters, a.d, 3);
  }
  random_unit_rows(base.data(), a.n, a.d, 1, a.clusters > 0 ? &centres : nullptr, a.spread);
  random_unit_rows(queries.data(), a.queries, a.d, 2, a.clusters > 0 ? &centres : nullptr, a.spread);
  const double bandwidth = measure_read_bandwidth(base.data(), a.n * a.d);
  // The summing rate is a lower bound of the memory bandwidth (oneDNN's one-row sgemm can stream faster), so the
  // one-query percentage may exceed 100.
  std::printf(
      "generated %.2f GB of vectors in %.1f s; measured: vectorised summing rate %.1f GB/s, fp32 FMA peak %.0f "
      "GFLOP/s\n",
      static_cast<double>(base.size()) * 4 / 1e9, gen.seconds(), bandwidth, fp32_peak);

  // Exact, one query per call.
  std::vector<double> lat;
  const int64_t single = std::min<int64_t>(a.queries, 20);
  for (int64_t q = 0; q < single; ++q) {
    oe::Timer t;
    auto r = oe::index::exact_top_k(base.data(), a.n, a.d, queries.data() + q * a.d, 1, a.k);
    lat.push_back(t.seconds());
  }
  const double lat_med = median(lat);
  const double bytes = static_cast<double>(a.n * a.d) * 4;
  std::printf("exact, 1 query per call:   median latency %.1f ms (%.1f QPS), %.1f GB/s = %.0f%% of the summing rate\n",
              lat_med * 1e3, 1 / lat_med, bytes / lat_med / 1e9, 100 * bytes / lat_med / 1e9 / bandwidth);
  // Exact, all queries in one call.
  oe::Timer tb;
  const auto exact = oe::index::exact_top_k(base.data(), a.n, a.d, queries.data(), a.queries, a.k);
  const double tbatch = tb.seconds();
  const double gflops = 2.0 * static_cast<double>(a.n) * a.d * a.queries / tbatch / 1e9;
  std::printf("exact, %lld queries per call: %.2f s, %.1f QPS, %.0f GFLOP/s = %.0f%% of the fp32 peak\n",
              static_cast<long long>(a.queries), tbatch, a.queries / tbatch, gflops, 100 * gflops / fp32_peak);

  if (a.skip_hnsw) return 0;
  oe::index::Hnsw hnsw(a.d, a.hnsw_n, a.hnsw_m, a.ef_construction);
  oe::Timer tbuild;
  const int64_t chunk = 50000;
  for (int64_t done = 0; done < a.hnsw_n; done += chunk) {
    hnsw.add(base.data() + done * a.d, std::min(chunk, a.hnsw_n - done));
    std::fprintf(stderr, "\rHNSW build: %lld/%lld vectors, %.0f s",
                 static_cast<long long>(std::min(done + chunk, a.hnsw_n)), static_cast<long long>(a.hnsw_n),
                 tbuild.seconds());
  }
  std::fprintf(stderr, "\n");
  const double build = tbuild.seconds();
  std::printf("HNSW (M=%lld, efConstruction=%lld) over %lld vectors: built in %.1f s (%.0f vectors/s)\n",
              static_cast<long long>(a.hnsw_m), static_cast<long long>(a.ef_construction),
              static_cast<long long>(a.hnsw_n), build, a.hnsw_n / build);
  const auto truth =
      a.hnsw_n == a.n ? exact : oe::index::exact_top_k(base.data(), a.hnsw_n, a.d, queries.data(), a.queries, a.k);
  for (int64_t ef : a.ef_search) {
    // One query per call, the way search serves a user.
    oe::index::TopK all;
    all.k = std::min(a.k, a.hnsw_n);
    oe::Timer ts;
    for (int64_t q = 0; q < a.queries; ++q) {
      auto r = hnsw.search(queries.data() + q * a.d, 1, a.k, ef);
      all.labels.insert(all.labels.end(), r.labels.begin(), r.labels.end());
    }
    const double secs = ts.seconds();
    std::printf("HNSW efSearch=%-4lld recall@%lld vs exact %.3f, %.1f QPS (1 query per call), %.2f ms per query\n",
                static_cast<long long>(ef), static_cast<long long>(a.k), recall_at_k(truth, all, a.queries),
                a.queries / secs, secs / a.queries * 1e3);
  }
  return 0;
}
