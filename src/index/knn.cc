#include "index/knn.h"

#include <algorithm>

#include <faiss/IndexHNSW.h>

#include "core/error.h"
#include "kernels/matmul.h"

namespace oe::index {

namespace {

// A query's best k so far: a min-heap on (score, -row), so the worst kept entry is on top and, among equal
// scores, the larger row is dropped first (ties keep the smaller row, as a stable sort would).
struct Best {
  std::vector<std::pair<float, int64_t>> heap;
  static bool worse(const std::pair<float, int64_t>& a, const std::pair<float, int64_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  }
  void offer(float score, int64_t row, size_t k) {
    if (heap.size() < k) {
      heap.emplace_back(score, row);
      std::push_heap(heap.begin(), heap.end(), worse);
    } else if (score > heap.front().first) {  // equal scores: the earlier (smaller) row stays
      std::pop_heap(heap.begin(), heap.end(), worse);
      heap.back() = {score, row};
      std::push_heap(heap.begin(), heap.end(), worse);
    }
  }
};

}  // namespace

TopK exact_top_k(const float* matrix, int64_t n, int64_t d, const float* queries, int64_t nq, int64_t k) {
  TopK out;
  out.k = std::max<int64_t>(0, std::min(k, n));
  if (out.k == 0 || nq <= 0) return out;
  // Scores of a block of rows against every query: one sgemm per block (memory-bound streaming for one query,
  // compute-bound for many), then each query's running top-k over the block.
  const int64_t block = std::clamp<int64_t>((int64_t{64} << 20) / (4 * std::max<int64_t>(nq, 1)), 1024, 65536);
  std::vector<float> scores(static_cast<size_t>(nq * std::min(block, n)));
  std::vector<Best> best(static_cast<size_t>(nq));
  const size_t kk = static_cast<size_t>(out.k);
  for (int64_t r0 = 0; r0 < n; r0 += block) {
    const int64_t rows = std::min(block, n - r0);
    kernels::gemm_f32_nt(queries, nq, matrix + r0 * d, rows, d, scores.data());
#pragma omp parallel for schedule(static) if (nq > 1)
    for (int64_t q = 0; q < nq; ++q) {
      const float* s = scores.data() + q * rows;
      Best& b = best[static_cast<size_t>(q)];
      for (int64_t r = 0; r < rows; ++r)
        if (b.heap.size() < kk || s[r] > b.heap.front().first) b.offer(s[r], r0 + r, kk);
    }
  }
  out.labels.assign(static_cast<size_t>(nq * out.k), -1);
  out.scores.assign(out.labels.size(), 0.0f);
  for (int64_t q = 0; q < nq; ++q) {
    auto& h = best[static_cast<size_t>(q)].heap;
    std::sort(h.begin(), h.end(), Best::worse);  // best first
    for (size_t i = 0; i < h.size(); ++i) {
      out.labels[q * out.k + static_cast<int64_t>(i)] = h[i].second;
      out.scores[q * out.k + static_cast<int64_t>(i)] = h[i].first;
    }
  }
  return out;
}

Hnsw::Hnsw(int64_t d, int64_t m, int64_t ef_construction) {
  auto* h = new faiss::IndexHNSWFlat(static_cast<int>(d), static_cast<int>(m), faiss::METRIC_INNER_PRODUCT);
  h->hnsw.efConstruction = static_cast<int>(ef_construction);
  index_.reset(h);
}

Hnsw::~Hnsw() = default;

void Hnsw::add(const float* matrix, int64_t n) { index_->add(n, matrix); }

int64_t Hnsw::size() const { return index_->ntotal; }

TopK Hnsw::search(const float* queries, int64_t nq, int64_t k, int64_t ef_search) const {
  TopK out;
  out.k = std::max<int64_t>(0, std::min(k, index_->ntotal));
  if (out.k == 0 || nq == 0) return out;
  out.labels.resize(static_cast<size_t>(nq * out.k));
  out.scores.resize(out.labels.size());
  // FAISS 1.7.3 reads the beam width from the graph even when SearchParametersHNSW is passed (measured: the
  // parameter's value had no effect), so it is set on the graph itself.
  static_cast<faiss::IndexHNSW*>(index_.get())->hnsw.efSearch = static_cast<int>(std::max(ef_search, out.k));
  index_->search(nq, queries, out.k, out.scores.data(), out.labels.data());
  return out;
}

}  // namespace oe::index
