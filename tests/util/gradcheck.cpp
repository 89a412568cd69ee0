#include "util/gradcheck.h"

#include <cmath>
#include <sstream>

namespace lowbit::testing {

Tensor random_tensor(const Shape& shape, Rng& rng, float lo, float hi) {
  Tensor t = Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.uniform(lo, hi);
  return t;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  LB_CHECK(a.shape() == b.shape(), "max_abs_diff: ", a.shape().str(), " vs ", b.shape().str());
  Tensor ca = a.contiguous(), cb = b.contiguous();
  float m = 0.f;
  for (int64_t i = 0; i < ca.numel(); ++i) {
    float d = std::fabs(ca.f32()[i] - cb.f32()[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

float max_rel_diff(const Tensor& a, const Tensor& b) {
  LB_CHECK(a.shape() == b.shape(), "max_rel_diff: ", a.shape().str(), " vs ", b.shape().str());
  Tensor ca = a.contiguous(), cb = b.contiguous();
  float m = 0.f;
  for (int64_t i = 0; i < ca.numel(); ++i) {
    float d = std::fabs(ca.f32()[i] - cb.f32()[i]) / std::max(1.f, std::fabs(cb.f32()[i]));
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

static double weighted_sum(const Tensor& out, const Tensor& r) {
  Tensor c = out.contiguous();
  double s = 0;
  for (int64_t i = 0; i < c.numel(); ++i) s += static_cast<double>(c.f32()[i]) * r.f32()[i];
  return s;
}

std::string gradcheck(const std::function<Variable(const std::vector<Variable>&)>& f, std::vector<Variable> inputs,
                      const GradCheckOptions& opt) {
  Rng rng(1234);
  Variable out = f(inputs);
  Tensor r = random_tensor(out.shape(), rng);
  // Analytic gradients, accumulated on top of a pre-set value of 0.5.
  const float preset = 0.5f;
  for (auto& v : inputs)
    if (v.requires_grad()) v.grad() = Tensor::full(v.shape(), preset);
  out.backward(r);
  std::ostringstream err;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Variable& v = inputs[k];
    if (!v.requires_grad()) continue;
    if (!v.grad().defined()) return "input " + std::to_string(k) + ": no gradient";
    Tensor analytic = v.grad().clone();
    const int64_t n = v.numel();
    const int64_t step = std::max<int64_t>(1, n / opt.max_elements);
    for (int64_t i = 0; i < n; i += step) {
      float* p = v.data().f32() + i;
      const float orig = *p;
      double lp, lm;
      {
        NoGradGuard ng;
        *p = orig + opt.eps;
        lp = weighted_sum(f(inputs).data(), r);
        *p = orig - opt.eps;
        lm = weighted_sum(f(inputs).data(), r);
        *p = orig;
      }
      const double numeric = (lp - lm) / (2.0 * opt.eps);
      const double a = analytic.f32()[i] - preset;
      const double diff = std::fabs(a - numeric) / std::max(1.0, std::fabs(numeric));
      if (!(diff <= opt.tolerance)) {
        err << "input " << k << " " << v.shape().str() << " element " << i << ": analytic " << a << " numeric "
            << numeric << " (rel diff " << diff << ")";
        return err.str();
      }
    }
  }
  return "";
}

}  // namespace lowbit::testing
