#include "util/torch_oracle.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace fs = std::filesystem;

namespace lowbit::testing {

const std::string& torch_python(std::string* why) { return python_with("torch, numpy", why); }

namespace {

const char* kPrelude = R"PY(
import sys, os
import numpy as np
import torch
import torch.nn.functional as F
torch.set_num_threads(1)
_D = sys.argv[1]
_T = {'f32': np.float32, 's32': np.int32, 'u8': np.uint8, 's8': np.int8}
def load(name):
    with open(os.path.join(_D, name + '.meta')) as f:
        parts = f.read().split()
    dt, dims = parts[0], [int(x) for x in parts[1:]]
    a = np.fromfile(os.path.join(_D, name + '.bin'), dtype=_T[dt]).reshape(dims)
    return torch.from_numpy(a.copy())
def save(name, t):
    t = torch.as_tensor(t).detach().contiguous()
    if t.dtype in (torch.float64, torch.float16, torch.bfloat16):
        t = t.float()
    if t.dtype == torch.int64:
        t = t.int()
    names = {torch.float32: 'f32', torch.int32: 's32', torch.uint8: 'u8', torch.int8: 's8'}
    a = t.numpy()
    a.tofile(os.path.join(_D, name + '.bin'))
    with open(os.path.join(_D, name + '.meta'), 'w') as f:
        f.write(names[t.dtype] + ' ' + ' '.join(str(d) for d in a.shape))
)PY";

void write_tensor(const fs::path& dir, const std::string& name, const Tensor& t) {
  Tensor c = t.contiguous();
  std::ofstream meta(dir / (name + ".meta"));
  meta << dtype_name(c.dtype());
  for (int64_t d : c.shape().dims()) meta << ' ' << d;
  std::ofstream bin(dir / (name + ".bin"), std::ios::binary);
  bin.write(static_cast<const char*>(c.raw_data()), static_cast<std::streamsize>(c.numel() * dtype_size(c.dtype())));
}

Tensor read_tensor(const fs::path& dir, const std::string& name) {
  std::ifstream meta(dir / (name + ".meta"));
  LB_CHECK(meta.good(), "torch oracle: the script did not save '", name, "'");
  std::string dt;
  meta >> dt;
  std::vector<int64_t> dims;
  for (int64_t d; meta >> d;) dims.push_back(d);
  DType type = dt == "f32" ? DType::f32 : dt == "s32" ? DType::s32 : dt == "u8" ? DType::u8 : DType::s8;
  Tensor t = Tensor::empty(Shape(dims), type);
  std::ifstream bin(dir / (name + ".bin"), std::ios::binary);
  bin.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(t.numel() * dtype_size(type)));
  LB_CHECK(bin.gcount() == static_cast<std::streamsize>(t.numel() * dtype_size(type)), "torch oracle: short file for ", name);
  return t;
}

}  // namespace

std::map<std::string, Tensor> run_torch(const std::string& script, const std::map<std::string, Tensor>& inputs,
                                        const std::vector<std::string>& outputs) {
  const std::string& py = torch_python();
  LB_CHECK(!py.empty(), "run_torch: no Python with torch");
  char tmpl[] = "/tmp/lowbit_oracle_XXXXXX";
  LB_CHECK(mkdtemp(tmpl) != nullptr, "run_torch: mkdtemp failed");
  fs::path dir(tmpl);
  for (const auto& [name, t] : inputs) write_tensor(dir, name, t);
  {
    std::ofstream s(dir / "script.py");
    s << kPrelude << "\n" << script << "\n";
  }
  std::string cmd = py + " " + (dir / "script.py").string() + " " + dir.string() + " 2>" + (dir / "stderr.txt").string();
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream e(dir / "stderr.txt");
    std::stringstream ss;
    ss << e.rdbuf();
    fs::remove_all(dir);
    LB_FAIL("torch oracle script failed (rc=", rc, "):\n", ss.str());
  }
  std::map<std::string, Tensor> out;
  for (const auto& name : outputs) out[name] = read_tensor(dir, name);
  fs::remove_all(dir);
  return out;
}

}  // namespace lowbit::testing
