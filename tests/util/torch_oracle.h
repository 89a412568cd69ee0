// PyTorch as a test oracle: tensors go to a temporary folder, a Python snippet runs under
// Debian's /usr/bin/python3 (the one with python3-torch), and named results come back.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "tensor/tensor.h"
#include "util/needs.h"

namespace lowbit::testing {

// Path of an interpreter that imports torch, or "" (the message says why).
const std::string& torch_python(std::string* why = nullptr);

// Runs `script` with helpers in scope:
//   load(name) -> torch.Tensor (float32 or int32/int64 as stored), save(name, tensor),
//   torch, np, F (torch.nn.functional) imported; torch.set_num_threads(1); float64 off.
// Returns the tensors the script save()d under `outputs`. Throws on Python errors (stderr shown).
std::map<std::string, Tensor> run_torch(const std::string& script, const std::map<std::string, Tensor>& inputs,
                                        const std::vector<std::string>& outputs);

// Skips the current test when torch is unavailable (fails instead under LOWBIT_REQUIRE_TORCH=1).
#define LB_REQUIRE_TORCH() LB_NEED(::lowbit::testing::torch_python(&why_), "LOWBIT_REQUIRE_TORCH")

}  // namespace lowbit::testing
