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

LB_HD float tanh_fwd(float x) { return tanhf(x); }
LB_HD float tanh_bwd_from_y(float y) { return 1.f - y * y; }

LB_HD float sigmoid_fwd(float x) { return 1.f / (1.f + expf(-x)); }
LB_HD float sigmoid_bwd_from_y(float y) { return y * (1.f - y); }

}  // namespace lowbit::kernels
