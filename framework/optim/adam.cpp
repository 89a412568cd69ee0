#include "optim/adam.h"

#include <cmath>

#include "kernels/backend.h"

namespace lowbit::optim {

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
  const kernels::AdamStep k{.b1 = static_cast<float>(g.beta1),
                            .one_m_b1 = static_cast<float>(1.0 - g.beta1),
                            .b2 = static_cast<float>(g.beta2),
                            .one_m_b2 = static_cast<float>(1.0 - g.beta2),
                            .neg_step = static_cast<float>(-(g.lr / bias1)),
                            .bias2_sqrt = static_cast<float>(std::sqrt(bias2)),
                            .eps = static_cast<float>(g.eps),
                            .wd = static_cast<float>(g.weight_decay),
                            .l2 = !decoupled_ && g.weight_decay != 0.0};
  kernels::OptimizerKernels& kernels = kernels::backend_for(param.device()).optimizer();
  // AdamW: a pass of its own, like torch's param.mul_(): keeps p * f rounded before the update.
  if (decoupled_) kernels.scale(p, static_cast<float>(1.0 - g.lr * g.weight_decay), n);
  kernels.adam_step(k, p, gr, m, v, vmax, n);
}

}  // namespace lowbit::optim
