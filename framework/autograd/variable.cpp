#include "autograd/variable.h"

#include <unordered_set>

namespace lowbit {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
NoGradGuard::NoGradGuard() : prev_(g_grad_enabled) { g_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { g_grad_enabled = prev_; }

Variable::Variable(Tensor data, bool requires_grad) : impl_(std::make_shared<VariableImpl>()) {
  impl_->data = std::move(data);
  impl_->requires_grad = requires_grad;
}

bool GradSink::needs(size_t i) const {
  return i < node_.inputs.size() && node_.inputs[i] && node_.inputs[i]->requires_grad;
}

void GradSink::add(size_t i, Tensor g) {
  if (!needs(i)) return;
  VariableImpl& v = *node_.inputs[i];
  LB_CHECK(!v.graph_freed, "backward of ", node_.name, " reaches a result whose graph an earlier backward() already ",
           "freed: run the forward pass again before a second backward");
  LB_CHECK(g.shape() == v.data.shape(), "backward of ", node_.name, ": gradient ", g.shape().str(),
           " for input ", i, " of shape ", v.data.shape().str());
  if (!v.grad.defined()) {
    v.grad = g.is_contiguous() ? std::move(g) : g.contiguous();
  } else {
    v.grad.add_(g);
  }
}

Tensor& GradSink::buffer(size_t i) {
  VariableImpl& v = *node_.inputs[i];
  if (!v.grad.defined()) v.grad = Tensor::zeros(v.data.shape(), v.data.dtype());
  return v.grad;
}

Variable make_result(Tensor out, const std::vector<Variable>& inputs, BackwardFn backward, const char* name) {
  Variable result(std::move(out), false);
  if (!g_grad_enabled) return result;
  bool any = false;
  for (const auto& v : inputs) any = any || v.requires_grad();
  if (!any) return result;
  auto node = std::make_shared<Node>();
  node->inputs.reserve(inputs.size());
  for (const auto& v : inputs) node->inputs.push_back(v.defined() ? v.impl() : nullptr);
  node->backward = std::move(backward);
  node->name = name;
  result.impl()->requires_grad = true;
  result.impl()->grad_fn = std::move(node);
  return result;
}

void Variable::backward() {
  LB_CHECK(impl_->data.numel() == 1, "backward() without a gradient needs a scalar, got ", impl_->data.str());
  backward(Tensor::full(impl_->data.shape(), 1.0f));
}

void Variable::backward(const Tensor& grad_output) {
  LB_CHECK(impl_->requires_grad, "backward() on a variable that does not require grad");
  LB_CHECK(!impl_->graph_freed, "backward() called twice on the same result: its graph was freed by the first call; "
           "run the forward pass again");
  LB_CHECK(grad_output.shape() == impl_->data.shape(), "backward(): gradient ", grad_output.shape().str(),
           " for a variable of shape ", impl_->data.shape().str());
  // Iterative post-order DFS over variables that have a grad_fn. `order` owns its entries:
  // an intermediate result is often referenced only by its consumer's Node, which releases
  // its inputs once it has run, while the intermediate's own backward is still to come.
  std::vector<std::shared_ptr<VariableImpl>> order;
  std::unordered_set<VariableImpl*> seen;
  std::vector<std::pair<std::shared_ptr<VariableImpl>, size_t>> stack;
  stack.push_back({impl_, 0});
  seen.insert(impl_.get());
  while (!stack.empty()) {
    auto& [v, next] = stack.back();
    Node* node = v->grad_fn.get();
    if (node && next < node->inputs.size()) {
      std::shared_ptr<VariableImpl> in = node->inputs[next++];
      if (in && in->grad_fn && in->requires_grad && seen.insert(in.get()).second) stack.push_back({std::move(in), 0});
      continue;
    }
    order.push_back(std::move(v));
    stack.pop_back();
  }
  if (!impl_->grad_fn && impl_->grad.defined()) {
    impl_->grad.add_(grad_output.contiguous());  // a leaf root accumulates like any other leaf
  } else {
    impl_->grad = grad_output.clone();
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    std::shared_ptr<VariableImpl> owned = std::move(*it);  // released at the end of this step
    VariableImpl* v = owned.get();
    std::shared_ptr<Node> node = v->grad_fn;
    if (!node || !node->backward) continue;
    LB_CHECK(v->grad.defined(), "internal: no gradient reached ", node->name);
    Tensor g = std::move(v->grad);
    v->grad = Tensor();
    GradSink sink(*node);
    node->backward(g, sink);
    // Free saved tensors and the graph above this point.
    node->backward = nullptr;
    node->inputs.clear();
    v->grad_fn.reset();
    v->graph_freed = true;
  }
}

}  // namespace lowbit
