#include <cmath>

#include "ops/ops.h"

namespace lowbit::ops {

Variable cross_entropy(const Variable& logits, const Tensor& labels) {
  const Shape& ls = logits.shape();
  LB_CHECK(ls.rank() == 2, "cross_entropy: logits must be (N, classes), got ", ls.str());
  LB_CHECK(labels.dtype() == DType::s32 && labels.shape() == Shape({ls[0]}), "cross_entropy: labels must be s32 (",
           ls[0], "), got ", labels.str());
  const int64_t n = ls[0], c = ls[1];
  Tensor x = logits.data().contiguous();
  Tensor probs = Tensor::empty(ls);  // softmax, saved for backward
  const int32_t* y = labels.data<int32_t>();
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    LB_CHECK(y[i] >= 0 && y[i] < c, "cross_entropy: label ", y[i], " at row ", i, " is outside [0, ", c, ")");
    const float* row = x.f32() + i * c;
    float* pr = probs.f32() + i * c;
    float mx = row[0];
    for (int64_t j = 1; j < c; ++j) mx = std::max(mx, row[j]);
    double s = 0;
    for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(row[j] - mx));
    const double lse = std::log(s) + mx;
    for (int64_t j = 0; j < c; ++j) pr[j] = static_cast<float>(std::exp(row[j] - lse));
    total += lse - row[y[i]];
  }
  Tensor lbl = labels;
  return make_result(
      Tensor::full({1}, static_cast<float>(total / n)), {logits},
      [probs, lbl, n, c](const Tensor& g, GradSink& sink) {
        const float scale = g.item() / static_cast<float>(n);
        Tensor gx = Tensor::empty(probs.shape());
        const int32_t* y = lbl.data<int32_t>();
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < c; ++j)
            gx.f32()[i * c + j] = (probs.f32()[i * c + j] - (j == y[i] ? 1.f : 0.f)) * scale;
        sink.add(0, std::move(gx));
      },
      "cross_entropy");
}

}  // namespace lowbit::ops
