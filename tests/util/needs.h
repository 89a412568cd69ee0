// What a test needs from outside the project: Debian's Python with PyTorch or h5py (the oracles),
// and the Fashion-MNIST package (real data). Without it a test skips with a message saying what to
// install, unless the environment requires it: LOWBIT_REQUIRE_TORCH=1 (torch and h5py) or
// LOWBIT_REQUIRE_DATA=1 (Fashion-MNIST), both set by .ci/run, turn the skip into a failure, so CI
// never passes by skipping its references.
#pragma once
#include <gtest/gtest.h>

#include <string>

namespace lowbit::testing {

// "/usr/bin/python3" when it imports every module named (comma-separated, e.g. "torch, numpy"),
// else "" and *why says what to install. Probed once per module list.
const std::string& python_with(const std::string& modules, std::string* why = nullptr);

// Debian's Fashion-MNIST folder when its four files are there, else "" and *why says what to install.
const std::string& fashion_mnist_dir(std::string* why = nullptr);

// True when the environment variable `var` is "1".
bool required_by_env(const char* var);

}  // namespace lowbit::testing

// Skips the current test (or fixture SetUp) when `path_expr` (a call taking std::string* why)
// returns "", or fails it when the environment variable `env_var` is 1.
#define LB_NEED(path_expr_with_why, env_var)                                                     \
  do {                                                                                           \
    std::string why_;                                                                            \
    if ((path_expr_with_why).empty()) {                                                          \
      if (::lowbit::testing::required_by_env(env_var)) FAIL() << why_ << " [" env_var "=1 requires it]"; \
      GTEST_SKIP() << why_;                                                                      \
    }                                                                                            \
  } while (0)

#define LB_REQUIRE_H5PY() LB_NEED(::lowbit::testing::python_with("h5py, numpy", &why_), "LOWBIT_REQUIRE_TORCH")
#define LB_REQUIRE_FASHION_MNIST() LB_NEED(::lowbit::testing::fashion_mnist_dir(&why_), "LOWBIT_REQUIRE_DATA")
