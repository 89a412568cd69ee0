// Stochastic gradient descent with momentum, as torch.optim.SGD (1.13, foreach=False):
//   d = g + weight_decay * p
//   if momentum != 0:
//     buf = d                                        (first update of this parameter)
//     buf = momentum * buf + (1 - dampening) * d     (later updates)
//     d = nesterov ? d + momentum * buf : buf
//   p = p - lr * d
#pragma once
#include "optim/optimizer.h"

namespace lowbit::optim {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  // A group over `params` with these settings.
  ParamGroup group(std::vector<Variable> params) const;
};

class SGD : public Optimizer {
 public:
  // Errors (lowbit::Error): lr < 0, momentum < 0, weight_decay < 0, nesterov with
  // momentum == 0 or dampening != 0.
  SGD(std::vector<Variable> params, const SgdOptions& options);
  // Groups as given (e.g. SgdOptions::group with a different lr / weight_decay per group).
  explicit SGD(std::vector<ParamGroup> groups);

  const char* name() const override { return "SGD"; }

 protected:
  void check_group(const ParamGroup& g) const override;
  std::vector<std::string> buffer_names(const ParamGroup& g) const override;
  void update(const ParamGroup& g, Tensor& param, const Tensor& grad, ParamState& st) override;
};

}  // namespace lowbit::optim
