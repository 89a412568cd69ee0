#include "kernels/cpu/depthwise.h"

#include <algorithm>

namespace lowbit::kernels::cpu {

bool is_depthwise(const Conv2dGeometry& g) { return g.groups > 1 && g.groups == g.c_in && g.groups == g.c_out; }

void depthwise_backward_weights(const Conv2dGeometry& g, const float* src, const float* diff_dst, float* diff_w,
                                float* diff_bias) {
  const int64_t hw_in = g.h_in * g.w_in, hw_out = g.h_out * g.w_out, kk = g.kh * g.kw;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < g.c_out; ++c) {
    float* dw = diff_w + c * kk;
    std::fill(dw, dw + kk, 0.f);
    float db = 0.f;
    for (int64_t n = 0; n < g.n; ++n) {
      const float* x = src + (n * g.c_in + c) * hw_in;
      const float* dy = diff_dst + (n * g.c_out + c) * hw_out;
      for (int64_t oy = 0; oy < g.h_out; ++oy) {
        for (int64_t ox = 0; ox < g.w_out; ++ox) {
          const float d = dy[oy * g.w_out + ox];
          db += d;
          for (int64_t ky = 0; ky < g.kh; ++ky) {
            const int64_t iy = oy * g.stride_h - g.pad_top + ky * g.dil_h;
            if (iy < 0 || iy >= g.h_in) continue;
            for (int64_t kx = 0; kx < g.kw; ++kx) {
              const int64_t ix = ox * g.stride_w - g.pad_left + kx * g.dil_w;
              if (ix >= 0 && ix < g.w_in) dw[ky * g.kw + kx] += d * x[iy * g.w_in + ix];
            }
          }
        }
      }
    }
    if (diff_bias) diff_bias[c] = db;
  }
}

}  // namespace lowbit::kernels::cpu
