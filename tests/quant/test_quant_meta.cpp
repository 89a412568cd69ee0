// Quantization metadata through the graph (QuantTensor: scales, bit widths, accumulators), the
// bias on the s_in * s_w grid, shared quantizers for add / concat, the truncating average pool,
// and the resolved quantized model.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "nn/graph.h"
#include "nn/layers.h"
#include "ops/ops.h"
#include "qat_test_util.h"
#include "quant/presets.h"
#include "quant/quant_layers.h"
#include "quant/quant_meta.h"
#include "quant/quant_ops.h"
#include "quant/quantizer.h"
#include "quant/resolved_model.h"
#include "util/gradcheck.h"

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
using q::qat_test::build;
using q::qat_test::build_abs;
using q::qat_test::error_of;
using q::qat_test::f;
using q::qat_test::kSrc;
using q::qat_test::temp_dir;

const q::NodeMeta& node(const std::vector<q::NodeMeta>& m, const std::string& name) {
  for (const auto& n : m)
    if (n.name == name) return n;
  throw Error("no node " + name);
}

// A model file written to a temporary folder.
std::string model_file(const std::string& name, const std::string& text) {
  const std::string dir = temp_dir("models");
  const std::string p = dir + "/" + name + ".yaml";
  std::ofstream(p) << text;
  return p;
}

// ---- 1. Quantization metadata (QuantTensor), external bias scale, accumulator -----------

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

// ---- 2. Shared quantizers (add / concat), truncating average pool -----------------------

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

// ---- 3. The resolved quantized model ----------------------------------------------------

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
