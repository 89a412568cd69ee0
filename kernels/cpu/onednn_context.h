// The oneDNN CPU engine and stream, plus primitive caches keyed by problem shape.
// One context per process (onednn()); primitives are created once per shape and reused.
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

OnednnContext& onednn();

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
