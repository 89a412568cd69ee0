// Storage: a 64-byte aligned, owned block of bytes on one device.
#pragma once
#include <cstddef>
#include <memory>

#include "core/dtype.h"

namespace lowbit {

class Storage {
 public:
  // Uninitialized bytes (CPU). Size 0 is allowed.
  Storage(size_t nbytes, Device device = Device::cpu);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  static constexpr size_t kAlignment = 64;

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

}  // namespace lowbit
