// The MCU exporter's building blocks: the exact class rule (kernels/common/logit_order.h, which
// the generated lowbit_rt.h mirrors) against 128-bit integer arithmetic, and the documented
// sub-byte packing of weights (docs/mcu-export.md). The generated C itself is compiled and run
// against the integer engine by tests/cli/export_mcu.sh.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "kernels/common/logit_order.h"
#include "mcu/c_source.h"

namespace lowbit {
namespace {

using kernels::compare_scaled;
using kernels::exact_scale;

// sign(qa * sa - qb * sb) with __int128, for exponents within 40 of each other.
int reference_compare(int32_t qa, double sa, int32_t qb, double sb) {
  const kernels::ExactScale ea = exact_scale(sa), eb = exact_scale(sb);
  __int128 a = static_cast<__int128>(qa) * static_cast<__int128>(ea.mantissa) * ea.sign;
  __int128 b = static_cast<__int128>(qb) * static_cast<__int128>(eb.mantissa) * eb.sign;
  const int d = ea.exponent - eb.exponent;
  if (d > 0) a *= static_cast<__int128>(1) << d;
  if (d < 0) b *= static_cast<__int128>(1) << -d;
  return a < b ? -1 : (a > b ? 1 : 0);
}

TEST(LogitOrder, MatchesInt128OnRandomProductsOfFloatScales) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int32_t> q(INT32_MIN, INT32_MAX), small(-300, 300);
  std::uniform_real_distribution<float> s(1e-4f, 1.f);
  for (int i = 0; i < 200000; ++i) {
    const double sa = static_cast<double>(s(rng)) * static_cast<double>(s(rng)) * (i % 7 == 0 ? -1 : 1);
    const double sb = static_cast<double>(s(rng)) * static_cast<double>(s(rng));
    const int32_t qa = i % 2 ? q(rng) : small(rng), qb = i % 3 ? q(rng) : small(rng);
    ASSERT_EQ(compare_scaled(qa, exact_scale(sa), qb, exact_scale(sb)), reference_compare(qa, sa, qb, sb))
        << qa << " * " << sa << " vs " << qb << " * " << sb;
  }
}

TEST(LogitOrder, ExactTiesAndNearTiesThatDoublesRound) {
  // 3 * (2 s) == 6 * s exactly: a tie, the first class wins.
  const double s = 0.0123456789;
  EXPECT_EQ(compare_scaled(3, exact_scale(2 * s), 6, exact_scale(s)), 0);
  const int32_t q[3] = {6, 3, 5};
  const kernels::ExactScale sc[3] = {exact_scale(s), exact_scale(2 * s), exact_scale(s)};
  EXPECT_EQ(kernels::class_of(q, sc, 3), 0);
  // Products that differ in the 80th bit compare equal as doubles but not exactly.
  const double a = std::ldexp(static_cast<double>((int64_t{1} << 47) + 1), -47);  // 1 + 2^-47
  const int32_t big = INT32_MAX;
  EXPECT_EQ(static_cast<double>(big) * a, static_cast<double>(big) * a);
  EXPECT_EQ(compare_scaled(big, exact_scale(a), big - 1, exact_scale(a)), 1);
  EXPECT_EQ(compare_scaled(big, exact_scale(a), big, exact_scale(1.0)), 1);
  EXPECT_EQ(compare_scaled(-big, exact_scale(a), -big, exact_scale(1.0)), -1);
  // Signs: a negative scale flips the order; zero logits and zero scales are equal.
  EXPECT_EQ(compare_scaled(5, exact_scale(-1.0), 1, exact_scale(1.0)), -1);
  EXPECT_EQ(compare_scaled(0, exact_scale(3.0), 7, exact_scale(0.0)), 0);
  // Exponents far apart: the larger magnitude wins without shifting.
  EXPECT_EQ(compare_scaled(1, exact_scale(1e30), INT32_MAX, exact_scale(1e-30)), 1);
  EXPECT_EQ(compare_scaled(-1, exact_scale(1e30), INT32_MAX, exact_scale(1e-30)), -1);
}

intnet::WeightTensor weights(std::vector<int8_t> v, int bits, intnet::WeightKind kind = intnet::WeightKind::integer) {
  intnet::WeightTensor w;
  w.shape = {1, static_cast<int64_t>(v.size())};
  w.data = std::move(v);
  w.bits = bits;
  w.kind = kind;
  w.scale = {1.0};
  return w;
}

TEST(McuPacking, SubByteWeightsFollowTheDocumentedOrder) {
  // int4: element 2i in the low nibble; padded with zero bytes to a multiple of 4.
  EXPECT_EQ(mcu::pack_weights(weights({1, -2, 3}, 4)), (std::vector<uint8_t>{0xE1, 0x03, 0, 0}));
  // int2: element 4i+k in bits 2k..2k+1 (1 -> 01, -1 -> 11, 0 -> 00, -2 -> 10).
  EXPECT_EQ(mcu::pack_weights(weights({1, -1, 0, -2, 1}, 2)), (std::vector<uint8_t>{0x8D, 0x01, 0, 0}));
  // binary: bit i % 8 of byte i / 8, 1 = +1, 0 = -1.
  EXPECT_EQ(mcu::pack_weights(weights({1, -1, 1, 1, -1, -1, -1, -1, 1}, 1, intnet::WeightKind::bipolar)),
            (std::vector<uint8_t>{0x0D, 0x01, 0, 0}));
  // 3 bits: fields cross byte boundaries (element 2 is bits 6..8).
  EXPECT_EQ(mcu::pack_weights(weights({1, 2, -1}, 3)), (std::vector<uint8_t>{0xD1, 0x01, 0, 0}));
  // A value that does not fit its bits is refused with the numbers.
  EXPECT_THROW(mcu::pack_weights(weights({8}, 4)), Error);
}

}  // namespace
}  // namespace lowbit
