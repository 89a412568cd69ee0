// IDX (Fashion-MNIST) and CIFAR-10 readers: the real Debian files, corrupted copies, fuzzing.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/rng.h"
#include "data/cifar.h"
#include "data/idx.h"
#include "data_test_util.h"
#include "util/needs.h"

namespace lowbit::data {
namespace {

using testing::Bytes;
using testing::error_of;
using testing::make_idx;
using testing::TempDir;
using testing::write_gz;
using testing::write_plain;

const std::string kDir = kFashionMnistDefaultDir;
const std::string kTrainLabels = kDir + "/train-labels-idx1-ubyte.gz";

// The real training set, read once for all tests.
const Dataset& fashion_train() {
  static const Dataset ds = load_fashion_mnist(kDir, true);
  return ds;
}

// ---- Real files ------------------------------------------------------------------------------

TEST(FashionMnist, TrainSetShapeLabelsAndPixels) {
  LB_REQUIRE_FASHION_MNIST();
  const Dataset& ds = fashion_train();
  EXPECT_EQ(ds.name, "fashion-mnist-train");
  EXPECT_EQ(ds.num_classes, 10);
  EXPECT_EQ(ds.images.shape(), Shape({60000, 1, 28, 28}));
  EXPECT_EQ(ds.images.dtype(), DType::u8);
  EXPECT_EQ(ds.labels.shape(), Shape({60000}));
  EXPECT_EQ(ds.labels.dtype(), DType::s32);
  EXPECT_NO_THROW(check_dataset(ds));
  for (int64_t count : label_histogram(ds)) EXPECT_EQ(count, 6000);
  // Values read with `zcat train-labels-idx1-ubyte.gz | xxd` (after the 8-byte header) and
  // from row 14 of the first image (`xxd -s $((16 + 28 * 14))`).
  const std::vector<int32_t> first = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5, 0, 9};
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(ds.labels.data<int32_t>()[i], first[i]) << "label " << i;
  const uint8_t* row14 = ds.images.data<uint8_t>() + 14 * 28;
  EXPECT_EQ(row14[0], 0);
  EXPECT_EQ(row14[2], 1);
  EXPECT_EQ(row14[3], 4);
  EXPECT_EQ(row14[12], 237);
  EXPECT_EQ(row14[13], 226);
}

TEST(FashionMnist, TestSet) {
  LB_REQUIRE_FASHION_MNIST();
  const Dataset ds = load_fashion_mnist(kDir, false);
  EXPECT_EQ(ds.name, "fashion-mnist-test");
  EXPECT_EQ(ds.images.shape(), Shape({10000, 1, 28, 28}));
  EXPECT_EQ(ds.labels.shape(), Shape({10000}));
  for (int64_t count : label_histogram(ds)) EXPECT_EQ(count, 1000);
  const std::vector<int32_t> first = {9, 2, 1, 1};
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(ds.labels.data<int32_t>()[i], first[i]) << "label " << i;
}

TEST(FashionMnist, RawIdxExtents) {
  LB_REQUIRE_FASHION_MNIST();
  const Tensor labels = read_idx(kTrainLabels);
  EXPECT_EQ(labels.shape(), Shape({60000}));
  EXPECT_EQ(labels.dtype(), DType::u8);
  const Tensor images = read_idx(kDir + "/t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(images.shape(), Shape({10000, 28, 28}));
}

TEST(FashionMnist, MissingFolderSaysHowToGetIt) {
  const std::string msg = error_of([] { load_fashion_mnist("/nonexistent/lowbit-fmnist", true); });
  EXPECT_NE(msg.find("cannot open /nonexistent/lowbit-fmnist/train-images-idx3-ubyte.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  EXPECT_NE(msg.find("apt-get install dataset-fashion-mnist"), std::string::npos) << msg;
  EXPECT_NE(msg.find("data.path"), std::string::npos) << msg;
  EXPECT_NE(msg.find("data/"), std::string::npos) << "message carries file:line: " << msg;
}

// ---- Small generated files ---------------------------------------------------------------------

// 5 images of 3x4 (pixel = 12 * n + k) and 5 labels n % 10.
Bytes image_bytes() {
  Bytes data(60);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  return make_idx({5, 3, 4}, data);
}
Bytes label_bytes(int n = 5, uint8_t first = 0) {
  Bytes data;
  for (int i = 0; i < n; ++i) data.push_back(static_cast<uint8_t>(i == 0 ? first : i % 10));
  return make_idx({static_cast<uint32_t>(n)}, data);
}

TEST(Idx, ReadsGzipAndPlainFiles) {
  TempDir tmp;
  write_gz(tmp.file("img.gz"), image_bytes());
  write_plain(tmp.file("lab"), label_bytes());
  const Dataset ds = read_idx_dataset(tmp.file("img.gz"), tmp.file("lab"));
  EXPECT_EQ(ds.images.shape(), Shape({5, 1, 3, 4}));
  EXPECT_EQ(ds.name, "img.gz");
  for (int i = 0; i < 60; ++i) EXPECT_EQ(ds.images.data<uint8_t>()[i], i);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(ds.labels.data<int32_t>()[i], i);
}

// Writes `bytes` (gzip-compressed) to a temp file and expects read_idx to fail with a message
// naming the file and containing `what`.
void expect_idx_error(const Bytes& bytes, const std::string& what, bool gz = true) {
  TempDir tmp;
  const std::string path = tmp.file("bad-idx.gz");
  gz ? write_gz(path, bytes) : write_plain(path, bytes);
  const std::string msg = error_of([&] { read_idx(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
}

TEST(Idx, WrongMagic) {
  Bytes b = image_bytes();
  b[1] = 0x01;
  expect_idx_error(b, "not an IDX file");
}

TEST(Idx, WrongTypeByte) {
  Bytes b = image_bytes();
  b[2] = 0x0D;
  expect_idx_error(b, "type 0xd (float) is not supported");
}

TEST(Idx, TruncatedData) {
  const Bytes b = image_bytes();
  expect_idx_error(Bytes(b.begin(), b.end() - 3), "truncated IDX data: expected 60 bytes for extents [5, 3, 4], got 57");
}

TEST(Idx, TruncatedHeader) {
  const Bytes b = image_bytes();
  expect_idx_error(Bytes(b.begin(), b.begin() + 9), "truncated IDX header: expected 12 bytes of extents, got 5");
  expect_idx_error(Bytes(b.begin(), b.begin() + 2), "truncated IDX header: expected 4 magic bytes, got 2");
}

TEST(Idx, TrailingBytes) {
  Bytes b = image_bytes();
  b.insert(b.end(), {1, 2, 3, 4, 5});
  expect_idx_error(b, "5 unexpected trailing bytes");
}

TEST(Idx, ZeroExtent) {
  expect_idx_error(make_idx({5, 0, 4}, {}), "extent 1 is zero");
  expect_idx_error(make_idx({}, {}), "0 dimensions");
}

TEST(Idx, HugeExtents) { expect_idx_error(make_idx({0xFFFFFFFFu, 0xFFFFFFFFu, 2}, {}), "too large"); }

TEST(Idx, EmptyFile) {
  expect_idx_error({}, "truncated IDX header", /*gz=*/false);
  expect_idx_error({}, "truncated IDX header", /*gz=*/true);
}

TEST(Idx, NotGzipGarbage) {
  Rng rng(7);
  Bytes garbage(500);
  for (auto& v : garbage) v = static_cast<uint8_t>(rng.next_u64());
  garbage[0] = 0x42;
  expect_idx_error(garbage, "not an IDX file", /*gz=*/false);
  // A gzip magic followed by garbage: zlib reports a corrupt stream.
  garbage[0] = 0x1f;
  garbage[1] = 0x8b;
  expect_idx_error(garbage, "corrupt or truncated gzip", /*gz=*/false);
}

TEST(Idx, TruncatedGzipStream) {
  TempDir tmp;
  Bytes data(20000);
  Rng rng(3);
  for (auto& v : data) v = static_cast<uint8_t>(rng.below(7));
  write_gz(tmp.file("full.gz"), make_idx({20000}, data));
  Bytes gz = testing::read_plain(tmp.file("full.gz"));
  ASSERT_GT(gz.size(), 40u);
  gz.resize(gz.size() / 2);
  expect_idx_error(gz, "corrupt or truncated gzip", /*gz=*/false);
}

TEST(Idx, DirectoryIsAnError) {
  TempDir tmp;
  const std::string msg = error_of([&] { read_idx(tmp.path()); });
  EXPECT_NE(msg.find("cannot open " + tmp.path()), std::string::npos) << msg;
}

TEST(IdxDataset, LabelCountMismatch) {
  TempDir tmp;
  write_gz(tmp.file("img.gz"), image_bytes());
  write_gz(tmp.file("lab.gz"), label_bytes(4));
  const std::string msg = error_of([&] { read_idx_dataset(tmp.file("img.gz"), tmp.file("lab.gz")); });
  EXPECT_NE(msg.find(tmp.file("lab.gz") + ": 4 labels but " + tmp.file("img.gz") + " has 5 images"), std::string::npos)
      << msg;
}

TEST(IdxDataset, LabelOutOfRange) {
  TempDir tmp;
  write_gz(tmp.file("img.gz"), image_bytes());
  write_gz(tmp.file("lab.gz"), label_bytes(5, 10));
  const std::string msg = error_of([&] { read_idx_dataset(tmp.file("img.gz"), tmp.file("lab.gz")); });
  EXPECT_NE(msg.find(tmp.file("lab.gz") + ": label 10 of sample 0 is not below 10"), std::string::npos) << msg;
}

TEST(IdxDataset, WrongRanks) {
  TempDir tmp;
  write_gz(tmp.file("img.gz"), image_bytes());
  write_gz(tmp.file("lab.gz"), label_bytes());
  std::string msg = error_of([&] { read_idx_dataset(tmp.file("lab.gz"), tmp.file("lab.gz")); });
  EXPECT_NE(msg.find(tmp.file("lab.gz") + ": IDX images must have 3 dimensions"), std::string::npos) << msg;
  msg = error_of([&] { read_idx_dataset(tmp.file("img.gz"), tmp.file("img.gz")); });
  EXPECT_NE(msg.find(tmp.file("img.gz") + ": IDX labels must have 1 dimension"), std::string::npos) << msg;
}

// ---- Fuzzing the real label file ---------------------------------------------------------------

// Either a lowbit::Error or a tensor consistent with what the file could hold; never a crash.
void read_or_error(const std::string& path, int64_t max_bytes) {
  try {
    const Tensor t = read_idx(path);
    EXPECT_EQ(t.dtype(), DType::u8);
    EXPECT_GT(t.numel(), 0);
    EXPECT_LE(t.numel(), max_bytes);
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(IdxFuzz, TruncatedAndFlippedLabelFiles) {
  LB_REQUIRE_FASHION_MNIST();
  TempDir tmp;
  const std::string path = tmp.file("labels.gz");
  const Bytes compressed = testing::read_plain(kTrainLabels);
  const Bytes raw = testing::read_gz(kTrainLabels);
  ASSERT_EQ(raw.size(), 60008u);
  Rng rng(20240601);
  for (int i = 0; i < 50; ++i) {  // cut the compressed file
    write_plain(path, Bytes(compressed.begin(), compressed.begin() + rng.below(compressed.size())));
    read_or_error(path, 60008);
  }
  for (int i = 0; i < 50; ++i) {  // cut the decompressed data, then compress
    write_gz(path, Bytes(raw.begin(), raw.begin() + rng.below(raw.size())));
    read_or_error(path, 60008);
  }
  for (int i = 0; i < 50; ++i) {  // flip 1 to 3 header bytes
    Bytes b = raw;
    const int flips = 1 + static_cast<int>(rng.below(3));
    for (int f = 0; f < flips; ++f) b[rng.below(8)] ^= static_cast<uint8_t>(1 + rng.below(255));
    write_gz(path, b);
    read_or_error(path, 60008);
  }
}

// ---- CIFAR-10 -------------------------------------------------------------------------------

// n records; record r has label (r + first) % 10 and pixel k = (r * 7 + k) % 256.
Bytes cifar_records(int n, int first = 0) {
  Bytes b;
  for (int r = 0; r < n; ++r) {
    b.push_back(static_cast<uint8_t>((r + first) % 10));
    for (int k = 0; k < 3072; ++k) b.push_back(static_cast<uint8_t>((r * 7 + k) % 256));
  }
  return b;
}

TEST(Cifar, ReadsRecordsInChwOrderAcrossFiles) {
  TempDir tmp;
  write_plain(tmp.file("a.bin"), cifar_records(3));
  write_gz(tmp.file("b.bin.gz"), cifar_records(2, 3));
  const Dataset ds = read_cifar10({tmp.file("a.bin"), tmp.file("b.bin.gz")});
  EXPECT_EQ(ds.images.shape(), Shape({5, 3, 32, 32}));
  EXPECT_EQ(ds.labels.shape(), Shape({5}));
  EXPECT_EQ(ds.num_classes, 10);
  EXPECT_NO_THROW(check_dataset(ds));
  const uint8_t* img = ds.images.data<uint8_t>();
  for (int n = 0; n < 5; ++n) {
    const int r = n < 3 ? n : n - 3;
    EXPECT_EQ(ds.labels.data<int32_t>()[n], n % 10);
    for (int c = 0; c < 3; ++c)
      for (int y : {0, 17, 31})
        for (int x : {0, 5, 31})
          EXPECT_EQ(img[((n * 3 + c) * 32 + y) * 32 + x], (r * 7 + c * 1024 + y * 32 + x) % 256);
  }
}

TEST(Cifar, LoadsStandardFileNames) {
  TempDir tmp;
  for (int i = 1; i <= 5; ++i) write_plain(tmp.file("data_batch_" + std::to_string(i) + ".bin"), cifar_records(2));
  write_plain(tmp.file("test_batch.bin"), cifar_records(3));
  EXPECT_EQ(load_cifar10(tmp.path(), true).size(), 10);
  const Dataset test = load_cifar10(tmp.path(), false);
  EXPECT_EQ(test.size(), 3);
  EXPECT_EQ(test.name, "cifar10-test");
}

TEST(Cifar, BadLength) {
  TempDir tmp;
  Bytes b = cifar_records(2);
  b.resize(b.size() + 5);
  write_plain(tmp.file("bad.bin"), b);
  const std::string msg = error_of([&] { read_cifar10({tmp.file("bad.bin")}); });
  EXPECT_NE(msg.find(tmp.file("bad.bin") + ": length 6151 is not a multiple of the CIFAR-10 record size 3073"),
            std::string::npos)
      << msg;
  write_plain(tmp.file("empty.bin"), {});
  EXPECT_NE(error_of([&] { read_cifar10({tmp.file("empty.bin")}); }).find(tmp.file("empty.bin")), std::string::npos);
}

TEST(Cifar, BadLabel) {
  TempDir tmp;
  Bytes b = cifar_records(3);
  b[2 * 3073] = 10;
  write_plain(tmp.file("bad.bin"), b);
  const std::string msg = error_of([&] { read_cifar10({tmp.file("bad.bin")}); });
  EXPECT_NE(msg.find(tmp.file("bad.bin") + ": record 2 has label 10"), std::string::npos) << msg;
}

TEST(Cifar, MissingFileAndEmptyList) {
  const std::string msg = error_of([] { read_cifar10({"/nonexistent/data_batch_1.bin"}); });
  EXPECT_NE(msg.find("cannot open /nonexistent/data_batch_1.bin: No such file or directory"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { read_cifar10({}); }).find("no files"), std::string::npos);
}

}  // namespace
}  // namespace lowbit::data
