// Ops reject bad arguments with a lowbit::Error that says what was wrong (shapes included).
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "ops/ops.h"

namespace {

using lowbit::DType;
using lowbit::Shape;
using lowbit::Tensor;
using lowbit::Variable;
namespace ops = lowbit::ops;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lowbit::Error& e) {
    return e.what();
  }
  return "";
}

Variable zeros(const Shape& s) { return Variable(Tensor::zeros(s), true); }

#define EXPECT_CONTAINS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

TEST(OpErrors, Conv2dChannelMismatchNamesBothShapes) {
  const std::string m = error_of([] { ops::conv2d(zeros({2, 3, 8, 8}), zeros({4, 5, 3, 3}), Variable(), {}); });
  ASSERT_FALSE(m.empty());
  EXPECT_CONTAINS(m, "[2, 3, 8, 8]");
  EXPECT_CONTAINS(m, "[4, 5, 3, 3]");
}

TEST(OpErrors, Conv2dGroupedChannelMismatch) {
  ops::Conv2dOptions o;
  o.groups = 2;
  const std::string m = error_of([&] { ops::conv2d(zeros({1, 4, 8, 8}), zeros({4, 4, 3, 3}), Variable(), o); });
  ASSERT_FALSE(m.empty());
  EXPECT_CONTAINS(m, "[1, 4, 8, 8]");
  EXPECT_CONTAINS(m, "[4, 4, 3, 3]");
  o.groups = 3;  // does not divide 4 channels
  EXPECT_THROW(ops::conv2d(zeros({1, 4, 8, 8}), zeros({3, 1, 3, 3}), Variable(), o), lowbit::Error);
}

TEST(OpErrors, Conv2dBadRankBiasAndGeometry) {
  EXPECT_THROW(ops::conv2d(zeros({3, 8, 8}), zeros({4, 3, 3, 3}), Variable(), {}), lowbit::Error);
  EXPECT_THROW(ops::conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3}), Variable(), {}), lowbit::Error);
  EXPECT_THROW(ops::conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3, 3}), zeros({5}), {}), lowbit::Error);
  ops::Conv2dOptions o;
  o.stride_h = 0;
  EXPECT_THROW(ops::conv2d(zeros({1, 3, 8, 8}), zeros({4, 3, 3, 3}), Variable(), o), lowbit::Error);
}

TEST(OpErrors, Conv2dInputTooSmall) {
  const std::string m = error_of([] { ops::conv2d(zeros({1, 1, 2, 2}), zeros({1, 1, 3, 3}), Variable(), {}); });
  ASSERT_FALSE(m.empty());
  EXPECT_CONTAINS(m, "too small");
  // With padding the same input is fine.
  ops::Conv2dOptions o;
  o.pad_h = o.pad_w = 1;
  EXPECT_EQ(ops::conv2d(zeros({1, 1, 2, 2}), zeros({1, 1, 3, 3}), Variable(), o).shape(), Shape({1, 1, 2, 2}));
}

TEST(OpErrors, ConvOutSize) {
  EXPECT_EQ(ops::conv_out_size(28, 3, 1, 1, 1, false), 28);
  EXPECT_EQ(ops::conv_out_size(28, 3, 2, 1, 1, false), 14);
  EXPECT_EQ(ops::conv_out_size(9, 3, 1, 2, 2, false), 9);
  EXPECT_EQ(ops::conv_out_size(7, 3, 2, 0, 1, true), 4);
  EXPECT_EQ(ops::conv_out_size(8, 5, 2, 0, 3, true), 4);
  EXPECT_THROW(ops::conv_out_size(2, 5, 1, 0, 1, false), lowbit::Error);
  EXPECT_THROW(ops::conv_out_size(5, 3, 1, 0, 0, false), lowbit::Error);
}

TEST(OpErrors, LinearFeatureMismatch) {
  const std::string m = error_of([] { ops::linear(zeros({4, 10}), zeros({5, 12}), Variable()); });
  ASSERT_FALSE(m.empty());
  EXPECT_CONTAINS(m, "[4, 10]");
  EXPECT_CONTAINS(m, "[5, 12]");
  EXPECT_THROW(ops::linear(zeros({4, 2, 5}), zeros({5, 10}), Variable()), lowbit::Error);
  EXPECT_THROW(ops::linear(zeros({4, 10}), zeros({5, 10}), zeros({4})), lowbit::Error);
}

TEST(OpErrors, PoolingInputTooSmall) {
  ops::Pool2dOptions o;
  o.kernel_h = o.kernel_w = 3;
  o.stride_h = o.stride_w = 1;
  for (auto pool : {ops::max_pool2d, ops::avg_pool2d}) {
    const std::string m = error_of([&] { pool(zeros({1, 2, 2, 2}), o); });
    ASSERT_FALSE(m.empty());
    EXPECT_CONTAINS(m, "too small");
  }
  EXPECT_THROW(ops::max_pool2d(zeros({2, 2, 2}), {}), lowbit::Error);
  EXPECT_THROW(ops::global_avg_pool2d(zeros({2, 2})), lowbit::Error);
  o.pad_h = 2;  // more than half the kernel
  EXPECT_THROW(ops::avg_pool2d(zeros({1, 1, 8, 8}), o), lowbit::Error);
}

TEST(OpErrors, BatchNormChannelMismatch) {
  Tensor rm = Tensor::zeros({3}), rv = Tensor::full({3}, 1.f);
  const std::string m = error_of([&] { ops::batch_norm2d(zeros({2, 4, 3, 3}), Variable(), Variable(), rm, rv, true, 0.1f, 1e-5f); });
  ASSERT_FALSE(m.empty());
  EXPECT_CONTAINS(m, "[2, 4, 3, 3]");
  Tensor rm4 = Tensor::zeros({4}), rv4 = Tensor::full({4}, 1.f);
  EXPECT_THROW(ops::batch_norm2d(zeros({2, 4, 3, 3}), zeros({3}), Variable(), rm4, rv4, true, 0.1f, 1e-5f), lowbit::Error);
  // One value per channel cannot be normalised in training mode.
  EXPECT_THROW(ops::batch_norm2d(zeros({1, 4, 1, 1}), Variable(), Variable(), rm4, rv4, true, 0.1f, 1e-5f), lowbit::Error);
  EXPECT_NO_THROW(ops::batch_norm2d(zeros({1, 4, 1, 1}), Variable(), Variable(), rm4, rv4, false, 0.1f, 1e-5f));
}

TEST(OpErrors, ElementwiseAndShape) {
  const std::string m = error_of([] { ops::add(zeros({2, 3}), zeros({3, 2})); });
  EXPECT_CONTAINS(m, "[2, 3]");
  EXPECT_CONTAINS(m, "[3, 2]");
  lowbit::Rng rng(1);
  EXPECT_THROW(ops::dropout(zeros({4}), 1.f, true, rng), lowbit::Error);
  EXPECT_THROW(ops::dropout(zeros({4}), -0.1f, true, rng), lowbit::Error);
  EXPECT_THROW(ops::hardtanh(zeros({4}), 1.f, 1.f), lowbit::Error);
  EXPECT_THROW(ops::reshape(zeros({2, 3}), Shape{4, 2}), lowbit::Error);
  EXPECT_THROW(ops::concat_channels({}), lowbit::Error);
  const std::string c = error_of([] { ops::concat_channels({zeros({2, 3, 4, 4}), zeros({2, 1, 4, 5})}); });
  EXPECT_CONTAINS(c, "[2, 1, 4, 5]");
  EXPECT_THROW(ops::concat_channels({zeros({2, 3, 4, 4}), zeros({3, 3, 4, 4})}), lowbit::Error);
}

TEST(OpErrors, CrossEntropyLabels) {
  Tensor bad = Tensor::zeros({2}, DType::s32);
  bad.data<int32_t>()[1] = 5;
  const std::string m = error_of([&] { ops::cross_entropy(zeros({2, 5}), bad); });
  EXPECT_CONTAINS(m, "label 5");
  bad.data<int32_t>()[1] = -1;
  EXPECT_THROW(ops::cross_entropy(zeros({2, 5}), bad), lowbit::Error);
  EXPECT_THROW(ops::cross_entropy(zeros({2, 5}), Tensor::zeros({2})), lowbit::Error);          // f32 labels
  EXPECT_THROW(ops::cross_entropy(zeros({2, 5}), Tensor::zeros({3}, DType::s32)), lowbit::Error);  // wrong count
  EXPECT_THROW(ops::cross_entropy(zeros({2, 5, 1}), Tensor::zeros({2}, DType::s32)), lowbit::Error);
}

}  // namespace
