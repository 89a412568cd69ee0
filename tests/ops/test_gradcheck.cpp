// Central-difference gradient checks of every op in ops.h. lowbit::testing::gradcheck also
// pre-sets every input gradient and requires backward to ACCUMULATE on top of it, so a kernel
// that overwrites (or forgets to write) the gradient fails here.
//
// Inputs of piecewise-linear ops (relu, hardtanh, leaky_relu, max_pool) are kept away from the
// kinks: every value is at least kMargin (> 2 * eps) from a kink, and max-pool inputs are
// distinct values spaced kSpacing (> 2 * eps) apart, so no perturbation changes a branch.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "util/gradcheck.h"

namespace {

using lowbit::DType;
using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace ops = lowbit::ops;
namespace lt = lowbit::testing;

using Inputs = std::vector<Variable>;

constexpr float kEps = 1e-3f;      // GradCheckOptions default step
constexpr float kMargin = 0.02f;   // distance from any kink (10 * 2 * eps)
constexpr float kSpacing = 0.01f;  // max-pool value spacing (5 * 2 * eps)
static_assert(kMargin > 2 * kEps && kSpacing > 2 * kEps);

Variable param(const Shape& s, Rng& rng, float lo = -1.f, float hi = 1.f) {
  return Variable(lt::random_tensor(s, rng, lo, hi), true);
}

// Uniform in [lo, hi) but at least kMargin away from every value in `kinks`.
Variable away_from(const Shape& s, Rng& rng, float lo, float hi, const std::vector<float>& kinks) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) {
    float v;
    bool ok;
    do {
      v = rng.uniform(lo, hi);
      ok = true;
      for (float k : kinks) ok = ok && std::fabs(v - k) >= kMargin;
    } while (!ok);
    t.f32()[i] = v;
  }
  return Variable(t, true);
}

// A random permutation of {0, kSpacing, 2 kSpacing, ...}, centred on 0: no ties anywhere.
Variable distinct(const Shape& s, Rng& rng) {
  Tensor t = Tensor::empty(s);
  const int64_t n = t.numel();
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = (static_cast<float>(i) - 0.5f * static_cast<float>(n)) * kSpacing;
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[rng.below(static_cast<uint64_t>(i + 1))]);
  for (int64_t i = 0; i < n; ++i) t.f32()[i] = v[i];
  return Variable(t, true);
}

Tensor labels_s32(const std::vector<int32_t>& v) {
  Tensor t = Tensor::empty({static_cast<int64_t>(v.size())}, DType::s32);
  for (size_t i = 0; i < v.size(); ++i) t.data<int32_t>()[i] = v[i];
  return t;
}

// ---- conv2d -----------------------------------------------------------------------------

struct ConvCase {
  std::string name;
  int64_t n, c_in, h, w, c_out, kh, kw;
  ops::Conv2dOptions opt;
  bool bias;
};

ops::Conv2dOptions conv_opt(int64_t stride, int64_t pad, int64_t dil, int64_t groups, bool same = false) {
  ops::Conv2dOptions o;
  o.stride_h = o.stride_w = stride;
  o.pad_h = o.pad_w = pad;
  o.dil_h = o.dil_w = dil;
  o.groups = groups;
  o.pad_same = same;
  return o;
}

class ConvGradcheck : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvGradcheck, InputWeightBias) {
  const ConvCase& c = GetParam();
  Rng rng(42);
  Inputs in{param({c.n, c.c_in, c.h, c.w}, rng), param({c.c_out, c.c_in / c.opt.groups, c.kh, c.kw}, rng)};
  if (c.bias) in.push_back(param({c.c_out}, rng));
  const ops::Conv2dOptions opt = c.opt;
  auto f = [opt](const Inputs& v) { return ops::conv2d(v[0], v[1], v.size() > 2 ? v[2] : Variable(), opt); };
  EXPECT_EQ(lt::gradcheck(f, in), "");
}

ops::Conv2dOptions asym_stride() {
  ops::Conv2dOptions o;
  o.stride_h = 2;
  o.stride_w = 1;
  o.pad_h = 1;
  o.pad_w = 0;
  return o;
}

INSTANTIATE_TEST_SUITE_P(
    Ops, ConvGradcheck,
    ::testing::Values(ConvCase{"plain", 2, 3, 7, 7, 4, 3, 3, conv_opt(1, 0, 1, 1), true},
                      ConvCase{"stride2_pad1", 2, 3, 9, 8, 4, 3, 3, conv_opt(2, 1, 1, 1), true},
                      ConvCase{"pad2_k5", 2, 2, 6, 7, 3, 5, 5, conv_opt(1, 2, 1, 1), true},
                      ConvCase{"dilation2", 2, 3, 9, 9, 4, 3, 3, conv_opt(1, 2, 2, 1), true},
                      ConvCase{"groups2", 2, 4, 7, 7, 6, 3, 3, conv_opt(1, 1, 1, 2), true},
                      ConvCase{"depthwise", 2, 4, 7, 7, 4, 3, 3, conv_opt(1, 1, 1, 4), true},
                      ConvCase{"depthwise_mult2_stride2", 2, 3, 8, 8, 6, 3, 3, conv_opt(2, 1, 1, 3), true},
                      ConvCase{"no_bias", 2, 3, 7, 7, 4, 3, 3, conv_opt(1, 1, 1, 1), false},
                      ConvCase{"pointwise", 2, 5, 5, 5, 4, 1, 1, conv_opt(1, 0, 1, 1), true},
                      ConvCase{"rect_kernel_asym_stride", 2, 3, 9, 7, 4, 3, 2, asym_stride(), true},
                      // TF SAME: 8x10 with k3 s2 needs 1 padding row/column, all at bottom/right.
                      ConvCase{"same_stride2_asym", 2, 3, 8, 10, 4, 3, 3, conv_opt(2, 0, 1, 1, true), true},
                      // TF SAME, odd input, even kernel: total pad 3 = 1 before + 2 after.
                      ConvCase{"same_even_kernel", 2, 3, 7, 7, 4, 4, 4, conv_opt(1, 0, 1, 1, true), true},
                      ConvCase{"same_stride2_odd", 2, 3, 9, 11, 4, 4, 4, conv_opt(2, 0, 1, 1, true), false},
                      ConvCase{"same_dilation2", 2, 2, 7, 8, 3, 3, 3, conv_opt(1, 0, 2, 1, true), true},
                      ConvCase{"same_depthwise_stride2", 2, 4, 9, 9, 4, 3, 3, conv_opt(2, 0, 1, 4, true), true}),
    [](const ::testing::TestParamInfo<ConvCase>& info) { return info.param.name; });

TEST(Gradcheck, Conv2dOnlyWeightRequiresGrad) {
  Rng rng(3);
  Inputs in{Variable(lt::random_tensor({2, 3, 6, 6}, rng), false), param({4, 3, 3, 3}, rng), param({4}, rng)};
  auto f = [](const Inputs& v) { return ops::conv2d(v[0], v[1], v[2], conv_opt(1, 1, 1, 1)); };
  EXPECT_EQ(lt::gradcheck(f, in), "");
}

TEST(Gradcheck, Conv2dOnlyInputRequiresGrad) {
  Rng rng(4);
  Inputs in{param({2, 3, 6, 6}, rng), Variable(lt::random_tensor({4, 3, 3, 3}, rng), false)};
  auto f = [](const Inputs& v) { return ops::conv2d(v[0], v[1], Variable(), conv_opt(2, 1, 1, 1)); };
  EXPECT_EQ(lt::gradcheck(f, in), "");
}

// ---- linear -----------------------------------------------------------------------------

TEST(Gradcheck, Linear) {
  Rng rng(5);
  Inputs in{param({5, 7}, rng), param({4, 7}, rng), param({4}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::linear(v[0], v[1], v[2]); }, in), "");
}

TEST(Gradcheck, LinearNoBias) {
  Rng rng(6);
  Inputs in{param({3, 9}, rng), param({6, 9}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::linear(v[0], v[1], Variable()); }, in), "");
}

// ---- batch_norm2d -----------------------------------------------------------------------

TEST(Gradcheck, BatchNormTrain) {
  Rng rng(7);
  Inputs in{param({3, 4, 5, 5}, rng, -1.f, 2.f), param({4}, rng, 0.5f, 1.5f), param({4}, rng)};
  Tensor rm = Tensor::zeros({4}), rv = Tensor::full({4}, 1.f);
  auto f = [&](const Inputs& v) { return ops::batch_norm2d(v[0], v[1], v[2], rm, rv, true, 0.1f, 1e-5f); };
  EXPECT_EQ(lt::gradcheck(f, in), "");
}

TEST(Gradcheck, BatchNormTrainNoAffine) {
  Rng rng(8);
  Inputs in{param({4, 3, 4, 3}, rng, -2.f, 1.f)};
  Tensor rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.f);
  auto f = [&](const Inputs& v) { return ops::batch_norm2d(v[0], Variable(), Variable(), rm, rv, true, 0.1f, 1e-5f); };
  EXPECT_EQ(lt::gradcheck(f, in), "");
}

TEST(Gradcheck, BatchNormEval) {
  Rng rng(9);
  Inputs in{param({3, 4, 5, 5}, rng), param({4}, rng, 0.5f, 1.5f), param({4}, rng)};
  Tensor rm = lt::random_tensor({4}, rng, -0.5f, 0.5f), rv = lt::random_tensor({4}, rng, 0.5f, 2.f);
  const Tensor rm0 = rm.clone(), rv0 = rv.clone();
  auto f = [&](const Inputs& v) { return ops::batch_norm2d(v[0], v[1], v[2], rm, rv, false, 0.1f, 1e-5f); };
  EXPECT_EQ(lt::gradcheck(f, in), "");
  EXPECT_EQ(lt::max_abs_diff(rm, rm0), 0.f) << "eval mode must not touch running_mean";
  EXPECT_EQ(lt::max_abs_diff(rv, rv0), 0.f) << "eval mode must not touch running_var";
}

// ---- activations ------------------------------------------------------------------------

TEST(Gradcheck, Relu) {
  Rng rng(10);
  Inputs in{away_from({2, 3, 4, 5}, rng, -1.f, 1.f, {0.f})};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::relu(v[0]); }, in), "");
}

TEST(Gradcheck, Relu6) {
  Rng rng(11);
  Inputs in{away_from({2, 3, 4, 5}, rng, -2.f, 8.f, {0.f, 6.f})};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::relu6(v[0]); }, in), "");
}

TEST(Gradcheck, Hardtanh) {
  Rng rng(12);
  Inputs in{away_from({2, 3, 4, 5}, rng, -2.f, 2.f, {-1.f, 1.f})};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::hardtanh(v[0]); }, in), "");
}

TEST(Gradcheck, HardtanhCustomBounds) {
  Rng rng(13);
  Inputs in{away_from({4, 30}, rng, -1.f, 1.f, {-0.3f, 0.5f})};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::hardtanh(v[0], -0.3f, 0.5f); }, in), "");
}

TEST(Gradcheck, LeakyRelu) {
  Rng rng(14);
  Inputs in{away_from({2, 3, 4, 5}, rng, -1.f, 1.f, {0.f})};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::leaky_relu(v[0], 0.1f); }, in), "");
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::leaky_relu(v[0]); }, in), "");
}

TEST(Gradcheck, Hardswish) {
  Rng rng(16);
  Inputs in{away_from({2, 3, 4, 5}, rng, -5.f, 5.f, {-3.f, 3.f})};  // all three pieces, not the kinks
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::hardswish(v[0]); }, in), "");
}

TEST(Gradcheck, Tanh) {
  Rng rng(15);
  Inputs in{param({2, 3, 4, 5}, rng, -3.f, 3.f)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::tanh(v[0]); }, in), "");
}

TEST(Gradcheck, Sigmoid) {
  Rng rng(16);
  Inputs in{param({2, 3, 4, 5}, rng, -4.f, 4.f)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::sigmoid(v[0]); }, in), "");
}

// ---- pooling ----------------------------------------------------------------------------

ops::Pool2dOptions pool_opt(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, bool incl = true) {
  ops::Pool2dOptions o;
  o.kernel_h = kh;
  o.kernel_w = kw;
  o.stride_h = sh;
  o.stride_w = sw;
  o.pad_h = ph;
  o.pad_w = pw;
  o.count_include_pad = incl;
  return o;
}

TEST(Gradcheck, MaxPool2x2) {
  Rng rng(17);
  Inputs in{distinct({2, 3, 8, 8}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::max_pool2d(v[0], pool_opt(2, 2, 2, 2, 0, 0)); }, in), "");
}

TEST(Gradcheck, MaxPoolOverlappingPadded) {
  Rng rng(18);
  Inputs in{distinct({2, 3, 9, 9}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::max_pool2d(v[0], pool_opt(3, 3, 2, 2, 1, 1)); }, in), "");
}

TEST(Gradcheck, MaxPoolStride1RectPadded) {
  Rng rng(19);
  Inputs in{distinct({2, 2, 7, 6}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::max_pool2d(v[0], pool_opt(3, 2, 1, 1, 1, 1)); }, in), "");
}

TEST(Gradcheck, AvgPool2x2) {
  Rng rng(20);
  Inputs in{param({2, 3, 8, 8}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::avg_pool2d(v[0], pool_opt(2, 2, 2, 2, 0, 0)); }, in), "");
}

TEST(Gradcheck, AvgPoolPaddedCountIncludePad) {
  Rng rng(21);
  Inputs in{param({2, 3, 9, 8}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::avg_pool2d(v[0], pool_opt(3, 3, 2, 2, 1, 1, true)); }, in),
            "");
}

TEST(Gradcheck, AvgPoolPaddedCountExcludePad) {
  Rng rng(22);
  Inputs in{param({2, 3, 9, 8}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::avg_pool2d(v[0], pool_opt(3, 3, 2, 2, 1, 1, false)); }, in),
            "");
}

TEST(Gradcheck, AvgPoolRectStride1ExcludePad) {
  Rng rng(23);
  Inputs in{param({2, 2, 6, 7}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::avg_pool2d(v[0], pool_opt(3, 2, 1, 2, 1, 1, false)); }, in),
            "");
}

TEST(Gradcheck, GlobalAvgPool) {
  Rng rng(24);
  Inputs in{param({3, 4, 5, 6}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::global_avg_pool2d(v[0]); }, in), "");
}

// ---- elementwise ------------------------------------------------------------------------

TEST(Gradcheck, Add) {
  Rng rng(25);
  Inputs in{param({2, 3, 4, 5}, rng), param({2, 3, 4, 5}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::add(v[0], v[1]); }, in), "");
}

TEST(Gradcheck, AddOnlyOneRequiresGrad) {
  Rng rng(26);
  Inputs in{Variable(lt::random_tensor({3, 4}, rng), false), param({3, 4}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::add(v[0], v[1]); }, in), "");
}

TEST(Gradcheck, AddSameVariableTwice) {
  Rng rng(27);
  Inputs in{param({3, 4}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::add(v[0], v[0]); }, in), "");
}

TEST(Gradcheck, MulScalar) {
  Rng rng(28);
  Inputs in{param({2, 3, 4}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::mul_scalar(v[0], -2.5f); }, in), "");
}

TEST(Gradcheck, Sum) {
  Rng rng(29);
  Inputs in{param({2, 3, 4}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::sum(v[0]); }, in), "");
}

TEST(Gradcheck, Mean) {
  Rng rng(30);
  Inputs in{param({2, 3, 4}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::mean(v[0]); }, in), "");
}

TEST(Gradcheck, DropoutTraining) {
  Rng rng(31);
  Inputs in{param({4, 50}, rng)};
  // A fresh generator per call: the same mask in every forward of the check.
  auto f = [](const Inputs& v) {
    Rng r(77);
    return ops::dropout(v[0], 0.3f, true, r);
  };
  EXPECT_EQ(lt::gradcheck(f, in), "");
}

TEST(Gradcheck, DropoutEval) {
  Rng rng(32);
  Inputs in{param({4, 10}, rng)};
  // Evaluation-mode dropout returns its input itself: the checked output is the leaf.
  auto f = [](const Inputs& v) {
    Rng r(77);
    return ops::dropout(v[0], 0.3f, false, r);
  };
  EXPECT_EQ(lt::gradcheck(f, in), "");
}

// ---- shape ------------------------------------------------------------------------------

TEST(Gradcheck, Reshape) {
  Rng rng(33);
  Inputs in{param({2, 3, 4, 5}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::reshape(v[0], Shape{6, -1}); }, in), "");
}

TEST(Gradcheck, Flatten) {
  Rng rng(34);
  Inputs in{param({2, 3, 4, 5}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::flatten(v[0]); }, in), "");
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::flatten(v[0], 2); }, in), "");
}

TEST(Gradcheck, ConcatChannels) {
  Rng rng(35);
  Inputs in{param({2, 3, 4, 5}, rng), param({2, 1, 4, 5}, rng), param({2, 4, 4, 5}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::concat_channels(v); }, in), "");
}

TEST(Gradcheck, ConcatChannels2dAndRepeatedInput) {
  Rng rng(36);
  Inputs in{param({3, 4}, rng), param({3, 2}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::concat_channels({v[0], v[1], v[0]}); }, in), "");
}

TEST(Gradcheck, ConcatOneInputWithoutGrad) {
  Rng rng(37);
  Inputs in{Variable(lt::random_tensor({2, 2, 3, 3}, rng), false), param({2, 3, 3, 3}, rng)};
  EXPECT_EQ(lt::gradcheck([](const Inputs& v) { return ops::concat_channels(v); }, in), "");
}

// ---- loss -------------------------------------------------------------------------------

TEST(Gradcheck, CrossEntropy) {
  Rng rng(38);
  Inputs in{param({6, 5}, rng, -3.f, 3.f)};
  const Tensor labels = labels_s32({0, 4, 2, 2, 1, 3});
  EXPECT_EQ(lt::gradcheck([&](const Inputs& v) { return ops::cross_entropy(v[0], labels); }, in), "");
}

TEST(Gradcheck, CrossEntropyLargeLogits) {
  Rng rng(39);
  Inputs in{param({4, 10}, rng, 20.f, 30.f)};  // exercises the max-subtraction path
  const Tensor labels = labels_s32({9, 0, 5, 5});
  EXPECT_EQ(lt::gradcheck([&](const Inputs& v) { return ops::cross_entropy(v[0], labels); }, in), "");
}

// ---- composite --------------------------------------------------------------------------

TEST(Gradcheck, SmallNetworkEndToEnd) {
  Rng rng(40);
  Inputs in{param({2, 2, 6, 6}, rng), param({3, 2, 3, 3}, rng), param({3}, rng), param({3}, rng, 0.5f, 1.5f),
            param({3}, rng), param({4, 27}, rng), param({4}, rng)};
  Tensor rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.f);
  const Tensor labels = labels_s32({1, 3});
  auto f = [&](const Inputs& v) {
    Variable h = ops::conv2d(v[0], v[1], v[2], conv_opt(1, 1, 1, 1));
    h = ops::batch_norm2d(h, v[3], v[4], rm, rv, true, 0.1f, 1e-5f);
    h = ops::tanh(h);
    h = ops::avg_pool2d(h, pool_opt(2, 2, 2, 2, 0, 0));
    h = ops::linear(ops::flatten(h), v[5], v[6]);
    return ops::cross_entropy(h, labels);
  };
  EXPECT_EQ(lt::gradcheck(f, in), "");
}

// ---- accumulation across graphs ---------------------------------------------------------

// Two separate graphs rooted at the same leaf: the second backward adds to the first's
// gradient (x.grad == g1 + g2), for ops whose backward writes through different code paths.
TEST(Accumulation, TwoGraphsIntoOneLeaf) {
  Rng rng(41);
  const Tensor xd = lt::random_tensor({2, 3, 6, 6}, rng);
  const Tensor wd = lt::random_tensor({4, 3, 3, 3}, rng);
  const Tensor r1 = lt::random_tensor({2, 4, 6, 6}, rng);
  const Tensor r2 = lt::random_tensor({2, 3, 3, 3}, rng);
  auto graph1 = [&](const Variable& x) { return ops::conv2d(x, Variable(wd), Variable(), conv_opt(1, 1, 1, 1)); };
  auto graph2 = [&](const Variable& x) { return ops::max_pool2d(ops::tanh(x), pool_opt(2, 2, 2, 2, 0, 0)); };

  Variable a(xd.clone(), true);
  graph1(a).backward(r1);
  Variable b(xd.clone(), true);
  graph2(b).backward(r2);
  ASSERT_TRUE(a.grad().defined());
  ASSERT_TRUE(b.grad().defined());

  Variable x(xd.clone(), true);
  graph1(x).backward(r1);
  graph2(x).backward(r2);
  Tensor expected = a.grad().clone();
  expected.add_(b.grad());
  EXPECT_EQ(lt::max_abs_diff(x.grad(), expected), 0.f);

  // And in the other order, with a third graph on top.
  Variable y(xd.clone(), true);
  graph2(y).backward(r2);
  graph1(y).backward(r1);
  ops::sum(y).backward();
  Tensor expected2 = b.grad().clone();
  expected2.add_(a.grad());
  expected2.add_(Tensor::full(xd.shape(), 1.f));
  EXPECT_LE(lt::max_abs_diff(y.grad(), expected2), 1e-6f);
}

// Every single-input op, run twice on two graphs: grad must double.
TEST(Accumulation, EveryUnaryOpDoublesOnSecondBackward) {
  Rng rng(42);
  const Tensor xd = lt::random_tensor({2, 4, 6, 6}, rng, 0.05f, 0.9f);  // inside every linear region
  const Tensor labels = labels_s32({1, 3});
  Tensor rm = Tensor::zeros({4}), rv = Tensor::full({4}, 1.f);
  const std::vector<std::pair<std::string, std::function<Variable(const Variable&)>>> fns = {
      {"relu", [](const Variable& x) { return ops::relu(x); }},
      {"relu6", [](const Variable& x) { return ops::relu6(x); }},
      {"hardtanh", [](const Variable& x) { return ops::hardtanh(x); }},
      {"leaky_relu", [](const Variable& x) { return ops::leaky_relu(x); }},
      {"hardswish", [](const Variable& x) { return ops::hardswish(x); }},
      {"tanh", [](const Variable& x) { return ops::tanh(x); }},
      {"sigmoid", [](const Variable& x) { return ops::sigmoid(x); }},
      {"max_pool", [](const Variable& x) { return ops::max_pool2d(x, pool_opt(2, 2, 2, 2, 0, 0)); }},
      {"avg_pool", [](const Variable& x) { return ops::avg_pool2d(x, pool_opt(3, 3, 2, 2, 1, 1, false)); }},
      {"global_avg_pool", [](const Variable& x) { return ops::global_avg_pool2d(x); }},
      {"batch_norm", [&](const Variable& x) { return ops::batch_norm2d(x, Variable(), Variable(), rm, rv, true, 0.1f, 1e-5f); }},
      {"mul_scalar", [](const Variable& x) { return ops::mul_scalar(x, 3.f); }},
      {"sum", [](const Variable& x) { return ops::sum(x); }},
      {"mean", [](const Variable& x) { return ops::mean(x); }},
      {"dropout", [](const Variable& x) { Rng r(5); return ops::dropout(x, 0.5f, true, r); }},
      {"reshape", [](const Variable& x) { return ops::reshape(x, Shape{-1}); }},
      {"flatten", [](const Variable& x) { return ops::flatten(x); }},
      {"concat", [](const Variable& x) { return ops::concat_channels({x, x}); }},
      {"add", [](const Variable& x) { return ops::add(x, x); }},
      {"conv2d", [](const Variable& x) {
         return ops::conv2d(x, Variable(Tensor::full({2, 4, 3, 3}, 0.1f)), Variable(), conv_opt(1, 1, 1, 1));
       }},
      {"linear", [](const Variable& x) { return ops::linear(ops::flatten(x), Variable(Tensor::full({3, 144}, 0.1f)), Variable()); }},
      {"cross_entropy", [&](const Variable& x) { return ops::cross_entropy(ops::reshape(x, Shape{2, -1}), labels); }},
  };
  for (const auto& [name, fn] : fns) {
    SCOPED_TRACE(name);
    Variable x(xd.clone(), true);
    Variable out = fn(x);
    Rng r(9);
    const Tensor rr = lt::random_tensor(out.shape(), r);
    out.backward(rr);
    ASSERT_TRUE(x.grad().defined());
    const Tensor g1 = x.grad().clone();
    fn(x).backward(rr);
    Tensor twice = g1.clone();
    twice.add_(g1);
    EXPECT_LE(lt::max_abs_diff(x.grad(), twice), 1e-6f);
  }
}

}  // namespace
