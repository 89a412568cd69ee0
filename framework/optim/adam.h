// Adam and AdamW, as torch.optim.Adam / AdamW (1.13, foreach=False). Per parameter, with t
// its own update count (1 on the first update):
//   Adam:  g = g + weight_decay * p                 (L2 penalty folded into the gradient)
//   AdamW: p = p * (1 - lr * weight_decay)          (decoupled decay, before the moments)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   v_hat = amsgrad ? (vmax = max(vmax, v)) : v
//   denom = sqrt(v_hat) / sqrt(1 - beta2^t) + eps
//   p = p - (lr / (1 - beta1^t)) * m / denom
// Bias corrections and step size are computed in double and rounded to float, as torch does.
#pragma once
#include "optim/optimizer.h"

namespace lowbit::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // torch.optim.AdamW's default is 1e-2: set it explicitly
  bool amsgrad = false;
  ParamGroup group(std::vector<Variable> params) const;
};

class Adam : public Optimizer {
 public:
  // Errors (lowbit::Error): lr < 0, eps < 0, beta1 or beta2 outside [0, 1), weight_decay < 0.
  Adam(std::vector<Variable> params, const AdamOptions& options);
  explicit Adam(std::vector<ParamGroup> groups);

  const char* name() const override { return decoupled_ ? "AdamW" : "Adam"; }

 protected:
  Adam(std::vector<ParamGroup> groups, bool decoupled);
  void check_group(const ParamGroup& g) const override;
  std::vector<std::string> buffer_names(const ParamGroup& g) const override;
  void update(const ParamGroup& g, Tensor& param, const Tensor& grad, ParamState& st) override;

 private:
  bool decoupled_;  // AdamW
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Variable> params, const AdamOptions& options);
  explicit AdamW(std::vector<ParamGroup> groups);
};

}  // namespace lowbit::optim
