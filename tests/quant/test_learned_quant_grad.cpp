// Gradients of learned quantizer parameters against PyTorch autograd, relative error <= 1e-6:
// LSQ step sizes (also against PyTorch's learnable fake-quant ops), PACT and PerLayerAsymPACT
// clipping bounds, and the learned activation scale |value| / T.

// Formulas (Brevitas 0.12 unless named; the float64 reference is described in quant_grad_util.h):
//   LSQ (Esser et al.): s learned directly, its gradient times g = 1/sqrt(N * qmax) (or 1); in
//                 PyTorch's form compared with torch._fake_quantize_learnable_per_tensor_affine
//                 and _per_channel_affine themselves.
//   PACT (Choi et al.; Rusci et al.'s code): y = clip(x, 0, a) straight-through, so
//                 dx = g*[0 < x < a] and da = sum(g*[x >= a]).
//   Learned activation scale: s = |value| / T, so dL/dvalue = sign(value) *
//                 (sum(G*q) - sum_unclamped(G*x/s)) / T (also checked in closed form).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "quant/presets.h"
#include "quant/quantizer.h"
#include "quant_grad_util.h"
#include "util/gradcheck.h"
#include "util/torch_oracle.h"

namespace {

using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace q = lowbit::quant;
namespace lt = lowbit::testing;
using q::grad_test::case_id;
using q::grad_test::fill_channel;
using q::grad_test::kRefPy;
using q::grad_test::kTol;
using q::grad_test::Oracle;
using q::grad_test::random_upstream;
using q::grad_test::rel_err;

// Parameter of a quantizer by name ("value").
Variable param(q::Quantizer& m, const std::string& name) {
  for (auto& [n, v] : m.named_parameters())
    if (n == name) return v;
  ADD_FAILURE() << "quantizer has no parameter " << name;
  return Variable();
}

// ---- LSQ -------------------------------------------------------------------------------------

q::QuantizerConfig lsq_config(int bits, bool is_signed, bool narrow, bool per_channel, bool grad_scale, bool reciprocal) {
  q::QuantizerConfig c;
  c.name = "lsq_test";
  c.bits = bits;
  c.is_signed = is_signed;
  c.narrow = narrow;
  c.per_channel = per_channel;
  c.channel_axis = 0;
  c.scale_impl = q::ScaleImpl::parameter;
  c.lsq = true;
  c.lsq_grad_scale = grad_scale;
  c.reciprocal = reciprocal;
  c.ste_clamp = false;
  return c;
}

struct LsqCase {
  int bits;
  bool is_signed, narrow, per_channel, grad_scale;
  std::vector<int64_t> shape;
};

const std::vector<LsqCase>& lsq_cases() {
  static const std::vector<LsqCase> c = {
      {8, true, false, false, false, {500}},     // int8 activations, grad factor 1
      {8, true, false, false, true, {500}},      // ... with LSQ's 1/sqrt(N * qmax)
      {8, false, false, false, true, {4, 100}},  // uint8
      {4, true, true, false, true, {300}},       // narrow int4 weights
      {8, true, true, true, false, {6, 60}},     // per channel, factor 1
      {4, true, false, true, true, {5, 2, 3, 3}},  // per channel conv weights, LSQ factor per channel
  };
  return c;
}

// One LSQ quantizer run: y, dx and the scale gradient, with the grad factor lowbit used.
struct LsqRun {
  Tensor x, g, scale, y, gx, gs;
  float factor = 1.f;
  int qmin = 0, qmax = 0;
  int64_t channels = 1;
};

LsqRun run_lsq(const LsqCase& c, bool reciprocal, Rng& rng) {
  q::QuantizerConfig cfg = lsq_config(c.bits, c.is_signed, c.narrow, c.per_channel, c.grad_scale, reciprocal);
  const Shape shape(c.shape);
  LsqRun r;
  r.channels = c.per_channel ? shape[0] : 1;
  r.qmin = static_cast<int>(q::quant_min(cfg));
  r.qmax = static_cast<int>(q::quant_max(cfg));
  q::Quantizer quant(cfg, r.channels);
  Variable value = param(quant, "value");
  r.scale = Tensor::empty({r.channels});
  for (int64_t ch = 0; ch < r.channels; ++ch) r.scale.f32()[ch] = rng.uniform(0.01f, 0.08f);
  std::copy(r.scale.f32(), r.scale.f32() + r.channels, value.data().f32());
  r.x = Tensor::empty(shape);
  const int64_t inner = shape.numel() / r.channels;
  for (int64_t ch = 0; ch < r.channels; ++ch)
    fill_channel(r.x.f32() + ch * inner, inner, r.scale.f32()[ch], r.qmin, r.qmax, rng);
  Variable xv(r.x, true);
  Variable y = quant.forward(xv);
  r.g = random_upstream(shape, rng);
  y.backward(r.g);
  r.y = y.data();
  r.gx = xv.grad();
  r.gs = value.grad();
  const double per = static_cast<double>(shape.numel()) / static_cast<double>(r.channels);
  r.factor = c.grad_scale ? static_cast<float>(1.0 / std::sqrt(per * r.qmax)) : 1.f;
  return r;
}

// PyTorch form against PyTorch's learnable fake-quant ops. The scale gradient is compared (a)
// with the exact (float64) sum of PyTorch's own per-element terms, taken from the per-channel
// op with one channel per element: relative error <= 1e-6; (b) with PyTorch's float32
// reduction, within its summation error: |ours - torch| <= 1e-6 * sum|terms|.
TEST(QuantGrad, LsqMatchesTorchLearnableOps) {
  LB_REQUIRE_TORCH();
  Rng rng(22);
  std::vector<LsqRun> runs;
  std::map<std::string, Tensor> in;
  std::ostringstream list;
  list.precision(17);
  list << "CASES = [";
  for (const LsqCase& c : lsq_cases()) {
    LsqRun r = run_lsq(c, /*reciprocal=*/true, rng);
    const std::string id = case_id(runs.size());
    in[id + "_x"] = r.x;
    in[id + "_g"] = r.g;
    in[id + "_s"] = r.scale;
    list << "('" << id << "', " << r.qmin << ", " << r.qmax << ", " << (c.per_channel ? "True" : "False") << ", "
         << static_cast<double>(r.factor) << "), ";
    runs.push_back(std::move(r));
  }
  list << "]\n";
  std::vector<std::string> outs;
  for (size_t i = 0; i < runs.size(); ++i)
    for (const char* o : {"_y", "_gx", "_gs_native", "_gs_exact_hi", "_gs_exact_lo", "_abs_terms"})
      outs.push_back(case_id(i) + o);
  auto t = lt::run_torch(std::string(kRefPy) + list.str() + R"PY(
torch.set_default_dtype(torch.float32)
for name, qmin, qmax, per_channel, gf in CASES:
    x = load(name + '_x').requires_grad_()
    s = load(name + '_s').requires_grad_()
    g = load(name + '_g')
    C = s.numel()
    if per_channel:
        y = torch._fake_quantize_learnable_per_channel_affine(x, s, torch.zeros(C), 0, qmin, qmax, gf)
    else:
        y = torch._fake_quantize_learnable_per_tensor_affine(x, s, torch.zeros(1), qmin, qmax, gf)
    y.backward(g)
    save(name + '_y', y)
    save(name + '_gx', x.grad)
    save(name + '_gs_native', s.grad)
    # PyTorch's per-element scale-gradient terms: one channel per element (grad factor 1; the
    # exact sum is then scaled by the factor).
    n = x.numel()
    se = s.detach().repeat_interleave(n // C).clone().requires_grad_()
    ye = torch._fake_quantize_learnable_per_channel_affine(x.detach().reshape(n, 1), se, torch.zeros(n), 0, qmin, qmax, 1.0)
    ye.backward(g.reshape(n, 1))
    terms = se.grad.double().reshape(C, n // C) * float(np.float32(gf))
    save64(name + '_gs_exact', terms.sum(1))
    save(name + '_abs_terms', terms.abs().sum(1).float())
)PY",
                          in, outs);
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string id = case_id(i);
    const LsqCase& c = lsq_cases()[i];
    std::ostringstream what;
    what << "LSQ " << c.bits << " bit " << (c.is_signed ? "signed" : "unsigned") << (c.narrow ? " narrow" : "")
         << (c.per_channel ? " per channel" : " per tensor") << " factor " << runs[i].factor;
    const Tensor& y = t[id + "_y"];
    int64_t ybad = 0, xbad = 0;
    for (int64_t k = 0; k < y.numel(); ++k) {
      ybad += runs[i].y.f32()[k] != y.f32()[k];
      xbad += runs[i].gx.f32()[k] != t[id + "_gx"].f32()[k];
    }
    EXPECT_EQ(ybad, 0) << what.str() << ": forward mismatches";
    EXPECT_EQ(xbad, 0) << what.str() << ": input gradient mismatches";
    ASSERT_TRUE(runs[i].gs.defined()) << what.str();
    std::vector<double> exact(static_cast<size_t>(runs[i].channels));
    for (int64_t ch = 0; ch < runs[i].channels; ++ch)
      exact[ch] = static_cast<double>(t[id + "_gs_exact_hi"].f32()[ch]) + static_cast<double>(t[id + "_gs_exact_lo"].f32()[ch]);
    std::string at;
    const double e = rel_err(runs[i].gs, exact, &at);
    EXPECT_LE(e, kTol) << what.str() << ": scale gradient vs the exact sum of PyTorch's terms: " << at;
    for (int64_t ch = 0; ch < runs[i].channels; ++ch) {
      const double diff = std::fabs(static_cast<double>(runs[i].gs.f32()[ch]) - t[id + "_gs_native"].f32()[ch]);
      EXPECT_LE(diff, kTol * t[id + "_abs_terms"].f32()[ch])
          << what.str() << ": scale gradient vs PyTorch's float32 reduction, channel " << ch;
    }
  }
}

// Brevitas form (division, the default) against the LSQ formula in float64:
// y = s_g * clamp(round_ste(x / s_g)) with s_g = s * g + (s - s * g).detach().
TEST(QuantGrad, LsqDivisionFormMatchesFormula) {
  LB_REQUIRE_TORCH();
  Rng rng(23);
  Oracle o;
  std::vector<LsqRun> runs;
  std::ostringstream list;
  list.precision(17);
  list << "CASES = [";
  for (const LsqCase& c : lsq_cases()) {
    LsqRun r = run_lsq(c, /*reciprocal=*/false, rng);
    const std::string id = case_id(runs.size());
    o.in[id + "_x"] = r.x;
    o.in[id + "_g"] = r.g;
    o.in[id + "_s"] = r.scale;
    o.want(id + "_gx");
    o.want(id + "_gs");
    list << "('" << id << "', " << r.qmin << ", " << r.qmax << ", " << (c.per_channel ? "True" : "False") << ", "
         << static_cast<double>(r.factor) << "), ";
    runs.push_back(std::move(r));
  }
  list << "]\n";
  o.run(list.str() + R"PY(
for name, qmin, qmax, per_channel, gf in CASES:
    x32, s32 = load(name + '_x'), load(name + '_s')
    bshape = [-1] + [1] * (x32.dim() - 1) if per_channel else [1] * x32.dim()
    v32 = x32 / s32.reshape(bshape)
    x = x32.double().requires_grad_()
    s = s32.double().requires_grad_()
    sg = pin(s * gf, s32)          # value s, gradient gf (LSQ's gradient scale)
    y = fq(x, sg.reshape(bshape), v32, qmin, qmax, False)
    y.backward(g64(name + '_g'))
    save64(name + '_gx', x.grad)
    save64(name + '_gs', s.grad)
)PY");
  for (size_t i = 0; i < runs.size(); ++i) {
    std::ostringstream what;
    what << "LSQ division form case " << i << " factor " << runs[i].factor;
    EXPECT_GRAD(runs[i].gx, o, case_id(i) + "_gx", what.str() + " input");
    EXPECT_GRAD(runs[i].gs, o, case_id(i) + "_gs", what.str() + " scale");
  }
}

// ---- PACT ------------------------------------------------------------------------------------

TEST(QuantGrad, PactClipGradients) {
  LB_REQUIRE_TORCH();
  Rng rng(24);
  Oracle o;
  struct Run {
    Variable x, value;
    Tensor y, scale;
    int bits;
  };
  std::vector<Run> runs;
  std::ostringstream list;
  list << "CASES = [";
  const std::vector<std::pair<float, int>> cases = {{6.f, 8}, {2.5f, 4}, {1.7f, 2}};
  for (const auto& [alpha, bits] : cases) {
    q::QuantizerConfig cfg = q::preset("Uint8ActPACT");
    cfg.bits = bits;
    q::Quantizer quant(cfg);
    Variable value = param(quant, "value");
    EXPECT_EQ(value.data().f32()[0], 6.f) << "PACT's alpha starts at 6 (ReLU6)";
    value.data().f32()[0] = alpha;
    Tensor x = Tensor::empty({20, 30});
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = i % 37 == 0 ? 0.f : rng.uniform(-0.5f * alpha, 1.5f * alpha);
    Variable xv(x, true);
    Variable y = quant.forward(xv);
    const Tensor g = random_upstream(x.shape(), rng);
    y.backward(g);
    const std::string id = case_id(runs.size());
    runs.push_back({xv, value, y.data(), quant.meta().scale, bits});
    o.in[id + "_x"] = x;
    o.in[id + "_g"] = g;
    o.in[id + "_a"] = Tensor::full({1}, alpha);
    o.want(id + "_gx");
    o.want(id + "_ga");
    o.want(id + "_q");
    list << "('" << id << "', " << ((1 << bits) - 1) << "), ";
  }
  list << "]\n";
  o.run(list.str() + R"PY(
for name, T in CASES:
    x32 = load(name + '_x')
    x = x32.double().requires_grad_()
    value = load(name + '_a').double().requires_grad_()
    a = value.abs()
    y = torch.where(x >= a, a.expand_as(x), torch.where(x > 0, x, torch.zeros_like(x)))
    y.backward(g64(name + '_g'))
    save64(name + '_gx', x.grad)
    save64(name + '_ga', value.grad)
    # Rusci et al.: floor(clamp(x, 0, a) * (2^Q - 1) / a), the integer the forward must give
    save64(name + '_q', torch.floor(x.detach().clamp(0, None).minimum(a.detach()) * T / a.detach()))
)PY");
  for (size_t i = 0; i < runs.size(); ++i) {
    std::ostringstream what;
    what << "PACT alpha " << cases[i].first << " bits " << cases[i].second;
    EXPECT_GRAD(runs[i].x.grad(), o, case_id(i) + "_gx", what.str() + " input");
    EXPECT_GRAD(runs[i].value.grad(), o, case_id(i) + "_ga", what.str() + " alpha");
    const std::vector<double> qref = o.get(case_id(i) + "_q");
    const float s = runs[i].scale.f32()[0];
    int64_t bad = 0;
    for (int64_t k = 0; k < runs[i].y.numel(); ++k) bad += std::nearbyint(runs[i].y.f32()[k] / s) != qref[k];
    EXPECT_EQ(bad, 0) << what.str() << ": integers differ from floor(clamp(x, 0, a) * (2^Q - 1) / a)";
  }
}

// ---- learned activation scale |value| / T (Brevitas) -------------------------------------------

TEST(QuantGrad, LearnedActivationScale) {
  LB_REQUIRE_TORCH();
  Rng rng(27);
  Oracle o;
  std::ostringstream list;
  list << "CASES = [";
  struct Run {
    std::string what;
    Variable x, value;
  };
  std::vector<Run> runs;
  struct Case {
    const char* preset;
    float value;  // learned value (negative: the scale is |value|)
    int collect;  // training forwards before the learned phase (parameter_from_stats)
  };
  const std::vector<Case> cases = {
      {"Int8ActPerTensorFloat", 2.0f, 2},  {"Int8ActPerTensorFloat", -1.5f, 0},
      {"Uint8ActPerTensorFloat", 3.1f, 0}, {"Uint8ActPerTensorFloat", 0.9f, 3},
      {"Int8ActPerTensorFloatMinMaxInit", 1.0f, 0},
  };
  for (const Case& c : cases) {
    q::QuantizerConfig cfg = q::preset(c.preset);
    if (c.collect > 0) cfg.collect_steps = c.collect;
    else cfg.scale_impl = q::ScaleImpl::parameter;
    q::Quantizer quant(cfg);
    quant.train();
    // Collection, then the hand-over call (collect_steps + 1): the parameter is set from the statistics.
    for (int k = 0; k < (c.collect > 0 ? c.collect + 1 : 0); ++k) {
      Tensor xs = Tensor::empty({64});
      for (int64_t i = 0; i < xs.numel(); ++i) xs.f32()[i] = rng.normal();
      quant.forward(Variable(xs));
    }
    Variable value = param(quant, "value");
    value.data().f32()[0] = c.value;
    value.clear_grad();
    const float T = static_cast<float>(q::quant_threshold(cfg));
    const float s = std::fabs(c.value) / T;
    Tensor x = Tensor::empty({8, 50});
    fill_channel(x.f32(), x.numel(), s, static_cast<int>(q::quant_min(cfg)), static_cast<int>(q::quant_max(cfg)), rng);
    Variable xv(x, true);
    Variable y = quant.forward(xv);
    EXPECT_EQ(quant.meta().scale.f32()[0], s) << c.preset << ": learned phase scale |value|/T";
    const Tensor g = random_upstream(x.shape(), rng);
    y.backward(g);
    std::ostringstream what;
    what << c.preset << " value " << c.value << " (after " << c.collect << " collection steps)";
    const std::string id = case_id(runs.size());
    runs.push_back({what.str(), xv, value});
    o.in[id + "_x"] = x;
    o.in[id + "_g"] = g;
    o.in[id + "_v"] = Tensor::full({1}, c.value);
    o.want(id + "_gx");
    o.want(id + "_gv");
    o.want(id + "_gv_closed");
    list << "('" << id << "', " << q::quant_min(cfg) << ", " << q::quant_max(cfg) << ", " << T << "), ";
  }
  list << "]\n";
  o.run(list.str() + R"PY(
for name, qmin, qmax, T in CASES:
    x32, v32val = load(name + '_x'), load(name + '_v')
    s32 = v32val.abs() / np.float32(T)           # float32, as lowbit and Brevitas compute it
    q32 = x32 / s32
    x = x32.double().requires_grad_()
    value = v32val.double().requires_grad_()
    s = pin(value.abs() / T, s32)
    y = fq(x, s, q32, qmin, qmax, False)
    G = g64(name + '_g')
    y.backward(G)
    save64(name + '_gx', x.grad)
    save64(name + '_gv', value.grad)
    # Brevitas' closed form: sign(value) * (sum(G*q) - sum_unclamped(G * x/s)) / T
    r = torch.round(q32.double())
    inside = (r >= qmin) & (r <= qmax)
    qq = r.clamp(qmin, qmax)
    closed = torch.sign(value.detach()) * ((G * qq).sum() - (G * q32.double())[inside].sum()) / T
    save64(name + '_gv_closed', closed)
)PY");
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_GRAD(runs[i].x.grad(), o, case_id(i) + "_gx", runs[i].what + " input");
    EXPECT_GRAD(runs[i].value.grad(), o, case_id(i) + "_gv", runs[i].what + " value");
    EXPECT_GRAD(runs[i].value.grad(), o, case_id(i) + "_gv_closed", runs[i].what + " value (closed form)");
  }
}

// ---- PerLayerAsymPACT: learned asymmetric clipping bounds ------------------------------------

// Rusci et al.'s formula: xc = clamp(x, lo, hi) with torch.clamp's gradients (x: inside,
// lo: below, hi: above); s = (hi - lo) / (2^b - 1) and zp = round(-lo / s) as values;
// y = (clamp(round(xc / s + zp), 0, 2^b - 1) - zp) * s, round straight-through.
TEST(QuantGrad, AsymClipGradients) {
  LB_REQUIRE_TORCH();
  Rng rng(31);
  Oracle o;
  std::ostringstream list;
  list << "CASES = [";
  struct Run {
    std::string what;
    Variable x, lo, hi;
    Tensor y;
  };
  std::vector<Run> runs;
  struct Case {
    int bits;
    bool per_channel;
    std::vector<float> lo, hi;
  };
  const std::vector<Case> cases = {{4, false, {-0.2f}, {0.25f}},
                                   {2, false, {-0.3f}, {0.1f}},
                                   {8, false, {0.05f}, {0.35f}},  // lo above 0: a negative zero point
                                   {3, true, {-0.2f, -0.35f, -0.1f, -0.25f}, {0.3f, 0.15f, 0.2f, 0.4f}}};
  for (const Case& c : cases) {
    q::QuantizerConfig cfg = q::preset("PerLayerAsymPACT");
    cfg.bits = c.bits;
    cfg.per_channel = c.per_channel;
    const Shape sh({4, 25});
    q::Quantizer quant(cfg, 4);
    Tensor x = lt::random_tensor(sh, rng, -0.45f, 0.45f);
    quant.forward(Variable(x));  // sets the bounds from x; then ours:
    Variable lo = param(quant, "clip_lo"), hi = param(quant, "clip_hi");
    for (size_t i = 0; i < c.lo.size(); ++i) {
      lo.data().f32()[i] = c.lo[i];
      hi.data().f32()[i] = c.hi[i];
    }
    lo.clear_grad();
    hi.clear_grad();
    Variable xv(x, true);
    Variable y = quant.forward(xv);
    const Tensor g = random_upstream(sh, rng);
    y.backward(g);
    std::ostringstream what;
    what << "PerLayerAsymPACT " << c.bits << " bit" << (c.per_channel ? " per channel" : "");
    const std::string id = case_id(runs.size());
    runs.push_back({what.str(), xv, lo, hi, y.data().clone()});
    o.in[id + "_x"] = x;
    o.in[id + "_g"] = g;
    o.in[id + "_lo"] = lo.data().clone();
    o.in[id + "_hi"] = hi.data().clone();
    o.want(id + "_y");
    o.want(id + "_gx");
    o.want(id + "_glo");
    o.want(id + "_ghi");
    list << "('" << id << "', " << ((1 << c.bits) - 1) << ", " << (c.per_channel ? "True" : "False") << "), ";
  }
  list << "]\n";
  o.run(list.str() + R"PY(
for name, qmax, per_channel in CASES:
    x32, lo32, hi32 = load(name + '_x'), load(name + '_lo'), load(name + '_hi')
    shape = [-1, 1] if per_channel else [1, 1]
    x = x32.double().requires_grad_()
    lo = lo32.double().requires_grad_()
    hi = hi32.double().requires_grad_()
    l, h = lo.reshape(shape), hi.reshape(shape)
    below, above = x < l, x > h
    xc = torch.where(below, l.expand_as(x), torch.where(above, h.expand_as(x), x))
    # values in float32, as lowbit computes them
    s32 = ((hi32 - lo32) / np.float32(qmax)).reshape(shape)
    zp = torch.round(-lo32.reshape(shape) / s32)
    xc32 = torch.where(x32 < lo32.reshape(shape), lo32.reshape(shape).expand_as(x32),
                       torch.where(x32 > hi32.reshape(shape), hi32.reshape(shape).expand_as(x32), x32))
    q = torch.clamp(torch.round(xc32 / s32 + zp), 0, qmax)
    y32 = (q - zp) * s32
    y = xc + (y32.double() - xc).detach()
    y.backward(g64(name + '_g'))
    save64(name + '_y', y32)
    save64(name + '_gx', x.grad)
    save64(name + '_glo', lo.grad)
    save64(name + '_ghi', hi.grad)
)PY");
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_GRAD(runs[i].y, o, case_id(i) + "_y", runs[i].what + " output");
    EXPECT_GRAD(runs[i].x.grad(), o, case_id(i) + "_gx", runs[i].what + " input");
    EXPECT_GRAD(runs[i].lo.grad(), o, case_id(i) + "_glo", runs[i].what + " lower bound");
    EXPECT_GRAD(runs[i].hi.grad(), o, case_id(i) + "_ghi", runs[i].what + " upper bound");
  }
}

}  // namespace
