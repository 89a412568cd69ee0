#include "ops/ops.h"

namespace lowbit::ops {

Variable add(const Variable& a, const Variable& b) {
  LB_CHECK(a.shape() == b.shape(), "add: shapes ", a.shape().str(), " and ", b.shape().str(), " differ");
  Tensor out = a.data().clone();
  out.add_(b.data().contiguous());
  return make_result(
      std::move(out), {a, b},
      [](const Tensor& g, GradSink& sink) {
        if (sink.needs(0) && sink.needs(1)) {
          sink.add(0, g.clone());
          sink.add(1, g);
        } else {
          sink.add(0, g);
          sink.add(1, g);
        }
      },
      "add");
}

Variable mul_scalar(const Variable& x, float s) {
  Tensor out = x.data().clone();
  float* p = out.f32();
  for (int64_t i = 0; i < out.numel(); ++i) p[i] *= s;
  return make_result(
      std::move(out), {x},
      [s](const Tensor& g, GradSink& sink) {
        Tensor gx = g.clone();
        float* q = gx.f32();
        for (int64_t i = 0; i < gx.numel(); ++i) q[i] *= s;
        sink.add(0, std::move(gx));
      },
      "mul_scalar");
}

Variable sum(const Variable& x) {
  Tensor xin = x.data().contiguous();
  double s = 0;
  const float* p = xin.f32();
  for (int64_t i = 0; i < xin.numel(); ++i) s += p[i];
  Shape in_shape = xin.shape();
  return make_result(
      Tensor::full({1}, static_cast<float>(s)), {x},
      [in_shape](const Tensor& g, GradSink& sink) { sink.add(0, Tensor::full(in_shape, g.item())); }, "sum");
}

Variable mean(const Variable& x) {
  LB_CHECK(x.numel() > 0, "mean of an empty tensor");
  return mul_scalar(sum(x), 1.0f / static_cast<float>(x.numel()));
}

Variable dropout(const Variable& x, float p, bool training, Rng& rng) {
  LB_CHECK(p >= 0.f && p < 1.f, "dropout: probability ", p, " must be in [0, 1)");
  if (!training || p == 0.f) return x;
  Tensor xin = x.data().contiguous();
  Tensor mask = Tensor::empty(xin.shape());
  Tensor out = Tensor::empty(xin.shape());
  const float scale = 1.f / (1.f - p);
  float* pm = mask.f32();
  float* po = out.f32();
  const float* px = xin.f32();
  // Serial on purpose: the mask depends only on the seed, not on the thread count.
  for (int64_t i = 0; i < xin.numel(); ++i) {
    pm[i] = rng.uniform() >= p ? scale : 0.f;
    po[i] = px[i] * pm[i];
  }
  return make_result(
      std::move(out), {x},
      [mask](const Tensor& g_in, GradSink& sink) {
        Tensor g = g_in.contiguous();
        Tensor gx = Tensor::empty(mask.shape());
        for (int64_t i = 0; i < gx.numel(); ++i) gx.f32()[i] = g.f32()[i] * mask.f32()[i];
        sink.add(0, std::move(gx));
      },
      "dropout");
}

}  // namespace lowbit::ops
