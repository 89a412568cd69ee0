// The integer engine on hand-built networks, against direct re-computations of each op's
// definition (int_network.h), plus the network's validation and range proofs.
#include <gtest/gtest.h>

#include <functional>
#include <random>

#include "core/error.h"
#include "intnet/engine.h"
#include "intnet/ranges.h"
#include "kernels/cpu/int8_gemm.h"
#include "util/temp_files.h"

using namespace lowbit;
using namespace lowbit::intnet;
using lowbit::testing::error_of;

namespace {

Value value(const std::string& name, std::vector<int64_t> shape, int64_t lo, int64_t hi, double scale = 0.5) {
  Value v;
  v.name = name;
  v.shape = std::move(shape);
  v.lo = lo;
  v.hi = hi;
  v.is_signed = lo < 0;
  v.scale = {scale};
  return v;
}

// input (float, C x H x W) -> quantize (scale 1, range [lo, hi]) as node 0; returns its value id.
int add_input(Network& net, std::vector<int64_t> shape, int32_t lo, int32_t hi, float zp = 0) {
  net.name = "t";
  net.input_shape = shape;
  Node n;
  n.op = OpKind::quantize;
  n.name = "in";
  QuantizeAttrs a;
  a.scale = 1.f;
  a.zero_point = zp;
  a.elem.qmin = static_cast<float>(lo);
  a.elem.qmax = static_cast<float>(hi);
  n.attrs = a;
  n.output = net.add_value(value("in", shape, lo, hi, 1.0));
  net.values.back().zero_point = {static_cast<int32_t>(zp)};
  return net.add_node(std::move(n));
}

int add(Network& net, OpKind op, const std::string& name, std::vector<int> in, Value out, Attrs attrs = NoAttrs{}) {
  Node n;
  n.op = op;
  n.name = name;
  n.inputs = std::move(in);
  n.output = net.add_value(std::move(out));
  n.attrs = std::move(attrs);
  return net.add_node(std::move(n));
}

std::vector<float> random_ints(size_t n, int lo, int hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(d(rng));
  return v;
}

}  // namespace

TEST(IntEngine, QuantizeUsesTheQuantizersFloatArithmetic) {
  Network net;
  const int in = add_input(net, {1, 1, 6}, -8, 7);
  net.output = in;
  auto& a = std::get<QuantizeAttrs>(net.nodes[0].attrs);
  a.scale = 0.5f;
  Engine e(net);
  const std::vector<float> x{0.25f, 0.75f, -0.25f, 100.f, -100.f, 1.25f};  // ties go to even
  e.run(x.data(), 1);
  EXPECT_EQ(e.output(), (std::vector<int32_t>{0, 2, 0, 7, -8, 2}));
}

TEST(IntEngine, ConvMatchesTheDefinitionWithPaddingStrideDilationAndGroups) {
  const int64_t c_in = 4, h = 7, w = 6, c_out = 6, groups = 2, kh = 3, kw = 2;
  Network net;
  const int in = add_input(net, {c_in, h, w}, -3, 9, 2.f);  // zero point 2
  ConvAttrs a;
  a.kernel_h = kh;
  a.kernel_w = kw;
  a.stride_h = 2;
  a.stride_w = 1;
  a.pad_top = 1;
  a.pad_bottom = 2;
  a.pad_left = 0;
  a.pad_right = 1;
  a.dil_h = 1;
  a.dil_w = 2;
  a.groups = groups;
  a.input_zero_point = 2;
  a.weight.shape = {c_out, c_in / groups, kh, kw};
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> wd(-7, 7), bd(-50, 50);
  for (int64_t i = 0; i < c_out * (c_in / groups) * kh * kw; ++i) a.weight.data.push_back(static_cast<int8_t>(wd(rng)));
  a.weight.bits = 4;
  a.weight.scale = {1.0};
  for (int64_t c = 0; c < c_out; ++c) a.bias.push_back(bd(rng));
  const int64_t oh = (h + 1 + 2 - kh) / 2 + 1, ow = (w + 0 + 1 - ((kw - 1) * 2 + 1)) / 1 + 1;
  const ConvAttrs ref = a;
  net.output = add(net, OpKind::conv2d, "conv", {in}, value("acc", {c_out, oh, ow}, INT32_MIN, INT32_MAX), a);
  Engine e(net);
  const int64_t n = 3;
  const std::vector<float> x = random_ints(static_cast<size_t>(n * c_in * h * w), -3, 9, 4);
  e.run(x.data(), n);
  for (int64_t s = 0; s < n; ++s)
    for (int64_t oc = 0; oc < c_out; ++oc)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          int64_t acc = ref.bias[oc];
          const int64_t g = oc / (c_out / groups);
          for (int64_t ic = 0; ic < c_in / groups; ++ic)
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * 2 + ky - 1, ix = ox + kx * 2;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;  // padding is the zero point: adds 0
                // The quantize node adds the zero point (q = x / 1 + 2, clamped); the conv subtracts it.
                const int64_t q = std::clamp<int64_t>(
                    static_cast<int64_t>(x[((s * c_in + g * (c_in / groups) + ic) * h + iy) * w + ix]) + 2, -3, 9);
                const int64_t xv = q - 2;
                acc += xv * ref.weight.data[((oc * (c_in / groups) + ic) * kh + ky) * kw + kx];
              }
          ASSERT_EQ(e.output()[((s * c_out + oc) * oh + oy) * ow + ox], acc) << s << " " << oc << " " << oy << " " << ox;
        }
}

TEST(IntEngine, MatmulRequantizePerChannelAndClamp) {
  Network net;
  const int in = add_input(net, {5}, 0, 15);
  MatmulAttrs m;
  m.weight.shape = {3, 5};
  m.weight.data = {1, -2, 3, -4, 5, 7, 7, 7, 7, 7, -8, 0, 0, 0, 1};
  m.weight.scale = {1.0};
  m.bias = {10, -20, 0};
  const int acc = add(net, OpKind::matmul, "fc", {in}, value("acc", {3}, INT32_MIN, INT32_MAX), m);
  RequantizeAttrs r;
  for (double mult : {0.25, 0.125, -0.5}) {
    const auto q = lowbit::kernels::quantize_multiplier(mult);
    r.m0.push_back(q.m0);
    r.shift.push_back(static_cast<int8_t>(q.shift));
    r.multiplier.push_back(mult);
  }
  r.output_zero_point = 3;
  r.lo = 0;
  r.hi = 15;
  Value out = value("out", {3}, 0, 15);
  out.zero_point = {3};
  net.output = add(net, OpKind::requantize, "rq", {acc}, out, r);
  net.rounding = RequantRounding::single;
  Engine e(net);
  const std::vector<float> x{1, 2, 3, 4, 5};
  e.run(x.data(), 1, true);
  // acc = [10 + (1 - 4 + 9 - 16 + 25), -20 + 7 * 15, -8 + 5] = [25, 85, -3]
  EXPECT_EQ(e.value(acc), (std::vector<int32_t>{25, 85, -3}));
  // 25 * 0.25 = 6.25 -> 6 + 3 = 9; 85 / 8 = 10.625 -> 11 + 3 = 14; -3 * -0.5 = 1.5 -> 2 (single: ties up) + 3 = 5
  EXPECT_EQ(e.output(), (std::vector<int32_t>{9, 14, 5}));
  net.rounding = RequantRounding::floor;  // 6, 10, 1
  Engine f(net);
  f.run(x.data(), 1);
  EXPECT_EQ(f.output(), (std::vector<int32_t>{9, 13, 4}));
  // acc_shift: the dot product is scaled before the bias is added (a bias with 3 fraction bits).
  std::get<MatmulAttrs>(net.nodes[1].attrs).acc_shift = 3;
  prove_ranges(net);
  Engine g(net);
  g.run(x.data(), 1, true);
  // [10 + 15 * 8, -20 + 105 * 8, 0 - 3 * 8]
  EXPECT_EQ(g.value(acc), (std::vector<int32_t>{130, 820, -24}));
  EXPECT_EQ(std::get<MatmulAttrs>(net.nodes[1].attrs).acc_bound, 7 * 5 * 15 * 8 + 20);  // the row of 7s, |x| <= 15
}

TEST(IntEngine, PoolsAddConcatReshapeLut) {
  Network net;
  const int in = add_input(net, {2, 4, 4}, -8, 7);
  PoolAttrs mp;
  mp.kernel_h = mp.kernel_w = mp.stride_h = mp.stride_w = 2;
  const int maxp = add(net, OpKind::max_pool, "max", {in}, value("max", {2, 2, 2}, -8, 7), mp);
  PoolAttrs ap = mp;
  ap.shift = 1;  // truncating: floor(sum / 2) clamped to 4 bits signed
  ap.lo = -8;
  ap.hi = 7;
  const int avgp = add(net, OpKind::avg_pool, "avg", {in}, value("avg", {2, 2, 2}, -8, 7), ap);
  const int sum = add(net, OpKind::add, "sum", {maxp, avgp}, value("sum", {2, 2, 2}, -16, 14));
  const int cat = add(net, OpKind::concat, "cat", {maxp, avgp}, value("cat", {4, 2, 2}, -8, 7));
  const int flat = add(net, OpKind::reshape, "flat", {sum}, value("flat", {8}, -16, 14));
  LutAttrs lut;
  lut.in_lo = -16;
  for (int v = -16; v <= 14; ++v) lut.table.push_back(v * v);
  net.output = add(net, OpKind::lut, "sq", {flat}, value("sq", {8}, 0, 256), lut);
  Engine e(net);
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>((i * 7) % 16 - 8);
  e.run(x.data(), 1, true);
  for (int c = 0; c < 2; ++c)
    for (int oy = 0; oy < 2; ++oy)
      for (int ox = 0; ox < 2; ++ox) {
        int mx = -100, s = 0;
        for (int ky = 0; ky < 2; ++ky)
          for (int kx = 0; kx < 2; ++kx) {
            const int v = static_cast<int>(x[(c * 4 + oy * 2 + ky) * 4 + ox * 2 + kx]);
            mx = std::max(mx, v);
            s += v;
          }
        const int tr = std::clamp(static_cast<int>(std::floor(s / 2.0)), -8, 7);
        const size_t o = static_cast<size_t>((c * 2 + oy) * 2 + ox);
        EXPECT_EQ(e.value(maxp)[o], mx);
        EXPECT_EQ(e.value(avgp)[o], tr);
        EXPECT_EQ(e.value(sum)[o], mx + tr);
        EXPECT_EQ(e.value(cat)[o], mx);
        EXPECT_EQ(e.value(cat)[o + 8], tr);
        EXPECT_EQ(e.output()[o], (mx + tr) * (mx + tr));
      }
}

TEST(IntEngine, ValidationNamesTheBadNode) {
  Network net;
  const int in = add_input(net, {4}, 0, 15);
  MatmulAttrs m;
  m.weight.shape = {2, 4};
  m.weight.data.assign(8, 1);
  m.weight.scale = {1.0};
  m.bias = {0};  // one bias for two outputs
  net.output = add(net, OpKind::matmul, "fc", {in}, value("acc", {2}, INT32_MIN, INT32_MAX), m);
  EXPECT_NE(error_of([&] { net.validate(); }).find("node fc: 1 biases for 2 outputs"), std::string::npos);
  std::get<MatmulAttrs>(net.nodes[1].attrs).bias = {0, 0};
  EXPECT_NO_THROW(net.validate());
  net.nodes[1].inputs = {5};
  EXPECT_NE(error_of([&] { net.validate(); }).find("node fc reads value 5, which does not exist"), std::string::npos);
  net.nodes[1].inputs = {net.nodes[1].output};
  EXPECT_NE(error_of([&] { net.validate(); }).find("before a node writes it"), std::string::npos);
  EXPECT_NE(error_of([] { parse_rounding("nearest"); }).find("unknown rounding 'nearest'"), std::string::npos);
}

TEST(IntEngine, RangeProofBoundsAccumulatorsAndRefusesInt32Overflow) {
  Network net;
  const int in = add_input(net, {3}, -128, 127);
  MatmulAttrs m;
  m.weight.shape = {2, 3};
  m.weight.data = {127, -127, 1, 0, 0, -5};
  m.weight.scale = {1.0};
  m.bias = {100, -7};
  net.output = add(net, OpKind::matmul, "fc", {in}, value("acc", {2}, INT32_MIN, INT32_MAX), m);
  prove_ranges(net);
  // Channel 0: (127 + 127 + 1) * 128 + 100 = 32740; channel 1: 5 * 128 + 7.
  EXPECT_EQ(std::get<MatmulAttrs>(net.nodes[1].attrs).acc_bound, 32740);
  EXPECT_EQ(net.values[1].bits, 16);
  EXPECT_EQ(net.values[1].hi, 32740);

  // 16-bit inputs into 2,048 int8 weights of 127: 127 * 2048 * 32768 > 2^31.
  Network big;
  const int bin = add_input(big, {2048}, -32768, 32767);
  MatmulAttrs b;
  b.weight.shape = {1, 2048};
  b.weight.data.assign(2048, 127);
  b.weight.scale = {1.0};
  b.bias = {0};
  big.output = add(big, OpKind::matmul, "wide", {bin}, value("acc", {1}, INT32_MIN, INT32_MAX), b);
  const std::string err = error_of([&] { prove_ranges(big); });
  EXPECT_NE(err.find("integer network wide: output channel 0 can reach |accumulator| = 260096 (sum of |weights|) x "
                     "32768 (largest |input|) + 0 (|bias|) = 8522825728, which needs 34 bits: more than int32"),
            std::string::npos)
      << err;
}

// The oneDNN int8 path (VNNI CPUs) gives the reference loops' integers: u8 and s8 inputs,
// grouped / depthwise / strided / dilated / padded convolutions and matrix products.
TEST(IntEngine, OnednnInt8PathEqualsTheReferenceLoops) {
  if (!lowbit::kernels::cpu::int8_exact()) GTEST_SKIP() << "oneDNN int8 is not exact on this CPU (no VNNI): reference loops only";
  struct Case {
    int64_t c_in, h, w, c_out, k, stride, pad, dil, groups;
    int32_t lo, hi;
  };
  const std::vector<Case> cases{{3, 9, 9, 8, 3, 1, 1, 1, 1, 0, 255},     {4, 10, 7, 6, 3, 2, 1, 1, 2, -128, 127},
                                {8, 8, 8, 8, 3, 1, 1, 1, 8, 0, 15},      {5, 11, 11, 7, 5, 2, 2, 2, 1, -8, 7},
                                {16, 6, 6, 32, 1, 1, 0, 1, 1, -128, 127}};
  for (const Case& c : cases) {
    Network net;
    const int in = add_input(net, {c.c_in, c.h, c.w}, c.lo, c.hi);
    ConvAttrs a;
    a.kernel_h = a.kernel_w = c.k;
    a.stride_h = a.stride_w = c.stride;
    a.pad_top = a.pad_left = a.pad_bottom = a.pad_right = c.pad;
    a.dil_h = a.dil_w = c.dil;
    a.groups = c.groups;
    a.weight.shape = {c.c_out, c.c_in / c.groups, c.k, c.k};
    std::mt19937_64 rng(static_cast<uint64_t>(c.c_in * 31 + c.k));
    std::uniform_int_distribution<int> wd(-128, 127), bd(-1000, 1000);
    for (int64_t i = 0; i < c.c_out * (c.c_in / c.groups) * c.k * c.k; ++i) a.weight.data.push_back(static_cast<int8_t>(wd(rng)));
    a.weight.scale = {1.0};
    for (int64_t o = 0; o < c.c_out; ++o) a.bias.push_back(bd(rng));
    a.acc_shift = c.k == 1 ? 3 : (c.k == 3 && c.groups == 1 ? 1 : 0);  // the scaled dot product on both paths
    const int64_t span = (c.k - 1) * c.dil + 1;
    const int64_t oh = (c.h + 2 * c.pad - span) / c.stride + 1, ow = (c.w + 2 * c.pad - span) / c.stride + 1;
    const int acc = add(net, OpKind::conv2d, "conv", {in}, value("acc", {c.c_out, oh, ow}, INT32_MIN, INT32_MAX), a);
    MatmulAttrs m;
    const int64_t features = c.c_out * oh * ow;
    RequantizeAttrs r;  // back to 8 bits, then a matrix product
    r.m0 = {1 << 30};
    r.shift = {-10};
    r.lo = c.lo;
    r.hi = c.hi;
    const int rq = add(net, OpKind::requantize, "rq", {acc}, value("rq", {c.c_out, oh, ow}, c.lo, c.hi), r);
    const int flat = add(net, OpKind::reshape, "flat", {rq}, value("flat", {features}, c.lo, c.hi));
    m.weight.shape = {10, features};
    for (int64_t i = 0; i < 10 * features; ++i) m.weight.data.push_back(static_cast<int8_t>(wd(rng)));
    m.weight.scale = {1.0};
    m.bias.assign(10, 7);
    net.output = add(net, OpKind::matmul, "fc", {flat}, value("logits", {10}, INT32_MIN, INT32_MAX), m);
    const int64_t n = 5;
    const std::vector<float> x = random_ints(static_cast<size_t>(n * c.c_in * c.h * c.w), c.lo, c.hi, 9);
    Engine fast(net), ref(net);
    ref.set_use_onednn(false);
    fast.run(x.data(), n, true);
    ref.run(x.data(), n, true);
    EXPECT_EQ(fast.value(acc), ref.value(acc)) << "conv case c_in " << c.c_in << " groups " << c.groups;
    EXPECT_EQ(fast.output(), ref.output()) << "matmul after case c_in " << c.c_in;
  }
}
