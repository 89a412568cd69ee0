// Integer requantization: an int32 accumulator times a real multiplier M, in integers only.
// Shared by the integer engine (framework/intnet), the exporters' generated code and the CUDA
// kernels, so every place computes the same integers. docs/integer-network.md has the formulas.
//
// M is stored as a Q31 int32 m0 and a shift: M ~= m0 * 2^(shift - 31), |m0| in [2^30, 2^31).
//
//   tflm  (CMSIS-NN / TFLite Micro "double rounding", the default):
//           left = max(shift, 0), right = max(-shift, 0)
//           y = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^left, m0), right)
//         The high multiply rounds ties toward +inf, the divide rounds ties away from zero.
//   single (TFLite Micro TFLITE_SINGLE_ROUNDING / CMSIS-NN CMSIS_NN_USE_SINGLE_ROUNDING):
//         y = (x * m0 + 2^(30 - shift)) >> (31 - shift) in 64 bits: x * M rounded once, ties
//         toward +inf. Both sides of a deployment must be built with the same choice.
//   floor (PULP-NN / NEMO style): y = floor(x * m0 / 2^(31 - shift)), one arithmetic shift of
//         the 64-bit product.
// Double rounding rounds x * m0 / 2^31 to an integer before the final shift, so when the right
// shift is large the result can differ from x * M rounded once (0.49994 -> 2047.77 -> 2048 ->
// 2048 / 4096 = 0.5 -> 1); docs/integer-network.md gives the measured effect.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace lowbit::kernels {

enum class RequantRounding : unsigned char { tflm, single, floor };

struct QuantizedMultiplier {
  int32_t m0 = 0;  // Q31 mantissa, sign of M included
  int shift = 0;   // power of two: M = m0 * 2^(shift - 31)
};

// TFLite's QuantizeMultiplier: frexp, m = round(q * 2^31) half away from zero; m == 2^31 is
// halved with shift + 1; a shift below -31 gives M = 0 (m0 = 0, shift = 0). M = 0 gives {0, 0}.
// The caller refuses shifts above 30 (the left shift would overflow any accumulator).
inline QuantizedMultiplier quantize_multiplier(double real) {
  QuantizedMultiplier r;
  if (real == 0.0 || !std::isfinite(real)) return r;
  int exp = 0;
  const double q = std::frexp(real, &exp);  // |q| in [0.5, 1)
  int64_t m = static_cast<int64_t>(std::round(q * 2147483648.0));
  if (m == (int64_t{1} << 31)) {
    m /= 2;
    ++exp;
  }
  if (exp < -31) return r;  // too small for a Q31 mantissa: M = 0
  // m = -2^31 (q close to -1) fits int32; SRDHM saturates its one overflowing case.
  r.m0 = static_cast<int32_t>(m);
  r.shift = exp;
  return r;
}

// The real multiplier that (m0, shift) stands for.
inline double multiplier_value(const QuantizedMultiplier& q) { return std::ldexp(static_cast<double>(q.m0), q.shift - 31); }

// gemmlowp's SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties toward +inf, and
// INT32_MAX for the one overflowing case a = b = INT32_MIN.
LB_HD int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));  // C++ division truncates toward zero
}

// gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded half away from zero, exponent in [0, 31].
LB_HD int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int64_t mask = (int64_t{1} << exponent) - 1;
  const int64_t remainder = static_cast<int64_t>(x) & mask;
  const int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return static_cast<int32_t>((static_cast<int64_t>(x) >> exponent) + (remainder > threshold ? 1 : 0));
}

// TFLite's MultiplyByQuantizedMultiplier. x * 2^left must fit int32: the lowering proves it from
// the accumulator bound before it accepts a layer (intnet accumulator analysis).
LB_HD int32_t requantize_tflm(int32_t x, int32_t m0, int shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  const int32_t shifted = static_cast<int32_t>(static_cast<int64_t>(x) * (int64_t{1} << left));
  return rounding_divide_by_pot(saturating_rounding_doubling_high_mul(shifted, m0), right);
}

// floor(x * m0 / 2^(31 - shift)); shift in [-31, 30] keeps the shift in [1, 62].
LB_HD int32_t requantize_floor(int32_t x, int32_t m0, int shift) {
  const int64_t p = static_cast<int64_t>(x) * static_cast<int64_t>(m0);
  return static_cast<int32_t>(p >> (31 - shift));  // arithmetic shift: floor (C++20)
}

// round(x * m0 / 2^(31 - shift)), ties toward +inf; shift in [-31, 30].
LB_HD int32_t requantize_single(int32_t x, int32_t m0, int shift) {
  const int total = 31 - shift;
  const int64_t p = static_cast<int64_t>(x) * static_cast<int64_t>(m0) + (int64_t{1} << (total - 1));
  return static_cast<int32_t>(p >> total);
}

LB_HD int32_t requantize(int32_t x, int32_t m0, int shift, RequantRounding r) {
  switch (r) {
    case RequantRounding::tflm: return requantize_tflm(x, m0, shift);
    case RequantRounding::single: return requantize_single(x, m0, shift);
    case RequantRounding::floor: return requantize_floor(x, m0, shift);
  }
  return 0;
}

}  // namespace lowbit::kernels
