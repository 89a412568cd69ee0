#include "intnet/ranges.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace lowbit::intnet {

namespace {

constexpr int64_t kInt32Max = 2147483647;

// max |x - zp| over a value's range.
int64_t magnitude(const Value& v, int32_t zp) { return std::max(std::abs(v.lo - zp), std::abs(v.hi - zp)); }

void set_range(Value& v, int64_t lo, int64_t hi) {
  v.lo = lo;
  v.hi = hi;
  v.is_signed = lo < 0;
  const int64_t m = std::max(std::abs(lo), std::abs(hi));
  if (v.is_signed) {
    v.bits = signed_bits_for(m);
  } else {
    v.bits = 1;
    while (v.bits < 63 && (int64_t{1} << v.bits) - 1 < hi) ++v.bits;
  }
}

// Worst-case |bias[c] + 2^shift * sum_j w[c, j] * x_j| with |x_j| <= x_max, over the output channels.
int64_t dot_bound(const Node& n, const WeightTensor& w, const std::vector<int32_t>& bias, int64_t x_max, int shift) {
  const int64_t per = w.per_output();
  int64_t worst = 0;
  for (int64_t c = 0; c < w.out_channels(); ++c) {
    int64_t sum = 0;
    for (int64_t j = 0; j < per; ++j) sum += std::abs(static_cast<int64_t>(w.data[static_cast<size_t>(c * per + j)]));
    const int64_t b = std::abs(static_cast<int64_t>(bias[static_cast<size_t>(c)]));
    const int64_t bound = (sum * x_max << shift) + b;
    LB_CHECK(bound <= kInt32Max, "integer network ", n.name, ": output channel ", c, " can reach |accumulator| = ",
             sum, " (sum of |weights|) x ", x_max, " (largest |input|)",
             shift ? " x 2^" + std::to_string(shift) + " (acc_shift)" : std::string(), " + ", b, " (|bias|) = ", bound,
             ", which needs ", signed_bits_for(bound), " bits: more than int32. Fix: fewer input bits, smaller ",
             "weights, or split the layer");
    worst = std::max(worst, bound);
  }
  return worst;
}

}  // namespace

void prove_ranges(Network& net) {
  for (Node& n : net.nodes) {
    Value& y = net.values.at(static_cast<size_t>(n.output));
    auto in = [&](size_t k) -> const Value& { return net.values.at(static_cast<size_t>(n.inputs.at(k))); };
    switch (n.op) {
      case OpKind::quantize:
      case OpKind::lut:
      case OpKind::threshold: break;  // set by the lowering from the grid / the table / the levels
      case OpKind::conv2d: {
        auto& a = std::get<ConvAttrs>(n.attrs);
        a.acc_bound = dot_bound(n, a.weight, a.bias, magnitude(in(0), a.input_zero_point), a.acc_shift);
        set_range(y, -a.acc_bound, a.acc_bound);
        break;
      }
      case OpKind::matmul: {
        auto& a = std::get<MatmulAttrs>(n.attrs);
        a.acc_bound = dot_bound(n, a.weight, a.bias, magnitude(in(0), a.input_zero_point), a.acc_shift);
        set_range(y, -a.acc_bound, a.acc_bound);
        break;
      }
      case OpKind::requantize: {
        auto& a = std::get<RequantizeAttrs>(n.attrs);
        a.input_bound = magnitude(in(0), a.input_zero_point);
        int left = 0;
        for (int8_t s : a.shift) left = std::max(left, static_cast<int>(s));
        LB_CHECK(a.input_bound <= (kInt32Max >> left), "integer network ", n.name, ": the input reaches |x| = ",
                 a.input_bound, " and the multiplier needs a left shift of ", left,
                 " bits, which overflows int32. Fix: a smaller requantization multiplier (output scale)");
        y.lo = std::max<int64_t>(y.lo, a.lo);
        y.hi = std::min<int64_t>(y.hi, a.hi);
        break;
      }
      case OpKind::max_pool:
      case OpKind::reshape:
        y.lo = in(0).lo;
        y.hi = in(0).hi;
        break;
      case OpKind::avg_pool: {
        const auto& a = std::get<PoolAttrs>(n.attrs);
        const int64_t k2 = a.kernel_h * a.kernel_w;
        const int64_t lo = k2 * std::min<int64_t>(in(0).lo - a.input_zero_point, 0);
        const int64_t hi = k2 * std::max<int64_t>(in(0).hi - a.input_zero_point, 0);
        LB_CHECK(std::max(-lo, hi) <= kInt32Max, "integer network ", n.name, ": a window sum can reach ",
                 std::max(-lo, hi), ", more than int32");
        const int bits = y.bits;
        set_range(y, std::max<int64_t>(lo >> a.shift, a.lo), std::min<int64_t>(hi >> a.shift, a.hi));
        if (a.lo != INT32_MIN) y.bits = bits;  // truncating pools keep their declared width
        break;
      }
      case OpKind::add: {
        int64_t lo = 0, hi = 0;
        for (size_t k = 0; k < n.inputs.size(); ++k) {
          lo += in(k).lo - in(k).zero_point[0];
          hi += in(k).hi - in(k).zero_point[0];
        }
        LB_CHECK(std::max(-lo, hi) <= kInt32Max, "integer network ", n.name, ": the sum can reach ", std::max(-lo, hi),
                 ", more than int32");
        set_range(y, lo, hi);
        break;
      }
      case OpKind::concat: {
        int64_t lo = in(0).lo, hi = in(0).hi;
        for (size_t k = 1; k < n.inputs.size(); ++k) {
          lo = std::min(lo, in(k).lo);
          hi = std::max(hi, in(k).hi);
        }
        y.lo = lo;
        y.hi = hi;
        break;
      }
    }
  }
}

}  // namespace lowbit::intnet
