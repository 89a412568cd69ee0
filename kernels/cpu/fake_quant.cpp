#include "kernels/cpu/fake_quant.h"

#include <algorithm>
#include <vector>

namespace lowbit::kernels::cpu {

namespace {
constexpr int64_t kBlock = 16384;  // reduction block: fixed, so sums do not depend on threads
}

void fake_quant_forward(const FakeQuantGeometry& g, const FakeQuantElem& e, const float* x, const float* scale,
                        const float* zero_point, float* y) {
  const int64_t n = g.n, inner = g.inner, ch = g.channels;
  if (ch == 1) {
    const float s = scale[0], zp = zero_point ? zero_point[0] : 0.f;
#pragma omp parallel for simd schedule(static) if (n > 32768)
    for (int64_t i = 0; i < n; ++i) y[i] = fq_forward(x[i], s, zp, e);
    return;
  }
  const int64_t rows = n / inner;  // (outer * channels) rows of `inner` elements
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r % ch;
    const float s = scale[c], zp = zero_point ? zero_point[c] : 0.f;
    const float* xr = x + r * inner;
    float* yr = y + r * inner;
#pragma omp simd
    for (int64_t k = 0; k < inner; ++k) yr[k] = fq_forward(xr[k], s, zp, e);
  }
}

void fake_quant_backward(const FakeQuantGeometry& g, const FakeQuantElem& e, bool ste_clamp, bool inside_scale_grad,
                         const float* x, const float* scale, const float* zero_point, const float* dy, float* dx,
                         double* dscale) {
  const int64_t n = g.n, inner = g.inner, ch = g.channels;
  const int64_t rows = n / inner;
  // Work in blocks of whole rows (or of kBlock elements for per-tensor): each block writes its
  // own partial sums, which are added in block order afterwards.
  const int64_t rows_per_block = ch == 1 ? 0 : std::max<int64_t>(1, kBlock / std::max<int64_t>(inner, 1));
  const int64_t blocks = ch == 1 ? (n + kBlock - 1) / kBlock : (rows + rows_per_block - 1) / rows_per_block;
  std::vector<double> partial(dscale ? static_cast<size_t>(blocks * ch) : 0, 0.0);
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t b = 0; b < blocks; ++b) {
    double* acc = dscale ? partial.data() + b * ch : nullptr;
    if (ch == 1) {
      const float s = scale[0], zp = zero_point ? zero_point[0] : 0.f;
      const int64_t lo = b * kBlock, hi = std::min(n, lo + kBlock);
      double sum = 0;
      for (int64_t i = lo; i < hi; ++i) {
        const FakeQuantGrad r = fq_backward(x[i], dy[i], s, zp, e, ste_clamp, inside_scale_grad);
        if (dx) dx[i] = r.dx;
        sum += r.ds;
      }
      if (acc) acc[0] = sum;
    } else {
      const int64_t r0 = b * rows_per_block, r1 = std::min(rows, r0 + rows_per_block);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t c = r % ch;
        const float s = scale[c], zp = zero_point ? zero_point[c] : 0.f;
        double sum = 0;
        for (int64_t k = r * inner; k < (r + 1) * inner; ++k) {
          const FakeQuantGrad q = fq_backward(x[k], dy[k], s, zp, e, ste_clamp, inside_scale_grad);
          if (dx) dx[k] = q.dx;
          sum += q.ds;
        }
        if (acc) acc[c] += sum;
      }
    }
  }
  if (dscale) {
    for (int64_t c = 0; c < ch; ++c) dscale[c] = 0;
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t c = 0; c < ch; ++c) dscale[c] += partial[b * ch + c];
  }
}

}  // namespace lowbit::kernels::cpu
