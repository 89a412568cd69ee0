// CPU batch-norm kernels (the CPU backend's NormKernels), moved from framework/ops/norm.cpp
// unchanged: statistics, the normalization, and the backward, all over whole batch rows.
#include "kernels/cpu/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/threads.h"

namespace lowbit::kernels::cpu {

namespace {

// Layout: x is (N, C, H, W) contiguous, i.e. N rows of L = C*H*W values; column j of a row
// belongs to channel j / (H*W). Every pass below runs over whole rows with per-column
// coefficients (a per-channel value expanded to L columns), so the inner loops are long and
// vectorize whatever H*W is (MobileNet's last layers have H*W = 4).

// A per-channel value repeated over the channel's hw columns -> (L).
std::vector<float> expand(const float* per_channel, int64_t c, int64_t hw) {
  std::vector<float> out(static_cast<size_t>(c * hw));
  for (int64_t ch = 0; ch < c; ++ch) std::fill_n(out.begin() + ch * hw, hw, per_channel[ch]);
  return out;
}

// Column block width for the reductions: enough blocks for the threads, vector-friendly.
int64_t column_block(int64_t cols) {
  const int64_t want = (cols + 4 * num_threads() - 1) / (4 * num_threads());
  return std::clamp<int64_t>((want + 15) / 16 * 16, 64, 1024);
}

// Per-channel sums over the batch of term(row, column) (float), for `k` terms at once:
// out[t][ch] = sum over rows and the channel's columns of term_t. Each column adds at most 64
// rows in float (independent columns vectorize), then goes into double; channels are summed
// in double. The order is fixed by the shape, not by the thread count.
template <int K, typename Term>
void channel_sums(int64_t n, int64_t c, int64_t hw, Term term, std::vector<double> (&out)[K]) {
  const int64_t cols = c * hw;
  const int64_t block = column_block(cols);
  const int64_t blocks = (cols + block - 1) / block;
  std::vector<double> col[K];
  for (int t = 0; t < K; ++t) col[t].assign(static_cast<size_t>(cols), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * block, len = std::min(block, cols - j0);
    float acc[K][1024];
    for (int64_t r0 = 0; r0 < n; r0 += 64) {
      for (int t = 0; t < K; ++t) std::fill_n(acc[t], len, 0.f);
      const int64_t r1 = std::min(n, r0 + 64);
      for (int64_t r = r0; r < r1; ++r) term(r, j0, len, acc);
      for (int t = 0; t < K; ++t)
        for (int64_t j = 0; j < len; ++j) col[t][j0 + j] += acc[t][j];
    }
  }
  for (int t = 0; t < K; ++t) {
    out[t].assign(static_cast<size_t>(c), 0.0);
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0;
      for (int64_t k = 0; k < hw; ++k) s += col[t][ch * hw + k];
      out[t][ch] = s;
    }
  }
}

}  // namespace

// Reduced in float per column over at most 64 rows and in double beyond, so results match
// PyTorch's within rounding regardless of the thread count.
void batch_norm_statistics(const BatchNormGeometry& geo, const float* px, float eps, float momentum, float* mean,
                           float* invstd, float* rm, float* rv) {
  const int64_t n = geo.n, c = geo.c, hw = geo.hw, m = n * hw, cols = c * hw;
  std::vector<double> sums[1];
  channel_sums<1>(n, c, hw, [px, cols](int64_t r, int64_t j0, int64_t len, float (&acc)[1][1024]) {
    const float* p = px + r * cols + j0;
    for (int64_t j = 0; j < len; ++j) acc[0][j] += p[j];
  }, sums);
  for (int64_t ch = 0; ch < c; ++ch) mean[ch] = static_cast<float>(sums[0][ch] / m);
  const std::vector<float> mu = expand(mean, c, hw);
  const float* pmu = mu.data();
  std::vector<double> sq[1];
  channel_sums<1>(n, c, hw, [px, pmu, cols](int64_t r, int64_t j0, int64_t len, float (&acc)[1][1024]) {
    const float* p = px + r * cols + j0;
    const float* u = pmu + j0;
    for (int64_t j = 0; j < len; ++j) {
      const float d = p[j] - u[j];
      acc[0][j] += d * d;
    }
  }, sq);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double var = sq[0][ch] / m;
    invstd[ch] = static_cast<float>(1.0 / std::sqrt(var + eps));
    rm[ch] = (1 - momentum) * rm[ch] + momentum * mean[ch];
    rv[ch] = (1 - momentum) * rv[ch] + momentum * static_cast<float>(sq[0][ch] / (m - 1));
  }
}

void batch_norm_eval_statistics(int64_t c, float eps, const float* rm, const float* rv, float* mean, float* invstd) {
  for (int64_t ch = 0; ch < c; ++ch) {
    mean[ch] = rm[ch];
    invstd[ch] = 1.0f / std::sqrt(rv[ch] + eps);
  }
}

void batch_norm_apply(const BatchNormGeometry& geo, const float* px, const float* mean, const float* invstd,
                      const float* pg, const float* pb, float* po) {
  const int64_t n = geo.n, c = geo.c, hw = geo.hw, cols = c * hw;
  // y = x * a + b per channel, a = invstd * gamma, b = beta - mean * a.
  std::vector<float> a_c(c), b_c(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    a_c[ch] = invstd[ch] * (pg ? pg[ch] : 1.f);
    b_c[ch] = (pb ? pb[ch] : 0.f) - mean[ch] * a_c[ch];
  }
  const std::vector<float> a = expand(a_c.data(), c, hw), b = expand(b_c.data(), c, hw);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    const float* p = px + r * cols;
    float* q = po + r * cols;
    for (int64_t j = 0; j < cols; ++j) q[j] = p[j] * a[j] + b[j];
  }
}

void batch_norm_backward(const BatchNormGeometry& geo, bool training, const float* px, const float* gy, const float* mean,
                         const float* invstd, const float* pg, float* dx, float* dgamma, float* dbeta) {
  const int64_t n = geo.n, c = geo.c, hw = geo.hw, m = n * hw, cols = c * hw;
  const std::vector<float> mu = expand(mean, c, hw);
  const float* pmu = mu.data();
  // Per channel: sum(dy) and sum(dy * (x - mean)).
  std::vector<double> s[2];
  channel_sums<2>(n, c, hw, [gy, px, pmu, cols](int64_t r, int64_t j0, int64_t len, float (&acc)[2][1024]) {
    const float* g = gy + r * cols + j0;
    const float* p = px + r * cols + j0;
    const float* u = pmu + j0;
    for (int64_t j = 0; j < len; ++j) {
      acc[0][j] += g[j];
      acc[1][j] += g[j] * (p[j] - u[j]);
    }
  }, s);
  std::vector<double> sdyx(c);
  for (int64_t ch = 0; ch < c; ++ch) sdyx[ch] = s[1][ch] * invstd[ch];
  if (dx) {
    // training: dx = gamma*is * (dy - mean(dy) - xhat * mean(dy*xhat)), xhat = (x - mean)*is,
    //   = A*dy + B*(x - mean) + C with A = gamma*is, B = -A*is*k2, C = -A*k1;
    // eval: dx = A*dy.
    std::vector<float> A(c), B(c), C(c);
    for (int64_t ch = 0; ch < c; ++ch) {
      A[ch] = (pg ? pg[ch] : 1.f) * invstd[ch];
      const float k1 = training ? static_cast<float>(s[0][ch] / m) : 0.f;
      const float k2 = training ? static_cast<float>(sdyx[ch] / m) : 0.f;
      B[ch] = -A[ch] * invstd[ch] * k2;
      C[ch] = -A[ch] * k1;
    }
    const std::vector<float> ae = expand(A.data(), c, hw), be = expand(B.data(), c, hw),
                             ce = expand(C.data(), c, hw);
    float* pgx = dx;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const float* g = gy + r * cols;
      const float* p = px + r * cols;
      float* q = pgx + r * cols;
      if (training) {
        for (int64_t j = 0; j < cols; ++j) q[j] = ae[j] * g[j] + be[j] * (p[j] - pmu[j]) + ce[j];
      } else {
        for (int64_t j = 0; j < cols; ++j) q[j] = ae[j] * g[j];
      }
    }
  }
  if (dgamma)
    for (int64_t ch = 0; ch < c; ++ch) dgamma[ch] = static_cast<float>(sdyx[ch]);
  if (dbeta)
    for (int64_t ch = 0; ch < c; ++ch) dbeta[ch] = static_cast<float>(s[0][ch]);
}

}  // namespace lowbit::kernels::cpu
