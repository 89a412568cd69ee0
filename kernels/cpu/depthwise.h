// Direct depthwise-convolution weight gradient (groups == C_in == C_out, plain NCHW). oneDNN 2.6
// falls back to a gemm-based implementation for small feature maps (MobileNet's 2x2 and 1x1
// stages), which costs far more than the few multiply-adds involved; this loop replaces it there.
#pragma once
#include "kernels/common/geometry.h"

namespace lowbit::kernels::cpu {

bool is_depthwise(const Conv2dGeometry& g);
// diff_w (C, 1, KH, KW) and diff_bias (C, may be null) are OVERWRITTEN.
void depthwise_backward_weights(const Conv2dGeometry& g, const float* src, const float* diff_dst, float* diff_w,
                                float* diff_bias);

}  // namespace lowbit::kernels::cpu
