// Shape: the extents of a tensor, outermost first (NCHW for images).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace lowbit {

class Shape {
 public:
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) : dims_(dims) {}
  explicit Shape(std::vector<int64_t> dims) : dims_(std::move(dims)) {}

  size_t rank() const { return dims_.size(); }
  int64_t operator[](size_t i) const { return dims_[i]; }
  int64_t& operator[](size_t i) { return dims_[i]; }
  // Negative index counts from the back (-1 = last dim).
  int64_t dim(int i) const;
  int64_t numel() const;
  const std::vector<int64_t>& dims() const { return dims_; }
  bool operator==(const Shape& o) const { return dims_ == o.dims_; }
  bool operator!=(const Shape& o) const { return dims_ != o.dims_; }
  // "[128, 1, 28, 28]"
  std::string str() const;

 private:
  std::vector<int64_t> dims_;
};

// Row-major (contiguous) strides of a shape, in elements.
std::vector<int64_t> contiguous_strides(const Shape& shape);

}  // namespace lowbit
