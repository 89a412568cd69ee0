// Optimizer base: parameter groups, step / zero_grad, and per-parameter state that can be
// exported to and restored from a checkpoint.
//
// Semantics follow torch.optim (1.13, single-tensor path, foreach=False):
//   * step() updates every parameter whose gradient is defined and leaves the others alone
//     (their state, including the step counter, does not move);
//   * zero_grad() drops the gradients (set_to_none=True), so a parameter that receives no
//     gradient before the next step() is skipped by it;
//   * hyperparameters are doubles, like Python floats in torch; they are rounded to float32
//     where torch's kernels round them, and the element math is float32.
// Parameters must be defined, contiguous, float32 CPU tensors (CUDA is not supported here).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "autograd/variable.h"

namespace lowbit::optim {

// A set of parameters sharing hyperparameters. Each optimizer reads only the fields it uses
// (SGD: lr, weight_decay, momentum, dampening, nesterov; Adam/AdamW: lr, weight_decay,
// beta1, beta2, eps, amsgrad). The usual way to make one is SgdOptions::group /
// AdamOptions::group, which fill every field.
struct ParamGroup {
  std::vector<Variable> params = {};
  double lr = 1e-3;
  double weight_decay = 0.0;
  // SGD
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  // Adam / AdamW
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  bool amsgrad = false;
};

// Named state tensors, as exported for a checkpoint (see Optimizer::state_tensors).
using StateList = std::vector<std::pair<std::string, Tensor>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual const char* name() const = 0;

  // One update of every parameter that has a gradient. Checks hyperparameters first (they
  // may have been changed through group()), and that each gradient matches its parameter.
  void step();
  // Sets every parameter's gradient to undefined (torch's zero_grad(set_to_none=True)).
  void zero_grad();

  size_t num_groups() const { return groups_.size(); }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  const ParamGroup& group(size_t g) const;
  // Mutable access for changing hyperparameters between steps (checked at the next step()).
  // Appending parameters is allowed; reordering or removing them mismatches their state.
  ParamGroup& group(size_t g);
  // Adds a group (checked like the constructor's groups).
  void add_param_group(ParamGroup group);

  // Learning rate of one group; set_lr is what LR schedules call.
  double lr(size_t g = 0) const { return group(g).lr; }
  void set_lr(size_t g, double lr);
  void set_lr(double lr);  // every group

  // Checkpoint state. One entry per state tensor of every parameter that has been stepped:
  //   "group<G>.param<I>.<key>"  float32, the parameter's shape
  //       keys: SGD "momentum_buffer" (only when momentum != 0);
  //             Adam/AdamW "exp_avg", "exp_avg_sq", and "max_exp_avg_sq" when amsgrad
  //   "group<G>.param<I>.step"   int32 [1], updates applied to that parameter so far
  // G and I index groups() and group(G).params. Tensors are copies. Hyperparameters are not
  // included: they come from the configuration, and the LR schedule restores lr.
  StateList state_tensors() const;
  // Replaces all state with `state` (as produced by state_tensors() of an optimizer of the
  // same kind over parameters of the same shapes). Parameters without entries get fresh
  // state. Throws lowbit::Error, leaving the current state untouched, on a malformed or
  // unknown name, an index out of range, a wrong shape or dtype, a duplicate, or a parameter
  // whose entries are incomplete for its group's settings.
  void load_state(const StateList& state);

 protected:
  // Per-parameter state: update count and named float32 buffers of the parameter's shape.
  struct ParamState {
    int64_t step = 0;
    std::map<std::string, Tensor> buffers;
  };

  // Checks parameters (defined, f32, CPU, contiguous, each once). Derived constructors call
  // check_groups() afterwards, since check_group is virtual.
  explicit Optimizer(std::vector<ParamGroup> groups);
  void check_groups() const;

  // Throws lowbit::Error naming the bad hyperparameter.
  virtual void check_group(const ParamGroup& g) const = 0;
  // Buffer keys a parameter of group g has once it has been stepped.
  virtual std::vector<std::string> buffer_names(const ParamGroup& g) const = 0;
  // One update. param and grad are contiguous f32 of the same shape; st.step has already been
  // incremented (1 on the first update). Buffers missing from st are created by the update.
  virtual void update(const ParamGroup& g, Tensor& param, const Tensor& grad, ParamState& st) = 0;

  // st.buffers[key], created as zeros of the param's shape when missing.
  static Tensor& buffer_or_zeros(ParamState& st, const std::string& key, const Tensor& param);

 private:
  void check_params(const ParamGroup& g, size_t gi) const;
  void sync_state_sizes();

  std::vector<ParamGroup> groups_;
  std::vector<std::vector<ParamState>> state_;  // [group][param]
};

}  // namespace lowbit::optim
