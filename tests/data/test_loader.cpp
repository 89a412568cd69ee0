// Transforms (exact values, crop/flip geometry) and DataLoader (coverage, determinism,
// drop_last, resume, prefetch, speed) on synthetic data sets.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <cstdio>
#include <set>

#include "core/rng.h"
#include "data/loader.h"
#include "data_test_util.h"

namespace lowbit::data {
namespace {

using testing::error_of;

// ---- Transforms ------------------------------------------------------------------------------

// u8 (C, H, W) image with pixel = f(c, y, x).
template <class F>
Tensor make_image(int64_t c, int64_t h, int64_t w, F f) {
  Tensor t = Tensor::empty({c, h, w}, DType::u8);
  uint8_t* p = t.data<uint8_t>();
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) p[(k * h + y) * w + x] = static_cast<uint8_t>(f(k, y, x));
  return t;
}

TEST(Transforms, ToFloatNormalizeExact) {
  // Every byte value in both channels.
  const Tensor img = make_image(2, 16, 16, [](int64_t c, int64_t y, int64_t x) { return (y * 16 + x + c * 77) % 256; });
  const std::vector<float> mean = {0.2860f, 0.5f}, stdv = {0.3530f, 0.25f};
  CompiledTransforms tf(Transforms{ToFloat{}, Normalize{mean, stdv}}, 2, 16, 16);
  Rng rng(1);
  const Tensor out = tf.apply(img, rng);
  ASSERT_EQ(out.shape(), Shape({2, 16, 16}));
  for (int64_t i = 0; i < out.numel(); ++i) {
    const int64_t c = i / 256;
    const float want = (static_cast<float>(img.data<uint8_t>()[i]) / 255.0f - mean[c]) / stdv[c];
    ASSERT_EQ(out.f32()[i], want) << "element " << i;  // bit-exact
  }
}

TEST(Transforms, SingleValueNormalizeAndRawBytes) {
  const Tensor img = make_image(3, 2, 2, [](int64_t c, int64_t y, int64_t x) { return c * 50 + y * 2 + x; });
  Rng rng(1);
  const Tensor raw = CompiledTransforms(Transforms{}, 3, 2, 2).apply(img, rng);
  for (int64_t i = 0; i < raw.numel(); ++i) EXPECT_EQ(raw.f32()[i], static_cast<float>(img.data<uint8_t>()[i]));
  const Tensor norm = CompiledTransforms(Transforms{Normalize{{10.f}, {4.f}}}, 3, 2, 2).apply(img, rng);
  for (int64_t i = 0; i < norm.numel(); ++i)
    EXPECT_EQ(norm.f32()[i], (static_cast<float>(img.data<uint8_t>()[i]) - 10.f) / 4.f);
}

// Value of the zero-padded source image (H, W) at (y, x), 0 outside.
float padded(const Tensor& img, int64_t c, int64_t y, int64_t x) {
  const int64_t h = img.size(1), w = img.size(2);
  if (y < 0 || y >= h || x < 0 || x >= w) return 0.f;
  return img.data<uint8_t>()[(c * h + y) * w + x];
}

// Whether out (C, S, S) is the window of the padded image at offset (oy - pad, ox - pad),
// mirrored when flipped.
bool is_window(const Tensor& out, const Tensor& img, int64_t oy, int64_t ox, bool flipped) {
  const int64_t c = out.size(0), s = out.size(1);
  for (int64_t k = 0; k < c; ++k)
    for (int64_t y = 0; y < s; ++y)
      for (int64_t x = 0; x < s; ++x) {
        const int64_t sx = flipped ? s - 1 - x : x;
        if (out.f32()[(k * s + y) * s + x] != padded(img, k, y + oy, sx + ox)) return false;
      }
  return true;
}

TEST(Transforms, RandomCropIsAWindowOfThePaddedImageAndCoversAllOffsets) {
  const int64_t h = 5, w = 7, size = 4, pad = 2;
  const Tensor img = make_image(2, h, w, [](int64_t c, int64_t y, int64_t x) { return 1 + y * 7 + x + 100 * c; });
  CompiledTransforms tf(Transforms{RandomCrop{size, pad}}, 2, h, w);
  EXPECT_EQ(tf.out_shape(), Shape({2, size, size}));
  std::set<std::pair<int64_t, int64_t>> seen;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    Rng rng(seed), copy(seed);
    const Tensor out = tf.apply(img, rng);
    // The documented draw order: row offset, then column offset, in the padded image.
    const auto oy = static_cast<int64_t>(copy.below(h + 2 * pad - size + 1));
    const auto ox = static_cast<int64_t>(copy.below(w + 2 * pad - size + 1));
    ASSERT_TRUE(is_window(out, img, oy - pad, ox - pad, false)) << "seed " << seed;
    seen.insert({oy, ox});
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>((h + 2 * pad - size + 1) * (w + 2 * pad - size + 1)));
}

// Finds the (offset, flip) that explains out, by search. Returns false when none does.
bool find_window(const Tensor& out, const Tensor& img, int64_t pad, bool* flipped) {
  const int64_t s = out.size(1);
  for (int64_t oy = -pad; oy <= img.size(1) + pad - s; ++oy)
    for (int64_t ox = -pad; ox <= img.size(2) + pad - s; ++ox)
      for (bool f : {false, true})
        if (is_window(out, img, oy, ox, f)) {
          *flipped = f;
          return true;
        }
  return false;
}

TEST(Transforms, FlipBeforeOrAfterCropGivesMirroredWindows) {
  const Tensor img = make_image(1, 6, 6, [](int64_t, int64_t y, int64_t x) { return 1 + y * 6 + x; });
  for (bool flip_first : {false, true}) {
    Transforms t = flip_first ? Transforms{RandomHFlip{}, RandomCrop{4, 1}} : Transforms{RandomCrop{4, 1}, RandomHFlip{}};
    CompiledTransforms tf(t, 1, 6, 6);
    int flips = 0;
    const int trials = 2000;
    for (int i = 0; i < trials; ++i) {
      Rng rng(1000 + i);
      const Tensor out = tf.apply(img, rng);
      bool f = false;
      ASSERT_TRUE(find_window(out, img, 1, &f)) << "trial " << i << " flip_first " << flip_first;
      flips += f;
    }
    EXPECT_GT(flips, trials * 0.45);
    EXPECT_LT(flips, trials * 0.55);
  }
}

TEST(Transforms, FlipProbabilityZeroAndOne) {
  const Tensor img = make_image(1, 3, 5, [](int64_t, int64_t y, int64_t x) { return y * 5 + x; });
  Rng rng(5);
  const Tensor same = CompiledTransforms(Transforms{RandomHFlip{0.f}}, 1, 3, 5).apply(img, rng);
  const Tensor mirror = CompiledTransforms(Transforms{RandomHFlip{1.f}}, 1, 3, 5).apply(img, rng);
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t x = 0; x < 5; ++x) {
      EXPECT_EQ(same.f32()[y * 5 + x], y * 5 + x);
      EXPECT_EQ(mirror.f32()[y * 5 + x], y * 5 + (4 - x));
    }
}

TEST(Transforms, PaddingIsZeroWhereTheCropHappens) {
  // A crop of the full padded image (size = H + 2p) puts padding on every border.
  const Tensor img = make_image(1, 2, 2, [](int64_t, int64_t, int64_t) { return 255; });
  Rng rng(0);
  // Crop after normalize: padding is 0 in the normalized domain.
  Tensor a = CompiledTransforms(Transforms{ToFloat{}, Normalize{{0.5f}, {0.25f}}, RandomCrop{4, 1}}, 1, 2, 2).apply(img, rng);
  // Crop on bytes: padding is byte 0, normalized like any pixel: (0 / 255 - 0.5) / 0.25 = -2.
  Tensor b = CompiledTransforms(Transforms{RandomCrop{4, 1}, ToFloat{}, Normalize{{0.5f}, {0.25f}}}, 1, 2, 2).apply(img, rng);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 4; ++x) {
      const bool border = y == 0 || y == 3 || x == 0 || x == 3;
      EXPECT_EQ(a.f32()[y * 4 + x], border ? 0.f : 2.f);
      EXPECT_EQ(b.f32()[y * 4 + x], border ? -2.f : 2.f);
    }
}

TEST(Transforms, InvalidListsAreClearErrors) {
  auto compile = [](Transforms t, int64_t c = 1) { CompiledTransforms(t, c, 28, 28); };
  EXPECT_NE(error_of([&] { compile(Transforms{Normalize{{0.1f, 0.2f, 0.3f}, {1.f}}}); }).find("3 values for images with 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { compile(Transforms{Normalize{{0.1f}, {0.f}}}); }).find("nonzero"), std::string::npos);
  EXPECT_NE(error_of([&] { compile(Transforms{RandomCrop{40, 4}}); }).find("does not fit"), std::string::npos);
  EXPECT_NE(error_of([&] { compile(Transforms{RandomCrop{28, 2}, RandomCrop{28, 2}}); }).find("at most one"),
            std::string::npos);
  EXPECT_NE(error_of([&] { compile(Transforms{RandomCrop{0, 0}}); }).find("size > 0"), std::string::npos);
  EXPECT_NE(error_of([&] { compile(Transforms{RandomHFlip{1.5f}}); }).find("[0, 1]"), std::string::npos);
  EXPECT_EQ(Transforms({ToFloat{}, RandomCrop{28, 4}, RandomHFlip{}}).str(), "to_float, random_crop(28, pad 4), hflip(0.5)");
}

// ---- DataLoader ------------------------------------------------------------------------------

// n images (1, 2, 3): pixels 0 and 1 hold the index (low, high byte), label = index % 10.
Dataset indexed_dataset(int64_t n) {
  Dataset ds;
  ds.images = Tensor::empty({n, 1, 2, 3}, DType::u8);
  ds.labels = Tensor::empty({n}, DType::s32);
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* p = ds.images.data<uint8_t>() + i * 6;
    p[0] = static_cast<uint8_t>(i & 255);
    p[1] = static_cast<uint8_t>(i >> 8);
    for (int k = 2; k < 6; ++k) p[k] = static_cast<uint8_t>(k);
    ds.labels.data<int32_t>()[i] = static_cast<int32_t>(i % 10);
  }
  ds.num_classes = 10;
  ds.name = "indexed";
  return ds;
}

int64_t decode_index(const Batch& b, int64_t row) {
  const float* x = b.x.f32() + row * 6;
  return static_cast<int64_t>(x[0]) + 256 * static_cast<int64_t>(x[1]);
}

// Sample indices of one epoch, in order, checking batch shapes and labels on the way.
std::vector<int64_t> epoch_indices(DataLoader& dl, int64_t epoch) {
  dl.start_epoch(epoch);
  std::vector<int64_t> seen;
  Batch b;
  int64_t count = 0;
  while (dl.next(b)) {
    EXPECT_EQ(b.index, count);
    EXPECT_EQ(b.x.rank(), 4u);
    EXPECT_EQ(b.x.size(0), b.y.size(0));
    EXPECT_LE(b.x.size(0), dl.options().batch_size);
    for (int64_t r = 0; r < b.x.size(0); ++r) {
      const int64_t idx = decode_index(b, r);
      EXPECT_EQ(b.y.data<int32_t>()[r], idx % 10);
      seen.push_back(idx);
    }
    ++count;
  }
  EXPECT_EQ(count, dl.batches_per_epoch());
  EXPECT_FALSE(dl.next(b));
  return seen;
}

TEST(DataLoader, EveryEpochCoversEachSampleOnce) {
  const Dataset ds = indexed_dataset(1003);
  for (bool shuffle : {false, true})
    for (bool prefetch : {false, true})
      for (int64_t bs : {1, 64, 100, 1003, 5000}) {
        DataLoader dl(ds, {bs, shuffle, false, 42, {}, prefetch});
        EXPECT_EQ(dl.batches_per_epoch(), (1003 + bs - 1) / bs);
        for (int64_t epoch : {0, 1}) {
          std::vector<int64_t> idx = epoch_indices(dl, epoch);
          ASSERT_EQ(idx.size(), 1003u);
          EXPECT_EQ(idx, dl.order());
          if (!shuffle) {
            for (int64_t i = 0; i < 1003; ++i) EXPECT_EQ(idx[i], i);
          }
          std::sort(idx.begin(), idx.end());
          for (int64_t i = 0; i < 1003; ++i) ASSERT_EQ(idx[i], i) << "bs " << bs << " shuffle " << shuffle;
        }
      }
}

TEST(DataLoader, OrderDependsOnlyOnSeedAndEpoch) {
  const Dataset ds = indexed_dataset(500);
  DataLoader a(ds, {32, true, false, 7, {}, true});
  DataLoader b(ds, {50, true, true, 7, {}, false});  // batch size and drop_last do not change the order
  DataLoader c(ds, {32, true, false, 8, {}, true});
  a.start_epoch(3);
  b.start_epoch(3);
  EXPECT_EQ(a.order(), b.order());
  const std::vector<int64_t> e3 = a.order();
  a.start_epoch(4);
  EXPECT_NE(a.order(), e3);
  a.start_epoch(3);
  EXPECT_EQ(a.order(), e3);  // revisiting an epoch gives its order again
  c.start_epoch(3);
  EXPECT_NE(c.order(), e3);
  EXPECT_EQ(epoch_indices(a, 5), epoch_indices(b, 5));
}

TEST(DataLoader, DropLast) {
  const Dataset ds = indexed_dataset(1003);
  DataLoader keep(ds, {100, true, false, 1, {}, true});
  DataLoader drop(ds, {100, true, true, 1, {}, true});
  EXPECT_EQ(keep.batches_per_epoch(), 11);
  EXPECT_EQ(drop.batches_per_epoch(), 10);
  drop.start_epoch(0);
  Batch b;
  int64_t n = 0;
  std::set<int64_t> unique;
  while (drop.next(b)) {
    EXPECT_EQ(b.x.size(0), 100);
    for (int64_t r = 0; r < 100; ++r) unique.insert(decode_index(b, r));
    ++n;
  }
  EXPECT_EQ(n, 10);
  EXPECT_EQ(unique.size(), 1000u);
  keep.start_epoch(0);
  for (int i = 0; i < 11; ++i) ASSERT_TRUE(keep.next(b));
  EXPECT_EQ(b.x.size(0), 3);  // the short last batch
  // Fewer samples than one batch with drop_last: an empty epoch.
  DataLoader tiny(indexed_dataset(5), {8, true, true, 1, {}, true});
  tiny.start_epoch(0);
  EXPECT_EQ(tiny.batches_per_epoch(), 0);
  EXPECT_FALSE(tiny.next(b));
}

bool same_batch(const Batch& a, const Batch& b) {
  return a.index == b.index && a.x.shape() == b.x.shape() &&
         std::memcmp(a.x.f32(), b.x.f32(), static_cast<size_t>(a.x.numel()) * sizeof(float)) == 0 &&
         std::memcmp(a.y.data<int32_t>(), b.y.data<int32_t>(), static_cast<size_t>(a.y.numel()) * 4) == 0;
}

// A 1x10x10 data set with random pixels (label = index % 10) and an augmenting loader.
Dataset random_dataset(int64_t n, int64_t c = 1, int64_t hw = 10) {
  Dataset ds;
  ds.images = Tensor::empty({n, c, hw, hw}, DType::u8);
  ds.labels = Tensor::empty({n}, DType::s32);
  Rng rng(99);
  for (int64_t i = 0; i < ds.images.numel(); ++i) ds.images.data<uint8_t>()[i] = static_cast<uint8_t>(rng.next_u64());
  for (int64_t i = 0; i < n; ++i) ds.labels.data<int32_t>()[i] = static_cast<int32_t>(i % 10);
  ds.num_classes = 10;
  return ds;
}

LoaderOptions augmenting(bool prefetch) {
  return {16, true, false, 123,
          Transforms{ToFloat{}, Normalize{{0.3f}, {0.2f}}, RandomCrop{8, 2}, RandomHFlip{}}, prefetch};
}

std::vector<Batch> all_batches(DataLoader& dl, int64_t epoch) {
  dl.start_epoch(epoch);
  std::vector<Batch> out;
  Batch b;
  while (dl.next(b)) out.push_back(b);
  return out;
}

TEST(DataLoader, AugmentationIsIdenticalWithAndWithoutPrefetch) {
  const Dataset ds = random_dataset(200);
  DataLoader a(ds, augmenting(true)), b(ds, augmenting(false));
  const auto ba = all_batches(a, 2), bb = all_batches(b, 2);
  ASSERT_EQ(ba.size(), 13u);
  ASSERT_EQ(ba.size(), bb.size());
  for (size_t i = 0; i < ba.size(); ++i) EXPECT_TRUE(same_batch(ba[i], bb[i])) << "batch " << i;
  EXPECT_EQ(ba[0].x.shape(), Shape({16, 1, 8, 8}));
  // Another epoch augments differently.
  const auto b3 = all_batches(a, 3);
  EXPECT_FALSE(same_batch(ba[0], b3[0]));
}

TEST(DataLoader, SkipBatchesEqualsConsumingThem) {
  const Dataset ds = random_dataset(200);
  for (bool prefetch : {true, false}) {
    DataLoader full(ds, augmenting(prefetch));
    const auto ref = all_batches(full, 1);
    for (int64_t k : {0, 1, 5, 12}) {
      DataLoader dl(ds, augmenting(prefetch));
      dl.start_epoch(1);
      dl.skip_batches(k);
      EXPECT_EQ(dl.batches_done(), k);
      Batch b;
      for (int64_t i = k; i < static_cast<int64_t>(ref.size()); ++i) {
        ASSERT_TRUE(dl.next(b));
        EXPECT_TRUE(same_batch(b, ref[static_cast<size_t>(i)])) << "k " << k << " batch " << i;
      }
      EXPECT_FALSE(dl.next(b));
    }
    // Skipping in the middle, after some batches were prefetched, and past the end.
    DataLoader dl(ds, augmenting(prefetch));
    dl.start_epoch(1);
    Batch b;
    ASSERT_TRUE(dl.next(b));
    dl.skip_batches(3);
    ASSERT_TRUE(dl.next(b));
    EXPECT_TRUE(same_batch(b, ref[4]));
    dl.skip_batches(100);
    EXPECT_FALSE(dl.next(b));
  }
}

TEST(DataLoader, RestartAndDestroyMidEpoch) {
  const Dataset ds = random_dataset(300);
  Batch b;
  {
    DataLoader dl(ds, augmenting(true));
    const auto ref = all_batches(dl, 0);
    dl.start_epoch(0);
    ASSERT_TRUE(dl.next(b));
    ASSERT_TRUE(dl.next(b));
    dl.start_epoch(0);  // restart: the worker is stopped and the epoch begins again
    ASSERT_TRUE(dl.next(b));
    EXPECT_TRUE(same_batch(b, ref[0]));
    ASSERT_TRUE(dl.next(b));
  }  // destroyed with prefetched batches pending
  DataLoader idle(ds, augmenting(true));
  idle.start_epoch(0);  // destroyed before any next()
}

TEST(DataLoader, ClearErrors) {
  const Dataset ds = indexed_dataset(10);
  EXPECT_NE(error_of([&] { DataLoader z(ds, {0, true, false, 0, {}, true}); }).find("batch_size must be positive, got 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { DataLoader z(ds, {-3, true, false, 0, {}, true}); }).find("got -3"), std::string::npos);
  DataLoader dl(ds, {4, true, false, 0, {}, true});
  Batch b;
  EXPECT_NE(error_of([&] { dl.next(b); }).find("start_epoch"), std::string::npos);
  EXPECT_NE(error_of([&] { dl.skip_batches(1); }).find("start_epoch"), std::string::npos);
  Dataset bad = indexed_dataset(10);
  bad.labels.data<int32_t>()[3] = 12;
  EXPECT_NE(error_of([&] { DataLoader z(bad, {4, true, false, 0, {}, true}); }).find("label 12 of sample 3"),
            std::string::npos);
  EXPECT_NE(error_of([&] { DataLoader z(ds, {4, true, false, 0, Transforms{RandomCrop{5, 0}}, true}); }).find("does not fit"),
            std::string::npos);
}

TEST(DataLoader, ThroughputFashionMnistSized) {
  const Dataset ds = random_dataset(20000, 1, 28);
  LoaderOptions opt{128, true, false, 1,
                    Transforms{ToFloat{}, Normalize{{0.2860f}, {0.3530f}}, RandomCrop{28, 2}, RandomHFlip{}}, true};
  DataLoader dl(ds, opt);
  const auto t0 = std::chrono::steady_clock::now();
  dl.start_epoch(0);
  Batch b;
  int64_t n = 0;
  double checksum = 0;
  while (dl.next(b)) {
    n += b.x.size(0);
    checksum += b.x.f32()[0];
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double rate = static_cast<double>(n) / s;
  std::printf("loader: %lld images of 28x28 in %.3f s = %.0f img/s (checksum %.3f)\n", static_cast<long long>(n), s, rate,
              checksum);
  EXPECT_EQ(n, 20000);
#if defined(NDEBUG) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_GT(rate, 20000.0);  // the training loop's need; measured ~1M img/s on one core
#endif
}

}  // namespace
}  // namespace lowbit::data
