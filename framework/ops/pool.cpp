// Pooling ops: shape checks here, the loops in the backend (kernels/backend.h, PoolKernels).
#include "kernels/backend.h"
#include "ops/ops.h"

namespace lowbit::ops {

namespace {

kernels::Pool2dGeometry pool_geometry(const Shape& xs, const Pool2dOptions& o, const char* name) {
  LB_CHECK(xs.rank() == 4, name, ": input must be (N, C, H, W), got ", xs.str());
  LB_CHECK(o.kernel_h > 0 && o.kernel_w > 0 && o.stride_h > 0 && o.stride_w > 0, name, ": kernel and stride must be positive");
  LB_CHECK(o.pad_h >= 0 && o.pad_w >= 0 && o.pad_h * 2 <= o.kernel_h && o.pad_w * 2 <= o.kernel_w, name,
           ": padding must be at most half the kernel (PyTorch rule), got padding ", o.pad_h, "x", o.pad_w,
           " for kernel ", o.kernel_h, "x", o.kernel_w);
  kernels::Pool2dGeometry g{};
  g.n = xs[0]; g.c = xs[1]; g.h = xs[2]; g.w = xs[3];
  g.h_out = conv_out_size(g.h, o.kernel_h, o.stride_h, o.pad_h, 1, false);
  g.w_out = conv_out_size(g.w, o.kernel_w, o.stride_w, o.pad_w, 1, false);
  g.kernel_h = o.kernel_h; g.kernel_w = o.kernel_w;
  g.stride_h = o.stride_h; g.stride_w = o.stride_w;
  g.pad_h = o.pad_h; g.pad_w = o.pad_w;
  g.count_include_pad = o.count_include_pad;
  return g;
}

kernels::PoolKernels& pool_kernels(Device dev, const kernels::Pool2dGeometry& g, const char* name) {
  kernels::PoolKernels& k = kernels::backend_for(dev).pool();
  LB_CHECK(k.supports(g), name, ": the ", device_name(dev), " backend does not support this pooling (", g.kernel_h, "x",
           g.kernel_w, " kernel, stride ", g.stride_h, "x", g.stride_w, ")");
  return k;
}

}  // namespace

Variable max_pool2d(const Variable& x, const Pool2dOptions& o) {
  const kernels::Pool2dGeometry g = pool_geometry(x.shape(), o, "max_pool2d");
  const Device dev = x.device();
  Tensor xin = x.data().contiguous();
  Tensor out = Tensor::empty({g.n, g.c, g.h_out, g.w_out}, DType::f32, dev);
  Tensor arg = Tensor::empty({g.n, g.c, g.h_out, g.w_out}, DType::s32, dev);  // flat h*w index of the max
  pool_kernels(dev, g, "max_pool2d").max_forward(g, xin.f32(), out.f32(), arg.data<int32_t>());
  Shape in_shape = xin.shape();
  return make_result(
      std::move(out), {x},
      [arg, g, in_shape, dev](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        Tensor gx = Tensor::empty(in_shape, DType::f32, dev);
        kernels::backend_for(dev).pool().max_backward(g, arg.data<int32_t>(), gout.f32(), gx.f32());
        sink.add(0, std::move(gx));
      },
      "max_pool2d");
}

Variable avg_pool2d(const Variable& x, const Pool2dOptions& o) {
  const kernels::Pool2dGeometry g = pool_geometry(x.shape(), o, "avg_pool2d");
  const Device dev = x.device();
  Tensor xin = x.data().contiguous();
  Tensor out = Tensor::empty({g.n, g.c, g.h_out, g.w_out}, DType::f32, dev);
  pool_kernels(dev, g, "avg_pool2d").avg_forward(g, xin.f32(), out.f32());
  Shape in_shape = xin.shape();
  return make_result(
      std::move(out), {x},
      [g, in_shape, dev](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        Tensor gx = Tensor::empty(in_shape, DType::f32, dev);
        kernels::backend_for(dev).pool().avg_backward(g, gout.f32(), gx.f32());
        sink.add(0, std::move(gx));
      },
      "avg_pool2d");
}

Variable global_avg_pool2d(const Variable& x) {
  const Shape& xs = x.shape();
  LB_CHECK(xs.rank() == 4, "global_avg_pool2d: input must be (N, C, H, W), got ", xs.str());
  const int64_t nc = xs[0] * xs[1], hw = xs[2] * xs[3];
  const Device dev = x.device();
  Tensor xin = x.data().contiguous();
  Tensor out = Tensor::empty({xs[0], xs[1], 1, 1}, DType::f32, dev);
  kernels::backend_for(dev).pool().global_avg_forward(nc, hw, xin.f32(), out.f32());
  Shape in_shape = xs;
  return make_result(
      std::move(out), {x},
      [in_shape, nc, hw, dev](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        Tensor gx = Tensor::empty(in_shape, DType::f32, dev);
        kernels::backend_for(dev).pool().global_avg_backward(nc, hw, gout.f32(), gx.f32());
        sink.add(0, std::move(gx));
      },
      "global_avg_pool2d");
}

}  // namespace lowbit::ops
