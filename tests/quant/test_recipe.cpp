// The `quant:` recipe: parsing and applying it to an unchanged float model (the converter).
// Layers are replaced in place (names and parameters kept: conv1.weight is the same Variable),
// first/last layers keep their width, `bits` sets every width in one line, per-layer overrides
// by name or glob win, float layers stay float, user-defined quantizers are reusable presets,
// the input quantizer becomes node `input_quant`; bad recipes fail with clear messages.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "config/model_file.h"
#include "nn/graph.h"
#include "ops/ops.h"
#include "quant/quant_layers.h"
#include "quant/recipe.h"
#include "train/optim_setup.h"

namespace {

using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace fs = std::filesystem;
namespace io = lowbit::io;
namespace config = lowbit::config;
namespace nn = lowbit::nn;
namespace q = lowbit::quant;

const char* kModel = R"(name: tiny
input: [1, 8, 8]
layers:
  - {name: conv1, type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: relu1, type: relu}
  - {name: conv2, type: conv2d, out_channels: 6, kernel_size: 3, padding: 1}
  - {name: ht, type: hardtanh}
  - {name: pool, type: max_pool2d, kernel_size: 2}
  - {name: flatten, type: flatten}
  - {name: fc1, type: linear, out_features: 16}
  - {name: relu2, type: relu}
  - {name: fc2, type: linear, out_features: 10}
)";

struct Fixture {
  fs::path dir;
  config::BuiltModel model;
  Fixture() {
    char t[] = "/tmp/lowbit_recipe_XXXXXX";
    dir = mkdtemp(t);
    std::ofstream(dir / "tiny.yaml") << kModel;
    model = config::build_model((dir / "tiny.yaml").string(), {}, 0);
  }
  ~Fixture() { fs::remove_all(dir); }
  nn::Graph& g() { return *model.graph; }
  nn::Module* node(const std::string& name) {
    const int i = g().find(name);
    EXPECT_GE(i, 0) << "no node " << name;
    return i < 0 ? nullptr : g().nodes()[i].module.get();
  }
  const q::QuantizerConfig& wq(const std::string& name) {
    auto* l = dynamic_cast<q::QuantWeightLayer*>(node(name));
    EXPECT_NE(l, nullptr) << name << " is not a quantized weight layer";
    return l->weight_quant().config();
  }
  const q::QuantizerConfig& aq(const std::string& name) {
    auto* l = dynamic_cast<q::QuantAct*>(node(name));
    EXPECT_NE(l, nullptr) << name << " is not a quantized activation";
    return l->act_quant().config();
  }
  void apply(const std::string& recipe_yaml) {
    io::YamlSource src;
    src.file = "run.yaml";
    q::apply_recipe(g(), q::parse_recipe(YAML::Load(recipe_yaml), src), model.input);
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lowbit::Error& e) {
    return e.what();
  }
  return "(no error)";
}

Tensor input(int64_t n) {
  lowbit::Rng rng(3);
  Tensor x = Tensor::empty({n, 1, 8, 8});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.uniform(-1.f, 1.f);
  return x;
}

TEST(Recipe, ReplacesLayersKeepingNamesAndParameters) {
  Fixture f;
  std::map<std::string, const void*> before;
  for (auto& [n, v] : f.g().named_parameters()) before[n] = v.impl().get();
  f.apply(R"(
weights: {preset: Int8WeightPerChannelFloat}
activations: Uint8ActPerTensorFloat
input: {preset: Int8ActPerTensorFloat, bits: 8}
bits: 4
first_last_bits: 8
)");
  EXPECT_EQ(f.node("conv1")->type_name(), "quant_conv2d");
  EXPECT_EQ(f.node("conv2")->type_name(), "quant_conv2d");
  EXPECT_EQ(f.node("fc1")->type_name(), "quant_linear");
  EXPECT_EQ(f.node("relu1")->type_name(), "quant_relu");
  EXPECT_EQ(f.node("ht")->type_name(), "quant_hardtanh");
  EXPECT_EQ(f.node("pool")->type_name(), "max_pool2d");
  // Every float parameter is still there under its name, as the same Variable.
  std::map<std::string, const void*> after;
  for (auto& [n, v] : f.g().named_parameters()) after[n] = v.impl().get();
  for (auto& [n, p] : before) {
    ASSERT_TRUE(after.count(n)) << n << " disappeared";
    EXPECT_EQ(after[n], p) << n << " is not the same Variable";
  }
  EXPECT_TRUE(after.count("relu1.act_quant.value")) << "the activation quantizer's learned value is named";
  // bits: 4 everywhere, first/last weight layers at 8; per-channel weights.
  EXPECT_EQ(f.wq("conv1").bits, 8);
  EXPECT_EQ(f.wq("conv2").bits, 4);
  EXPECT_EQ(f.wq("fc1").bits, 4);
  EXPECT_EQ(f.wq("fc2").bits, 8);
  EXPECT_TRUE(f.wq("conv2").per_channel);
  EXPECT_EQ(f.aq("relu1").bits, 4);
  EXPECT_FALSE(f.aq("relu1").is_signed);
  // hardtanh is signed: the activation quantizer's signed twin.
  EXPECT_EQ(f.aq("ht").bits, 4);
  EXPECT_TRUE(f.aq("ht").is_signed);
  // The input quantizer is the first node.
  ASSERT_FALSE(f.g().nodes().empty());
  EXPECT_EQ(f.g().nodes()[0].name, "input_quant");
  EXPECT_EQ(f.g().nodes()[0].module->type_name(), "quant_identity");
  EXPECT_EQ(f.aq("input_quant").bits, 8);
  EXPECT_TRUE(f.aq("input_quant").is_signed);
  // It runs, and the first quantized weights are on an 8-bit grid of max|W| / 127 per channel.
  Variable y = f.g().forward(Variable(input(2)));
  EXPECT_EQ(y.shape(), Shape({2, 10}));
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_TRUE(std::isfinite(y.data().f32()[i]));
  auto* conv1 = dynamic_cast<q::QuantWeightLayer*>(f.node("conv1"));
  const Tensor s = conv1->weight_quant().meta().scale;
  ASSERT_EQ(s.numel(), 4);
  const Tensor w = conv1->weight().data();
  for (int64_t c = 0; c < 4; ++c) {
    float m = 0;
    for (int64_t k = 0; k < 9; ++k) m = std::max(m, std::fabs(w.f32()[c * 9 + k]));
    EXPECT_EQ(s.f32()[c], m / 127.f) << "channel " << c;
  }
}

TEST(Recipe, BitsOneLinerSetsWeightsAndActivations) {
  Fixture f;
  f.apply("{weights: Int8WeightPerTensorFloat, activations: Uint8ActPerTensorFloat, bits: 3}");
  for (const char* l : {"conv1", "conv2", "fc1", "fc2"}) EXPECT_EQ(f.wq(l).bits, 3) << l;
  for (const char* l : {"relu1", "ht", "relu2"}) EXPECT_EQ(f.aq(l).bits, 3) << l;
  EXPECT_LT(f.g().find("input_quant"), 0) << "no input quantizer unless asked";
}

TEST(Recipe, PerLayerOverridesByGlobAndFloatLayers) {
  Fixture f;
  f.apply(R"(
weights: Int8WeightPerTensorFloat
activations: Uint8ActPerTensorFloat
bits: 4
first_last_bits: 8
float: [conv2]
layers:
  "fc*": {weights: {bits: 6}}
  "relu?": {activations: {bits: 2}}
)");
  EXPECT_EQ(f.wq("conv1").bits, 8);
  EXPECT_EQ(f.node("conv2")->type_name(), "conv2d") << "a float layer stays float";
  EXPECT_EQ(f.wq("fc1").bits, 6) << "the override";
  EXPECT_EQ(f.wq("fc2").bits, 6) << "an override wins over first_last_bits";
  EXPECT_EQ(f.aq("relu1").bits, 2);
  EXPECT_EQ(f.aq("relu2").bits, 2);
  EXPECT_EQ(f.aq("ht").bits, 4) << "'relu?' does not match ht";
  EXPECT_TRUE(f.wq("fc1").narrow) << "a partial override keeps the rest of the quantizer";
  Variable y = f.g().forward(Variable(input(1)));
  EXPECT_EQ(y.shape(), Shape({1, 10}));
}

TEST(Recipe, UserDefinedQuantizers) {
  Fixture f;
  f.apply(R"(
quantizers:
  w3: {preset: Int8WeightPerTensorFloat, bits: 3}
  a5: {preset: Uint8ActPerTensorFloat, bits: 5, collect_steps: 10}
  s5: {preset: Int8ActPerTensorFloat, bits: 5}
weights: w3
activations: a5
signed_activations: s5
layers:
  conv1: {weights: {preset: w3, narrow: false}}
)");
  EXPECT_EQ(f.wq("conv2").name, "w3");
  EXPECT_EQ(f.wq("conv2").bits, 3);
  EXPECT_TRUE(f.wq("conv2").narrow);
  EXPECT_EQ(f.wq("conv1").bits, 3) << "a user quantizer takes overrides like a preset";
  EXPECT_FALSE(f.wq("conv1").narrow);
  EXPECT_EQ(f.aq("relu1").name, "a5");
  EXPECT_EQ(f.aq("relu1").collect_steps, 10);
  EXPECT_EQ(f.aq("ht").name, "s5");
  EXPECT_TRUE(f.aq("ht").is_signed);
}

TEST(Recipe, OverrideNamingNoLayerListsLayers) {
  Fixture f;
  std::string e = error_of([&] { f.apply("{weights: Int8WeightPerTensorFloat, layers: {conv9: {weights: {bits: 2}}}}"); });
  EXPECT_NE(e.find("conv9"), std::string::npos) << e;
  EXPECT_NE(e.find("names no layer"), std::string::npos) << e;
  EXPECT_NE(e.find("conv1, relu1, conv2, ht, pool, flatten, fc1, relu2, fc2"), std::string::npos) << e;
  EXPECT_NE(e.find("run.yaml:1:"), std::string::npos) << "the message names the recipe position: " << e;
  Fixture f2;
  e = error_of([&] { f2.apply("{weights: Int8WeightPerTensorFloat, float: [\"lin*\"]}"); });
  EXPECT_NE(e.find("lin*"), std::string::npos) << e;
  EXPECT_NE(e.find("fc1"), std::string::npos) << e;
}

TEST(Recipe, SignedActivationWithUnsignedPresetIsAnError) {
  Fixture f;
  std::string e = error_of([&] { f.apply("{activations: Uint8ActPerTensorFloat, signed_activations: Uint8ActPerTensorFloat}"); });
  EXPECT_NE(e.find("'ht'"), std::string::npos) << e;
  EXPECT_NE(e.find("unsigned"), std::string::npos) << e;
  Fixture f2;
  e = error_of([&] { f2.apply("{activations: Uint8ActPerTensorFloat, layers: {ht: {activations: Uint8ActPerTensorFloat}}}"); });
  EXPECT_NE(e.find("'ht'"), std::string::npos) << e;
  EXPECT_NE(e.find("unsigned"), std::string::npos) << e;
}

TEST(Recipe, BadRecipes) {
  Fixture f;
  std::string e = error_of([&] { f.apply("{wieghts: Int8WeightPerTensorFloat}"); });
  EXPECT_NE(e.find("unknown key 'quant.wieghts'"), std::string::npos) << e;
  EXPECT_NE(e.find("weights"), std::string::npos) << e;
  e = error_of([&] { f.apply("{weights: Int8WeightPerTensorFlaot}"); });
  EXPECT_NE(e.find("unknown quantizer preset"), std::string::npos) << e;
  e = error_of([&] { f.apply("{weights: Int8WeightPerTensorFloat, bits: 0}"); });
  EXPECT_NE(e.find("bit width 0"), std::string::npos) << e;
  e = error_of([&] { f.apply("{weights: Int8WeightPerTensorFloat, bits: 33}"); });
  EXPECT_NE(e.find("bit width 33"), std::string::npos) << e;
  e = error_of([&] { f.apply("{weights: Int8WeightPerTensorFloat, layers: {fc1: {wieghts: {bits: 2}}}}"); });
  EXPECT_NE(e.find("wieghts"), std::string::npos) << e;
}

// PACT's alpha with its own weight decay: the quantizer's `weight_decay` puts its learned
// parameters in a parameter group of their own; everything else keeps the optimizer's.
TEST(Recipe, QuantizerWeightDecayMakesItsOwnGroup) {
  Fixture f;
  f.apply("{weights: Int8WeightPerTensorFloat, activations: {preset: Uint8ActPACT, bits: 4, weight_decay: 0.01}, "
          "signed_activations: Int8ActPerTensorFloat}");
  config::OptimizerConfig oc;
  oc.lr = 0.1;
  oc.weight_decay = 5e-4;
  auto opt = lowbit::train::make_optimizer(oc, f.g());
  ASSERT_EQ(opt->num_groups(), 2u);
  EXPECT_EQ(opt->group(0).weight_decay, 5e-4);
  EXPECT_EQ(opt->group(1).weight_decay, 0.01);
  std::vector<std::string> alphas;
  for (auto& [name, p] : f.g().named_parameters())
    for (const Variable& v : opt->group(1).params)
      if (v.data().f32() == p.data().f32()) alphas.push_back(name);
  EXPECT_EQ(alphas, (std::vector<std::string>{"relu1.act_quant.value", "relu2.act_quant.value"}));
  size_t all = 0;
  for (auto& [name, p] : f.g().named_parameters()) all += p.requires_grad();
  EXPECT_EQ(opt->group(0).params.size() + opt->group(1).params.size(), all);
  // Without the option: one group.
  Fixture plain;
  plain.apply("{weights: Int8WeightPerTensorFloat, activations: {preset: Uint8ActPACT, bits: 4}, "
              "signed_activations: Int8ActPerTensorFloat}");
  EXPECT_EQ(lowbit::train::make_optimizer(oc, plain.g())->num_groups(), 1u);
  // PACT has no signed form: the hardtanh needs signed_activations.
  Fixture bad;
  const std::string e = error_of([&] { bad.apply("{activations: Uint8ActPACT}"); });
  EXPECT_NE(e.find("layer 'ht' (hardtanh) has negative outputs"), std::string::npos) << e;
  EXPECT_NE(e.find("set signed_activations"), std::string::npos) << e;
}

// Per-channel activation scales (channel axis 1, one scale per channel of the layer's output).
TEST(Recipe, PerChannelActivations) {
  Fixture f;
  f.apply("{weights: Int8WeightPerTensorFloat, activations: {preset: Uint8ActPerTensorFloat, per_channel: true, "
          "stat: max_abs, collect_steps: 1}, signed_activations: Int8ActPerTensorFloat}");
  EXPECT_TRUE(f.aq("relu1").per_channel);
  EXPECT_EQ(f.aq("relu1").channel_axis, 1);
  f.g().train();
  f.g().forward(Variable(input(2)));  // collection step (per-channel max)
  Variable y = f.g().forward(Variable(input(2)));
  auto* relu1 = dynamic_cast<q::QuantAct*>(f.node("relu1"));
  auto* relu2 = dynamic_cast<q::QuantAct*>(f.node("relu2"));
  ASSERT_NE(relu1, nullptr);
  ASSERT_NE(relu2, nullptr);
  EXPECT_EQ(relu1->act_quant().meta().scale.numel(), 4) << "conv1 has 4 output channels";
  EXPECT_EQ(relu1->act_quant().meta().axis, 1);
  EXPECT_EQ(relu2->act_quant().meta().scale.numel(), 16) << "fc1 has 16 output features";
  lowbit::ops::sum(y).backward();  // learned per-channel thresholds get gradients
  for (auto& [n, p] : f.g().named_parameters())
    if (n == "relu1.act_quant.value") {
      EXPECT_EQ(p.numel(), 4);
      EXPECT_TRUE(p.grad().defined());
    }
  // The percentile statistic is per tensor: a clear error at recipe time.
  Fixture g;
  const std::string e = error_of([&] { g.apply("{activations: {preset: Uint8ActPerTensorFloat, per_channel: true}}"); });
  EXPECT_NE(e.find("layer 'relu1'"), std::string::npos) << e;
  EXPECT_NE(e.find("stat: max_abs"), std::string::npos) << e;
}

TEST(Recipe, EmptyRecipeLeavesTheModelFloat) {
  Fixture f;
  f.apply("{}");
  EXPECT_EQ(f.node("conv1")->type_name(), "conv2d");
  EXPECT_EQ(f.node("relu1")->type_name(), "relu");
  EXPECT_LT(f.g().find("input_quant"), 0);
}

TEST(Recipe, InputQuantizerQuantizesTheModelInput) {
  Fixture f;
  f.apply("{input: {preset: Int8ActPerTensorFloat, bits: 8, collect_steps: 1}}");
  EXPECT_EQ(f.g().nodes()[0].name, "input_quant");
  EXPECT_EQ(f.g().nodes()[1].name, "conv1");
  EXPECT_EQ(f.node("conv1")->type_name(), "conv2d") << "no weight quantizer asked for";
  const Tensor x = input(2);
  f.g().forward(Variable(x));  // collection step: scale = max|x| / 128 (64 * 2 values: the max)
  auto* iq = dynamic_cast<q::QuantAct*>(f.node("input_quant"));
  ASSERT_NE(iq, nullptr);
  float m = 0;
  for (int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::fabs(x.f32()[i]));
  EXPECT_EQ(iq->act_quant().meta().scale.f32()[0], m / 128.f);
  // After the collection the learned value keeps the scale; the input is on its grid.
  const Tensor xq = iq->forward(Variable(x)).data();
  const float s = m / 128.f;
  EXPECT_EQ(iq->act_quant().meta().scale.f32()[0], s);
  for (int64_t i = 0; i < xq.numel(); ++i) {
    const float lv = xq.f32()[i] / s;
    EXPECT_NEAR(lv, std::nearbyint(lv), 1e-4) << "element " << i << " is not on the input grid";
    EXPECT_EQ(xq.f32()[i], std::nearbyint(x.f32()[i] / s) * s) << "element " << i;
  }
}

}  // namespace
