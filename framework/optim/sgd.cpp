#include "optim/sgd.h"

#include "kernels/backend.h"

#include <cmath>

namespace lowbit::optim {

ParamGroup SgdOptions::group(std::vector<Variable> params) const {
  ParamGroup g;
  g.params = std::move(params);
  g.lr = lr;
  g.momentum = momentum;
  g.dampening = dampening;
  g.weight_decay = weight_decay;
  g.nesterov = nesterov;
  return g;
}

SGD::SGD(std::vector<Variable> params, const SgdOptions& options) : SGD(std::vector<ParamGroup>{options.group(std::move(params))}) {}

SGD::SGD(std::vector<ParamGroup> groups) : Optimizer(std::move(groups)) { check_groups(); }

void SGD::check_group(const ParamGroup& g) const {
  // Negated comparisons also reject NaN.
  LB_CHECK(g.lr >= 0.0, "SGD: invalid learning rate ", g.lr, " (must be >= 0)");
  LB_CHECK(g.momentum >= 0.0, "SGD: invalid momentum ", g.momentum, " (must be >= 0)");
  LB_CHECK(g.weight_decay >= 0.0, "SGD: invalid weight_decay ", g.weight_decay, " (must be >= 0)");
  LB_CHECK(std::isfinite(g.dampening), "SGD: invalid dampening ", g.dampening);
  LB_CHECK(!g.nesterov || (g.momentum > 0.0 && g.dampening == 0.0),
           "SGD: nesterov momentum requires momentum > 0 and dampening == 0 (got momentum ", g.momentum,
           ", dampening ", g.dampening, ")");
}

std::vector<std::string> SGD::buffer_names(const ParamGroup& g) const {
  if (g.momentum != 0.0) return {"momentum_buffer"};
  return {};
}

void SGD::update(const ParamGroup& g, Tensor& param, const Tensor& grad, ParamState& st) {
  // Scalars rounded to float as torch's kernels do (kernels/cpu/optimizer.cpp: every a + alpha * b
  // is one fma, as in ATen's vectorized add, so results match torch bit for bit on AVX2 machines).
  kernels::SgdStep s{};
  s.weight_decay = static_cast<float>(g.weight_decay);
  s.neg_lr = static_cast<float>(-g.lr);
  s.decay = g.weight_decay != 0.0;
  s.momentum = static_cast<float>(g.momentum);
  s.keep = static_cast<float>(1.0 - g.dampening);
  s.nesterov = g.nesterov;
  kernels::OptimizerKernels& k = kernels::backend_for(param.device()).optimizer();
  if (g.momentum == 0.0) return k.sgd_step(s, param.f32(), grad.f32(), nullptr, false, param.numel());
  const bool first = st.buffers.find("momentum_buffer") == st.buffers.end();
  float* buf = buffer_or_zeros(st, "momentum_buffer", param).f32();
  k.sgd_step(s, param.f32(), grad.f32(), buf, first, param.numel());
}

}  // namespace lowbit::optim
