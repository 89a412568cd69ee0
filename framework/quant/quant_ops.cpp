#include "quant/quant_ops.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "kernels/backend.h"

namespace lowbit::quant {

namespace {

// (channels, inner) of a per-axis layout: element i uses channel (i / inner) % channels.
kernels::FakeQuantGeometry geometry(const Shape& s, int axis) {
  kernels::FakeQuantGeometry g;
  g.n = s.numel();
  if (axis < 0) return g;
  LB_CHECK(axis < static_cast<int>(s.rank()), "per-channel quantization along dim ", axis, " of a tensor ", s.str(),
           " that has no such dimension");
  g.channels = s[axis];
  for (size_t d = axis + 1; d < s.rank(); ++d) g.inner *= s[d];
  return g;
}

void check_scale(const Shape& xs, const Variable& scale, int axis, const char* what) {
  const int64_t want = axis < 0 ? 1 : xs[axis];
  LB_CHECK(scale.numel() == want, what, ": scale has ", scale.numel(), " values but the tensor ", xs.str(), " needs ",
           want, axis < 0 ? " (per tensor)" : " (one per channel)");
}

// Shape (C) -> per-element channel index helper for reductions.
template <typename F>
void for_each_channel(const kernels::FakeQuantGeometry& g, F f) {
  const int64_t rows = g.n / g.inner;
  for (int64_t r = 0; r < rows; ++r) f(r % g.channels, r * g.inner, (r + 1) * g.inner);
}

}  // namespace

Variable fake_quant(const Variable& x, const Variable& scale, const Tensor& zero_point, const FakeQuantSpec& spec) {
  const Shape& xs = x.shape();
  check_scale(xs, scale, spec.axis, "fake_quant");
  if (zero_point.defined()) LB_CHECK(zero_point.numel() == scale.numel(), "fake_quant: zero point has ", zero_point.numel(),
                                     " values for ", scale.numel(), " scales");
  const kernels::FakeQuantGeometry g = geometry(xs, spec.axis);
  Tensor xin = x.data().contiguous();
  Tensor s = scale.data().contiguous();
  Tensor zp = zero_point.defined() ? zero_point.contiguous() : Tensor();
  for (int64_t c = 0; c < s.numel(); ++c)
    LB_CHECK(std::isfinite(s.f32()[c]) && s.f32()[c] > 0.f, "fake_quant: scale ", s.f32()[c], " at channel ", c,
             " is not a positive finite number");
  const Device dev = x.device();
  Tensor out = Tensor::empty(xs, DType::f32, dev);
  kernels::backend_for(dev).fake_quant().forward(g, spec.elem, xin.f32(), s.f32(), zp.defined() ? zp.f32() : nullptr,
                                                 out.f32());
  return make_result(
      std::move(out), {x, scale},
      [g, spec, xin, s, zp, dev](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        Tensor gx = sink.needs(0) ? Tensor::empty(xin.shape()) : Tensor();
        std::vector<double> ds(sink.needs(1) ? static_cast<size_t>(g.channels) : 0);
        kernels::backend_for(dev).fake_quant().backward(
            g, spec.elem, spec.ste_clamp, spec.inside_scale_grad, xin.f32(), s.f32(), zp.defined() ? zp.f32() : nullptr,
            gout.f32(), gx.defined() ? gx.f32() : nullptr, ds.empty() ? nullptr : ds.data());
        if (gx.defined()) sink.add(0, std::move(gx));
        if (!ds.empty()) {
          Tensor gs = Tensor::empty(s.shape());
          for (int64_t c = 0; c < g.channels; ++c) gs.f32()[c] = static_cast<float>(ds[c]);
          sink.add(1, std::move(gs));
        }
      },
      "fake_quant");
}

Variable binary_quant(const Variable& x, const Variable& scale, int axis, float clip) {
  const Shape& xs = x.shape();
  check_scale(xs, scale, axis, "binary_quant");
  const kernels::FakeQuantGeometry g = geometry(xs, axis);
  Tensor xin = x.data().contiguous();
  Tensor s = scale.data().contiguous();
  Tensor out = Tensor::empty(xs);
  const float* px = xin.f32();
  float* po = out.f32();
  for_each_channel(g, [&](int64_t c, int64_t lo, int64_t hi) {
    const float sc = s.f32()[c];
    for (int64_t i = lo; i < hi; ++i) po[i] = kernels::binary_forward(px[i], sc);
  });
  return make_result(
      std::move(out), {x, scale},
      [g, xin, s, clip](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        const float* px = xin.f32();
        const float* pg = gout.f32();
        if (sink.needs(0)) {  // Brevitas: y = binary_sign_ste(x) * s, so dx = g * s
          Tensor gx = Tensor::empty(xin.shape());
          float* pgx = gx.f32();
          for_each_channel(g, [&](int64_t c, int64_t lo, int64_t hi) {
            const float sc = s.f32()[c];
            for (int64_t i = lo; i < hi; ++i) pgx[i] = (clip <= 0.f || std::fabs(px[i]) <= clip) ? pg[i] * sc : 0.f;
          });
          sink.add(0, std::move(gx));
        }
        if (sink.needs(1)) {
          std::vector<double> ds(g.channels, 0.0);
          for_each_channel(g, [&](int64_t c, int64_t lo, int64_t hi) {
            double a = 0;
            for (int64_t i = lo; i < hi; ++i) a += px[i] >= 0.f ? pg[i] : -pg[i];
            ds[c] += a;
          });
          Tensor gs = Tensor::empty(s.shape());
          for (int64_t c = 0; c < g.channels; ++c) gs.f32()[c] = static_cast<float>(ds[c]);
          sink.add(1, std::move(gs));
        }
      },
      "binary_quant");
}

Variable clip_learned(const Variable& x, const Variable& lo, const Variable& hi, int axis) {
  const kernels::FakeQuantGeometry g = geometry(x.shape(), axis);
  check_scale(x.shape(), lo, axis, "clip_learned (lower bound)");
  check_scale(x.shape(), hi, axis, "clip_learned (upper bound)");
  Tensor xin = x.data().contiguous();
  Tensor l = lo.data().contiguous(), h = hi.data().contiguous();
  for (int64_t c = 0; c < g.channels; ++c)
    LB_CHECK(l.f32()[c] < h.f32()[c], "clip_learned: lower bound ", l.f32()[c], " is not below the upper bound ",
             h.f32()[c], " (channel ", c, ")");
  Tensor out = Tensor::empty(xin.shape());
  const float* px = xin.f32();
  float* po = out.f32();
  for_each_channel(g, [&](int64_t c, int64_t b, int64_t e) {
    const float lc = l.f32()[c], hc = h.f32()[c];
    for (int64_t i = b; i < e; ++i) po[i] = px[i] < lc ? lc : (px[i] > hc ? hc : px[i]);
  });
  return make_result(
      std::move(out), {x, lo, hi},
      [g, xin, l, h](const Tensor& gout_in, GradSink& sink) {
        const Tensor gout = gout_in.contiguous();
        const float* px = xin.f32();
        const float* pg = gout.f32();
        Tensor gx = sink.needs(0) ? Tensor::empty(xin.shape()) : Tensor();
        std::vector<double> dlo(g.channels, 0.0), dhi(g.channels, 0.0);
        for_each_channel(g, [&](int64_t c, int64_t b, int64_t e) {
          const float lc = l.f32()[c], hc = h.f32()[c];
          double sl = 0, sh = 0;
          for (int64_t i = b; i < e; ++i) {
            const bool below = px[i] < lc, above = px[i] > hc;
            if (gx.defined()) gx.f32()[i] = below || above ? 0.f : pg[i];
            sl += below ? pg[i] : 0.0;
            sh += above ? pg[i] : 0.0;
          }
          dlo[c] += sl;
          dhi[c] += sh;
        });
        if (gx.defined()) sink.add(0, std::move(gx));
        auto to_tensor = [&](const std::vector<double>& v) {
          Tensor t = Tensor::empty({g.channels});
          for (int64_t c = 0; c < g.channels; ++c) t.f32()[c] = static_cast<float>(v[c]);
          return t;
        };
        if (sink.needs(1)) sink.add(1, to_tensor(dlo));
        if (sink.needs(2)) sink.add(2, to_tensor(dhi));
      },
      "clip_learned");
}

Variable abs_max(const Variable& x, int axis) {
  const kernels::FakeQuantGeometry g = geometry(x.shape(), axis);
  Tensor xin = x.data().contiguous();
  const float* px = xin.f32();
  Tensor out = Tensor::zeros({g.channels});
  float* po = out.f32();
  for_each_channel(g, [&](int64_t c, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) po[c] = std::max(po[c], std::fabs(px[i]));
  });
  Tensor maxes = out.clone();
  return make_result(
      std::move(out), {x},
      [g, xin, maxes](const Tensor& gout, GradSink& sink) {
        const float* px = xin.f32();
        const float* m = maxes.f32();
        std::vector<int64_t> ties(g.channels, 0);
        for_each_channel(g, [&](int64_t c, int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) ties[c] += std::fabs(px[i]) == m[c];
        });
        if (!sink.needs(0)) return;
        // The arg-max elements only: added into the accumulated gradient in place.
        float* gx = sink.buffer(0).f32();
        const float* pg = gout.contiguous().f32();
        for_each_channel(g, [&](int64_t c, int64_t lo, int64_t hi) {
          if (m[c] == 0.f) return;  // |x| is flat at 0: no gradient
          const float share = pg[c] / static_cast<float>(ties[c]);
          for (int64_t i = lo; i < hi; ++i)
            if (std::fabs(px[i]) == m[c]) gx[i] += px[i] >= 0.f ? share : -share;
        });
      },
      "abs_max");
}

Variable abs_percentile(const Variable& x, double q) {
  Tensor c = x.data().contiguous();
  const int64_t n = c.numel();
  LB_CHECK(n > 0, "percentile of an empty tensor");
  const float* p = c.f32();
  int64_t k = static_cast<int64_t>(std::floor(0.01 * q * static_cast<double>(n) + 0.5));
  k = std::clamp<int64_t>(k, 1, n);
  const int64_t m = n - k + 1;  // the k-th smallest is the m-th largest
  struct Entry {
    float v;
    int64_t i;
  };
  auto larger = [](const Entry& a, const Entry& b) { return a.v > b.v; };
  Entry kth{0.f, 0};
  if (m <= 64) {
    // High percentiles (99.999 of a batch): keep the m largest seen so far, sorted descending;
    // most elements are rejected by one comparison with the smallest of them.
    std::vector<Entry> top;
    top.reserve(static_cast<size_t>(m) + 1);
    for (int64_t i = 0; i < n; ++i) {
      const Entry e{std::fabs(p[i]), i};
      if (static_cast<int64_t>(top.size()) == m && !(e.v > top.back().v)) continue;
      top.insert(std::upper_bound(top.begin(), top.end(), e, larger), e);
      if (static_cast<int64_t>(top.size()) > m) top.pop_back();
    }
    kth = top.back();
  } else {
    std::vector<Entry> a(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) a[i] = {std::fabs(p[i]), i};
    std::nth_element(a.begin(), a.begin() + (k - 1), a.end(), [](const Entry& l, const Entry& r) { return l.v < r.v; });
    kth = a[k - 1];
  }
  const int64_t at = kth.i;
  const float sign = p[at] >= 0.f ? 1.f : -1.f;
  return make_result(
      Tensor::full({1}, kth.v), {x},
      [at, sign](const Tensor& gout, GradSink& sink) {
        // One element: added into the accumulated gradient in place (no dense tensor).
        if (sink.needs(0)) sink.buffer(0).f32()[at] += sign * gout.contiguous().f32()[0];
      },
      "abs_percentile");
}

void min_max(const Tensor& x, int axis, Tensor& mn, Tensor& mx) {
  const kernels::FakeQuantGeometry g = geometry(x.shape(), axis);
  Tensor c = x.contiguous();
  mn = Tensor::full({g.channels}, INFINITY);
  mx = Tensor::full({g.channels}, -INFINITY);
  for_each_channel(g, [&](int64_t ch, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      mn.f32()[ch] = std::min(mn.f32()[ch], c.f32()[i]);
      mx.f32()[ch] = std::max(mx.f32()[ch], c.f32()[i]);
    }
  });
}

Variable abs_mean_k_std(const Variable& x, int axis, double k) {
  const kernels::FakeQuantGeometry g = geometry(x.shape(), axis);
  Tensor c = x.data().contiguous();
  std::vector<double> s(g.channels, 0), ss(g.channels, 0), cnt(g.channels, 0);
  for_each_channel(g, [&](int64_t ch, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const double v = std::fabs(c.f32()[i]);
      s[ch] += v;
      ss[ch] += v * v;
      cnt[ch] += 1;
    }
  });
  Tensor out = Tensor::empty({g.channels});
  std::vector<double> mean(g.channels), sd(g.channels);
  for (int64_t ch = 0; ch < g.channels; ++ch) {
    mean[ch] = s[ch] / cnt[ch];
    const double var = cnt[ch] > 1 ? std::max(0.0, (ss[ch] - cnt[ch] * mean[ch] * mean[ch]) / (cnt[ch] - 1)) : 0.0;
    sd[ch] = std::sqrt(var);
    out.f32()[ch] = static_cast<float>(mean[ch] + k * sd[ch]);
  }
  // d/dx_i = sign(x_i) * (1/n + k * (|x_i| - mean) / ((n - 1) * std)); the std term is dropped
  // where std is 0 (a constant |x| has no direction to grow in).
  return make_result(
      std::move(out), {x},
      [g, c, mean, sd, cnt, k](const Tensor& gout_in, GradSink& sink) {
        if (!sink.needs(0)) return;
        const Tensor gout = gout_in.contiguous();
        Tensor gx = Tensor::empty(c.shape());
        for_each_channel(g, [&](int64_t ch, int64_t lo, int64_t hi) {
          const double gc = gout.f32()[ch];
          const double std_term = (cnt[ch] > 1 && sd[ch] > 0) ? k / ((cnt[ch] - 1) * sd[ch]) : 0.0;
          for (int64_t i = lo; i < hi; ++i) {
            const float v = c.f32()[i];
            const double d = 1.0 / cnt[ch] + std_term * (std::fabs(v) - mean[ch]);
            gx.f32()[i] = static_cast<float>(gc * (v >= 0.f ? d : -d));
          }
        });
        sink.add(0, std::move(gx));
      },
      "abs_mean_k_std");
}

namespace {
template <typename F, typename DF>
Variable small_unary(const Variable& x, F f, DF df, const char* name) {
  Tensor xin = x.data().contiguous();
  Tensor out = Tensor::empty(xin.shape());
  for (int64_t i = 0; i < xin.numel(); ++i) out.f32()[i] = f(xin.f32()[i]);
  Tensor y = out;
  return make_result(
      std::move(out), {x},
      [xin, y, df](const Tensor& gout, GradSink& sink) {
        Tensor g = gout.contiguous();
        Tensor gx = Tensor::empty(xin.shape());
        for (int64_t i = 0; i < xin.numel(); ++i) gx.f32()[i] = g.f32()[i] * df(xin.f32()[i], y.f32()[i]);
        sink.add(0, std::move(gx));
      },
      name);
}
}  // namespace

Variable div_scalar(const Variable& x, float d) {
  LB_CHECK(d != 0.f, "div_scalar by zero");
  return small_unary(x, [d](float v) { return v / d; }, [d](float, float) { return 1.f / d; }, "div_scalar");
}

Variable abs_sign_grad(const Variable& x) {
  return small_unary(x, [](float v) { return std::fabs(v); }, [](float v, float) { return v >= 0.f ? 1.f : -1.f; },
                     "abs");
}

// Brevitas: 2 ** ceil_ste(log2(m)). Only the ceil is straight-through, so the gradient goes through
// 2^t and log2: ds/dm = (s * ln 2) * (1 / (m * ln 2)) = s / m (not 1: that would treat the whole
// power of two as straight-through).
Variable pow2_ceil_ste(const Variable& x) {
  return small_unary(x, [](float v) { return std::exp2(std::ceil(std::log2(v))); }, [](float v, float y) { return y / v; },
                     "pow2_ceil_ste");
}

Variable exp2(const Variable& x) {
  return small_unary(x, [](float v) { return std::exp2(v); },
                     [](float, float y) { return y * 0.6931471805599453f; }, "exp2");
}

Variable grad_scale(const Variable& x, float g) {
  return small_unary(x, [](float v) { return v; }, [g](float, float) { return g; }, "grad_scale");
}

Variable round_ste(const Variable& x) {
  return small_unary(x, [](float v) { return std::nearbyint(v); }, [](float, float) { return 1.f; }, "round_ste");
}

}  // namespace lowbit::quant
