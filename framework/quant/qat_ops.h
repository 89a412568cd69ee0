// Differentiable ops of the QAT features beyond the plain fake quantizer (quant_ops.h):
// fake quantization with a learned bit width, small broadcasting arithmetic on scale vectors,
// per-channel weight scaling (batch-norm folding), accumulator saturation/truncation and the
// truncating average pool. Forward and backward side by side in qat_ops.cpp.
#pragma once
#include "autograd/variable.h"
#include "ops/ops.h"
#include "quant/quant_ops.h"

namespace lowbit::quant {

// Elementwise on small tensors; b (or a) may have one element (broadcast).
Variable mul(const Variable& a, const Variable& b);
Variable affine(const Variable& x, float a, float b);  // a * x + b

// Integer range and threshold of a learned bit width b (an integer-valued float):
//   signed:   qmax = 2^(b-1) - 1, qmin = -2^(b-1) (+1 narrow), T = 2^(b-1) (2^(b-1) - 1 when narrow
//             and not power-of-two restricted)
//   unsigned: qmax = 2^b - 1 (-1 narrow), qmin = 0, T = qmax
struct LearnedBitsForm {
  bool is_signed = true;
  bool narrow = false;
  bool pow2 = false;  // power-of-two scale restriction: signed T = 2^(b-1) even when narrow
  bool lsq = false;   // `num` is the scale itself (no division by T)
};
struct LearnedRange {
  double qmin, qmax, threshold;
  double dqmin, dqmax, dthreshold;  // derivatives with respect to b
};
LearnedRange learned_range(double bits, const LearnedBitsForm& f);

// Fake quantization with a learned bit width (Brevitas), as one op so that the bit-width
// gradient is exact: s = num / T(b) per channel (num itself for LSQ), then
//   q = clamp(round(x / s + zp), qmin(b), qmax(b)),  y = (q - zp) * s
// with a real clamp (dx = 0 where clamped). Gradients, per element in double precision (the
// paths through T and through the clamp bounds cancel exactly for clamped elements when T is
// the bound, which float32 autograd of the composition would leave as rounding noise):
//   dy/ds = q - v inside, (bound - zp) clamped;  ds/dnum = 1/T;  ds/db = -num/T^2 * dT/db
//   dy/db = dy/ds * ds/db + s * dbound/db (clamped elements)
// num: (C) (or (1)) along spec.axis; bits: (1). Integer quantizers only.
Variable fake_quant_learned_bits(const Variable& x, const Variable& num, const Variable& bits, const Tensor& zero_point,
                                 const FakeQuantSpec& spec, const LearnedBitsForm& form);

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
