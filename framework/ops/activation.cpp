#include <cmath>

#include "kernels/common/activation_math.h"
#include "ops/ops.h"

namespace lowbit::ops {

namespace {

// y = f(x); dx = dy * df(saved), where `saved` is the input (kSaveInput) or the output.
enum class Save { input, output };

template <typename F, typename DF>
Variable unary(const Variable& x, Save save, F f, DF df, const char* name) {
  Tensor xin = x.data().contiguous();
  Tensor out = Tensor::empty(xin.shape());
  const float* px = xin.f32();
  float* po = out.f32();
  const int64_t n = xin.numel();
#pragma omp parallel for simd if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) po[i] = f(px[i]);
  Tensor saved = save == Save::input ? xin : out;
  return make_result(
      std::move(out), {x},
      [saved, df](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        Tensor gx = Tensor::empty(saved.shape());
        const float* g = gout.f32();
        const float* s = saved.f32();
        float* q = gx.f32();
        const int64_t n = saved.numel();
#pragma omp parallel for simd if (n > 65536) schedule(static)
        for (int64_t i = 0; i < n; ++i) q[i] = g[i] * df(s[i]);
        sink.add(0, std::move(gx));
      },
      name);
}

}  // namespace

Variable relu(const Variable& x) {
  return unary(x, Save::output, [](float v) { return kernels::relu_fwd(v); },
               [](float y) { return kernels::relu_bwd_from_y(y); }, "relu");
}

Variable hardtanh(const Variable& x, float lo, float hi) {
  LB_CHECK(lo < hi, "hardtanh: min_val ", lo, " must be below max_val ", hi);
  // PyTorch: gradient passes where lo < x < hi (zero at the bounds).
  return unary(x, Save::input, [lo, hi](float v) { return kernels::hardtanh_fwd(v, lo, hi); },
               [lo, hi](float v) { return kernels::hardtanh_bwd_from_x(v, lo, hi); }, "hardtanh");
}

Variable relu6(const Variable& x) { return hardtanh(x, 0.f, 6.f); }

Variable leaky_relu(const Variable& x, float slope) {
  return unary(x, Save::input, [slope](float v) { return kernels::leaky_relu_fwd(v, slope); },
               [slope](float v) { return kernels::leaky_relu_bwd_from_x(v, slope); }, "leaky_relu");
}

Variable hardswish(const Variable& x) {
  return unary(x, Save::input, [](float v) { return kernels::hardswish_fwd(v); },
               [](float v) { return kernels::hardswish_bwd_from_x(v); }, "hardswish");
}

Variable tanh(const Variable& x) {
  return unary(x, Save::output, [](float v) { return kernels::tanh_fwd(v); },
               [](float y) { return kernels::tanh_bwd_from_y(y); }, "tanh");
}

Variable sigmoid(const Variable& x) {
  return unary(x, Save::output, [](float v) { return kernels::sigmoid_fwd(v); },
               [](float y) { return kernels::sigmoid_bwd_from_y(y); }, "sigmoid");
}

}  // namespace lowbit::ops
