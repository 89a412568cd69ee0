// Forward and backward of every op against PyTorch on random inputs. Each test computes
// out = op(inputs) and out.backward(R) for a random upstream gradient R in lowbit, runs the
// same in PyTorch (float32, one thread), and compares the outputs, every input gradient and
// (batch norm) the updated running statistics.
//
// Tolerance: max relative difference (lowbit::testing::max_rel_diff, |a - b| / max(1, |b|))
// at most 1e-4 for every compared tensor.
#include <gtest/gtest.h>

#include <cmath>

#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "util/gradcheck.h"
#include "util/torch_oracle.h"

namespace {

using lowbit::DType;
using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace ops = lowbit::ops;
namespace lt = lowbit::testing;

constexpr float kTol = 1e-4f;  // max_rel_diff bound for every compared tensor

#define EXPECT_MATCHES(ours, theirs, what)                                                     \
  do {                                                                                         \
    const Tensor& o_ = (ours);                                                                 \
    const Tensor& t_ = (theirs);                                                               \
    ASSERT_TRUE(o_.defined()) << what << ": lowbit produced nothing";                          \
    ASSERT_EQ(o_.shape(), t_.shape()) << what;                                                 \
    EXPECT_LE(lt::max_rel_diff(o_, t_), kTol) << what << " (max abs diff " << lt::max_abs_diff(o_, t_) << ")"; \
  } while (0)

Tensor labels_s32(int64_t n, int64_t classes, Rng& rng) {
  Tensor t = Tensor::empty({n}, DType::s32);
  for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  return t;
}

std::string py_bool(bool b) { return b ? "True" : "False"; }

// ---- conv2d -----------------------------------------------------------------------------

struct ConvCase {
  std::string name;
  int64_t n, c_in, h, w, c_out, kh, kw;
  int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups;
  bool same, bias;
};

class ConvVsTorch : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvVsTorch, ForwardBackward) {
  LB_REQUIRE_TORCH();
  const ConvCase& c = GetParam();
  Rng rng(100);
  ops::Conv2dOptions o;
  o.stride_h = c.stride_h;
  o.stride_w = c.stride_w;
  o.pad_h = c.pad_h;
  o.pad_w = c.pad_w;
  o.dil_h = c.dil_h;
  o.dil_w = c.dil_w;
  o.groups = c.groups;
  o.pad_same = c.same;
  Variable x(lt::random_tensor({c.n, c.c_in, c.h, c.w}, rng), true);
  Variable w(lt::random_tensor({c.c_out, c.c_in / c.groups, c.kh, c.kw}, rng, -0.5f, 0.5f), true);
  Variable b = c.bias ? Variable(lt::random_tensor({c.c_out}, rng), true) : Variable();
  Variable y = ops::conv2d(x, w, b, o);
  const Tensor r = lt::random_tensor(y.shape(), rng);
  y.backward(r);

  std::ostringstream py;
  py << "SH, SW, PH, PW, DH, DW, G = " << c.stride_h << ", " << c.stride_w << ", " << c.pad_h << ", " << c.pad_w << ", "
     << c.dil_h << ", " << c.dil_w << ", " << c.groups << "\n"
     << "SAME, BIAS = " << py_bool(c.same) << ", " << py_bool(c.bias) << "\n"
     << R"PY(
x = load('x').requires_grad_()
w = load('w').requires_grad_()
b = load('b').requires_grad_() if BIAS else None
xi = x
if SAME:
    # TensorFlow SAME: out = ceil(in / stride), the odd padding pixel at the bottom/right.
    def same_pad(i, k, s, d):
        o = (i + s - 1) // s
        t = max((o - 1) * s + (k - 1) * d + 1 - i, 0)
        return t // 2, t - t // 2
    pt, pb = same_pad(x.shape[2], w.shape[2], SH, DH)
    pl, pr = same_pad(x.shape[3], w.shape[3], SW, DW)
    xi = F.pad(x, (pl, pr, pt, pb))
    PH = PW = 0
y = F.conv2d(xi, w, b, stride=(SH, SW), padding=(PH, PW), dilation=(DH, DW), groups=G)
y.backward(load('r'))
save('y', y)
save('gx', x.grad)
save('gw', w.grad)
if BIAS:
    save('gb', b.grad)
)PY";
  std::map<std::string, Tensor> in{{"x", x.data()}, {"w", w.data()}, {"r", r}};
  std::vector<std::string> outs{"y", "gx", "gw"};
  if (c.bias) {
    in["b"] = b.data();
    outs.push_back("gb");
  }
  auto t = lt::run_torch(py.str(), in, outs);
  EXPECT_MATCHES(y.data(), t["y"], "output");
  EXPECT_MATCHES(x.grad(), t["gx"], "input grad");
  EXPECT_MATCHES(w.grad(), t["gw"], "weight grad");
  if (c.bias) EXPECT_MATCHES(b.grad(), t["gb"], "bias grad");
}

INSTANTIATE_TEST_SUITE_P(
    Ops, ConvVsTorch,
    ::testing::Values(
        //        name                n  cin h   w  cout kh kw sh sw ph pw dh dw g  same   bias
        ConvCase{"plain", 4, 8, 12, 12, 16, 3, 3, 1, 1, 0, 0, 1, 1, 1, false, true},
        ConvCase{"strided", 4, 8, 13, 13, 16, 3, 3, 2, 2, 0, 0, 1, 1, 1, false, true},
        ConvCase{"strided_padded", 4, 8, 14, 15, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, false, true},
        ConvCase{"padded_k5", 4, 8, 12, 12, 8, 5, 5, 1, 1, 2, 2, 1, 1, 1, false, true},
        ConvCase{"dilated", 4, 8, 14, 14, 16, 3, 3, 1, 1, 2, 2, 2, 2, 1, false, true},
        ConvCase{"dilated_strided", 4, 8, 15, 15, 8, 3, 3, 2, 2, 1, 1, 2, 2, 1, false, true},
        ConvCase{"grouped2", 4, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 2, false, true},
        ConvCase{"grouped4", 4, 16, 10, 10, 8, 3, 3, 1, 1, 1, 1, 1, 1, 4, false, true},
        ConvCase{"depthwise", 4, 16, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16, false, true},
        ConvCase{"depthwise_stride2", 4, 16, 13, 13, 16, 3, 3, 2, 2, 1, 1, 1, 1, 16, false, false},
        // tiny maps with many channels (MobileNet's last stages): oneDNN 2.6 picks a gemm kernel
        // for the weight gradient and our own depthwise_backward_weights runs instead
        ConvCase{"depthwise_2x2_pad1", 8, 256, 2, 2, 256, 3, 3, 1, 1, 1, 1, 1, 1, 256, false, true},
        ConvCase{"depthwise_2x2_same_stride2", 8, 256, 2, 2, 256, 3, 3, 2, 2, 0, 0, 1, 1, 256, true, true},
        ConvCase{"depthwise_1x1_pad1", 8, 512, 1, 1, 512, 3, 3, 1, 1, 1, 1, 1, 1, 512, false, false},
        ConvCase{"depthwise_mult2", 4, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 8, false, true},
        ConvCase{"no_bias", 4, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, false, false},
        ConvCase{"pointwise", 8, 16, 10, 10, 8, 1, 1, 1, 1, 0, 0, 1, 1, 1, false, true},
        ConvCase{"rect_asym_stride", 4, 8, 12, 14, 8, 3, 5, 2, 1, 1, 2, 1, 1, 1, false, true},
        ConvCase{"same_stride1", 4, 8, 12, 12, 16, 3, 3, 1, 1, 0, 0, 1, 1, 1, true, true},
        ConvCase{"same_stride2_even", 4, 8, 16, 16, 16, 3, 3, 2, 2, 0, 0, 1, 1, 1, true, true},
        ConvCase{"same_stride2_odd", 4, 8, 15, 13, 16, 3, 3, 2, 2, 0, 0, 1, 1, 1, true, true},
        // C_in < 4: our direct backward-data kernel (kernels/cpu/conv_direct.h)
        ConvCase{"cin1_k5_pad2", 4, 1, 28, 28, 6, 5, 5, 1, 1, 2, 2, 1, 1, 1, false, true},
        ConvCase{"cin3_dilated_rect", 3, 3, 13, 37, 5, 3, 5, 1, 1, 1, 3, 2, 2, 1, false, true},
        ConvCase{"cin3_stride2", 4, 3, 15, 17, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, false, false},
        ConvCase{"cin2_same_stride1", 2, 2, 9, 11, 4, 4, 4, 1, 1, 0, 0, 1, 1, 1, true, true},
        ConvCase{"cin1_same_stride2", 2, 1, 9, 11, 4, 3, 3, 2, 2, 0, 0, 1, 1, 1, true, true},
        ConvCase{"same_even_kernel", 4, 8, 11, 11, 8, 4, 4, 1, 1, 0, 0, 1, 1, 1, true, false},
        ConvCase{"same_k5_stride2", 4, 8, 14, 15, 8, 5, 5, 2, 2, 0, 0, 1, 1, 1, true, true},
        ConvCase{"same_dilated", 4, 8, 12, 13, 8, 3, 3, 1, 1, 0, 0, 2, 2, 1, true, true},
        ConvCase{"same_depthwise_stride2", 4, 16, 14, 14, 16, 3, 3, 2, 2, 0, 0, 1, 1, 16, true, true}),
    [](const ::testing::TestParamInfo<ConvCase>& info) { return info.param.name; });

// ---- linear -----------------------------------------------------------------------------

void linear_vs_torch(bool bias) {
  Rng rng(200);
  Variable x(lt::random_tensor({8, 48}, rng), true);
  Variable w(lt::random_tensor({10, 48}, rng, -0.3f, 0.3f), true);
  Variable b = bias ? Variable(lt::random_tensor({10}, rng), true) : Variable();
  Variable y = ops::linear(x, w, b);
  const Tensor r = lt::random_tensor(y.shape(), rng);
  y.backward(r);
  std::map<std::string, Tensor> in{{"x", x.data()}, {"w", w.data()}, {"r", r}};
  std::vector<std::string> outs{"y", "gx", "gw"};
  if (bias) {
    in["b"] = b.data();
    outs.push_back("gb");
  }
  auto t = lt::run_torch("BIAS = " + py_bool(bias) + R"PY(
x = load('x').requires_grad_()
w = load('w').requires_grad_()
b = load('b').requires_grad_() if BIAS else None
y = F.linear(x, w, b)
y.backward(load('r'))
save('y', y); save('gx', x.grad); save('gw', w.grad)
if BIAS:
    save('gb', b.grad)
)PY",
                         in, outs);
  EXPECT_MATCHES(y.data(), t["y"], "output");
  EXPECT_MATCHES(x.grad(), t["gx"], "input grad");
  EXPECT_MATCHES(w.grad(), t["gw"], "weight grad");
  if (bias) EXPECT_MATCHES(b.grad(), t["gb"], "bias grad");
}

TEST(OpsVsTorch, Linear) {
  LB_REQUIRE_TORCH();
  linear_vs_torch(true);
}

TEST(OpsVsTorch, LinearNoBias) {
  LB_REQUIRE_TORCH();
  linear_vs_torch(false);
}

// ---- batch_norm2d -----------------------------------------------------------------------

void batch_norm_vs_torch(bool training, bool affine) {
  Rng rng(300);
  const int64_t c = 12;
  // Shifted, scaled input so the statistics are far from (0, 1).
  Variable x(lt::random_tensor({8, c, 10, 10}, rng, -2.f, 5.f), true);
  Variable g = affine ? Variable(lt::random_tensor({c}, rng, 0.5f, 1.5f), true) : Variable();
  Variable b = affine ? Variable(lt::random_tensor({c}, rng), true) : Variable();
  Tensor rm = lt::random_tensor({c}, rng, -0.5f, 0.5f);
  Tensor rv = lt::random_tensor({c}, rng, 0.5f, 2.f);
  const Tensor rm0 = rm.clone(), rv0 = rv.clone();
  Variable y = ops::batch_norm2d(x, g, b, rm, rv, training, 0.1f, 1e-5f);
  const Tensor r = lt::random_tensor(y.shape(), rng);
  y.backward(r);
  std::map<std::string, Tensor> in{{"x", x.data()}, {"rm", rm0}, {"rv", rv0}, {"r", r}};
  std::vector<std::string> outs{"y", "gx", "rm", "rv"};
  if (affine) {
    in["g"] = g.data();
    in["b"] = b.data();
    outs.push_back("gg");
    outs.push_back("gb");
  }
  auto t = lt::run_torch("TRAIN, AFFINE = " + py_bool(training) + ", " + py_bool(affine) + R"PY(
x = load('x').requires_grad_()
g = load('g').requires_grad_() if AFFINE else None
b = load('b').requires_grad_() if AFFINE else None
rm, rv = load('rm'), load('rv')
y = F.batch_norm(x, rm, rv, g, b, training=TRAIN, momentum=0.1, eps=1e-5)
y.backward(load('r'))
save('y', y); save('gx', x.grad); save('rm', rm); save('rv', rv)
if AFFINE:
    save('gg', g.grad); save('gb', b.grad)
)PY",
                         in, outs);
  EXPECT_MATCHES(y.data(), t["y"], "output");
  EXPECT_MATCHES(x.grad(), t["gx"], "input grad");
  if (affine) {
    EXPECT_MATCHES(g.grad(), t["gg"], "weight grad");
    EXPECT_MATCHES(b.grad(), t["gb"], "bias grad");
  }
  EXPECT_MATCHES(rm, t["rm"], "running_mean");
  EXPECT_MATCHES(rv, t["rv"], "running_var");
  if (training) {
    EXPECT_GT(lt::max_abs_diff(rm, rm0), 1e-3f) << "training must update running_mean";
    EXPECT_GT(lt::max_abs_diff(rv, rv0), 1e-3f) << "training must update running_var";
  } else {
    EXPECT_EQ(lt::max_abs_diff(rm, rm0), 0.f);
    EXPECT_EQ(lt::max_abs_diff(rv, rv0), 0.f);
  }
}

TEST(OpsVsTorch, BatchNormTrain) {
  LB_REQUIRE_TORCH();
  batch_norm_vs_torch(true, true);
}

TEST(OpsVsTorch, BatchNormTrainNoAffine) {
  LB_REQUIRE_TORCH();
  batch_norm_vs_torch(true, false);
}

TEST(OpsVsTorch, BatchNormEval) {
  LB_REQUIRE_TORCH();
  batch_norm_vs_torch(false, true);
}

// Several training steps in a row: the running statistics follow PyTorch's step by step.
TEST(OpsVsTorch, BatchNormRunningStatsOverSteps) {
  LB_REQUIRE_TORCH();
  Rng rng(301);
  const int64_t c = 8;
  Tensor rm = Tensor::zeros({c}), rv = Tensor::full({c}, 1.f);
  std::map<std::string, Tensor> in;
  for (int s = 0; s < 5; ++s) {
    Tensor xs = lt::random_tensor({4, c, 10, 10}, rng, -1.f + s, 3.f + 2 * s);
    std::string name = "x";
    name += std::to_string(s);  // (not "x" + std::to_string(s): GCC 12 -Wrestrict false positive)
    in[name] = xs;
    ops::batch_norm2d(Variable(xs), Variable(), Variable(), rm, rv, true, 0.1f, 1e-5f);
  }
  auto t = lt::run_torch(R"PY(
rm, rv = torch.zeros(8), torch.ones(8)
for s in range(5):
    F.batch_norm(load('x%d' % s), rm, rv, None, None, training=True, momentum=0.1, eps=1e-5)
save('rm', rm); save('rv', rv)
)PY",
                         in, {"rm", "rv"});
  EXPECT_MATCHES(rm, t["rm"], "running_mean after 5 steps");
  EXPECT_MATCHES(rv, t["rv"], "running_var after 5 steps");
}

// ---- pooling ----------------------------------------------------------------------------

struct PoolCase {
  std::string name;
  bool max;
  int64_t n, c, h, w, kh, kw, sh, sw, ph, pw;
  bool count_include_pad;
};

class PoolVsTorch : public ::testing::TestWithParam<PoolCase> {};

TEST_P(PoolVsTorch, ForwardBackward) {
  LB_REQUIRE_TORCH();
  const PoolCase& p = GetParam();
  Rng rng(400);
  ops::Pool2dOptions o;
  o.kernel_h = p.kh;
  o.kernel_w = p.kw;
  o.stride_h = p.sh;
  o.stride_w = p.sw;
  o.pad_h = p.ph;
  o.pad_w = p.pw;
  o.count_include_pad = p.count_include_pad;
  Variable x(lt::random_tensor({p.n, p.c, p.h, p.w}, rng, -2.f, 2.f), true);
  Variable y = p.max ? ops::max_pool2d(x, o) : ops::avg_pool2d(x, o);
  const Tensor r = lt::random_tensor(y.shape(), rng);
  y.backward(r);
  std::ostringstream py;
  py << "K, S, P, INCL = (" << p.kh << ", " << p.kw << "), (" << p.sh << ", " << p.sw << "), (" << p.ph << ", " << p.pw
     << "), " << py_bool(p.count_include_pad) << "\n"
     << "x = load('x').requires_grad_()\n"
     << (p.max ? "y = F.max_pool2d(x, K, S, P)\n" : "y = F.avg_pool2d(x, K, S, P, count_include_pad=INCL)\n")
     << "y.backward(load('r'))\nsave('y', y); save('gx', x.grad)\n";
  auto t = lt::run_torch(py.str(), {{"x", x.data()}, {"r", r}}, {"y", "gx"});
  EXPECT_MATCHES(y.data(), t["y"], "output");
  EXPECT_MATCHES(x.grad(), t["gx"], "input grad");
}

// Ties (quantized activations have many): the first maximum of the window gets the gradient,
// in PyTorch's order (row-major within the window).
TEST(Ops, MaxPoolTiesVsTorch) {
  LB_REQUIRE_TORCH();
  Rng rng(401);
  for (int64_t w : {28, 40}) {
    Tensor xt = lt::random_tensor({2, 3, 8, w}, rng, -1.5f, 2.5f);
    for (int64_t i = 0; i < xt.numel(); ++i) xt.f32()[i] = std::floor(xt.f32()[i]);  // values -2..2
    ops::Pool2dOptions o;
    o.kernel_h = o.kernel_w = o.stride_h = o.stride_w = 2;
    Variable x(xt, true);
    Variable y = ops::max_pool2d(x, o);
    const Tensor r = lt::random_tensor(y.shape(), rng);
    y.backward(r);
    auto t = lt::run_torch("x = load('x').requires_grad_()\ny = F.max_pool2d(x, 2, 2)\ny.backward(load('r'))\n"
                           "save('y', y); save('gx', x.grad)\n",
                           {{"x", x.data()}, {"r", r}}, {"y", "gx"});
    EXPECT_MATCHES(y.data(), t["y"], "output");
    EXPECT_MATCHES(x.grad(), t["gx"], "input grad (first maximum of each window)");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Ops, PoolVsTorch,
    ::testing::Values(
        //       name                         max   n  c   h   w  kh kw sh sw ph pw incl
        PoolCase{"max_2x2", true, 4, 8, 12, 12, 2, 2, 2, 2, 0, 0, true},
        PoolCase{"max_2x2_odd_input", true, 4, 8, 13, 11, 2, 2, 2, 2, 0, 0, true},
        PoolCase{"max_2x2_lenet_28", true, 3, 6, 28, 28, 2, 2, 2, 2, 0, 0, true},
        PoolCase{"max_2x2_wide_70", true, 2, 3, 6, 70, 2, 2, 2, 2, 0, 0, true},
        PoolCase{"max_2x2_exact_32", true, 2, 3, 4, 32, 2, 2, 2, 2, 0, 0, true},
        PoolCase{"max_2x2_odd_wide_37", true, 2, 3, 5, 37, 2, 2, 2, 2, 0, 0, true},
        PoolCase{"max_3x3_s2_pad1", true, 4, 8, 13, 13, 3, 3, 2, 2, 1, 1, true},
        PoolCase{"max_3x3_s1_pad1", true, 4, 8, 10, 12, 3, 3, 1, 1, 1, 1, true},
        PoolCase{"max_rect_pad", true, 4, 8, 12, 15, 2, 3, 2, 3, 1, 1, true},
        PoolCase{"avg_2x2", false, 4, 8, 12, 12, 2, 2, 2, 2, 0, 0, true},
        PoolCase{"avg_3x3_s2_pad1_incl", false, 4, 8, 13, 14, 3, 3, 2, 2, 1, 1, true},
        PoolCase{"avg_3x3_s2_pad1_excl", false, 4, 8, 13, 14, 3, 3, 2, 2, 1, 1, false},
        PoolCase{"avg_3x3_s1_pad1_incl", false, 4, 8, 10, 11, 3, 3, 1, 1, 1, 1, true},
        PoolCase{"avg_3x3_s1_pad1_excl", false, 4, 8, 10, 11, 3, 3, 1, 1, 1, 1, false},
        PoolCase{"avg_rect_pad_incl", false, 4, 8, 12, 15, 4, 3, 3, 2, 2, 1, true},
        PoolCase{"avg_rect_pad_excl", false, 4, 8, 12, 15, 4, 3, 3, 2, 2, 1, false},
        PoolCase{"avg_overhang_incl", false, 4, 8, 11, 11, 5, 5, 3, 3, 2, 2, true},
        PoolCase{"avg_overhang_excl", false, 4, 8, 11, 11, 5, 5, 3, 3, 2, 2, false}),
    [](const ::testing::TestParamInfo<PoolCase>& info) { return info.param.name; });

TEST(OpsVsTorch, GlobalAvgPool) {
  LB_REQUIRE_TORCH();
  Rng rng(500);
  Variable x(lt::random_tensor({8, 16, 11, 13}, rng, -1.f, 3.f), true);
  Variable y = ops::global_avg_pool2d(x);
  const Tensor r = lt::random_tensor(y.shape(), rng);
  y.backward(r);
  auto t = lt::run_torch(R"PY(
x = load('x').requires_grad_()
y = F.adaptive_avg_pool2d(x, 1)
y.backward(load('r'))
save('y', y); save('gx', x.grad)
)PY",
                         {{"x", x.data()}, {"r", r}}, {"y", "gx"});
  EXPECT_MATCHES(y.data(), t["y"], "output");
  EXPECT_MATCHES(x.grad(), t["gx"], "input grad");
}

// ---- activations ------------------------------------------------------------------------

struct ActCase {
  std::string name;
  std::function<Variable(const Variable&)> fn;
  std::string torch;  // expression in x
};

class ActivationVsTorch : public ::testing::TestWithParam<ActCase> {};

TEST_P(ActivationVsTorch, ForwardBackward) {
  LB_REQUIRE_TORCH();
  const ActCase& a = GetParam();
  Rng rng(600);
  // Range covers every region of every activation (relu6 up to 6, hardtanh bounds, tails).
  Variable x(lt::random_tensor({4, 8, 12, 12}, rng, -8.f, 8.f), true);
  Variable y = a.fn(x);
  const Tensor r = lt::random_tensor(y.shape(), rng);
  y.backward(r);
  auto t = lt::run_torch("x = load('x').requires_grad_()\ny = " + a.torch +
                             "\ny.backward(load('r'))\nsave('y', y); save('gx', x.grad)\n",
                         {{"x", x.data()}, {"r", r}}, {"y", "gx"});
  EXPECT_MATCHES(y.data(), t["y"], "output");
  EXPECT_MATCHES(x.grad(), t["gx"], "input grad");
}

INSTANTIATE_TEST_SUITE_P(
    Ops, ActivationVsTorch,
    ::testing::Values(ActCase{"relu", [](const Variable& x) { return ops::relu(x); }, "F.relu(x)"},
                      ActCase{"relu6", [](const Variable& x) { return ops::relu6(x); }, "F.relu6(x)"},
                      ActCase{"hardtanh", [](const Variable& x) { return ops::hardtanh(x); }, "F.hardtanh(x)"},
                      ActCase{"hardtanh_custom", [](const Variable& x) { return ops::hardtanh(x, -2.5f, 4.f); },
                              "F.hardtanh(x, -2.5, 4.0)"},
                      ActCase{"leaky_relu", [](const Variable& x) { return ops::leaky_relu(x); }, "F.leaky_relu(x)"},
                      ActCase{"leaky_relu_0_2", [](const Variable& x) { return ops::leaky_relu(x, 0.2f); },
                              "F.leaky_relu(x, 0.2)"},
                      ActCase{"hardswish", [](const Variable& x) { return ops::hardswish(x); }, "F.hardswish(x)"},
                      ActCase{"tanh", [](const Variable& x) { return ops::tanh(x); }, "torch.tanh(x)"},
                      ActCase{"sigmoid", [](const Variable& x) { return ops::sigmoid(x); }, "torch.sigmoid(x)"}),
    [](const ::testing::TestParamInfo<ActCase>& info) { return info.param.name; });

// Hardswish at and next to its kinks (-3, 3) and at 0: PyTorch's gradient convention on both
// ends, bit for bit.
TEST(OpsVsTorch, HardswishKinks) {
  LB_REQUIRE_TORCH();
  const std::vector<float> v{-6.f, -3.0001f, -3.f, -2.9999f, -1.5f, 0.f, 1.f, 2.9999f, 3.f, 3.0001f, 6.f};
  Tensor xd = Tensor::empty({static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) xd.f32()[i] = v[i];
  Variable x(xd, true);
  Variable y = ops::hardswish(x);
  y.backward(Tensor::full(y.shape(), 1.f));
  auto t = lt::run_torch("x = load('x').requires_grad_()\ny = F.hardswish(x)\ny.sum().backward()\n"
                         "save('y', y); save('gx', x.grad)\n",
                         {{"x", xd}}, {"y", "gx"});
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(y.data().f32()[i], t["y"].f32()[i]) << "hardswish(" << v[i] << ")";
    EXPECT_EQ(x.grad().f32()[i], t["gx"].f32()[i]) << "hardswish'(" << v[i] << ")";
  }
}

// ---- loss -------------------------------------------------------------------------------

TEST(OpsVsTorch, CrossEntropy) {
  LB_REQUIRE_TORCH();
  Rng rng(700);
  Variable logits(lt::random_tensor({8, 10}, rng, -4.f, 4.f), true);
  const Tensor labels = labels_s32(8, 10, rng);
  Variable loss = ops::cross_entropy(logits, labels);
  ASSERT_EQ(loss.shape(), Shape({1}));
  const Tensor r = Tensor::full({1}, 0.7f);
  loss.backward(r);
  auto t = lt::run_torch(R"PY(
z = load('z').requires_grad_()
loss = F.cross_entropy(z, load('y').long())
loss.backward(load('r').reshape(()))
save('loss', loss.reshape(1)); save('gz', z.grad)
)PY",
                         {{"z", logits.data()}, {"y", labels}, {"r", r}}, {"loss", "gz"});
  EXPECT_MATCHES(loss.data(), t["loss"], "loss");
  EXPECT_MATCHES(logits.grad(), t["gz"], "logits grad");
}

TEST(OpsVsTorch, CrossEntropyLargeLogits) {
  LB_REQUIRE_TORCH();
  Rng rng(701);
  Variable logits(lt::random_tensor({16, 10}, rng, 50.f, 90.f), true);
  const Tensor labels = labels_s32(16, 10, rng);
  Variable loss = ops::cross_entropy(logits, labels);
  loss.backward();
  auto t = lt::run_torch(R"PY(
z = load('z').requires_grad_()
loss = F.cross_entropy(z, load('y').long())
loss.backward()
save('loss', loss.reshape(1)); save('gz', z.grad)
)PY",
                         {{"z", logits.data()}, {"y", labels}}, {"loss", "gz"});
  EXPECT_MATCHES(loss.data(), t["loss"], "loss");
  EXPECT_MATCHES(logits.grad(), t["gz"], "logits grad");
}

// ---- elementwise and shape --------------------------------------------------------------

TEST(OpsVsTorch, ConcatChannels) {
  LB_REQUIRE_TORCH();
  Rng rng(800);
  Variable a(lt::random_tensor({4, 8, 10, 10}, rng), true);
  Variable b(lt::random_tensor({4, 3, 10, 10}, rng), true);
  Variable c(lt::random_tensor({4, 16, 10, 10}, rng), true);
  Variable y = ops::concat_channels({a, b, c});
  const Tensor r = lt::random_tensor(y.shape(), rng);
  y.backward(r);
  auto t = lt::run_torch(R"PY(
a, b, c = (load(n).requires_grad_() for n in 'abc')
y = torch.cat([a, b, c], dim=1)
y.backward(load('r'))
save('y', y); save('ga', a.grad); save('gb', b.grad); save('gc', c.grad)
)PY",
                         {{"a", a.data()}, {"b", b.data()}, {"c", c.data()}, {"r", r}}, {"y", "ga", "gb", "gc"});
  EXPECT_MATCHES(y.data(), t["y"], "output");
  EXPECT_MATCHES(a.grad(), t["ga"], "grad a");
  EXPECT_MATCHES(b.grad(), t["gb"], "grad b");
  EXPECT_MATCHES(c.grad(), t["gc"], "grad c");
}

TEST(OpsVsTorch, Add) {
  LB_REQUIRE_TORCH();
  Rng rng(900);
  Variable a(lt::random_tensor({4, 8, 12, 12}, rng), true);
  Variable b(lt::random_tensor({4, 8, 12, 12}, rng), true);
  Variable y = ops::add(a, b);
  const Tensor r = lt::random_tensor(y.shape(), rng);
  y.backward(r);
  auto t = lt::run_torch(R"PY(
a, b = load('a').requires_grad_(), load('b').requires_grad_()
y = a + b
y.backward(load('r'))
save('y', y); save('ga', a.grad); save('gb', b.grad)
)PY",
                         {{"a", a.data()}, {"b", b.data()}, {"r", r}}, {"y", "ga", "gb"});
  EXPECT_MATCHES(y.data(), t["y"], "output");
  EXPECT_MATCHES(a.grad(), t["ga"], "grad a");
  EXPECT_MATCHES(b.grad(), t["gb"], "grad b");
}

TEST(OpsVsTorch, MulScalarSumMeanFlatten) {
  LB_REQUIRE_TORCH();
  Rng rng(901);
  Variable x(lt::random_tensor({4, 8, 10, 10}, rng), true);
  // loss = 0.3 * sum(flatten(x) * -1.5) + 2 * mean(reshape(x, (8, -1)))
  Variable s = ops::mul_scalar(ops::sum(ops::mul_scalar(ops::flatten(x), -1.5f)), 0.3f);
  Variable m = ops::mul_scalar(ops::mean(ops::reshape(x, Shape{8, -1})), 2.f);
  Variable loss = ops::add(s, m);
  loss.backward();
  auto t = lt::run_torch(R"PY(
x = load('x').requires_grad_()
loss = 0.3 * (x.flatten(1) * -1.5).sum() + 2 * x.reshape(8, -1).mean()
loss.backward()
save('loss', loss.reshape(1)); save('gx', x.grad)
)PY",
                         {{"x", x.data()}}, {"loss", "gx"});
  EXPECT_MATCHES(loss.data(), t["loss"], "loss");
  EXPECT_MATCHES(x.grad(), t["gx"], "input grad");
}

// ---- a small network, end to end -------------------------------------------------------

TEST(OpsVsTorch, SmallNetworkEndToEnd) {
  LB_REQUIRE_TORCH();
  Rng rng(1000);
  Variable x(lt::random_tensor({8, 3, 16, 16}, rng), true);
  Variable w1(lt::random_tensor({8, 3, 3, 3}, rng, -0.4f, 0.4f), true);
  Variable g1(lt::random_tensor({8}, rng, 0.5f, 1.5f), true), b1(lt::random_tensor({8}, rng), true);
  Variable wd(lt::random_tensor({8, 1, 3, 3}, rng, -0.4f, 0.4f), true);
  Variable w2(lt::random_tensor({16, 16, 1, 1}, rng, -0.4f, 0.4f), true), bb2(lt::random_tensor({16}, rng), true);
  Variable wl(lt::random_tensor({10, 16}, rng, -0.4f, 0.4f), true), bl(lt::random_tensor({10}, rng), true);
  Tensor rm = Tensor::zeros({8}), rv = Tensor::full({8}, 1.f);
  const Tensor labels = labels_s32(8, 10, rng);

  ops::Conv2dOptions c1;
  c1.stride_h = c1.stride_w = 2;
  c1.pad_same = true;
  ops::Conv2dOptions dw;
  dw.pad_h = dw.pad_w = 1;
  dw.groups = 8;
  ops::Pool2dOptions mp;
  Variable h = ops::conv2d(x, w1, Variable(), c1);                             // (8, 8, 8, 8)
  h = ops::relu6(ops::batch_norm2d(h, g1, b1, rm, rv, true, 0.1f, 1e-5f));
  Variable d = ops::leaky_relu(ops::conv2d(h, wd, Variable(), dw), 0.1f);    // depthwise
  h = ops::concat_channels({h, d});                                          // (8, 16, 8, 8)
  h = ops::add(ops::conv2d(h, w2, bb2, {}), h);                              // residual 1x1
  h = ops::max_pool2d(ops::sigmoid(h), mp);                                  // (8, 16, 4, 4)
  h = ops::flatten(ops::global_avg_pool2d(h));
  Variable loss = ops::cross_entropy(ops::linear(ops::tanh(h), wl, bl), labels);
  loss.backward();

  auto t = lt::run_torch(R"PY(
names = ['x', 'w1', 'g1', 'b1', 'wd', 'w2', 'bb2', 'wl', 'bl']
p = {n: load(n).requires_grad_() for n in names}
rm, rv = torch.zeros(8), torch.ones(8)
h = F.conv2d(F.pad(p['x'], (0, 1, 0, 1)), p['w1'], None, stride=2)
h = F.relu6(F.batch_norm(h, rm, rv, p['g1'], p['b1'], training=True, momentum=0.1, eps=1e-5))
d = F.leaky_relu(F.conv2d(h, p['wd'], None, padding=1, groups=8), 0.1)
h = torch.cat([h, d], 1)
h = F.conv2d(h, p['w2'], p['bb2']) + h
h = F.max_pool2d(torch.sigmoid(h), 2, 2)
h = F.adaptive_avg_pool2d(h, 1).flatten(1)
loss = F.cross_entropy(F.linear(torch.tanh(h), p['wl'], p['bl']), load('y').long())
loss.backward()
save('loss', loss.reshape(1)); save('rm', rm); save('rv', rv)
for n in names:
    save('g' + n, p[n].grad)
)PY",
                         {{"x", x.data()}, {"w1", w1.data()}, {"g1", g1.data()}, {"b1", b1.data()}, {"wd", wd.data()},
                          {"w2", w2.data()}, {"bb2", bb2.data()}, {"wl", wl.data()}, {"bl", bl.data()}, {"y", labels}},
                         {"loss", "rm", "rv", "gx", "gw1", "gg1", "gb1", "gwd", "gw2", "gbb2", "gwl", "gbl"});
  EXPECT_MATCHES(loss.data(), t["loss"], "loss");
  EXPECT_MATCHES(rm, t["rm"], "running_mean");
  EXPECT_MATCHES(rv, t["rv"], "running_var");
  const std::vector<std::pair<std::string, Variable*>> params = {{"x", &x},   {"w1", &w1}, {"g1", &g1},
                                                                 {"b1", &b1}, {"wd", &wd}, {"w2", &w2},
                                                                 {"bb2", &bb2}, {"wl", &wl}, {"bl", &bl}};
  for (const auto& [name, v] : params) EXPECT_MATCHES(v->grad(), t["g" + name], "grad " + name);
}

}  // namespace
