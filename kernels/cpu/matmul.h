// Row-major float matrix products through oneDNN's matmul primitive.
#pragma once
#include <cstdint>

namespace lowbit::kernels::cpu {

// C(M,N) = op(A)(M,K) * op(B)(K,N) [+ bias(N) broadcast over rows].
// trans_a: A is stored (K,M) row-major; trans_b: B is stored (N,K) row-major. Overwrites C.
void matmul(int64_t m, int64_t n, int64_t k, const float* a, bool trans_a, const float* b, bool trans_b,
            const float* bias, float* c);

}  // namespace lowbit::kernels::cpu
