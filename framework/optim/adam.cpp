#include "optim/adam.h"

#include <cmath>

namespace lowbit::optim {

namespace {

// float32 scalars of one Adam update, as torch's kernels see them.
struct AdamScalars {
  float b1, one_m_b1, b2, one_m_b2, neg_step, bias2_sqrt, eps, wd;
  bool l2;  // Adam's weight decay folded into the gradient
};

// Each torch op rounds to float; a + alpha * b (add) and a + s * b * c (addcmul) are fused
// multiply-adds in torch's AVX2 kernels, so they are std::fma here. (GCC vectorizes this loop
// only with -fno-math-errno, because of sqrt; the results are the same either way.)
template <bool kAmsgrad>
void adam_kernel(int64_t n, float* p, const float* gr, float* m, float* v, float* vmax, const AdamScalars& k) {
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

ParamGroup AdamOptions::group(std::vector<Variable> params) const {
  ParamGroup g;
  g.params = std::move(params);
  g.lr = lr;
  g.beta1 = beta1;
  g.beta2 = beta2;
  g.eps = eps;
  g.weight_decay = weight_decay;
  g.amsgrad = amsgrad;
  return g;
}

Adam::Adam(std::vector<Variable> params, const AdamOptions& options)
    : Adam(std::vector<ParamGroup>{options.group(std::move(params))}, false) {}
Adam::Adam(std::vector<ParamGroup> groups) : Adam(std::move(groups), false) {}
Adam::Adam(std::vector<ParamGroup> groups, bool decoupled) : Optimizer(std::move(groups)), decoupled_(decoupled) {
  check_groups();
}

AdamW::AdamW(std::vector<Variable> params, const AdamOptions& options)
    : Adam(std::vector<ParamGroup>{options.group(std::move(params))}, true) {}
AdamW::AdamW(std::vector<ParamGroup> groups) : Adam(std::move(groups), true) {}

void Adam::check_group(const ParamGroup& g) const {
  // Negated comparisons also reject NaN.
  LB_CHECK(g.lr >= 0.0, name(), ": invalid learning rate ", g.lr, " (must be >= 0)");
  LB_CHECK(g.eps >= 0.0, name(), ": invalid eps ", g.eps, " (must be >= 0)");
  LB_CHECK(g.beta1 >= 0.0 && g.beta1 < 1.0, name(), ": invalid beta1 ", g.beta1, " (must be in [0, 1))");
  LB_CHECK(g.beta2 >= 0.0 && g.beta2 < 1.0, name(), ": invalid beta2 ", g.beta2, " (must be in [0, 1))");
  LB_CHECK(g.weight_decay >= 0.0, name(), ": invalid weight_decay ", g.weight_decay, " (must be >= 0)");
}

std::vector<std::string> Adam::buffer_names(const ParamGroup& g) const {
  if (g.amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::update(const ParamGroup& g, Tensor& param, const Tensor& grad, ParamState& st) {
  const int64_t n = param.numel();
  float* p = param.f32();
  const float* gr = grad.f32();
  float* m = buffer_or_zeros(st, "exp_avg", param).f32();
  float* v = buffer_or_zeros(st, "exp_avg_sq", param).f32();
  float* vmax = g.amsgrad ? buffer_or_zeros(st, "max_exp_avg_sq", param).f32() : nullptr;

  const double t = static_cast<double>(st.step);
  const double bias1 = 1.0 - std::pow(g.beta1, t);
  const double bias2 = 1.0 - std::pow(g.beta2, t);
  // Scalars as torch's kernels see them (Python floats rounded to float32).
  const AdamScalars k{.b1 = static_cast<float>(g.beta1),
                      .one_m_b1 = static_cast<float>(1.0 - g.beta1),
                      .b2 = static_cast<float>(g.beta2),
                      .one_m_b2 = static_cast<float>(1.0 - g.beta2),
                      .neg_step = static_cast<float>(-(g.lr / bias1)),
                      .bias2_sqrt = static_cast<float>(std::sqrt(bias2)),
                      .eps = static_cast<float>(g.eps),
                      .wd = static_cast<float>(g.weight_decay),
                      .l2 = !decoupled_ && g.weight_decay != 0.0};

  if (decoupled_) {
    // A pass of its own, like torch's param.mul_(): keeps p * f rounded before the update.
    const float f = static_cast<float>(1.0 - g.lr * g.weight_decay);
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] *= f;
  }

  if (vmax) adam_kernel<true>(n, p, gr, m, v, vmax, k);
  else adam_kernel<false>(n, p, gr, m, v, nullptr, k);
}

}  // namespace lowbit::optim
