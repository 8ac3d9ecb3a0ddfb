// Top-k inner-product search over a dense matrix (exact: oneDNN's sgemm over blocks of rows, then a running top-k
// per query), and the HNSW graph used for approximate search. Shared by the index, the evaluation and the search
// benchmark. Neither goes through Debian's FAISS (1.7.3), which was tried first: it is built without SIMD (99% of an
// HNSW build was spent in fvec_inner_product_ref: 49 vectors/s at 2048-d) and calls the reference BLAS for exact
// search (1% of the fp32 peak).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <vector>


namespace oe::index {

struct TopK {
  int64_t k = 0;                // columns per query (min(k, n))
  std::vector<int64_t> labels;  // [nq, k] row numbers of the matrix, best first; -1 where absent
  std::vector<float> scores;    // [nq, k]
};

// Exact top-k of matrix [n, d] against queries [nq, d] by inner product; equal scores keep the smaller row first.
// With `allow` ([n] flags), only rows whose flag is non-zero are ranked (k may then exceed the rows returned: the
// labels past them are -1).
TopK exact_top_k(const float* matrix, int64_t n, int64_t d, const float* queries, int64_t nq, int64_t k,
                 const uint8_t* allow = nullptr);

// An HNSW graph over inner product (hnswlib, compiled here with the machine's SIMD). Labels are the caller's ids
// (row numbers when none are given). Searches are serialised (the beam width is state of the graph).
class Hnsw {
 public:
  // `capacity`: the most vectors it will hold.
  Hnsw(int64_t d, int64_t capacity, int64_t m, int64_t ef_construction);
  // Reads a graph written by save(); IoError naming the file when it is not one (or not of dimension d).
  static std::unique_ptr<Hnsw> load(const std::filesystem::path& path, int64_t d);
  ~Hnsw();

  // Adds n rows (on all threads); labels[i] or, without labels, consecutive row numbers.
  void add(const float* matrix, int64_t n, const int64_t* labels = nullptr);
  // Best first; scores are inner products.
  TopK search(const float* queries, int64_t nq, int64_t k, int64_t ef_search) const;
  void save(const std::filesystem::path& path) const;
  int64_t size() const;

 private:
  Hnsw();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace oe::index
