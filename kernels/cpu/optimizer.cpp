#include "kernels/cpu/optimizer.h"

#include <cmath>

namespace lowbit::kernels::cpu {

void sgd_step(const SgdStep& s, float* p, const float* gr, float* buf, bool first, int64_t n) {
  const float wd = s.weight_decay, neg_lr = s.neg_lr;
  const bool decay = s.decay;
  if (!buf) {
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      float d = decay ? std::fma(wd, p[i], gr[i]) : gr[i];
      p[i] = std::fma(neg_lr, d, p[i]);
    }
    return;
  }
  const float mom = s.momentum, keep = s.keep;
  const bool nesterov = s.nesterov;
#pragma omp parallel for simd if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float d = decay ? std::fma(wd, p[i], gr[i]) : gr[i];
    float b = first ? d : std::fma(keep, d, buf[i] * mom);
    buf[i] = b;
    d = nesterov ? std::fma(mom, b, d) : b;
    p[i] = std::fma(neg_lr, d, p[i]);
  }
}

namespace {

// (GCC vectorizes this loop only with -fno-math-errno, because of sqrt; the results are the same
// either way.)
template <bool kAmsgrad>
void adam_kernel(int64_t n, float* p, const float* gr, float* m, float* v, float* vmax, const AdamStep& k) {
  // Locals, so each thread gets them as plain (vectorizable) scalars.
  const float b1 = k.b1, one_m_b1 = k.one_m_b1, b2 = k.b2, one_m_b2 = k.one_m_b2;
  const float neg_step = k.neg_step, bias2_sqrt = k.bias2_sqrt, eps = k.eps, wd = k.wd;
  const bool l2 = k.l2;
#pragma omp parallel for simd if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = l2 ? std::fma(wd, p[i], gr[i]) : gr[i];
    const float mi = std::fma(one_m_b1, gi, m[i] * b1);
    const float vi = std::fma(one_m_b2 * gi, gi, v[i] * b2);
    m[i] = mi;
    v[i] = vi;
    float vh = vi;
    if constexpr (kAmsgrad) {
      const float a = vmax[i];
      vh = (a > vi || a != a) ? a : vi;  // torch.maximum: NaN propagates
      vmax[i] = vh;
    }
    const float denom = std::sqrt(vh) / bias2_sqrt + eps;
    p[i] = p[i] + (neg_step * mi) / denom;
  }
}

}  // namespace

void adam_step(const AdamStep& s, float* p, const float* grad, float* m, float* v, float* vmax, int64_t n) {
  if (vmax) adam_kernel<true>(n, p, grad, m, v, vmax, s);
  else adam_kernel<false>(n, p, grad, m, v, nullptr, s);
}

void scale_in_place(float* p, float f, int64_t n) {
#pragma omp parallel for simd if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] *= f;
}

}  // namespace lowbit::kernels::cpu
