// HDF5 files written by h5py: PyTorch state dicts (with dtype conversions), nested groups and
// dotted names, strings, compression filters and layouts, the Keras layout, claimed sizes.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "h5_test_util.h"
#include "io/h5_file.h"
#include "util/torch_oracle.h"

namespace lowbit::io {
namespace {

namespace fs = std::filesystem;
using h5_test::error_of;
using h5_test::expect_same;
using h5_test::run_python;
using h5_test::TempDir;

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

}  // namespace
}  // namespace lowbit::io
