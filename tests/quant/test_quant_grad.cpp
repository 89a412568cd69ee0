// Gradients of the fake-quant op and of the binary and ternary quantizers against PyTorch
// autograd of the same formula: relative error <= 1e-6 on every element of every gradient.

// Formulas (Brevitas 0.12; the float64 reference is described in quant_grad_util.h):
//   STE integer:  y = s * clamp(round_ste(x/s)), clamp straight-through for weights, a real clamp
//                 (torch.clamp) for activations.
//   Binary:       y = s * sign_ste(clamp(x, -c, c)) (c = clip, or no clamp), sign(0) = +1.
//   Ternary:      y = s * ternary_ste(x/s), the ternary step straight-through like round.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "quant/presets.h"
#include "quant/quant_ops.h"
#include "quant/quantizer.h"
#include "quant_grad_util.h"
#include "util/torch_oracle.h"

namespace {

using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace q = lowbit::quant;
using q::grad_test::case_id;
using q::grad_test::fill_channel;
using q::grad_test::Oracle;
using q::grad_test::random_upstream;

// ---- the fake-quant op: STE round, real or straight-through clamp, scale gradient ----------

TEST(QuantGrad, FakeQuantStraightThroughAndScale) {
  LB_REQUIRE_TORCH();
  struct Case {
    int qmin, qmax;
    bool ste_clamp;
    int axis;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {
      {-128, 127, false, -1, {400}}, {-127, 127, true, -1, {400}}, {0, 255, false, -1, {400}},
      {-8, 7, true, -1, {300}},      {0, 15, false, -1, {300}},    {-128, 127, false, 0, {6, 50}},
      {-127, 127, true, 0, {6, 50}}, {0, 255, false, 1, {2, 5, 4, 4}}, {-8, 7, true, 1, {2, 5, 4, 4}},
  };
  Rng rng(21);
  Oracle o;
  std::ostringstream list;
  list << "CASES = [";
  struct Ours {
    Variable x, s;
  };
  std::vector<Ours> ours;
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case& c = cases[ci];
    const Shape shape(c.shape);
    const int64_t C = c.axis < 0 ? 1 : shape[c.axis];
    int64_t inner = 1;
    if (c.axis >= 0)
      for (size_t d = c.axis + 1; d < shape.rank(); ++d) inner *= shape[d];
    Tensor s = Tensor::empty({C});
    for (int64_t ch = 0; ch < C; ++ch) s.f32()[ch] = rng.uniform(0.01f, 0.1f);
    Tensor x = Tensor::empty(shape);
    const int64_t rows = shape.numel() / (c.axis < 0 ? shape.numel() : inner);
    const int64_t len = c.axis < 0 ? shape.numel() : inner;
    for (int64_t r = 0; r < rows; ++r) fill_channel(x.f32() + r * len, len, s.f32()[r % C], c.qmin, c.qmax, rng);
    q::FakeQuantSpec spec;
    spec.elem.qmin = static_cast<float>(c.qmin);
    spec.elem.qmax = static_cast<float>(c.qmax);
    spec.axis = c.axis;
    spec.ste_clamp = c.ste_clamp;
    Variable xv(x, true), sv(s, true);
    Variable y = q::fake_quant(xv, sv, Tensor(), spec);
    const Tensor g = random_upstream(shape, rng);
    y.backward(g);
    ours.push_back({xv, sv});
    const std::string id = case_id(ci);
    o.in[id + "_x"] = x;
    o.in[id + "_s"] = s;
    o.in[id + "_g"] = g;
    o.want(id + "_gx");
    o.want(id + "_gs");
    list << "('" << id << "', " << c.qmin << ", " << c.qmax << ", " << (c.ste_clamp ? "True" : "False") << ", "
         << c.axis << "), ";
  }
  list << "]\n";
  o.run(list.str() + R"PY(
for name, qmin, qmax, ste, axis in CASES:
    x32, s32 = load(name + '_x'), load(name + '_s')
    bshape = [1] * x32.dim()
    if axis >= 0:
        bshape[axis] = -1
    v32 = x32 / s32.reshape(bshape)
    x = x32.double().requires_grad_()
    s = s32.double().requires_grad_()
    y = fq(x, s.reshape(bshape), v32, qmin, qmax, ste)
    y.backward(g64(name + '_g'))
    save64(name + '_gx', x.grad)
    save64(name + '_gs', s.grad)
)PY");
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    std::ostringstream what;
    what << "range [" << cases[ci].qmin << ", " << cases[ci].qmax << "] ste_clamp " << cases[ci].ste_clamp << " axis "
         << cases[ci].axis;
    EXPECT_GRAD(ours[ci].x.grad(), o, case_id(ci) + "_gx", what.str() + " input");
    EXPECT_GRAD(ours[ci].s.grad(), o, case_id(ci) + "_gs", what.str() + " scale");
  }
}

// ---- binary and ternary ------------------------------------------------------------------------

TEST(QuantGrad, BinaryGradients) {
  LB_REQUIRE_TORCH();
  Rng rng(25);
  Oracle o;
  std::ostringstream list;
  list << "CASES = [";
  struct Run {
    std::string what;
    Variable x, s;  // s undefined when the scale is not a leaf here
  };
  std::vector<Run> runs;
  auto data = [&](const Shape& sh) {
    Tensor x = Tensor::empty(sh);
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = i % 23 == 0 ? 0.f : rng.uniform(-1.6f, 1.6f);
    return x;
  };
  // (a) the op with a learned per-channel scale, no clip; (b) per tensor, STE clipped at 1.
  for (float clip : {0.f, 1.f}) {
    const Shape sh = clip == 0.f ? Shape({4, 25}) : Shape({100});
    const int64_t C = clip == 0.f ? 4 : 1;
    Tensor s = Tensor::empty({C});
    for (int64_t c = 0; c < C; ++c) s.f32()[c] = rng.uniform(0.05f, 0.8f);
    Variable xv(data(sh), true), sv(s, true);
    Variable y = q::binary_quant(xv, sv, C > 1 ? 0 : -1, clip);
    const Tensor g = random_upstream(sh, rng);
    y.backward(g);
    const std::string id = case_id(runs.size());
    runs.push_back({clip == 0.f ? "binary op, per-channel scale" : "binary op, clip 1", xv, sv});
    o.in[id + "_x"] = xv.data();
    o.in[id + "_s"] = s;
    o.in[id + "_g"] = g;
    o.want(id + "_gx");
    o.want(id + "_gs");
    list << "('" << id << "', 'op', " << clip << ", " << (C > 1 ? 0 : -1) << "), ";
  }
  // (c..e) the binary presets.
  for (const char* name : {"SignedBinaryWeightPerTensorStats", "SignedBinaryWeightPerTensorConst", "SignedBinaryActPerTensorConst"}) {
    q::Quantizer quant(q::preset(name));
    const Shape sh({6, 20});
    Tensor x = data(sh);
    if (std::string(name) == "SignedBinaryWeightPerTensorStats") {  // a tie in max|W|
      x.f32()[7] = 1.75f;
      x.f32()[50] = -1.75f;
    }
    Variable xv(x, true);
    Variable y = quant.forward(xv);
    const Tensor g = random_upstream(sh, rng);
    y.backward(g);
    const std::string id = case_id(runs.size());
    runs.push_back({name, xv, Variable()});
    o.in[id + "_x"] = x;
    o.in[id + "_g"] = g;
    o.want(id + "_gx");
    const q::QuantizerConfig c = q::preset(name);
    const std::string kind = c.scale_impl == q::ScaleImpl::stats ? "stats" : "const";
    list << "('" << id << "', '" << kind << "', " << c.binary_clip << ", " << c.scale_init << "), ";
  }
  list << "]\n";
  o.run(list.str() + R"PY(
for name, kind, clip, extra in CASES:
    x = load(name + '_x').double().requires_grad_()
    if kind == 'op':
        s = load(name + '_s').double().requires_grad_()
        sb = s.reshape([-1] + [1] * (x.dim() - 1)) if extra == 0 else s
    elif kind == 'stats':
        sb = x.abs().amax()      # max|W| (T = 1), the gradient reaching the arg-max (ties share)
    else:
        sb = torch.tensor(float(np.float32(extra)), dtype=torch.float64)
    xc = x.clamp(-clip, clip) if clip > 0 else x
    y = sb * (xc + (sgn(x) - xc).detach())
    y.backward(g64(name + '_g'))
    save64(name + '_gx', x.grad)
    if kind == 'op':
        save64(name + '_gs', s.grad)
)PY");
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_GRAD(runs[i].x.grad(), o, case_id(i) + "_gx", runs[i].what + " input");
    if (runs[i].s.defined()) EXPECT_GRAD(runs[i].s.grad(), o, case_id(i) + "_gs", runs[i].what + " scale");
  }
}

TEST(QuantGrad, TernaryGradients) {
  LB_REQUIRE_TORCH();
  Rng rng(26);
  Oracle o;
  std::ostringstream list;
  list << "CASES = [";
  std::vector<std::pair<std::string, Variable>> runs;
  for (const char* name : {"SignedTernaryWeightPerTensorStats", "SignedTernaryWeightPerTensorConst"}) {
    q::QuantizerConfig c = q::preset(name);
    q::Quantizer quant(c);
    Tensor w = Tensor::empty({8, 3, 3, 3});
    for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = rng.uniform(-0.2f, 0.2f);
    if (c.scale_impl == q::ScaleImpl::stats) {  // ties in max|W|
      w.f32()[3] = 0.25f;
      w.f32()[100] = -0.25f;
      w.f32()[150] = 0.25f;
    }
    Variable wv(w, true);
    Variable y = quant.forward(wv);
    const Tensor g = random_upstream(w.shape(), rng);
    y.backward(g);
    const std::string id = case_id(runs.size());
    runs.push_back({name, wv});
    o.in[id + "_w"] = w;
    o.in[id + "_g"] = g;
    o.want(id + "_gw");
    list << "('" << id << "', " << (c.scale_impl == q::ScaleImpl::stats ? "True" : "False") << ", " << c.scale_init
         << ", " << c.ternary_threshold << "), ";
  }
  list << "]\n";
  o.run(list.str() + R"PY(
for name, stats, const, thr in CASES:
    w32 = load(name + '_w')
    w = w32.double().requires_grad_()
    if stats:
        s = w.abs().amax()                       # max|W|, T = 1 (exact in float32)
        s32 = w32.abs().amax()
    else:
        s32 = torch.tensor(np.float32(const))
        s = s32.double()
    v32 = w32 / s32
    v = quotient(w, s, v32)
    t = torch.where(v32.abs() > np.float32(thr), torch.sign(v32), torch.zeros_like(v32)).double()
    y = s * (v + (t - v).detach())               # weights: no clamp (straight through)
    y.backward(g64(name + '_g'))
    save64(name + '_gw', w.grad)
)PY");
  for (size_t i = 0; i < runs.size(); ++i) EXPECT_GRAD(runs[i].second.grad(), o, case_id(i) + "_gw", runs[i].first + " input");
}

}  // namespace
