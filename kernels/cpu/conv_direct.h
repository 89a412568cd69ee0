// Direct convolution backward-data for convolutions with few input channels (a network's first
// layer: C_in 1 to 3, groups 1), plain NCHW. oneDNN 2.6 runs these through a gemm-based
// (im2col / col2im) kernel that costs far more than the multiply-adds: LeNet-5's conv1 input
// gradient (needed in QAT for the learned scale of the input quantizer) took 16% of a QAT step.
#pragma once
#include "kernels/common/geometry.h"

namespace lowbit::kernels::cpu {

// True where direct_backward_data is used instead of oneDNN (groups 1, C_in < 4).
bool use_direct_backward_data(const Conv2dGeometry& g);
// diff_src (N, C_in, H, W) is OVERWRITTEN with sum over (co, ky, kx) of
// w[co, ci, ky, kx] * diff_dst[n, co, oy, ox] at y = oy*stride - pad + ky*dil (same for x).
void direct_backward_data(const Conv2dGeometry& g, const float* diff_dst, const float* w, float* diff_src);

}  // namespace lowbit::kernels::cpu
