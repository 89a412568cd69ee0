// Batch norm: checks and saved tensors here, the loops in the backend (kernels/backend.h,
// NormKernels: whole-batch-row passes, statistics reduced in float over at most 64 rows and in
// double beyond, so results match PyTorch's within rounding regardless of the thread count).
#include "kernels/backend.h"
#include "ops/ops.h"

namespace lowbit::ops {

Variable batch_norm2d(const Variable& x, const Variable& gamma, const Variable& beta, Tensor& running_mean,
                      Tensor& running_var, bool training, float momentum, float eps) {
  const Shape& xs = x.shape();
  LB_CHECK(xs.rank() == 4, "batch_norm2d: input must be (N, C, H, W), got ", xs.str());
  const int64_t n = xs[0], c = xs[1], hw = xs[2] * xs[3], m = n * hw;
  LB_CHECK(running_mean.shape() == Shape({c}) && running_var.shape() == Shape({c}),
           "batch_norm2d: input has ", c, " channels ", xs.str(), " but the running statistics have ", running_mean.shape().str());
  if (gamma.defined()) LB_CHECK(gamma.shape() == Shape({c}), "batch_norm2d: weight ", gamma.shape().str(), " for ", c, " channels");
  if (training) LB_CHECK(m > 1, "batch_norm2d: training needs more than one value per channel, got input ", xs.str());
  const Device dev = x.device();
  kernels::NormKernels& norm = kernels::backend_for(dev).norm();
  const kernels::BatchNormGeometry g{n, c, hw};
  Tensor xin = x.data().contiguous();
  Tensor mean_t = Tensor::empty({c}, DType::f32, dev), invstd_t = Tensor::empty({c}, DType::f32, dev);
  float* mean = mean_t.f32();
  float* invstd = invstd_t.f32();
  float* rm = running_mean.f32();
  float* rv = running_var.f32();
  if (training) {
    norm.batch_norm_statistics(g, xin.f32(), eps, momentum, mean, invstd, rm, rv);
  } else {
    norm.batch_norm_eval_statistics(c, eps, rm, rv, mean, invstd);
  }
  Tensor g_t = gamma.defined() ? gamma.data().contiguous() : Tensor();
  Tensor b_t = beta.defined() ? beta.data().contiguous() : Tensor();
  Tensor out = Tensor::empty(xs, DType::f32, dev);
  norm.batch_norm_apply(g, xin.f32(), mean, invstd, g_t.defined() ? g_t.f32() : nullptr,
                        b_t.defined() ? b_t.f32() : nullptr, out.f32());
  return make_result(
      std::move(out), {x, gamma, beta},
      [xin, mean_t, invstd_t, g_t, training, g, dev](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        Tensor gx = sink.needs(0) ? Tensor::empty(xin.shape(), DType::f32, dev) : Tensor();
        Tensor gg = sink.needs(1) ? Tensor::empty({g.c}, DType::f32, dev) : Tensor();
        Tensor gb = sink.needs(2) ? Tensor::empty({g.c}, DType::f32, dev) : Tensor();
        kernels::backend_for(dev).norm().batch_norm_backward(
            g, training, xin.f32(), gout.f32(), mean_t.f32(), invstd_t.f32(), g_t.defined() ? g_t.f32() : nullptr,
            gx.defined() ? gx.f32() : nullptr, gg.defined() ? gg.f32() : nullptr, gb.defined() ? gb.f32() : nullptr);
        if (gx.defined()) sink.add(0, std::move(gx));
        if (gg.defined()) sink.add(1, std::move(gg));
        if (gb.defined()) sink.add(2, std::move(gb));
      },
      "batch_norm2d");
}

}  // namespace lowbit::ops
