// A minimal tensor: a shape, an element type and a 64-byte aligned buffer, owned (shared) or borrowed (view).
// Model code mostly works on raw float arrays; Tensor is the currency between I/O, model and tools.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace oe {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[2, 3]"

class Tensor {
 public:
  Tensor() = default;
  // Allocates zero-filled storage.
  Tensor(Shape shape, DType dtype);
  // Borrows `data`; the caller keeps it alive.
  static Tensor view(void* data, Shape shape, DType dtype);

  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int rank() const { return static_cast<int>(shape_.size()); }
  bool empty() const { return data_ == nullptr; }

  void* data() { return data_; }
  const void* data() const { return data_; }
  template <typename T>
  T* ptr() { return static_cast<T*>(data_); }
  template <typename T>
  const T* ptr() const { return static_cast<const T*>(data_); }

  // Same storage, new shape with the same element count.
  Tensor reshaped(Shape shape) const;
  // A float copy (converting BF16/F16).
  Tensor to_f32() const;

 private:
  Shape shape_;
  DType dtype_ = DType::F32;
  std::shared_ptr<void> storage_;
  void* data_ = nullptr;
};

// Aligned, uninitialised float buffer for scratch space.
struct AlignedFree {
  void operator()(void* p) const;
};
template <typename T>
using AlignedPtr = std::unique_ptr<T[], AlignedFree>;
void* aligned_alloc_bytes(size_t bytes);
template <typename T>
AlignedPtr<T> aligned_array(size_t n) {
  return AlignedPtr<T>(static_cast<T*>(aligned_alloc_bytes(n * sizeof(T))));
}

}  // namespace oe
