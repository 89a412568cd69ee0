// The layer-kind table (nn/layer_kinds.h): every row agrees with the module that reports its kind,
// model files build exactly the model-file kinds, and hardswish (the layer added through the table,
// docs/adding-a-layer.md) goes through float training, the quant: recipe and the planner.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "config/model_file.h"
#include "deploy/planner.h"
#include "nn/graph.h"
#include "nn/layer_kinds.h"
#include "nn/layers.h"
#include "ops/ops.h"
#include "quant/quant_layers.h"
#include "quant/quant_meta.h"
#include "quant/recipe.h"
#include "util/gradcheck.h"

namespace {

using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace fs = std::filesystem;
namespace nn = lowbit::nn;
namespace q = lowbit::quant;
namespace config = lowbit::config;
namespace deploy = lowbit::deploy;

TEST(LayerKinds, TableRowsAreInEnumOrderWithUniqueModelFileNames) {
  std::set<std::string> names;
  for (int i = 0; i < nn::kLayerKindCount; ++i) {
    const nn::LayerTraits& t = nn::kLayerTable[static_cast<size_t>(i)];
    EXPECT_EQ(static_cast<int>(t.kind), i);
    EXPECT_FALSE(t.name.empty());
    if (t.model_file) {
      EXPECT_TRUE(names.insert(std::string(t.name)).second) << "two model-file rows named " << t.name;
    }
  }
  EXPECT_EQ(nn::model_file_kind("hardswish"), nn::LayerKind::hardswish);
  EXPECT_EQ(nn::model_file_kind("quant_conv2d"), std::nullopt);  // made by recipes, not named by model files
  EXPECT_EQ(nn::model_file_kind("no_such_layer"), std::nullopt);
}

TEST(LayerKinds, ModelFilesBuildExactlyTheModelFileKinds) {
  const auto& reg = config::layer_registry();
  size_t model_file_rows = 0;
  for (const nn::LayerTraits& t : nn::kLayerTable) {
    if (!t.model_file) {
      EXPECT_EQ(reg.count(std::string(t.name)), t.kind == nn::LayerKind::foldable_batch_norm ? 1u : 0u) << t.name;
      continue;
    }
    ++model_file_rows;
    EXPECT_EQ(reg.count(std::string(t.name)), 1u) << t.name << " has no factory";
  }
  EXPECT_EQ(reg.size(), model_file_rows);
}

// A model with one layer of every model-file kind: each module reports the kind its type names,
// and its type_name() is the row's name.
TEST(LayerKinds, EveryModelFileLayerReportsItsRow) {
  char t[] = "/tmp/lowbit_kinds_XXXXXX";
  const fs::path dir = mkdtemp(t);
  std::ofstream(dir / "all.yaml") << R"(name: all
input: [2, 8, 8]
layers:
  - {name: c, type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: bn, type: batch_norm2d}
  - {name: r, type: relu}
  - {name: r6, type: relu6}
  - {name: ht, type: hardtanh}
  - {name: lr, type: leaky_relu}
  - {name: hs, type: hardswish}
  - {name: th, type: tanh}
  - {name: sg, type: sigmoid}
  - {name: id, type: identity}
  - {name: a, type: add, from: [sg, id]}
  - {name: cat, type: concat, from: [a, r]}
  - {name: mp, type: max_pool2d}
  - {name: ap, type: avg_pool2d, kernel_size: 1}
  - {name: gp, type: global_avg_pool2d}
  - {name: fl, type: flatten}
  - {name: dr, type: dropout, p: 0.1}
  - {name: fc, type: linear, out_features: 6}
  - {name: bn1, type: batch_norm1d}
)";
  const config::BuiltModel m = config::build_model((dir / "all.yaml").string(), {}, 0);
  fs::remove_all(dir);
  std::set<nn::LayerKind> seen;
  for (const auto& n : m.graph->nodes()) {
    const nn::LayerKind k = n.module->kind();
    seen.insert(k);
    EXPECT_TRUE(n.module->traits().model_file) << n.name;
    EXPECT_EQ(n.module->type_name(), std::string(nn::traits(k).name)) << n.name;
  }
  for (const nn::LayerTraits& row : nn::kLayerTable)
    if (row.model_file) {
      EXPECT_TRUE(seen.count(row.kind)) << row.name << " is missing from the test model";
    }
}

// ---- hardswish, the layer added through the table ----------------------------------------------

const char* kHardswishModel = R"(name: hs_net
input: [1, 8, 8]
layers:
  - {name: conv1, type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {name: hs1, type: hardswish}
  - {name: pool, type: max_pool2d, kernel_size: 2}
  - {name: flatten, type: flatten}
  - {name: fc1, type: linear, out_features: 10}
)";

config::BuiltModel hardswish_model() {
  char t[] = "/tmp/lowbit_hs_XXXXXX";
  const fs::path dir = mkdtemp(t);
  std::ofstream(dir / "hs.yaml") << kHardswishModel;
  config::BuiltModel m = config::build_model((dir / "hs.yaml").string(), {}, 0);
  fs::remove_all(dir);
  return m;
}

TEST(Hardswish, FloatModelTrainsThroughIt) {
  config::BuiltModel m = hardswish_model();
  Rng rng(5);
  const Tensor x = lowbit::testing::random_tensor({3, 1, 8, 8}, rng, -2.f, 2.f);
  Variable y = m.graph->forward(Variable(x));
  ASSERT_EQ(y.shape(), Shape({3, 10}));
  lowbit::ops::sum(y).backward();
  auto* conv = dynamic_cast<nn::Conv2d*>(m.graph->nodes()[0].module.get());
  ASSERT_NE(conv, nullptr);
  ASSERT_TRUE(conv->weight().grad().defined());
  double norm = 0;
  for (int64_t i = 0; i < conv->weight().grad().numel(); ++i) norm += std::abs(conv->weight().grad().f32()[i]);
  EXPECT_GT(norm, 0.0) << "no gradient reached conv1 through hardswish";
}

TEST(Hardswish, RecipeQuantizesItWithTheSignedActivationQuantizer) {
  config::BuiltModel m = hardswish_model();
  lowbit::io::YamlSource src;
  src.file = "run.yaml";
  q::apply_recipe(*m.graph, q::parse_recipe(YAML::Load(R"(
weights: {preset: Int8WeightPerTensorFloat, bits: 4}
activations: {preset: Uint8ActPerTensorFloat, bits: 4}
signed_activations: {preset: Int8ActPerTensorFloat, bits: 4}
)"), src), m.input);
  nn::Graph& g = *m.graph;
  const int i = g.find("hs1");
  ASSERT_GE(i, 0);
  auto* qa = dynamic_cast<q::QuantAct*>(g.nodes()[i].module.get());
  ASSERT_NE(qa, nullptr) << "hs1 was not quantized";
  EXPECT_EQ(qa->type_name(), "quant_hardswish");
  EXPECT_EQ(qa->kind(), nn::LayerKind::quant_act);
  EXPECT_TRUE(qa->act_quant().config().is_signed) << "hardswish has negative outputs (down to -0.375)";
  EXPECT_EQ(qa->act_quant().config().bits, 4);
  // QAT forward/backward runs; the quantized output is on the 4-bit signed grid.
  g.train();
  Rng rng(9);
  Variable x(lowbit::testing::random_tensor({2, 1, 8, 8}, rng, -3.f, 3.f));
  Variable y = g.forward(x);
  lowbit::ops::sum(y).backward();
  const q::QuantMeta meta = q::node_output_meta(g, i);
  ASSERT_TRUE(meta.valid()) << meta.why;
  EXPECT_EQ(meta.bits, 4);
  EXPECT_TRUE(meta.is_signed);
}

TEST(Hardswish, PlannerCountsItAsSharingItsInputTensor) {
  config::BuiltModel m = hardswish_model();
  const deploy::Network net = deploy::describe(*m.graph, m.input, "hs_net");
  ASSERT_EQ(net.layers.size(), 2u);  // conv1 and fc1: hardswish, pool and flatten add no weights
  EXPECT_EQ(net.layers[0].name, "conv1");
  EXPECT_EQ(net.layers[1].name, "fc1");
  // conv1's output tensor is fc1's input tensor (hardswish, max pool, flatten alias it).
  EXPECT_EQ(net.layers[0].out_tensor, net.layers[1].in_tensor);
}

}  // namespace
