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

}  // namespace lowbit::kernels
