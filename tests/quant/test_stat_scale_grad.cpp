// Gradients of scales computed from the tensor itself against PyTorch autograd, relative error
// <= 1e-6: max|W| weight scales and statistic scales; central differences on the statistics.

// Formulas (Brevitas 0.12; the float64 reference is described in quant_grad_util.h):
//   Max-abs weight scale: s = max|W| / T (or 2^ceil(log2 max|W|) / T, ceil straight-through);
//                 the scale gradient reaches the arg-max element(s), ties share it evenly.
//   Statistic scales (collection phase of parameter-from-stats, running statistics in
//                 training, weight statistics): s = stat(x) / T with the statistic's own
//                 gradient, as in Brevitas: the percentile through torch.kthvalue of |x|,
//                 mean(|x|) + k * std(|x|) (unbiased) through torch.mean / torch.std.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "quant/presets.h"
#include "quant/quant_ops.h"
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
using q::grad_test::Oracle;
using q::grad_test::random_upstream;

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
    float max = 0;  // the planted maximum; 0: 0.5 for power-of-two scales, else 0.41
  };
  const std::vector<Case> cases = {
      {"Int8WeightPerTensorFloat", {10, 12}, 8},       {"Int8WeightPerTensorFloat", {6, 3, 3, 3}, 4},
      {"Int8WeightPerChannelFloat", {6, 3, 3, 3}, 8},  {"Int8WeightPerChannelFloat", {5, 16}, 3},
      {"Int8WeightPerTensorFixedPoint", {8, 20}, 8},   {"Int8WeightPerTensorFixedPoint", {4, 2, 3, 3}, 4},
      {"Int8WeightPerTensorFixedPoint", {7, 9}, 8, 0.41f},  // a maximum that is not a power of two
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
    const float m = c.max > 0 ? c.max : cfg.restrict_to == q::ScaleRestrict::pow2 ? 0.5f : 0.41f;
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
    if pow2:                                     # Brevitas: 2 ** ceil_ste(log2(m))
        p32 = torch.exp2(torch.ceil(torch.log2(m32)))
        t = torch.log2(m)
        m = pin(torch.exp2(t + (torch.ceil(t) - t).detach()), p32)
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

}  // namespace
