#include "index/knn.h"

#include <algorithm>

#include <hnswlib/hnswlib.h>

#include <mutex>

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

TopK exact_top_k(const float* matrix, int64_t n, int64_t d, const float* queries, int64_t nq, int64_t k,
                 const uint8_t* allow) {
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
        if ((!allow || allow[r0 + r]) && (b.heap.size() < kk || s[r] > b.heap.front().first)) b.offer(s[r], r0 + r, kk);
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

struct Hnsw::Impl {
  explicit Impl(int64_t d) : space(static_cast<size_t>(d)), d(d) {}
  hnswlib::InnerProductSpace space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
  int64_t d;
  int64_t next_row = 0;
  mutable std::mutex search_mutex;
};

Hnsw::Hnsw() = default;
Hnsw::~Hnsw() = default;

Hnsw::Hnsw(int64_t d, int64_t capacity, int64_t m, int64_t ef_construction) : impl_(std::make_unique<Impl>(d)) {
  impl_->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      &impl_->space, static_cast<size_t>(std::max<int64_t>(capacity, 1)), static_cast<size_t>(m),
      static_cast<size_t>(ef_construction));
}

std::unique_ptr<Hnsw> Hnsw::load(const std::filesystem::path& path, int64_t d) {
  std::unique_ptr<Hnsw> h(new Hnsw());
  h->impl_ = std::make_unique<Impl>(d);
  try {
    h->impl_->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(&h->impl_->space, path.string());
  } catch (const std::exception& e) {
    throw IoError(fmt::format("{}: not a readable HNSW graph ({})", path.string(), e.what()));
  }
  if (h->impl_->graph->data_size_ != static_cast<size_t>(d) * sizeof(float))
    throw IoError(fmt::format("{}: an HNSW graph of another dimension", path.string()));
  h->impl_->next_row = static_cast<int64_t>(h->impl_->graph->cur_element_count);
  return h;
}

void Hnsw::add(const float* matrix, int64_t n, const int64_t* labels) {
  auto& g = *impl_->graph;
  if (static_cast<size_t>(impl_->next_row + n) > g.max_elements_)
    g.resizeIndex(static_cast<size_t>(impl_->next_row + n));
  const int64_t first = impl_->next_row, d = impl_->d;
  // hnswlib's addPoint is thread-safe (per-node locks).
#pragma omp parallel for schedule(dynamic, 64)
  for (int64_t i = 0; i < n; ++i)
    g.addPoint(matrix + i * d, static_cast<hnswlib::labeltype>(labels ? labels[i] : first + i));
  impl_->next_row += n;
}

int64_t Hnsw::size() const { return static_cast<int64_t>(impl_->graph->cur_element_count); }

void Hnsw::save(const std::filesystem::path& path) const { impl_->graph->saveIndex(path.string()); }

TopK Hnsw::search(const float* queries, int64_t nq, int64_t k, int64_t ef_search) const {
  TopK out;
  out.k = std::max<int64_t>(0, std::min(k, size()));
  if (out.k == 0 || nq <= 0) return out;
  out.labels.assign(static_cast<size_t>(nq * out.k), -1);
  out.scores.assign(out.labels.size(), 0.0f);
  std::lock_guard<std::mutex> lock(impl_->search_mutex);
  impl_->graph->setEf(static_cast<size_t>(std::max(ef_search, out.k)));
  for (int64_t q = 0; q < nq; ++q) {
    auto found = impl_->graph->searchKnn(queries + q * impl_->d, static_cast<size_t>(out.k));
    // The queue pops the largest distance (1 - inner product) first: fill from the back.
    for (int64_t i = static_cast<int64_t>(found.size()) - 1; i >= 0; --i) {
      out.labels[q * out.k + i] = static_cast<int64_t>(found.top().second);
      out.scores[q * out.k + i] = 1.0f - found.top().first;
      found.pop();
    }
  }
  return out;
}

}  // namespace oe::index
