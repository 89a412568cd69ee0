// Fake-quant forward against PyTorch, bit for bit (0 mismatches, compared as bit patterns, so
// even the sign of zero counts).
//
// Inputs mix random values with exact .5 ties (x = (k + 0.5) * s and x = (k + 0.5) / (1/s) for
// every integer level k of the range and a few beyond), values far outside the clamp range,
// +0 and -0. Ranges: signed wide/narrow, unsigned, 4 and 8 bit; zero points odd and even.
//
//   - PyTorch form (FakeQuantElem.reciprocal = true / QuantizerConfig.reciprocal = true):
//     q = clamp(round(x * (1/s)) + zp) equals torch.fake_quantize_per_tensor_affine and
//     torch.fake_quantize_per_channel_affine (axis 0 of (C, K) and axis 1 of (N, C, H, W)),
//     and the input gradient equals PyTorch's (the STE mask of the cached-mask kernels).
//   - Brevitas form (reciprocal = false, the default): q = clamp(round(x / s + zp)) equals the
//     same formula in numpy float32 (true division), and differs from PyTorch at some ties: the
//     option is not cosmetic.
//   - A Quantizer with min/max statistics and a zero point (PyTorch form) takes the scale and
//     zero point PyTorch's MinMaxObserver / PerChannelMinMaxObserver compute, and the same output.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "quant/quant_ops.h"
#include "quant/quantizer.h"
#include "util/torch_oracle.h"

namespace {

using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace q = lowbit::quant;
namespace k = lowbit::kernels;
namespace lt = lowbit::testing;

// "c0", "c1", ...: names of the cases in one PyTorch run.
std::string case_id(size_t i) {
  std::ostringstream os;
  os << 'c' << i;
  return os.str();
}

// Number of elements whose float32 bit patterns differ.
int64_t bit_mismatches(const Tensor& a, const Tensor& b, std::string* first = nullptr) {
  EXPECT_EQ(a.numel(), b.numel());
  Tensor ca = a.contiguous(), cb = b.contiguous();
  int64_t n = 0;
  for (int64_t i = 0; i < ca.numel(); ++i) {
    uint32_t ua, ub;
    std::memcpy(&ua, ca.f32() + i, 4);
    std::memcpy(&ub, cb.f32() + i, 4);
    if (ua != ub) {
      if (n == 0 && first) {
        std::ostringstream os;
        os.precision(9);
        os << "element " << i << ": lowbit " << ca.f32()[i] << " vs " << cb.f32()[i];
        *first = os.str();
      }
      ++n;
    }
  }
  return n;
}

// Number of elements that differ as values (+0 == -0: PyTorch's masked gradients are
// dy * 0, which keeps the sign of dy; the sign of a zero gradient means nothing).
int64_t value_mismatches(const Tensor& a, const Tensor& b, std::string* first = nullptr) {
  EXPECT_EQ(a.numel(), b.numel());
  Tensor ca = a.contiguous(), cb = b.contiguous();
  int64_t n = 0;
  for (int64_t i = 0; i < ca.numel(); ++i)
    if (!(ca.f32()[i] == cb.f32()[i])) {
      if (n == 0 && first) {
        std::ostringstream os;
        os.precision(9);
        os << "element " << i << ": lowbit " << ca.f32()[i] << " vs " << cb.f32()[i];
        *first = os.str();
      }
      ++n;
    }
  return n;
}

// Values for one channel with scale s and integer range [qmin, qmax]: ties in both forms at
// every level (and 6 beyond each end), far-out values, signed zeros and random values.
std::vector<float> channel_values(float s, int qmin, int qmax, Rng& rng, int n_random) {
  std::vector<float> v;
  const float inv = 1.0f / s;
  for (int kk = qmin - 6; kk <= qmax + 6; ++kk) {
    v.push_back((static_cast<float>(kk) + 0.5f) * s);
    v.push_back((static_cast<float>(kk) + 0.5f) / inv);
  }
  for (float m : {1e3f, 40.f, 3.f}) {
    v.push_back(m * static_cast<float>(qmax + 1) * s);
    v.push_back(-m * static_cast<float>(qmax - qmin + 1) * s);
  }
  v.push_back(0.f);
  v.push_back(-0.f);
  v.push_back(-0.25f * s);  // rounds to -0 before the zero point
  const float spread = 0.4f * static_cast<float>(qmax - qmin) * s;
  for (int i = 0; i < n_random; ++i) v.push_back(rng.normal() * spread);
  return v;
}

// Ties in each form: x * (1/s) (PyTorch) or x / s (Brevitas) lands exactly on k + 0.5.
void count_ties(const std::vector<float>& v, float s, int64_t& torch_ties, int64_t& div_ties) {
  const float inv = 1.0f / s;
  for (float x : v) {
    const float a = x * inv, b = x / s;
    torch_ties += a - std::floor(a) == 0.5f;
    div_ties += b - std::floor(b) == 0.5f;
  }
}

struct RangeCase {
  int qmin, qmax;
  std::vector<int> zps;
};

const std::vector<RangeCase>& range_cases() {
  static const std::vector<RangeCase> c = {
      {-128, 127, {0, 1, -3, 10}},  // signed wide (int8 activations)
      {-127, 127, {0}},             // signed narrow (int8 weights)
      {0, 255, {0, 3, 128, 77}},    // unsigned (uint8)
      {-8, 7, {0, -1, 3}},          // int4
      {0, 15, {0, 5, 8}},           // uint4
  };
  return c;
}

q::FakeQuantSpec spec_for(int qmin, int qmax, bool reciprocal, int axis) {
  q::FakeQuantSpec s;
  s.elem.qmin = static_cast<float>(qmin);
  s.elem.qmax = static_cast<float>(qmax);
  s.elem.reciprocal = reciprocal;
  s.axis = axis;
  return s;
}

// One fake-quant case: its output and input gradient, compared with PyTorch's "<case>_y" and
// "<case>_gx" (case_id(i) for runs[i]): the output bit for bit, the gradient by value.
struct YGradRun {
  std::string what;
  Tensor y, gx;
};

void expect_torch_matches(const std::string& py, const std::map<std::string, Tensor>& in,
                          const std::vector<YGradRun>& runs) {
  std::vector<std::string> outs;
  for (size_t i = 0; i < runs.size(); ++i) {
    outs.push_back(case_id(i) + "_y");
    outs.push_back(case_id(i) + "_gx");
  }
  auto t = lt::run_torch(py, in, outs);
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string id = case_id(i);
    std::string first;
    EXPECT_EQ(bit_mismatches(runs[i].y, t[id + "_y"], &first), 0) << runs[i].what << ": " << first;
    EXPECT_EQ(value_mismatches(runs[i].gx, t[id + "_gx"], &first), 0) << "input gradient, " << runs[i].what << ": " << first;
  }
}

TEST(FakeQuantTorch, PerTensorForwardAndMaskBitExact) {
  LB_REQUIRE_TORCH();
  Rng rng(11);
  int64_t torch_ties = 0;
  std::vector<YGradRun> runs;
  std::map<std::string, Tensor> in;
  std::ostringstream cases;  // python list of (name, qmin, qmax, zp)
  cases << "CASES = [";
  for (const RangeCase& rc : range_cases()) {
    for (float s : {0.0371f, 0.1f, 0.003f, 1.0f / 3.0f}) {
      std::vector<float> v = channel_values(s, rc.qmin, rc.qmax, rng, 600);
      int64_t dt = 0;
      count_ties(v, s, torch_ties, dt);
      const Tensor x = Tensor::from_vector({static_cast<int64_t>(v.size())}, v);
      for (int zp : rc.zps) {
        const std::string id = case_id(runs.size());
        Variable xv(x.clone(), true);
        Tensor zpt = Tensor::full({1}, static_cast<float>(zp));
        Variable y = q::fake_quant(xv, Variable(Tensor::full({1}, s)), zpt, spec_for(rc.qmin, rc.qmax, true, -1));
        Tensor g = Tensor::empty(x.shape());
        for (int64_t i = 0; i < g.numel(); ++i) g.f32()[i] = rng.uniform(-1.f, 1.f);
        y.backward(g);
        std::ostringstream what;
        what.precision(9);
        what << "range [" << rc.qmin << ", " << rc.qmax << "] s=" << s << " zp=" << zp;
        runs.push_back({what.str(), y.data(), xv.grad()});
        in[id + "_x"] = x;
        in[id + "_s"] = Tensor::full({1}, s);
        in[id + "_g"] = g;
        cases << "('" << id << "', " << rc.qmin << ", " << rc.qmax << ", " << zp << "), ";
      }
    }
  }
  cases << "]\n";
  const std::string py = cases.str() + R"PY(
for name, qmin, qmax, zp in CASES:
    x = load(name + '_x').requires_grad_()
    s = float(load(name + '_s')[0])
    y = torch.fake_quantize_per_tensor_affine(x, s, zp, qmin, qmax)
    y.backward(load(name + '_g'))
    save(name + '_y', y)
    save(name + '_gx', x.grad)
)PY";
  expect_torch_matches(py, in, runs);
  EXPECT_GT(torch_ties, 1000) << "the inputs must contain exact ties of x * (1/s)";
  EXPECT_EQ(runs.size(), 60u);
}

// Per-channel cases: (C, K) along axis 0 and (N, C, H, W) along axis 1.
struct ChannelData {
  Tensor x, scale, zp;  // zp as f32 (lowbit) with integer values
  int axis;
  int64_t torch_ties = 0;
};

ChannelData make_channel_data(const std::vector<int64_t>& shape, int axis, const RangeCase& rc, Rng& rng) {
  const int64_t C = shape[axis];
  int64_t inner = 1, outer = 1;
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  ChannelData cd;
  cd.axis = axis;
  cd.scale = Tensor::empty({C});
  cd.zp = Tensor::empty({C});
  std::vector<std::vector<float>> per(C);
  for (int64_t c = 0; c < C; ++c) {
    const float s = std::exp2(rng.uniform(-9.f, -1.f)) * rng.uniform(1.f, 2.f);
    cd.scale.f32()[c] = s;
    cd.zp.f32()[c] = static_cast<float>(rc.zps[c % rc.zps.size()]);
    per[c] = channel_values(s, rc.qmin, rc.qmax, rng, 0);
    int64_t dt = 0;
    count_ties(per[c], s, cd.torch_ties, dt);
  }
  cd.x = Tensor::empty(Shape(shape));
  float* px = cd.x.f32();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < inner; ++i) {
        const std::vector<float>& src = per[c];
        const int64_t j = o * inner + i;  // position within the channel
        px[(o * C + c) * inner + i] =
            j < static_cast<int64_t>(src.size()) ? src[j] : rng.normal() * 0.4f * (rc.qmax - rc.qmin) * cd.scale.f32()[c];
      }
  return cd;
}

TEST(FakeQuantTorch, PerChannelForwardAndMaskBitExact) {
  LB_REQUIRE_TORCH();
  Rng rng(12);
  int64_t torch_ties = 0;
  std::vector<YGradRun> runs;
  std::map<std::string, Tensor> in;
  std::ostringstream cases;
  cases << "CASES = [";
  for (const RangeCase& rc : range_cases()) {
    for (int axis : {0, 1}) {
      const int64_t levels = rc.qmax - rc.qmin + 1;
      // Each channel holds at least the constructed values (2 per level + 21) plus random ones.
      std::vector<int64_t> shape = axis == 0 ? std::vector<int64_t>{5, 2 * levels + 60}
                                             : std::vector<int64_t>{3, 4, 2, levels + 30};
      ChannelData cd = make_channel_data(shape, axis, rc, rng);
      torch_ties += cd.torch_ties;
      Variable xv(cd.x.clone(), true);
      Variable y = q::fake_quant(xv, Variable(cd.scale), cd.zp, spec_for(rc.qmin, rc.qmax, true, axis));
      Tensor g = Tensor::empty(cd.x.shape());
      for (int64_t i = 0; i < g.numel(); ++i) g.f32()[i] = rng.uniform(-1.f, 1.f);
      y.backward(g);
      Tensor zpi = Tensor::empty(cd.zp.shape(), lowbit::DType::s32);
      for (int64_t c = 0; c < cd.zp.numel(); ++c) zpi.data<int32_t>()[c] = static_cast<int32_t>(cd.zp.f32()[c]);
      const std::string id = case_id(runs.size());
      std::ostringstream what;
      what << "range [" << rc.qmin << ", " << rc.qmax << "] axis " << axis << " shape " << cd.x.shape().str();
      runs.push_back({what.str(), y.data(), xv.grad()});
      in[id + "_x"] = cd.x;
      in[id + "_s"] = cd.scale;
      in[id + "_zp"] = zpi;
      in[id + "_g"] = g;
      cases << "('" << id << "', " << rc.qmin << ", " << rc.qmax << ", " << axis << "), ";
    }
  }
  cases << "]\n";
  const std::string py = cases.str() + R"PY(
for name, qmin, qmax, axis in CASES:
    x = load(name + '_x').requires_grad_()
    zp = load(name + '_zp')
    assert zp.dtype == torch.int32
    y = torch.fake_quantize_per_channel_affine(x, load(name + '_s'), zp, axis, qmin, qmax)
    y.backward(load(name + '_g'))
    save(name + '_y', y)
    save(name + '_gx', x.grad)
)PY";
  expect_torch_matches(py, in, runs);
  EXPECT_GT(torch_ties, 1000) << "the inputs must contain exact ties of x * (1/s)";
}

// Brevitas' form: true division, the zero point added before rounding. Equals numpy float32
// bit for bit; differs from PyTorch's reciprocal form at some ties.
TEST(FakeQuantTorch, DivisionFormMatchesNumpyAndDiffersFromTorchAtTies) {
  LB_REQUIRE_TORCH();
  Rng rng(13);
  int64_t div_ties = 0;
  struct Run {
    std::string what;
    Tensor y_div, y_rec;
  };
  std::vector<Run> runs;
  std::map<std::string, Tensor> in;
  std::ostringstream cases;
  cases << "CASES = [";
  for (const RangeCase& rc : range_cases()) {
    for (float s : {0.0371f, 0.1f, 1.0f / 3.0f}) {
      std::vector<float> v = channel_values(s, rc.qmin, rc.qmax, rng, 300);
      int64_t tt = 0;
      count_ties(v, s, tt, div_ties);
      const Tensor x = Tensor::from_vector({static_cast<int64_t>(v.size())}, v);
      for (int zp : rc.zps) {
        Tensor zpt = Tensor::full({1}, static_cast<float>(zp));
        Tensor y_div = q::fake_quant(Variable(x), Variable(Tensor::full({1}, s)), zpt, spec_for(rc.qmin, rc.qmax, false, -1)).data();
        Tensor y_rec = q::fake_quant(Variable(x), Variable(Tensor::full({1}, s)), zpt, spec_for(rc.qmin, rc.qmax, true, -1)).data();
        const std::string id = case_id(runs.size());
        std::ostringstream what;
        what.precision(9);
        what << "range [" << rc.qmin << ", " << rc.qmax << "] s=" << s << " zp=" << zp;
        runs.push_back({what.str(), y_div, y_rec});
        in[id + "_x"] = x;
        in[id + "_s"] = Tensor::full({1}, s);
        cases << "('" << id << "', " << rc.qmin << ", " << rc.qmax << ", " << zp << "), ";
      }
    }
  }
  cases << "]\n";
  // Brevitas' clamp is torch.where (x > max -> max, x < min -> min), which keeps a -0 from the
  // rounding; np.where does the same (np.clip would turn -0 into the +0 bound).
  const std::string py = cases.str() + R"PY(
for name, qmin, qmax, zp in CASES:
    x = load(name + '_x').numpy()
    s = load(name + '_s').numpy()[0]
    r = np.round(x / s + np.float32(zp))
    q = np.where(r > np.float32(qmax), np.float32(qmax), np.where(r < np.float32(qmin), np.float32(qmin), r))
    assert q.dtype == np.float32
    save(name + '_np', torch.from_numpy((q - np.float32(zp)) * s))
    save(name + '_torch', torch.fake_quantize_per_tensor_affine(torch.from_numpy(x), float(s), zp, qmin, qmax))
)PY";
  std::vector<std::string> outs;
  for (size_t i = 0; i < runs.size(); ++i) {
    outs.push_back(case_id(i) + "_np");
    outs.push_back(case_id(i) + "_torch");
  }
  auto t = lt::run_torch(py, in, outs);
  int64_t torch_diffs = 0, recip_vs_numpy_diffs = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string id = case_id(i);
    std::string first;
    EXPECT_EQ(bit_mismatches(runs[i].y_div, t[id + "_np"], &first), 0) << "division form vs numpy, " << runs[i].what << ": " << first;
    torch_diffs += value_mismatches(runs[i].y_div, t[id + "_torch"]);
    recip_vs_numpy_diffs += value_mismatches(runs[i].y_rec, t[id + "_np"]);
  }
  EXPECT_GT(div_ties, 1000) << "the inputs must contain exact ties of x / s";
  EXPECT_GT(torch_diffs, 0) << "division and reciprocal forms should differ at some ties";
  EXPECT_GT(recip_vs_numpy_diffs, 0);
  std::printf("division vs PyTorch: %lld differing values; PyTorch form vs numpy division: %lld\n",
              static_cast<long long>(torch_diffs), static_cast<long long>(recip_vs_numpy_diffs));
}

// Quantizer with min/max statistics and a zero point, PyTorch form, against PyTorch's observers
// (scale = (max(x_max, 0) - min(x_min, 0)) / (qmax - qmin), zp = qmin - round(min / scale)).
TEST(FakeQuantTorch, ZeroPointQuantizerMatchesTorchObservers) {
  LB_REQUIRE_TORCH();
  Rng rng(14);
  struct Case {
    bool is_signed, per_channel;
    std::vector<int64_t> shape;
    float lo, hi;  // uniform range of the data (asymmetric)
  };
  const std::vector<Case> cases = {
      {false, false, {4, 3, 5, 5}, -0.7f, 2.3f},  // quint8 per tensor
      {true, false, {4, 3, 5, 5}, -0.2f, 1.9f},   // qint8 per tensor
      {false, false, {64}, 0.3f, 1.1f},           // all positive: the range still includes 0
      {false, true, {6, 3, 3, 3}, -1.3f, 0.4f},   // quint8 per channel (axis 0)
      {true, true, {6, 10}, -0.5f, 2.5f},         // qint8 per channel
  };
  struct Run {
    std::string what;
    Tensor y, scale, zp;
  };
  std::vector<Run> runs;
  std::map<std::string, Tensor> in;
  std::ostringstream list;
  list << "CASES = [";
  for (const Case& c : cases) {
    q::QuantizerConfig cfg;
    cfg.name = "minmax_zp";
    cfg.bits = 8;
    cfg.is_signed = c.is_signed;
    cfg.per_channel = c.per_channel;
    cfg.channel_axis = 0;
    cfg.scale_impl = q::ScaleImpl::stats;
    cfg.stat = q::ScaleStat::min_max;
    cfg.zero_point = true;
    cfg.reciprocal = true;
    q::Quantizer quant(cfg, c.per_channel ? c.shape[0] : 1);
    Tensor x = Tensor::empty(Shape(c.shape));
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(c.lo, c.hi);
    // The scale comes from the observed range, so ties cannot be planted here; the kernel tests
    // above hold them.
    Tensor y = quant.forward(Variable(x)).data();
    ASSERT_TRUE(quant.meta().zero_point.defined());
    const std::string id = case_id(runs.size());
    runs.push_back({std::string(c.is_signed ? "signed" : "unsigned") + (c.per_channel ? " per channel" : " per tensor"), y,
                    quant.meta().scale, quant.meta().zero_point});
    in[id + "_x"] = x;
    list << "('" << id << "', " << (c.is_signed ? "True" : "False") << ", " << (c.per_channel ? "True" : "False") << "), ";
  }
  list << "]\n";
  const std::string py = list.str() + R"PY(
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver
for name, signed, per_channel in CASES:
    x = load(name + '_x')
    dtype = torch.qint8 if signed else torch.quint8
    if per_channel:
        ob = PerChannelMinMaxObserver(ch_axis=0, dtype=dtype, qscheme=torch.per_channel_affine)
    else:
        ob = MinMaxObserver(dtype=dtype, qscheme=torch.per_tensor_affine)
    ob(x)
    s, zp = ob.calculate_qparams()
    qmin, qmax = (-128, 127) if signed else (0, 255)
    if per_channel:
        y = torch.fake_quantize_per_channel_affine(x, s.float(), zp.int(), 0, qmin, qmax)
    else:
        y = torch.fake_quantize_per_tensor_affine(x, float(s), int(zp), qmin, qmax)
    save(name + '_y', y)
    save(name + '_s', s.float().reshape(-1))
    save(name + '_zp', zp.float().reshape(-1))
)PY";
  std::vector<std::string> outs;
  for (size_t i = 0; i < runs.size(); ++i)
    for (const char* o : {"_y", "_s", "_zp"}) outs.push_back(case_id(i) + o);
  auto t = lt::run_torch(py, in, outs);
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string id = case_id(i);
    std::string first;
    EXPECT_EQ(bit_mismatches(runs[i].scale, t[id + "_s"], &first), 0) << runs[i].what << " scale: " << first;
    EXPECT_EQ(bit_mismatches(runs[i].zp, t[id + "_zp"], &first), 0) << runs[i].what << " zero point: " << first;
    EXPECT_EQ(bit_mismatches(runs[i].y, t[id + "_y"], &first), 0) << runs[i].what << " output: " << first;
  }
}

// The kernels' element math directly: fq_forward in both forms on scalars, a few hand cases
// that pin the tie rules (no PyTorch needed).
TEST(FakeQuantTorch, ElementTieRules) {
  k::FakeQuantElem e;
  e.qmin = -128;
  e.qmax = 127;
  // Division form: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2 (half to even); zp 1 added before rounding:
  // 2.5 + 1 = 3.5 -> 4, minus zp -> 3 levels.
  EXPECT_EQ(k::fq_forward(2.5f, 1.f, 0.f, e), 2.f);
  EXPECT_EQ(k::fq_forward(3.5f, 1.f, 0.f, e), 4.f);
  EXPECT_EQ(k::fq_forward(-2.5f, 1.f, 0.f, e), -2.f);
  EXPECT_EQ(k::fq_forward(2.5f, 1.f, 1.f, e), 3.f);
  // PyTorch form: the zero point after rounding: round(2.5) + 1 = 3, minus zp -> 2 levels.
  e.reciprocal = true;
  EXPECT_EQ(k::fq_forward(2.5f, 1.f, 1.f, e), 2.f);
  EXPECT_EQ(k::fq_forward(2.5f, 1.f, 0.f, e), 2.f);
  // Signed zeros. PyTorch form: round(x * (1/s)) + zp is +0 for -0 and for small negatives.
  EXPECT_FALSE(std::signbit(k::fq_forward(-0.f, 0.5f, 0.f, e)));
  EXPECT_FALSE(std::signbit(k::fq_forward(-0.1f, 0.5f, 0.f, e)));
  // Brevitas form: -0 / s + 0.0 is +0 (the +0.0 zero point), but a small negative value rounds
  // to -0 and stays -0 (as Brevitas' round and torch.where clamp keep it).
  e.reciprocal = false;
  EXPECT_FALSE(std::signbit(k::fq_forward(-0.f, 0.5f, 0.f, e)));
  EXPECT_TRUE(std::signbit(k::fq_forward(-0.1f, 0.5f, 0.f, e)));
  // Clamp: signed wide int8 range.
  EXPECT_EQ(k::fq_forward(1000.f, 1.f, 0.f, e), 127.f);
  EXPECT_EQ(k::fq_forward(-1000.f, 1.f, 0.f, e), -128.f);
  // Other rounding modes (floor, ceil, half away from zero).
  e.rounding = k::Rounding::floor;
  EXPECT_EQ(k::fq_forward(-2.5f, 1.f, 0.f, e), -3.f);
  e.rounding = k::Rounding::ceil;
  EXPECT_EQ(k::fq_forward(2.25f, 1.f, 0.f, e), 3.f);
  e.rounding = k::Rounding::half_away;
  EXPECT_EQ(k::fq_forward(2.5f, 1.f, 0.f, e), 3.f);
  EXPECT_EQ(k::fq_forward(-2.5f, 1.f, 0.f, e), -3.f);
}

}  // namespace
