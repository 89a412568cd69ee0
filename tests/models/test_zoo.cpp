// The model zoo (models/*.yaml) against its PyTorch twins (tools/torch_models.py).
//
// For every zoo model (small parameter values where the default is big):
//   - TrainStep: builds from YAML, forward + cross-entropy + backward on a random batch, a
//     finite loss, finite gradients for every parameter, and one manual SGD step that changes
//     the weights (and lowers the loss on that batch where the model has no dropout);
//   - StateDictMatchesTwin: parameter/buffer names and shapes equal the twin's state_dict();
//   - EvalForwardMatchesTwin: the twin loaded with lowbit's weights (batch norm affine
//     parameters and running statistics randomized first) gives the same logits in eval mode;
//   - TrainForwardBackwardMatchesTwin: in train mode (dropout off on both sides), logits, loss,
//     every parameter gradient and the updated batch-norm running statistics match (gradients
//     against PyTorch float64, see the test).
// Plus the MobileNetV1 weight and activation counts, weight counts of the other models, every
// configs/*.yaml building against Fashion-MNIST's 1x28x28 input, and CNV rejecting 28x28.
//
// Tolerance: max relative difference (|a - b| / max(1, |b|)) at most 1e-4, as in test_ops_torch.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "config/model_file.h"
#include "config/run_config.h"
#include "nn/graph.h"
#include "nn/layers.h"
#include "ops/ops.h"
#include "util/gradcheck.h"
#include "util/torch_oracle.h"

namespace {

using lowbit::DType;
using lowbit::Rng;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace fs = std::filesystem;
namespace io = lowbit::io;
namespace config = lowbit::config;
namespace nn = lowbit::nn;
namespace ops = lowbit::ops;
namespace lt = lowbit::testing;

constexpr float kTol = 1e-4f;

#define EXPECT_MATCHES(ours, theirs, what)                                                                 \
  do {                                                                                                     \
    const Tensor& o_ = (ours);                                                                             \
    const Tensor& t_ = (theirs);                                                                           \
    ASSERT_TRUE(o_.defined()) << what << ": lowbit produced nothing";                                      \
    ASSERT_EQ(o_.numel(), t_.numel()) << what << ": " << o_.shape().str() << " vs torch " << t_.shape().str(); \
    EXPECT_LE(lt::max_rel_diff(o_.reshape(t_.shape()), t_), kTol)                                          \
        << what << " (max abs diff " << lt::max_abs_diff(o_.reshape(t_.shape()), t_) << ")";               \
  } while (0)

std::string model_path(const std::string& model) {
  return std::string(LOWBIT_SOURCE_DIR) + "/models/" + model + ".yaml";
}

config::BuiltModel build(const std::string& model, const std::map<std::string, double>& params, uint64_t seed = 0) {
  std::map<std::string, config::ModelParamOverride> ov;
  for (const auto& [k, v] : params) ov[k] = {v, "test_zoo: " + model + "." + k};
  return config::build_model(model_path(model), ov, seed);
}

struct ZooCase {
  std::string label;  // test name suffix
  std::string model;  // models/<model>.yaml and torch_models.build(<model>)
  std::map<std::string, double> params;
  int64_t batch;
};

std::ostream& operator<<(std::ostream& os, const ZooCase& c) { return os << c.label; }

// Python preamble: imports the twins, NAME and PARAMS (the case's model and parameters) and
// `model` built from them.
std::string twin_script(const ZooCase& c) {
  std::ostringstream py;
  py << std::setprecision(17) << "import sys\nsys.dont_write_bytecode = True\nsys.path.insert(0, r'"
     << LOWBIT_SOURCE_DIR << "/tools')\nimport torch_models\nNAME = '" << c.model << "'\nPARAMS = dict(";
  for (const auto& [k, v] : c.params) py << k << "=" << v << ", ";
  py << ")\nmodel = torch_models.build(NAME, **PARAMS)\n";
  return py.str();
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < dims.size(); ++i) s << (i ? "," : "") << dims[i];
  s << ']';
  return s.str();
}

// Every parameter and buffer, as lowbit names them.
std::map<std::string, Tensor> state_of(nn::Graph& g) {
  std::map<std::string, Tensor> s;
  for (auto& [k, v] : g.named_parameters()) s[k] = v.data();
  for (auto& [k, t] : g.named_buffers()) s[k] = *t;
  return s;
}

bool has_dropout(const nn::Graph& g) {
  for (const auto& n : g.nodes())
    if (n.module->type_name() == "dropout") return true;
  return false;
}

Tensor random_labels(int64_t n, int64_t classes, Rng& rng) {
  Tensor t = Tensor::empty({n}, DType::s32);
  for (int64_t i = 0; i < n; ++i) t.data<int32_t>()[i] = static_cast<int32_t>(rng.below(static_cast<uint64_t>(classes)));
  return t;
}

Tensor random_input(const config::BuiltModel& m, int64_t batch, Rng& rng) {
  return lt::random_tensor({batch, m.input[0], m.input[1], m.input[2]}, rng);
}

// Batch norm gamma/beta and running statistics away from their identity initial values, so
// that eval-mode comparisons exercise them.
void randomize_batch_norm(nn::Graph& g, Rng& rng) {
  for (const auto& n : g.nodes()) {
    if (n.module->type_name() != "batch_norm2d" && n.module->type_name() != "batch_norm1d") continue;
    for (auto& [k, v] : n.module->named_parameters()) {
      float* p = v.data().f32();
      for (int64_t i = 0; i < v.numel(); ++i) p[i] = k == "weight" ? rng.uniform(0.5f, 1.5f) : rng.uniform(-0.5f, 0.5f);
    }
    for (auto& [k, t] : n.module->named_buffers()) {
      if (k != "running_mean" && k != "running_var") continue;
      const bool mean = k == "running_mean";
      for (int64_t i = 0; i < t->numel(); ++i) t->f32()[i] = mean ? rng.uniform(-0.5f, 0.5f) : rng.uniform(0.5f, 1.5f);
    }
  }
}

class Zoo : public ::testing::TestWithParam<ZooCase> {};

TEST_P(Zoo, TrainStep) {
  const ZooCase& c = GetParam();
  config::BuiltModel m = build(c.model, c.params);
  nn::Graph& g = *m.graph;
  Rng rng(7);
  const Tensor x = random_input(m, c.batch, rng);
  const Shape out = g.infer_shape({x.shape()});
  ASSERT_EQ(out.rank(), 2u);
  ASSERT_EQ(out[0], c.batch);
  const Tensor labels = random_labels(c.batch, out[1], rng);

  g.train();
  Variable y = g.forward(Variable(x));
  ASSERT_EQ(y.shape(), out);
  Variable loss = ops::cross_entropy(y, labels);
  const float loss0 = loss.data().item();
  ASSERT_TRUE(std::isfinite(loss0));
  loss.backward();

  const float lr = 0.01f;
  double grad_sq = 0;
  auto params = g.named_parameters();
  ASSERT_FALSE(params.empty());
  for (auto& [name, p] : params) {
    ASSERT_TRUE(p.grad().defined()) << name << " got no gradient";
    ASSERT_EQ(p.grad().shape(), p.shape()) << name;
    float* w = p.data().f32();
    const float* gr = p.grad().f32();
    for (int64_t i = 0; i < p.numel(); ++i) {
      ASSERT_TRUE(std::isfinite(gr[i])) << name << "[" << i << "] gradient is " << gr[i];
      grad_sq += static_cast<double>(gr[i]) * gr[i];
      w[i] -= lr * gr[i];  // plain SGD, by hand
    }
    p.clear_grad();
  }
  EXPECT_GT(grad_sq, 0.0) << "all gradients are zero";

  Variable loss1 = ops::cross_entropy(g.forward(Variable(x)), labels);
  const float l1 = loss1.data().item();
  ASSERT_TRUE(std::isfinite(l1));
  // Same batch, same batch statistics: a small step down the gradient lowers the loss
  // (dropout masks differ between the two passes, so only without dropout).
  if (!has_dropout(g)) {
    EXPECT_LT(l1, loss0) << "an SGD step (lr " << lr << ") did not lower the loss";
  }
}

TEST_P(Zoo, StateDictMatchesTwin) {
  LB_REQUIRE_TORCH();
  const ZooCase& c = GetParam();
  config::BuiltModel m = build(c.model, c.params);
  std::vector<std::string> ours;
  for (auto& [k, t] : state_of(*m.graph)) ours.push_back(k + " " + dims_str(t.shape().dims()));

  auto r = lt::run_torch(twin_script(c) + R"PY(
lines = [k + ' ' + '[' + ','.join(str(d) for d in v.shape) + ']' for k, v in model.state_dict().items()]
save('keys', torch.tensor(list('\n'.join(lines).encode()), dtype=torch.uint8))
)PY", {}, {"keys"});
  const Tensor& k = r["keys"];
  std::istringstream text(std::string(k.data<uint8_t>(), k.data<uint8_t>() + k.numel()));
  std::vector<std::string> theirs;
  for (std::string line; std::getline(text, line);) {
    // PyTorch keeps num_batches_tracked as a 0-d tensor, lowbit as a (1) tensor.
    const std::string nbt = ".num_batches_tracked []";
    if (line.size() > nbt.size() && line.compare(line.size() - nbt.size(), nbt.size(), nbt) == 0)
      line = line.substr(0, line.size() - 2) + "[1]";
    theirs.push_back(line);
  }
  std::sort(theirs.begin(), theirs.end());  // ours is sorted (std::map)
  EXPECT_EQ(ours, theirs);
}

TEST_P(Zoo, EvalForwardMatchesTwin) {
  LB_REQUIRE_TORCH();
  const ZooCase& c = GetParam();
  config::BuiltModel m = build(c.model, c.params);
  nn::Graph& g = *m.graph;
  Rng rng(11);
  randomize_batch_norm(g, rng);
  const Tensor x = random_input(m, c.batch, rng);
  g.eval();
  Tensor y;
  {
    lowbit::NoGradGuard no_grad;
    y = g.forward(Variable(x)).data();
  }
  std::map<std::string, Tensor> in{{"x", x}};
  for (auto& [k, t] : state_of(g)) in["s_" + k] = t;
  auto r = lt::run_torch(twin_script(c) + R"PY(
torch_models.load_lowbit_state(model, {k: load('s_' + k) for k in model.state_dict()})
model.eval()
with torch.no_grad():
    save('y', model(load('x')))
)PY", in, {"y"});
  EXPECT_MATCHES(y, r["y"], c.model << " eval logits");
}

TEST_P(Zoo, TrainForwardBackwardMatchesTwin) {
  LB_REQUIRE_TORCH();
  const ZooCase& c = GetParam();
  config::BuiltModel m = build(c.model, c.params);
  nn::Graph& g = *m.graph;
  Rng rng(13);
  randomize_batch_norm(g, rng);
  const Tensor x = random_input(m, c.batch, rng);
  std::map<std::string, Tensor> in{{"x", x}};
  for (auto& [k, t] : state_of(g)) in["s_" + k] = t.clone();  // before the step updates the statistics

  g.train();
  // Dropout masks cannot match PyTorch's: dropout layers run as identity (eval) on both sides,
  // everything else (batch norm with batch statistics) in train mode.
  for (const auto& n : g.nodes())
    if (n.module->type_name() == "dropout") n.module->eval();
  Variable y = g.forward(Variable(x));
  const Tensor labels = random_labels(c.batch, y.size(1), rng);
  in["labels"] = labels;
  Variable loss = ops::cross_entropy(y, labels);
  loss.backward();

  std::vector<std::string> outs{"y", "loss"};
  auto params = g.named_parameters();
  auto buffers = g.named_buffers();
  for (auto& [k, p] : params) {
    outs.push_back("g_" + k);
    outs.push_back("g64_" + k);
  }
  for (auto& [k, t] : buffers) outs.push_back("b_" + k);
  auto r = lt::run_torch(twin_script(c) + R"PY(
def step(model, dtype):
    torch_models.load_lowbit_state(model, {k: load('s_' + k) for k in model.state_dict()})
    model.to(dtype).train()
    for mod in model.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.eval()
    y = model(load('x').to(dtype))
    loss = F.cross_entropy(y, load('labels').long())
    loss.backward()
    return y, loss
y, loss = step(model, torch.float32)
save('y', y)
save('loss', loss.reshape(1))
for k, p in model.named_parameters():
    save('g_' + k, p.grad)
for k, b in model.named_buffers():
    save('b_' + k, b.float() if k.endswith('num_batches_tracked') else b)
model64 = torch_models.build(NAME, **PARAMS)
step(model64, torch.float64)
for k, p in model64.named_parameters():
    save('g64_' + k, p.grad)  # saved as float32
)PY", in, outs);
  EXPECT_MATCHES(y.data(), r["y"], "train-mode logits");
  EXPECT_MATCHES(loss.data(), r["loss"], "loss");
  // Gradients through a stack of batch norms with batch statistics are ill-conditioned in
  // float32 (MobileNetV1: ~28 of them, on maps down to 1x1): PyTorch's own float32 gradients
  // deviate from its float64 ones by up to a few 1e-4 there. So each gradient is compared with
  // PyTorch in float64 and may deviate by kTol plus twice PyTorch-float32's deviation, i.e.
  // lowbit must be about as accurate as PyTorch. For shallow models this is ~kTol.
  for (auto& [k, p] : params) {
    const Tensor& ref = r["g64_" + k];
    ASSERT_TRUE(p.grad().defined()) << k;
    ASSERT_EQ(p.grad().numel(), ref.numel()) << k;
    const float ours = lt::max_rel_diff(p.grad().reshape(ref.shape()), ref);
    const float torch32 = lt::max_rel_diff(r["g_" + k], ref);
    EXPECT_LE(ours, kTol + 2 * torch32) << "gradient of " << k << ": lowbit vs PyTorch float64 " << ours
                                        << ", PyTorch float32 vs float64 " << torch32;
  }
  for (auto& [k, t] : buffers) {
    if (t->dtype() == DType::s32) {
      EXPECT_EQ(static_cast<float>(t->data<int32_t>()[0]), r["b_" + k].f32()[0]) << k;
    } else {
      EXPECT_MATCHES(*t, r["b_" + k], "updated " << k);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, Zoo,
    ::testing::Values(ZooCase{"lenet5", "lenet5", {}, 4},
                      ZooCase{"resnet8", "resnet8", {}, 4},
                      ZooCase{"resnet8_1x28", "resnet8", {{"in_channels", 1}, {"input_size", 28}}, 4},
                      ZooCase{"mobilenet_v1_w025_32", "mobilenet_v1",
                              {{"width", 0.25}, {"input_size", 32}, {"num_classes", 10}}, 16},
                      // 28 -> 14 -> 7 -> 4 -> 2 -> 1: odd sizes, uneven SAME padding
                      ZooCase{"mobilenet_v1_w050_1x28", "mobilenet_v1",
                              {{"width", 0.5}, {"input_size", 28}, {"in_channels", 1}, {"num_classes", 10}}, 16},
                      ZooCase{"ds_cnn", "ds_cnn", {}, 4},
                      ZooCase{"tfc", "tfc", {}, 4},
                      ZooCase{"sfc", "sfc", {}, 4},
                      ZooCase{"lfc", "lfc", {}, 4},
                      ZooCase{"cnv", "cnv", {}, 4}),
    [](const ::testing::TestParamInfo<ZooCase>& i) { return i.param.label; });

// ---- counts -----------------------------------------------------------------------------

// Conv2d and linear weights (no biases, no batch norm).
int64_t weight_count(const nn::Graph& g) {
  int64_t n = 0;
  for (const auto& node : g.nodes()) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(node.module.get())) n += conv->weight().numel();
    if (auto* lin = dynamic_cast<nn::Linear*>(node.module.get())) n += lin->weight().numel();
  }
  return n;
}

TEST(MobileNetV1, WeightCounts) {
  const std::vector<std::pair<double, int64_t>> expected{
      {1.0, 4209088}, {0.75, 2568144}, {0.5, 1319648}, {0.25, 463600}};
  for (const auto& [width, count] : expected) {
    config::BuiltModel m = build("mobilenet_v1", {{"width", width}});
    EXPECT_EQ(m.input, Shape({3, 224, 224}));
    EXPECT_EQ(weight_count(*m.graph), count) << "width " << width;
    EXPECT_EQ(m.graph->infer_shape({Shape({1, 3, 224, 224})}), Shape({1, 1000})) << "width " << width;
  }
}

TEST(MobileNetV1, ActivationShapes) {
  config::BuiltModel m = build("mobilenet_v1", {});
  const nn::Graph& g = *m.graph;
  const auto shapes = g.node_shapes(Shape({1, 3, 224, 224}));
  // "Layer 2": the first pointwise conv, 32 -> 64 channels at 112x112.
  const int pw1 = g.find("conv_pw_1");
  ASSERT_GE(pw1, 0);
  const int pw1_in = g.nodes()[pw1].inputs.at(0);
  ASSERT_GE(pw1_in, 0);
  EXPECT_EQ(shapes[pw1_in], Shape({1, 32, 112, 112}));
  EXPECT_EQ(shapes[pw1_in].numel(), 401408);
  EXPECT_EQ(shapes[pw1], Shape({1, 64, 112, 112}));
  EXPECT_EQ(shapes[pw1].numel(), 802816);
  // SAME padding: 224 -> 112 -> 56 -> 28 -> 14 -> 7.
  EXPECT_EQ(shapes[g.find("conv1")], Shape({1, 32, 112, 112}));
  EXPECT_EQ(shapes[g.find("conv_dw_2")], Shape({1, 64, 56, 56}));
  EXPECT_EQ(shapes[g.find("conv_dw_4")], Shape({1, 128, 28, 28}));
  EXPECT_EQ(shapes[g.find("conv_dw_6")], Shape({1, 256, 14, 14}));
  EXPECT_EQ(shapes[g.find("conv_dw_12")], Shape({1, 512, 7, 7}));
  EXPECT_EQ(shapes[g.find("conv_pw_13")], Shape({1, 1024, 7, 7}));
  EXPECT_EQ(shapes.back(), Shape({1, 1000}));
  // Odd sizes round up: 225 -> 113 -> 57 -> 29 -> 15 -> 8.
  const auto odd = g.node_shapes(Shape({1, 3, 225, 225}));
  EXPECT_EQ(odd[g.find("conv_pw_13")], Shape({1, 1024, 8, 8}));
}

TEST(ZooFiles, WeightCountsOfTheOtherModels) {
  // conv + linear weights at each file's defaults (hand-computed from the architectures)
  const std::vector<std::pair<std::string, int64_t>> expected{
      {"lenet5", 150 + 2400 + 48000 + 10080 + 840},
      {"resnet8", 432 + 2304 * 2 + 4608 + 9216 + 512 + 18432 + 36864 + 2048 + 640},  // 77,360
      {"ds_cnn", 2560 + 4 * (576 + 4096) + 768},
      {"tfc", 784 * 64 + 64 * 64 * 2 + 640},
      {"sfc", 784 * 256 + 256 * 256 * 2 + 2560},
      {"lfc", 784 * 1024 + 1024 * 1024 * 2 + 10240},
      {"cnv", 1728 + 36864 + 73728 + 147456 + 294912 + 589824 + 256 * 512 + 512 * 512 + 5120}};
  for (const auto& [model, count] : expected) EXPECT_EQ(weight_count(*build(model, {}).graph), count) << model;
}

TEST(ZooFiles, DsCnnShapes) {
  config::BuiltModel m = build("ds_cnn", {});
  EXPECT_EQ(m.input, Shape({1, 49, 10}));
  const auto shapes = m.graph->node_shapes(Shape({1, 1, 49, 10}));
  EXPECT_EQ(shapes[m.graph->find("conv1")], Shape({1, 64, 25, 5}));  // SAME, stride 2: ceil(49/2) x ceil(10/2)
  EXPECT_EQ(shapes.back(), Shape({1, 12}));
}

TEST(ZooFiles, CnvNeedsAtLeast32Pixels) {
  EXPECT_EQ(build("cnv", {}).graph->infer_shape({Shape({1, 3, 32, 32})}), Shape({1, 10}));
  // Fashion-MNIST's 28x28: 28 -> 26 -> 24 -> 12 -> 10 -> 8 -> 4 -> 2 -> nothing.
  EXPECT_THROW(build("cnv", {{"in_channels", 1}, {"input_size", 28}}), lowbit::Error);
}

// ---- run configs ------------------------------------------------------------------------

TEST(ZooFiles, EveryModelFileBuildsWithItsDefaults) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(std::string(LOWBIT_SOURCE_DIR) + "/models")) {
    if (e.path().extension() != ".yaml") continue;
    ++n;
    config::BuiltModel m = config::build_model(e.path().string(), {}, 0);
    const Shape out = m.graph->infer_shape({Shape({2, m.input[0], m.input[1], m.input[2]})});
    EXPECT_EQ(out.rank(), 2u) << e.path();
    EXPECT_EQ(m.name, e.path().stem().string()) << "the name: in a model file should be its file name";
  }
  EXPECT_GE(n, 8);
}

TEST(ZooFiles, EveryFashionMnistConfigFitsTheData) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(std::string(LOWBIT_SOURCE_DIR) + "/configs")) {
    if (e.path().extension() != ".yaml" || e.path().stem().string().find("_fmnist") == std::string::npos) continue;
    ++n;
    config::RunConfig cfg = config::load_run_config(e.path().string(), {});
    EXPECT_EQ(cfg.data.dataset, config::DatasetKind::fashion_mnist) << e.path();
    config::BuiltModel m = config::build_model(cfg.model_path, cfg.model_params, 0);
    EXPECT_EQ(m.input, Shape({1, 28, 28})) << e.path();
    EXPECT_EQ(m.graph->infer_shape({Shape({2, 1, 28, 28})}), Shape({2, 10})) << e.path();
  }
  EXPECT_GE(n, 6);  // lenet5, resnet8, mobilenet_v1, tfc, sfc, lfc
}

}  // namespace
