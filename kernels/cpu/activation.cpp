#include "kernels/cpu/activation.h"

namespace lowbit::kernels::cpu {

namespace {

// One pass of f over n values; the activation is chosen outside the loop so each loop is
// specialized and vectorizes.
template <typename F>
void map(const float* x, float* y, int64_t n, F f) {
#pragma omp parallel for simd if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

template <typename DF>
void map_grad(const float* s, const float* g, float* q, int64_t n, DF df) {
#pragma omp parallel for simd if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) q[i] = g[i] * df(s[i]);
}

}  // namespace

void activation_forward(const ActivationParams& a, const float* x, float* y, int64_t n) {
  const float lo = a.a, hi = a.b;
  switch (a.kind) {
    case Activation::relu: return map(x, y, n, [](float v) { return relu_fwd(v); });
    case Activation::hardtanh: return map(x, y, n, [lo, hi](float v) { return hardtanh_fwd(v, lo, hi); });
    case Activation::leaky_relu: return map(x, y, n, [lo](float v) { return leaky_relu_fwd(v, lo); });
    case Activation::hardswish: return map(x, y, n, [](float v) { return hardswish_fwd(v); });
    case Activation::tanh: return map(x, y, n, [](float v) { return tanh_fwd(v); });
    case Activation::sigmoid: return map(x, y, n, [](float v) { return sigmoid_fwd(v); });
  }
}

void activation_backward(const ActivationParams& a, const float* s, const float* dy, float* dx, int64_t n) {
  const float lo = a.a, hi = a.b;
  switch (a.kind) {
    case Activation::relu: return map_grad(s, dy, dx, n, [](float y) { return relu_bwd_from_y(y); });
    case Activation::hardtanh:
      return map_grad(s, dy, dx, n, [lo, hi](float v) { return hardtanh_bwd_from_x(v, lo, hi); });
    case Activation::leaky_relu: return map_grad(s, dy, dx, n, [lo](float v) { return leaky_relu_bwd_from_x(v, lo); });
    case Activation::hardswish: return map_grad(s, dy, dx, n, [](float v) { return hardswish_bwd_from_x(v); });
    case Activation::tanh: return map_grad(s, dy, dx, n, [](float y) { return tanh_bwd_from_y(y); });
    case Activation::sigmoid: return map_grad(s, dy, dx, n, [](float y) { return sigmoid_bwd_from_y(y); });
  }
}

}  // namespace lowbit::kernels::cpu
