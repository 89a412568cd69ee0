#include "kernels/backend.h"
#include "ops/ops.h"

namespace lowbit::ops {

Variable linear(const Variable& x, const Variable& w, const Variable& b) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  LB_CHECK(xs.rank() == 2, "linear: input must be (N, in_features), got ", xs.str(), " (add a flatten layer before it)");
  LB_CHECK(ws.rank() == 2, "linear: weight must be (out, in), got ", ws.str());
  LB_CHECK(xs[1] == ws[1], "linear: input ", xs.str(), " has ", xs[1], " features but weight ", ws.str(), " expects ", ws[1]);
  if (b.defined()) LB_CHECK(b.shape() == Shape({ws[0]}), "linear: bias ", b.shape().str(), " for ", ws[0], " outputs");
  const int64_t n = xs[0], in = ws[1], outf = ws[0];
  Tensor xin = x.data().contiguous();
  Tensor win = w.data().contiguous();
  const Device dev = x.device();
  Tensor out = Tensor::empty({n, outf}, DType::f32, dev);
  kernels::backend_for(dev).matmul().matmul(n, outf, in, xin.f32(), false, win.f32(), true,
                                            b.defined() ? b.data().contiguous().f32() : nullptr, out.f32());
  const bool has_bias = b.defined();
  return make_result(
      std::move(out), {x, w, b},
      [xin, win, n, in, outf, has_bias, dev](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        kernels::Backend& be = kernels::backend_for(dev);
        if (sink.needs(0)) {  // dx (N, in) = dy (N, out) * W (out, in)
          Tensor gx = Tensor::empty({n, in}, DType::f32, dev);
          be.matmul().matmul(n, in, outf, gout.f32(), false, win.f32(), false, nullptr, gx.f32());
          sink.add(0, std::move(gx));
        }
        if (sink.needs(1)) {  // dW (out, in) = dy^T (out, N) * x (N, in)
          Tensor gw = Tensor::empty({outf, in}, DType::f32, dev);
          be.matmul().matmul(outf, in, n, gout.f32(), true, xin.f32(), false, nullptr, gw.f32());
          sink.add(1, std::move(gw));
        }
        if (has_bias && sink.needs(2)) {
          Tensor gb = Tensor::empty({outf}, DType::f32, dev);
          be.elementwise().column_sums(gout.f32(), n, outf, gb.f32());
          sink.add(2, std::move(gb));
        }
      },
      "linear");
}

}  // namespace lowbit::ops
