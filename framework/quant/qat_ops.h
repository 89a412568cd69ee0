// Differentiable ops of the QAT features beyond the plain fake quantizer (quant_ops.h):
// learned integer ranges (learned bit width), small broadcasting arithmetic on scale vectors,
// per-channel weight scaling (batch-norm folding), accumulator saturation/truncation and the
// truncating average pool. Forward and backward side by side in qat_ops.cpp.
#pragma once
#include "autograd/variable.h"
#include "ops/ops.h"
#include "quant/quant_ops.h"

namespace lowbit::quant {

// Elementwise on small tensors; b (or a) may have one element (broadcast).
Variable mul(const Variable& a, const Variable& b);
Variable div(const Variable& a, const Variable& b);  // true division a / b
Variable affine(const Variable& x, float a, float b);  // a * x + b

// Fake quantization with an integer range that is itself differentiable (learned bit width):
//   q = clamp(round(x / s + zp), qmin, qmax), y = (q - zp) * s
// qmin, qmax: (1) Variables (may or may not require grad); spec.elem.qmin/qmax are ignored.
// The clamp is a real clamp (dx = 0 where clamped, whatever spec.ste_clamp says), and
//   ds    = sum g * (q - v) inside, g * (q - zp) where clamped (per channel)
//   dqmin = sum over clamped-low elements of g * s,   dqmax = the same over clamped-high ones
// exactly as PyTorch autograd of torch.where(r > qmax, qmax, where(r < qmin, qmin, r)).
// Integer quantizers only (no ternary, no clamp-before-round).
Variable fake_quant_bounds(const Variable& x, const Variable& scale, const Variable& qmin, const Variable& qmax,
                           const Tensor& zero_point, const FakeQuantSpec& spec);

// w * f[c] where c is the index along `axis` of w; f (C). Gradients to both (BN folding).
Variable scale_channels(const Variable& w, const Variable& f, int axis);

// x + b[c] where c is the index along `axis` of x; b (C). Gradients to both.
Variable add_channels(const Variable& x, const Variable& b, int axis);

// Re-grids a tensor whose values are integers times `scale` (per channel along `axis`, or (1)):
//   n = round(x / scale); n' = clamp(floor_or_round(n / 2^shift), lo, hi); y = n' * scale * 2^shift
// shift = 0 with round = saturation to [lo, hi]; shift > 0 with floor = truncation of the
// `shift` least significant bits. Gradient: straight through where not clamped, 0 where clamped.
Variable requantize_integer(const Variable& x, const Tensor& scale, int axis, int shift, bool floor_mode, double lo,
                            double hi);

}  // namespace lowbit::quant
