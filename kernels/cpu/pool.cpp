// CPU pooling kernels (the CPU backend's PoolKernels): max pool with the index of each maximum,
// average pool with PyTorch's divisor rules, global average pool. Geometry:
// kernels/common/geometry.h. Moved from framework/ops/pool.cpp unchanged.
#include "kernels/cpu/pool.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace lowbit::kernels::cpu {

namespace {

// 2x2 / stride 2 / no padding max pool of one plane without NaNs: the first maximum wins, as in
// the generic loop. 16 outputs at a time: 32 columns of the two input rows are loaded and split
// into even and odd columns (the four window positions), so rows as short as LeNet's 28 and
// 10 columns still run in vector registers (GCC/Clang vector extensions).
constexpr int kPoolLanes = 16;
typedef float PoolF __attribute__((vector_size(kPoolLanes * sizeof(float))));
typedef int32_t PoolI __attribute__((vector_size(kPoolLanes * sizeof(int32_t))));

// Lanes kFirst, kFirst + 2, ..., kFirst + 30 of the 32 lanes of a and b (even or odd columns).
template <int kFirst>
inline PoolF every_other_lane(PoolF a, PoolF b) {
#if defined(__clang__)
  return __builtin_shufflevector(a, b, kFirst, kFirst + 2, kFirst + 4, kFirst + 6, kFirst + 8, kFirst + 10, kFirst + 12,
                                 kFirst + 14, kFirst + 16, kFirst + 18, kFirst + 20, kFirst + 22, kFirst + 24, kFirst + 26,
                                 kFirst + 28, kFirst + 30);
#else
  return __builtin_shuffle(a, b, PoolI{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30} + kFirst);
#endif
}

__attribute__((noinline)) void max_pool_2x2_plane(const float* __restrict src, float* __restrict dst,
                                                  int32_t* __restrict arg, int64_t w, int64_t ho, int64_t wo) {
  const PoolI lane2 = PoolI{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
  const int32_t w32 = static_cast<int32_t>(w);
  for (int64_t oy = 0; oy < ho; ++oy) {
    const float* r0 = src + 2 * oy * w;
    const float* r1 = r0 + w;
    for (int64_t k0 = 0; k0 < wo; k0 += kPoolLanes) {
      const int64_t valid = std::min<int64_t>(kPoolLanes, wo - k0);
      PoolF a[2], b[2];
      if (valid == kPoolLanes) {
        std::memcpy(a, r0 + 2 * k0, sizeof a);
        std::memcpy(b, r1 + 2 * k0, sizeof b);
      } else {  // the last outputs of the row: only 2 * valid columns exist
        float ta[2 * kPoolLanes], tb[2 * kPoolLanes];
        std::fill_n(ta, 2 * kPoolLanes, 0.f);
        std::fill_n(tb, 2 * kPoolLanes, 0.f);
        std::copy_n(r0 + 2 * k0, 2 * valid, ta);
        std::copy_n(r1 + 2 * k0, 2 * valid, tb);
        std::memcpy(a, ta, sizeof a);
        std::memcpy(b, tb, sizeof b);
      }
      const PoolF v0 = every_other_lane<0>(a[0], a[1]), v1 = every_other_lane<1>(a[0], a[1]);
      const PoolF v2 = every_other_lane<0>(b[0], b[1]), v3 = every_other_lane<1>(b[0], b[1]);
      const PoolF m01 = v1 > v0 ? v1 : v0, m23 = v3 > v2 ? v3 : v2;
      const PoolF m = m23 > m01 ? m23 : m01;
      const PoolI c = lane2 + static_cast<int32_t>(2 * oy * w + 2 * k0);
      const PoolI at = v0 == m ? c : (v1 == m ? c + 1 : (v2 == m ? c + w32 : c + w32 + 1));
      float mo[kPoolLanes];
      int32_t ao[kPoolLanes];
      std::memcpy(mo, &m, sizeof mo);
      std::memcpy(ao, &at, sizeof ao);
      std::copy_n(mo, valid, dst + oy * wo + k0);
      std::copy_n(ao, valid, arg + oy * wo + k0);
    }
  }
}

bool plane_has_nan(const float* __restrict p, int64_t n) {
  int any = 0;
  for (int64_t i = 0; i < n; ++i) any |= p[i] != p[i];
  return any != 0;
}

}  // namespace

void max_pool_forward(const Pool2dGeometry& g, const float* px, float* po, int32_t* pa) {
  // Valid kernel rows/columns per output position, so the inner loops have no bounds checks.
  std::vector<int64_t> ky0(g.h_out), ky1(g.h_out), kx0(g.w_out), kx1(g.w_out);
  for (int64_t oy = 0; oy < g.h_out; ++oy) {
    const int64_t y0 = oy * g.stride_h - g.pad_h;
    ky0[oy] = std::max<int64_t>(0, -y0);
    ky1[oy] = std::min<int64_t>(g.kernel_h, g.h - y0);
  }
  for (int64_t ox = 0; ox < g.w_out; ++ox) {
    const int64_t x0 = ox * g.stride_w - g.pad_w;
    kx0[ox] = std::max<int64_t>(0, -x0);
    kx1[ox] = std::min<int64_t>(g.kernel_w, g.w - x0);
  }
  const bool fast2x2 = g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 &&
                       g.pad_w == 0;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.n * g.c; ++p) {
    const float* src = px + p * g.h * g.w;
    float* dst = po + p * g.h_out * g.w_out;
    int32_t* arg = pa + p * g.h_out * g.w_out;
    if (fast2x2 && !plane_has_nan(src, g.h * g.w)) {  // the common case (a NaN takes the generic path)
      max_pool_2x2_plane(src, dst, arg, g.w, g.h_out, g.w_out);
      continue;
    }
    for (int64_t oy = 0; oy < g.h_out; ++oy) {
      const int64_t y0 = oy * g.stride_h - g.pad_h;
      for (int64_t ox = 0; ox < g.w_out; ++ox) {
        const int64_t x0 = ox * g.stride_w - g.pad_w;
        // PyTorch semantics: the first maximum wins; a NaN is propagated.
        int64_t bi = (y0 + ky0[oy]) * g.w + x0 + kx0[ox];
        float best = src[bi];
        for (int64_t ky = ky0[oy]; ky < ky1[oy]; ++ky) {
          const float* row = src + (y0 + ky) * g.w + x0;
          for (int64_t kx = kx0[ox]; kx < kx1[ox]; ++kx) {
            // Branch-free select (the comparison is data-dependent and mispredicts often).
            const float v = row[kx];
            const bool take = v > best || v != v;
            best = take ? v : best;
            bi = take ? (y0 + ky) * g.w + x0 + kx : bi;
          }
        }
        dst[oy * g.w_out + ox] = best;
        arg[oy * g.w_out + ox] = static_cast<int32_t>(bi);
      }
    }
  }
}

// dx is overwritten.
void max_pool_backward(const Pool2dGeometry& g, const int32_t* pa, const float* gy, float* q) {
  std::fill_n(q, g.n * g.c * g.h * g.w, 0.f);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.n * g.c; ++p) {
    for (int64_t k = 0; k < g.h_out * g.w_out; ++k) {
      const int64_t oi = p * g.h_out * g.w_out + k;
      q[p * g.h * g.w + pa[oi]] += gy[oi];
    }
  }
}

namespace {

// Divisor per output position (depends only on the position, not on n or c).
inline float avg_divisor(const Pool2dGeometry& g, int64_t oy, int64_t ox) {
  const int64_t y0 = oy * g.stride_h - g.pad_h, x0 = ox * g.stride_w - g.pad_w;
  const int64_t y1 = std::min(y0 + g.kernel_h, g.h + g.pad_h), x1 = std::min(x0 + g.kernel_w, g.w + g.pad_w);
  if (g.count_include_pad) return static_cast<float>((y1 - y0) * (x1 - x0));
  return static_cast<float>((std::min(y1, g.h) - std::max<int64_t>(y0, 0)) * (std::min(x1, g.w) - std::max<int64_t>(x0, 0)));
}

}  // namespace

void avg_pool_forward(const Pool2dGeometry& g, const float* px, float* po) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.n * g.c; ++p) {
    const float* src = px + p * g.h * g.w;
    for (int64_t oy = 0; oy < g.h_out; ++oy) {
      for (int64_t ox = 0; ox < g.w_out; ++ox) {
        float s = 0.f;
        for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const int64_t iy = oy * g.stride_h - g.pad_h + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const int64_t ix = ox * g.stride_w - g.pad_w + kx;
            if (ix >= 0 && ix < g.w) s += src[iy * g.w + ix];
          }
        }
        po[(p * g.h_out + oy) * g.w_out + ox] = s / avg_divisor(g, oy, ox);
      }
    }
  }
}

// dx is overwritten.
void avg_pool_backward(const Pool2dGeometry& g, const float* gy, float* q) {
  std::fill_n(q, g.n * g.c * g.h * g.w, 0.f);
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < g.n * g.c; ++p) {
    float* dst = q + p * g.h * g.w;
    for (int64_t oy = 0; oy < g.h_out; ++oy) {
      for (int64_t ox = 0; ox < g.w_out; ++ox) {
        const float v = gy[(p * g.h_out + oy) * g.w_out + ox] / avg_divisor(g, oy, ox);
        for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
          const int64_t iy = oy * g.stride_h - g.pad_h + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
            const int64_t ix = ox * g.stride_w - g.pad_w + kx;
            if (ix >= 0 && ix < g.w) dst[iy * g.w + ix] += v;
          }
        }
      }
    }
  }
}

void global_avg_pool_forward(int64_t nc, int64_t hw, const float* px, float* po) {
#pragma omp parallel for schedule(static) if (nc * hw > 65536)
  for (int64_t p = 0; p < nc; ++p) {
    float s = 0.f;
    for (int64_t k = 0; k < hw; ++k) s += px[p * hw + k];
    po[p] = s / static_cast<float>(hw);
  }
}

void global_avg_pool_backward(int64_t nc, int64_t hw, const float* gy, float* q) {
  const float inv = 1.f / static_cast<float>(hw);
#pragma omp parallel for schedule(static) if (nc * hw > 65536)
  for (int64_t p = 0; p < nc; ++p)
    for (int64_t k = 0; k < hw; ++k) q[p * hw + k] = gy[p] * inv;
}

}  // namespace lowbit::kernels::cpu
