// CUDA activation kernels on device pointers (n elements), sharing kernels/common math.
#pragma once
#include <cstdint>

namespace lowbit::kernels::cuda {

enum class Act { relu, hardtanh, leaky_relu, hardswish, tanh, sigmoid };

// y = act(x); returns a CUDA error code (0 = success).
int activation_forward(Act act, const float* x, float* y, int64_t n, float a, float b, void* stream);
// dx = dy * act'(saved), saved = x or y as kernels/common/activation_math.h says.
int activation_backward(Act act, const float* saved, const float* dy, float* dx, int64_t n, float a, float b,
                        void* stream);

}  // namespace lowbit::kernels::cuda
