#include "quant/qat_ops.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "kernels/backend.h"

namespace lowbit::quant {

namespace {

kernels::FakeQuantGeometry geometry_of(const Shape& s, int axis) {
  kernels::FakeQuantGeometry g;
  g.n = s.numel();
  if (axis < 0) return g;
  LB_CHECK(axis < static_cast<int>(s.rank()), "per-channel operation along dim ", axis, " of a tensor ", s.str(),
           " that has no such dimension");
  g.channels = s[axis];
  for (size_t d = axis + 1; d < s.rank(); ++d) g.inner *= s[d];
  return g;
}

// Broadcast pair (a, b): one of them has one element, or both the same count.
int64_t broadcast_numel(const Variable& a, const Variable& b, const char* what) {
  const int64_t na = a.numel(), nb = b.numel();
  LB_CHECK(na == nb || na == 1 || nb == 1, what, ": sizes ", na, " and ", nb, " do not broadcast");
  return std::max(na, nb);
}

// Sum of g over the positions of an operand with `n` elements broadcast to `total`.
Tensor reduce_to(const Tensor& g, int64_t n, const Shape& shape) {
  if (g.numel() == n) return g.reshape(shape).contiguous().clone();
  double s = 0;
  const Tensor c = g.contiguous();
  for (int64_t i = 0; i < c.numel(); ++i) s += c.f32()[i];
  return Tensor::full(shape, static_cast<float>(s));
}

}  // namespace

Variable mul(const Variable& a, const Variable& b) {
  const int64_t n = broadcast_numel(a, b, "mul");
  Tensor ad = a.data().contiguous(), bd = b.data().contiguous();
  const Shape shape = a.numel() == n ? a.shape() : b.shape();
  Tensor out = Tensor::empty(shape);
  const int64_t sa = a.numel() == 1 ? 0 : 1, sb = b.numel() == 1 ? 0 : 1;
  for (int64_t i = 0; i < n; ++i) out.f32()[i] = ad.f32()[i * sa] * bd.f32()[i * sb];
  const Shape as = a.shape(), bs = b.shape();
  return make_result(
      std::move(out), {a, b},
      [ad, bd, sa, sb, n, as, bs](const Tensor& gin, GradSink& sink) {
        Tensor g = gin.contiguous();
        if (sink.needs(0)) {
          Tensor t = Tensor::empty({n});
          for (int64_t i = 0; i < n; ++i) t.f32()[i] = g.f32()[i] * bd.f32()[i * sb];
          sink.add(0, reduce_to(t, as.numel(), as));
        }
        if (sink.needs(1)) {
          Tensor t = Tensor::empty({n});
          for (int64_t i = 0; i < n; ++i) t.f32()[i] = g.f32()[i] * ad.f32()[i * sa];
          sink.add(1, reduce_to(t, bs.numel(), bs));
        }
      },
      "mul");
}

Variable affine(const Variable& x, float a, float b) {
  Tensor xd = x.data().contiguous();
  Tensor out = Tensor::empty(xd.shape());
  for (int64_t i = 0; i < xd.numel(); ++i) out.f32()[i] = a * xd.f32()[i] + b;
  return make_result(
      std::move(out), {x},
      [a](const Tensor& gin, GradSink& sink) {
        Tensor g = gin.contiguous().clone();
        for (int64_t i = 0; i < g.numel(); ++i) g.f32()[i] *= a;
        sink.add(0, std::move(g));
      },
      "affine");
}

LearnedRange learned_range(double b, const LearnedBitsForm& f) {
  const double ln2 = 0.6931471805599453;
  LearnedRange r;
  if (f.is_signed) {
    const double half = std::ldexp(1.0, static_cast<int>(b) - 1);
    r.qmax = half - 1;
    r.qmin = -half + (f.narrow ? 1 : 0);
    r.threshold = (f.narrow && !f.pow2) ? half - 1 : half;
    r.dqmax = ln2 * half;
    r.dqmin = -ln2 * half;
    r.dthreshold = ln2 * half;
  } else {
    const double full = std::ldexp(1.0, static_cast<int>(b));
    r.qmax = full - 1 - (f.narrow ? 1 : 0);
    r.qmin = 0;
    r.threshold = r.qmax;
    r.dqmax = ln2 * full;
    r.dqmin = 0;
    r.dthreshold = ln2 * full;
  }
  return r;
}

Variable fake_quant_learned_bits(const Variable& x, const Variable& num, const Variable& bits, const Tensor& zero_point,
                                 const FakeQuantSpec& spec, const LearnedBitsForm& form) {
  LB_CHECK(!spec.elem.ternary && !spec.elem.clamp_before_round,
           "fake_quant_learned_bits: a learned bit width needs a plain integer quantizer");
  LB_CHECK(bits.numel() == 1, "fake_quant_learned_bits: the bit width is one value");
  const Shape& xs = x.shape();
  const int64_t want = spec.axis < 0 ? 1 : xs[spec.axis];
  LB_CHECK(num.numel() == want, "fake_quant_learned_bits: ", num.numel(), " scales for a tensor ", xs.str(), " that needs ",
           want);
  const double b = bits.data().f32()[0];
  const LearnedRange lr = learned_range(b, form);
  const kernels::FakeQuantGeometry g = geometry_of(xs, spec.axis);
  kernels::FakeQuantElem e = spec.elem;
  e.qmin = static_cast<float>(lr.qmin);
  e.qmax = static_cast<float>(lr.qmax);
  Tensor xin = x.data().contiguous();
  Tensor nd = num.data().contiguous();
  Tensor zp = zero_point.defined() ? zero_point.contiguous() : Tensor();
  Tensor s = Tensor::empty(nd.shape());  // float32 s = num / T (correctly rounded, as float division)
  for (int64_t c = 0; c < nd.numel(); ++c) {
    s.f32()[c] = form.lsq ? nd.f32()[c] : static_cast<float>(static_cast<double>(nd.f32()[c]) / lr.threshold);
    LB_CHECK(std::isfinite(s.f32()[c]) && s.f32()[c] > 0.f, "fake_quant: scale ", s.f32()[c], " at channel ", c,
             " is not a positive finite number");
  }
  Tensor out = Tensor::empty(xs);
  kernels::backend_for(x.device()).fake_quant().forward(g, e, xin.f32(), s.f32(), zp.defined() ? zp.f32() : nullptr,
                                                        out.f32());
  return make_result(
      std::move(out), {x, num, bits},
      [g, e, lr, form, xin, nd, s, zp](const Tensor& gout_in, GradSink& sink) {
        Tensor gout = gout_in.contiguous();
        const float* px = xin.f32();
        const float* pg = gout.f32();
        Tensor gx = sink.needs(0) ? Tensor::empty(xin.shape()) : Tensor();
        std::vector<double> dnum(g.channels, 0.0);
        double db = 0;
        const double T = lr.threshold;
        const int64_t rows = g.n / g.inner;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t c = r % g.channels;
          const float sf = s.f32()[c], z = zp.defined() ? zp.f32()[c] : 0.f;
          const double n = nd.f32()[c];
          const double sd = form.lsq ? n : n / T;         // s in double, as autograd in float64
          const double ds_dnum = form.lsq ? 1.0 : 1.0 / T;
          const double ds_db = form.lsq ? 0.0 : -n / (T * T) * lr.dthreshold;
          double acc_num = 0, acc_b = 0;
          for (int64_t i = r * g.inner; i < (r + 1) * g.inner; ++i) {
            // The rounding decision of the forward (float32); the gradient terms in double.
            const float q = kernels::round_mode(kernels::fq_scaled(px[i], sf, z, e.reciprocal), e.rounding);
            const double gi = pg[i];
            double dyds, extra = 0;
            float dx = 0.f;
            if (q < e.qmin) {
              dyds = lr.qmin - z;
              extra = sd * lr.dqmin;
            } else if (q > e.qmax) {
              dyds = lr.qmax - z;
              extra = sd * lr.dqmax;
            } else {
              dx = pg[i];
              dyds = static_cast<double>(q) - static_cast<double>(px[i]) / sd - z;
            }
            acc_num += gi * dyds;
            acc_b += gi * (dyds * ds_db + extra);
            if (gx.defined()) gx.f32()[i] = dx;
          }
          dnum[c] += acc_num * ds_dnum;
          db += acc_b;
        }
        if (gx.defined()) sink.add(0, std::move(gx));
        if (sink.needs(1)) {
          Tensor gn = Tensor::empty(nd.shape());
          for (int64_t c = 0; c < g.channels; ++c) gn.f32()[c] = static_cast<float>(dnum[c]);
          sink.add(1, std::move(gn));
        }
        if (sink.needs(2)) sink.add(2, Tensor::full({1}, static_cast<float>(db)));
      },
      "fake_quant_learned_bits");
}

Variable scale_channels(const Variable& w, const Variable& f, int axis) {
  const kernels::FakeQuantGeometry g = geometry_of(w.shape(), axis);
  LB_CHECK(f.numel() == g.channels, "scale_channels: ", f.numel(), " factors for ", g.channels, " channels of ",
           w.shape().str());
  Tensor wd = w.data().contiguous(), fd = f.data().contiguous();
  Tensor out = Tensor::empty(wd.shape());
  const int64_t rows = g.n / g.inner;
  for (int64_t r = 0; r < rows; ++r) {
    const float k = fd.f32()[r % g.channels];
    for (int64_t i = r * g.inner; i < (r + 1) * g.inner; ++i) out.f32()[i] = wd.f32()[i] * k;
  }
  return make_result(
      std::move(out), {w, f},
      [g, wd, fd](const Tensor& gin, GradSink& sink) {
        Tensor gr = gin.contiguous();
        const int64_t rows = g.n / g.inner;
        if (sink.needs(0)) {
          Tensor gw = Tensor::empty(wd.shape());
          for (int64_t r = 0; r < rows; ++r) {
            const float k = fd.f32()[r % g.channels];
            for (int64_t i = r * g.inner; i < (r + 1) * g.inner; ++i) gw.f32()[i] = gr.f32()[i] * k;
          }
          sink.add(0, std::move(gw));
        }
        if (sink.needs(1)) {
          std::vector<double> acc(g.channels, 0.0);
          for (int64_t r = 0; r < rows; ++r) {
            double a = 0;
            for (int64_t i = r * g.inner; i < (r + 1) * g.inner; ++i) a += static_cast<double>(gr.f32()[i]) * wd.f32()[i];
            acc[r % g.channels] += a;
          }
          Tensor gf = Tensor::empty(fd.shape());
          for (int64_t c = 0; c < g.channels; ++c) gf.f32()[c] = static_cast<float>(acc[c]);
          sink.add(1, std::move(gf));
        }
      },
      "scale_channels");
}

Variable add_channels(const Variable& x, const Variable& b, int axis) {
  const kernels::FakeQuantGeometry g = geometry_of(x.shape(), axis);
  LB_CHECK(b.numel() == g.channels, "add_channels: ", b.numel(), " values for ", g.channels, " channels of ",
           x.shape().str());
  Tensor xd = x.data().contiguous(), bd = b.data().contiguous();
  Tensor out = Tensor::empty(xd.shape());
  const int64_t rows = g.n / g.inner;
  for (int64_t r = 0; r < rows; ++r) {
    const float k = bd.f32()[r % g.channels];
    for (int64_t i = r * g.inner; i < (r + 1) * g.inner; ++i) out.f32()[i] = xd.f32()[i] + k;
  }
  const Shape bs = bd.shape();
  return make_result(
      std::move(out), {x, b},
      [g, bs](const Tensor& gin, GradSink& sink) {
        Tensor gr = gin.contiguous();
        if (sink.needs(1)) {
          std::vector<double> acc(g.channels, 0.0);
          const int64_t rows = g.n / g.inner;
          for (int64_t r = 0; r < rows; ++r) {
            double a = 0;
            for (int64_t i = r * g.inner; i < (r + 1) * g.inner; ++i) a += gr.f32()[i];
            acc[r % g.channels] += a;
          }
          Tensor gb = Tensor::empty(bs);
          for (int64_t c = 0; c < g.channels; ++c) gb.f32()[c] = static_cast<float>(acc[c]);
          sink.add(1, std::move(gb));
        }
        if (sink.needs(0)) sink.add(0, gr.clone());
      },
      "add_channels");
}

Variable requantize_integer(const Variable& x, const Tensor& scale, int axis, int shift, bool floor_mode, double lo,
                            double hi) {
  const kernels::FakeQuantGeometry g = geometry_of(x.shape(), axis);
  LB_CHECK(scale.numel() == g.channels, "requantize: ", scale.numel(), " scales for ", g.channels, " channels");
  LB_CHECK(shift >= 0 && shift < 62, "requantize: shift ", shift, " out of range");
  Tensor xd = x.data().contiguous(), sd = scale.contiguous();
  Tensor out = Tensor::empty(xd.shape());
  Tensor mask = Tensor::empty(xd.shape());
  const double div = std::ldexp(1.0, shift);
  const int64_t rows = g.n / g.inner;
  for (int64_t r = 0; r < rows; ++r) {
    const float s = sd.f32()[r % g.channels];
    for (int64_t i = r * g.inner; i < (r + 1) * g.inner; ++i) {
      const double n = std::nearbyint(static_cast<double>(xd.f32()[i]) / s);  // clean float error
      double m = n / div;
      m = floor_mode ? std::floor(m) : std::nearbyint(m);
      const bool inside = m >= lo && m <= hi;
      m = m < lo ? lo : (m > hi ? hi : m);
      out.f32()[i] = static_cast<float>(m * div * s);
      mask.f32()[i] = inside ? 1.f : 0.f;
    }
  }
  return make_result(
      std::move(out), {x},
      [mask](const Tensor& gin, GradSink& sink) {
        Tensor gr = gin.contiguous();
        Tensor gx = Tensor::empty(mask.shape());
        for (int64_t i = 0; i < gx.numel(); ++i) gx.f32()[i] = gr.f32()[i] * mask.f32()[i];
        sink.add(0, std::move(gx));
      },
      "requantize_integer");
}

}  // namespace lowbit::quant
