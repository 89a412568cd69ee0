// HDF5 layer: round trips, files written by h5py (PyTorch / Keras layouts), atomic saving,
// clear errors, and fuzzing with truncated and bit-flipped files.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif
#include <hdf5.h>

#include "core/rng.h"
#include "io/h5_file.h"
#include "util/torch_oracle.h"

namespace lowbit::io {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// ---- Helpers --------------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "lowbit_h5_XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }
  std::vector<std::string> listing() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

Bytes read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

// Runs f and returns the lowbit::Error message ("" and a test failure when nothing is thrown).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const lowbit::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-lowbit exception: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "expected a lowbit::Error";
  return "";
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

const char* kPython = "/usr/bin/python3";

// Runs a Python snippet with `np`, `h5py` and D (the folder) in scope. Throws with its output
// when it fails.
void run_python(const TempDir& dir, const std::string& code) {
  const std::string script = dir.file("script.py"), log = dir.file("script.log");
  {
    std::ofstream f(script);
    f << "import sys\nimport numpy as np\nimport h5py\nD = sys.argv[1]\n" << code << "\n";
  }
  const std::string cmd = std::string(kPython) + " " + script + " " + dir.path() + " >" + log + " 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream lf(log);
  std::string out((std::istreambuf_iterator<char>(lf)), std::istreambuf_iterator<char>());
  fs::remove(script);
  fs::remove(log);
  if (rc != 0) throw std::runtime_error("python failed:\n" + code + "\n---\n" + out);
}

Tensor arange_f32(const Shape& shape, float scale = 0.5f, float offset = -3.f) {
  Tensor t = Tensor::empty(shape, DType::f32);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = offset + scale * static_cast<float>(i);
  return t;
}

template <typename T>
Tensor arange_int(const Shape& shape, DType dt, int64_t start, int64_t step) {
  Tensor t = Tensor::empty(shape, dt);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(start + step * i);
  return t;
}

void expect_same(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  ASSERT_EQ(a.shape(), b.shape()) << what << ": " << a.shape().str() << " vs " << b.shape().str();
  const size_t n = static_cast<size_t>(a.numel()) * dtype_size(a.dtype());
  if (n) {
    EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), n), 0) << what;
  }
}

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

// ---- Files written by h5py -------------------------------------------------------------------------

TEST(H5Py, FlatPyTorchStateDictWithConversions) {
  LB_REQUIRE_H5PY();
  TempDir tmp;
  run_python(tmp, R"PY(
sd = {
  'conv1.weight': np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) * 0.25,
  'bn1.running_mean': np.array([1.5, -2.5], dtype=np.float64),
  'bn1.num_batches_tracked': np.array(7, dtype=np.int64),
  'idx': np.array([[-2147483648, 2147483647], [0, -1]], dtype=np.int64),
  'half': np.array([0.5, -2.0, 65504.0], dtype=np.float16),
  'i16': np.array([-32768, 32767], dtype=np.int16),
  'u16': np.array([65535], dtype=np.uint16),
  'u32': np.array([4000000000], dtype=np.uint32),
  'u64_small': np.array([12345], dtype=np.uint64),
  'be': np.array([1.0, 2.0], dtype='>f4'),
  'big64': np.array([1.0, 1e300], dtype=np.float64),
  'huge_int': np.array([0, 1 << 40], dtype=np.int64),
  'flag': np.array([True, False]),
  'cplx': np.array([1 + 2j], dtype=np.complex64),
  'rank9': np.zeros([1] * 9, dtype=np.float32),
  'nothing': h5py.Empty('f4'),
}
with h5py.File(D + '/sd.h5', 'w') as f:
    for k, v in sd.items():
        f.create_dataset(k, data=v)
)PY");
  H5Reader r(tmp.file("sd.h5"));
  EXPECT_EQ(r.datasets().size(), 16u);
  EXPECT_EQ(r.datasets()[0], "/be");
  EXPECT_TRUE(r.has("conv1.weight"));
  EXPECT_FALSE(r.has("conv1"));
  Tensor w = r.read_tensor("conv1.weight");
  EXPECT_EQ(w.shape(), Shape({2, 3, 2, 2}));
  EXPECT_EQ(w.f32()[23], 23 * 0.25f);
  Tensor rm = r.read_tensor("bn1.running_mean");  // float64 -> f32
  EXPECT_EQ(rm.dtype(), DType::f32);
  EXPECT_EQ(rm.to_vector(), (std::vector<float>{1.5f, -2.5f}));
  Tensor nbt = r.read_tensor("bn1.num_batches_tracked");  // int64 scalar -> 0-d s32
  EXPECT_EQ(nbt.dtype(), DType::s32);
  EXPECT_EQ(nbt.rank(), 0u);
  EXPECT_EQ(nbt.data<int32_t>()[0], 7);
  EXPECT_EQ(r.info("bn1.num_batches_tracked").type, "int64");
  Tensor idx = r.read_tensor("idx");
  EXPECT_EQ(idx.dtype(), DType::s32);
  EXPECT_EQ(idx.data<int32_t>()[0], std::numeric_limits<int32_t>::min());
  EXPECT_EQ(idx.data<int32_t>()[1], std::numeric_limits<int32_t>::max());
  EXPECT_EQ(idx.data<int32_t>()[3], -1);
  EXPECT_EQ(r.read_tensor("half").to_vector(), (std::vector<float>{0.5f, -2.f, 65504.f}));
  Tensor i16 = r.read_tensor("i16");
  EXPECT_EQ(i16.dtype(), DType::s32);
  EXPECT_EQ(i16.data<int32_t>()[0], -32768);
  EXPECT_EQ(r.read_tensor("u16").data<int32_t>()[0], 65535);
  EXPECT_EQ(r.read_tensor("u64_small").data<int32_t>()[0], 12345);
  EXPECT_EQ(r.read_tensor("be").to_vector(), (std::vector<float>{1.f, 2.f}));
  std::string msg = error_of([&] { r.read_tensor("u32"); });
  EXPECT_HAS(msg, "uint32, converted to int32");
  EXPECT_HAS(msg, "4000000000");
  msg = error_of([&] { r.read_tensor("big64"); });
  EXPECT_HAS(msg, "'/big64' (float64, converted to float32)");
  EXPECT_HAS(msg, "outside the float32 range");
  msg = error_of([&] { r.read_tensor("huge_int"); });
  EXPECT_HAS(msg, "int64, converted to int32");
  EXPECT_HAS(msg, "1099511627776 at element 1");
  EXPECT_HAS(error_of([&] { r.read_tensor("flag"); }), "enum (e.g. numpy bool)");
  EXPECT_HAS(error_of([&] { r.read_tensor("cplx"); }), "compound");
  EXPECT_HAS(error_of([&] { r.read_tensor("rank9"); }), "rank 9; at most 8");
  EXPECT_HAS(error_of([&] { r.read_tensor("nothing"); }), "null dataspace");
}

TEST(H5Py, TorchStateDictMatchesTorch) {
  LB_REQUIRE_TORCH();
  LB_REQUIRE_H5PY();
  TempDir tmp;
  const std::string path = tmp.file("model.h5");
  auto out = testing::run_torch(R"PY(
import h5py
torch.manual_seed(0)
m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Flatten(),
                        torch.nn.Linear(4 * 26 * 26, 10))
m.train()
m(torch.randn(2, 1, 28, 28))  # updates the running stats and num_batches_tracked
sd = m.state_dict()
with h5py.File(')PY" + path + R"PY(', 'w') as f:
    for k, v in sd.items():
        f.create_dataset(k, data=v.numpy())
for k, v in sd.items():
    save(k.replace('.', '_'), v)
)PY",
                                {}, {"0_weight", "0_bias", "1_running_var", "1_num_batches_tracked", "4_weight"});
  H5Reader r(path);
  EXPECT_EQ(r.datasets().size(), 9u);  // conv w/b, bn w/b/mean/var/count, linear w/b
  expect_same(r.read_tensor("0.weight"), out["0_weight"], "0.weight");
  expect_same(r.read_tensor("0.bias"), out["0_bias"], "0.bias");
  expect_same(r.read_tensor("1.running_var"), out["1_running_var"], "1.running_var");
  expect_same(r.read_tensor("4.weight"), out["4_weight"], "4.weight");
  Tensor nbt = r.read_tensor("1.num_batches_tracked");
  EXPECT_EQ(nbt.rank(), 0u);
  EXPECT_EQ(nbt.data<int32_t>()[0], 1);
  EXPECT_EQ(out["1_num_batches_tracked"].data<int32_t>()[0], 1);
}

TEST(H5Py, NestedGroupsAndDottedNames) {
  LB_REQUIRE_H5PY();
  TempDir tmp;
  run_python(tmp, R"PY(
with h5py.File(D + '/n.h5', 'w') as f:
    f.create_dataset('conv1/weight', data=np.ones((2, 2), np.float32))
    f.create_dataset('layer1/0/bn1/running_mean', data=np.arange(3, dtype=np.float32))
    f.create_dataset('x.y', data=np.float32([1]))
    f.create_dataset('x/y', data=np.float32([2]))
    f.create_dataset('a.b/c', data=np.float32([3]))
    f.create_dataset('a/b.c', data=np.float32([4]))
    f['soft'] = h5py.SoftLink('/conv1/weight')
    f['ext'] = h5py.ExternalLink('/etc/passwd', '/whatever')
    f['hard_alias'] = f['x.y']
)PY");
  H5Reader r(tmp.file("n.h5"));
  // Hard links to one object are listed once; soft and external links are not listed.
  EXPECT_EQ(r.datasets().size(), 6u);
  EXPECT_EQ(r.read_tensor("conv1.weight").shape(), Shape({2, 2}));
  EXPECT_EQ(r.read_tensor("layer1.0.bn1.running_mean").to_vector(), (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(r.read_tensor("x.y").item(), 1.f);    // the exact flat name wins
  EXPECT_EQ(r.read_tensor("x/y").item(), 2.f);    // the path
  EXPECT_EQ(r.read_tensor("/x/y").item(), 2.f);
  EXPECT_EQ(r.read_tensor("a.b/c").item(), 3.f);
  std::string msg = error_of([&] { r.read_tensor("a.b.c"); });
  EXPECT_HAS(msg, "ambiguous");
  EXPECT_HAS(msg, "'/a.b/c'");
  EXPECT_HAS(msg, "'/a/b.c'");
  EXPECT_FALSE(r.has("a.b.c"));
  EXPECT_EQ(r.read_tensor("soft").shape(), Shape({2, 2}));  // soft links inside the file are followed
  EXPECT_EQ(r.read_tensor("hard_alias").item(), 1.f);
  EXPECT_HAS(error_of([&] { r.read_tensor("ext"); }), "external or user-defined link");
}

TEST(H5Py, VariableAndFixedLengthStrings) {
  LB_REQUIRE_H5PY();
  TempDir tmp;
  run_python(tmp, R"PY(
with h5py.File(D + '/s.h5', 'w') as f:
    f['vlen'] = 'h\u00e9llo'                                      # h5py 3: variable-length UTF-8
    f['vlen_arr'] = np.array(['a', 'bc', ''], dtype=h5py.string_dtype())
    f['fixed'] = np.bytes_('fixed!')                             # 'S6' scalar
    f['fixed_arr'] = np.array([b'ab', b'c', b''], dtype='S4')    # NUL-padded
    f['fixed_1'] = np.array([b'one'])
    f['vlen_bytes'] = np.array([b'raw'], dtype=h5py.string_dtype('ascii'))
    f['vlen_gz'] = f.create_dataset('tmp', data=np.array(['x'] * 100, dtype=h5py.string_dtype()), compression='gzip')
    f.attrs['str'] = 'attr \u2713'
    f.attrs['bytes'] = b'raw bytes'
    f.attrs['fixed_list'] = np.array([b'dense', b'dense_1'])
    f.attrs['vlen_list'] = ['p', 'qr']
    f.attrs['i'] = 5
    f.attrs['i32'] = np.int32(-7)
    f.attrs['u64'] = np.uint64(2**63 + 1)
    f.attrs['f'] = 2.5
    f.attrs['f32'] = np.float32(0.5)
    f.attrs['arr'] = np.array([1, 2])
    f.attrs['flag'] = True          # enum
    f.attrs['cplx'] = 1 + 2j        # compound
    f.attrs['many_bools'] = np.ones(100, dtype=bool)
)PY");
  H5Reader r(tmp.file("s.h5"));
  EXPECT_EQ(r.read_string("vlen"), "h\xC3\xA9llo");
  EXPECT_EQ(r.read_strings("vlen_arr"), (std::vector<std::string>{"a", "bc", ""}));
  EXPECT_EQ(r.read_string("fixed"), "fixed!");
  EXPECT_EQ(r.read_strings("fixed_arr"), (std::vector<std::string>{"ab", "c", ""}));
  EXPECT_EQ(r.read_string("fixed_1"), "one");
  EXPECT_EQ(r.read_string("vlen_bytes"), "raw");
  EXPECT_EQ(r.read_strings("vlen_gz").size(), 100u);
  EXPECT_HAS(error_of([&] { r.read_string("vlen_arr"); }), "holds 3 strings, not one");
  EXPECT_EQ(r.attr_string("/", "str"), "attr \xE2\x9C\x93");
  EXPECT_EQ(r.attr_string("/", "bytes"), "raw bytes");
  EXPECT_EQ(r.attr_strings("/", "fixed_list"), (std::vector<std::string>{"dense", "dense_1"}));
  EXPECT_EQ(r.attr_strings("/", "vlen_list"), (std::vector<std::string>{"p", "qr"}));
  EXPECT_EQ(r.attr_int("/", "i"), 5);
  EXPECT_EQ(r.attr_int("/", "i32"), -7);
  EXPECT_HAS(error_of([&] { r.attr_int("/", "u64"); }), "does not fit int64");
  EXPECT_EQ(r.attr_double("/", "f"), 2.5);
  EXPECT_EQ(r.attr_double("/", "f32"), 0.5);
  EXPECT_HAS(error_of([&] { r.attr_int("/", "arr"); }), "holds 2 values");
  EXPECT_HAS(error_of([&] { r.attr_strings("/", "arr"); }), "not strings");
  EXPECT_TRUE(r.has_attr("/", "flag"));
  EXPECT_HAS(error_of([&] { r.attr_int("/", "flag"); }), "enum (e.g. numpy bool), not an integer");
  EXPECT_HAS(error_of([&] { r.attr_double("/", "cplx"); }), "compound");
  EXPECT_EQ(r.attr_names("/").size(), 13u);
}

TEST(H5Py, CompressionFiltersAndLayouts) {
  LB_REQUIRE_H5PY();
  TempDir tmp;
  run_python(tmp, R"PY(
a = (np.arange(10000, dtype=np.float32) % 13).reshape(100, 100)
with h5py.File(D + '/c.h5', 'w') as f:
    f.create_dataset('gzip', data=a, compression='gzip', compression_opts=9)
    f.create_dataset('shuffle_fletcher', data=a, compression='gzip', shuffle=True, fletcher32=True)
    f.create_dataset('chunked_only', data=a, chunks=(7, 9))
    f.create_dataset('lzf', data=a, compression='lzf')
    f.create_dataset('model.fc.weight', data=a, compression='lzf')
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    ds = h5py.h5d.create(f.id, b'compact', h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple((100, 100)), dcpl=dcpl)
    ds.write(h5py.h5s.ALL, h5py.h5s.ALL, a)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.COMPACT)
    t = h5py.h5t.C_S1.copy(); t.set_size(h5py.h5t.VARIABLE); t.set_cset(h5py.h5t.CSET_UTF8)
    ds = h5py.h5d.create(f.id, b'compact_str', t, h5py.h5s.create_simple((2,)), dcpl=dcpl)
    h5py.Dataset(ds)[...] = np.array(['x', 'yz'], dtype=h5py.string_dtype())
    # Chunks whose deflate was skipped (filter mask bit 0): stored raw. A whole raw chunk is
    # fine; a short one would make libhdf5 1.10 read past its buffer.
    ok = f.create_dataset('skipped_ok', shape=(2, 64), dtype='f4', chunks=(1, 64), compression='gzip')
    ok[0] = np.arange(64, dtype=np.float32)
    ok.id.write_direct_chunk((1, 0), np.arange(64, 128, dtype=np.float32).tobytes(), filter_mask=1)
    bad = f.create_dataset('skipped_short', shape=(2, 64), dtype='f4', chunks=(1, 64), compression='gzip')
    bad[0] = 1
    bad.id.write_direct_chunk((1, 0), b'x' * 24, filter_mask=1)
)PY");
  H5Reader r(tmp.file("c.h5"));
  EXPECT_EQ(r.read_strings("compact_str"), (std::vector<std::string>{"x", "yz"}));
  for (const char* name : {"gzip", "shuffle_fletcher", "chunked_only", "compact"}) {
    Tensor t = r.read_tensor(name);
    ASSERT_EQ(t.shape(), Shape({100, 100})) << name;
    for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(t.f32()[i], static_cast<float>(i % 13)) << name << " " << i;
  }
  std::string msg = error_of([&] { r.read_tensor("model.fc.weight"); });
  EXPECT_HAS(msg, "dataset '/model.fc.weight'");
  EXPECT_HAS(msg, "lzf");
  EXPECT_HAS(msg, "re-save it without lzf");
  EXPECT_HAS(msg, "compression='gzip'");
  EXPECT_HAS(msg, "c.h5");
  Tensor ok = r.read_tensor("skipped_ok");
  for (int64_t i = 0; i < 128; ++i) ASSERT_EQ(ok.f32()[i], static_cast<float>(i));
  EXPECT_HAS(error_of([&] { r.read_tensor("skipped_short"); }), "24-byte chunk stored without compression");
  // The rest of the file stays readable after the error.
  EXPECT_EQ(r.read_tensor("gzip").numel(), 10000);
}

TEST(H5Py, KerasLegacyLayout) {
  LB_REQUIRE_H5PY();
  TempDir tmp;
  // What Keras 2 `model.save_weights('w.h5')` writes: root attributes layer_names, backend and
  // keras_version (fixed-length bytes), a group per layer with weight_names, and weights at
  // <layer>/<weight name>; a layer without weights gets an empty float64 weight_names.
  run_python(tmp, R"PY(
with h5py.File(D + '/k.h5', 'w') as f:
    f.attrs['layer_names'] = np.array([b'flatten', b'dense', b'dense_1'])
    f.attrs['backend'] = b'tensorflow'
    f.attrs['keras_version'] = b'2.11.0'
    g = f.create_group('flatten'); g.attrs['weight_names'] = np.array([])
    for name, shape in (('dense', (784, 16)), ('dense_1', (16, 10))):
        g = f.create_group(name)
        g.attrs['weight_names'] = np.array([(name + '/kernel:0').encode(), (name + '/bias:0').encode()])
        g.create_dataset(name + '/kernel:0', data=np.full(shape, 0.5, np.float32))
        g.create_dataset(name + '/bias:0', data=np.zeros(shape[1], np.float32))
)PY");
  H5Reader r(tmp.file("k.h5"));
  EXPECT_EQ(r.attr_string("/", "backend"), "tensorflow");
  EXPECT_EQ(r.attr_string("/", "keras_version"), "2.11.0");
  const auto layers = r.attr_strings("/", "layer_names");
  ASSERT_EQ(layers, (std::vector<std::string>{"flatten", "dense", "dense_1"}));
  EXPECT_TRUE(r.attr_strings("flatten", "weight_names").empty());
  std::vector<std::string> shapes;
  for (const auto& layer : layers)
    for (const auto& w : r.attr_strings(layer, "weight_names")) shapes.push_back(layer + "/" + w + " " + r.read_tensor(layer + "/" + w).shape().str());
  EXPECT_EQ(shapes, (std::vector<std::string>{"dense/dense/kernel:0 [784, 16]", "dense/dense/bias:0 [16]",
                                              "dense_1/dense_1/kernel:0 [16, 10]", "dense_1/dense_1/bias:0 [10]"}));
  EXPECT_EQ(r.datasets()[0], "/dense/dense/bias:0");
  EXPECT_EQ(r.names()[0], "dense.dense.bias:0");
  EXPECT_TRUE(r.has("dense.dense.kernel:0"));
}

TEST(H5Py, ClaimedSizesBeyondTheStoredBytes) {
  LB_REQUIRE_H5PY();
  TempDir tmp;
  run_python(tmp, R"PY(
with h5py.File(D + '/u.h5', 'w') as f:
    f.create_dataset('huge_chunked', shape=(1 << 40,), dtype='f4', chunks=(1 << 16,))
    f.create_dataset('big_contiguous', shape=(100000000,), dtype='f4')
    f.create_dataset('small_unwritten', shape=(10,), dtype='f4', fillvalue=1.5)
)PY");
  ASSERT_LT(fs::file_size(tmp.file("u.h5")), 100000u);
  H5Reader r(tmp.file("u.h5"));
  EXPECT_HAS(error_of([&] { r.read_tensor("huge_chunked"); }), "over the limit");
  std::string msg = error_of([&] { r.read_tensor("big_contiguous"); });
  EXPECT_HAS(msg, "claims 400000000 bytes of data but the file stores only 0");
  // A small never-written dataset reads as its fill value.
  EXPECT_EQ(r.read_tensor("small_unwritten").to_vector(), std::vector<float>(10, 1.5f));
  H5ReadLimits tight;
  tight.max_elements = 5;
  H5Reader r2(tmp.file("u.h5"), tight);
  EXPECT_HAS(error_of([&] { r2.read_tensor("small_unwritten"); }), "over the limit of 5");
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

// ---- Errors ---------------------------------------------------------------------------------------

TEST(H5Errors, MissingNotHdf5AndFolder) {
  TempDir tmp;
  std::string msg = error_of([&] { H5Reader r(tmp.file("nope.h5")); });
  EXPECT_HAS(msg, "nope.h5");
  EXPECT_HAS(msg, "no such file");
  write_bytes(tmp.file("text.h5"), Bytes{'h', 'e', 'l', 'l', 'o', '\n'});
  msg = error_of([&] { H5Reader r(tmp.file("text.h5")); });
  EXPECT_HAS(msg, "text.h5' is not an HDF5 file");
  write_bytes(tmp.file("empty.h5"), Bytes{});
  EXPECT_HAS(error_of([&] { H5Reader r(tmp.file("empty.h5")); }), "not an HDF5 file");
  EXPECT_HAS(error_of([&] { H5Reader r(tmp.path()); }), "is a folder");
}

TEST(H5Errors, TruncatedFile) {
  TempDir tmp;
  const std::string path = tmp.file("t.h5");
  {
    H5Writer w(path);
    w.write_tensor("a", arange_f32({1000}));
    w.write_tensor("b", arange_f32({1000}));
    w.commit();
  }
  Bytes b = read_bytes(path);
  b.resize(b.size() / 2);
  write_bytes(path, b);
  std::string msg = error_of([&] { H5Reader r(path); });
  EXPECT_HAS(msg, "t.h5");
  EXPECT_HAS(msg, "truncated");
}

TEST(H5Errors, MissingDatasetListsCloseNames) {
  TempDir tmp;
  const std::string path = tmp.file("m.h5");
  {
    H5Writer w(path);
    for (const char* n : {"conv1.weight", "conv1.bias", "conv2.weight", "fc.weight", "fc.bias", "bn1.running_mean"})
      w.write_tensor(n, arange_f32({1}));
    w.write_tensor("layer1/0/conv1/weight", arange_f32({1}));
    w.commit();
  }
  H5Reader r(path);
  std::string msg = error_of([&] { r.read_tensor("conv1.wieght"); });
  EXPECT_HAS(msg, "m.h5");
  EXPECT_HAS(msg, "no dataset 'conv1.wieght'");
  EXPECT_HAS(msg, "7 datasets");
  EXPECT_HAS(msg, "close names: conv1.weight");
  EXPECT_EQ(msg.find("bn1.running_mean"), std::string::npos) << msg;
  msg = error_of([&] { r.read_tensor("layer1.0.conv1.weights"); });
  EXPECT_HAS(msg, "layer1.0.conv1.weight");
  EXPECT_FALSE(r.has("conv1.wieght"));
  EXPECT_FALSE(r.has(""));
  EXPECT_FALSE(r.has("/"));
  EXPECT_FALSE(r.has("layer1"));  // a group, not a dataset
  EXPECT_HAS(error_of([&] { r.read_tensor("layer1"); }), "no dataset 'layer1'");
  EXPECT_HAS(error_of([&] { r.info("nope"); }), "no dataset 'nope'");
}

// libhdf5 1.10 itself crashes (H5HG_read) on a corrupt global heap; strings are decoded by the
// reader instead, so each of these is a clear error.
TEST(H5Errors, CorruptGlobalHeapIsAnErrorNotACrash) {
  TempDir tmp;
  const std::string path = tmp.file("g.h5");
  {
    H5Writer w(path);
    w.write_string("config", "model: lenet5");
    w.set_attr("/", "format", "lowbit");
    w.commit();
  }
  const Bytes orig = read_bytes(path);
  size_t gcol = 0;
  for (size_t i = 0; i + 4 <= orig.size(); ++i)
    if (std::memcmp(&orig[i], "GCOL", 4) == 0) { gcol = i; break; }
  ASSERT_GT(gcol, 0u) << "no global heap in the file";
  const size_t obj = gcol + 16;  // first object: index (2), references (2), reserved (4), size (8)
  struct Case { const char* what; size_t at; std::vector<uint8_t> bytes; const char* expect; };
  const std::vector<Case> cases = {
      {"bad magic", gcol, {'X'}, "no global heap collection"},
      {"huge collection", gcol + 8, {0xff, 0xff, 0xff, 0x7f}, "claims"},
      {"index", obj, {0x77, 0x77}, "does not exist"},
      {"object size", obj + 8, {0xff, 0xff, 0xff, 0x00, 0x01}, "overruns its collection"},
  };
  for (const auto& c : cases) {
    Bytes b = orig;
    for (size_t k = 0; k < c.bytes.size(); ++k) b[c.at + k] = c.bytes[k];
    write_bytes(path, b);
    H5Reader r(path);  // the heap is only touched when a string is read
    std::string msg = error_of([&] {
      r.read_string("config");
      r.attr_string("/", "format");
    });
    EXPECT_HAS(msg, c.expect) << c.what;
    EXPECT_HAS(msg, path) << c.what;
  }
}

// ---- Fuzzing ---------------------------------------------------------------------------------------

// A real checkpoint-like file: ~10 tensors of every dtype (two compressed), strings, attributes.
void write_fuzz_source(const std::string& path) {
  H5Writer w(path);
  w.write_tensor("conv1.weight", arange_f32({4, 1, 3, 3}));
  w.write_tensor("conv1.bias", arange_f32({4}));
  w.write_tensor("bn1.running_mean", arange_f32({4}, 0.1f, 0.f));
  w.write_tensor("bn1.num_batches_tracked", arange_int<int32_t>({}, DType::s32, 100, 0));
  w.write_tensor("layer1/0/weight", arange_f32({8, 4}));
  w.write_tensor("quant/codes", arange_int<int8_t>({16}, DType::s8, -8, 1));
  w.write_tensor("quant/bytes", arange_int<uint8_t>({2, 8}, DType::u8, 0, 13));
  w.write_tensor("quant/zero", arange_int<int32_t>({3}, DType::s32, -1, 1));
  w.write_tensor("empty", Tensor::empty({0, 3}));
  w.set_gzip_level(5);
  w.write_tensor("fc.weight", arange_f32({10, 64}, 0.01f, 0.f));
  w.write_tensor("layer1/0/gz", arange_int<int32_t>({50}, DType::s32, 0, 7));
  w.set_gzip_level(0);
  w.write_string("config", "model: lenet5\nepochs: 10\n");
  w.write_string("meta/notes", "fuzz source \xE2\x9C\x93");
  w.set_attr("/", "format", "lowbit-checkpoint");
  w.set_attr("/", "version", int64_t{1});
  w.set_attr("/", "lr", 0.01);
  w.set_attr("/", "layer_names", std::vector<std::string>{"conv1", "bn1", "layer1", "fc"});
  w.set_attr("layer1/0", "weight_names", std::vector<std::string>{"weight", "gz"});
  w.set_attr("conv1.weight", "scale", 0.5);
  w.commit();
}

// Everything in the file, through the public API. Throws lowbit::Error when anything fails.
int64_t load_everything(const std::string& path, const H5ReadLimits& limits = {}) {
  H5Reader r(path, limits);
  int64_t total = 0;
  for (const auto& name : r.datasets()) {
    if (r.info(name).is_string) {
      for (const auto& s : r.read_strings(name)) total += static_cast<int64_t>(s.size());
    } else {
      total += r.read_tensor(name).numel();
    }
  }
  total += static_cast<int64_t>(r.attr_string("/", "format").size());
  total += r.attr_int("/", "version");
  total += static_cast<int64_t>(r.attr_double("/", "lr") * 100);
  total += static_cast<int64_t>(r.attr_strings("/", "layer_names").size());
  total += static_cast<int64_t>(r.attr_strings("layer1/0", "weight_names").size());
  total += static_cast<int64_t>(r.attr_double("conv1.weight", "scale") * 2);
  for (const auto& a : r.attr_names("/")) total += static_cast<int64_t>(a.size());
  return total;
}

#if defined(__SANITIZE_ADDRESS__)
// A corrupt size can make libhdf5 ask malloc for petabytes; glibc returns NULL and libhdf5
// reports an error, so under ASan the allocator must do the same instead of aborting.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }
#endif

// libhdf5 1.10 leaks a few hundred bytes on some of its error paths for corrupt object headers
// (H5O cache deserialization, H5Fopen of a damaged root group); that is not this layer's to
// fix, so LeakSanitizer ignores what is allocated while corrupt files are read. The free lists
// are emptied first so no block from the other tests is reused inside. The other tests run
// with full leak checking.
struct IgnoreLibhdf5LeaksOnCorruptFiles {
  IgnoreLibhdf5LeaksOnCorruptFiles() {
    H5garbage_collect();
#if defined(__SANITIZE_ADDRESS__)
    __lsan_disable();
#endif
  }
  ~IgnoreLibhdf5LeaksOnCorruptFiles() {
    H5garbage_collect();
#if defined(__SANITIZE_ADDRESS__)
    __lsan_enable();
#endif
  }
};

int64_t peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

struct FuzzCounts {
  int loaded = 0, errors = 0;
};

void load_or_error(const std::string& path, FuzzCounts& c, const std::string& variant) {
  try {
    load_everything(path);
    ++c.loaded;
  } catch (const lowbit::Error& e) {
    ++c.errors;
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << variant << ": " << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << variant << ": non-lowbit exception " << e.what();
  }
}

void fuzz_file(const std::string& source, const std::string& path, uint64_t seed, FuzzCounts& trunc, FuzzCounts& flips) {
  const Bytes orig = read_bytes(source);
  ASSERT_GT(orig.size(), 1000u);
  Rng rng(seed);
  for (int i = 0; i < 200; ++i) {
    const size_t len = rng.below(orig.size());
    write_bytes(path, Bytes(orig.begin(), orig.begin() + static_cast<std::ptrdiff_t>(len)));
    load_or_error(path, trunc, std::string("truncated to ").append(std::to_string(len)));
  }
  for (int i = 0; i < 200; ++i) {
    Bytes b = orig;
    const int n = 1 + static_cast<int>(rng.below(8));
    std::string desc = "flips";
    for (int f = 0; f < n; ++f) {
      const size_t pos = rng.below(b.size());
      const int bit = static_cast<int>(rng.below(8));
      b[pos] ^= static_cast<uint8_t>(1u << bit);
      desc += ' ';
      desc += std::to_string(pos);
      desc += ':';
      desc += std::to_string(bit);
    }
    write_bytes(path, b);
    load_or_error(path, flips, desc);
  }
}

TEST(H5Fuzz, TruncatedAndBitFlippedCheckpoints) {
  TempDir tmp;
  IgnoreLibhdf5LeaksOnCorruptFiles ignore_leaks;
  const std::string source = tmp.file("source.h5"), path = tmp.file("fuzz.h5");
  write_fuzz_source(source);
  const int64_t full = load_everything(source);
  ASSERT_GT(full, 0);
  const int64_t rss_before = peak_rss_mb();
  FuzzCounts trunc, flips;
  fuzz_file(source, path, 20240611, trunc, flips);
  std::printf("[ fuzz ] %zu-byte file; truncated: %d loaded, %d errors; bit flips: %d loaded, %d errors; peak RSS %ld -> %ld MiB\n",
              static_cast<size_t>(fs::file_size(source)), trunc.loaded, trunc.errors, flips.loaded, flips.errors,
              static_cast<long>(rss_before), static_cast<long>(peak_rss_mb()));
  EXPECT_EQ(trunc.loaded + trunc.errors, 200);
  EXPECT_EQ(flips.loaded + flips.errors, 200);
  EXPECT_GT(trunc.errors, 190);  // only a cut at the very end could still load
  EXPECT_LT(peak_rss_mb() - rss_before, 1024) << "a corrupt file made the reader allocate too much";
}

// The same for a file h5py wrote with its defaults (oldest file format: no metadata checksums,
// so more corruptions get past libhdf5's own checks).
TEST(H5Fuzz, TruncatedAndBitFlippedH5pyFile) {
  LB_REQUIRE_H5PY();
  TempDir tmp;
  run_python(tmp, R"PY(
with h5py.File(D + '/src.h5', 'w') as f:
    f.create_dataset('conv1.weight', data=np.arange(36, dtype=np.float32).reshape(4, 1, 3, 3))
    f.create_dataset('bn1.num_batches_tracked', data=np.array(100, dtype=np.int64))
    f.create_dataset('bn1.running_var', data=np.ones(4, dtype=np.float64))
    f.create_dataset('layer1/0/weight', data=np.zeros((8, 4), np.float32))
    f.create_dataset('fc.weight', data=np.zeros((10, 64), np.float32), compression='gzip')
    f['config'] = 'model: lenet5'
    f['fixed'] = np.array([b'ab', b'cd'])
    f.attrs['format'] = 'lowbit-checkpoint'
    f.attrs['version'] = 1
    f.attrs['lr'] = 0.01
    f.attrs['layer_names'] = np.array([b'conv1', b'bn1'])
    f['layer1/0'].attrs['weight_names'] = np.array([b'weight'])
    f['conv1.weight'].attrs['scale'] = 0.5
)PY");
  ASSERT_GT(load_everything(tmp.file("src.h5")), 0);
  IgnoreLibhdf5LeaksOnCorruptFiles ignore_leaks;
  FuzzCounts trunc, flips;
  fuzz_file(tmp.file("src.h5"), tmp.file("fuzz.h5"), 777, trunc, flips);
  std::printf("[ fuzz ] h5py file: truncated: %d loaded, %d errors; bit flips: %d loaded, %d errors\n", trunc.loaded,
              trunc.errors, flips.loaded, flips.errors);
  EXPECT_EQ(trunc.loaded + trunc.errors + flips.loaded + flips.errors, 400);
}

}  // namespace
}  // namespace lowbit::io
