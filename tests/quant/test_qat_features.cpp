// QAT features beyond the quantizer core: the NaN/Inf guard, learned bit widths with their
// regularizer, quantization metadata propagation (QuantTensor) and bias with external scale,
// shared quantizers for add/concat, truncating average pooling, scale-bias, batch-norm folding
// (static and during QAT), post-training calibration and the resolved quantized model.
//
// Gradients are compared with PyTorch autograd of the same formula (tests/util/torch_oracle.h),
// evaluated in float64 on the same float32 inputs: relative error max|ours - torch| / max|torch|
// <= 1e-6 for every compared tensor.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "persist/checkpoint.h"
#include "config/model_file.h"
#include "config/run_config.h"
#include "nn/layers.h"
#include "ops/ops.h"
#include "quant/bn_fold.h"
#include "train/calibration.h"
#include "quant/guard.h"
#include "quant/presets.h"
#include "quant/qat.h"
#include "quant/qat_ops.h"
#include "quant/quant_layers.h"
#include "quant/quant_meta.h"
#include "quant/quantizer.h"
#include "quant/recipe.h"
#include "quant/resolved_model.h"
#include "train/trainer.h"
#include "util/gradcheck.h"
#include "util/torch_oracle.h"

namespace {

using lowbit::Error;
using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace q = lowbit::quant;
namespace nn = lowbit::nn;
namespace ops = lowbit::ops;
namespace lt = lowbit::testing;

const std::string kSrc = LOWBIT_SOURCE_DIR;

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

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A model file with a `quant:` recipe given as YAML text.
struct Built {
  lowbit::config::BuiltModel m;
  q::QuantRecipe recipe;
};
Built build(const std::string& model_file, const std::string& recipe_yaml, uint64_t seed = 1) {
  Built b;
  b.m = lowbit::config::build_model(kSrc + "/" + model_file, {}, seed);
  lowbit::io::YamlSource src;
  src.file = "recipe.yaml";
  b.recipe = q::parse_recipe(YAML::Load(recipe_yaml), src);
  q::apply_recipe(*b.m.graph, b.recipe);
  return b;
}


// A small run config (YAML text) over the first few Fashion-MNIST samples.
std::string small_run(const std::string& model, const std::string& quant, const std::string& extra = "") {
  return "model: {path: " + kSrc + "/" + model + "}\n" +
         "data: {mean: [0.2860], std: [0.3530], train_limit: 512, test_limit: 200}\n" +
         "optimizer: {name: sgd, lr: 0.05, momentum: 0.9}\n" + "train: {epochs: 1, batch_size: 64, seed: 0}\n" +
         "quant:\n" + quant + extra;
}

lowbit::config::RunConfig run_config(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return lowbit::config::load_run_config_text(text, "test.yaml", kSrc, overrides);
}

std::string temp_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("lowbit_qat_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
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

Variable param(nn::Module& m, const std::string& name) {
  for (auto& [n, p] : m.named_parameters())
    if (n == name) return p;
  ADD_FAILURE() << "no parameter " << name;
  return Variable();
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

// ---- 3. Quantization metadata (QuantTensor) -----------------------------------------------

namespace meta_tests {

float f(const Tensor& t, int64_t i = 0) { return t.contiguous().f32()[i]; }

const q::NodeMeta& node(const std::vector<q::NodeMeta>& m, const std::string& name) {
  for (const auto& n : m)
    if (n.name == name) return n;
  throw Error("no node " + name);
}

TEST(QuantMeta, LeNetConvLinearScalesAndAccumulatorBits) {
  auto b = build("models/lenet5.yaml",
                 "weights: {preset: Int8WeightPerChannelFloat}\n"
                 "activations: Uint8ActPerTensorFloat\n"
                 "input: {preset: Int8ActPerTensorFloat, bits: 8}\n"
                 "bias: Int16Bias\n"
                 "bits: 4\nfirst_last_bits: 8\n");
  Rng rng(7);
  b.m.graph->eval();
  b.m.graph->forward(Variable(lt::random_tensor({2, 1, 28, 28}, rng)));
  const auto m = q::trace_quant_meta(*b.m.graph);
  const q::QuantMeta& in = node(m, "input_quant").output;
  ASSERT_TRUE(in.valid());
  EXPECT_EQ(in.bits, 8);
  EXPECT_TRUE(in.is_signed);
  // conv1: s_in * s_w per output channel; 8-bit input, 8-bit weights, 5x5x1 terms, 16-bit bias:
  // ceil(log2(255 * 255 * 25)) = 21, max(21, 16) + 1 = 22.
  const q::QuantMeta& c1 = node(m, "conv1").output;
  ASSERT_TRUE(c1.valid()) << c1.why;
  auto* conv1 = dynamic_cast<q::QuantWeightLayer*>(b.m.graph->nodes()[b.m.graph->find("conv1")].module.get());
  const Tensor sw = conv1->weight_quant().meta().scale;
  ASSERT_EQ(c1.scale.numel(), 6);
  for (int64_t c = 0; c < 6; ++c) EXPECT_EQ(f(c1.scale, c), f(in.scale) * f(sw, c));
  EXPECT_EQ(c1.axis, 1);
  EXPECT_EQ(c1.bits, 22);
  EXPECT_TRUE(c1.is_signed);
  EXPECT_EQ(c1.shape, Shape({2, 6, 28, 28}));
  EXPECT_EQ(node(m, "conv1").inputs.at(0).bits, 8);  // the layer's input metadata
  // relu1 requantizes (4-bit unsigned); pool1 (max) keeps it with the pooled shape.
  const q::QuantMeta& r1 = node(m, "relu1").output;
  EXPECT_EQ(r1.bits, 4);
  EXPECT_FALSE(r1.is_signed);
  const q::QuantMeta& p1 = node(m, "pool1").output;
  EXPECT_EQ(f(p1.scale), f(r1.scale));
  EXPECT_EQ(p1.bits, 4);
  EXPECT_EQ(p1.shape, Shape({2, 6, 14, 14}));
  // conv2: 4-bit in, 4-bit weights, 5*5*6 = 150 terms: ceil(log2(15*15*150)) = 16; bias 16: 17.
  EXPECT_EQ(node(m, "conv2").output.bits, 17);
  // flatten keeps the per-tensor scale of relu2; fc1 multiplies it in.
  const q::QuantMeta& fl = node(m, "flatten").output;
  EXPECT_EQ(f(fl.scale), f(node(m, "relu2").output.scale));
  EXPECT_EQ(fl.shape, Shape({2, 400}));
  // fc1: ceil(log2(15 * 15 * 400)) = 17, bias 16: 18.
  EXPECT_EQ(node(m, "fc1").output.bits, 18);
  EXPECT_EQ(node(m, "fc1").output.scale.numel(), 120);
  // The formatted trace names every node.
  const std::string text = q::format_quant_meta(m);
  EXPECT_NE(text.find("conv1 (quant_conv2d): 22-bit signed"), std::string::npos) << text;
}

TEST(QuantMeta, FloatBiasAndFloatLayersHaveNoMetadata) {
  auto b = build("models/lenet5.yaml", "weights: Int8WeightPerTensorFloat\nactivations: Uint8ActPerTensorFloat\n");
  Rng rng(7);
  b.m.graph->forward(Variable(lt::random_tensor({2, 1, 28, 28}, rng)));
  const auto m = q::trace_quant_meta(*b.m.graph);
  EXPECT_FALSE(node(m, "conv1").output.valid());
  EXPECT_NE(node(m, "conv1").output.why.find("model input is not quantized"), std::string::npos) << node(m, "conv1").output.why;
  const q::QuantMeta& c2 = node(m, "conv2").output;  // quantized input, but a float bias
  EXPECT_FALSE(c2.valid());
  EXPECT_NE(c2.why.find("bias of conv2 is float"), std::string::npos) << c2.why;
  EXPECT_TRUE(node(m, "pool2").output.valid());
}

TEST(QuantMeta, FlattenReshapesPerChannelScales) {
  // Per-channel (C) activation scales over (N, C, H, W): after flatten, feature c*H*W + k has
  // channel c's scale (Brevitas keeps the (C) scale and mis-broadcasts it over C*H*W features).
  auto g = std::make_shared<nn::Graph>();
  q::QuantizerConfig c = q::preset("Int8ActPerTensorFloat");
  c.per_channel = true;
  c.channel_axis = 1;
  c.scale_impl = q::ScaleImpl::stats;
  c.stat = q::ScaleStat::max_abs;
  g->add("quant", std::make_shared<q::QuantAct>(nullptr, c, 3));
  g->add("flatten", std::make_shared<nn::Flatten>());
  q::assign_quantizer_paths(*g);
  Rng rng(8);
  Tensor xt = lt::random_tensor({2, 3, 2, 4}, rng);
  for (int64_t i = 0; i < 8; ++i) xt.f32()[8 + i] *= 10.f;  // channel 1 has a 10x range
  Variable y = g->forward(Variable(xt));
  const auto m = q::trace_quant_meta(*g);
  const q::QuantMeta& qm = node(m, "quant").output, &fm = node(m, "flatten").output;
  ASSERT_EQ(qm.scale.numel(), 3);
  ASSERT_TRUE(fm.valid()) << fm.why;
  ASSERT_EQ(fm.scale.numel(), 24);
  EXPECT_EQ(fm.axis, 1);
  EXPECT_EQ(fm.shape, Shape({2, 24}));
  for (int64_t feat = 0; feat < 24; ++feat) EXPECT_EQ(f(fm.scale, feat), f(qm.scale, feat / 8)) << feat;
  // The flattened metadata describes the flattened tensor: re-quantizing it per feature with the
  // expanded scales changes nothing, and every value is an integer multiple of its scale.
  q::FakeQuantSpec spec;
  spec.elem.qmin = -128;
  spec.elem.qmax = 127;
  spec.axis = 1;
  Variable again = q::fake_quant(y, Variable(fm.scale), Tensor(), spec);
  EXPECT_EQ(lt::max_abs_diff(again.data(), y.data()), 0.f);
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float v = y.data().f32()[i] / f(fm.scale, i % 24);
    EXPECT_NEAR(v, std::nearbyint(v), 1e-4) << i;
  }
}

TEST(QuantMeta, AvgPoolDividesScaleAndAddsBits) {
  auto g = std::make_shared<nn::Graph>();
  q::QuantizerConfig c = q::preset("Uint8ActPerTensorFloat");
  c.bits = 4;
  c.scale_impl = q::ScaleImpl::constant;
  c.scale_init = 3.0;  // s = 3 / 15 = 0.2
  g->add("quant", std::make_shared<q::QuantAct>(nullptr, c));
  ops::Pool2dOptions po;
  po.kernel_h = po.kernel_w = 2;
  po.stride_h = po.stride_w = 2;
  g->add("pool", std::make_shared<nn::Pool2d>(nn::PoolKind::avg, po));
  g->add("gap", std::make_shared<nn::Pool2d>(nn::PoolKind::global_avg, po));
  q::assign_quantizer_paths(*g);
  Rng rng(9);
  g->forward(Variable(lt::random_tensor({2, 3, 8, 8}, rng, 0.f, 3.f)));
  const auto m = q::trace_quant_meta(*g);
  EXPECT_FLOAT_EQ(f(node(m, "quant").output.scale), 0.2f);
  EXPECT_FLOAT_EQ(f(node(m, "pool").output.scale), 0.2f / 4);
  EXPECT_EQ(node(m, "pool").output.bits, 6);  // ceil(log2(15 * 4))
  EXPECT_EQ(node(m, "pool").output.shape, Shape({2, 3, 4, 4}));
  EXPECT_FLOAT_EQ(f(node(m, "gap").output.scale), 0.2f / 4 / 16);
  EXPECT_EQ(node(m, "gap").output.bits, 10);  // ceil(log2((2^6 - 1) * 16))
}

TEST(QuantMeta, AccumulatorBitsFormula) {
  EXPECT_EQ(q::accumulator_bits(8, 8, 25), 21);   // 255*255*25 = 1,625,625
  EXPECT_EQ(q::accumulator_bits(4, 4, 150), 16);  // 33,750
  EXPECT_EQ(q::accumulator_bits(1, 1, 64), 6);    // binary: 64 -> 6
  EXPECT_EQ(q::accumulator_bits(2, 2, 1), 4);     // 9 -> 3.17 -> 4
}

// y = linear(x_q, W_q, b_q) with the bias on the s_in * s_w grid.
TEST(ExternalBias, Int8BiasValuesAndGradient) {
  Rng rng(12);
  auto g = std::make_shared<nn::Graph>();
  q::QuantizerConfig in = q::preset("Int8ActPerTensorFloat");
  in.scale_impl = q::ScaleImpl::constant;
  in.scale_init = 2.0;  // s_in = 2 / 128
  g->add("input_quant", std::make_shared<q::QuantAct>(nullptr, in));
  nn::LinearOptions lo;
  lo.in_features = 6;
  lo.out_features = 4;
  auto lin = std::make_shared<nn::Linear>(lo, rng);
  g->add("fc", std::make_shared<q::QuantWeightLayer>(lin, q::preset("Int8WeightPerChannelFloat"), q::preset("Int8Bias")));
  q::assign_quantizer_paths(*g);
  q::connect_meta_sources(*g);
  auto* fc = dynamic_cast<q::QuantWeightLayer*>(g->nodes()[1].module.get());
  Tensor x = lt::random_tensor({3, 6}, rng, -2.f, 2.f);
  g->forward(Variable(x));
  const float s_in = 2.f / 128.f;
  EXPECT_FLOAT_EQ(f(fc->bias_quant()->meta().scale, 0), s_in * f(fc->weight_quant().meta().scale, 0));
  Tensor sb = fc->bias_quant()->meta().scale.clone();
  ASSERT_EQ(sb.numel(), 4);
  for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(f(sb, c), s_in * f(fc->weight_quant().meta().scale, c));  // float32 once
  // Biases on a tie (2.5 -> 2), far below and above the 8-bit range, and inside it.
  const float mult[4] = {2.5f, -1000.f, 1000.f, -37.2f};
  const float want_int[4] = {2.f, -128.f, 127.f, -37.f};
  for (int64_t c = 0; c < 4; ++c) fc->bias().data().f32()[c] = mult[c] * f(sb, c);
  Variable y = g->forward(Variable(x));
  const Tensor bq = [&] {
    Tensor t = Tensor::empty({4});
    for (int64_t c = 0; c < 4; ++c) t.f32()[c] = want_int[c] * f(sb, c);
    return t;
  }();
  EXPECT_EQ(f(fc->bias_quant()->meta().scale, 3), f(sb, 3));
  EXPECT_EQ(fc->bias_quant()->meta().bits, 8);
  // Same output as the linear op with the expected integer bias.
  q::QuantAct& iq = dynamic_cast<q::QuantAct&>(*g->nodes()[0].module);
  const Variable xq = iq.forward(Variable(x));
  const Variable wq = fc->weight_quant().forward(fc->weight());
  const Tensor want = ops::linear(xq, wq, Variable(bq)).data();
  EXPECT_EQ(lt::max_abs_diff(y.data(), want), 0.f);
  // Not straight-through: clamped bias elements get no gradient.
  for (auto& [n, p] : g->named_parameters()) p.clear_grad();
  const Tensor r = lt::random_tensor(y.shape(), rng);
  Variable y2 = g->forward(Variable(x));
  y2.backward(r);
  const Tensor gb = fc->bias().grad();
  EXPECT_FLOAT_EQ(f(gb, 0), f(r, 0) + f(r, 4) + f(r, 8));
  EXPECT_EQ(f(gb, 1), 0.f);
  EXPECT_EQ(f(gb, 2), 0.f);
  EXPECT_FLOAT_EQ(f(gb, 3), f(r, 3) + f(r, 7) + f(r, 11));
  // Output metadata: s_in * s_w, max(ceil(log2(255 * 255 * 6)), 8) + 1 = 20 bits.
  const auto m = q::trace_quant_meta(*g);
  EXPECT_EQ(node(m, "fc").output.bits, 20);
}

TEST(ExternalBias, Int16AndInt32Presets) {
  for (auto [name, bits] : std::vector<std::pair<std::string, int>>{{"Int8Bias", 8}, {"Int16Bias", 16}, {"Int32Bias", 32}}) {
    const q::QuantizerConfig c = q::preset(name);
    EXPECT_TRUE(c.external_scale) << name;
    EXPECT_EQ(c.bits, bits) << name;
    EXPECT_TRUE(c.is_signed && !c.narrow && !c.ste_clamp && !c.zero_point) << name;
    EXPECT_EQ(q::quant_min(c), -(int64_t{1} << (bits - 1))) << name;
    EXPECT_EQ(q::quant_max(c), (int64_t{1} << (bits - 1)) - 1) << name;
  }
}

TEST(ExternalBias, NeedsAQuantizerUpstream) {
  // No input quantizer: conv1 reads the float model input.
  std::string msg = error_of([] {
    build("models/lenet5.yaml", "weights: Int8WeightPerTensorFloat\nactivations: Uint8ActPerTensorFloat\nbias: Int32Bias\n");
  });
  EXPECT_NE(msg.find("layer 'conv1'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Int32Bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("no quantizer upstream"), std::string::npos) << msg;
  EXPECT_NE(msg.find("the model input"), std::string::npos) << msg;
  // An activation left in float in front of fc2.
  msg = error_of([] {
    build("models/lenet5.yaml",
          "weights: Int8WeightPerTensorFloat\nactivations: Uint8ActPerTensorFloat\ninput: Int8ActPerTensorFloat\n"
          "bias: Int32Bias\nfloat: [relu3]\nlayers:\n  fc1: {bias: Int8BiasPerTensorFloatInternalScaling}\n");
  });
  EXPECT_NE(msg.find("layer 'fc2'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'fc1' (quant_linear: its bias is not on the s_in * s_w grid)"), std::string::npos) << msg;
  // A quantizer with an external scale cannot quantize a tensor by itself.
  msg = error_of([] {
    q::Quantizer z(q::preset("Int8Bias"));
    z.forward(Variable(Tensor::zeros({3})));
  });
  EXPECT_NE(msg.find("input and weight scales"), std::string::npos) << msg;
  // A bias quantizer with external scale in a layer used outside a graph.
  msg = error_of([] {
    Rng rng(1);
    nn::LinearOptions lo;
    lo.in_features = 2;
    lo.out_features = 2;
    q::QuantWeightLayer l(std::make_shared<nn::Linear>(lo, rng), q::preset("Int8WeightPerTensorFloat"), q::preset("Int8Bias"));
    l.forward(Variable(Tensor::zeros({1, 2})));
  });
  EXPECT_NE(msg.find("no quantization metadata"), std::string::npos) << msg;
}

TEST(Accumulator, SaturateAndTruncate) {
  Rng rng(13);
  for (bool truncate : {false, true}) {
    auto g = std::make_shared<nn::Graph>();
    q::QuantizerConfig in = q::preset("Uint8ActPerTensorFloat");
    in.scale_impl = q::ScaleImpl::constant;
    in.scale_init = 1.0;
    g->add("input_quant", std::make_shared<q::QuantAct>(nullptr, in));
    nn::LinearOptions lo;
    lo.in_features = 16;
    lo.out_features = 3;
    lo.bias = false;
    auto layer = std::make_shared<q::QuantWeightLayer>(std::make_shared<nn::Linear>(lo, rng),
                                                       q::preset("Int8WeightPerTensorFloat"), std::nullopt);
    layer->set_accumulator({10, truncate});
    g->add("fc", layer);
    q::assign_quantizer_paths(*g);
    q::connect_meta_sources(*g);
    Variable x(lt::random_tensor({4, 16}, rng, 0.f, 1.f), true);
    Variable y = g->forward(x);
    // Reference: the integer accumulator of the float layer's output.
    const float s_in = 1.f / 255.f, s_w = layer->weight_quant().meta().scale.f32()[0];
    const float s_acc = s_in * s_w;
    const int nat = q::accumulator_bits(8, 8, 16);  // 21
    const int shift = truncate ? nat - 10 : 0;
    const auto meta = q::trace_quant_meta(*g);
    EXPECT_EQ(node(meta, "fc").output.bits, 10);
    EXPECT_FLOAT_EQ(f(node(meta, "fc").output.scale), s_acc * std::ldexp(1.f, shift));
    Variable xq = dynamic_cast<q::QuantAct&>(*g->nodes()[0].module).forward(x);
    const Tensor acc = ops::linear(xq, layer->weight_quant().forward(layer->weight()), Variable()).data();
    int clamped = 0;
    for (int64_t i = 0; i < acc.numel(); ++i) {
      const double n = std::nearbyint(acc.f32()[i] / s_acc);
      double m = truncate ? std::floor(n / std::ldexp(1.0, shift)) : n;
      const double lo2 = -512, hi2 = 511;
      clamped += m < lo2 || m > hi2;
      m = std::min(hi2, std::max(lo2, m));
      EXPECT_FLOAT_EQ(y.data().f32()[i], static_cast<float>(m * std::ldexp(1.0, shift) * s_acc)) << i;
    }
    if (!truncate) {
      EXPECT_GT(clamped, 0) << "the test should saturate some outputs";
    }
  }
}

}  // namespace meta_tests

// ---- 4. Shared quantizers (add / concat), truncating average pool, scale-bias -------------

namespace shared_tests {

using meta_tests::f;
using meta_tests::node;

// A model file written to a temporary folder.
std::string model_file(const std::string& name, const std::string& text) {
  const std::string dir = temp_dir("models");
  const std::string p = dir + "/" + name + ".yaml";
  std::ofstream(p) << text;
  return p;
}

Built build_abs(const std::string& path, const std::string& recipe_yaml, uint64_t seed = 1) {
  Built b;
  b.m = lowbit::config::build_model(path, {}, seed);
  lowbit::io::YamlSource src;
  src.file = "recipe.yaml";
  b.recipe = q::parse_recipe(YAML::Load(recipe_yaml), src);
  q::apply_recipe(*b.m.graph, b.recipe);
  return b;
}

TEST(SharedQuant, ResNetAddsShareOneQuantizer) {
  auto b = build("models/resnet8.yaml",
                 "weights: Int8WeightPerChannelFloat\nactivations: Uint8ActPerTensorFloat\n"
                 "input: Int8ActPerTensorFloat\nbits: 4\nadd: shared\n");
  auto& g = *b.m.graph;
  for (const char* n : {"stage1_add", "stage2_add", "stage3_add"})
    EXPECT_EQ(g.nodes()[g.find(n)].module->type_name(), "quant_eltwise_add") << n;
  Rng rng(21);
  g.train();
  g.forward(Variable(lt::random_tensor({2, 3, 32, 32}, rng)));
  const auto m = q::trace_quant_meta(g);
  const q::QuantMeta& a = node(m, "stage1_add").output;
  ASSERT_TRUE(a.valid()) << a.why;
  EXPECT_EQ(a.bits, 5);  // two 4-bit inputs (signed_activations = activations made signed): 4 + 1
  EXPECT_TRUE(a.is_signed);
  EXPECT_EQ(a.shape, Shape({2, 16, 32, 32}));
  // The add's output is on the shared grid: every value is an integer multiple of the scale.
  auto& add = dynamic_cast<q::QuantShared&>(*g.nodes()[g.find("stage1_add")].module);
  Variable x1(lt::random_tensor({1, 16, 4, 4}, rng, -3.f, 3.f)), x2(lt::random_tensor({1, 16, 4, 4}, rng, -0.1f, 0.1f));
  Variable y = add.forward_multi({x1, x2});
  const float s = f(add.input_quant().meta().scale);
  int nonzero_small = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float k = y.data().f32()[i] / s;
    EXPECT_NEAR(k, std::nearbyint(k), 1e-3) << i;
    nonzero_small += std::fabs(x2.data().f32()[i]) > 0.5f * s;
  }
  // One scale for both (from both inputs' statistics): the small input is quantized coarsely too.
  (void)nonzero_small;
  // Statistics were taken over both inputs: the scale covers the larger one.
  EXPECT_GE(s * 8.f, 2.5f);
}

TEST(SharedQuant, RequireEqualErrorsWhenInputsCannotShare) {
  // ResNet-8's first add reads a batch norm (not quantized) and a relu (quantized).
  std::string msg = error_of([] {
    build("models/resnet8.yaml", "weights: Int8WeightPerChannelFloat\nactivations: Uint8ActPerTensorFloat\n"
                                 "input: Int8ActPerTensorFloat\nadd: require_equal\n");
  });
  EXPECT_NE(msg.find("quant.add: require_equal"), std::string::npos) << msg;
  EXPECT_NE(msg.find("add 'stage1_add' cannot share a scale"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'stage1_bn2'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("quant.add: shared"), std::string::npos) << msg;
  // Two different quantizers feeding one add.
  const std::string two = model_file("two", R"(name: two
input: [2, 4, 4]
layers:
  - {name: a, type: relu}
  - {name: b, type: relu6, from: input}
  - {name: sum, type: add, from: [a, b]}
  - {name: flatten, type: flatten}
)");
  msg = error_of([&] {
    build_abs(two, "activations: Uint8ActPerTensorFloat\ninput: Int8ActPerTensorFloat\nadd: require_equal\n");
  });
  EXPECT_NE(msg.find("add 'sum' cannot share a scale"), std::string::npos) << msg;
  EXPECT_NE(msg.find("quantizer a.act_quant"), std::string::npos) << msg;
  EXPECT_NE(msg.find("quantizer b.act_quant"), std::string::npos) << msg;
  // One quantizer feeding both inputs (through a max pool and a dropout): accepted, and the add
  // output keeps the grid with one more bit.
  const std::string one = model_file("one", R"(name: one
input: [2, 4, 4]
layers:
  - {name: a, type: relu}
  - {name: p, type: max_pool2d, kernel_size: 1, stride: 1}
  - {name: d, type: dropout, p: 0.5, from: a}
  - {name: sum, type: add, from: [p, d]}
  - {name: flatten, type: flatten}
)");
  auto ok = build_abs(one, "activations: Uint8ActPerTensorFloat\nadd: require_equal\n");
  Rng rng(22);
  ok.m.graph->eval();
  ok.m.graph->forward(Variable(lt::random_tensor({2, 2, 4, 4}, rng)));
  const auto m = q::trace_quant_meta(*ok.m.graph);
  ASSERT_TRUE(node(m, "sum").output.valid()) << node(m, "sum").output.why;
  EXPECT_EQ(node(m, "sum").output.bits, 9);
  // A per-channel shared quantizer cannot serve inputs whose channels are summed.
  msg = error_of([] {
    build("models/resnet8.yaml", "weights: Int8WeightPerChannelFloat\nactivations: Uint8ActPerTensorFloat\n"
                                 "add: shared\nshared_quantizer: {preset: Int8ActPerTensorFloat, per_channel: true}\n");
  });
  EXPECT_NE(msg.find("the inputs of add 'stage1_add' cannot share one quantizer"), std::string::npos) << msg;
  // Float adds without sharing: the metadata says why there is none.
  auto fl = build("models/resnet8.yaml", "weights: Int8WeightPerChannelFloat\nactivations: Uint8ActPerTensorFloat\n");
  fl.m.graph->forward(Variable(lt::random_tensor({1, 3, 32, 32}, rng)));
  const auto fm = q::trace_quant_meta(*fl.m.graph);
  EXPECT_FALSE(node(fm, "stage1_add").output.valid());
  EXPECT_NE(node(fm, "stage1_add").output.why.find("stage1_bn2"), std::string::npos) << node(fm, "stage1_add").output.why;
}

TEST(SharedQuant, ConcatShared) {
  const std::string cat = model_file("cat", R"(name: cat
input: [2, 4, 4]
layers:
  - {name: a, type: relu}
  - {name: b, type: tanh, from: input}
  - {name: c, type: concat, from: [a, b]}
  - {name: flatten, type: flatten}
)");
  auto b = build_abs(cat, "activations: Uint8ActPerTensorFloat\nsigned_activations: Int8ActPerTensorFloat\n"
                          "concat: shared\n");
  EXPECT_EQ(b.m.graph->nodes()[b.m.graph->find("c")].module->type_name(), "quant_cat");
  Rng rng(23);
  b.m.graph->train();
  Variable y = b.m.graph->forward(Variable(lt::random_tensor({3, 2, 4, 4}, rng, -2.f, 2.f)));
  const auto m = q::trace_quant_meta(*b.m.graph);
  const q::QuantMeta& c = node(m, "c").output;
  ASSERT_TRUE(c.valid()) << c.why;
  EXPECT_EQ(c.bits, 8);
  EXPECT_EQ(c.shape, Shape({3, 4, 4, 4}));
  EXPECT_EQ(node(m, "flatten").output.shape, Shape({3, 64}));
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float k = y.data().f32()[i] / f(c.scale);
    EXPECT_NEAR(k, std::nearbyint(k), 1e-3);
  }
}

TEST(TruncAvgPool, FloorsTheWindowAverage) {
  auto g = std::make_shared<nn::Graph>();
  q::QuantizerConfig c = q::preset("Uint8ActPerTensorFloat");
  c.bits = 4;
  c.scale_impl = q::ScaleImpl::constant;
  c.scale_init = 1.5;  // s = 0.1
  g->add("quant", std::make_shared<q::QuantAct>(nullptr, c));
  ops::Pool2dOptions po;
  po.kernel_h = po.kernel_w = 2;
  po.stride_h = po.stride_w = 2;
  g->add("pool", std::make_shared<q::QuantAvgPool>(std::make_shared<nn::Pool2d>(nn::PoolKind::avg, po), 4));
  q::assign_quantizer_paths(*g);
  q::connect_meta_sources(*g);
  Rng rng(24);
  Variable x(lt::random_tensor({2, 3, 4, 6}, rng, 0.f, 1.6f), true);
  Variable y = g->forward(x);
  const Tensor xq = dynamic_cast<q::QuantAct&>(*g->nodes()[0].module).forward(x).data();
  const float s = 1.5f / 15.f;
  // int4 window sum (6 bits) truncated by 2 bits back to 4 bits: floor(sum / 4) * s.
  for (int64_t n = 0; n < 2 * 3; ++n)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        double sum = 0;
        for (int64_t di = 0; di < 2; ++di)
          for (int64_t dj = 0; dj < 2; ++dj) sum += std::nearbyint(xq.f32()[n * 24 + (2 * i + di) * 6 + 2 * j + dj] / s);
        const float want = static_cast<float>(std::floor(sum / 4) * 4 * (s / 4));
        EXPECT_FLOAT_EQ(y.data().f32()[n * 6 + i * 3 + j], want);
      }
  const auto m = q::trace_quant_meta(*g);
  EXPECT_EQ(node(m, "pool").output.bits, 4);
  EXPECT_FLOAT_EQ(f(node(m, "pool").output.scale), s);
  // Gradient: the average pool's (1/4 per element), straight through the floor.
  y.backward(Tensor::full(y.shape(), 1.f));
  float lo = 1e9f, hi = -1e9f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    lo = std::min(lo, x.grad().f32()[i]);
    hi = std::max(hi, x.grad().f32()[i]);
  }
  EXPECT_FLOAT_EQ(hi, 0.25f);
  EXPECT_GE(lo, 0.f);
  // In a recipe: ResNet-8's global average pool, and the error without a quantized input.
  auto b = build("models/resnet8.yaml", "weights: Int8WeightPerChannelFloat\nactivations: Uint8ActPerTensorFloat\n"
                                        "bits: 4\navg_pool: {bits: 4}\n");
  EXPECT_EQ(b.m.graph->nodes()[b.m.graph->find("pool")].module->type_name(), "quant_avg_pool2d");
  b.m.graph->forward(Variable(lt::random_tensor({1, 3, 32, 32}, rng)));
  const auto bm = q::trace_quant_meta(*b.m.graph);
  EXPECT_EQ(node(bm, "pool").output.bits, 4);
  const std::string msg = error_of([] {
    build("models/resnet8.yaml", "weights: Int8WeightPerChannelFloat\nactivations: Uint8ActPerTensorFloat\n"
                                 "avg_pool: trunc\nfloat: [stage3_relu]\n");
  });
  EXPECT_NE(msg.find("truncating average pool 'pool'"), std::string::npos) << msg;
}

TEST(ScaleBias, QuantScaleBiasAndBatchNormConversion) {
  Rng rng(25);
  nn::BatchNorm2dOptions o;
  o.num_features = 3;
  nn::BatchNorm2d bn(o);
  for (auto& [n, p] : bn.named_parameters()) p.data().copy_from(lt::random_tensor({3}, rng, 0.5f, 1.5f));
  for (auto& [n, t] : bn.named_buffers()) {
    if (n == "running_mean") t->copy_from(lt::random_tensor({3}, rng, -1.f, 1.f));
    if (n == "running_var") t->copy_from(lt::random_tensor({3}, rng, 0.5f, 2.f));
  }
  bn.eval();
  Variable x(lt::random_tensor({2, 3, 4, 4}, rng));
  const Tensor want = bn.forward(x).data();
  auto sb = q::batchnorm_to_scale_bias(bn, std::nullopt, std::nullopt);
  sb->eval();
  EXPECT_LE(lt::max_abs_diff(sb->forward(x).data(), want), 1e-5f);
  // Quantized weights (8-bit per tensor) and output.
  auto qsb = q::batchnorm_to_scale_bias(bn, q::preset("Int8WeightPerTensorFloat"), q::preset("Int8ActPerTensorFloat"));
  qsb->train();
  Variable y = qsb->forward(x);
  EXPECT_LE(lt::max_abs_diff(y.data(), want), 0.05f);
  EXPECT_EQ(qsb->type_name(), "quant_scale_bias");
  ASSERT_TRUE(qsb->weight_quant() && qsb->output_quant());
  EXPECT_TRUE(qsb->output_quant()->meta().valid());
  ops::sum(y).backward();
  EXPECT_TRUE(qsb->weight().grad().defined());
  EXPECT_TRUE(qsb->bias().grad().defined());
}

}  // namespace shared_tests

// ---- 5. Batch-norm folding ----------------------------------------------------------------

namespace fold_tests {

using meta_tests::f;

void randomize_bn(nn::Graph& g, Rng& rng) {
  for (auto& [n, p] : g.named_parameters())
    if (n.find("bn") != std::string::npos) p.data().copy_from(lt::random_tensor(p.shape(), rng, 0.5f, 1.5f));
  for (auto& [n, t] : g.named_buffers()) {
    if (n.find("running_mean") != std::string::npos) t->copy_from(lt::random_tensor(t->shape(), rng, -0.5f, 0.5f));
    if (n.find("running_var") != std::string::npos) t->copy_from(lt::random_tensor(t->shape(), rng, 0.5f, 2.f));
  }
}

Tensor param_data(nn::Module& m, const std::string& name) { return param(m, name).data(); }

TEST(BnFold, StaticMergeKeepsTheFloatModel) {
  for (const char* model : {"models/resnet8.yaml", "models/tfc.yaml"}) {
    auto m = lowbit::config::build_model(kSrc + "/" + model, {}, 3);
    Rng rng(31);
    randomize_bn(*m.graph, rng);
    m.graph->eval();
    Tensor x = lt::random_tensor({2, m.input[0], m.input[1], m.input[2]}, rng);
    const Tensor before = m.graph->forward(Variable(x)).data();
    const int n = q::merge_batchnorm(*m.graph);
    EXPECT_EQ(n, std::string(model) == "models/tfc.yaml" ? 3 : 7) << model;
    for (const auto& node : m.graph->nodes()) EXPECT_EQ(node.module->type_name().find("batch_norm"), std::string::npos);
    const Tensor after = m.graph->forward(Variable(x)).data();
    EXPECT_LE(lt::max_rel_diff(after, before), 1e-4f) << model;
    // Layers without bias got one: b' = beta - m * g / sqrt(v + eps).
    bool has_bias = false;
    for (auto& [name, p] : m.graph->named_parameters()) has_bias = has_bias || name == (std::string(model) == "models/tfc.yaml" ? "fc1.bias" : "conv1.bias");
    EXPECT_TRUE(has_bias) << model;
  }
}

TEST(BnFold, FoldingDuringQatAfterDelay) {
  auto b = build("models/resnet8.yaml",
                 "weights: {preset: Int8WeightPerChannelFloat, scale_impl: parameter_from_stats, collect_steps: 1}\n"
                 "activations: Uint8ActPerTensorFloat\ninput: Int8ActPerTensorFloat\nbits: 4\nfirst_last_bits: 8\n"
                 "bn_fold: {delay_epochs: 1}\n");
  auto& g = *b.m.graph;
  EXPECT_EQ(b.recipe.bn_fold_delay, 1);
  auto* conv = dynamic_cast<q::QuantWeightLayer*>(g.nodes()[g.find("stage1_conv1")].module.get());
  ASSERT_TRUE(conv && conv->batchnorm());
  EXPECT_EQ(g.nodes()[g.find("stage1_bn1")].module.get(), conv->batchnorm());
  EXPECT_EQ(conv->fold_delay(), 1);
  // The shortcut convs have no batch norm after them.
  EXPECT_EQ(dynamic_cast<q::QuantWeightLayer*>(g.nodes()[g.find("stage2_shortcut")].module.get())->batchnorm(), nullptr);
  Rng rng(32);
  randomize_bn(g, rng);
  Tensor x = lt::random_tensor({4, 3, 32, 32}, rng);
  // Epoch 0: batch norm trains normally (running statistics move).
  q::start_epoch(g, 0);
  EXPECT_FALSE(conv->folded());
  g.train();
  const Tensor mean0 = conv->batchnorm()->running_mean().clone();
  g.forward(Variable(x));
  EXPECT_GT(lt::max_abs_diff(conv->batchnorm()->running_mean(), mean0), 0.f);
  // Epoch 1: folded; statistics frozen; the weight threshold restarts from the folded weights.
  q::start_epoch(g, 1);
  ASSERT_TRUE(conv->folded());
  Variable wf, bf;
  {
    lowbit::NoGradGuard ng;
    conv->effective_weight_bias(wf, bf);
  }
  const Tensor value = param_data(g, "stage1_conv1.weight_quant.value");
  {
    lowbit::NoGradGuard ng;
    const Tensor mx = q::abs_max(Variable(wf.data()), 0).data();
    for (int64_t c = 0; c < 16; ++c) EXPECT_EQ(f(value, c), f(mx, c)) << c;
  }
  const Tensor mean1 = conv->batchnorm()->running_mean().clone();
  const Tensor var1 = conv->batchnorm()->running_var().clone();
  for (auto& [n, p] : g.named_parameters()) p.clear_grad();
  Variable y = g.forward(Variable(x));
  EXPECT_EQ(lt::max_abs_diff(conv->batchnorm()->running_mean(), mean1), 0.f);
  ops::sum(y).backward();
  EXPECT_TRUE(param(g, "stage1_bn1.weight").grad().defined()) << "no gradient to gamma through the fold";
  EXPECT_TRUE(param(g, "stage1_bn1.bias").grad().defined()) << "no gradient to beta through the fold";
  EXPECT_TRUE(param(g, "stage1_conv1.weight").grad().defined());
  // The folded conv computes conv(x, Q(W * g / sqrt(v + eps)), beta - m * g / sqrt(v + eps)).
  Variable xin(lt::random_tensor({2, 16, 8, 8}, rng));
  g.eval();
  const Tensor got = conv->forward(xin).data();
  const Tensor w = param_data(g, "stage1_conv1.weight");
  const Tensor gm = param_data(g, "stage1_bn1.weight"), bt = param_data(g, "stage1_bn1.bias");
  Tensor w_f = w.clone(), b_f = Tensor::empty({16});
  for (int64_t c = 0; c < 16; ++c) {
    const float k = f(gm, c) * (1.f / std::sqrt(f(var1, c) + 1e-5f));
    for (int64_t i = 0; i < 144; ++i) w_f.f32()[c * 144 + i] *= k;
    b_f.f32()[c] = f(bt, c) + (-f(mean1, c)) * k;
  }
  q::Quantizer ref(conv->weight_quant().config(), 16);
  for (auto& [n, p] : ref.named_parameters()) p.data().copy_from(param_data(g, "stage1_conv1.weight_quant." + n));
  for (auto& [n, t] : ref.named_buffers())
    for (auto& [m2, t2] : g.named_buffers())
      if (m2 == "stage1_conv1.weight_quant." + n) t->copy_from(*t2);
  ref.eval();
  ops::Conv2dOptions co;
  co.pad_h = co.pad_w = 1;
  const Tensor want = ops::conv2d(xin, ref.forward(Variable(w_f)), Variable(b_f), co).data();
  EXPECT_LE(lt::max_abs_diff(got, want), 1e-5f);
  // The batch norm node is the identity now, and its metadata passes through.
  EXPECT_EQ(lt::max_abs_diff(g.nodes()[g.find("stage1_bn1")].module->forward(xin).data(), xin.data()), 0.f);
  // Static merge of the folded model: the same outputs in eval mode.
  Tensor xe = lt::random_tensor({2, 3, 32, 32}, rng);
  const Tensor before = g.forward(Variable(xe)).data();
  EXPECT_EQ(q::merge_batchnorm(g), 7);
  const Tensor after = g.forward(Variable(xe)).data();
  EXPECT_LE(lt::max_rel_diff(after, before), 1e-5f);
}

TEST(BnFold, BadRecipe) {
  std::string msg = error_of([] { build("models/lenet5.yaml", "weights: Int8WeightPerTensorFloat\nbn_fold: {delay_epochs: 1}\n"); });
  EXPECT_NE(msg.find("quant.bn_fold: no batch norm"), std::string::npos) << msg;
  msg = error_of([] { build("models/resnet8.yaml", "weights: Int8WeightPerTensorFloat\nbn_fold: {delay: 1}\n"); });
  EXPECT_NE(msg.find("delay_epochs"), std::string::npos) << msg;
  msg = error_of([] { build("models/resnet8.yaml", "weights: Int8WeightPerTensorFloat\nbn_fold: {delay_epochs: -2}\n"); });
  EXPECT_NE(msg.find(">= 0"), std::string::npos) << msg;
}

TEST(BnFold, TrainingSwitchesAndCheckpointEvaluatesTheSame) {
  LB_REQUIRE_FASHION_MNIST();
  const std::string text = "model: {path: " + kSrc + "/models/tfc.yaml, params: {in_channels: 1, input_size: 28}}\n" +
                           "data: {mean: [0.2860], std: [0.3530], train_limit: 512, test_limit: 300}\n"
                           "optimizer: {name: adam, lr: 0.01}\n"
                           "train: {epochs: 2, batch_size: 64, seed: 0}\n"
                           "quant:\n  weights: Int8WeightPerTensorFloat\n  signed_activations: Int8ActPerTensorFloat\n"
                           "  input: Int8ActPerTensorFloat\n  bias: Int32Bias\n  bn_fold: {delay_epochs: 1}\n";
  auto cfg = run_config(text);
  lowbit::train::TrainOptions opt;
  opt.quiet = true;
  opt.out_dir = temp_dir("bnfold");
  auto r = lowbit::train::run_training(cfg, opt);
  // The checkpoint says the layers fold; a fresh model loading it evaluates the same.
  auto m = lowbit::train::build_model(cfg);
  lowbit::persist::load_model_state(opt.out_dir + "/last.h5", *m.graph);
  auto* fc1 = dynamic_cast<q::QuantWeightLayer*>(m.graph->nodes()[m.graph->find("fc1")].module.get());
  ASSERT_TRUE(fc1);
  EXPECT_TRUE(fc1->folded());
  auto test = lowbit::train::load_dataset(cfg.data, false);
  lowbit::data::LoaderOptions eo;
  eo.batch_size = 100;
  eo.shuffle = false;
  eo.transforms = lowbit::train::make_transforms(cfg.data, false);
  lowbit::data::DataLoader loader(test, eo);
  auto ev = lowbit::train::evaluate(*m.graph, loader);
  EXPECT_DOUBLE_EQ(ev.acc, r.test_acc);
  EXPECT_GT(r.test_acc, 0.5);
  std::filesystem::remove_all(opt.out_dir);
}

}  // namespace fold_tests

// ---- 6. Post-training calibration ---------------------------------------------------------

namespace calib_tests {

using meta_tests::f;

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
    EXPECT_EQ(cnt.data<int32_t>()[0], qz->config().collect_steps) << name;
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

}  // namespace calib_tests

// ---- 7. The resolved quantized model ------------------------------------------------------

TEST(ResolvedModel, EveryLayerWithItsQuantizers) {
  auto b = build("models/lenet5.yaml",
                 "weights: {preset: Int8WeightPerChannelFloat}\nactivations: {preset: Uint8ActPerTensorFloat}\n"
                 "input: {preset: Int8ActPerTensorFloat, bits: 8}\nbias: Int32Bias\nbits: 4\nfirst_last_bits: 8\n"
                 "float: [fc2]\nlayers:\n  conv2: {weights: {bits: 3, learned_bits: true}, accumulator: {bits: 16}}\n");
  const std::string text = q::resolved_model_yaml(b.m, kSrc + "/models/lenet5.yaml", "test header\nline two");
  EXPECT_EQ(text.rfind("# test header\n# line two\n", 0), 0u) << text.substr(0, 80);
  YAML::Node doc = YAML::Load(text);
  EXPECT_EQ(doc["weight_bits"].as<int64_t>(), 150 * 8 + 2400 * 3 + 48000 * 4 + 10080 * 32 + 840 * 8);
  YAML::Node layers = doc["layers"];
  ASSERT_EQ(layers.size(), 13u);  // input_quant + the 12 layers
  EXPECT_EQ(layers[0]["name"].as<std::string>(), "input_quant");
  EXPECT_EQ(layers[0]["act_quant"]["bits"].as<int>(), 8);
  EXPECT_EQ(layers[0]["output"]["bits"].as<int>(), 8);
  YAML::Node conv1 = layers[1];
  EXPECT_EQ(conv1["type"].as<std::string>(), "quant_conv2d");
  EXPECT_EQ(conv1["float"]["out_channels"].as<int>(), 6);
  EXPECT_EQ(conv1["weights"].as<int>(), 150);
  EXPECT_EQ(conv1["weight_quant"]["preset"].as<std::string>(), "Int8WeightPerChannelFloat");
  EXPECT_EQ(conv1["weight_quant"]["bits"].as<int>(), 8);
  EXPECT_TRUE(conv1["weight_quant"]["per_channel"].as<bool>());
  EXPECT_TRUE(conv1["weight_quant"]["narrow"].as<bool>());
  EXPECT_TRUE(conv1["weight_quant"]["ste_clamp"].as<bool>());
  EXPECT_EQ(conv1["weight_quant"]["int_range"][0].as<int>(), -127);
  EXPECT_EQ(conv1["bias_quant"]["preset"].as<std::string>(), "Int32Bias");
  EXPECT_TRUE(conv1["bias_quant"]["external_scale"].as<bool>());
  EXPECT_EQ(conv1["output"]["bits"].as<int>(), 33);  // max(21, 32) + 1
  EXPECT_EQ(conv1["output_shape"][0].as<int>(), 6);
  YAML::Node conv2 = layers[4];
  EXPECT_EQ(conv2["name"].as<std::string>(), "conv2");
  EXPECT_TRUE(conv2["weight_quant"]["learned_bits"].as<bool>());
  EXPECT_EQ(conv2["weight_quant"]["bits"].as<int>(), 3);
  EXPECT_FALSE(conv2["weight_quant"]["ste_clamp"].as<bool>());  // forced by the learned bit width
  EXPECT_EQ(conv2["accumulator"]["bits"].as<int>(), 16);
  EXPECT_EQ(conv2["output"]["bits"].as<int>(), 16);
  YAML::Node relu1 = layers[2];
  EXPECT_EQ(relu1["act_quant"]["int_range"][1].as<int>(), 15);
  EXPECT_EQ(relu1["act_quant"]["scale_impl"].as<std::string>(), "parameter_from_stats");
  EXPECT_DOUBLE_EQ(relu1["act_quant"]["percentile"].as<double>(), 99.999);
  YAML::Node fc2 = layers[10];
  EXPECT_EQ(fc2["name"].as<std::string>(), "fc2");
  EXPECT_EQ(fc2["type"].as<std::string>(), "linear");
  EXPECT_NE(fc2["note"].as<std::string>().find("float"), std::string::npos);
  // No state changed: a parameter-from-statistics quantizer has collected nothing.
  for (auto& [n, t] : b.m.graph->named_buffers())
    if (n.find("collect_count") != std::string::npos) {
      EXPECT_EQ(t->data<int32_t>()[0], 0) << n;
    }
}

}  // namespace

namespace {

// ---- relu / relu6 / hardtanh fused into the activation quantizer ------------------------------

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
