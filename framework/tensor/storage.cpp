#include "tensor/storage.h"

#include <malloc.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "core/error.h"

namespace lowbit {

namespace {

// Caching CPU allocator. Training allocates the same buffer sizes every step; returning them to
// the system (glibc unmaps large blocks) costs a page fault and a zeroed page per 4 KiB on the
// next step, which dominated small models. Freed blocks are kept per rounded size and reused;
// the cache is capped so a change of shapes cannot grow it without bound.
class CachingAllocator {
 public:
  static constexpr size_t kCap = size_t{1} << 30;  // bytes kept in the cache at most

  static size_t round(size_t n) {
    const size_t a = Storage::kAlignment;
    if (n == 0) return a;
    if (n <= 4096) return (n + a - 1) / a * a;
    return (n + 4095) / 4096 * 4096;
  }

  void* allocate(size_t rounded) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(rounded);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= rounded;
        return p;
      }
    }
    void* p = std::aligned_alloc(Storage::kAlignment, rounded);
    if (!p) {
      release_all();  // retry once with the cache emptied
      p = std::aligned_alloc(Storage::kAlignment, rounded);
      if (!p) throw std::bad_alloc();
    }
    return p;
  }

  void deallocate(void* p, size_t rounded) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + rounded <= kCap) {
        free_[rounded].push_back(p);
        cached_ += rounded;
        return;
      }
    }
    std::free(p);
  }

  void release_all() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
  }

  ~CachingAllocator() { release_all(); }

 private:
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0;
};

// glibc serves blocks above its mmap threshold with fresh mmap()s; oneDNN's reorder buffers and
// scratchpads (plain malloc) then paid a page fault and a zeroed page per 4 KiB every step.
// Raising the thresholds keeps such blocks in the heap, where they are reused. Process-wide, set
// once when the first tensor is allocated.
void tune_malloc() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
}

CachingAllocator& allocator() {
  static CachingAllocator* a = [] {
    tune_malloc();
    return new CachingAllocator();  // never destroyed: tensors may outlive other statics
  }();
  return *a;
}

}  // namespace

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  LB_CHECK(device == Device::cpu, "CUDA storage is not available in this build (device=cuda)");
  data_ = allocator().allocate(CachingAllocator::round(nbytes));
}

Storage::~Storage() { allocator().deallocate(data_, CachingAllocator::round(nbytes_)); }

}  // namespace lowbit
