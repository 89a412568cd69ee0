#include "intnet/engine.h"

#include <algorithm>

#include "core/error.h"
#include "kernels/cpu/int8_gemm.h"

namespace lowbit::intnet {

namespace {

int32_t clamp32(int64_t v, int64_t lo, int64_t hi) { return static_cast<int32_t>(std::min(std::max(v, lo), hi)); }

void run_quantize(const QuantizeAttrs& a, const float* x, int32_t* y, int64_t count) {
#pragma omp parallel for schedule(static) if (count > 65536)
  for (int64_t i = 0; i < count; ++i) {
    bool inside;
    const float v = kernels::fq_act(x[i], a.elem);
    y[i] = static_cast<int32_t>(kernels::fq_quantize(v, a.scale, a.zero_point, a.elem, &inside));
  }
}

// One sample: x (C_in, H, W) -> y (C_out, OH, OW).
void conv_sample(const ConvAttrs& a, const Value& in, const Value& out, const int32_t* x, int32_t* y) {
  const int64_t cin = in.shape[0], h = in.shape[1], w = in.shape[2];
  const int64_t cout = out.shape[0], oh = out.shape[1], ow = out.shape[2];
  const int64_t cin_g = cin / a.groups, cout_g = cout / a.groups;
  const int64_t kh = a.kernel_h, kw = a.kernel_w;
  std::vector<int32_t> xs(static_cast<size_t>(h * w));
  for (int64_t oc = 0; oc < cout; ++oc) {
    int32_t* yo = y + oc * oh * ow;
    std::fill(yo, yo + oh * ow, 0);
    const int64_t g = oc / cout_g;
    for (int64_t icg = 0; icg < cin_g; ++icg) {
      const int64_t ic = g * cin_g + icg;
      const int32_t* xc = x + ic * h * w;
      for (int64_t i = 0; i < h * w; ++i) xs[static_cast<size_t>(i)] = xc[i] - a.input_zero_point;
      const int8_t* wk = a.weight.data.data() + ((oc * cin_g + icg) * kh) * kw;
      for (int64_t ky = 0; ky < kh; ++ky)
        for (int64_t kx = 0; kx < kw; ++kx) {
          const int32_t wv = wk[ky * kw + kx];
          if (wv == 0) continue;
          for (int64_t oy = 0; oy < oh; ++oy) {
            const int64_t iy = oy * a.stride_h + ky * a.dil_h - a.pad_top;
            if (iy < 0 || iy >= h) continue;
            const int32_t* xr = xs.data() + iy * w;
            int32_t* yr = yo + oy * ow;
            for (int64_t ox = 0; ox < ow; ++ox) {
              const int64_t ix = ox * a.stride_w + kx * a.dil_w - a.pad_left;
              if (ix >= 0 && ix < w) yr[ox] += wv * xr[ix];
            }
          }
        }
    }
    const int32_t mult = int32_t{1} << a.acc_shift, b = a.bias[static_cast<size_t>(oc)];
    for (int64_t i = 0; i < oh * ow; ++i) yo[i] = yo[i] * mult + b;
  }
}

void matmul_sample(const MatmulAttrs& a, const int32_t* x, int32_t* y) {
  const int64_t outs = a.weight.shape[0], ins = a.weight.shape[1];
  std::vector<int32_t> xs(static_cast<size_t>(ins));
  for (int64_t i = 0; i < ins; ++i) xs[static_cast<size_t>(i)] = x[i] - a.input_zero_point;
  for (int64_t o = 0; o < outs; ++o) {
    const int8_t* wr = a.weight.data.data() + o * ins;
    int32_t acc = 0;
    for (int64_t i = 0; i < ins; ++i) acc += static_cast<int32_t>(wr[i]) * xs[static_cast<size_t>(i)];
    y[o] = acc * (int32_t{1} << a.acc_shift) + a.bias[static_cast<size_t>(o)];
  }
}

// One channel's run of `count` elements, the rounding mode fixed at compile time.
template <RequantRounding R>
void requantize_run(const RequantizeAttrs& a, int32_t m0, int shift, const int32_t* x, int32_t* y, int64_t count) {
  const int32_t lo = a.lo, hi = a.hi;
  for (int64_t i = 0; i < count; ++i) {
    const int64_t v = static_cast<int64_t>(kernels::requantize(x[i] - a.input_zero_point, m0, shift, R)) + a.output_zero_point;
    y[i] = static_cast<int32_t>(v < lo ? lo : (v > hi ? hi : v));
  }
}

void requantize_sample(const RequantizeAttrs& a, RequantRounding r, const Value& out, const int32_t* x, int32_t* y) {
  const int64_t channels = out.shape.empty() ? 1 : out.shape[0];
  const int64_t inner = out.numel() / channels;
  for (int64_t c = 0; c < channels; ++c) {
    const size_t k = a.m0.size() == 1 ? 0 : static_cast<size_t>(c);
    const int32_t* xc = x + c * inner;
    int32_t* yc = y + c * inner;
    switch (r) {
      case RequantRounding::tflm: requantize_run<RequantRounding::tflm>(a, a.m0[k], a.shift[k], xc, yc, inner); break;
      case RequantRounding::single: requantize_run<RequantRounding::single>(a, a.m0[k], a.shift[k], xc, yc, inner); break;
      case RequantRounding::floor: requantize_run<RequantRounding::floor>(a, a.m0[k], a.shift[k], xc, yc, inner); break;
    }
  }
}

void pool_sample(const PoolAttrs& a, bool is_max, const Value& in, const Value& out, const int32_t* x, int32_t* y) {
  const int64_t c = in.shape[0], h = in.shape[1], w = in.shape[2], oh = out.shape[1], ow = out.shape[2];
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        int64_t acc = is_max ? INT64_MIN : 0;
        for (int64_t ky = 0; ky < a.kernel_h; ++ky) {
          const int64_t iy = oy * a.stride_h + ky - a.pad_h;
          if (iy < 0 || iy >= h) continue;
          for (int64_t kx = 0; kx < a.kernel_w; ++kx) {
            const int64_t ix = ox * a.stride_w + kx - a.pad_w;
            if (ix < 0 || ix >= w) continue;
            const int64_t v = x[(ch * h + iy) * w + ix];
            acc = is_max ? std::max(acc, v) : acc + (v - a.input_zero_point);
          }
        }
        const size_t o = static_cast<size_t>((ch * oh + oy) * ow + ox);
        y[o] = is_max ? static_cast<int32_t>(acc) : clamp32(acc >> a.shift, a.lo, a.hi);  // >> of int64: floor
      }
}

}  // namespace

struct Engine::Int8Kernels {
  std::unique_ptr<kernels::cpu::Int8Conv> conv;
  std::unique_ptr<kernels::cpu::Int8Matmul> matmul;
};

Engine::~Engine() = default;

bool Engine::run_int8(size_t k, const Node& node) {
  if (!use_onednn_ || !kernels::cpu::int8_exact()) return false;
  const Value& in = net_.value(node.inputs.at(0));
  const Value& out = net_.value(node.output);
  const auto* conv = std::get_if<ConvAttrs>(&node.attrs);
  const auto* mm = std::get_if<MatmulAttrs>(&node.attrs);
  const int32_t zp = conv ? conv->input_zero_point : mm->input_zero_point;
  const bool as_u8 = in.lo >= 0 && in.hi <= 255, as_s8 = in.lo >= -128 && in.hi <= 127;
  if (zp != 0 || !(as_u8 || as_s8)) return false;
  const bool src_signed = !as_u8;
  const int64_t n = n_, in_n = in.numel(), out_n = out.numel();
  std::shared_ptr<Int8Kernels>& kern = int8_[{k, n}];
  if (!kern) {
    kern = std::make_shared<Int8Kernels>();
    if (conv) {
      kernels::Conv2dGeometry g{};
      g.n = n;
      g.c_in = in.shape.at(0);
      g.h_in = in.shape.at(1);
      g.w_in = in.shape.at(2);
      g.c_out = out.shape.at(0);
      g.kh = conv->kernel_h;
      g.kw = conv->kernel_w;
      g.h_out = out.shape.at(1);
      g.w_out = out.shape.at(2);
      g.stride_h = conv->stride_h;
      g.stride_w = conv->stride_w;
      g.pad_top = conv->pad_top;
      g.pad_left = conv->pad_left;
      g.pad_bottom = conv->pad_bottom;
      g.pad_right = conv->pad_right;
      g.dil_h = conv->dil_h;
      g.dil_w = conv->dil_w;
      g.groups = conv->groups;
      kern->conv = std::make_unique<kernels::cpu::Int8Conv>(g, src_signed, conv->weight.data.data());
    } else {
      kern->matmul = std::make_unique<kernels::cpu::Int8Matmul>(n, in_n, out_n, src_signed, mm->weight.data.data());
    }
  }
  const int32_t* x = buffers_[static_cast<size_t>(node.inputs[0])].data();
  packed_.resize(static_cast<size_t>(n * in_n));
  for (int64_t i = 0; i < n * in_n; ++i) packed_[static_cast<size_t>(i)] = static_cast<uint8_t>(x[i]);  // two's complement for s8
  int32_t* y = buffers_[static_cast<size_t>(node.output)].data();
  if (kern->conv) kern->conv->run(packed_.data(), y);
  else kern->matmul->run(packed_.data(), y);
  const std::vector<int32_t>& bias = conv ? conv->bias : mm->bias;
  const int32_t mult = int32_t{1} << (conv ? conv->acc_shift : mm->acc_shift);
  const int64_t channels = out.shape.at(0), inner = out_n / channels;
#pragma omp parallel for schedule(static)
  for (int64_t s = 0; s < n; ++s)
    for (int64_t c = 0; c < channels; ++c) {
      int32_t* yc = y + s * out_n + c * inner;
      for (int64_t i = 0; i < inner; ++i) yc[i] = yc[i] * mult + bias[static_cast<size_t>(c)];
    }
  return true;
}

Engine::Engine(const Network& net) : net_(net) {
  net_.validate();
  last_use_.assign(net_.values.size(), -1);
  for (size_t k = 0; k < net_.nodes.size(); ++k)
    for (int i : net_.nodes[k].inputs) last_use_[static_cast<size_t>(i)] = static_cast<int>(k);
}

const std::vector<int32_t>& Engine::value(int id) const {
  LB_CHECK(id >= 0 && id < static_cast<int>(buffers_.size()) && alive_[static_cast<size_t>(id)],
           "integer engine: value ", id, " is not available (run with keep_all to keep every layer's integers)");
  return buffers_[static_cast<size_t>(id)];
}

void Engine::run(const float* input, int64_t n, bool keep_all) {
  LB_CHECK(n >= 0, "integer engine: negative batch");
  n_ = n;
  buffers_.resize(net_.values.size());  // kept from run to run: no allocation once warm
  alive_.assign(net_.values.size(), false);
  for (size_t k = 0; k < net_.nodes.size(); ++k) {
    const Node& node = net_.nodes[k];
    std::vector<int32_t>& out = buffers_[static_cast<size_t>(node.output)];
    out.resize(static_cast<size_t>(n * net_.value(node.output).numel()));
    if (node.op == OpKind::add) std::fill(out.begin(), out.end(), 0);  // the only op that accumulates into its output
    alive_[static_cast<size_t>(node.output)] = true;
    if (!((node.op == OpKind::conv2d || node.op == OpKind::matmul) && run_int8(k, node))) run_node(node, input);
    if (keep_all) continue;
    for (int i : node.inputs)  // no longer readable (the memory stays for the next run)
      if (last_use_[static_cast<size_t>(i)] == static_cast<int>(k) && i != net_.output) alive_[static_cast<size_t>(i)] = false;
  }
}

void Engine::run_node(const Node& node, const float* input) {
  const Value& out = net_.value(node.output);
  int32_t* y = buffers_[static_cast<size_t>(node.output)].data();
  const int64_t out_n = out.numel();
  auto in_value = [&](size_t k) -> const Value& { return net_.value(node.inputs.at(k)); };
  auto in_data = [&](size_t k) { return buffers_[static_cast<size_t>(node.inputs.at(k))].data(); };
  const int64_t n = n_;
  switch (node.op) {
    case OpKind::quantize: run_quantize(std::get<QuantizeAttrs>(node.attrs), input, y, n * out_n); return;
    case OpKind::conv2d: {
      const auto& a = std::get<ConvAttrs>(node.attrs);
      const Value& in = in_value(0);
      const int32_t* x = in_data(0);
#pragma omp parallel for schedule(static)
      for (int64_t s = 0; s < n; ++s) conv_sample(a, in, out, x + s * in.numel(), y + s * out_n);
      return;
    }
    case OpKind::matmul: {
      const auto& a = std::get<MatmulAttrs>(node.attrs);
      const int64_t in_n = in_value(0).numel();
      const int32_t* x = in_data(0);
#pragma omp parallel for schedule(static)
      for (int64_t s = 0; s < n; ++s) matmul_sample(a, x + s * in_n, y + s * out_n);
      return;
    }
    case OpKind::requantize: {
      const auto& a = std::get<RequantizeAttrs>(node.attrs);
      const int32_t* x = in_data(0);
#pragma omp parallel for schedule(static)
      for (int64_t s = 0; s < n; ++s) requantize_sample(a, net_.rounding, out, x + s * out_n, y + s * out_n);
      return;
    }
    case OpKind::max_pool:
    case OpKind::avg_pool: {
      const auto& a = std::get<PoolAttrs>(node.attrs);
      const Value& in = in_value(0);
      const int32_t* x = in_data(0);
      const bool is_max = node.op == OpKind::max_pool;
#pragma omp parallel for schedule(static)
      for (int64_t s = 0; s < n; ++s) pool_sample(a, is_max, in, out, x + s * in.numel(), y + s * out_n);
      return;
    }
    case OpKind::add: {
      for (size_t k = 0; k < node.inputs.size(); ++k) {
        const Value& in = in_value(k);
        const int32_t* x = in_data(k);
        const int64_t channels = in.shape.empty() ? 1 : in.shape[0], inner = out_n / channels;
        for (int64_t s = 0; s < n; ++s)
          for (int64_t i = 0; i < out_n; ++i) y[s * out_n + i] += x[s * out_n + i] - in.zero_point_of(i / inner);
      }
      return;
    }
    case OpKind::concat: {
      int64_t offset = 0;
      for (size_t k = 0; k < node.inputs.size(); ++k) {
        const int64_t in_n = in_value(k).numel();
        const int32_t* x = in_data(k);
        for (int64_t s = 0; s < n; ++s) std::copy(x + s * in_n, x + (s + 1) * in_n, y + s * out_n + offset);
        offset += in_n;
      }
      return;
    }
    case OpKind::reshape: {
      const int32_t* x = in_data(0);
      std::copy(x, x + n * out_n, y);
      return;
    }
    case OpKind::threshold: {
      const auto& a = std::get<ThresholdAttrs>(node.attrs);
      const int32_t* x = in_data(0);
      const int64_t channels = out.shape.empty() ? 1 : out.shape[0], inner = out_n / channels;
      for (int64_t i = 0; i < n * out_n; ++i) {
        const int64_t c = (i % out_n) / inner;
        const int64_t* t = a.thresholds.data() + c * a.per_channel;
        int32_t count = 0;
        for (int64_t k = 0; k < a.per_channel; ++k) count += a.descending[static_cast<size_t>(c)] ? x[i] <= t[k] : x[i] >= t[k];
        y[i] = a.base + a.step * count;
      }
      return;
    }
    case OpKind::lut: {
      const auto& a = std::get<LutAttrs>(node.attrs);
      const int32_t* x = in_data(0);
      for (int64_t i = 0; i < n * out_n; ++i) y[i] = a.table[static_cast<size_t>(x[i] - a.in_lo)];
      return;
    }
  }
}

}  // namespace lowbit::intnet
