// Helpers shared by the quantizer gradient tests (test_quant_grad, test_learned_quant_grad,
// test_stat_scale_grad): the float64 PyTorch reference, its results and the error measure.
//
// The reference. PyTorch's float32 autograd of y = s * round_ste(x / s) is itself only good to
// ~1e-5 on the scale gradient (it computes g*q - (g*s)*(x/s)/s, which cancels), so the
// reference runs the formula in float64, on the float32 values lowbit and Brevitas compute:
//   - the quotient x / s enters as its float32 value v32 (x is replaced, in value only, by
//     v32 * s, exact in float64, so that d(x/s)/ds = -v32/s); round, clamp and the ternary and
//     binary decisions therefore see exactly the values lowbit sees;
//   - a scale computed from other values (|value| / T, max|W| / T, 2^ceil(log2 m) / T) enters as
//     its float32 value with the gradient of the float64 formula.
// Everything else (straight-through estimators, clamps, abs, amax with ties sharing the
// gradient, torch.where) is PyTorch's autograd. Results come back as float64 (hi + lo floats).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "tensor/tensor.h"
#include "util/torch_oracle.h"

namespace lowbit::quant::grad_test {

inline constexpr double kTol = 1e-6;

// Helpers every reference script uses.
inline constexpr const char* kRefPy = R"PY(
torch.set_default_dtype(torch.float64)
def save64(name, t):
    t = t.detach().double().reshape(-1)
    hi = t.float()
    save(name + '_hi', hi)
    save(name + '_lo', (t - hi.double()).float())
def pin(v, value):
    # the value of `value` (a float32 computation, exact in float64), the gradient of v
    return v + (value.double() - v).detach()
def quotient(x, s, v32):
    # x / s with the value v32 (the float32 quotient) and the gradient -v32/s w.r.t. s
    return pin(x, v32.double() * s.detach()) / s
def fq(x, s, v32, qmin, qmax, ste_clamp):
    v = quotient(x, s, v32)
    r = torch.round(v32.double())
    if ste_clamp:
        qv = v + (r.clamp(qmin, qmax) - v).detach()
    else:
        qv = (v + (r - v).detach()).clamp(qmin, qmax)
    return qv * s
def sgn(x):
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))
def g64(name):
    return load(name).double()
)PY";

inline std::string case_id(size_t i) {
  std::ostringstream os;
  os << 'c' << i;
  return os.str();
}

// Collects named float64 results of one PyTorch run.
struct Oracle {
  std::map<std::string, Tensor> in;
  std::vector<std::string> outs;
  std::map<std::string, Tensor> res;
  void want(const std::string& name) {
    outs.push_back(name + "_hi");
    outs.push_back(name + "_lo");
  }
  void run(const std::string& script) { res = lowbit::testing::run_torch(std::string(kRefPy) + script, in, outs); }
  std::vector<double> get(const std::string& name) {
    const Tensor& hi = res.at(name + "_hi");
    const Tensor& lo = res.at(name + "_lo");
    std::vector<double> v(static_cast<size_t>(hi.numel()));
    for (int64_t i = 0; i < hi.numel(); ++i) v[i] = static_cast<double>(hi.f32()[i]) + static_cast<double>(lo.f32()[i]);
    return v;
  }
};

// max_i |a_i - b_i| / |b_i| (0 where they are equal; infinite where b_i = 0 != a_i).
inline double rel_err(const Tensor& ours, const std::vector<double>& ref, std::string* where = nullptr) {
  EXPECT_EQ(ours.numel(), static_cast<int64_t>(ref.size()));
  const Tensor c = ours.contiguous();
  double m = 0;
  for (int64_t i = 0; i < c.numel() && i < static_cast<int64_t>(ref.size()); ++i) {
    const double a = c.f32()[i], b = ref[i];
    if (a == b) continue;
    const double e = b == 0 ? INFINITY : std::fabs(a - b) / std::fabs(b);
    if (std::isnan(e) || e > m) {
      m = std::isnan(e) ? INFINITY : e;
      if (where) {
        std::ostringstream os;
        os.precision(12);
        os << "element " << i << ": lowbit " << a << " vs " << b;
        *where = os.str();
      }
    }
  }
  return m;
}

#define EXPECT_GRAD(ours, oracle, name, what)                                                \
  do {                                                                                       \
    ASSERT_TRUE((ours).defined()) << what << ": no gradient";                                \
    std::string at_;                                                                         \
    const double e_ = ::lowbit::quant::grad_test::rel_err((ours), (oracle).get(name), &at_); \
    EXPECT_LE(e_, ::lowbit::quant::grad_test::kTol)                                          \
        << what << " (" << name << "): relative error " << e_ << ", " << at_;                \
  } while (0)

inline Tensor random_upstream(const Shape& s, Rng& rng) {
  Tensor g = Tensor::empty(s);
  for (int64_t i = 0; i < g.numel(); ++i) g.f32()[i] = rng.uniform(-1.f, 1.f);
  return g;
}

// Values around the grid of scale s: ties, levels beyond both ends of [qmin, qmax], random.
inline void fill_channel(float* out, int64_t n, float s, int qmin, int qmax, Rng& rng) {
  for (int64_t i = 0; i < n; ++i) {
    const int kind = static_cast<int>(i % 4);
    const float level = static_cast<float>(qmin - 10) + rng.uniform(0.f, static_cast<float>(qmax - qmin + 20));
    if (kind == 0) out[i] = (std::floor(level) + 0.5f) * s;                                   // a tie
    else if (kind == 1) out[i] = rng.normal() * 0.35f * static_cast<float>(qmax - qmin) * s;  // mostly inside
    else out[i] = level * s;                                                                  // uniform, some beyond
  }
}

}  // namespace lowbit::quant::grad_test
