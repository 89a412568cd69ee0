// HDF5 layer on our own files: round trips of every dtype, shape, string and attribute, gzip,
// h5py reading what we write, misuse of the writer, and atomic saving.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "h5_test_util.h"
#include "io/h5_file.h"
#include "util/needs.h"

namespace lowbit::io {
namespace {

namespace fs = std::filesystem;
using h5_test::arange_f32;
using h5_test::arange_int;
using h5_test::Bytes;
using h5_test::error_of;
using h5_test::expect_same;
using h5_test::read_bytes;
using h5_test::run_python;
using h5_test::TempDir;

// ---- Round trips -----------------------------------------------------------------------------------

TEST(H5RoundTrip, EveryDTypeAndShape) {
  TempDir tmp;
  const std::string path = tmp.file("t.h5");
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"conv1.weight", arange_f32({4, 3, 2, 2})},
      {"fc.bias", arange_f32({5}, -1.25f, 7.f)},
      {"ints", arange_int<int32_t>({2, 3}, DType::s32, -2147483647 - 1, 1000003)},
      {"bytes_s8", arange_int<int8_t>({2, 2, 2}, DType::s8, -128, 31)},
      {"bytes_u8", arange_int<uint8_t>({7}, DType::u8, 0, 40)},
      {"scalar", Tensor::full({}, 3.5f)},
      {"scalar_int", arange_int<int32_t>({}, DType::s32, 42, 0)},
      {"empty", Tensor::empty({0}, DType::f32)},
      {"empty_mid", Tensor::empty({3, 0, 2}, DType::s8)},
      {"rank8", arange_f32({1, 2, 1, 2, 1, 2, 1, 2})},
      {"specials", Tensor::from_vector({4}, {std::numeric_limits<float>::infinity(), -0.f,
                                             std::numeric_limits<float>::quiet_NaN(), 1e-45f})},
      {"layer1/0/conv1/weight", arange_f32({2, 2})},
      {"dense/dense/kernel:0", arange_f32({3, 2})},
  };
  {
    H5Writer w(path);
    for (const auto& [name, t] : tensors) w.write_tensor(name, t);
    // A view: rows 1..3 of a [4, 3] tensor.
    w.write_tensor("view", arange_f32({4, 3}).slice0(1, 3));
    w.commit();
  }
  H5Reader r(path);
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(r.has(name)) << name;
    expect_same(r.read_tensor(name), t, name);
  }
  expect_same(r.read_tensor("view"), arange_f32({4, 3}).slice0(1, 3).clone(), "view");
  EXPECT_EQ(r.read_tensor("scalar").rank(), 0u);  // 0-d stays 0-d
  EXPECT_EQ(r.read_tensor("scalar").item(), 3.5f);
  // Full paths, sorted; dotted names stay flat, '/' made groups.
  const std::vector<std::string> want = {"/bytes_s8", "/bytes_u8", "/conv1.weight", "/dense/dense/kernel:0", "/empty",
                                         "/empty_mid", "/fc.bias", "/ints", "/layer1/0/conv1/weight", "/rank8",
                                         "/scalar", "/scalar_int", "/specials", "/view"};
  EXPECT_EQ(r.datasets(), want);
  EXPECT_EQ(r.names()[3], "dense.dense.kernel:0");
  EXPECT_TRUE(r.has_group("/layer1/0"));
  EXPECT_TRUE(r.has_group("dense/dense"));
  EXPECT_FALSE(r.has_group("conv1.weight"));
  // Nested datasets answer to their dotted name and to their path with or without '/'.
  expect_same(r.read_tensor("layer1.0.conv1.weight"), arange_f32({2, 2}), "dotted");
  expect_same(r.read_tensor("/layer1/0/conv1/weight"), arange_f32({2, 2}), "path");
  expect_same(r.read_tensor("dense/dense/kernel:0"), arange_f32({3, 2}), "keras path");
  const H5DatasetInfo info = r.info("ints");
  EXPECT_EQ(info.path, "/ints");
  EXPECT_EQ(info.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(info.type, "int32");
  EXPECT_EQ(r.info("scalar").shape, std::vector<int64_t>{});
}

TEST(H5RoundTrip, GzipCompressionIsOptional) {
  TempDir tmp;
  Tensor big = Tensor::empty({300, 500}, DType::f32);
  for (int64_t i = 0; i < big.numel(); ++i) big.f32()[i] = static_cast<float>(i % 17);
  Tensor small = arange_int<uint8_t>({3}, DType::u8, 1, 1);
  {
    H5Writer w(tmp.file("plain.h5"));
    w.write_tensor("big", big);
    w.commit();
  }
  {
    H5Writer w(tmp.file("gz.h5"), H5WriteOptions{.gzip_level = 6});
    w.write_tensor("big", big);
    w.write_tensor("small", small);
    w.write_tensor("scalar", Tensor::full({}, 2.f));  // scalars and empties are never chunked
    w.write_tensor("empty", Tensor::empty({0, 4}));
    w.set_gzip_level(0);
    w.write_tensor("raw", big);
    w.commit();
  }
  EXPECT_GT(fs::file_size(tmp.file("plain.h5")), 600000u);
  EXPECT_LT(fs::file_size(tmp.file("gz.h5")), 600000u + 100000u);  // 'raw' is 600000 bytes by itself
  H5Reader r(tmp.file("gz.h5"));
  expect_same(r.read_tensor("big"), big, "big");
  expect_same(r.read_tensor("raw"), big, "raw");
  expect_same(r.read_tensor("small"), small, "small");
  EXPECT_EQ(r.read_tensor("scalar").item(), 2.f);
  EXPECT_EQ(r.read_tensor("empty").shape(), Shape({0, 4}));
  EXPECT_HAS(error_of([&] { H5Writer w(tmp.file("x.h5"), H5WriteOptions{.gzip_level = 10}); }), "gzip level");
}

TEST(H5RoundTrip, StringsAndAttributes) {
  TempDir tmp;
  const std::string path = tmp.file("s.h5");
  const std::string utf8 = "h\xC3\xA9llo \xE2\x9C\x93 / config: {a: 1}";
  {
    H5Writer w(path);
    w.write_string("meta/config", utf8);
    w.write_string("empty_text", "");
    w.write_tensor("w", arange_f32({2}));
    w.set_attr("/", "format", "lowbit-checkpoint");
    w.set_attr("/", "version", int64_t{3});
    w.set_attr("/", "epoch", 12);  // int -> int64
    w.set_attr("/", "lr", 0.125);
    w.set_attr("/", "big", std::numeric_limits<int64_t>::min());
    w.set_attr("/", "layer_names", std::vector<std::string>{"conv1", "fc", "a_longer_name"});
    w.set_attr("/", "no_names", std::vector<std::string>{});
    w.set_attr("meta", "note", std::string(utf8));
    w.set_attr("w", "scale", 0.5);
    w.set_attr("newgroup/sub", "created", int64_t{1});  // makes the groups
    w.set_attr("/", "lr", 0.25);                        // replaces
    w.set_attr("/", "version", "three");                // replaces with another type
    w.commit();
  }
  H5Reader r(path);
  EXPECT_EQ(r.read_string("meta/config"), utf8);
  EXPECT_EQ(r.read_string("meta.config"), utf8);
  EXPECT_EQ(r.read_string("empty_text"), "");
  EXPECT_EQ(r.read_strings("meta/config"), std::vector<std::string>{utf8});
  EXPECT_TRUE(r.info("meta/config").is_string);
  EXPECT_EQ(r.attr_string("/", "format"), "lowbit-checkpoint");
  EXPECT_EQ(r.attr_string("/", "version"), "three");
  EXPECT_EQ(r.attr_int("/", "epoch"), 12);
  EXPECT_EQ(r.attr_int("/", "big"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r.attr_double("/", "lr"), 0.25);
  EXPECT_EQ(r.attr_double("/", "epoch"), 12.0);  // integers read as double too
  EXPECT_EQ(r.attr_strings("/", "layer_names"), (std::vector<std::string>{"conv1", "fc", "a_longer_name"}));
  EXPECT_EQ(r.attr_strings("/", "no_names"), std::vector<std::string>{});
  EXPECT_EQ(r.attr_strings("/", "format"), std::vector<std::string>{"lowbit-checkpoint"});
  EXPECT_EQ(r.attr_string("/meta", "note"), utf8);
  EXPECT_EQ(r.attr_double("w", "scale"), 0.5);
  EXPECT_EQ(r.attr_int("newgroup/sub", "created"), 1);
  EXPECT_TRUE(r.has_group("newgroup/sub"));
  EXPECT_TRUE(r.has_attr("/", "lr"));
  EXPECT_FALSE(r.has_attr("/", "missing"));
  EXPECT_FALSE(r.has_attr("/nowhere", "lr"));
  EXPECT_EQ(r.attr_names("/"), (std::vector<std::string>{"big", "epoch", "format", "layer_names", "lr", "no_names", "version"}));
  std::string msg = error_of([&] { r.attr_string("/", "formt"); });
  EXPECT_HAS(msg, "no attribute 'formt'");
  EXPECT_HAS(msg, "format");
  EXPECT_HAS(error_of([&] { r.attr_int("/", "lr"); }), "not an integer");
  EXPECT_HAS(error_of([&] { r.attr_double("/", "format"); }), "not a number");
  EXPECT_HAS(error_of([&] { r.attr_string("/", "layer_names"); }), "3 strings, not one");
  EXPECT_HAS(error_of([&] { r.attr_string("/nowhere", "x"); }), "no group or dataset '/nowhere'");
  EXPECT_HAS(error_of([&] { r.read_string("w"); }), "not strings");
  EXPECT_HAS(error_of([&] { r.read_tensor("meta/config"); }), "use read_string");
}

TEST(H5RoundTrip, H5pyReadsOurFiles) {
  LB_REQUIRE_H5PY();
  TempDir tmp;
  {
    H5Writer w(tmp.file("ours.h5"), H5WriteOptions{.gzip_level = 4});
    w.write_tensor("conv1.weight", arange_f32({2, 3}));
    w.write_tensor("g/ints", arange_int<int32_t>({4}, DType::s32, -5, 3));
    w.write_tensor("g/u8", arange_int<uint8_t>({2}, DType::u8, 250, 5));
    w.write_tensor("num_batches_tracked", arange_int<int32_t>({}, DType::s32, 7, 0));
    w.write_string("text", "caf\xC3\xA9");
    w.set_attr("/", "layer_names", std::vector<std::string>{"a", "bc"});
    w.set_attr("/", "n", int64_t{-9});
    w.set_attr("g", "x", 1.5);
    w.set_attr("/", "s", "str");
    w.commit();
  }
  run_python(tmp, R"PY(
with h5py.File(D + '/ours.h5', 'r') as f:
    w = f['conv1.weight'][()]
    assert w.dtype == np.float32 and w.shape == (2, 3), w
    assert np.array_equal(w, -3 + 0.5 * np.arange(6, dtype=np.float32).reshape(2, 3))
    assert f['conv1.weight'].compression == 'gzip'
    assert list(f['g/ints'][()]) == [-5, -2, 1, 4] and f['g/ints'].dtype == np.int32
    assert f['g/u8'].dtype == np.uint8
    nbt = f['num_batches_tracked']
    assert nbt.shape == () and nbt[()] == 7
    assert f['text'][()].decode() == 'caf\u00e9'
    assert h5py.check_string_dtype(f['text'].dtype).length is None  # variable-length
    assert [x.decode() for x in f.attrs['layer_names']] == ['a', 'bc']
    assert f.attrs['n'] == -9 and f['g'].attrs['x'] == 1.5 and f.attrs['s'] == 'str'
    assert sorted(f.keys()) == ['conv1.weight', 'g', 'num_batches_tracked', 'text']
)PY");
}

TEST(H5Writer, MisuseIsAnError) {
  TempDir tmp;
  H5Writer w(tmp.file("m.h5"));
  w.write_tensor("a", arange_f32({2}));
  EXPECT_HAS(error_of([&] { w.write_tensor("a", arange_f32({2})); }), "'/a' is already written");
  EXPECT_HAS(error_of([&] { w.write_tensor("a/b", arange_f32({2})); }), "'/a' is a dataset");
  EXPECT_HAS(error_of([&] { w.write_tensor("x//y", arange_f32({2})); }), "invalid HDF5 path");
  EXPECT_HAS(error_of([&] { w.write_tensor("", arange_f32({2})); }), "needs a name");
  EXPECT_HAS(error_of([&] { w.write_tensor("u", Tensor()); }), "undefined tensor");
  EXPECT_HAS(error_of([&] { w.write_tensor("r9", Tensor::zeros(Shape(std::vector<int64_t>(9, 1)))); }), "rank 9");
  EXPECT_HAS(error_of([&] { w.write_string("s", std::string("a\0b", 3)); }), "NUL");
  w.commit();
  EXPECT_HAS(error_of([&] { w.write_tensor("b", arange_f32({2})); }), "after commit");
  EXPECT_HAS(error_of([&] { w.commit(); }), "twice");
  EXPECT_HAS(error_of([&] { H5Writer w2(tmp.file("no/such/dir/x.h5")); }), "does not exist");
  EXPECT_HAS(error_of([&] { H5Writer w2(tmp.path()); }), "is a folder");
}

// ---- Atomic saving ---------------------------------------------------------------------------------

void write_v1(const std::string& path) {
  H5Writer w(path);
  w.write_tensor("x", Tensor::full({3}, 1.f));
  w.set_attr("/", "version", int64_t{1});
  w.commit();
}

void expect_v1(const std::string& path) {
  H5Reader r(path);
  EXPECT_EQ(r.datasets(), std::vector<std::string>{"/x"});
  EXPECT_EQ(r.read_tensor("x").to_vector(), std::vector<float>(3, 1.f));
  EXPECT_EQ(r.attr_int("/", "version"), 1);
}

TEST(H5Atomic, DestroyedWithoutCommitLeavesTheTargetIntact) {
  TempDir tmp;
  const std::string path = tmp.file("ckpt.h5");
  write_v1(path);
  {
    H5Writer w(path);
    EXPECT_EQ(w.tmp_path(), path + ".tmp");
    w.write_tensor("y", Tensor::full({1000}, 2.f));
    EXPECT_TRUE(fs::exists(path + ".tmp"));
    expect_v1(path);  // nothing visible before commit
  }
  expect_v1(path);
  EXPECT_EQ(tmp.listing(), std::vector<std::string>{"ckpt.h5"});
  // An exception part-way through a save has the same effect.
  try {
    H5Writer w(path);
    w.write_tensor("y", Tensor::full({10}, 2.f));
    w.write_tensor("y", Tensor::full({10}, 2.f));  // throws
    w.commit();
    FAIL() << "expected an error";
  } catch (const lowbit::Error&) {
  }
  expect_v1(path);
  EXPECT_EQ(tmp.listing(), std::vector<std::string>{"ckpt.h5"});
}

TEST(H5Atomic, CommitReplacesTheTarget) {
  TempDir tmp;
  const std::string path = tmp.file("ckpt.h5");
  write_v1(path);
  {
    H5Writer w(path);
    w.write_tensor("y", Tensor::full({2}, 2.f));
    w.commit();
    EXPECT_TRUE(w.committed());
  }
  H5Reader r(path);
  EXPECT_EQ(r.datasets(), std::vector<std::string>{"/y"});
  EXPECT_EQ(tmp.listing(), std::vector<std::string>{"ckpt.h5"});
}

TEST(H5Atomic, CrashMidWriteKeepsTheOldFile) {
  TempDir tmp;
  const std::string path = tmp.file("ckpt.h5");
  write_v1(path);
  const Bytes before = read_bytes(path);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the child dies in the middle of a save, without destructors
    H5Writer w(path);
    w.write_tensor("y", Tensor::full({100000}, 2.f));
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(read_bytes(path), before);
  expect_v1(path);
  EXPECT_TRUE(fs::exists(path + ".tmp"));  // the stale temporary of the dead process
  {
    H5Writer w(path);  // a later save truncates it
    w.write_tensor("z", Tensor::full({1}, 3.f));
    w.commit();
  }
  EXPECT_EQ(H5Reader(path).datasets(), std::vector<std::string>{"/z"});
  EXPECT_EQ(tmp.listing(), std::vector<std::string>{"ckpt.h5"});
}

}  // namespace
}  // namespace lowbit::io
