#include "core/shape.h"

#include "core/error.h"

namespace lowbit {

int64_t Shape::dim(int i) const {
  int r = static_cast<int>(dims_.size());
  int k = i < 0 ? i + r : i;
  LB_CHECK(k >= 0 && k < r, "dimension ", i, " out of range for shape ", str());
  return dims_[k];
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int64_t d : dims_) n *= d;
  return n;
}

std::string Shape::str() const {
  std::string s = "[";
  for (size_t i = 0; i < dims_.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[i]);
  }
  return s + "]";
}

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> st(shape.rank());
  int64_t s = 1;
  for (size_t i = shape.rank(); i-- > 0;) {
    st[i] = s;
    s *= shape[i];
  }
  return st;
}

}  // namespace lowbit
