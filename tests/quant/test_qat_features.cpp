// QAT features of the quantizers: the NaN/Inf guard, learned bit widths with their regularizer,
// post-training calibration of the statistics, and relu / relu6 / hardtanh fused into the
// activation quantizer.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "nn/layers.h"
#include "ops/ops.h"
#include "persist/checkpoint.h"
#include "qat_test_util.h"
#include "quant/guard.h"
#include "quant/presets.h"
#include "quant/qat.h"
#include "quant/quant_layers.h"
#include "quant/quant_ops.h"
#include "quant/quantizer.h"
#include "train/calibration.h"
#include "train/trainer.h"
#include "util/gradcheck.h"
#include "util/torch_oracle.h"

namespace {

using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace q = lowbit::quant;
namespace nn = lowbit::nn;
namespace ops = lowbit::ops;
namespace lt = lowbit::testing;
using q::qat_test::build;
using q::qat_test::error_of;
using q::qat_test::f;
using q::qat_test::kSrc;
using q::qat_test::param;
using q::qat_test::run_config;
using q::qat_test::temp_dir;

// max |a - b| / max |b| (norm-wise relative error).
double rel_err(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.numel(), b.numel());
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  double num = 0, den = 0;
  for (int64_t i = 0; i < ac.numel(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(ac.f32()[i]) - bc.f32()[i]));
    den = std::max(den, std::fabs(static_cast<double>(bc.f32()[i])));
  }
  return den == 0 ? num : num / den;
}

#define EXPECT_REL(ours, theirs, what)                                             \
  do {                                                                             \
    ASSERT_TRUE((ours).defined()) << what << ": no value";                         \
    EXPECT_LE(rel_err((ours), (theirs)), 1e-6) << what;                            \
  } while (0)

bool all_finite(const Tensor& t) { return q::all_finite(t); }

// A small run config (YAML text) over the first few Fashion-MNIST samples.
std::string small_run(const std::string& model, const std::string& quant, const std::string& extra = "") {
  return "model: {path: " + kSrc + "/" + model + "}\n" +
         "data: {mean: [0.2860], std: [0.3530], train_limit: 512, test_limit: 200}\n" +
         "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n" + "train: {epochs: 1, batch_size: 64, seed: 0}\n" +
         "quant:\n" + quant + extra;
}

// ---- 1. NaN/Inf guard -------------------------------------------------------------------

TEST(NanGuard, ZeroBiasWithInternalScaleStaysFinite) {
  Rng rng(3);
  nn::LinearOptions lo;
  lo.in_features = 5;
  lo.out_features = 4;
  auto lin = std::make_shared<nn::Linear>(lo, rng);
  lin->bias().data().zero();
  q::QuantWeightLayer layer(lin, q::preset("Int8WeightPerTensorFloat"), q::preset("Int8BiasPerTensorFloatInternalScaling"));
  Variable x(lt::random_tensor({3, 5}, rng), true);
  Variable y = layer.forward(x);
  ASSERT_TRUE(all_finite(y.data()));
  ops::sum(y).backward();
  EXPECT_TRUE(all_finite(x.grad()));
  EXPECT_TRUE(all_finite(layer.bias().grad()));
  EXPECT_TRUE(all_finite(layer.weight().grad()));
  const Tensor s = layer.bias_quant()->meta().scale;
  ASSERT_TRUE(s.defined());
  EXPECT_GT(s.f32()[0], 0.f);  // the 1e-10 floor: 1e-10 / 128
  EXPECT_FLOAT_EQ(s.f32()[0], 1e-10f / 128.f);
  for (int64_t i = 0; i < 4; ++i) EXPECT_EQ(layer.bias_quant()->meta().scale.f32()[0] * 0.f, 0.f);
}

TEST(NanGuard, ZeroBiasTrainsWithoutNaN) {
  LB_REQUIRE_FASHION_MNIST();
  // Every bias starts at zero and is quantized with an internal scale.
  auto cfg = run_config(small_run("models/lenet5.yaml",
                                  "  weights: Int8WeightPerTensorFloat\n"
                                  "  activations: Uint8ActPerTensorFloat\n"
                                  "  bias: Int8BiasPerTensorFloatInternalScaling\n"),
                        {"train.epochs=1", "data.train_limit=128"});
  auto built = lowbit::train::build_model(cfg);
  for (auto& [name, p] : built.graph->named_parameters())
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) p.data().zero();
  // Forward/backward on a batch of zeros and of random data: all finite.
  Rng rng(1);
  for (int k = 0; k < 2; ++k) {
    Variable x(k == 0 ? Tensor::zeros({4, 1, 28, 28}) : lt::random_tensor({4, 1, 28, 28}, rng));
    Variable y = built.graph->forward(x);
    ASSERT_TRUE(all_finite(y.data()));
    ops::sum(y).backward();
    EXPECT_EQ(q::check_gradients(*built.graph), "");
  }
}

TEST(NanGuard, NonFiniteScaleNamesLayerAndQuantizer) {
  auto b = build("models/lenet5.yaml",
                 "weights: Int8WeightPerTensorFloat\n"
                 "activations: {preset: Uint8ActPerTensorFloat, scale_impl: parameter, scale_init: 2.0}\n");
  // Poison the learned scale of relu2's quantizer.
  for (auto& [name, p] : b.m.graph->named_parameters())
    if (name == "relu2.act_quant.value") p.data().f32()[0] = NAN;
  Rng rng(2);
  const std::string msg = error_of([&] { b.m.graph->forward(Variable(lt::random_tensor({2, 1, 28, 28}, rng))); });
  EXPECT_NE(msg.find("layer relu2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("quantizer relu2.act_quant"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Uint8ActPerTensorFloat"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nan"), std::string::npos) << msg;
  EXPECT_NE(q::check_quantizer_state(*b.m.graph).find("relu2.act_quant.value"), std::string::npos);
}

TEST(NanGuard, NonFiniteGradientNamesLayerAndQuantizer) {
  auto b = build("models/lenet5.yaml",
                 "weights: Int8WeightPerTensorFloat\n"
                 "activations: {preset: Uint8ActPerTensorFloat, scale_impl: parameter, scale_init: 2.0}\n");
  Rng rng(2);
  Variable y = b.m.graph->forward(Variable(lt::random_tensor({2, 1, 28, 28}, rng)));
  ops::sum(y).backward();
  EXPECT_EQ(q::check_gradients(*b.m.graph), "");
  for (auto& [name, p] : b.m.graph->named_parameters())
    if (name == "relu3.act_quant.value") p.grad().f32()[0] = INFINITY;
  std::string msg = q::check_gradients(*b.m.graph);
  EXPECT_NE(msg.find("relu3.act_quant.value"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer relu3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("quantizer relu3.act_quant"), std::string::npos) << msg;
  EXPECT_NE(msg.find("inf"), std::string::npos) << msg;
  // A layer's own weight: the layer and its quantizers are named.
  for (auto& [name, p] : b.m.graph->named_parameters()) {
    if (name == "relu3.act_quant.value") p.grad().f32()[0] = 0.f;
    if (name == "conv2.weight") p.grad().f32()[7] = NAN;
  }
  msg = q::check_gradients(*b.m.graph);
  EXPECT_NE(msg.find("conv2.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer conv2 (quant_conv2d)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("quantizer conv2.weight_quant"), std::string::npos) << msg;
}

TEST(NanGuard, LocateNonFiniteForward) {
  auto b = build("models/lenet5.yaml", "weights: Int8WeightPerTensorFloat\n");
  for (auto& [name, p] : b.m.graph->named_parameters())
    if (name == "fc1.bias") p.data().f32()[3] = INFINITY;
  Rng rng(2);
  const std::string msg = q::locate_nonfinite(*b.m.graph, lt::random_tensor({2, 1, 28, 28}, rng));
  EXPECT_NE(msg.find("layer fc1 (quant_linear)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fc1.bias holds NaN/Inf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("quantizer fc1.weight_quant"), std::string::npos) << msg;
}

TEST(NanGuard, TrainingStopsWithStepLayerAndQuantizer) {
  LB_REQUIRE_FASHION_MNIST();
  // A learned activation scale poisoned by an absurd learning rate: the run must stop at once,
  // naming the step, and the layer and quantizer where the NaN/Inf showed.
  auto cfg = run_config(small_run("models/lenet5.yaml",
                                  "  weights: Int8WeightPerTensorFloat\n"
                                  "  activations: {preset: Uint8ActPerTensorFloat, scale_impl: parameter, scale_init: 2.0}\n"),
                        {"optimizer.lr=1e38", "optimizer.momentum=0"});
  lowbit::train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = temp_dir("nan");
  const std::string msg = error_of([&] { lowbit::train::run_training(cfg, opt); });
  ASSERT_NE(msg, "") << "training with lr=1e38 did not stop";
  EXPECT_NE(msg.find("training diverged at epoch 1, step "), std::string::npos) << msg;
  EXPECT_NE(msg.find("layer "), std::string::npos) << msg;
  EXPECT_NE(msg.find("quantizer "), std::string::npos) << msg;
  std::filesystem::remove_all(opt.out_dir);
}

// ---- 2. Learned bit width ---------------------------------------------------------------
//
// Gradients are compared with PyTorch autograd of the same formula (tests/util/torch_oracle.h),
// evaluated in float64 on the same float32 inputs: relative error max|ours - torch| / max|torch|
// <= 1e-6 for every compared tensor.

q::QuantizerConfig learned(q::QuantizerConfig c, int bits) {
  c.bits = bits;
  c.learned_bits = true;
  return c;
}

void set_param(nn::Module& m, const std::string& name, std::vector<float> v) {
  for (auto& [n, p] : m.named_parameters())
    if (n == name) {
      ASSERT_EQ(p.numel(), static_cast<int64_t>(v.size())) << name;
      for (size_t i = 0; i < v.size(); ++i) p.data().f32()[i] = v[i];
      return;
    }
  FAIL() << "no parameter " << name;
}

TEST(LearnedBits, OffsetInitAndRounding) {
  q::Quantizer w(learned(q::preset("Int8WeightPerChannelFloat"), 4), 3);
  EXPECT_FLOAT_EQ(param(w, "bit_offset").data().f32()[0], 2.f);  // b0 - 2
  EXPECT_EQ(w.current_bits(), 4);
  EXPECT_FALSE(w.config().ste_clamp);  // forces the real clamp
  for (auto [off, bits] : std::vector<std::pair<float, int>>{{2.5f, 4}, {3.5f, 6}, {1.5f, 4}, {0.f, 2}, {0.4f, 2},
                                                             {-0.6f, 3}, {-2.5f, 4}, {-2.6f, 5}}) {
    set_param(w, "bit_offset", {off});
    EXPECT_EQ(w.current_bits(), bits) << "offset " << off;
    Rng rng(4);
    Variable x(lt::random_tensor({3, 2, 3, 3}, rng));
    w.forward(x);
    EXPECT_EQ(w.meta().bits, bits) << "offset " << off;
  }
}

TEST(LearnedBits, ForwardFollowsLearnedBits) {
  // A learned 4-bit offset 2.5 (rounds half to even to 4 bits) quantizes exactly as fixed 4 bits,
  // and an offset of 1.2 as fixed 3 bits, for weights (narrow signed, per channel) and for
  // unsigned activations with a learned scale.
  Rng rng(5);
  Variable w(lt::random_tensor({4, 3, 3, 3}, rng));
  Variable a(lt::random_tensor({8, 3, 5, 5}, rng, -0.5f, 3.f));
  q::QuantizerConfig wc = q::preset("Int8WeightPerChannelFloat");
  q::QuantizerConfig ac = q::preset("Uint8ActPerTensorFloat");
  ac.scale_impl = q::ScaleImpl::parameter;
  ac.scale_init = 2.0;
  for (auto [off, bits] : std::vector<std::pair<float, int>>{{2.5f, 4}, {1.2f, 3}, {-0.3f, 2}}) {
    q::Quantizer lw(learned(wc, 6), 4), fw([&] { auto c = wc; c.bits = bits; return c; }(), 4);
    set_param(lw, "bit_offset", {off});
    const Tensor yl = lw.forward(w).data(), yf = fw.forward(w).data();
    EXPECT_EQ(lt::max_abs_diff(yl, yf), 0.f) << "weights, offset " << off;
    q::Quantizer la(learned(ac, 8), 1), fa([&] { auto c = ac; c.bits = bits; return c; }(), 1);
    set_param(la, "bit_offset", {off});
    const Tensor al = la.forward(a).data(), af = fa.forward(a).data();
    EXPECT_EQ(lt::max_abs_diff(al, af), 0.f) << "activations, offset " << off;
    EXPECT_FLOAT_EQ(la.meta().scale.f32()[0], 2.f / static_cast<float>((1 << bits) - 1));
  }
}

struct LearnedBitsCase {
  std::string name;
  bool weights;   // per-channel narrow signed weights with max|W| scale, else activations with a learned scale
  bool is_signed;
  float offset;
  float value;    // learned activation threshold
};

class LearnedBitsVsTorch : public ::testing::TestWithParam<LearnedBitsCase> {};

TEST_P(LearnedBitsVsTorch, Gradients) {
  LB_REQUIRE_TORCH();
  const LearnedBitsCase& c = GetParam();
  Rng rng(11);
  q::QuantizerConfig cfg;
  Variable x;
  if (c.weights) {
    cfg = learned(q::preset("Int8WeightPerChannelFloat"), 4);
    x = Variable(lt::random_tensor({4, 3, 3, 3}, rng), true);
  } else {
    cfg = learned(q::preset(c.is_signed ? "Int8ActPerTensorFloat" : "Uint8ActPerTensorFloat"), 4);
    cfg.scale_impl = q::ScaleImpl::parameter;
    x = Variable(lt::random_tensor({6, 3, 4, 4}, rng, c.is_signed ? -3.f : -0.5f, 3.f), true);
  }
  q::Quantizer qz(cfg, c.weights ? 4 : 1);
  set_param(qz, "bit_offset", {c.offset});
  if (!c.weights) set_param(qz, "value", {c.value});
  Variable y = qz.forward(x);
  const Tensor r = lt::random_tensor(y.shape(), rng);
  y.backward(r);
  std::map<std::string, Tensor> in{{"x", x.data()}, {"r", r}, {"off", Tensor::full({1}, c.offset)},
                                   {"p", Tensor::full({1}, c.value)}};
  std::ostringstream py;
  py << "WEIGHTS = " << (c.weights ? "True" : "False") << "\nSIGNED = " << (c.is_signed ? "True" : "False") << R"PY(
def round_ste(t):
    return (torch.round(t) - t).detach() + t
def abs_sign(t):  # |t| with gradient sign(t), sign(0) = +1 (Brevitas)
    return t * torch.where(t >= 0, torch.ones_like(t), -torch.ones_like(t)).detach()
# float64 autograd on the same float32 inputs (the float32 reductions of torch itself would be
# off by more than the 1e-6 being checked)
x = load('x').double().requires_grad_()
off = load('off').double().requires_grad_()
p = load('p').double().requires_grad_()
bw = round_ste(abs_sign(off) + 2.0)
if WEIGHTS:  # signed narrow: [-(2^(b-1)-1), 2^(b-1)-1], T = 2^(b-1) - 1, s = max|W| / T per channel
    half = torch.pow(2.0, bw - 1.0)
    qmax = half - 1.0
    qmin = -half + 1.0
    T = qmax
    s = torch.amax(x.abs(), dim=(1, 2, 3), keepdim=True) / T
elif SIGNED:  # signed wide, T = 2^(b-1)
    half = torch.pow(2.0, bw - 1.0)
    qmax = half - 1.0
    qmin = -half
    T = half
    s = abs_sign(p) / T
else:  # unsigned, T = 2^b - 1
    full = torch.pow(2.0, bw)
    qmax = full - 1.0
    qmin = torch.zeros_like(qmax)
    T = qmax
    s = abs_sign(p) / T
r = round_ste(x / s)
qv = torch.where(r > qmax, qmax, r)
qv = torch.where(qv < qmin, qmin, qv)
y = qv * s
y.backward(load('r'))
save('y', y); save('gx', x.grad); save('goff', off.grad)
save('gp', p.grad if p.grad is not None else torch.zeros(1))
)PY";
  auto t = lt::run_torch(py.str(), in, {"y", "gx", "goff", "gp"});
  EXPECT_LE(rel_err(y.data(), t["y"]), 1e-6) << "forward";
  EXPECT_REL(x.grad(), t["gx"], "input gradient");
  EXPECT_REL(param(qz, "bit_offset").grad(), t["goff"], "bit offset gradient");
  if (!c.weights) EXPECT_REL(param(qz, "value").grad(), t["gp"], "scale parameter gradient");
  EXPECT_NE(param(qz, "bit_offset").grad().f32()[0], 0.f) << "no gradient reached the offset";
}

INSTANTIATE_TEST_SUITE_P(
    Quant, LearnedBitsVsTorch,
    ::testing::Values(LearnedBitsCase{"weights_4bit", true, true, 2.f, 0.f},
                      LearnedBitsCase{"weights_tie_2_5", true, true, 2.5f, 0.f},
                      LearnedBitsCase{"weights_offset0", true, true, 0.f, 0.f},
                      LearnedBitsCase{"weights_negative_offset", true, true, -1.3f, 0.f},
                      LearnedBitsCase{"uint_act_3bit", false, false, 1.f, 2.f},
                      LearnedBitsCase{"uint_act_negative_offset", false, false, -2.2f, 1.5f},
                      LearnedBitsCase{"int_act_4bit", false, true, 2.f, 2.5f},
                      LearnedBitsCase{"int_act_offset0", false, true, 0.f, 1.f}),
    [](const auto& info) { return info.param.name; });

TEST(LearnedBits, BitCostRegularizer) {
  auto b = build("models/lenet5.yaml",
                 "weights: {preset: Int8WeightPerChannelFloat, learned_bits: true}\n"
                 "bits: 4\nfirst_last_bits: 8\nbit_cost: 0.5\n"
                 "layers:\n  conv1: {weights: {learned_bits: false}}\n");
  EXPECT_DOUBLE_EQ(b.recipe.bit_cost, 0.5);
  Rng rng(6);
  b.m.graph->forward(Variable(lt::random_tensor({2, 1, 28, 28}, rng)));
  Variable cost = q::weight_bit_cost(*b.m.graph);
  ASSERT_TRUE(cost.defined());
  // mean bits per weight: (150*8 + 2400*4 + 48000*4 + 10080*4 + 840*8) / 61470
  const double n = 150 + 2400 + 48000 + 10080 + 840;
  EXPECT_NEAR(cost.data().item(), (150 * 8 + 2400 * 4 + 48000 * 4 + 10080 * 4 + 840 * 8) / n, 1e-5);
  EXPECT_EQ(q::weight_bits(*b.m.graph).total_bits, 150 * 8 + 2400 * 4 + 48000 * 4 + 10080 * 4 + 840 * 8);
  cost.backward();
  EXPECT_FLOAT_EQ(param(*b.m.graph, "fc1.weight_quant.bit_offset").grad().f32()[0], static_cast<float>(48000 / n));
  EXPECT_FLOAT_EQ(param(*b.m.graph, "fc3.weight_quant.bit_offset").grad().f32()[0], static_cast<float>(840 / n));
  // conv1 kept a fixed width: no offset parameter.
  for (auto& [name, p] : b.m.graph->named_parameters()) EXPECT_NE(name, "conv1.weight_quant.bit_offset");
  // Negative offset: the gradient of |offset| is -1.
  set_param(*b.m.graph, "fc2.weight_quant.bit_offset", {-1.7f});
  b.m.graph->forward(Variable(lt::random_tensor({2, 1, 28, 28}, rng)));
  for (auto& [name, p] : b.m.graph->named_parameters()) p.clear_grad();
  q::weight_bit_cost(*b.m.graph).backward();
  EXPECT_FLOAT_EQ(param(*b.m.graph, "fc2.weight_quant.bit_offset").grad().f32()[0], static_cast<float>(-10080 / n));
}

TEST(LearnedBits, BadOptions) {
  auto msg = error_of([] { q::Quantizer z(learned(q::preset("SignedBinaryWeightPerTensorStats"), 1)); });
  EXPECT_NE(msg.find("learned bit width"), std::string::npos) << msg;
  msg = error_of([] { build("models/lenet5.yaml", "weights: Int8WeightPerTensorFloat\nbit_cost: 0.1\n"); });
  EXPECT_NE(msg.find("bit_cost"), std::string::npos) << msg;
  EXPECT_NE(msg.find("learned_bits"), std::string::npos) << msg;
  msg = error_of([] { build("models/lenet5.yaml", "weights: Int8WeightPerTensorFloat\nbit_cost: -1\n"); });
  EXPECT_NE(msg.find("quant.bit_cost"), std::string::npos) << msg;
}

TEST(LearnedBits, TrainingLowersBitsUnderCost) {
  LB_REQUIRE_FASHION_MNIST();
  // A strong bit cost pulls the learned widths down from 4 bits within one short epoch.
  auto cfg = run_config(small_run("models/lenet5.yaml",
                                  "  weights: {preset: Int8WeightPerChannelFloat, learned_bits: true}\n"
                                  "  activations: Uint8ActPerTensorFloat\n"
                                  "  bits: 4\n  bit_cost: 2.0\n"));
  lowbit::train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = temp_dir("bits");
  auto r = lowbit::train::run_training(cfg, opt);
  EXPECT_LT(r.weight_bits, 61470 * 4);
  EXPECT_TRUE(std::filesystem::exists(opt.out_dir + "/weight_bits.txt"));
  std::filesystem::remove_all(opt.out_dir);
}

// ---- 3. Post-training calibration -------------------------------------------------------

// A synthetic u8 data set: random images, random labels.
lowbit::data::Dataset random_dataset(int64_t n, Rng& rng) {
  lowbit::data::Dataset ds;
  ds.images = Tensor::empty({n, 1, 28, 28}, lowbit::DType::u8);
  ds.labels = Tensor::empty({n}, lowbit::DType::s32);
  for (int64_t i = 0; i < ds.images.numel(); ++i) ds.images.data<uint8_t>()[i] = static_cast<uint8_t>(rng.below(256));
  for (int64_t i = 0; i < n; ++i) ds.labels.data<int32_t>()[i] = static_cast<int32_t>(rng.below(10));
  ds.num_classes = 10;
  ds.name = "random";
  return ds;
}

TEST(Calibration, CollectsStatisticsWithoutTraining) {
  Rng rng(41);
  auto b = build("models/lenet5.yaml",
                 "weights: Int8WeightPerChannelFloat\nactivations: Uint8ActPerTensorFloat\n"
                 "input: Int8ActPerTensorFloat\nbits: 8\n");
  auto& g = *b.m.graph;
  const auto before = g.named_parameters();
  std::vector<Tensor> weights;
  for (auto& [n, p] : before) weights.push_back(p.data().clone());
  lowbit::data::LoaderOptions lo;
  lo.batch_size = 16;
  lo.shuffle = false;
  lo.transforms.add(lowbit::data::ToFloat{});
  lowbit::data::DataLoader loader(random_dataset(64, rng), lo);
  const auto r = lowbit::train::calibrate(g, loader, 3);
  EXPECT_EQ(r.batches, 3);
  EXPECT_EQ(r.quantizers, 5);  // input + 4 relus (the weight quantizers use per-forward statistics)
  EXPECT_FALSE(g.training());
  // Every collecting quantizer handed its statistic (EMA over the 3 batches) to its scale.
  for (auto& [name, qz] : q::quantizers_of(g)) {
    if (qz->config().scale_impl != q::ScaleImpl::parameter_from_stats) continue;
    Tensor cnt, buf;
    for (auto& [bn, t] : qz->named_buffers()) {
      if (bn == "collect_count") cnt = *t;
      if (bn == "stat_buffer") buf = *t;
    }
    EXPECT_EQ(cnt.data<int32_t>()[0], qz->config().collect_steps + 1) << name;  // handed over (Brevitas' count)
    EXPECT_EQ(f(param(*qz, "value").data()), f(buf)) << name;
    EXPECT_GT(f(buf), 0.f) << name;
  }
  // Nothing trained.
  size_t k = 0;
  for (auto& [n, p] : g.named_parameters()) {
    if (n.find("_quant.") != std::string::npos) { ++k; continue; }
    EXPECT_EQ(lt::max_abs_diff(p.data(), weights[k++]), 0.f) << n;
  }
}

TEST(Calibration, QuantizerEmaAndHandOver) {
  q::Quantizer qz(q::preset("Int8ActPerTensorFloat"));
  qz.eval();
  Rng rng(42);
  std::vector<Tensor> xs;
  for (int i = 0; i < 3; ++i) xs.push_back(lt::random_tensor({4, 100}, rng, -1.f - i, 1.f + i));
  // Eval without calibration collects nothing.
  qz.forward(Variable(xs[0]));
  for (auto& [bn, t] : qz.named_buffers())
    if (bn == "collect_count") {
      EXPECT_EQ(t->data<int32_t>()[0], 0);
    }
  qz.set_calibrating(true);
  float ema = 0;
  for (int i = 0; i < 3; ++i) {
    qz.forward(Variable(xs[i]));
    const float st = f(q::abs_percentile(Variable(xs[i]), 99.999).data());
    ema = i == 0 ? st : ema * 0.9f + 0.1f * st;
  }
  qz.finish_calibration();
  EXPECT_FLOAT_EQ(f(param(qz, "value").data()), ema);
  // From now on the learned scale |value| / 128 is used.
  qz.forward(Variable(xs[0]));
  EXPECT_FLOAT_EQ(f(qz.meta().scale), ema / 128.f);
}

TEST(Calibration, LoadsAFloatCheckpoint) {
  LB_REQUIRE_FASHION_MNIST();
  // A float model's weights into the quantized model: quantizer state starts fresh.
  auto fcfg = run_config("model: {path: " + kSrc + "/models/lenet5.yaml}\n" +
                         "data: {mean: [0.2860], std: [0.3530], train_limit: 256, test_limit: 100}\n"
                         "train: {epochs: 1, batch_size: 64}\n");
  lowbit::train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = temp_dir("calfloat");
  lowbit::train::run_training(fcfg, opt);
  auto b = build("models/lenet5.yaml", "weights: Int8WeightPerChannelFloat\nactivations: Uint8ActPerTensorFloat\n");
  // 4 relu quantizers x (value, stat_buffer, collect_count) are not in a float checkpoint.
  EXPECT_EQ(lowbit::train::load_weights_for_calibration(opt.out_dir + "/last.h5", *b.m.graph), 12);
  auto fm = lowbit::train::build_model(fcfg);
  lowbit::persist::load_model_state(opt.out_dir + "/last.h5", *fm.graph);
  EXPECT_EQ(lt::max_abs_diff(param(*b.m.graph, "conv2.weight").data(), param(*fm.graph, "conv2.weight").data()), 0.f);
  std::filesystem::remove_all(opt.out_dir);
}

// ---- 4. relu / relu6 / hardtanh fused into the activation quantizer ---------------------

float first(const Tensor& t) { return t.contiguous().f32()[0]; }

// The fused pass (y = fq(clamp(x)), one kernel) equals the activation followed by the quantizer,
// bit for bit: output, input gradient and the learned scale's gradient. Inputs hit the clamp
// bounds exactly and the quantization ties.
TEST(FusedActivation, EqualsActivationThenQuantizer) {
  struct Case {
    const char* what;
    lowbit::nn::ActivationOptions act;
    std::string preset;
    int bits;
  };
  using lowbit::nn::ActivationKind;
  const std::vector<Case> cases = {
      {"relu + Uint8ActPerTensorFloat 4 bit", {ActivationKind::relu, -1.f, 1.f, 0.01f}, "Uint8ActPerTensorFloat", 4},
      {"relu6 + Uint8ActPerTensorFloat 2 bit", {ActivationKind::relu6, -1.f, 1.f, 0.01f}, "Uint8ActPerTensorFloat", 2},
      {"hardtanh(-1, 1) + Int8ActPerTensorFloat 3 bit", {ActivationKind::hardtanh, -1.f, 1.f, 0.01f},
       "Int8ActPerTensorFloat", 3},
      {"relu + Uint8ActLSQ 4 bit", {ActivationKind::relu, -1.f, 1.f, 0.01f}, "Uint8ActLSQ", 4},
      {"relu6 + Int8ActPerTensorFloatMinMaxInit 8 bit (signed after relu6)", {ActivationKind::relu6, -1.f, 1.f, 0.01f},
       "Int8ActPerTensorFloatMinMaxInit", 8},
  };
  Rng rng(77);
  for (const Case& c : cases) {
    q::QuantizerConfig cfg = q::preset(c.preset);
    cfg.bits = c.bits;
    if (cfg.scale_impl == q::ScaleImpl::parameter_from_stats) cfg.collect_steps = 2;
    auto make = [&] { return q::QuantAct(std::make_shared<lowbit::nn::Activation>(c.act), cfg); };
    q::QuantAct fused = make(), plain = make();
    plain.set_fuse_activation(false);
    fused.train();
    plain.train();
    const Shape sh({4, 3, 5, 7});
    // Collection forwards (unfused in both: the scale is a statistic of the activation's output).
    for (int k = 0; k < 3; ++k) {
      Tensor x = lt::random_tensor(sh, rng, -3.f, 8.f);
      fused.forward(Variable(x));
      plain.forward(Variable(x));
    }
    ASSERT_TRUE(fused.act_quant().fuses_activation()) << c.what;
    const float s = first(fused.act_quant().meta().scale);
    Tensor x = lt::random_tensor(sh, rng, -3.f, 8.f);
    for (int64_t i = 0; i < x.numel(); i += 5) {  // bounds, ties and levels
      const int kind = static_cast<int>(i / 5 % 6);
      const float v[] = {0.f, 6.f, -1.f, 1.f, 2.5f * s, 3.f * s};
      x.f32()[i] = v[kind];
    }
    Variable xf(x, true), xp(x.clone(), true);
    Variable yf = fused.forward(xf), yp = plain.forward(xp);
    const Tensor g = lt::random_tensor(sh, rng);
    yf.backward(g);
    yp.backward(g);
    EXPECT_EQ(lt::max_abs_diff(yf.data(), yp.data()), 0.f) << c.what << ": output";
    EXPECT_EQ(lt::max_abs_diff(xf.grad(), xp.grad()), 0.f) << c.what << ": input gradient";
    auto value_grad = [](q::QuantAct& m) {
      for (auto& [n, p] : m.named_parameters())
        if (n == "act_quant.value") return p.grad().clone();
      return Tensor();
    };
    const Tensor gf = value_grad(fused), gp = value_grad(plain);
    ASSERT_TRUE(gf.defined() && gp.defined()) << c.what << ": no learned scale gradient";
    EXPECT_EQ(first(gf), first(gp)) << c.what << ": scale gradient";
    EXPECT_EQ(first(fused.act_quant().meta().scale), first(plain.act_quant().meta().scale)) << c.what << ": metadata scale";
  }
}

}  // namespace
