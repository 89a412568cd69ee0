#include "kernels/cpu/depthwise.h"

#include <algorithm>
#include <vector>

namespace lowbit::kernels::cpu {

bool is_depthwise(const Conv2dGeometry& g) { return g.groups > 1 && g.groups == g.c_in && g.groups == g.c_out; }

namespace {

// Output positions o in [lo, hi) whose input position o * stride + offset lies in [0, size).
void valid_outputs(int64_t size, int64_t stride, int64_t offset, int64_t n_out, int64_t& lo, int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = size - 1 - offset < 0 ? 0 : std::min(n_out, (size - 1 - offset) / stride + 1);
  lo = std::min(lo, hi);
}

}  // namespace

void depthwise_backward_weights(const Conv2dGeometry& g, const float* src, const float* diff_dst, float* diff_w,
                                float* diff_bias) {
  const int64_t hw_in = g.h_in * g.w_in, hw_out = g.h_out * g.w_out, kk = g.kh * g.kw;
  // Valid output rectangle of every tap (the same for all channels and samples): the inner
  // loops have no bounds checks, and taps that only ever see padding cost nothing.
  struct Tap {
    int64_t oy0, oy1, ox0, ox1, y_off, x_off;
  };
  std::vector<Tap> taps(static_cast<size_t>(kk));
  for (int64_t ky = 0; ky < g.kh; ++ky)
    for (int64_t kx = 0; kx < g.kw; ++kx) {
      Tap& t = taps[ky * g.kw + kx];
      t.y_off = ky * g.dil_h - g.pad_top;
      t.x_off = kx * g.dil_w - g.pad_left;
      valid_outputs(g.h_in, g.stride_h, t.y_off, g.h_out, t.oy0, t.oy1);
      valid_outputs(g.w_in, g.stride_w, t.x_off, g.w_out, t.ox0, t.ox1);
    }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < g.c_out; ++c) {
    float* dw = diff_w + c * kk;
    for (int64_t k = 0; k < kk; ++k) {
      const Tap& t = taps[k];
      float acc = 0.f;
      for (int64_t n = 0; n < g.n; ++n) {
        const float* x = src + (n * g.c_in + c) * hw_in;
        const float* dy = diff_dst + (n * g.c_out + c) * hw_out;
        for (int64_t oy = t.oy0; oy < t.oy1; ++oy) {
          const float* xrow = x + (oy * g.stride_h + t.y_off) * g.w_in + t.x_off;
          const float* dyrow = dy + oy * g.w_out;
          for (int64_t ox = t.ox0; ox < t.ox1; ++ox) acc += dyrow[ox] * xrow[ox * g.stride_w];
        }
      }
      dw[k] = acc;
    }
    if (diff_bias) {
      float db = 0.f;
      for (int64_t n = 0; n < g.n; ++n) {
        const float* dy = diff_dst + (n * g.c_out + c) * hw_out;
        for (int64_t i = 0; i < hw_out; ++i) db += dy[i];
      }
      diff_bias[c] = db;
    }
  }
}

}  // namespace lowbit::kernels::cpu
