// Element math of uniform fake quantization, shared by the CPU kernels
// (kernels/cpu/fake_quant.cpp) and the CUDA kernels. Formulas: docs/quantizers.md.
//
//   v = x / s + zp            (or x * (1/s) + zp: PyTorch's reciprocal form, see `reciprocal`)
//   q = clamp(round(v), qmin, qmax)
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
  bool reciprocal = false;          // v = x * (1/s) (PyTorch) instead of x / s (Brevitas)
  bool clamp_before_round = false;  // clamp v to [qmin, qmax] first, then round (PACT)
  bool ternary = false;             // q = sign(v) where |v| > threshold, else 0 (ignores rounding)
  float threshold = 0.5f;           // ternary threshold, in units of s
};

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

LB_HD float fq_forward(float x, float s, float zp, const FakeQuantElem& e) {
  bool inside;
  const float q = fq_level(fq_scaled(x, s, zp, e.reciprocal), e, &inside);
  return (q - zp) * s;
}

// Gradients of y = fq(x; s) for upstream g:
//   dx = g * (inside || ste_clamp)
//   ds += g * ((q - zp) - (x / s))   where the element is inside (and always with ste_clamp),
//         g * (q - zp)               where it is clamped (non-STE clamp).
// `inside_scale_grad = false` drops the inside term (PACT: da = sum over clamped-high only).
struct FakeQuantGrad {
  float dx;
  float ds;
};

LB_HD FakeQuantGrad fq_backward(float x, float g, float s, float zp, const FakeQuantElem& e, bool ste_clamp,
                                bool inside_scale_grad) {
  bool inside;
  const float v = fq_scaled(x, s, zp, e.reciprocal);
  const float q = fq_level(v, e, &inside);
  FakeQuantGrad r;
  r.dx = (inside || ste_clamp) ? g : 0.f;
  if (inside || ste_clamp) {
    r.ds = inside_scale_grad ? g * ((q - zp) - (v - zp)) : 0.f;
  } else {
    r.ds = g * (q - zp);
  }
  return r;
}

// Binary: y = s * (x >= 0 ? 1 : -1) (sign(0) = +1); STE, optionally only where |x| <= clip.
LB_HD float binary_forward(float x, float s) { return x >= 0.f ? s : -s; }

}  // namespace lowbit::kernels
