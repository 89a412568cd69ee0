// Row-major float matrix products through oneDNN's matmul primitive, with its primitive cache.
#pragma once
#include <array>
#include <cstdint>
#include <memory>

#include "kernels/cpu/onednn_context.h"

namespace lowbit::kernels::cpu {

class OnednnMatmul {
 public:
  explicit OnednnMatmul(OnednnContext& ctx);
  ~OnednnMatmul();
  // C(M,N) = op(A)(M,K) * op(B)(K,N) [+ bias(N) broadcast over rows].
  // trans_a: A is stored (K,M) row-major; trans_b: B is stored (N,K) row-major. Overwrites C.
  void matmul(int64_t m, int64_t n, int64_t k, const float* a, bool trans_a, const float* b, bool trans_b,
              const float* bias, float* c);

  struct Prim;  // the primitive of one problem (matmul.cpp)

 private:
  OnednnContext& ctx_;
  std::unique_ptr<PrimitiveCache<std::array<int64_t, 6>, Prim>> cache_;
};

}  // namespace lowbit::kernels::cpu
