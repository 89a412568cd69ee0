// Element math of uniform fake quantization, shared by the CPU kernels
// (kernels/cpu/fake_quant.cpp) and the CUDA kernels. Formulas: docs/quantizers.md.
//
//   v = x / s + zp,  q = clamp(round(v), qmin, qmax)              (Brevitas: division, zp before rounding)
//   q = clamp(round(x * (1/s)) + zp, qmin, qmax)                     (`reciprocal`: PyTorch's form)
//   y = (q - zp) * s
#pragma once
#include <cmath>

#include "kernels/common/host_device.h"

namespace lowbit::kernels {

enum class Rounding : unsigned char { half_even, floor, ceil, half_away };

LB_HD float round_mode(float v, Rounding r) {
  switch (r) {
    case Rounding::half_even: return nearbyintf(v);  // default FP rounding mode: ties to even
    case Rounding::floor: return floorf(v);
    case Rounding::ceil: return ceilf(v);
    case Rounding::half_away: return roundf(v);
  }
  return v;
}

// Per-element options of the integer fake quantizer.
struct FakeQuantElem {
  float qmin, qmax;
  Rounding rounding = Rounding::half_even;
  bool reciprocal = false;          // PyTorch's form: round(x * (1/s)) + zp instead of round(x / s + zp)
  bool clamp_before_round = false;  // clamp v to [qmin, qmax] first, then round (PACT)
  bool ternary = false;             // q = sign(v) where |v| > threshold, else 0 (ignores rounding)
  float threshold = 0.5f;           // ternary threshold, in units of s
  // A clamping activation fused in front (relu: [0, inf), relu6 / hardtanh: [lo, hi]):
  // x is first clamped to [in_lo, in_hi]; its gradient passes only where in_lo < x < in_hi
  // (PyTorch's relu / hardtanh gradients). Infinite bounds: no activation.
  float in_lo = -INFINITY, in_hi = INFINITY;
};

// The fused activation: the clamped input, and whether the activation passes x's gradient.
LB_HD float fq_act(float x, const FakeQuantElem& e) { return x < e.in_lo ? e.in_lo : (x > e.in_hi ? e.in_hi : x); }
LB_HD bool fq_act_passes(float x, const FakeQuantElem& e) { return !(x <= e.in_lo) && !(x >= e.in_hi); }

// Scaled input v for scale s and zero point zp.
LB_HD float fq_scaled(float x, float s, float zp, bool reciprocal) {
  return (reciprocal ? x * (1.0f / s) : x / s) + zp;
}

// Integer value q for a scaled input v; `inside` says whether no clamp applied.
LB_HD float fq_level(float v, const FakeQuantElem& e, bool* inside) {
  if (e.ternary) {
    const float q = fabsf(v) > e.threshold ? (v > 0.f ? 1.f : -1.f) : 0.f;
    *inside = fabsf(v) <= 1.f;
    return q;
  }
  if (e.clamp_before_round) {
    *inside = v > e.qmin && v < e.qmax;  // PACT: gradient to x where 0 < x < alpha
    const float c = v < e.qmin ? e.qmin : (v > e.qmax ? e.qmax : v);
    return round_mode(c, e.rounding);
  }
  const float r = round_mode(v, e.rounding);
  *inside = r >= e.qmin && r <= e.qmax;
  return r < e.qmin ? e.qmin : (r > e.qmax ? e.qmax : r);
}

// PyTorch's integer path (fake_quantize_per_tensor/per_channel_affine, the learnable LSQ ops):
// the integer zero point is added AFTER rounding x * (1/s), so odd zero points do not move ties.
LB_HD bool fq_torch_form(const FakeQuantElem& e) { return e.reciprocal && !e.ternary && !e.clamp_before_round; }

// Integer level q of x (clamped) and whether no clamp applied.
LB_HD float fq_quantize(float x, float s, float zp, const FakeQuantElem& e, bool* inside) {
  if (fq_torch_form(e)) {
    const float r = round_mode(x * (1.0f / s), e.rounding) + zp;
    *inside = r >= e.qmin && r <= e.qmax;
    return r < e.qmin ? e.qmin : (r > e.qmax ? e.qmax : r);
  }
  return fq_level(fq_scaled(x, s, zp, e.reciprocal), e, inside);
}

LB_HD float fq_forward(float x_in, float s, float zp, const FakeQuantElem& e) {
  bool inside;
  const float x = fq_act(x_in, e);
  const float q = fq_quantize(x, s, zp, e, &inside);
  return (q - zp) * s;
}

// Gradients of y = fq(x; s) for upstream g:
//   dx = g * (inside || ste_clamp)
//   ds += g * ((q - zp) - (x / s))   where the element is inside (and always with ste_clamp),
//         g * (q - zp)               where it is clamped (non-STE clamp).
// `inside_scale_grad = false` drops the inside term (PACT: da = sum over clamped-high only).
// In PyTorch's form (`reciprocal`) the inside term is g * ((q - zp) * s - x) * (1/s), rounded as
// PyTorch's learnable fake-quant kernel rounds it (the product-difference fused), so each
// element's term equals PyTorch's bit for bit.
// ds is the element's exact term in double (g times an exact float difference), so the
// per-channel sums stay accurate when the terms cancel; PyTorch's form keeps PyTorch's float
// rounding of the term.
struct FakeQuantGrad {
  float dx;
  double ds;
};

LB_HD FakeQuantGrad fq_backward(float x_in, float g, float s, float zp, const FakeQuantElem& e, bool ste_clamp,
                                bool inside_scale_grad) {
  bool inside;
  const float x = fq_act(x_in, e);  // the scale gradient sees the activation's output
  const float q = fq_quantize(x, s, zp, e, &inside);
  FakeQuantGrad r;
  r.dx = ((inside || ste_clamp) && fq_act_passes(x_in, e)) ? g : 0.f;
  if (inside || ste_clamp) {
    if (!inside_scale_grad) {
      r.ds = 0.0;
    } else if (fq_torch_form(e)) {
      r.ds = (g * fmaf(q - zp, s, -x)) * (1.0f / s);
    } else {
      const float v = fq_scaled(x, s, zp, e.reciprocal);
      r.ds = static_cast<double>(g) * static_cast<double>((q - zp) - (v - zp));
    }
  } else if (fq_torch_form(e)) {
    r.ds = g * (q - zp);
  } else {
    r.ds = static_cast<double>(g) * static_cast<double>(q - zp);
  }
  return r;
}

// Binary: y = s * (x >= 0 ? 1 : -1) (sign(0) = +1); STE, optionally only where |x| <= clip.
LB_HD float binary_forward(float x, float s) { return x >= 0.f ? s : -s; }

}  // namespace lowbit::kernels
