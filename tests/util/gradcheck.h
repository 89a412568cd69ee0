// Gradient checks shared by every op test.
#pragma once
#include <functional>
#include <vector>

#include "autograd/variable.h"
#include "core/rng.h"

namespace lowbit::testing {

// Random f32 tensor with entries uniform in [lo, hi).
Tensor random_tensor(const Shape& shape, Rng& rng, float lo = -1.f, float hi = 1.f);

// Max |a - b| / max(1, |b|) over all elements (same shape required).
float max_rel_diff(const Tensor& a, const Tensor& b);
float max_abs_diff(const Tensor& a, const Tensor& b);

struct GradCheckOptions {
  float eps = 1e-3f;      // central-difference step (inputs are float32)
  float tolerance = 2e-2f;  // on |analytic - numeric| / max(1, |numeric|)
  int max_elements = 64;  // elements probed per input (spread over the tensor)
};

// f maps the inputs to an output; the scalar checked is sum(f(x) * R) for a fixed random R.
// Compares backward() against central differences for every input that requires grad.
// Also checks that backward ACCUMULATES: gradients pre-set to a value V end at V + grad.
// Returns an empty string on success, else a description of the first mismatch.
std::string gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f, std::vector<Variable> inputs,
                      const GradCheckOptions& opt = {});

}  // namespace lowbit::testing
