// CPU activation kernels over n contiguous values (math: kernels/common/activation_math.h).
#pragma once
#include <cstdint>

#include "kernels/common/activation_math.h"

namespace lowbit::kernels::cpu {

void activation_forward(const ActivationParams& a, const float* x, float* y, int64_t n);
// dx = dy * act'(saved), saved = x or y as saves_output(a.kind) says.
void activation_backward(const ActivationParams& a, const float* saved, const float* dy, float* dx, int64_t n);

}  // namespace lowbit::kernels::cpu
