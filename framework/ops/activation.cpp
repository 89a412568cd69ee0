// Activations: the backend's ActivationKernels (math: kernels/common/activation_math.h) with
// the forward's input or output saved for the backward, as saves_output says.
#include "kernels/backend.h"
#include "ops/ops.h"

namespace lowbit::ops {

namespace {

Variable unary(const Variable& x, kernels::ActivationParams a, const char* name) {
  const Device dev = x.device();
  Tensor xin = x.data().contiguous();
  Tensor out = Tensor::empty(xin.shape(), DType::f32, dev);
  kernels::backend_for(dev).activation().forward(a, xin.f32(), out.f32(), xin.numel());
  Tensor saved = kernels::saves_output(a.kind) ? out : xin;
  return make_result(
      std::move(out), {x},
      [saved, a, dev](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        Tensor gx = Tensor::empty(saved.shape(), DType::f32, dev);
        kernels::backend_for(dev).activation().backward(a, saved.f32(), gout.f32(), gx.f32(), saved.numel());
        sink.add(0, std::move(gx));
      },
      name);
}

using kernels::Activation;

}  // namespace

Variable relu(const Variable& x) { return unary(x, {Activation::relu}, "relu"); }

Variable hardtanh(const Variable& x, float lo, float hi) {
  LB_CHECK(lo < hi, "hardtanh: min_val ", lo, " must be below max_val ", hi);
  // PyTorch: gradient passes where lo < x < hi (zero at the bounds).
  return unary(x, {Activation::hardtanh, lo, hi}, "hardtanh");
}

Variable relu6(const Variable& x) { return hardtanh(x, 0.f, 6.f); }

Variable leaky_relu(const Variable& x, float slope) { return unary(x, {Activation::leaky_relu, slope}, "leaky_relu"); }

Variable hardswish(const Variable& x) { return unary(x, {Activation::hardswish}, "hardswish"); }

Variable tanh(const Variable& x) { return unary(x, {Activation::tanh}, "tanh"); }

Variable sigmoid(const Variable& x) { return unary(x, {Activation::sigmoid}, "sigmoid"); }

}  // namespace lowbit::ops
