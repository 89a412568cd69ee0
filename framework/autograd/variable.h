// Define-by-run autograd. A Variable wraps a Tensor; ops on Variables that require gradients
// record a Node holding a backward closure. backward() runs the nodes in reverse topological
// order; each closure ACCUMULATES into its inputs' gradients through GradSink, and releases
// what it captured (saved tensors are freed after backward).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace lowbit {

struct Node;

struct VariableImpl {
  Tensor data;
  Tensor grad;                     // undefined until a gradient arrives
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;   // null for leaves
  bool graph_freed = false;        // had a grad_fn that a backward() ran and released
};

class Variable {
 public:
  Variable() = default;  // undefined (e.g. "no bias")
  explicit Variable(Tensor data, bool requires_grad = false);

  bool defined() const { return impl_ != nullptr; }
  Tensor& data() { return impl_->data; }
  const Tensor& data() const { return impl_->data; }
  Tensor& grad() { return impl_->grad; }
  const Tensor& grad() const { return impl_->grad; }
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  void set_requires_grad(bool r) { impl_->requires_grad = r; }
  bool is_leaf() const { return !impl_->grad_fn; }
  const Shape& shape() const { return impl_->data.shape(); }
  int64_t size(int dim) const { return impl_->data.size(dim); }
  int64_t numel() const { return impl_->data.numel(); }
  Device device() const { return impl_->data.device(); }

  // Seeds with ones (a scalar loss) or with `grad_output`, then runs the graph.
  void backward();
  void backward(const Tensor& grad_output);
  // Drops the gradient (zero_grad with set_to_none semantics).
  void clear_grad() { impl_->grad = Tensor(); }
  // A new leaf sharing this data, cut from the graph.
  Variable detach() const { return Variable(impl_->data, false); }

  const std::shared_ptr<VariableImpl>& impl() const { return impl_; }

 private:
  std::shared_ptr<VariableImpl> impl_;
};

// Passed to a backward closure: which inputs need a gradient, and where to add it.
class GradSink {
 public:
  explicit GradSink(Node& node) : node_(node) {}
  bool needs(size_t input) const;
  // grad += g for input i (moves g in when the gradient is still empty).
  void add(size_t input, Tensor g);
  // Direct access to input i's accumulated gradient buffer, allocated (zeroed) on first use.
  Tensor& buffer(size_t input);

 private:
  Node& node_;
};

using BackwardFn = std::function<void(const Tensor& grad_out, GradSink& sink)>;

struct Node {
  std::vector<std::shared_ptr<VariableImpl>> inputs;  // null entries for undefined inputs
  BackwardFn backward;
  const char* name = "";  // op name, for error messages
};

// Wraps an op's result: records a Node when grad mode is on and any input requires grad.
Variable make_result(Tensor out, const std::vector<Variable>& inputs, BackwardFn backward, const char* name);

bool grad_enabled();

// Disables graph recording in the current thread while alive (evaluation, optimizer steps).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace lowbit
