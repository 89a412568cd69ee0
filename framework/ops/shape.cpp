#include <algorithm>
#include <cstring>

#include "ops/ops.h"

namespace lowbit::ops {

Variable reshape(const Variable& x, const Shape& shape) {
  Tensor out = x.data().contiguous().reshape(shape);
  Shape in_shape = x.shape();
  return make_result(
      std::move(out), {x},
      [in_shape](const Tensor& g, GradSink& sink) { sink.add(0, g.contiguous().reshape(in_shape)); }, "reshape");
}

Variable flatten(const Variable& x, int start_dim) {
  Tensor out = x.data().contiguous().flatten(start_dim);
  return reshape(x, out.shape());
}

Variable concat_channels(const std::vector<Variable>& xs) {
  LB_CHECK(!xs.empty(), "concat: no inputs");
  const Shape& s0 = xs[0].shape();
  LB_CHECK(s0.rank() >= 2, "concat: inputs need a channel dimension, got ", s0.str());
  int64_t c_total = 0;
  for (const auto& v : xs) {
    const Shape& s = v.shape();
    bool ok = s.rank() == s0.rank() && s[0] == s0[0];
    for (size_t d = 2; ok && d < s.rank(); ++d) ok = s[d] == s0[d];
    LB_CHECK(ok, "concat: input ", s.str(), " does not match ", s0.str(), " outside the channel dimension");
    c_total += s[1];
  }
  std::vector<int64_t> dims = s0.dims();
  dims[1] = c_total;
  Shape out_shape(dims);
  const int64_t n = s0[0];
  int64_t inner = 1;
  for (size_t d = 2; d < s0.rank(); ++d) inner *= s0[d];
  Tensor out = Tensor::empty(out_shape);
  std::vector<int64_t> channels;
  int64_t c_off = 0;
  for (const auto& v : xs) {
    Tensor t = v.data().contiguous();
    const int64_t c = t.size(1);
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(out.f32() + (i * c_total + c_off) * inner, t.f32() + i * c * inner, sizeof(float) * c * inner);
    channels.push_back(c);
    c_off += c;
  }
  std::vector<Shape> shapes;
  for (const auto& v : xs) shapes.push_back(v.shape());
  return make_result(
      std::move(out), xs,
      [channels, shapes, n, inner, c_total](const Tensor& g_in, GradSink& sink) {
        Tensor g = g_in.contiguous();
        int64_t c_off = 0;
        for (size_t k = 0; k < channels.size(); ++k) {
          const int64_t c = channels[k];
          if (sink.needs(k)) {
            Tensor gx = Tensor::empty(shapes[k]);
            for (int64_t i = 0; i < n; ++i)
              std::memcpy(gx.f32() + i * c * inner, g.f32() + (i * c_total + c_off) * inner, sizeof(float) * c * inner);
            sink.add(k, std::move(gx));
          }
          c_off += c;
        }
      },
      "concat");
}

}  // namespace lowbit::ops
