#include "tensor/tensor.h"

#include <cstring>
#include <sstream>

namespace lowbit {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape.dims()) LB_CHECK(d >= 0, "negative dimension in shape ", shape.str());
  Tensor t;
  t.storage_ = std::make_shared<Storage>(static_cast<size_t>(shape.numel()) * dtype_size(dtype), device);
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.dtype_ = dtype;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, static_cast<size_t>(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape);
  t.fill(value);
  return t;
}

Tensor Tensor::from_vector(const Shape& shape, const std::vector<float>& values) {
  LB_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
           " values for shape ", shape.str());
  Tensor t = empty(shape);
  std::memcpy(t.f32(), values.data(), values.size() * sizeof(float));
  return t;
}

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

void* Tensor::raw_data() {
  LB_CHECK(defined(), "access to an undefined tensor");
  return static_cast<char*>(storage_->data()) + offset_ * dtype_size(dtype_);
}

const void* Tensor::raw_data() const {
  LB_CHECK(defined(), "access to an undefined tensor");
  return static_cast<const char*>(storage_->data()) + offset_ * dtype_size(dtype_);
}

Tensor Tensor::reshape(const Shape& shape) const {
  LB_CHECK(is_contiguous(), "reshape of a non-contiguous tensor ", str(), ": call contiguous() first");
  std::vector<int64_t> dims = shape.dims();
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      LB_CHECK(infer < 0, "reshape: more than one -1 in ", shape.str());
      infer = static_cast<int>(i);
    } else {
      known *= dims[i];
    }
  }
  if (infer >= 0) {
    LB_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer -1 in ", shape.str(), " from ", numel(), " elements");
    dims[infer] = numel() / known;
  }
  Shape s(dims);
  LB_CHECK(s.numel() == numel(), "reshape: ", shape_.str(), " (", numel(), " elements) cannot become ", shape.str());
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::flatten(int start_dim) const {
  LB_CHECK(start_dim >= 0 && start_dim <= static_cast<int>(rank()), "flatten: start_dim ", start_dim, " for ", str());
  std::vector<int64_t> dims(shape_.dims().begin(), shape_.dims().begin() + start_dim);
  int64_t rest = 1;
  for (size_t i = start_dim; i < rank(); ++i) rest *= shape_[i];
  dims.push_back(rest);
  return reshape(Shape(dims));
}

Tensor Tensor::slice0(int64_t begin, int64_t end) const {
  LB_CHECK(rank() >= 1 && begin >= 0 && begin <= end && end <= shape_[0], "slice0 [", begin, ", ", end, ") of ", str());
  Tensor t = *this;
  t.shape_[0] = end - begin;
  t.offset_ += begin * strides_[0];
  return t;
}

template <typename T>
static void strided_copy(const T* src, T* dst, const Shape& shape, const std::vector<int64_t>& st) {
  const size_t r = shape.rank();
  if (r == 0) { *dst = *src; return; }
  std::vector<int64_t> idx(r, 0);
  int64_t n = shape.numel();
  for (int64_t k = 0; k < n; ++k) {
    int64_t off = 0;
    for (size_t d = 0; d < r; ++d) off += idx[d] * st[d];
    dst[k] = src[off];
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  Tensor t = empty(shape_, dtype_);
  switch (dtype_) {
    case DType::f32: strided_copy(data<float>(), t.data<float>(), shape_, strides_); break;
    case DType::s32: strided_copy(data<int32_t>(), t.data<int32_t>(), shape_, strides_); break;
    case DType::s8: strided_copy(data<int8_t>(), t.data<int8_t>(), shape_, strides_); break;
    case DType::u8: strided_copy(data<uint8_t>(), t.data<uint8_t>(), shape_, strides_); break;
  }
  return t;
}

Tensor Tensor::clone() const {
  Tensor src = contiguous();
  Tensor t = empty(shape_, dtype_);
  std::memcpy(t.raw_data(), src.raw_data(), static_cast<size_t>(numel()) * dtype_size(dtype_));
  return t;
}

void Tensor::fill(float value) {
  LB_CHECK(is_contiguous(), "fill of a non-contiguous tensor");
  float* p = f32();
  const int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

void Tensor::zero() {
  LB_CHECK(is_contiguous(), "zero of a non-contiguous tensor");
  std::memset(raw_data(), 0, static_cast<size_t>(numel()) * dtype_size(dtype_));
}

void Tensor::add_(const Tensor& other) {
  LB_CHECK(shape_ == other.shape_, "add_: shapes ", shape_.str(), " and ", other.shape_.str(), " differ");
  LB_CHECK(is_contiguous() && other.is_contiguous(), "add_ needs contiguous tensors");
  float* a = f32();
  const float* b = other.f32();
  const int64_t n = numel();
#pragma omp parallel for simd if (n > 32768) schedule(static)
  for (int64_t i = 0; i < n; ++i) a[i] += b[i];
}

void Tensor::copy_from(const Tensor& src) {
  LB_CHECK(shape_ == src.shape_ && dtype_ == src.dtype_, "copy_from: ", src.str(), " into ", str());
  LB_CHECK(is_contiguous(), "copy_from into a non-contiguous tensor");
  Tensor s = src.contiguous();
  std::memcpy(raw_data(), s.raw_data(), static_cast<size_t>(numel()) * dtype_size(dtype_));
}

float Tensor::item() const {
  LB_CHECK(numel() == 1, "item() of a tensor with ", numel(), " elements");
  return *f32();
}

std::vector<float> Tensor::to_vector() const {
  Tensor c = contiguous();
  const float* p = c.f32();
  return std::vector<float>(p, p + numel());
}

std::string Tensor::str() const {
  std::ostringstream os;
  os << "Tensor " << dtype_name(dtype_) << " " << shape_.str();
  return os.str();
}

}  // namespace lowbit
