#include "index/knn.h"

#include <algorithm>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/utils/distances.h>

#include "core/error.h"

namespace oe::index {

TopK exact_top_k(const float* matrix, int64_t n, int64_t d, const float* queries, int64_t nq, int64_t k) {
  TopK out;
  out.k = std::max<int64_t>(0, std::min(k, n));
  if (out.k == 0 || nq == 0) return out;
  out.labels.resize(static_cast<size_t>(nq * out.k));
  out.scores.resize(out.labels.size());
  faiss::knn_inner_product(queries, matrix, static_cast<size_t>(d), static_cast<size_t>(nq), static_cast<size_t>(n),
                           static_cast<size_t>(out.k), out.scores.data(), out.labels.data());
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
  faiss::SearchParametersHNSW params;
  params.efSearch = static_cast<int>(std::max(ef_search, out.k));
  index_->search(nq, queries, out.k, out.scores.data(), out.labels.data(), &params);
  return out;
}

}  // namespace oe::index
