// Top-k inner-product search over a dense matrix (exact: oneDNN's sgemm over blocks of rows, then a running top-k
// per query), and the HNSW graph (FAISS) used for approximate search. Shared by the index, the evaluation and the
// search benchmark. Exact search does not go through FAISS: Debian's FAISS calls the system BLAS, which is the
// reference (unoptimised) BLAS unless another is installed, and ran batched search at 1% of the fp32 peak here.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace faiss {
struct Index;
}

namespace oe::index {

struct TopK {
  int64_t k = 0;                // columns per query (min(k, n))
  std::vector<int64_t> labels;  // [nq, k] row numbers of the matrix, best first; -1 where absent
  std::vector<float> scores;    // [nq, k]
};

// Exact top-k of matrix [n, d] against queries [nq, d] by inner product; equal scores keep the smaller row first.
TopK exact_top_k(const float* matrix, int64_t n, int64_t d, const float* queries, int64_t nq, int64_t k);

// An HNSW graph (inner product) over matrix rows; `labels` of its searches are row numbers.
class Hnsw {
 public:
  Hnsw(int64_t d, int64_t m, int64_t ef_construction);
  ~Hnsw();
  void add(const float* matrix, int64_t n);
  // Not safe to call concurrently: the beam width is set on the graph (see knn.cc).
  TopK search(const float* queries, int64_t nq, int64_t k, int64_t ef_search) const;
  int64_t size() const;

 private:
  std::unique_ptr<faiss::Index> index_;
};

}  // namespace oe::index
