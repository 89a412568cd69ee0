#include <algorithm>
#include <tuple>

#include "kernels/backend.h"
#include "ops/ops.h"

namespace lowbit::ops {

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil, bool same) {
  LB_CHECK(stride > 0 && dil > 0 && k > 0, "conv: kernel ", k, ", stride ", stride, ", dilation ", dil,
           " must be positive");
  int64_t out = same ? (in + stride - 1) / stride : (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
  LB_CHECK(out > 0, "conv/pool: input size ", in, " with kernel ", k, ", stride ", stride, ", padding ", pad,
           ", dilation ", dil, " gives output size ", out, ": the input is too small");
  return out;
}

// TF SAME padding for one dimension: (before, after).
static std::pair<int64_t, int64_t> same_pad(int64_t in, int64_t out, int64_t k, int64_t s, int64_t d) {
  int64_t total = std::max<int64_t>((out - 1) * s + (k - 1) * d + 1 - in, 0);
  return {total / 2, total - total / 2};
}

Variable conv2d(const Variable& x, const Variable& w, const Variable& b, const Conv2dOptions& opt) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  LB_CHECK(xs.rank() == 4, "conv2d: input must be (N, C, H, W), got ", xs.str());
  LB_CHECK(ws.rank() == 4, "conv2d: weight must be (C_out, C_in/groups, KH, KW), got ", ws.str());
  LB_CHECK(opt.groups >= 1 && xs[1] % opt.groups == 0 && ws[0] % opt.groups == 0,
           "conv2d: groups=", opt.groups, " must divide input channels ", xs[1], " and output channels ", ws[0]);
  LB_CHECK(ws[1] * opt.groups == xs[1], "conv2d: input has ", xs[1], " channels ", xs.str(), " but weight ", ws.str(),
           " with groups=", opt.groups, " expects ", ws[1] * opt.groups);
  if (b.defined()) LB_CHECK(b.shape() == Shape({ws[0]}), "conv2d: bias ", b.shape().str(), " for ", ws[0], " output channels");
  kernels::Conv2dGeometry g{};
  g.n = xs[0]; g.c_in = xs[1]; g.h_in = xs[2]; g.w_in = xs[3];
  g.c_out = ws[0]; g.kh = ws[2]; g.kw = ws[3];
  g.stride_h = opt.stride_h; g.stride_w = opt.stride_w;
  g.dil_h = opt.dil_h; g.dil_w = opt.dil_w;
  g.groups = opt.groups;
  g.has_bias = b.defined();
  g.h_out = conv_out_size(g.h_in, g.kh, g.stride_h, opt.pad_h, g.dil_h, opt.pad_same);
  g.w_out = conv_out_size(g.w_in, g.kw, g.stride_w, opt.pad_w, g.dil_w, opt.pad_same);
  if (opt.pad_same) {
    std::tie(g.pad_top, g.pad_bottom) = same_pad(g.h_in, g.h_out, g.kh, g.stride_h, g.dil_h);
    std::tie(g.pad_left, g.pad_right) = same_pad(g.w_in, g.w_out, g.kw, g.stride_w, g.dil_w);
  } else {
    g.pad_top = g.pad_bottom = opt.pad_h;
    g.pad_left = g.pad_right = opt.pad_w;
  }
  Tensor xin = x.data().contiguous();
  Tensor win = w.data().contiguous();
  const Device dev = x.device();
  kernels::ConvKernels& conv = kernels::backend_for(dev).conv();
  LB_CHECK(conv.supports(g), "conv2d: the ", device_name(dev), " backend does not support this convolution (input ",
           xs.str(), ", weight ", ws.str(), ", groups ", g.groups, ")");
  Tensor out = Tensor::empty({g.n, g.c_out, g.h_out, g.w_out}, DType::f32, dev);
  kernels::ConvSavedInput kept;
  conv.forward(g, xin.f32(), win.f32(), g.has_bias ? b.data().contiguous().f32() : nullptr, out.f32(),
               w.requires_grad() && grad_enabled() ? &kept : nullptr);
  // The backward keeps the reordered input instead of the plain one where it can.
  if (!conv.needs_plain_input(g, kept)) xin = Tensor();
  return make_result(
      std::move(out), {x, w, b},
      [g, xin, win, kept, dev](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        const bool dx = sink.needs(0), dw = sink.needs(1) || sink.needs(2);
        Tensor gx = dx ? Tensor::empty({g.n, g.c_in, g.h_in, g.w_in}, DType::f32, dev) : Tensor();
        Tensor gw = dw ? Tensor::empty(win.shape(), DType::f32, dev) : Tensor();
        Tensor gb = dw && g.has_bias ? Tensor::empty({g.c_out}, DType::f32, dev) : Tensor();
        kernels::backend_for(dev).conv().backward(g, xin.defined() ? xin.f32() : nullptr, kept, gout.f32(), win.f32(),
                                                  dx ? gx.f32() : nullptr, dw ? gw.f32() : nullptr,
                                                  gb.defined() ? gb.f32() : nullptr);
        if (dx) sink.add(0, std::move(gx));
        if (dw) {
          sink.add(1, std::move(gw));
          if (g.has_bias) sink.add(2, std::move(gb));
        }
      },
      "conv2d");
}

}  // namespace lowbit::ops
