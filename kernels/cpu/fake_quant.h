// Fused fake-quantization kernels: one pass for the forward (quantize + dequantize), one pass
// for the backward (STE mask, input gradient and the per-channel scale-gradient reduction).
// Element math: kernels/common/fake_quant_math.h.
//
// Layout: x is contiguous with `n` elements; the scale/zero point that applies to element i is
// index (i / inner) % channels (channels = 1 for per-tensor; weights (C_out, ...) per output
// channel: channels = C_out, inner = n / C_out; activations (N, C, H, W) per channel:
// channels = C, inner = H * W).
#pragma once
#include <cstdint>

#include "kernels/common/fake_quant_math.h"
#include "kernels/common/geometry.h"

namespace lowbit::kernels::cpu {

// y = fq(x). scale: (channels); zero_point: (channels) or null (0).
void fake_quant_forward(const FakeQuantGeometry& g, const FakeQuantElem& e, const float* x, const float* scale,
                        const float* zero_point, float* y);

// dx (may be null) = dy * mask; dscale (may be null; (channels), OVERWRITTEN) = per-channel sum
// of dy * dfq/ds, accumulated in double in fixed-size blocks, so the result does not depend on
// the thread count.
void fake_quant_backward(const FakeQuantGeometry& g, const FakeQuantElem& e, bool ste_clamp, bool inside_scale_grad,
                         const float* x, const float* scale, const float* zero_point, const float* dy, float* dx,
                         double* dscale);

}  // namespace lowbit::kernels::cpu
