// CPU pooling kernels over x (N, C, H, W) -> y (N, C, H_out, W_out); geometry in
// kernels/common/geometry.h. Backward kernels overwrite dx.
#pragma once
#include <cstdint>

#include "kernels/common/geometry.h"

namespace lowbit::kernels::cpu {

// argmax: flat h*w index of each maximum in its plane (the first one wins; a NaN propagates).
void max_pool_forward(const Pool2dGeometry& g, const float* x, float* y, int32_t* argmax);
void max_pool_backward(const Pool2dGeometry& g, const int32_t* argmax, const float* dy, float* dx);
void avg_pool_forward(const Pool2dGeometry& g, const float* x, float* y);
void avg_pool_backward(const Pool2dGeometry& g, const float* dy, float* dx);
// (N*C planes of hw values) -> N*C means, and back (dy / hw spread over each plane).
void global_avg_pool_forward(int64_t nc, int64_t hw, const float* x, float* y);
void global_avg_pool_backward(int64_t nc, int64_t hw, const float* dy, float* dx);

}  // namespace lowbit::kernels::cpu
