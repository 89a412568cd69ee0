// Element math of the activations, shared by the CPU ops (framework/ops/activation.cpp) and
// the CUDA kernels (kernels/cuda/activation.cu). Backward functions take what the op saves:
// the input x or the output y, as each name says.
#pragma once
#include <cmath>

#include "kernels/common/host_device.h"

namespace lowbit::kernels {

LB_HD float relu_fwd(float x) { return x > 0.f ? x : 0.f; }
LB_HD float relu_bwd_from_y(float y) { return y > 0.f ? 1.f : 0.f; }

LB_HD float hardtanh_fwd(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }
// PyTorch: the gradient passes strictly inside (lo, hi).
LB_HD float hardtanh_bwd_from_x(float x, float lo, float hi) { return (x > lo && x < hi) ? 1.f : 0.f; }

LB_HD float leaky_relu_fwd(float x, float slope) { return x > 0.f ? x : x * slope; }
LB_HD float leaky_relu_bwd_from_x(float x, float slope) { return x > 0.f ? 1.f : slope; }

// PyTorch's hardswish, x * relu6(x + 3) / 6, in its order of operations; the gradient is 0 below
// -3, x / 3 + 1/2 on [-3, 3] (both ends included, as PyTorch 1.13) and 1 above 3.
LB_HD float hardswish_fwd(float x) {
  const float c = x + 3.f < 0.f ? 0.f : (x + 3.f > 6.f ? 6.f : x + 3.f);
  return x * c / 6.f;
}
LB_HD float hardswish_bwd_from_x(float x) { return x < -3.f ? 0.f : (x <= 3.f ? x / 3.f + 0.5f : 1.f); }

LB_HD float tanh_fwd(float x) { return tanhf(x); }
LB_HD float tanh_bwd_from_y(float y) { return 1.f - y * y; }

LB_HD float sigmoid_fwd(float x) { return 1.f / (1.f + expf(-x)); }
LB_HD float sigmoid_bwd_from_y(float y) { return y * (1.f - y); }

// The elementwise activations the backends implement, with their parameters (a: hardtanh's
// lower bound or leaky_relu's slope; b: hardtanh's upper bound).
enum class Activation : unsigned char { relu, hardtanh, leaky_relu, hardswish, tanh, sigmoid };
struct ActivationParams {
  Activation kind;
  float a = 0.f, b = 0.f;
};

// Whether the backward reads the forward's output (else its input).
LB_HD bool saves_output(Activation k) {
  return k == Activation::relu || k == Activation::tanh || k == Activation::sigmoid;
}

LB_HD float activation_fwd(const ActivationParams& p, float x) {
  switch (p.kind) {
    case Activation::relu: return relu_fwd(x);
    case Activation::hardtanh: return hardtanh_fwd(x, p.a, p.b);
    case Activation::leaky_relu: return leaky_relu_fwd(x, p.a);
    case Activation::hardswish: return hardswish_fwd(x);
    case Activation::tanh: return tanh_fwd(x);
    case Activation::sigmoid: return sigmoid_fwd(x);
  }
  return x;
}

// act'(saved), saved as saves_output says.
LB_HD float activation_bwd(const ActivationParams& p, float saved) {
  switch (p.kind) {
    case Activation::relu: return relu_bwd_from_y(saved);
    case Activation::hardtanh: return hardtanh_bwd_from_x(saved, p.a, p.b);
    case Activation::leaky_relu: return leaky_relu_bwd_from_x(saved, p.a);
    case Activation::hardswish: return hardswish_bwd_from_x(saved);
    case Activation::tanh: return tanh_bwd_from_y(saved);
    case Activation::sigmoid: return sigmoid_bwd_from_y(saved);
  }
  return 0.f;
}

}  // namespace lowbit::kernels
