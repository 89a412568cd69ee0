// The autograd engine: ordering, accumulation of shared subexpressions, grad mode, release
// of the graph after backward, and the errors backward() raises.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "ops/ops.h"
#include "util/gradcheck.h"

namespace {

using lowbit::GradSink;
using lowbit::Node;
using lowbit::NoGradGuard;
using lowbit::Rng;
using lowbit::Shape;
using lowbit::Storage;
using lowbit::Tensor;
using lowbit::Variable;
namespace ops = lowbit::ops;
namespace lt = lowbit::testing;

Tensor vec(const std::vector<float>& v) { return Tensor::from_vector({static_cast<int64_t>(v.size())}, v); }

TEST(Autograd, VariableUsedTwiceSumsGradients) {
  Variable x(vec({0.3f, -0.7f, 1.2f}), true);
  // y = tanh(x) + 3x  ->  dy/dx = 1 - tanh(x)^2 + 3
  Variable y = ops::sum(ops::add(ops::tanh(x), ops::mul_scalar(x, 3.f)));
  y.backward();
  ASSERT_TRUE(x.grad().defined());
  for (int i = 0; i < 3; ++i) {
    const float t = std::tanh(x.data().f32()[i]);
    EXPECT_NEAR(x.grad().f32()[i], 1.f - t * t + 3.f, 1e-6f) << i;
  }
}

TEST(Autograd, DiamondSharedIntermediate) {
  Variable x(vec({0.5f, -0.25f}), true);
  // h = tanh(x); y = 2h + sigmoid(h): h's gradient must be complete (both paths) before h's
  // own backward runs, or x gets a partial gradient.
  Variable h = ops::tanh(x);
  Variable y = ops::sum(ops::add(ops::mul_scalar(h, 2.f), ops::sigmoid(h)));
  h = Variable();  // only the graph keeps the intermediate alive
  y.backward();
  for (int i = 0; i < 2; ++i) {
    const float t = std::tanh(x.data().f32()[i]);
    const float s = 1.f / (1.f + std::exp(-t));
    EXPECT_NEAR(x.grad().f32()[i], (2.f + s * (1.f - s)) * (1.f - t * t), 1e-6f) << i;
  }
}

TEST(Autograd, TopologicalOrderWithPathsOfDifferentLength) {
  Variable x(vec({0.1f, 0.2f, -0.4f}), true);
  // c = 3 * (2 * h) + h, h = tanh(x): the long path to h (through a and b) and the short one
  // (straight into c) must both arrive before h's backward: dc/dh = 7.
  Variable h = ops::tanh(x);
  Variable a = ops::mul_scalar(h, 2.f);
  Variable b = ops::mul_scalar(a, 3.f);
  Variable c = ops::add(b, h);
  // Also reach h from a third path, deeper still, summed at the end: d/dh = 7 + 5 = 12.
  Variable d = ops::mul_scalar(ops::mul_scalar(ops::mul_scalar(h, 5.f), 1.f), 1.f);
  Variable out = ops::sum(ops::add(c, d));
  h = a = b = c = d = Variable();
  out.backward();
  for (int i = 0; i < 3; ++i) {
    const float t = std::tanh(x.data().f32()[i]);
    EXPECT_NEAR(x.grad().f32()[i], 12.f * (1.f - t * t), 1e-5f) << i;
  }
}

TEST(Autograd, LongChainOfTemporaries) {
  // Intermediates referenced only by the graph must survive until their backward runs.
  Variable x(vec({0.5f, -1.5f}), true);
  Variable y = x;
  for (int i = 0; i < 200; ++i) y = ops::mul_scalar(ops::add(y, y), 0.5f);  // identity, 400 nodes
  ops::sum(y).backward();
  EXPECT_NEAR(x.grad().f32()[0], 1.f, 1e-6f);
  EXPECT_NEAR(x.grad().f32()[1], 1.f, 1e-6f);
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Variable x(vec({1.f, 2.f}), true);
  {
    NoGradGuard ng;
    EXPECT_FALSE(lowbit::grad_enabled());
    Variable y = ops::mul_scalar(ops::tanh(x), 2.f);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.is_leaf());
    {
      NoGradGuard nested;
      EXPECT_FALSE(lowbit::grad_enabled());
    }
    EXPECT_FALSE(lowbit::grad_enabled()) << "a nested guard must restore the outer (disabled) state";
    EXPECT_THROW(y.backward(), lowbit::Error);
  }
  EXPECT_TRUE(lowbit::grad_enabled());
  Variable z = ops::tanh(x);
  EXPECT_TRUE(z.requires_grad());
  EXPECT_FALSE(z.is_leaf());
}

TEST(Autograd, RequiresGradPropagation) {
  Variable a(vec({1.f, 2.f}), false), b(vec({3.f, 4.f}), true);
  EXPECT_FALSE(ops::tanh(a).requires_grad());
  EXPECT_TRUE(ops::add(a, b).requires_grad());
  Variable s = ops::sum(ops::add(a, b));
  s.backward();
  EXPECT_FALSE(a.grad().defined()) << "no gradient for an input that does not require one";
  ASSERT_TRUE(b.grad().defined());
  EXPECT_EQ(b.grad().to_vector(), (std::vector<float>{1.f, 1.f}));
}

TEST(Autograd, DetachCutsTheGraph) {
  Variable x(vec({0.5f}), true);
  Variable y = ops::tanh(x);
  Variable d = y.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_EQ(d.data().storage(), y.data().storage());
  Variable z = ops::add(ops::mul_scalar(d, 2.f), x);  // only the direct path reaches x
  z.backward();
  EXPECT_NEAR(x.grad().item(), 1.f, 1e-7f);
}

TEST(Autograd, SavedTensorsAndGraphFreedAfterBackward) {
  Rng rng(1);
  Variable x(lt::random_tensor({2, 3, 5, 5}, rng), true);
  Variable w(lt::random_tensor({4, 3, 3, 3}, rng), true);
  ops::Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  Variable t = ops::tanh(ops::conv2d(x, w, Variable(), o));  // tanh saves its output
  std::weak_ptr<Storage> saved_out = t.data().storage();
  std::weak_ptr<Node> tanh_node = t.impl()->grad_fn;
  std::weak_ptr<lowbit::VariableImpl> conv_result = t.impl()->grad_fn->inputs[0];
  Variable loss = ops::mean(t);
  t = Variable();
  std::weak_ptr<Node> root_node = loss.impl()->grad_fn;
  ASSERT_FALSE(saved_out.expired());
  ASSERT_FALSE(tanh_node.expired());
  ASSERT_FALSE(conv_result.expired());
  loss.backward();
  EXPECT_TRUE(loss.is_leaf()) << "grad_fn is reset after backward";
  EXPECT_TRUE(root_node.expired());
  EXPECT_TRUE(tanh_node.expired());
  EXPECT_TRUE(conv_result.expired());
  EXPECT_TRUE(saved_out.expired()) << "tanh's saved output must be released after backward";
  EXPECT_TRUE(x.grad().defined());
  EXPECT_TRUE(w.grad().defined());
}

TEST(Autograd, SavedInputOfIntermediateFreed) {
  Variable x(vec({0.1f, -0.2f, 0.3f}), true);
  Variable h = ops::mul_scalar(x, 2.f);
  std::weak_ptr<Storage> h_storage = h.data().storage();
  Variable y = ops::sum(ops::leaky_relu(h));  // leaky_relu saves its input (h's data)
  h = Variable();
  ASSERT_FALSE(h_storage.expired());
  y.backward();
  EXPECT_TRUE(h_storage.expired());
}

TEST(Autograd, BackwardOnNonScalarWithoutGradientThrows) {
  Variable x(vec({1.f, 2.f, 3.f}), true);
  Variable y = ops::tanh(x);
  EXPECT_THROW(y.backward(), lowbit::Error);
  try {
    y.backward();
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("scalar"), std::string::npos) << e.what();
  }
}

TEST(Autograd, GradientShapeMismatchThrows) {
  Variable x(Tensor::full({2, 3}, 0.5f), true);
  Variable y = ops::tanh(x);
  try {
    y.backward(Tensor::full({3, 2}, 1.f));
    FAIL() << "expected lowbit::Error";
  } catch (const lowbit::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("[3, 2]"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
  }
  EXPECT_THROW(y.backward(Tensor::full({6}, 1.f)), lowbit::Error);
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, BackwardWithoutRequiresGradThrows) {
  Variable x(vec({1.f}), false);
  Variable y = ops::tanh(x);
  EXPECT_THROW(y.backward(), lowbit::Error);
}

TEST(Autograd, BackwardClosureWrongGradShapeThrowsWithOpName) {
  Variable x(Tensor::full({2, 2}, 1.f), true);
  Variable y = lowbit::make_result(
      Tensor::full({2, 2}, 1.f), {x}, [](const Tensor&, GradSink& sink) { sink.add(0, Tensor::full({4}, 1.f)); },
      "broken_op");
  try {
    y.backward(Tensor::full({2, 2}, 1.f));
    FAIL() << "expected lowbit::Error";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken_op"), std::string::npos) << e.what();
  }
}

TEST(Autograd, ScalarBackwardSeedsOnes) {
  Variable x(vec({1.f, 2.f}), true);
  ops::sum(ops::mul_scalar(x, 4.f)).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{4.f, 4.f}));
  x.clear_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Autograd, BackwardOnALeafAccumulates) {
  Variable x(vec({1.f, 2.f}), true);
  x.backward(vec({0.5f, 1.f}));
  x.backward(vec({0.25f, -3.f}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0.75f, -2.f}));
}

TEST(Autograd, BackwardDoesNotAliasUserGradient) {
  Variable x(vec({1.f, 2.f}), true);
  Tensor r = vec({0.5f, 0.25f});
  ops::reshape(x, Shape{2}).backward(r);
  r.fill(100.f);
  EXPECT_EQ(x.grad().to_vector(), (std::vector<float>{0.5f, 0.25f}));
}

TEST(Autograd, LeafGradientsDoNotShareStorage) {
  Variable a(vec({1.f, 2.f}), true), b(vec({3.f, 4.f}), true);
  Variable c = ops::add(a, b);
  ops::sum(c).backward();
  ASSERT_TRUE(a.grad().defined() && b.grad().defined());
  EXPECT_NE(a.grad().storage(), b.grad().storage());
  a.grad().fill(7.f);
  EXPECT_EQ(b.grad().to_vector(), (std::vector<float>{1.f, 1.f}));
}

}  // namespace

// A second backward through a freed graph is an error (PyTorch: "Trying to backward through the
// graph a second time"), not a silent partial gradient.
TEST(Autograd, SecondBackwardThroughFreedGraphThrows) {
  lowbit::Variable x(lowbit::Tensor::full({3}, 2.f), true);
  lowbit::Variable h = lowbit::ops::mul_scalar(x, 3.f);
  lowbit::Variable y = lowbit::ops::sum(h);
  y.backward();
  EXPECT_THROW(y.backward(), lowbit::Error);
  lowbit::Variable z = lowbit::ops::sum(lowbit::ops::relu(h));  // reuses h, whose graph is gone
  EXPECT_THROW(z.backward(), lowbit::Error);
}
