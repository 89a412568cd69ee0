#include "kernels/cpu/conv_direct.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace lowbit::kernels::cpu {

bool use_direct_backward_data(const Conv2dGeometry& g) { return g.groups == 1 && g.c_in < 4; }

namespace {

// First and one-past-last output index o with 0 <= o * stride + offset < size.
void valid_range(int64_t size, int64_t stride, int64_t offset, int64_t n_out, int64_t& lo, int64_t& hi) {
  lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  hi = size - 1 - offset < 0 ? 0 : (size - 1 - offset) / stride + 1;
  hi = std::min(hi, n_out);
  lo = std::min(lo, hi);
}

// One input plane: dst (H, W) += w * diff_dst plane (Ho, Wo) placed at kernel tap (ky, kx).
void add_tap(float* __restrict dst, const float* __restrict gp, float wv, const Conv2dGeometry& g, int64_t ky,
             int64_t kx) {
  const int64_t oy_off = ky * g.dil_h - g.pad_top, ox_off = kx * g.dil_w - g.pad_left;
  int64_t oy0, oy1, ox0, ox1;
  valid_range(g.h_in, g.stride_h, oy_off, g.h_out, oy0, oy1);
  valid_range(g.w_in, g.stride_w, ox_off, g.w_out, ox0, ox1);
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    float* __restrict drow = dst + (oy * g.stride_h + oy_off) * g.w_in + ox_off;
    const float* __restrict grow = gp + oy * g.w_out;
    if (g.stride_w == 1) {
      for (int64_t ox = ox0; ox < ox1; ++ox) drow[ox] += wv * grow[ox];
    } else {
      for (int64_t ox = ox0; ox < ox1; ++ox) drow[ox * g.stride_w] += wv * grow[ox];
    }
  }
}

// Stride 1: gather form. Each diff_src row is computed in chunks of 16 columns held in
// registers, summing w * diff_dst over (co, ky, kx) from zero-padded copies of the diff_dst
// planes (so no bounds checks), and stored once.
constexpr int64_t kVec = 16;
constexpr int64_t kRows = 4;
// 16 floats as one GCC/Clang vector (AVX-512: one register; AVX2: two), unaligned loads.
typedef float VecF __attribute__((vector_size(kVec * sizeof(float))));
inline VecF load(const float* p) {
  VecF v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Fused multiply-adds here (the project compiles with -ffp-contract=off for bit-exact
// reference parity; this sum has no bit-exact reference, its order already differs from oneDNN's).
__attribute__((optimize("fp-contract=fast"))) void backward_data_stride1(const Conv2dGeometry& g,
                                                                         const float* diff_dst, const float* w,
                                                                         float* diff_src) {
  const int64_t mt = (g.kh - 1) * g.dil_h, ml = (g.kw - 1) * g.dil_w;  // margins of the padded planes
  // Padded plane of each diff_dst plane: P[r][c] = diff_dst[r - mt + pad_top][c - ml + pad_left]
  // (0 outside), so diff_src (y, x) reads P[y - ky*dil + mt][x - kx*dil + ml] for every tap
  // without bounds checks; kRows rows and kVec columns of slack for the last blocks.
  const int64_t hp = g.h_in + mt + kRows, wp = (g.w_in + ml + kVec - 1) / kVec * kVec + kVec;
  const int64_t plane_in = g.h_in * g.w_in, plane_out = g.h_out * g.w_out, taps = g.kh * g.kw;
#pragma omp parallel
  {
    std::vector<float> padded(static_cast<size_t>(g.c_out * hp * wp));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < g.n; ++n) {
      for (int64_t co = 0; co < g.c_out; ++co) {
        float* pp = padded.data() + co * hp * wp;
        const float* gp = diff_dst + (n * g.c_out + co) * plane_out;
        for (int64_t r = 0; r < hp; ++r) {
          float* prow = pp + r * wp;
          std::fill_n(prow, wp, 0.f);
          const int64_t oy = r - mt + g.pad_top;
          if (oy < 0 || oy >= g.h_out) continue;
          // column c holds diff_dst column ox = c - ml + pad_left
          const int64_t c0 = std::max<int64_t>(0, ml - g.pad_left);
          const int64_t c1 = std::min<int64_t>(wp, g.w_out + ml - g.pad_left);
          if (c1 > c0) std::copy_n(gp + oy * g.w_out + (c0 - ml + g.pad_left), c1 - c0, prow + c0);
        }
      }
      for (int64_t ci = 0; ci < g.c_in; ++ci) {
        float* dst = diff_src + (n * g.c_in + ci) * plane_in;
        // kRows rows at once: independent accumulators hide the add latency.
        for (int64_t y0 = 0; y0 < g.h_in; y0 += kRows) {
          const int64_t rows = std::min(kRows, g.h_in - y0);
          for (int64_t x0 = 0; x0 < g.w_in; x0 += kVec) {
            VecF acc[kRows] = {};  // register accumulators (a float array would live on the stack)
            for (int64_t co = 0; co < g.c_out; ++co) {
              const float* pp = padded.data() + co * hp * wp;
              const float* wk = w + (co * g.c_in + ci) * taps;
              for (int64_t ky = 0; ky < g.kh; ++ky) {
                // Rows past the last real one read padding or the next rows (hp has kRows of slack).
                const float* prow = pp + (y0 - ky * g.dil_h + mt) * wp + x0 + ml;
                for (int64_t kx = 0; kx < g.kw; ++kx) {
                  const VecF wv = VecF{} + wk[ky * g.kw + kx];
                  const float* src = prow - kx * g.dil_w;
                  for (int64_t r = 0; r < kRows; ++r) acc[r] += wv * load(src + r * wp);
                }
              }
            }
            const int64_t valid = std::min(kVec, g.w_in - x0);
            for (int64_t r = 0; r < rows; ++r) {
              float lane[kVec];
              std::memcpy(lane, &acc[r], sizeof lane);
              std::copy_n(lane, valid, dst + (y0 + r) * g.w_in + x0);
            }
          }
        }
      }
    }
  }
}

}  // namespace

void direct_backward_data(const Conv2dGeometry& g, const float* diff_dst, const float* w, float* diff_src) {
  if (g.stride_h == 1 && g.stride_w == 1) return backward_data_stride1(g, diff_dst, w, diff_src);
  const int64_t plane_in = g.h_in * g.w_in, plane_out = g.h_out * g.w_out, taps = g.kh * g.kw;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.n; ++n) {
    for (int64_t ci = 0; ci < g.c_in; ++ci) {
      float* dst = diff_src + (n * g.c_in + ci) * plane_in;
      std::fill_n(dst, plane_in, 0.f);
      for (int64_t co = 0; co < g.c_out; ++co) {
        const float* gp = diff_dst + (n * g.c_out + co) * plane_out;
        const float* wk = w + (co * g.c_in + ci) * taps;
        for (int64_t ky = 0; ky < g.kh; ++ky)
          for (int64_t kx = 0; kx < g.kw; ++kx) add_tap(dst, gp, wk[ky * g.kw + kx], g, ky, kx);
      }
    }
  }
}

}  // namespace lowbit::kernels::cpu
