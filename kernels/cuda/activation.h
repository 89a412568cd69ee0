// CUDA activation kernels on device pointers (n elements), sharing kernels/common math
// (activation_fwd / activation_bwd, the same functions the CPU backend's loops inline).
#pragma once
#include <cstdint>

#include "kernels/common/activation_math.h"

namespace lowbit::kernels::cuda {

// y = act(x); returns a CUDA error code (0 = success).
int activation_forward(const ActivationParams& act, const float* x, float* y, int64_t n, void* stream);
// dx = dy * act'(saved), saved = x or y as saves_output(act.kind) says.
int activation_backward(const ActivationParams& act, const float* saved, const float* dy, float* dx, int64_t n,
                        void* stream);

}  // namespace lowbit::kernels::cuda
