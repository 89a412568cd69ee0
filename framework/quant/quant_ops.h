// Differentiable building blocks of the quantizers (forward and backward side by side in
// quant_ops.cpp; element math in kernels/common/fake_quant_math.h).
#pragma once
#include "autograd/variable.h"
#include "kernels/common/fake_quant_math.h"

namespace lowbit::quant {

struct FakeQuantSpec {
  kernels::FakeQuantElem elem;
  int axis = -1;                  // channel dimension of per-channel scales; -1 = per tensor
  bool ste_clamp = false;         // gradient passes through the clamp to x (Brevitas weights)
  bool inside_scale_grad = true;  // false: PACT's scale gradient (clamped-high elements only)
};

// y = (clamp(round(x / s + zp), qmin, qmax) - zp) * s.
// x any shape; scale (C) where C = x.shape[axis] (or (1) per tensor), may require grad;
// zero_point (C) f32 or undefined (zero), never differentiated.
Variable fake_quant(const Variable& x, const Variable& scale, const Tensor& zero_point, const FakeQuantSpec& spec);

// Binary: y = s * (x >= 0 ? 1 : -1). dx = g * s (STE through the sign, as Brevitas'
// binary_sign_ste(x) * scale), or g * s * [|x| <= clip] when clip > 0;
// ds = sum(g * sign(x)) per channel.
Variable binary_quant(const Variable& x, const Variable& scale, int axis, float clip);

// max |x| over all of x (axis = -1) -> (1), or per slice of `axis` -> (C). The gradient goes
// to the arg-max element(s); tied maxima share it evenly.
Variable abs_max(const Variable& x, int axis);
// The k-th smallest |x| over the whole tensor, k = floor(0.01 * q * N + 0.5) (1-indexed,
// Brevitas' percentile, torch.kthvalue), -> (1). The gradient goes to that one element (with
// the sign of x), as through torch.kthvalue: Brevitas' runtime statistics are differentiable.
Variable abs_percentile(const Variable& x, double q);
// min and max over all of x (axis -1) or per slice of axis -> (C) each; no gradient.
void min_max(const Tensor& x, int axis, Tensor& mn, Tensor& mx);
// mean(|x|) + k * std(|x|) (unbiased std) over all of x or per slice of axis -> (C), differentiable.
Variable abs_mean_k_std(const Variable& x, int axis, double k);

// Learned asymmetric clipping (PerLayerAsymPACT, Rusci et al.): y = clamp(x, lo_c, hi_c) per
// channel of `axis` (or per tensor, axis -1; lo and hi have one value per channel), with PACT's
// straight-through gradients: dx = g where lo <= x <= hi, dlo = sum of g where x < lo,
// dhi = sum of g where x > hi (torch.clamp's gradients with tensor bounds).
Variable clip_learned(const Variable& x, const Variable& lo, const Variable& hi, int axis);

// Elementwise helpers on small scale tensors.
Variable div_scalar(const Variable& x, float d);     // true division (bit-exact with Brevitas)
Variable abs_sign_grad(const Variable& x);            // |x|, gradient sign(x) with sign(0) = +1
Variable pow2_ceil_ste(const Variable& x);            // 2^ceil(log2 x); ceil straight-through: d/dx = 2^ceil(log2 x) / x
Variable exp2(const Variable& x);                     // 2^x
Variable grad_scale(const Variable& x, float g);      // identity forward, gradient * g (LSQ)
Variable round_ste(const Variable& x);                // round half to even, straight-through

}  // namespace lowbit::quant
