// Quantizer gradients against PyTorch autograd of the same formula, relative error <= 1e-6 on
// every element of every gradient (input, scale or learned parameter).
//
// The reference. PyTorch's float32 autograd of y = s * round_ste(x / s) is itself only good to
// ~1e-5 on the scale gradient (it computes g*q - (g*s)*(x/s)/s, which cancels), so the
// reference runs the formula in float64, on the float32 values lowbit and Brevitas compute:
//   - the quotient x / s enters as its float32 value v32 (x is replaced, in value only, by
//     v32 * s, exact in float64, so that d(x/s)/ds = -v32/s); round, clamp and the ternary and
//     binary decisions therefore see exactly the values lowbit sees;
//   - a scale computed from other values (|value| / T, max|W| / T, 2^ceil(log2 m) / T) enters as
//     its float32 value with the gradient of the float64 formula.
// Everything else (straight-through estimators, clamps, abs, amax with ties sharing the
// gradient, torch.where) is PyTorch's autograd. Results come back as float64 (hi + lo floats).
//
// Formulas (Brevitas 0.12 unless named):
//   STE integer:  y = s * clamp(round_ste(x/s)), clamp straight-through for weights, a real clamp
//                 (torch.clamp) for activations.
//   LSQ (Esser et al.): s learned directly, its gradient times g = 1/sqrt(N * qmax) (or 1); in
//                 PyTorch's form compared with torch._fake_quantize_learnable_per_tensor_affine
//                 and _per_channel_affine themselves.
//   PACT (Choi et al.; Rusci et al.'s code): y = clip(x, 0, a) straight-through, so
//                 dx = g*[0 < x < a] and da = sum(g*[x >= a]).
//   Binary:       y = s * sign_ste(clamp(x, -c, c)) (c = clip, or no clamp), sign(0) = +1.
//   Ternary:      y = s * ternary_ste(x/s), the ternary step straight-through like round.
//   Learned activation scale: s = |value| / T, so dL/dvalue = sign(value) *
//                 (sum(G*q) - sum_unclamped(G*x/s)) / T (also checked in closed form).
//   Max-abs weight scale: s = max|W| / T (or 2^ceil(log2 max|W|) / T, ceil straight-through);
//                 the scale gradient reaches the arg-max element(s), ties share it evenly.
//   Statistic scales (collection phase of parameter-from-stats, running statistics in
//                 training, weight statistics): s = stat(x) / T with the statistic's own
//                 gradient, as in Brevitas: the percentile through torch.kthvalue of |x|,
//                 mean(|x|) + k * std(|x|) (unbiased) through torch.mean / torch.std.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "quant/presets.h"
#include "quant/quant_ops.h"
#include "quant/quantizer.h"
#include "util/gradcheck.h"
#include "util/torch_oracle.h"

namespace {

using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace q = lowbit::quant;
namespace lt = lowbit::testing;

constexpr double kTol = 1e-6;

// Helpers every reference script uses.
const char* kRefPy = R"PY(
torch.set_default_dtype(torch.float64)
def save64(name, t):
    t = t.detach().double().reshape(-1)
    hi = t.float()
    save(name + '_hi', hi)
    save(name + '_lo', (t - hi.double()).float())
def pin(v, value):
    # the value of `value` (a float32 computation, exact in float64), the gradient of v
    return v + (value.double() - v).detach()
def quotient(x, s, v32):
    # x / s with the value v32 (the float32 quotient) and the gradient -v32/s w.r.t. s
    return pin(x, v32.double() * s.detach()) / s
def fq(x, s, v32, qmin, qmax, ste_clamp):
    v = quotient(x, s, v32)
    r = torch.round(v32.double())
    if ste_clamp:
        qv = v + (r.clamp(qmin, qmax) - v).detach()
    else:
        qv = (v + (r - v).detach()).clamp(qmin, qmax)
    return qv * s
def sgn(x):
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
def g64(name):
    return load(name).double()
)PY";

std::string case_id(size_t i) {
  std::ostringstream os;
  os << 'c' << i;
  return os.str();
}

// Collects named float64 results of one PyTorch run.
struct Oracle {
  std::map<std::string, Tensor> in;
  std::vector<std::string> outs;
  std::map<std::string, Tensor> res;
  void want(const std::string& name) {
    outs.push_back(name + "_hi");
    outs.push_back(name + "_lo");
  }
  void run(const std::string& script) { res = lt::run_torch(std::string(kRefPy) + script, in, outs); }
  std::vector<double> get(const std::string& name) {
    const Tensor& hi = res.at(name + "_hi");
    const Tensor& lo = res.at(name + "_lo");
    std::vector<double> v(static_cast<size_t>(hi.numel()));
    for (int64_t i = 0; i < hi.numel(); ++i) v[i] = static_cast<double>(hi.f32()[i]) + static_cast<double>(lo.f32()[i]);
    return v;
  }
};

// max_i |a_i - b_i| / |b_i| (0 where they are equal; infinite where b_i = 0 != a_i).
double rel_err(const Tensor& ours, const std::vector<double>& ref, std::string* where = nullptr) {
  EXPECT_EQ(ours.numel(), static_cast<int64_t>(ref.size()));
  const Tensor c = ours.contiguous();
  double m = 0;
  for (int64_t i = 0; i < c.numel() && i < static_cast<int64_t>(ref.size()); ++i) {
    const double a = c.f32()[i], b = ref[i];
    if (a == b) continue;
    const double e = b == 0 ? INFINITY : std::fabs(a - b) / std::fabs(b);
    if (std::isnan(e) || e > m) {
      m = std::isnan(e) ? INFINITY : e;
      if (where) {
        std::ostringstream os;
        os.precision(12);
        os << "element " << i << ": lowbit " << a << " vs " << b;
        *where = os.str();
      }
    }
  }
  return m;
}

#define EXPECT_GRAD(ours, oracle, name, what)                                            \
  do {                                                                                   \
    ASSERT_TRUE((ours).defined()) << what << ": no gradient";                            \
    std::string at_;                                                                     \
    const double e_ = rel_err((ours), (oracle).get(name), &at_);                         \
    EXPECT_LE(e_, kTol) << what << " (" << name << "): relative error " << e_ << ", " << at_; \
  } while (0)

Tensor random_upstream(const Shape& s, Rng& rng) {
  Tensor g = Tensor::empty(s);
  for (int64_t i = 0; i < g.numel(); ++i) g.f32()[i] = rng.uniform(-1.f, 1.f);
  return g;
}

// Values around the grid of scale s: ties, levels beyond both ends of [qmin, qmax], random.
void fill_channel(float* out, int64_t n, float s, int qmin, int qmax, Rng& rng) {
  for (int64_t i = 0; i < n; ++i) {
    const int kind = static_cast<int>(i % 4);
    const float level = static_cast<float>(qmin - 10) + rng.uniform(0.f, static_cast<float>(qmax - qmin + 20));
    if (kind == 0) out[i] = (std::floor(level) + 0.5f) * s;                                   // a tie
    else if (kind == 1) out[i] = rng.normal() * 0.35f * static_cast<float>(qmax - qmin) * s;  // mostly inside
    else out[i] = level * s;                                                                  // uniform, some beyond
  }
}

// Parameter of a quantizer by name ("value").
Variable param(q::Quantizer& m, const std::string& name) {
  for (auto& [n, v] : m.named_parameters())
    if (n == name) return v;
  ADD_FAILURE() << "quantizer has no parameter " << name;
  return Variable();
}

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
    for (int k = 0; k < c.collect; ++k) {  // collection: the parameter is set from the statistics
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

// ---- max-abs weight scale: the gradient reaches the arg-max, ties share ----------------------

TEST(QuantGrad, MaxAbsWeightScale) {
  LB_REQUIRE_TORCH();
  Rng rng(28);
  Oracle o;
  std::ostringstream list;
  list << "CASES = [";
  struct Run {
    std::string what;
    Variable w;
    Tensor scale;
  };
  std::vector<Run> runs;
  struct Case {
    const char* preset;
    std::vector<int64_t> shape;
    int bits;
  };
  const std::vector<Case> cases = {
      {"Int8WeightPerTensorFloat", {10, 12}, 8},       {"Int8WeightPerTensorFloat", {6, 3, 3, 3}, 4},
      {"Int8WeightPerChannelFloat", {6, 3, 3, 3}, 8},  {"Int8WeightPerChannelFloat", {5, 16}, 3},
      {"Int8WeightPerTensorFixedPoint", {8, 20}, 8},   {"Int8WeightPerTensorFixedPoint", {4, 2, 3, 3}, 4},
  };
  for (const Case& c : cases) {
    q::QuantizerConfig cfg = q::preset(c.preset);
    cfg.bits = c.bits;
    const Shape sh(c.shape);
    q::Quantizer quant(cfg, sh[0]);
    Tensor w = Tensor::empty(sh);
    for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = rng.uniform(-0.3f, 0.3f);
    const int64_t inner = sh.numel() / sh[0];
    // Ties in the max: channel 0 has +m and -m; channel 2 three equal maxima. Fixed point: the
    // max a power of two (it rounds to 2^(b-1) and is clamped, straight through).
    const float m = cfg.restrict_to == q::ScaleRestrict::pow2 ? 0.5f : 0.41f;
    w.f32()[1] = m;
    w.f32()[inner - 1] = -m;
    if (cfg.per_channel) {
      w.f32()[2 * inner] = 0.37f;
      w.f32()[2 * inner + 3] = -0.37f;
      w.f32()[3 * inner - 1] = 0.37f;
    }
    Variable wv(w, true);
    Variable y = quant.forward(wv);
    const Tensor g = random_upstream(sh, rng);
    y.backward(g);
    std::ostringstream what;
    what << c.preset << " " << c.bits << " bit " << sh.str();
    const std::string id = case_id(runs.size());
    runs.push_back({what.str(), wv, quant.meta().scale.clone()});
    o.in[id + "_w"] = w;
    o.in[id + "_g"] = g;
    o.want(id + "_gw");
    o.want(id + "_s32");
    list << "('" << id << "', " << (cfg.per_channel ? "True" : "False") << ", "
         << (cfg.restrict_to == q::ScaleRestrict::pow2 ? "True" : "False") << ", " << q::quant_threshold(cfg) << ", "
         << q::quant_min(cfg) << ", " << q::quant_max(cfg) << "), ";
  }
  list << "]\n";
  o.run(list.str() + R"PY(
for name, per_channel, pow2, T, qmin, qmax in CASES:
    w32 = load(name + '_w')
    w = w32.double().requires_grad_()
    dims = tuple(range(1, w.dim())) if per_channel else tuple(range(w.dim()))
    bshape = [-1] + [1] * (w.dim() - 1) if per_channel else [1] * w.dim()
    m32 = w32.abs().amax(dim=dims)
    m = w.abs().amax(dim=dims)                  # ties share the gradient evenly
    if pow2:
        p32 = torch.exp2(torch.ceil(torch.log2(m32)))
        m = pin(m, p32)                          # 2^ceil(log2 m), ceil straight through
        m32 = p32
    s32 = m32 / np.float32(T)
    s = pin(m / T, s32).reshape(bshape)
    y = fq(w, s, w32 / s32.reshape(bshape), qmin, qmax, True)
    y.backward(g64(name + '_g'))
    save64(name + '_gw', w.grad)
    save64(name + '_s32', s32)
)PY");
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_GRAD(runs[i].scale, o, case_id(i) + "_s32", runs[i].what + " scale value");
    EXPECT_GRAD(runs[i].w.grad(), o, case_id(i) + "_gw", runs[i].what + " weight");
  }
}

// ---- statistic scales carry the statistic's gradient (Brevitas) ----------------------------

TEST(QuantGrad, StatisticScaleGradients) {
  LB_REQUIRE_TORCH();
  Rng rng(29);
  Oracle o;
  std::ostringstream list;
  list << "CASES = [";
  struct Run {
    std::string what;
    Variable x;
    Tensor scale;
  };
  std::vector<Run> runs;
  struct Case {
    const char* what;
    q::QuantizerConfig cfg;
    std::vector<int64_t> shape;
    bool relu;  // non-negative input with exact zeros (a ReLU output)
  };
  auto with = [](const char* preset, int bits, auto edit) {
    q::QuantizerConfig c = q::preset(preset);
    c.bits = bits;
    edit(c);
    return c;
  };
  const std::vector<Case> cases = {
      {"2-bit unsigned activation, collection phase (percentile 99.999)",
       with("Uint8ActPerTensorFloat", 2, [](q::QuantizerConfig& c) { c.collect_steps = 5; }), {8, 60}, true},
      {"8-bit signed activation, collection phase (percentile 99)",
       with("Int8ActPerTensorFloat", 8, [](q::QuantizerConfig& c) { c.percentile = 99.0; }), {4, 3, 7, 5}, false},
      {"4-bit running statistics in training (percentile 95)",
       with("Uint8ActPerTensorFloat", 4,
            [](q::QuantizerConfig& c) {
              c.scale_impl = q::ScaleImpl::running_stats;
              c.percentile = 95.0;
            }),
       {6, 50}, true},
      {"4-bit per-channel weights, mean + 3 std statistic",
       with("Int8WeightPerChannelFloat", 4, [](q::QuantizerConfig& c) { c.stat = q::ScaleStat::mean_std; }),
       {5, 3, 3, 3}, false},
      {"3-bit per-tensor weights, mean + 2 std statistic",
       with("Int8WeightPerTensorFloat", 3,
            [](q::QuantizerConfig& c) {
              c.stat = q::ScaleStat::mean_std;
              c.std_k = 2.0;
            }),
       {7, 11}, false},
  };
  for (const Case& c : cases) {
    const Shape sh(c.shape);
    q::Quantizer quant(c.cfg, c.cfg.per_channel ? sh[c.cfg.channel_axis] : 1);
    quant.train();
    Tensor x = Tensor::empty(sh);
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float v = rng.normal() * 1.5f;
      x.f32()[i] = c.relu ? std::max(v, 0.f) : v;
    }
    Variable xv(x, true);
    Variable y = quant.forward(xv);
    const Tensor g = random_upstream(sh, rng);
    y.backward(g);
    const std::string id = case_id(runs.size());
    runs.push_back({c.what, xv, quant.meta().scale.clone()});
    o.in[id + "_x"] = x;
    o.in[id + "_g"] = g;
    o.want(id + "_gx");
    o.want(id + "_s32");
    const bool pct = c.cfg.stat == q::ScaleStat::percentile;
    list << "('" << id << "', " << (pct ? "'pct'" : "'mean_std'") << ", " << (pct ? c.cfg.percentile : c.cfg.std_k)
         << ", " << (c.cfg.per_channel ? "True" : "False") << ", " << q::quant_threshold(c.cfg) << ", "
         << q::quant_min(c.cfg) << ", " << q::quant_max(c.cfg) << ", " << (c.cfg.ste_clamp ? "True" : "False")
         << "), ";
  }
  list << "]\n";
  o.run(list.str() + R"PY(
import math
for name, stat, arg, per_channel, T, qmin, qmax, ste in CASES:
    x32 = load(name + '_x')
    x = x32.double().requires_grad_()
    if stat == 'pct':
        k = int(math.floor(0.01 * arg * x.numel() + 0.5))
        st = x.abs().reshape(-1).kthvalue(k).values.reshape(1)
        st32 = x32.abs().reshape(-1).kthvalue(k).values.reshape(1)
        bshape = [1] * x.dim()
    else:
        dims = tuple(range(1, x.dim())) if per_channel else tuple(range(x.dim()))
        a = x.abs()
        st = a.mean(dim=dims) + arg * a.std(dim=dims, unbiased=True)
        st32 = st.detach().float()               # lowbit sums in float64 and rounds once
        bshape = [-1] + [1] * (x.dim() - 1) if per_channel else [1] * x.dim()
        st = st.reshape(-1)
        st32 = st32.reshape(-1)
    s32 = st32 / np.float32(T)
    s = pin(st / T, s32).reshape(bshape)
    y = fq(x, s, x32 / s32.reshape(bshape), qmin, qmax, ste)
    y.backward(g64(name + '_g'))
    save64(name + '_gx', x.grad)
    save64(name + '_s32', s32)
)PY");
  for (size_t i = 0; i < runs.size(); ++i) {
    EXPECT_GRAD(runs[i].scale, o, case_id(i) + "_s32", runs[i].what + " scale value");
    EXPECT_GRAD(runs[i].x.grad(), o, case_id(i) + "_gx", runs[i].what + " input");
  }
}

// Central differences on the statistics themselves (no PyTorch needed). Values are spaced far
// wider than the step so that the order (and so the k-th element) does not change.
TEST(QuantGrad, StatisticsGradcheck) {
  Rng rng(30);
  Tensor x = Tensor::empty({6, 20});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = (static_cast<float>((i * 37) % 120) + 1.f) * (i % 2 ? -0.05f : 0.05f);
  for (double pct : {99.999, 90.0, 50.0, 1.0}) {
    const std::string err = lt::gradcheck(
        [pct](const std::vector<Variable>& in) { return q::abs_percentile(in[0], pct); }, {Variable(x.clone(), true)});
    EXPECT_EQ(err, "") << "abs_percentile " << pct;
  }
  for (int axis : {-1, 0, 1}) {
    const std::string err = lt::gradcheck(
        [axis](const std::vector<Variable>& in) { return q::abs_mean_k_std(in[0], axis, 3.0); },
        {Variable(lt::random_tensor({6, 20}, rng, -2.f, 2.f), true)});
    EXPECT_EQ(err, "") << "abs_mean_k_std axis " << axis;
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
