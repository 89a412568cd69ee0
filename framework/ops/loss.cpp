#include "kernels/backend.h"
#include "ops/ops.h"

namespace lowbit::ops {

Variable cross_entropy(const Variable& logits, const Tensor& labels) {
  const Shape& ls = logits.shape();
  LB_CHECK(ls.rank() == 2, "cross_entropy: logits must be (N, classes), got ", ls.str());
  LB_CHECK(labels.dtype() == DType::s32 && labels.shape() == Shape({ls[0]}), "cross_entropy: labels must be s32 (",
           ls[0], "), got ", labels.str());
  const int64_t n = ls[0], c = ls[1];
  const int32_t* y = labels.data<int32_t>();
  for (int64_t i = 0; i < n; ++i)
    LB_CHECK(y[i] >= 0 && y[i] < c, "cross_entropy: label ", y[i], " at row ", i, " is outside [0, ", c, ")");
  const Device dev = logits.device();
  Tensor x = logits.data().contiguous();
  Tensor probs = Tensor::empty(ls, DType::f32, dev);  // softmax, saved for backward
  const double total = kernels::backend_for(dev).loss().cross_entropy_forward(x.f32(), y, n, c, probs.f32());
  Tensor lbl = labels;
  return make_result(
      Tensor::full({1}, static_cast<float>(total / n)), {logits},
      [probs, lbl, n, c, dev](const Tensor& g, GradSink& sink) {
        const float scale = g.item() / static_cast<float>(n);
        Tensor gx = Tensor::empty(probs.shape(), DType::f32, dev);
        kernels::backend_for(dev).loss().cross_entropy_backward(probs.f32(), lbl.data<int32_t>(), n, c, scale, gx.f32());
        sink.add(0, std::move(gx));
      },
      "cross_entropy");
}

}  // namespace lowbit::ops
