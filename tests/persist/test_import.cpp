// Weight import (`lowbit import`) and torch-h5 export on synthetic files written by h5py:
// flat dotted names, nested groups, Keras legacy layouts (HWIO, depthwise, Dense after Flatten),
// Lowbit checkpoints, --map renames, missing / unused / mismatched tensors, and unreadable files
// (lzf, truncated, not HDF5). The files come from Debian's /usr/bin/python3 with h5py and numpy;
// the tests skip without them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "core/error.h"
#include "persist/checkpoint.h"
#include "io/h5_file.h"
#include "util/needs.h"
#include "config/model_file.h"
#include "persist/weights_export.h"
#include "persist/weights_import.h"
#include "config/run_config.h"
#include "train/trainer.h"

using namespace lowbit;
namespace fs = std::filesystem;

namespace {

// The model every test imports into: conv (no bias) + batch norm + depthwise conv (multiplier 2)
// + flatten of a (6, 4, 4) map + linear.
const char* kModelYaml = R"(name: tiny
input: [2, 4, 4]
layers:
  - {name: conv, type: conv2d, out_channels: 3, kernel_size: 3, padding: 1, bias: false}
  - {name: bn, type: batch_norm2d}
  - {name: relu, type: relu}
  - {name: dw, type: conv2d, out_channels: 6, kernel_size: 3, padding: 1, groups: 3}
  - {name: flatten, type: flatten}
  - {name: drop, type: dropout, p: 0.1}
  - {name: fc, type: linear, out_features: 5}
)";

// Python prelude: `ref` holds the tensors in Lowbit layouts (num_batches_tracked as PyTorch's
// 0-d int64), written to ref.h5 as Lowbit stores them (s32 [1]); helpers write other layouts.
const char* kPrelude = R"PY(
import sys, os
import numpy as np, h5py
D = sys.argv[1]
rng = np.random.default_rng(1)
f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
ref = {
    "conv.weight": f32(3, 2, 3, 3),
    "bn.weight": f32(3), "bn.bias": f32(3), "bn.running_mean": f32(3),
    "bn.running_var": (np.abs(f32(3)) + 0.5).astype(np.float32),
    "bn.num_batches_tracked": np.array(7, dtype=np.int64),
    "dw.weight": f32(6, 1, 3, 3), "dw.bias": f32(6),
    "fc.weight": f32(5, 96), "fc.bias": f32(5),
}
with h5py.File(os.path.join(D, "ref.h5"), "w") as f:
    for k, v in ref.items():
        f.create_dataset(k, data=v.astype(np.int32).reshape(1) if v.dtype == np.int64 else v)
def flat(name, tensors, **kw):
    with h5py.File(os.path.join(D, name), "w") as f:
        for k, v in tensors.items():
            f.create_dataset(k, data=v, **kw)
def keras_layers(names):
    """Keras layouts of ref, per Keras layer: [(var, array), ...]."""
    C, M = 3, 2
    return {
        names[0]: [("kernel", ref["conv.weight"].transpose(2, 3, 1, 0))],
        names[1]: [("gamma", ref["bn.weight"]), ("beta", ref["bn.bias"]),
                   ("moving_mean", ref["bn.running_mean"]), ("moving_variance", ref["bn.running_var"])],
        names[2]: [("depthwise_kernel", ref["dw.weight"].reshape(C, M, 3, 3).transpose(2, 3, 0, 1)),
                   ("bias", ref["dw.bias"])],
        names[3]: [("kernel", ref["fc.weight"].reshape(5, 6, 4, 4).transpose(2, 3, 1, 0).reshape(96, 5)),
                   ("bias", ref["fc.bias"])],
    }
def keras(name, names=("conv", "bn", "dw", "fc"), base="/", split=False, vlen=False):
    layers = keras_layers(names)
    order = [names[0], names[1], "re_lu", names[2], "flatten", "dropout", names[3]]
    enc = (lambda xs: list(xs)) if vlen else (lambda xs: np.array([x.encode() for x in xs], dtype="S"))
    with h5py.File(os.path.join(D, name), "w") as f:
        g = f if base == "/" else f.create_group(base)
        if base != "/":
            f.attrs["model_config"] = "{}"
        if split:
            g.attrs["layer_names0"] = enc(order[:4])
            g.attrs["layer_names1"] = enc(order[4:])
        else:
            g.attrs["layer_names"] = enc(order)
        g.attrs["backend"] = "tensorflow"
        g.attrs["keras_version"] = "2.11.0"
        for layer in order:
            lg = g.create_group(layer)
            weights = layers.get(layer, [])
            lg.attrs["weight_names"] = enc([f"{layer}/{v}:0" for v, _ in weights]) if weights else np.array([], dtype="S1")
            for v, a in weights:
                lg.create_dataset(f"{layer}/{v}:0", data=np.ascontiguousarray(a))
)PY";

persist::ImportOptions strict() {
  persist::ImportOptions o;
  o.strict = true;
  return o;
}

persist::ImportOptions allow_missing() {
  persist::ImportOptions o;
  o.allow_missing = true;
  return o;
}

struct ImportTest : ::testing::Test {
  fs::path dir;
  std::string model_path;

  void SetUp() override {
    char t[] = "/tmp/lowbit_import_XXXXXX";
    dir = mkdtemp(t);
    model_path = write("tiny.yaml", kModelYaml);
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
  std::string file(const std::string& name) const { return (dir / name).string(); }

  // Runs the prelude + `body` with /usr/bin/python3; fails the test on a Python error.
  void python(const std::string& body) const {
    const std::string script = write("gen.py", std::string(kPrelude) + body);
    const std::string cmd = "/usr/bin/python3 " + script + " " + dir.string() + " > " + file("py.log") + " 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::ifstream log(file("py.log"));
      std::stringstream ss;
      ss << log.rdbuf();
      FAIL() << "python failed:\n" << ss.str();
    }
  }

  config::BuiltModel model(uint64_t seed = 5) const { return config::build_model(model_path, {}, seed); }

  static std::map<std::string, Tensor> state(const config::BuiltModel& m) {
    std::map<std::string, Tensor> s;
    for (auto& [n, v] : m.graph->named_parameters()) s[n] = v.data().clone();
    for (auto& [n, t] : m.graph->named_buffers()) s[n] = t->clone();
    return s;
  }

  // Every tensor of ref.h5 equals the model's bit for bit, except those in `skip`.
  void expect_ref(const config::BuiltModel& m, const std::vector<std::string>& skip = {}) const {
    io::H5Reader ref(file("ref.h5"));
    const auto st = state(m);
    for (const std::string& name : ref.names()) {
      if (std::find(skip.begin(), skip.end(), name) != skip.end()) continue;
      ASSERT_TRUE(st.count(name)) << name;
      const Tensor& t = st.at(name);
      Tensor r = ref.read_tensor(name);
      ASSERT_EQ(r.shape(), t.shape()) << name;
      ASSERT_EQ(r.dtype(), t.dtype()) << name;
      EXPECT_EQ(0, std::memcmp(r.raw_data(), t.raw_data(), t.numel() * dtype_size(t.dtype()))) << name;
    }
  }

  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }

  static const persist::ImportEntry& entry(const persist::ImportPlan& p, const std::string& name) {
    for (const auto& e : p.entries)
      if (e.model_name == name) return e;
    throw std::runtime_error("no entry " + name);
  }
};

TEST_F(ImportTest, FlatDottedNamesWithTorchCounter) {
  LB_REQUIRE_H5PY();
  python("flat('w.h5', ref)\n");
  config::BuiltModel m = model();
  persist::ImportPlan p = persist::import_weights(file("w.h5"), m, {});
  EXPECT_EQ(p.source, persist::WeightSource::torch_flat);
  EXPECT_EQ(p.count(persist::MatchStatus::matched), 10);
  EXPECT_TRUE(p.unused.empty());
  const auto& nbt = entry(p, "bn.num_batches_tracked");
  EXPECT_EQ(nbt.file_shape, Shape{});
  EXPECT_NE(nbt.conversion.find("int64 [] -> s32 [1]"), std::string::npos) << nbt.conversion;
  expect_ref(m);
  const std::string table = persist::format_import_table(p);
  EXPECT_NE(table.find("summary: 10 matched, 0 missing, 0 shape mismatch, 0 unused"), std::string::npos) << table;
}

TEST_F(ImportTest, NestedGroupsAndFloat64) {
  LB_REQUIRE_H5PY();
  python(R"PY(
with h5py.File(os.path.join(D, "w.h5"), "w") as f:
    for k, v in ref.items():
        f.create_dataset(k.replace(".", "/"), data=v.astype(np.float64) if v.dtype == np.float32 else v)
    f.create_dataset("meta/info", data="a string dataset is ignored")
)PY");
  config::BuiltModel m = model();
  persist::ImportPlan p = persist::import_weights(file("w.h5"), m, {});
  EXPECT_EQ(p.source, persist::WeightSource::torch_nested);
  EXPECT_EQ(entry(p, "conv.weight").file_name, "/conv/weight");
  EXPECT_NE(entry(p, "conv.weight").conversion.find("float64 -> f32"), std::string::npos);
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_NE(p.notes[0].find("string"), std::string::npos);
  expect_ref(m);
}

TEST_F(ImportTest, KerasLegacyLayoutsAreTransposed) {
  LB_REQUIRE_H5PY();
  python("keras('k.h5')\n");
  config::BuiltModel m = model();
  const Tensor nbt_before = state(m)["bn.num_batches_tracked"];
  persist::ImportPlan p = persist::import_weights(file("k.h5"), m, strict());
  EXPECT_EQ(p.source, persist::WeightSource::keras);
  EXPECT_NE(p.source_detail.find("keras_version 2.11.0"), std::string::npos);
  EXPECT_EQ(entry(p, "conv.weight").file_name, "/conv/conv/kernel:0");
  EXPECT_EQ(entry(p, "conv.weight").conversion, "HWIO->OIHW");
  EXPECT_EQ(entry(p, "dw.weight").conversion, "depthwise (kH,kW,C,M)->(C*M,1,kH,kW)");
  EXPECT_EQ(entry(p, "fc.weight").conversion, "(in,out)->(out,in), inputs HWC->CHW");
  EXPECT_EQ(entry(p, "bn.running_var").file_name, "/bn/bn/moving_variance:0");
  // Keras has no batch counter: kept, reported, not an error (not even with strict).
  EXPECT_EQ(entry(p, "bn.num_batches_tracked").status, persist::MatchStatus::kept_default);
  EXPECT_EQ(state(m)["bn.num_batches_tracked"].data<int32_t>()[0], nbt_before.data<int32_t>()[0]);
  expect_ref(m, {"bn.num_batches_tracked"});
  EXPECT_NE(persist::format_import_table(p).find("1 kept at default"), std::string::npos);
}

TEST_F(ImportTest, KerasFullModelFileWithSplitVlenAttributes) {
  LB_REQUIRE_H5PY();
  python("keras('k.h5', base='model_weights', split=True, vlen=True)\n");
  config::BuiltModel m = model();
  persist::ImportPlan p = persist::import_weights(file("k.h5"), m, {});
  EXPECT_EQ(p.source, persist::WeightSource::keras);
  EXPECT_EQ(entry(p, "fc.bias").file_name, "/model_weights/fc/fc/bias:0");
  expect_ref(m, {"bn.num_batches_tracked"});
}

TEST_F(ImportTest, KerasNamesRenamedWithMap) {
  LB_REQUIRE_H5PY();
  python("keras('k.h5', names=('conv2d', 'batch_normalization', 'depthwise_conv2d', 'dense'))\n");
  config::BuiltModel m = model();
  // Without maps nothing matches: the error shows both sides and suggests --map.
  const std::string err = error_of([&] { persist::import_weights(file("k.h5"), m, {}); });
  EXPECT_NE(err.find("no tensor name of the file matches"), std::string::npos) << err;
  EXPECT_NE(err.find("conv2d.weight"), std::string::npos) << err;
  // Same-size tensors with the same last name part suggest the renames.
  EXPECT_NE(err.find("perhaps --map batch_normalization=bn --map conv2d=conv --map dense=fc --map depthwise_conv2d=dw"),
            std::string::npos)
      << err;
  persist::ImportOptions opt;
  // "dense" must not catch "depthwise_conv2d"; prefixes end at dots only.
  for (const char* s : {"conv2d=conv", "batch_normalization=bn", "depthwise_conv2d=dw", "dense=fc", "unused_prefix=x"})
    opt.maps.push_back(persist::parse_name_map(s));
  persist::ImportPlan p = persist::import_weights(file("k.h5"), m, opt);
  EXPECT_EQ(p.count(persist::MatchStatus::matched), 9);
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_NE(p.notes[0].find("--map unused_prefix=x matched no file tensor"), std::string::npos) << p.notes[0];
  expect_ref(m, {"bn.num_batches_tracked"});
}

TEST_F(ImportTest, MapRenamesPrefixesFirstMatchWins) {
  LB_REQUIRE_H5PY();
  python(R"PY(
names = {"conv": "features.0", "bn": "features.1", "dw": "features.3", "fc": "classifier.1"}
flat("w.h5", {names[k.split(".")[0]] + "." + k.split(".", 1)[1]: v for k, v in ref.items()})
)PY");
  config::BuiltModel m = model();
  persist::ImportOptions opt;
  for (const char* s : {"features.0=conv", "features.1.=bn.", "features.3=dw", "features=unused", "classifier.1=fc"})
    opt.maps.push_back(persist::parse_name_map(s));
  persist::ImportPlan p = persist::import_weights(file("w.h5"), m, opt);
  EXPECT_EQ(entry(p, "bn.running_mean").file_name, "features.1.running_mean");
  EXPECT_EQ(p.count(persist::MatchStatus::matched), 10);
  expect_ref(m);
}

TEST_F(ImportTest, CommonPrefixIsStrippedWithoutMaps) {
  LB_REQUIRE_H5PY();
  python("flat('w.h5', {'module.' + k: v for k, v in ref.items()})\n");
  config::BuiltModel m = model();
  persist::ImportPlan p = persist::import_weights(file("w.h5"), m, {});
  ASSERT_EQ(p.notes.size(), 1u);
  EXPECT_NE(p.notes[0].find("'module.'"), std::string::npos) << p.notes[0];
  expect_ref(m);
}

TEST_F(ImportTest, ParseNameMap) {
  EXPECT_EQ(persist::parse_name_map("a.b=c").from, "a.b");
  EXPECT_EQ(persist::parse_name_map("module.=").to, "");
  EXPECT_EQ(persist::parse_name_map("module.=").from, "module");
  EXPECT_NE(error_of([] { persist::parse_name_map("features.0"); }).find("expected OLD=NEW"), std::string::npos);
  EXPECT_NE(error_of([] { persist::parse_name_map("=x"); }).find("OLD is empty"), std::string::npos);
}

TEST_F(ImportTest, MissingTensorIsAnErrorUnlessAllowed) {
  LB_REQUIRE_H5PY();
  python("r = dict(ref); del r['fc.bias']; del r['bn.num_batches_tracked']; flat('w.h5', r)\n");
  config::BuiltModel m = model();
  const auto before = state(m);
  const std::string err = error_of([&] { persist::import_weights(file("w.h5"), m, {}); });
  EXPECT_NE(err.find("1 model tensor(s) are not in the file"), std::string::npos) << err;
  EXPECT_NE(err.find("'fc.bias' [5] (closest in file: bn.bias, dw.bias, fc.weight)"), std::string::npos) << err;
  EXPECT_NE(err.find("--allow-missing"), std::string::npos) << err;
  for (auto& [n, t] : state(m))  // nothing changed
    EXPECT_EQ(0, std::memcmp(t.raw_data(), before.at(n).raw_data(), t.numel() * dtype_size(t.dtype()))) << n;

  persist::ImportPlan p = persist::import_weights(file("w.h5"), m, allow_missing());
  EXPECT_EQ(entry(p, "fc.bias").status, persist::MatchStatus::missing);
  EXPECT_EQ(entry(p, "bn.num_batches_tracked").status, persist::MatchStatus::kept_default);
  EXPECT_EQ(0, std::memcmp(state(m)["fc.bias"].raw_data(), before.at("fc.bias").raw_data(), 5 * sizeof(float)));
  expect_ref(m, {"fc.bias", "bn.num_batches_tracked"});
  EXPECT_NE(persist::format_import_table(p).find("MISSING"), std::string::npos);
}

TEST_F(ImportTest, UnusedFileTensorsFailOnlyWithStrict) {
  LB_REQUIRE_H5PY();
  python("r = dict(ref); r['fc2.weight'] = f32(2, 2); flat('w.h5', r)\n");
  config::BuiltModel m = model();
  persist::ImportPlan p = persist::import_weights(file("w.h5"), m, {});
  ASSERT_EQ(p.unused.size(), 1u);
  EXPECT_EQ(p.unused[0].file_name, "fc2.weight");
  EXPECT_EQ(p.unused[0].closest.rfind("fc.weight", 0), 0u) << p.unused[0].closest;
  EXPECT_NE(persist::format_import_table(p).find("UNUSED"), std::string::npos);
  expect_ref(m);
  config::BuiltModel m2 = model();
  const std::string err = error_of([&] { persist::import_weights(file("w.h5"), m2, strict()); });
  EXPECT_NE(err.find("not used by the model (--strict)"), std::string::npos) << err;
  EXPECT_NE(err.find("'fc2.weight' [2, 2] (closest in model: fc.weight"), std::string::npos) << err;
}

TEST_F(ImportTest, WrongShapeNamesTheTensorAndBothShapes) {
  LB_REQUIRE_H5PY();
  python(R"PY(
r = dict(ref); r['fc.weight'] = f32(5, 95); flat('w.h5', r)
k = dict(ref); k['bn.num_batches_tracked'] = np.zeros(2, np.int64); flat('n.h5', k)
t = dict(ref); t['fc.bias'] = np.arange(5, dtype=np.int32); flat('t.h5', t)
)PY");
  config::BuiltModel m = model();
  const auto before = state(m);
  std::string err = error_of([&] { persist::import_weights(file("w.h5"), m, {}); });
  EXPECT_NE(err.find("'fc.weight': file [5, 95], model [5, 96]"), std::string::npos) << err;
  err = error_of([&] { persist::import_weights(file("n.h5"), m, allow_missing()); });
  EXPECT_NE(err.find("'bn.num_batches_tracked': file [2], model [1]"), std::string::npos) << err;
  err = error_of([&] { persist::import_weights(file("t.h5"), m, {}); });
  EXPECT_NE(err.find("'fc.bias': file holds int32, model f32"), std::string::npos) << err;
  for (auto& [n, t] : state(m))
    EXPECT_EQ(0, std::memcmp(t.raw_data(), before.at(n).raw_data(), t.numel() * dtype_size(t.dtype()))) << n;
  persist::ImportPlan p = persist::plan_import(file("w.h5"), m, {});
  EXPECT_EQ(entry(p, "fc.weight").status, persist::MatchStatus::shape_mismatch);
  EXPECT_NE(persist::format_import_table(p).find("SHAPE"), std::string::npos);
}

TEST_F(ImportTest, KerasWrongShapeShowsTheConversion) {
  LB_REQUIRE_H5PY();
  python("keras('k.h5')\n");
  std::string yaml = kModelYaml;
  yaml.replace(yaml.find("out_features: 5"), 15, "out_features: 4");
  config::BuiltModel m = config::build_model(write("other.yaml", yaml), {}, 1);
  const std::string err = error_of([&] { persist::import_weights(file("k.h5"), m, {}); });
  EXPECT_NE(err.find("'fc.weight': file [96, 5] ((in,out)->(out,in), inputs HWC->CHW gives [5, 96]), model [4, 96]"),
            std::string::npos)
      << err;
}

TEST_F(ImportTest, TwoFileTensorsWithOneName) {
  LB_REQUIRE_H5PY();
  python("r = dict(ref); r['old.bias'] = f32(5); flat('w.h5', r)\n");
  config::BuiltModel m = model();
  persist::ImportOptions opt;
  opt.maps.push_back(persist::parse_name_map("old=fc"));
  const std::string err = error_of([&] { persist::plan_import(file("w.h5"), m, opt); });
  EXPECT_NE(err.find("two file tensors both load as 'fc.bias'"), std::string::npos) << err;
}

TEST_F(ImportTest, UnreadableFilesGiveClearErrors) {
  LB_REQUIRE_H5PY();
  python(R"PY(
flat('lzf.h5', {k: v for k, v in ref.items() if v.ndim > 0}, compression='lzf')
flat('ok.h5', ref)
data = open(os.path.join(D, 'ok.h5'), 'rb').read()
open(os.path.join(D, 'trunc.h5'), 'wb').write(data[:len(data) // 2])
open(os.path.join(D, 'text.h5'), 'w').write('conv.weight,1,2,3\n')
with h5py.File(os.path.join(D, 'empty.h5'), 'w') as f:
    f.attrs['note'] = 'no datasets'
)PY");
  config::BuiltModel m = model();
  auto err = [&](const std::string& f) { return error_of([&] { persist::plan_import(file(f), m, {}); }); };
  EXPECT_NE(err("lzf.h5").find("lzf"), std::string::npos) << err("lzf.h5");
  EXPECT_NE(err("trunc.h5").find("truncated"), std::string::npos) << err("trunc.h5");
  EXPECT_NE(err("text.h5").find("not an HDF5 file"), std::string::npos) << err("text.h5");
  EXPECT_NE(err("empty.h5").find("no tensors found"), std::string::npos) << err("empty.h5");
  EXPECT_NE(err("nonexistent.h5").find("nonexistent.h5"), std::string::npos);
}

TEST_F(ImportTest, FromLowbitCheckpoint) {
  LB_REQUIRE_H5PY();
  python("flat('w.h5', ref)\n");
  config::BuiltModel a = model(1);
  persist::import_weights(file("w.h5"), a, {});
  persist::save_checkpoint(file("ckpt.h5"), *a.graph, nullptr, nullptr, {"model: {}\n", "", {}});
  config::BuiltModel b = model(2);
  persist::ImportPlan p = persist::import_weights(file("ckpt.h5"), b, strict());
  EXPECT_EQ(p.source, persist::WeightSource::lowbit_checkpoint);
  EXPECT_EQ(entry(p, "conv.weight").file_name, "/model/conv.weight");
  expect_ref(b);
}

TEST_F(ImportTest, IntoQuantizedConfig) {
  LB_REQUIRE_H5PY();
  python("flat('w.h5', ref)\n");
  // Learned (LSQ) weight scales start from the imported weights; activation quantizers keep the
  // recipe's initialization; neither is an error although the float file lacks them.
  const std::string cfg_path = write("q.yaml", "model: {path: " + model_path + "}\n"
                                    "quant:\n"
                                    "  weights: {preset: Int8WeightLSQ}\n"
                                    "  activations: {preset: Uint8ActPerTensorFloat}\n"
                                    "  bits: 4\n");
  config::BuiltModel m = train::build_model(config::load_run_config(cfg_path, {}));
  persist::ImportPlan p = persist::plan_import(file("w.h5"), m, strict());
  persist::check_import(p, strict());
  EXPECT_EQ(p.count(persist::MatchStatus::matched), 10);
  EXPECT_EQ(p.count(persist::MatchStatus::missing), 0);
  const auto& wq = entry(p, "conv.weight_quant.value");
  EXPECT_EQ(wq.status, persist::MatchStatus::kept_default);
  EXPECT_NE(wq.detail.find("initialized from the imported weight"), std::string::npos) << wq.detail;
  const float before = state(m)["conv.weight_quant.value"].f32()[0];
  const std::vector<std::string> init = persist::apply_import(p, m);
  EXPECT_NE(std::find(init.begin(), init.end(), "conv.weight_quant"), init.end());
  EXPECT_NE(std::find(init.begin(), init.end(), "fc.weight_quant"), init.end());
  const float after = state(m)["conv.weight_quant.value"].f32()[0];
  EXPECT_NE(after, before);
  EXPECT_GT(after, 0.f);
  expect_ref(m);
}

TEST_F(ImportTest, ExportWritesTorchStateDictAndReimports) {
  LB_REQUIRE_H5PY();
  python("flat('w.h5', ref)\n");
  config::BuiltModel a = model(1);
  persist::import_weights(file("w.h5"), a, {});
  persist::save_checkpoint(file("ckpt.h5"), *a.graph, nullptr, nullptr, {"model: {}\n", "", {}});
  persist::TorchExportResult r = persist::export_torch_h5(file("ckpt.h5"), file("out.h5"));
  EXPECT_EQ(r.names.size(), 10u);
  EXPECT_EQ(r.int64_scalars, 1);
  EXPECT_FALSE(fs::exists(file("out.h5.tmp")));
  python(R"PY(
with h5py.File(os.path.join(D, "out.h5"), "r") as f:
    assert sorted(f.keys()) == sorted(ref.keys()), sorted(f.keys())
    for k, v in ref.items():
        a = f[k][()]
        assert a.dtype == v.dtype and a.shape == v.shape, (k, a.dtype, a.shape, v.dtype, v.shape)
        assert np.array_equal(a, v), k
)PY");
  config::BuiltModel b = model(2);
  persist::ImportPlan p = persist::import_weights(file("out.h5"), b, strict());
  EXPECT_EQ(p.source, persist::WeightSource::torch_flat);
  expect_ref(b);
}

TEST_F(ImportTest, ExportLeavesTheTargetAloneOnError) {
  LB_REQUIRE_H5PY();
  python("flat('w.h5', ref)\n");
  const std::string target = write("out.h5", "previous contents");
  EXPECT_NE(error_of([&] { persist::export_torch_h5(file("w.h5"), target); }).find("not a Lowbit checkpoint"), std::string::npos);
  std::ifstream in(target);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(s, "previous contents");
  EXPECT_FALSE(fs::exists(target + ".tmp"));
}

}  // namespace
