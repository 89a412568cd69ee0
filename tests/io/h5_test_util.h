// Helpers shared by the HDF5 tests (test_h5, test_h5py, test_h5_corrupt): a temporary folder,
// file bytes, Python with h5py, small tensors and their comparison.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/error.h"
#include "tensor/tensor.h"
#include "util/temp_files.h"

namespace lowbit::io::h5_test {

namespace fs = std::filesystem;
using ::lowbit::testing::Bytes;
using ::lowbit::testing::read_bytes;
using ::lowbit::testing::error_of;
using ::lowbit::testing::TempDir;

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

inline const char* const kPython = "/usr/bin/python3";

// Runs a Python snippet with `np`, `h5py` and D (the folder) in scope. Throws with its output
// when it fails.
inline void run_python(const TempDir& dir, const std::string& code) {
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

inline Tensor arange_f32(const Shape& shape, float scale = 0.5f, float offset = -3.f) {
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

inline void expect_same(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.dtype(), b.dtype()) << what;
  ASSERT_EQ(a.shape(), b.shape()) << what << ": " << a.shape().str() << " vs " << b.shape().str();
  const size_t n = static_cast<size_t>(a.numel()) * dtype_size(a.dtype());
  if (n) {
    EXPECT_EQ(std::memcmp(a.raw_data(), b.raw_data(), n), 0) << what;
  }
}

}  // namespace lowbit::io::h5_test
