// The oneDNN CPU engine and stream, and the primitive cache type. The CPU backend
// (cpu_backend.h) owns one context and the caches of its convolutions and matrix products.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace lowbit::kernels::cpu {

struct OnednnContext {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

// A small typed cache: Key -> shared Value, created on first use.
template <typename Key, typename Value>
class PrimitiveCache {
 public:
  template <typename Make>
  Value& get(const Key& key, Make&& make) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) it = map_.emplace(key, std::make_unique<Value>(make())).first;
    return *it->second;
  }
  size_t size() const { return map_.size(); }

 private:
  std::mutex mu_;
  std::map<Key, std::unique_ptr<Value>> map_;
};

}  // namespace lowbit::kernels::cpu
