// Tensor: a typed, strided view into shared Storage. NCHW is the default image layout.
// Copies of a Tensor share storage (like torch.Tensor); clone() makes a deep copy.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "tensor/storage.h"

namespace lowbit {

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (defined() == false)

  // Factories (contiguous, CPU).
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, float value);
  static Tensor from_vector(const Shape& shape, const std::vector<float>& values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  size_t rank() const { return shape_.rank(); }
  int64_t size(int dim) const { return shape_.dim(dim); }
  int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device() : Device::cpu; }
  bool is_contiguous() const;
  int64_t offset() const { return offset_; }

  // Typed element pointer to the first element of this view. Checks the dtype.
  template <typename T> T* data();
  template <typename T> const T* data() const;
  float* f32() { return data<float>(); }
  const float* f32() const { return data<float>(); }
  void* raw_data();
  const void* raw_data() const;

  // Views (share storage). reshape needs a contiguous tensor; one dim may be -1.
  Tensor reshape(const Shape& shape) const;
  Tensor flatten(int start_dim = 1) const;
  // Rows [begin, end) of dim 0 (a batch slice).
  Tensor slice0(int64_t begin, int64_t end) const;

  Tensor contiguous() const;  // this if already contiguous, else a packed copy
  Tensor clone() const;       // deep copy, contiguous

  void fill(float value);
  void zero();
  // Elementwise this += other (same shape, f32, contiguous).
  void add_(const Tensor& other);
  // Copies values from src (same shape and dtype) into this tensor's memory.
  void copy_from(const Tensor& src);

  float item() const;  // single-element f32 tensor
  std::vector<float> to_vector() const;
  std::string str() const;  // "Tensor f32 [2, 3]"

  const std::shared_ptr<Storage>& storage() const { return storage_; }

 private:
  std::shared_ptr<Storage> storage_;
  Shape shape_;
  std::vector<int64_t> strides_;
  int64_t offset_ = 0;  // in elements
  DType dtype_ = DType::f32;
};

template <typename T>
T* Tensor::data() {
  LB_CHECK(defined(), "access to an undefined tensor");
  LB_CHECK(dtype_ == dtype_of<T>(), "tensor holds ", dtype_name(dtype_), ", accessed as ", dtype_name(dtype_of<T>()));
  return static_cast<T*>(storage_->data()) + offset_;
}

template <typename T>
const T* Tensor::data() const {
  LB_CHECK(defined(), "access to an undefined tensor");
  LB_CHECK(dtype_ == dtype_of<T>(), "tensor holds ", dtype_name(dtype_), ", accessed as ", dtype_name(dtype_of<T>()));
  return static_cast<const T*>(storage_->data()) + offset_;
}

}  // namespace lowbit
