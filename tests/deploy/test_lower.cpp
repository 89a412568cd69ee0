// Lowering QAT models to the integer network: every layer type run by the integer engine next to
// the fake-quant model (verify::Comparison). With single rounding (x * M rounded once) the
// integers must be identical on every layer's grid; the default TFLM double rounding may differ
// by one LSB near ties. Refusals name the layer, the reason and the fix.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

#include "autograd/variable.h"
#include "deploy/lower.h"
#include "quant/qat_test_util.h"
#include "verify/verify.h"

using namespace lowbit;
using namespace lowbit::quant::qat_test;

namespace {

const char* kRecipe = R"(
weights: {preset: Int8WeightPerChannelFloat, bits: 4}
activations: {preset: Uint8ActPerTensorFloat, bits: 4}
signed_activations: {preset: Int8ActPerTensorFloat, bits: 6}
input: {preset: Int8ActPerTensorFloat, bits: 8}
bias: Int32Bias
add: shared
concat: shared
)";

std::string write_model(const std::string& dir, const std::string& name, const std::string& body) {
  const std::string path = dir + "/" + name + ".yaml";
  std::ofstream(path) << "name: " << name << "\n" << body;
  return path;
}

Tensor random_input(const Shape& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = d(rng);
  return t;
}

// Gives every batch norm random statistics and affine parameters (some gammas negative).
void randomize_batch_norms(nn::Module& m, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (auto& [name, t] : m.named_buffers()) {
    if (name.find("running_mean") != std::string::npos)
      for (int64_t i = 0; i < t->numel(); ++i) t->f32()[i] = u(rng) - 0.5f;
    if (name.find("running_var") != std::string::npos)
      for (int64_t i = 0; i < t->numel(); ++i) t->f32()[i] = 0.2f + u(rng);
  }
  for (auto& [name, v] : m.named_parameters()) {
    if (name.rfind("bn", 0) != 0 && name.find("_bn") == std::string::npos) continue;
    Tensor t = v.data();
    const bool gamma = name.size() > 6 && name.compare(name.size() - 6, 6, "weight") == 0;
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = gamma ? (i % 3 == 2 ? -1.f : 1.f) * (0.5f + u(rng)) : u(rng) - 0.5f;
  }
}

// A trained-looking model: a few training-mode forwards collect the activation statistics, then
// eval mode with one forward for the metadata.
Built prepare(const std::string& model_path, const std::string& recipe, const Shape& batch, bool bn = false) {
  Built b = build_abs(model_path, recipe);
  nn::Graph& g = *b.m.graph;
  NoGradGuard ng;
  g.train();
  for (int i = 0; i < 3; ++i) g.forward(Variable(random_input(batch, 100 + i)));
  if (bn) randomize_batch_norms(g, 7);
  g.eval();
  g.forward(Variable(random_input(batch, 200)));
  return b;
}

verify::VerifyResult compare(Built& b, const deploy::LoweredModel& low, const Shape& batch, int batches = 4) {
  verify::Comparison cmp(*b.m.graph, low);
  for (int i = 0; i < batches; ++i) cmp.add_batch(random_input(batch, 300 + i), Tensor());
  return cmp.finish();
}

deploy::LoweredModel lower(Built& b, intnet::RequantRounding r) {
  deploy::LowerOptions o;
  o.rounding = r;
  return deploy::lower(*b.m.graph, b.m.input, b.m.name, o);
}

// Identical integers, but for near-ties: where the fake-quant model's float32 arithmetic lands
// within its own rounding error of a half step, one requantized integer may differ by one LSB (and
// later layers inherit it). So: every layer before the first difference is exact, the first
// difference is a requantization off by one on at most 1 in 10,000 integers.
void expect_identical(const verify::VerifyResult& r) {
  if (r.first_divergence >= 0) {
    const verify::LayerAgreement& l = r.layers[static_cast<size_t>(r.first_divergence)];
    EXPECT_EQ(l.op, "requantize") << l.name;
    EXPECT_EQ(l.max_diff, 1) << l.name;
    EXPECT_LE(l.total - l.equal, std::max<int64_t>(1, l.total / 10000))
        << l.name << " (" << l.op << "): first difference at image " << l.first_image << " element " << l.first_element
        << ": " << l.engine_int << " vs " << l.fake_quant_int;
  }
  EXPECT_GE(r.top1_agree * 100, r.images * 99);
}

bool has_op(const intnet::Network& n, intnet::OpKind op) {
  for (const auto& node : n.nodes)
    if (node.op == op) return true;
  return false;
}

const char* kConvStack = R"(params: {}
input: [3, 12, 12]
layers:
  - {name: conv1, type: conv2d, out_channels: 8, kernel_size: 3, stride: 2, padding: 1}
  - {name: relu1, type: relu}
  - {name: pool1, type: max_pool2d, kernel_size: 2}
  - {name: dw, type: conv2d, out_channels: 8, kernel_size: 3, padding: 1, groups: 8}
  - {name: relu2, type: relu6}
  - {name: pool2, type: avg_pool2d, kernel_size: 3, stride: 1}
  - {name: pw, type: conv2d, out_channels: 6, kernel_size: 1}
  - {name: act3, type: hardtanh}
  - {name: gap, type: global_avg_pool2d}
  - {name: flat, type: flatten}
  - {name: fc1, type: linear, out_features: 16}
  - {name: id, type: identity}
  - {name: t, type: tanh}
  - {name: drop, type: dropout, p: 0.5}
  - {name: fc2, type: linear, out_features: 5}
)";

const char* kResidual = R"(params: {}
input: [2, 8, 8]
layers:
  - {name: conv1, type: conv2d, out_channels: 6, kernel_size: 3, padding: 1, bias: false}
  - {name: bn1, type: batch_norm2d}
  - {name: relu1, type: relu}
  - {name: conv2, type: conv2d, out_channels: 6, kernel_size: 3, padding: 1, bias: false}
  - {name: bn2, type: batch_norm2d}
  - {name: relu2, type: relu}
  - {name: conv3, type: conv2d, out_channels: 6, kernel_size: 3, padding: 1, bias: false}
  - {name: bn3, type: batch_norm2d}
  - {name: add, type: add, from: [bn3, relu1]}
  - {name: relu3, type: relu}
  - {name: short, type: conv2d, from: relu1, out_channels: 4, kernel_size: 1}
  - {name: cat, type: concat, from: [relu3, short]}
  - {name: pool, type: global_avg_pool2d}
  - {name: flat, type: flatten}
  - {name: fc, type: linear, out_features: 4}
)";

}  // namespace

TEST(Lower, EveryLayerTypeGivesTheFakeQuantIntegersWithSingleRounding) {
  const std::string dir = temp_dir("lower_stack");
  Built b = prepare(write_model(dir, "stack", kConvStack), kRecipe, Shape({16, 3, 12, 12}));
  const deploy::LoweredModel low = lower(b, intnet::RequantRounding::single);
  for (intnet::OpKind op : {intnet::OpKind::quantize, intnet::OpKind::conv2d, intnet::OpKind::requantize,
                            intnet::OpKind::max_pool, intnet::OpKind::avg_pool, intnet::OpKind::reshape,
                            intnet::OpKind::matmul, intnet::OpKind::lut})
    EXPECT_TRUE(has_op(low.net, op)) << intnet::op_name(op);
  const verify::VerifyResult r = compare(b, low, Shape({16, 3, 12, 12}));
  EXPECT_GE(r.layers.size(), 14u);
  expect_identical(r);
  // The last layer: int32 logits with per-class scales s_in * s_w.
  EXPECT_EQ(low.net.value(low.net.output).shape, (std::vector<int64_t>{5}));
  EXPECT_EQ(low.net.value(low.net.output).scale.size(), 5u);
}

TEST(Lower, ResidualAddConcatAndBatchNormAsIntegerChannelNormalization) {
  const std::string dir = temp_dir("lower_res");
  Built b = prepare(write_model(dir, "res", kResidual), kRecipe, Shape({16, 2, 8, 8}), true);
  const deploy::LoweredModel low = lower(b, intnet::RequantRounding::single);
  EXPECT_TRUE(has_op(low.net, intnet::OpKind::add));
  EXPECT_TRUE(has_op(low.net, intnet::OpKind::concat));
  bool negative_m0 = false;  // gamma < 0 on some channels: the sign lives in M0
  for (const auto& n : low.net.nodes)
    if (const auto* a = std::get_if<intnet::RequantizeAttrs>(&n.attrs))
      for (int32_t m : a->m0) negative_m0 = negative_m0 || m < 0;
  EXPECT_TRUE(negative_m0);
  // The batch norm's shift is rounded into the bias with extra fraction bits (acc_shift), so it is
  // no longer an approximation one can see: every requantized layer gives the fake-quant integers
  // (but for near-ties of the model's float32 arithmetic).
  int shifted = 0;
  for (const auto& n : low.net.nodes)
    if (const auto* c = std::get_if<intnet::ConvAttrs>(&n.attrs)) shifted += c->acc_shift > 0;
  EXPECT_GE(shifted, 2);  // conv1 and conv3 carry a batch norm
  const verify::VerifyResult r = compare(b, low, Shape({16, 2, 8, 8}));
  ASSERT_GE(r.layers.size(), 3u);
  EXPECT_EQ(r.layers[1].name, "bn1");  // the accumulator, finer than the model's float32 can say
  EXPECT_TRUE(r.layers[1].finer_than_float);
  EXPECT_EQ(r.layers[2].name, "relu1");
  for (const verify::LayerAgreement& l : r.layers) {
    if (l.finer_than_float) continue;
    EXPECT_LE(l.max_diff, 1) << l.name;
    EXPECT_GE(l.fraction(), 0.999) << l.name;
  }
  EXPECT_GE(r.agreement(), 0.99);
}

TEST(Lower, BatchNormFoldedDuringTrainingGivesIntegerWeightsOfTheFoldedLayer) {
  const std::string dir = temp_dir("lower_fold");
  const std::string recipe = std::string(kRecipe) + "bn_fold: {delay_epochs: 0}\n";
  Built b = build_abs(write_model(dir, "res", kResidual), recipe);
  nn::Graph& g = *b.m.graph;
  randomize_batch_norms(g, 7);
  quant::start_epoch(g, 0);  // folding on from the start
  {
    NoGradGuard ng;
    g.train();
    for (int i = 0; i < 3; ++i) g.forward(Variable(random_input(Shape({16, 2, 8, 8}), 100 + i)));
    g.eval();
    g.forward(Variable(random_input(Shape({16, 2, 8, 8}), 200)));
  }
  const deploy::LoweredModel low = lower(b, intnet::RequantRounding::single);
  expect_identical(compare(b, low, Shape({16, 2, 8, 8})));
}

// FINN's TFC shape: binary weights, batch norm, binary activations (sign, sign(0) = +1): one
// threshold per channel, the direction flipped where gamma < 0; exact.
TEST(Lower, BinaryActivationsBecomeThresholds) {
  const std::string dir = temp_dir("lower_bin");
  const std::string model = write_model(dir, "tfc", R"(params: {}
input: [1, 8, 8]
layers:
  - {name: flatten, type: flatten}
  - {name: fc1, type: linear, out_features: 32, bias: false}
  - {name: bn1, type: batch_norm1d}
  - {name: act1, type: hardtanh}
  - {name: fc2, type: linear, out_features: 24, bias: false}
  - {name: bn2, type: batch_norm1d}
  - {name: act2, type: hardtanh}
  - {name: fc3, type: linear, out_features: 10}
)");
  const std::string recipe = R"(
weights: {preset: SignedBinaryWeightPerTensorConst, scale_init: 1.0}
signed_activations: SignedBinaryActPerTensorConst
input: {preset: Int8ActPerTensorFloat, bits: 8}
bias: Int32Bias
layers: {fc3: {weights: {preset: SignedBinaryWeightPerTensorStats}}}
)";
  Built b = prepare(model, recipe, Shape({16, 1, 8, 8}), true);
  const deploy::LoweredModel low = lower(b, intnet::RequantRounding::single);
  int thresholds = 0;
  bool descending = false;
  for (const auto& n : low.net.nodes)
    if (const auto* t = std::get_if<intnet::ThresholdAttrs>(&n.attrs)) {
      ++thresholds;
      for (uint8_t d : t->descending) descending = descending || d;
    }
  EXPECT_EQ(thresholds, 2);
  EXPECT_TRUE(descending);
  // Binary logits tie often: where the two top-1 classes differ, the integer logits must tie
  // between them (the fake-quant model breaks the tie by float rounding).
  verify::Comparison cmp(*b.m.graph, low);
  for (int i = 0; i < 8; ++i) {
    cmp.add_batch(random_input(Shape({16, 1, 8, 8}), 300 + i), Tensor());
    const std::vector<int32_t>& ints = cmp.engine().output();
    const Tensor& fq = cmp.fake_quant_logits();
    for (int64_t k = 0; k < 16; ++k) {
      int64_t best_fq = 0;
      for (int64_t c = 1; c < 10; ++c)
        if (fq.f32()[k * 10 + c] > fq.f32()[k * 10 + best_fq]) best_fq = c;
      int32_t top = ints[static_cast<size_t>(k * 10)];
      for (int64_t c = 1; c < 10; ++c) top = std::max(top, ints[static_cast<size_t>(k * 10 + c)]);
      EXPECT_EQ(ints[static_cast<size_t>(k * 10 + best_fq)], top) << "image " << k << " of batch " << i;
    }
  }
  const verify::VerifyResult r = cmp.finish();
  for (const auto& l : r.layers) EXPECT_EQ(l.equal, l.total) << l.name;
  bool saw_act = false;
  for (const auto& l : r.layers) saw_act = saw_act || (l.name == "act2" && l.op == "threshold");
  EXPECT_TRUE(saw_act);
}

// Where TFLM's double rounding and the fake-quant model first disagree: a requantization, by one
// LSB, rarely (later layers then inherit the difference).
TEST(Lower, TflmDoubleRoundingDiffersOnlyByOneLsbNearTies) {
  const std::string dir = temp_dir("lower_tflm");
  Built b = prepare(write_model(dir, "stack", kConvStack), kRecipe, Shape({16, 3, 12, 12}));
  const verify::VerifyResult r = compare(b, lower(b, intnet::RequantRounding::tflm), Shape({16, 3, 12, 12}), 16);
  ASSERT_GE(r.first_divergence, 0) << "expected at least one double-rounding difference in 256 images";
  const verify::LayerAgreement& first = r.layers[static_cast<size_t>(r.first_divergence)];
  EXPECT_EQ(first.op, "requantize");
  EXPECT_EQ(first.max_diff, 1);
  EXPECT_GE(first.fraction(), 0.99);
  for (const auto& l : r.layers) {  // everything before it is exact
    if (&l == &first) break;
    EXPECT_EQ(l.equal, l.total) << l.name;
  }
}

TEST(Lower, FloorRoundingCarriesTheHalfStepInTheBias) {
  const std::string dir = temp_dir("lower_floor");
  Built b = prepare(write_model(dir, "stack", kConvStack), kRecipe, Shape({16, 3, 12, 12}));
  const deploy::LoweredModel low = lower(b, intnet::RequantRounding::floor);
  EXPECT_FALSE(low.rounding_offset.empty());
  const verify::VerifyResult r = compare(b, low, Shape({16, 3, 12, 12}));
  ASSERT_GE(r.layers.size(), 3u);
  EXPECT_EQ(r.layers[1].name, "conv1");
  EXPECT_EQ(r.layers[1].equal, r.layers[1].total);  // the half step is subtracted before comparing
  EXPECT_EQ(r.layers[2].name, "relu1");             // floor(M * acc + 1/2): off only at exact ties
  EXPECT_LE(r.layers[2].max_diff, 1);
  EXPECT_GE(r.layers[2].fraction(), 0.99);
}

// The scale source of relu1's quantizer: the learned value and the collected statistic.
void set_relu1_scale(nn::Graph& g, float v) {
  for (auto& [n, p] : g.named_parameters())
    if (n == "relu1.act_quant.value") p.data().f32()[0] = v;
  for (auto& [n, t] : g.named_buffers())
    if (n == "relu1.act_quant.stat_buffer") t->f32()[0] = v;
}

TEST(Lower, RefusesLayersWithoutAnIntegerForm) {
  const std::string dir = temp_dir("lower_refuse");
  const std::string stack = write_model(dir, "stack", kConvStack);
  auto refusal = [&](const std::string& path, const std::string& recipe, const std::function<void(nn::Graph&)>& edit = {},
                     const Shape& batch = Shape({8, 3, 12, 12})) {
    Built b = prepare(path, recipe, batch);
    return error_of([&] {
      if (edit) {  // a damaged checkpoint: loaded, then the metadata forward
        edit(*b.m.graph);
        NoGradGuard ng;
        b.m.graph->forward(Variable(random_input(batch, 5)));
      }
      lower(b, intnet::RequantRounding::tflm);
    });
  };
  std::string e = refusal(stack, std::string(kRecipe) + "float: [dw]\n");
  EXPECT_NE(e.find("cannot lower stack to integers: layer relu2 (quant_relu6): its input is not on an integer grid (dw is "
                   "a float layer"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("Fix: "), std::string::npos);

  std::string float_bias = kRecipe;  // Int32Bias itself refuses a per-channel input scale during training
  float_bias.erase(float_bias.find("bias: Int32Bias\n"), 16);
  e = refusal(stack, float_bias + "layers: {relu1: {activations: {per_channel: true, stat: max_abs}}}\n");
  EXPECT_NE(e.find("layer dw (quant_conv2d): its input has per-channel scales"), std::string::npos) << e;

  const std::string sig = write_model(dir, "sig", R"(params: {}
input: [3, 12, 12]
layers:
  - {name: flat, type: flatten}
  - {name: fc1, type: linear, out_features: 8}
  - {name: s, type: sigmoid}
  - {name: fc2, type: linear, out_features: 3}
)");
  e = refusal(sig, kRecipe);
  EXPECT_NE(e.find("layer s (quant_sigmoid): a sigmoid of an accumulator has no integer form. Fix: quantize the "
                   "accumulator first"),
            std::string::npos)
      << e;

  e = refusal(stack, kRecipe, [](nn::Graph& g) {
    set_relu1_scale(g, NAN);
  });
  // The metadata forward refuses it already, by name.
  EXPECT_NE(e.find("layer relu1, quantizer relu1.act_quant (Uint8ActPerTensorFloat): scale nan"), std::string::npos)
      << e;
  e = refusal(stack, kRecipe, [](nn::Graph& g) {
    set_relu1_scale(g, 0.f);
  });
  EXPECT_NE(e.find("layer relu1 (quant_relu): quantizer relu1.act_quant (Uint8ActPerTensorFloat) has scale 6.66667e-12, at "
                   "the floor of its statistic"),
            std::string::npos)
      << e;

  e = refusal(stack, std::string(kRecipe) + "layers: {relu1: {activations: {preset: SignedBinaryActPerTensorConst}}}\n");
  EXPECT_NE(e.find("layer relu1 (quant_relu): a binary quantizer after an activation that is never negative"),
            std::string::npos)
      << e;

  const std::string wide = write_model(dir, "wide", R"(params: {}
input: [4, 32, 32]
layers:
  - {name: flat, type: flatten}
  - {name: fc1, type: linear, out_features: 4}
)");
  e = refusal(wide, "weights: {preset: Int8WeightPerTensorFloat}\ninput: {preset: Int8ActPerTensorFloat, bits: 16}\n",
              [](nn::Graph& g) {
                for (auto& [n, p] : g.named_parameters())
                  if (n == "fc1.weight") p.data().fill(0.5f);
              },
              Shape({2, 4, 32, 32}));
  EXPECT_NE(e.find("integer network fc1: output channel 0 can reach |accumulator| = 520192 (sum of |weights|) x 32768"),
            std::string::npos)
      << e;
}
