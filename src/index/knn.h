// Top-k inner-product search over a dense matrix with FAISS (exact; its BLAS path for many queries at once), and
// the HNSW graph used for approximate search. Shared by the index, the evaluation and the search benchmark.
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

// Exact top-k of matrix [n, d] against queries [nq, d] by inner product.
TopK exact_top_k(const float* matrix, int64_t n, int64_t d, const float* queries, int64_t nq, int64_t k);

// An HNSW graph (inner product) over matrix rows; `labels` of its searches are row numbers.
class Hnsw {
 public:
  Hnsw(int64_t d, int64_t m, int64_t ef_construction);
  ~Hnsw();
  void add(const float* matrix, int64_t n);
  TopK search(const float* queries, int64_t nq, int64_t k, int64_t ef_search) const;
  int64_t size() const;

 private:
  std::unique_ptr<faiss::Index> index_;
};

}  // namespace oe::index
