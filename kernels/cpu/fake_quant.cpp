#include "kernels/cpu/fake_quant.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace lowbit::kernels::cpu {

namespace {

constexpr int64_t kBlock = 16384;  // reduction block: fixed, so sums do not depend on threads

// The default (Brevitas) form: v = x / s + zp, round half to even, clamp after rounding. Written
// as plain restrict-qualified loops over one segment so the compiler vectorizes them; the same
// arithmetic as fq_forward / fq_backward in kernels/common/fake_quant_math.h.
bool default_form(const FakeQuantElem& e) {
  return e.rounding == Rounding::half_even && !e.reciprocal && !e.clamp_before_round && !e.ternary;
}

// lo / hi: the fused clamping activation (fq_act), infinite when there is none.
__attribute__((noinline)) void fwd_default(const float* __restrict x, float* __restrict y, int64_t len, float s,
                                           float zp, float qmin, float qmax, float lo, float hi) {
  for (int64_t i = 0; i < len; ++i) {
    const float xv = x[i] < lo ? lo : (x[i] > hi ? hi : x[i]);
    const float r = nearbyintf(xv / s + zp);
    const float q = r < qmin ? qmin : (r > qmax ? qmax : r);
    y[i] = (q - zp) * s;
  }
}

// Scale-gradient sums use kSumLanes double accumulators, element i going to lane i % kSumLanes
// in element order, then the lanes added in order: the result depends on neither the vector
// width nor the code path (both backward paths below use it), and the adds are no longer one
// latency-bound dependency chain.
constexpr int64_t kSumLanes = 8;

double combine_lanes(const double* lanes) {
  double s = 0;
  for (int64_t j = 0; j < kSumLanes; ++j) s += lanes[j];
  return s;
}

template <bool kDx>
__attribute__((noinline)) double bwd_default(const float* __restrict x, const float* __restrict g, float* __restrict dx,
                                             int64_t len, float s, float zp, float qmin, float qmax, float lo,
                                             float hi, bool ste, bool inside_grad) {
  // The element terms are computed vectorized into a small buffer, then added into the lanes.
  constexpr int64_t kChunk = 256;  // a multiple of kSumLanes
  double terms[kChunk];
  double lanes[kSumLanes] = {};
  const float in_w = inside_grad ? 1.f : 0.f;
  for (int64_t c0 = 0; c0 < len; c0 += kChunk) {
    const int64_t m = std::min(kChunk, len - c0);
    const float* xc = x + c0;
    const float* gc = g + c0;
    float* dc = kDx ? dx + c0 : nullptr;
    for (int64_t i = 0; i < m; ++i) {
      // Bitwise bool operators, std::min/max and locals: with runtime bounds GCC only if-converts
      // (vectorizes) this loop in this form.
      const float xi = xc[i], gi = gc[i];
      const float xv = std::min(std::max(xi, lo), hi);  // = xi < lo ? lo : (xi > hi ? hi : xi), NaN kept
      const bool act = !(xi <= lo) & !(xi >= hi);
      const float v = xv / s + zp;
      const float r = nearbyintf(v);
      const bool inside = (r >= qmin) & (r <= qmax);
      const float q = std::min(std::max(r, qmin), qmax);  // min/max (not nested ?:) so GCC if-converts
      const bool pass = inside | ste;
      if constexpr (kDx) dc[i] = (pass & act) ? gi : 0.f;
      const float term = pass ? in_w * ((q - zp) - (v - zp)) : (q - zp);
      terms[i] = static_cast<double>(gi) * static_cast<double>(term);
    }
    int64_t i = 0;
    for (; i + kSumLanes <= m; i += kSumLanes)
      for (int64_t j = 0; j < kSumLanes; ++j) lanes[j] += terms[i + j];
    for (; i < m; ++i) lanes[i % kSumLanes] += terms[i];
  }
  return combine_lanes(lanes);
}

void fwd_segment(const float* x, float* y, int64_t len, float s, float zp, const FakeQuantElem& e) {
  if (default_form(e)) return fwd_default(x, y, len, s, zp, e.qmin, e.qmax, e.in_lo, e.in_hi);
  for (int64_t i = 0; i < len; ++i) y[i] = fq_forward(x[i], s, zp, e);
}

double bwd_segment(const float* x, const float* g, float* dx, int64_t len, float s, float zp, const FakeQuantElem& e,
                   bool ste, bool inside_grad) {
  if (default_form(e)) {
    return dx ? bwd_default<true>(x, g, dx, len, s, zp, e.qmin, e.qmax, e.in_lo, e.in_hi, ste, inside_grad)
              : bwd_default<false>(x, g, dx, len, s, zp, e.qmin, e.qmax, e.in_lo, e.in_hi, ste, inside_grad);
  }
  double lanes[kSumLanes] = {};
  for (int64_t i = 0; i < len; ++i) {
    const FakeQuantGrad r = fq_backward(x[i], g[i], s, zp, e, ste, inside_grad);
    if (dx) dx[i] = r.dx;
    lanes[i % kSumLanes] += r.ds;
  }
  return combine_lanes(lanes);
}

}  // namespace

void fake_quant_forward(const FakeQuantGeometry& g, const FakeQuantElem& e, const float* x, const float* scale,
                        const float* zero_point, float* y) {
  const int64_t n = g.n, inner = g.inner, ch = g.channels;
  if (ch == 1) {
    const float s = scale[0], zp = zero_point ? zero_point[0] : 0.f;
    const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (int64_t b = 0; b < blocks; ++b) fwd_segment(x + b * kBlock, y + b * kBlock, std::min(kBlock, n - b * kBlock), s, zp, e);
    return;
  }
  const int64_t rows = n / inner;  // (outer * channels) rows of `inner` elements
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = r % ch;
    const float s = scale[c], zp = zero_point ? zero_point[c] : 0.f;
    fwd_segment(x + r * inner, y + r * inner, inner, s, zp, e);
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
      const double sum = bwd_segment(x + lo, dy + lo, dx ? dx + lo : nullptr, hi - lo, s, zp, e, ste_clamp, inside_scale_grad);
      if (acc) acc[0] = sum;
    } else {
      const int64_t r0 = b * rows_per_block, r1 = std::min(rows, r0 + rows_per_block);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t c = r % ch;
        const float s = scale[c], zp = zero_point ? zero_point[c] : 0.f;
        const int64_t k = r * inner;
        const double sum = bwd_segment(x + k, dy + k, dx ? dx + k : nullptr, inner, s, zp, e, ste_clamp, inside_scale_grad);
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
