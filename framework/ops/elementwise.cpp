#include "kernels/backend.h"
#include "ops/ops.h"

namespace lowbit::ops {

Variable add(const Variable& a, const Variable& b) {
  LB_CHECK(a.shape() == b.shape(), "add: shapes ", a.shape().str(), " and ", b.shape().str(), " differ");
  const Device dev = a.device();
  Tensor ain = a.data().contiguous(), bin = b.data().contiguous();
  Tensor out = Tensor::empty(ain.shape(), DType::f32, dev);
  kernels::backend_for(dev).elementwise().add(ain.f32(), bin.f32(), out.f32(), out.numel());
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
  const Device dev = x.device();
  Tensor xin = x.data().contiguous();
  Tensor out = Tensor::empty(xin.shape(), DType::f32, dev);
  kernels::backend_for(dev).elementwise().scale(xin.f32(), s, out.f32(), out.numel());
  return make_result(
      std::move(out), {x},
      [s, dev](const Tensor& g_in, GradSink& sink) {
        Tensor g = g_in.contiguous();
        Tensor gx = Tensor::empty(g.shape(), DType::f32, dev);
        kernels::backend_for(dev).elementwise().scale(g.f32(), s, gx.f32(), gx.numel());
        sink.add(0, std::move(gx));
      },
      "mul_scalar");
}

Variable sum(const Variable& x) {
  Tensor xin = x.data().contiguous();
  const double s = kernels::backend_for(x.device()).elementwise().sum(xin.f32(), xin.numel());
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
  const Device dev = x.device();
  Tensor mask = Tensor::empty(xin.shape());  // made on the host: it depends only on the seed
  const float scale = 1.f / (1.f - p);
  float* pm = mask.f32();
  // Serial on purpose: the mask depends only on the seed, not on the thread count.
  for (int64_t i = 0; i < xin.numel(); ++i) pm[i] = rng.uniform() >= p ? scale : 0.f;
  Tensor out = Tensor::empty(xin.shape(), DType::f32, dev);
  kernels::backend_for(dev).elementwise().mul(xin.f32(), mask.f32(), out.f32(), out.numel());
  return make_result(
      std::move(out), {x},
      [mask, dev](const Tensor& g_in, GradSink& sink) {
        Tensor g = g_in.contiguous();
        Tensor gx = Tensor::empty(mask.shape(), DType::f32, dev);
        kernels::backend_for(dev).elementwise().mul(g.f32(), mask.f32(), gx.f32(), gx.numel());
        sink.add(0, std::move(gx));
      },
      "dropout");
}

}  // namespace lowbit::ops
