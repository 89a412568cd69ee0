#include "kernels/backend.h"

#include <array>
#include <atomic>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/cpu_backend.h"

namespace lowbit::kernels {

namespace {

constexpr size_t kDevices = 2;  // Device::cpu, Device::cuda

// backend_for runs once per op call, so it reads an atomic pointer and takes no lock. Registered
// backends are kept alive until exit (a replaced one may still be in use by a running op).
struct Registry {
  std::array<std::atomic<Backend*>, kDevices> current{};
  std::mutex mu;  // guards `owned` and registration
  std::vector<std::unique_ptr<Backend>> owned;

  Registry() {
    owned.push_back(cpu::make_cpu_backend());
    current[static_cast<size_t>(Device::cpu)].store(owned.back().get(), std::memory_order_release);
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

Backend& backend_for(Device d) {
  Backend* b = registry().current.at(static_cast<size_t>(d)).load(std::memory_order_acquire);
  LB_CHECK(b, "no ", device_name(d), " backend in this build (tensors on ", device_name(d),
           " need a build with it: see docs/architecture.md, 'Backends')");
  return *b;
}

void register_backend(std::unique_ptr<Backend> b) {
  LB_CHECK(b, "register_backend: null backend");
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  Backend* raw = b.get();
  r.owned.push_back(std::move(b));
  r.current.at(static_cast<size_t>(raw->device())).store(raw, std::memory_order_release);
}

}  // namespace lowbit::kernels
