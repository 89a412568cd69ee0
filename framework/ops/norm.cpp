#include <cmath>
#include <vector>

#include "ops/ops.h"

namespace lowbit::ops {

// Training-mode statistics are computed in double per channel, so results match PyTorch's
// float reductions within rounding regardless of the thread count.
Variable batch_norm2d(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& running_mean,
                      Tensor& running_var, bool training, float momentum, float eps) {
  const Shape& xs = x.shape();
  LB_CHECK(xs.rank() == 4, "batch_norm2d: input must be (N, C, H, W), got ", xs.str());
  const int64_t n = xs[0], c = xs[1], hw = xs[2] * xs[3], m = n * hw;
  LB_CHECK(running_mean.shape() == Shape({c}) && running_var.shape() == Shape({c}),
           "batch_norm2d: input has ", c, " channels ", xs.str(), " but the running statistics have ", running_mean.shape().str());
  if (gamma.defined()) LB_CHECK(gamma.shape() == Shape({c}), "batch_norm2d: weight ", gamma.shape().str(), " for ", c, " channels");
  if (training) LB_CHECK(m > 1, "batch_norm2d: training needs more than one value per channel, got input ", xs.str());
  Tensor xin = x.data().contiguous();
  const float* px = xin.f32();
  Tensor mean_t = Tensor::empty({c}), invstd_t = Tensor::empty({c});
  float* mean = mean_t.f32();
  float* invstd = invstd_t.f32();
  float* rm = running_mean.f32();
  float* rv = running_var.f32();
  if (training) {
#pragma omp parallel for schedule(static)
    for (int64_t ch = 0; ch < c; ++ch) {
      double s = 0, ss = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float* p = px + (i * c + ch) * hw;
        for (int64_t k = 0; k < hw; ++k) s += p[k];
      }
      const double mu = s / m;
      for (int64_t i = 0; i < n; ++i) {
        const float* p = px + (i * c + ch) * hw;
        for (int64_t k = 0; k < hw; ++k) { double d = p[k] - mu; ss += d * d; }
      }
      const double var = ss / m;
      mean[ch] = static_cast<float>(mu);
      invstd[ch] = static_cast<float>(1.0 / std::sqrt(var + eps));
      rm[ch] = (1 - momentum) * rm[ch] + momentum * static_cast<float>(mu);
      rv[ch] = (1 - momentum) * rv[ch] + momentum * static_cast<float>(ss / (m - 1));
    }
  } else {
    for (int64_t ch = 0; ch < c; ++ch) {
      mean[ch] = rm[ch];
      invstd[ch] = 1.0f / std::sqrt(rv[ch] + eps);
    }
  }
  Tensor g_t = gamma.defined() ? gamma.data().contiguous() : Tensor();
  Tensor b_t = beta.defined() ? beta.data().contiguous() : Tensor();
  Tensor out = Tensor::empty(xs);
  float* po = out.f32();
  const float* pg = g_t.defined() ? g_t.f32() : nullptr;
  const float* pb = b_t.defined() ? b_t.f32() : nullptr;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t ch = 0; ch < c; ++ch) {
      const float a = invstd[ch] * (pg ? pg[ch] : 1.f);
      const float sh = (pb ? pb[ch] : 0.f) - mean[ch] * a;
      const float* p = px + (i * c + ch) * hw;
      float* q = po + (i * c + ch) * hw;
      for (int64_t k = 0; k < hw; ++k) q[k] = p[k] * a + sh;
    }
  }
  return make_result(
      std::move(out), {x, gamma, beta},
      [xin, mean_t, invstd_t, g_t, training, n, c, hw, m](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        const float* gy = gout.f32();
        const float* px = xin.f32();
        const float* mean = mean_t.f32();
        const float* invstd = invstd_t.f32();
        const float* pg = g_t.defined() ? g_t.f32() : nullptr;
        // Per channel: sum(dy) and sum(dy * xhat).
        std::vector<double> sdy(c), sdyx(c);
#pragma omp parallel for schedule(static)
        for (int64_t ch = 0; ch < c; ++ch) {
          double a = 0, b = 0;
          for (int64_t i = 0; i < n; ++i) {
            const float* p = px + (i * c + ch) * hw;
            const float* g = gy + (i * c + ch) * hw;
            for (int64_t k = 0; k < hw; ++k) {
              a += g[k];
              b += g[k] * (p[k] - mean[ch]);
            }
          }
          sdy[ch] = a;
          sdyx[ch] = b * invstd[ch];
        }
        if (sink.needs(0)) {
          Tensor gx = Tensor::empty(xin.shape());
          float* pgx = gx.f32();
#pragma omp parallel for collapse(2) schedule(static)
          for (int64_t i = 0; i < n; ++i) {
            for (int64_t ch = 0; ch < c; ++ch) {
              const float gam = pg ? pg[ch] : 1.f;
              const float is = invstd[ch];
              const float* p = px + (i * c + ch) * hw;
              const float* g = gy + (i * c + ch) * hw;
              float* q = pgx + (i * c + ch) * hw;
              if (training) {
                const float k1 = static_cast<float>(sdy[ch] / m);
                const float k2 = static_cast<float>(sdyx[ch] / m);
                for (int64_t k = 0; k < hw; ++k) {
                  const float xhat = (p[k] - mean[ch]) * is;
                  q[k] = gam * is * (g[k] - k1 - xhat * k2);
                }
              } else {
                for (int64_t k = 0; k < hw; ++k) q[k] = g[k] * gam * is;
              }
            }
          }
          sink.add(0, std::move(gx));
        }
        if (sink.needs(1)) {
          Tensor gg = Tensor::empty({c});
          for (int64_t ch = 0; ch < c; ++ch) gg.f32()[ch] = static_cast<float>(sdyx[ch]);
          sink.add(1, std::move(gg));
        }
        if (sink.needs(2)) {
          Tensor gb = Tensor::empty({c});
          for (int64_t ch = 0; ch < c; ++ch) gb.f32()[ch] = static_cast<float>(sdy[ch]);
          sink.add(2, std::move(gb));
        }
      },
      "batch_norm2d");
}

}  // namespace lowbit::ops
