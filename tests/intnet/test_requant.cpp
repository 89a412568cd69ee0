// Requantization arithmetic (kernels/common/requant_math.h) against hand-computed cases and an
// independent 128-bit re-derivation of each rounding mode's formula.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>

#include "kernels/common/requant_math.h"

using namespace lowbit::kernels;

namespace {

// floor(n / 2^k) and the roundings of n / 2^k, exactly, for any sign (n in 128 bits).
__int128 floor_div_pow2(__int128 n, int k) {
  const __int128 d = static_cast<__int128>(1) << k;
  __int128 q = n / d;
  if (n % d != 0 && n < 0) --q;
  return q;
}
__int128 round_half_up_pow2(__int128 n, int k) {  // ties toward +inf
  return k == 0 ? n : floor_div_pow2(n + (static_cast<__int128>(1) << (k - 1)), k);
}
__int128 round_half_away_pow2(__int128 n, int k) {
  if (k == 0) return n;
  const __int128 half = static_cast<__int128>(1) << (k - 1);
  return n >= 0 ? floor_div_pow2(n + half, k) : -floor_div_pow2(-n + half, k);
}

// Double rounding, written from its definition: h = x * 2^left * m0 / 2^31 rounded half up
// (the doubling high multiply), then h / 2^right rounded half away from zero.
int64_t double_rounding_reference(int32_t x, int32_t m0, int shift) {
  const int left = std::max(shift, 0), right = std::max(-shift, 0);
  const __int128 p = static_cast<__int128>(x) * (static_cast<__int128>(1) << left) * m0;
  const __int128 h = round_half_up_pow2(p, 31);
  return static_cast<int64_t>(round_half_away_pow2(h, right));
}

}  // namespace

TEST(QuantizeMultiplier, HandComputedCases) {
  QuantizedMultiplier q = quantize_multiplier(0.5);
  EXPECT_EQ(q.m0, 1 << 30);
  EXPECT_EQ(q.shift, 0);
  q = quantize_multiplier(1.0);  // frexp(1) = 0.5 * 2^1
  EXPECT_EQ(q.m0, 1 << 30);
  EXPECT_EQ(q.shift, 1);
  q = quantize_multiplier(0.25);
  EXPECT_EQ(q.m0, 1 << 30);
  EXPECT_EQ(q.shift, -1);
  q = quantize_multiplier(0.75);
  EXPECT_EQ(q.m0, 3 << 29);
  EXPECT_EQ(q.shift, 0);
  // Rounds to 2^31: halved, shift + 1 (the TFLite edge case).
  q = quantize_multiplier(1.0 - 1e-12);
  EXPECT_EQ(q.m0, 1 << 30);
  EXPECT_EQ(q.shift, 1);
  // Below 2^-32: no Q31 mantissa can hold it: M = 0.
  q = quantize_multiplier(std::ldexp(0.75, -33));
  EXPECT_EQ(q.m0, 0);
  EXPECT_EQ(q.shift, 0);
  q = quantize_multiplier(std::ldexp(0.75, -31));  // shift -31 still allowed
  EXPECT_EQ(q.m0, 3 << 29);
  EXPECT_EQ(q.shift, -31);
  q = quantize_multiplier(0.0);
  EXPECT_EQ(q.m0, 0);
  // Negative multipliers (a batch norm's negative gamma) keep their sign in m0.
  q = quantize_multiplier(-0.375);
  EXPECT_EQ(q.m0, -(3 << 29));
  EXPECT_EQ(q.shift, -1);
  // Half away from zero in the mantissa: 0.5 + 2^-32 -> m = 2^30 + 0.5 -> 2^30 + 1.
  q = quantize_multiplier(0.5 + std::ldexp(1.0, -32));
  EXPECT_EQ(q.m0, (1 << 30) + 1);
}

TEST(QuantizeMultiplier, RepresentsTheRealValueWithinQ31) {
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> e(-30, 8);
  for (int i = 0; i < 10000; ++i) {
    const double m = std::exp2(e(rng));
    const QuantizedMultiplier q = quantize_multiplier(m);
    EXPECT_GE(q.m0, 1 << 30);
    EXPECT_NEAR(multiplier_value(q) / m, 1.0, std::ldexp(1.0, -30)) << m;
  }
}

TEST(Requant, HighMulRoundsTiesTowardPlusInfinityAndSaturates) {
  // 10 * 2^30 / 2^31 = 5 exactly; 11 * 2^30 / 2^31 = 5.5 -> 6; -11 * 2^30 / 2^31 = -5.5 -> -5.
  EXPECT_EQ(saturating_rounding_doubling_high_mul(10, 1 << 30), 5);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(11, 1 << 30), 6);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(-11, 1 << 30), -5);
  EXPECT_EQ(saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN), INT32_MAX);
}

TEST(Requant, DivideByPowerOfTwoRoundsTiesAwayFromZero) {
  EXPECT_EQ(rounding_divide_by_pot(5, 1), 3);    // 2.5 -> 3
  EXPECT_EQ(rounding_divide_by_pot(-5, 1), -3);  // -2.5 -> -3
  EXPECT_EQ(rounding_divide_by_pot(7, 2), 2);    // 1.75 -> 2
  EXPECT_EQ(rounding_divide_by_pot(-7, 2), -2);
  EXPECT_EQ(rounding_divide_by_pot(6, 2), 2);    // 1.5 -> 2
  EXPECT_EQ(rounding_divide_by_pot(-6, 2), -2);  // -1.5 -> -2
  EXPECT_EQ(rounding_divide_by_pot(123, 0), 123);
  EXPECT_EQ(rounding_divide_by_pot(INT32_MAX, 31), 1);
  EXPECT_EQ(rounding_divide_by_pot(INT32_MIN, 31), -1);
}

TEST(Requant, TflmHandComputed) {
  // M = 0.25 (m0 2^30, shift -1): 10 -> high mul 5, then 5 / 2 = 2.5 -> 3; -10 -> -5 -> -3.
  EXPECT_EQ(requantize_tflm(10, 1 << 30, -1), 3);
  EXPECT_EQ(requantize_tflm(-10, 1 << 30, -1), -3);
  // M = 2 (m0 2^30, shift 2): a left shift first: 7 -> 28 -> 14.
  EXPECT_EQ(requantize_tflm(7, 1 << 30, 2), 14);
  EXPECT_EQ(requantize_tflm(-7, 1 << 30, 2), -14);
  // The double-rounding case met in LeNet: 2176 * M with M = 0.000229775 is 0.49994, but the
  // high multiply gives 2048 (2047.77 rounded) and 2048 / 4096 rounds to 1.
  const QuantizedMultiplier q = quantize_multiplier(0.49994423216 / 2176);
  EXPECT_EQ(q.shift, -12);
  EXPECT_EQ(requantize_tflm(2176, q.m0, q.shift), 1);
  EXPECT_EQ(requantize_single(2176, q.m0, q.shift), 0);
  EXPECT_EQ(requantize_floor(2176, q.m0, q.shift), 0);
}

TEST(Requant, SingleAndFloorHandComputed) {
  // M = 0.25: 10 * 0.25 = 2.5: single rounds ties toward +inf (3, and -2 for -2.5); floor 2 / -3.
  EXPECT_EQ(requantize_single(10, 1 << 30, -1), 3);
  EXPECT_EQ(requantize_single(-10, 1 << 30, -1), -2);
  EXPECT_EQ(requantize_floor(10, 1 << 30, -1), 2);
  EXPECT_EQ(requantize_floor(-10, 1 << 30, -1), -3);
  EXPECT_EQ(requantize_single(-11, 1 << 30, -1), -3);  // -2.75
  EXPECT_EQ(requantize_floor(-9, 1 << 30, -1), -3);    // -2.25
  // Extreme shifts.
  EXPECT_EQ(requantize_single(INT32_MAX, 1 << 30, -31), 0);
  EXPECT_EQ(requantize_floor(-1, 1 << 30, -31), -1);
  EXPECT_EQ(requantize_single(3, 1 << 30, 30), 3 << 29);
}

TEST(Requant, EveryModeMatchesItsDefinitionOnRandomInputs) {
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int32_t> acc(-(1 << 24), 1 << 24);
  std::uniform_real_distribution<double> e(-24, 0);
  std::uniform_int_distribution<int> sign(0, 1);
  for (int i = 0; i < 200000; ++i) {
    const double m = (sign(rng) ? -1 : 1) * std::exp2(e(rng));
    const QuantizedMultiplier q = quantize_multiplier(m);
    const int32_t x = acc(rng);
    const __int128 p = static_cast<__int128>(x) * q.m0;
    ASSERT_EQ(requantize_tflm(x, q.m0, q.shift), double_rounding_reference(x, q.m0, q.shift)) << x << " " << m;
    ASSERT_EQ(requantize_single(x, q.m0, q.shift), static_cast<int64_t>(round_half_up_pow2(p, 31 - q.shift)));
    ASSERT_EQ(requantize_floor(x, q.m0, q.shift), static_cast<int64_t>(floor_div_pow2(p, 31 - q.shift)));
    // Single rounding is x * M rounded once: never more than half a step from the exact value.
    EXPECT_LE(std::fabs(requantize_single(x, q.m0, q.shift) - x * multiplier_value(q)), 0.5 + 1e-9);
    EXPECT_LE(std::fabs(requantize_tflm(x, q.m0, q.shift) - x * multiplier_value(q)), 1.0);
  }
}

TEST(Requant, ExactTiesFollowEachModesRule) {
  for (int32_t j = -20; j <= 20; ++j) {
    // M = 1/4 and x = 4j + 2: x * M = j + 1/2 exactly. TFLM's high multiply is exact (x / 2), the
    // final divide rounds the tie away from zero; single rounds toward +inf; floor down.
    const int32_t x = 4 * j + 2;
    EXPECT_EQ(requantize_tflm(x, 1 << 30, -1), j >= 0 ? j + 1 : j);
    EXPECT_EQ(requantize_single(x, 1 << 30, -1), j + 1);
    EXPECT_EQ(requantize_floor(x, 1 << 30, -1), j);
    // M = 1/2 and x = 2j + 1: the tie is in the high multiply itself (no final shift): toward +inf.
    EXPECT_EQ(requantize_tflm(2 * j + 1, 1 << 30, 0), j + 1);
    EXPECT_EQ(requantize_single(2 * j + 1, 1 << 30, 0), j + 1);
    EXPECT_EQ(requantize_floor(2 * j + 1, 1 << 30, 0), j);
  }
}
