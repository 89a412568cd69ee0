#include "tensor/storage.h"

#include <cstdlib>
#include <new>

#include "core/error.h"

namespace lowbit {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  LB_CHECK(device == Device::cpu, "CUDA storage is not available in this build (device=cuda)");
  size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded == 0) rounded = kAlignment;
  data_ = std::aligned_alloc(kAlignment, rounded);
  if (!data_) throw std::bad_alloc();
}

Storage::~Storage() { std::free(data_); }

}  // namespace lowbit
