// The class of an integer network's output: the first c with the largest q[c] * scale[c],
// compared exactly (no float rounding), so that `lowbit verify`, the integer engine's users and
// the exported C (lowbit_rt.h: lb_class_of, the same steps in C99) pick the same class on every
// input, ties included.
//
// A scale is a positive or negative double, held exactly as mantissa * 2^exponent with a 53-bit
// integer mantissa (frexp). q * mantissa needs up to 85 bits: it is formed as a 128-bit
// magnitude (two uint64 words) and the two products are compared after aligning exponents.
#pragma once
#include <cmath>
#include <cstdint>

namespace lowbit::kernels {

struct ExactScale {
  uint64_t mantissa = 0;  // < 2^53; 0 for a zero scale
  int exponent = 0;       // scale = sign * mantissa * 2^exponent
  int sign = 1;           // +1 or -1
};

inline ExactScale exact_scale(double s) {
  ExactScale r;
  if (s == 0.0 || !std::isfinite(s)) return r;
  int e = 0;
  const double f = std::frexp(std::fabs(s), &e);  // [0.5, 1)
  r.mantissa = static_cast<uint64_t>(std::ldexp(f, 53));
  r.exponent = e - 53;
  r.sign = s < 0 ? -1 : 1;
  return r;
}

struct U128 {
  uint64_t hi = 0, lo = 0;
};

// |q| * m, |q| <= 2^31, m < 2^53.
inline U128 mul_u32_u53(uint64_t q, uint64_t m) {
  const uint64_t m_lo = m & 0xffffffffu, m_hi = m >> 32;  // m_hi < 2^21
  const uint64_t p_lo = q * m_lo, p_hi = q * m_hi;        // < 2^64, < 2^53
  U128 r;
  r.lo = p_lo + (p_hi << 32);
  r.hi = (p_hi >> 32) + (r.lo < p_lo ? 1 : 0);
  return r;
}

inline U128 shl_u128(U128 a, int d) {  // 0 <= d < 128, callers keep the result below 2^128
  if (d == 0) return a;
  if (d >= 64) return U128{a.lo << (d - 64), 0};
  return U128{(a.hi << d) | (a.lo >> (64 - d)), a.lo << d};
}

inline int cmp_u128(U128 a, U128 b) {
  if (a.hi != b.hi) return a.hi < b.hi ? -1 : 1;
  if (a.lo != b.lo) return a.lo < b.lo ? -1 : 1;
  return 0;
}

// Sign of q_a * s_a - q_b * s_b, exactly.
inline int compare_scaled(int32_t qa, const ExactScale& sa, int32_t qb, const ExactScale& sb) {
  const int sign_a = (qa == 0 || sa.mantissa == 0) ? 0 : ((qa < 0) != (sa.sign < 0) ? -1 : 1);
  const int sign_b = (qb == 0 || sb.mantissa == 0) ? 0 : ((qb < 0) != (sb.sign < 0) ? -1 : 1);
  if (sign_a != sign_b) return sign_a < sign_b ? -1 : 1;
  if (sign_a == 0) return 0;
  const uint64_t abs_a = qa < 0 ? static_cast<uint64_t>(-static_cast<int64_t>(qa)) : static_cast<uint64_t>(qa);
  const uint64_t abs_b = qb < 0 ? static_cast<uint64_t>(-static_cast<int64_t>(qb)) : static_cast<uint64_t>(qb);
  U128 pa = mul_u32_u53(abs_a, sa.mantissa), pb = mul_u32_u53(abs_b, sb.mantissa);  // each in [2^52, 2^85)
  int mag;  // sign of |a| - |b|
  const int d = sa.exponent - sb.exponent;
  if (d > 40) {
    mag = 1;  // |a| >= 2^52 * 2^41 > 2^85 > |b|
  } else if (d < -40) {
    mag = -1;
  } else {
    if (d > 0) pa = shl_u128(pa, d);
    if (d < 0) pb = shl_u128(pb, -d);
    mag = cmp_u128(pa, pb);
  }
  return sign_a > 0 ? mag : -mag;
}

// The first index of the largest q[c] * scale[c].
inline int64_t class_of(const int32_t* q, const ExactScale* s, int64_t classes) {
  int64_t best = 0;
  for (int64_t c = 1; c < classes; ++c)
    if (compare_scaled(q[c], s[c], q[best], s[best]) > 0) best = c;
  return best;
}

}  // namespace lowbit::kernels
