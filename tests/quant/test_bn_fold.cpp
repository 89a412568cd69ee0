// Batch norms in quantized models: static merging into the preceding layer, folding during QAT
// after a delay (training and checkpoints), and conversion to a (quantized) scale-bias layer.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "nn/graph.h"
#include "nn/layers.h"
#include "ops/ops.h"
#include "persist/checkpoint.h"
#include "qat_test_util.h"
#include "quant/bn_fold.h"
#include "quant/presets.h"
#include "quant/quant_layers.h"
#include "quant/quant_ops.h"
#include "quant/quantizer.h"
#include "quant/recipe.h"
#include "train/trainer.h"
#include "util/gradcheck.h"
#include "util/needs.h"

namespace {

using lowbit::Rng;
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

void randomize_bn(nn::Graph& g, Rng& rng) {
  for (auto& [n, p] : g.named_parameters())
    if (n.find("bn") != std::string::npos) p.data().copy_from(lt::random_tensor(p.shape(), rng, 0.5f, 1.5f));
  for (auto& [n, t] : g.named_buffers()) {
    if (n.find("running_mean") != std::string::npos) t->copy_from(lt::random_tensor(t->shape(), rng, -0.5f, 0.5f));
    if (n.find("running_var") != std::string::npos) t->copy_from(lt::random_tensor(t->shape(), rng, 0.5f, 2.f));
  }
}

Tensor param_data(nn::Module& m, const std::string& name) { return param(m, name).data(); }

// ---- 1. Batch-norm folding --------------------------------------------------------------

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

// ---- 2. Batch norm as a scale-bias layer ------------------------------------------------

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

}  // namespace
