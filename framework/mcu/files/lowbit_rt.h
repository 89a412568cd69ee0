/* lowbit_rt.h: the integer helpers of a network exported by `lowbit export mcu` (C99).
   They compute exactly what Lowbit's integer engine computes (docs/integer-network.md):
   requantization in three rounding modes, packed sub-byte fields, and the exact class decision.
   Assumes >> of a negative integer is an arithmetic shift (GCC, Clang, Arm Compiler, IAR). */
#ifndef LOWBIT_RT_H
#define LOWBIT_RT_H
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define LB_INLINE static inline __attribute__((always_inline))
#else
#define LB_INLINE static inline
#endif

typedef char lb_arithmetic_shift_check[((-8) >> 1) == -4 ? 1 : -1];

/* Element i of an array of `bits`-bit fields: bits [i*bits, (i+1)*bits), least significant first. */
LB_INLINE uint32_t lb_field(const uint8_t *p, int32_t i, int bits) {
  const uint32_t bit = (uint32_t)i * (uint32_t)bits, s = bit & 7u;
  const uint8_t *q = p + (bit >> 3);
  uint32_t w = q[0];
  if (s + (uint32_t)bits > 8u) w |= (uint32_t)q[1] << 8;
  return (w >> s) & ((1u << bits) - 1u);
}

LB_INLINE void lb_set_field(uint8_t *p, int32_t i, int bits, uint32_t v) {
  const uint32_t bit = (uint32_t)i * (uint32_t)bits, s = bit & 7u;
  const uint32_t mask = ((1u << bits) - 1u) << s, f = (v << s) & mask;
  uint8_t *q = p + (bit >> 3);
  q[0] = (uint8_t)((q[0] & ~mask) | f);
  if (s + (uint32_t)bits > 8u) q[1] = (uint8_t)((q[1] & ~(mask >> 8)) | (f >> 8));
}

/* A `bits`-bit two's complement field as a signed integer. */
LB_INLINE int32_t lb_sext(uint32_t f, int bits) { return (int32_t)f - (int32_t)((f >> (bits - 1)) << bits); }

LB_INLINE int32_t lb_ld16(const uint8_t *p, int32_t i) { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
LB_INLINE void lb_st16(uint8_t *p, int32_t i, int32_t x) { const int16_t v = (int16_t)x; memcpy(p + 2 * i, &v, 2); }
LB_INLINE int32_t lb_ld32(const uint8_t *p, int32_t i) { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
LB_INLINE void lb_st32(uint8_t *p, int32_t i, int32_t x) { memcpy(p + 4 * i, &x, 4); }
LB_INLINE int64_t lb_asr64(int64_t x, int s) { return x >> s; }
LB_INLINE int32_t lb_asr32(int32_t x, int s) { return x >> s; }

/* Dual 16-bit multiply-accumulate on words of two int16 halves (little-endian: element 2i low):
   the Cortex-M4/M7 SMLAD and SXTB16 where the DSP extension is there, plain C with the same
   results elsewhere (accumulators are proven to fit int32, so SMLAD's wrap never happens). */
#if defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>
LB_INLINE int32_t lb_smlad(uint32_t x, uint32_t y, int32_t acc) { return __smlad((int32_t)x, (int32_t)y, acc); }
LB_INLINE uint32_t lb_sxtb16(uint32_t x) { return (uint32_t)__sxtb16((int32_t)x); }
LB_INLINE uint32_t lb_sxtb16_ror8(uint32_t x) {
  uint32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
#else
LB_INLINE int32_t lb_half(uint32_t x) { return (int32_t)(x & 0xFFFFu) - (int32_t)((x & 0x8000u) << 1); }
LB_INLINE int32_t lb_smlad(uint32_t x, uint32_t y, int32_t acc) {
  return acc + lb_half(x) * lb_half(y) + lb_half(x >> 16) * lb_half(y >> 16);
}
/* Bytes 0 and 2 of x, sign-extended into the low and high halves. */
LB_INLINE uint32_t lb_sxtb16(uint32_t x) {
  const uint32_t lo = ((x & 0xFFu) ^ 0x80u) - 0x80u, hi = (((x >> 16) & 0xFFu) ^ 0x80u) - 0x80u;
  return (lo & 0xFFFFu) | ((hi & 0xFFFFu) << 16);
}
LB_INLINE uint32_t lb_sxtb16_ror8(uint32_t x) { return lb_sxtb16((x >> 8) | (x << 24)); }
#endif

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties toward +inf. */
LB_INLINE int32_t lb_srdhm(int32_t a, int32_t b) {
  int64_t ab;
  if (a == b && a == INT32_MIN) return INT32_MAX;
  ab = (int64_t)a * (int64_t)b;
  if (ab >= 0) return (int32_t)((ab + ((int64_t)1 << 30)) >> 31);
  return (int32_t)-((-(ab + (1 - ((int64_t)1 << 30)))) >> 31); /* truncation toward zero */
}

/* gemmlowp RoundingDivideByPOT: x / 2^e, ties away from zero; e in [0, 31]. */
LB_INLINE int32_t lb_rdbpot(int32_t x, int e) {
  const int64_t mask = ((int64_t)1 << e) - 1, rem = (int64_t)x & mask;
  const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (int32_t)(((int64_t)x >> e) + (rem > threshold ? 1 : 0));
}

/* x * M with M = m0 * 2^(shift - 31), in the three rounding modes. */
LB_INLINE int32_t lb_rq_tflm(int32_t x, int32_t m0, int shift) {
  const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
  return lb_rdbpot(lb_srdhm((int32_t)((int64_t)x * ((int64_t)1 << left)), m0), right);
}
LB_INLINE int32_t lb_rq_single(int32_t x, int32_t m0, int shift) {
  const int total = 31 - shift;
  return (int32_t)(((int64_t)x * m0 + ((int64_t)1 << (total - 1))) >> total);
}
LB_INLINE int32_t lb_rq_floor(int32_t x, int32_t m0, int shift) { return (int32_t)(((int64_t)x * m0) >> (31 - shift)); }

/* The class: the first c with the largest q[c] * scale[c], scale[c] = sign * mant * 2^expo,
   compared exactly with 128-bit magnitudes (mant < 2^53). */
typedef struct { uint64_t hi, lo; } lb_u128;

static inline lb_u128 lb_mul_u32_u53(uint64_t q, uint64_t m) {
  const uint64_t p_lo = q * (m & 0xffffffffu), p_hi = q * (m >> 32);
  lb_u128 r;
  r.lo = p_lo + (p_hi << 32);
  r.hi = (p_hi >> 32) + (r.lo < p_lo ? 1u : 0u);
  return r;
}

static inline lb_u128 lb_shl128(lb_u128 a, int d) {
  lb_u128 r = a;
  if (d >= 64) { r.hi = a.lo << (d - 64); r.lo = 0; }
  else if (d > 0) { r.hi = (a.hi << d) | (a.lo >> (64 - d)); r.lo = a.lo << d; }
  return r;
}

static inline int lb_compare_scaled(int32_t qa, uint64_t ma, int ea, int sa, int32_t qb, uint64_t mb, int eb, int sb) {
  const int sign_a = (qa == 0 || ma == 0) ? 0 : (((qa < 0) != (sa < 0)) ? -1 : 1);
  const int sign_b = (qb == 0 || mb == 0) ? 0 : (((qb < 0) != (sb < 0)) ? -1 : 1);
  const int d = ea - eb;
  lb_u128 pa, pb;
  int mag;
  if (sign_a != sign_b) return sign_a < sign_b ? -1 : 1;
  if (sign_a == 0) return 0;
  pa = lb_mul_u32_u53(qa < 0 ? (uint64_t)(-(int64_t)qa) : (uint64_t)qa, ma);
  pb = lb_mul_u32_u53(qb < 0 ? (uint64_t)(-(int64_t)qb) : (uint64_t)qb, mb);
  if (d > 40) mag = 1;
  else if (d < -40) mag = -1;
  else {
    if (d > 0) pa = lb_shl128(pa, d);
    if (d < 0) pb = lb_shl128(pb, -d);
    mag = pa.hi != pb.hi ? (pa.hi < pb.hi ? -1 : 1) : (pa.lo != pb.lo ? (pa.lo < pb.lo ? -1 : 1) : 0);
  }
  return sign_a > 0 ? mag : -mag;
}

static inline int lb_class_of(const int32_t *q, const uint64_t *mant, const int16_t *expo, const int8_t *sign, int n) {
  int c, best = 0;
  for (c = 1; c < n; ++c)
    if (lb_compare_scaled(q[c], mant[c], expo[c], sign[c], q[best], mant[best], expo[best], sign[best]) > 0) best = c;
  return best;
}

#endif
