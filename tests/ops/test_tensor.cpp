// Tensor basics: allocation, views (reshape, flatten, slice0), copies, and the errors raised
// on misuse.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>

#include "tensor/tensor.h"

namespace {

using lowbit::DType;
using lowbit::Shape;
using lowbit::Tensor;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const lowbit::Error& e) {
    return e.what();
  }
  return "";
}

Tensor iota(const Shape& s) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = static_cast<float>(i);
  return t;
}

TEST(Tensor, DataIs64ByteAligned) {
  for (int64_t n : {0, 1, 3, 15, 16, 17, 63, 64, 65, 1000, 4099}) {
    for (DType dt : {DType::f32, DType::s32, DType::s8, DType::u8}) {
      Tensor t = Tensor::empty({n}, dt);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << "numel " << n << " " << lowbit::dtype_name(dt);
    }
  }
  Tensor z = Tensor::zeros({3, 5, 7});
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z.f32()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z.storage()->data()) % lowbit::Storage::kAlignment, 0u);
}

TEST(Tensor, Factories) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), Shape({2, 3}));
  EXPECT_EQ(z.numel(), 6);
  EXPECT_TRUE(z.is_contiguous());
  EXPECT_EQ(z.strides(), (std::vector<int64_t>{3, 1}));
  for (float v : z.to_vector()) EXPECT_EQ(v, 0.f);
  Tensor f = Tensor::full({4}, 2.5f);
  for (float v : f.to_vector()) EXPECT_EQ(v, 2.5f);
  Tensor v = Tensor::from_vector({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(v.to_vector(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_THROW(Tensor::from_vector({2, 2}, {1, 2, 3}), lowbit::Error);
  EXPECT_THROW(Tensor::empty(Shape({2, -3})), lowbit::Error);
  Tensor zs = Tensor::zeros({5}, DType::s32);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(zs.data<int32_t>()[i], 0);
  EXPECT_EQ(Tensor::full({1}, 3.f).item(), 3.f);
  EXPECT_EQ(v.str(), "Tensor f32 [2, 2]");
}

TEST(Tensor, UndefinedTensor) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_THROW(t.f32(), lowbit::Error);
  EXPECT_THROW(t.raw_data(), lowbit::Error);
}

TEST(Tensor, ReshapeWithMinusOne) {
  Tensor t = iota({2, 3, 4});
  Tensor r = t.reshape({-1, 4});
  EXPECT_EQ(r.shape(), Shape({6, 4}));
  EXPECT_EQ(r.strides(), (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(r.storage(), t.storage()) << "reshape is a view";
  EXPECT_EQ(t.reshape({2, -1}).shape(), Shape({2, 12}));
  EXPECT_EQ(t.reshape({-1}).shape(), Shape({24}));
  EXPECT_EQ(t.reshape({3, -1, 2}).shape(), Shape({3, 4, 2}));
  r.f32()[5] = -1.f;
  EXPECT_EQ(t.f32()[5], -1.f);
  EXPECT_THROW(t.reshape({-1, -1}), lowbit::Error);
  EXPECT_THROW(t.reshape({5, -1}), lowbit::Error);
}

TEST(Tensor, BadReshapeNamesBothShapes) {
  Tensor t = Tensor::zeros({2, 3});
  const std::string m = error_of([&] { (void)t.reshape({4, 2}); });
  ASSERT_FALSE(m.empty()) << "reshape [2, 3] -> [4, 2] must throw";
  EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
  EXPECT_NE(m.find("[4, 2]"), std::string::npos) << m;
}

TEST(Tensor, Flatten) {
  Tensor t = iota({2, 3, 4, 5});
  EXPECT_EQ(t.flatten().shape(), Shape({2, 60}));
  EXPECT_EQ(t.flatten(0).shape(), Shape({120}));
  EXPECT_EQ(t.flatten(2).shape(), Shape({2, 3, 20}));
  EXPECT_EQ(t.flatten(4).shape(), Shape({2, 3, 4, 5, 1}));
  EXPECT_EQ(t.flatten().storage(), t.storage());
  EXPECT_THROW(t.flatten(5), lowbit::Error);
  EXPECT_THROW(t.flatten(-1), lowbit::Error);
}

TEST(Tensor, Slice0SharesStorageWithOffset) {
  Tensor t = iota({5, 2, 3});
  Tensor s = t.slice0(2, 4);
  EXPECT_EQ(s.shape(), Shape({2, 2, 3}));
  EXPECT_EQ(s.storage(), t.storage());
  EXPECT_EQ(s.offset(), 2 * 6);
  EXPECT_EQ(s.f32(), t.f32() + 12);
  EXPECT_TRUE(s.is_contiguous());
  EXPECT_EQ(s.f32()[0], 12.f);
  s.f32()[1] = -5.f;
  EXPECT_EQ(t.f32()[13], -5.f) << "writes through a slice are visible in the base";
  // A slice of a slice accumulates the offset.
  Tensor ss = s.slice0(1, 2);
  EXPECT_EQ(ss.offset(), 3 * 6);
  EXPECT_EQ(ss.f32()[0], 18.f);
  // Reshape of a slice keeps the offset.
  EXPECT_EQ(s.reshape({-1}).f32()[0], 12.f);
  // Empty and full slices.
  EXPECT_EQ(t.slice0(5, 5).numel(), 0);
  EXPECT_EQ(t.slice0(0, 5).to_vector(), t.to_vector());
  EXPECT_THROW(t.slice0(3, 2), lowbit::Error);
  EXPECT_THROW(t.slice0(0, 6), lowbit::Error);
  EXPECT_THROW(t.slice0(-1, 2), lowbit::Error);
}

TEST(Tensor, ContiguousAndClone) {
  Tensor t = iota({4, 3});
  Tensor c = t.contiguous();
  EXPECT_EQ(c.storage(), t.storage()) << "contiguous() of a contiguous tensor is a view";
  Tensor k = t.clone();
  EXPECT_NE(k.storage(), t.storage());
  EXPECT_EQ(k.to_vector(), t.to_vector());
  k.f32()[0] = 99.f;
  EXPECT_EQ(t.f32()[0], 0.f) << "clone is a deep copy";
  // Clone of a slice copies only the slice, at offset 0.
  Tensor s = t.slice0(1, 3).clone();
  EXPECT_EQ(s.offset(), 0);
  EXPECT_EQ(s.shape(), Shape({2, 3}));
  EXPECT_EQ(s.to_vector(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(s.f32()) % 64, 0u);
  // Non-f32 clone.
  Tensor i = Tensor::zeros({3}, DType::s8);
  i.data<int8_t>()[1] = -7;
  Tensor ic = i.clone();
  EXPECT_EQ(ic.dtype(), DType::s8);
  EXPECT_EQ(ic.data<int8_t>()[1], -7);
}

TEST(Tensor, DtypeMismatchAccessThrows) {
  Tensor t = Tensor::zeros({3}, DType::s32);
  const std::string m = error_of([&] { (void)t.f32(); });
  ASSERT_FALSE(m.empty());
  EXPECT_NE(m.find("s32"), std::string::npos) << m;
  EXPECT_NE(m.find("f32"), std::string::npos) << m;
  EXPECT_THROW((void)t.data<int8_t>(), lowbit::Error);
  EXPECT_NO_THROW((void)t.data<int32_t>());
  Tensor f = Tensor::zeros({3});
  EXPECT_THROW((void)f.data<uint8_t>(), lowbit::Error);
  const Tensor& cf = f;
  EXPECT_THROW((void)cf.data<int32_t>(), lowbit::Error);
}

TEST(Tensor, InPlaceOps) {
  Tensor a = Tensor::from_vector({3}, {1, 2, 3});
  a.add_(Tensor::from_vector({3}, {10, 20, 30}));
  EXPECT_EQ(a.to_vector(), (std::vector<float>{11, 22, 33}));
  EXPECT_THROW(a.add_(Tensor::zeros({4})), lowbit::Error);
  a.fill(2.f);
  EXPECT_EQ(a.to_vector(), (std::vector<float>{2, 2, 2}));
  a.zero();
  EXPECT_EQ(a.to_vector(), (std::vector<float>{0, 0, 0}));
  Tensor big = iota({4, 3});
  Tensor part = big.slice0(1, 2);
  part.copy_from(Tensor::from_vector({1, 3}, {-1, -2, -3}));
  EXPECT_EQ(big.to_vector(), (std::vector<float>{0, 1, 2, -1, -2, -3, 6, 7, 8, 9, 10, 11}));
  EXPECT_THROW(part.copy_from(Tensor::zeros({3})), lowbit::Error);
  EXPECT_THROW(part.copy_from(Tensor::zeros({1, 3}, DType::s32)), lowbit::Error);
  EXPECT_THROW((void)big.item(), lowbit::Error);
}

TEST(Tensor, CopiesShareStorage) {
  Tensor a = Tensor::zeros({2});
  Tensor b = a;  // shallow, like torch.Tensor
  b.f32()[0] = 4.f;
  EXPECT_EQ(a.f32()[0], 4.f);
  EXPECT_EQ(a.storage().use_count(), 2);
}

}  // namespace
