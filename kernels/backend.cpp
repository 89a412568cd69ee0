#include "kernels/backend.h"

#include <array>
#include <mutex>

#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"

namespace lowbit::kernels {

namespace {

constexpr size_t kDevices = 2;  // Device::cpu, Device::cuda

struct Registry {
  std::mutex mu;
  std::array<std::unique_ptr<Backend>, kDevices> backends;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

Backend& backend_for(Device d) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto& slot = r.backends.at(static_cast<size_t>(d));
  if (!slot && d == Device::cpu) slot = cpu::make_cpu_backend();
  LB_CHECK(slot, "no ", device_name(d), " backend in this build (tensors on ", device_name(d),
           " need a build with it: see docs/architecture.md, 'Backends')");
  return *slot;
}

void register_backend(std::unique_ptr<Backend> b) {
  LB_CHECK(b, "register_backend: null backend");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.backends.at(static_cast<size_t>(b->device())) = std::move(b);
}

}  // namespace lowbit::kernels
