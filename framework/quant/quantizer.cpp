#include "quant/quantizer.h"

#include <cmath>

#include "quant/qat_ops.h"
#include "quant/quant_ops.h"

namespace lowbit::quant {

namespace {
constexpr float kScaleFloor = 1e-10f;  // Brevitas' floor: a zero tensor gives a tiny scale, not NaN
Tensor floored(Tensor t) {
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = std::max(t.f32()[i], kScaleFloor);
  return t;
}
}  // namespace

int64_t quant_min(const QuantizerConfig& c) {
  if (c.type == QuantType::ternary) return -1;
  if (!c.is_signed) return 0;
  const int64_t half = int64_t{1} << (c.bits - 1);
  return c.narrow ? -(half - 1) : -half;
}

int64_t quant_max(const QuantizerConfig& c) {
  if (c.type == QuantType::ternary) return 1;
  if (!c.is_signed) return (int64_t{1} << c.bits) - 1 - (c.narrow ? 1 : 0);
  return (int64_t{1} << (c.bits - 1)) - 1;
}

double quant_threshold(const QuantizerConfig& c) {
  if (c.type == QuantType::binary || c.type == QuantType::ternary) return 1.0;
  if (!c.is_signed) return static_cast<double>(quant_max(c));
  // Brevitas: narrow signed weights use 2^(b-1) - 1, except with power-of-two scales (2^(b-1)).
  const double half = std::ldexp(1.0, c.bits - 1);
  return (c.narrow && c.restrict_to != ScaleRestrict::pow2) ? half - 1 : half;
}

void validate(const QuantizerConfig& c, const std::string& where) {
  LB_CHECK(c.bits >= 1 && c.bits <= 32, where, ": bit width ", c.bits, " is outside 1..32");
  if (c.type == QuantType::integer) {
    LB_CHECK(c.bits >= 2 || !c.is_signed, where, ": a signed integer quantizer needs at least 2 bits (use a binary ",
             "quantizer for 1 bit)");
  }
  LB_CHECK(!(c.type == QuantType::binary && c.zero_point), where, ": a binary quantizer cannot have a zero point");
  LB_CHECK(!(c.type != QuantType::integer && c.pact), where, ": PACT needs an integer quantizer");
  LB_CHECK(!c.zero_point || c.stat == ScaleStat::min_max, where, ": a zero point needs min_max statistics (stat: min_max)");
  LB_CHECK(!c.zero_point || c.scale_impl == ScaleImpl::stats || c.scale_impl == ScaleImpl::running_stats, where,
           ": a zero point is computed from statistics (scale_impl stats or running_stats)");
  LB_CHECK(!c.pact || !c.is_signed, where, ": PACT quantizes unsigned activations (set signed: false)");
  LB_CHECK(c.scale_init > 0 && std::isfinite(c.scale_init), where, ": scale_init must be positive, got ", c.scale_init);
  LB_CHECK(c.collect_steps >= 1, where, ": collect_steps must be at least 1");
  LB_CHECK(c.momentum > 0 && c.momentum <= 1, where, ": momentum must be in (0, 1]");
  LB_CHECK(c.percentile > 0 && c.percentile <= 100, where, ": percentile must be in (0, 100]");
  LB_CHECK(c.channel_axis >= 0, where, ": channel_axis must be >= 0");
  LB_CHECK(c.weight_decay < 0 || std::isfinite(c.weight_decay), where, ": weight_decay must be a finite number >= 0");
  LB_CHECK(c.ternary_threshold > 0 && c.ternary_threshold < 1, where, ": ternary_threshold must be in (0, 1)");
  if (c.learned_bits) {
    LB_CHECK(c.type == QuantType::integer, where, ": a learned bit width needs an integer quantizer (not binary or ternary)");
    LB_CHECK(!c.pact, where, ": a learned bit width does not combine with PACT");
    LB_CHECK(c.bits >= 2, where, ": a learned bit width starts at 2 bits or more (bits: ", c.bits, ")");
    LB_CHECK(!c.external_scale, where, ": a bias with an external scale has a fixed bit width (learned_bits: false)");
    LB_CHECK(!c.zero_point, where, ": a learned bit width is symmetric (no zero point)");
  }
  if (c.asym_clip) {
    LB_CHECK(c.type == QuantType::integer && !c.is_signed, where,
             ": asymmetric clipping (asym_clip) quantizes to unsigned integers with a zero point (signed: false)");
    LB_CHECK(!c.pact && !c.lsq && !c.learned_bits && !c.zero_point && !c.external_scale, where,
             ": asym_clip has its own learned bounds and zero point; it does not combine with pact, lsq, learned_bits, "
             "zero_point or external_scale");
  }
  if (c.external_scale) {
    LB_CHECK(c.type == QuantType::integer && !c.pact, where, ": an external (input x weight) scale needs an integer quantizer");
    LB_CHECK(!c.zero_point, where, ": an external (input x weight) scale has no zero point");
  }
}

Quantizer::Quantizer(QuantizerConfig cfg, int64_t channels) : cfg_(std::move(cfg)) {
  validate(cfg_, cfg_.name);
  LB_CHECK(channels >= 1, cfg_.name, ": channel count must be positive");
  if (cfg_.learned_bits) cfg_.ste_clamp = false;  // Brevitas: a learned bit width forces the real clamp
  axis_ = cfg_.per_channel ? cfg_.channel_axis : -1;
  threshold_ = quant_threshold(cfg_);
  const int64_t c = cfg_.per_channel ? channels : 1;
  const bool learned = cfg_.scale_impl == ScaleImpl::parameter || cfg_.scale_impl == ScaleImpl::parameter_from_stats;
  if (learned && !cfg_.external_scale) {
    float init = static_cast<float>(cfg_.scale_init);
    if (cfg_.restrict_to == ScaleRestrict::log2) init = std::log2(init);
    value_ = register_parameter("value", Tensor::full({c}, init));
  }
  if (!cfg_.external_scale &&
      (cfg_.scale_impl == ScaleImpl::running_stats || cfg_.scale_impl == ScaleImpl::parameter_from_stats)) {
    stat_buffer_ = register_buffer("stat_buffer", Tensor::zeros({c}));
    counter_ = register_buffer("collect_count", Tensor::zeros({1}, DType::s32));
  }
  if (cfg_.asym_clip) {
    clip_lo_ = register_parameter("clip_lo", Tensor::full({c}, -1.f));
    clip_hi_ = register_parameter("clip_hi", Tensor::full({c}, 1.f));
    clip_init_ = register_buffer("clip_init", Tensor::zeros({1}, DType::s32));
  }
  if (cfg_.learned_bits) bit_offset_ = register_parameter("bit_offset", Tensor::full({1}, static_cast<float>(cfg_.bits - 2)));
}

std::string Quantizer::describe() const {
  if (path_.empty()) return "quantizer " + cfg_.name;
  const size_t dot = path_.find('.');
  const std::string layer = dot == std::string::npos ? "" : "layer " + path_.substr(0, dot) + ", ";
  return layer + "quantizer " + path_ + " (" + cfg_.name + ")";
}

int Quantizer::current_bits() const {
  if (cfg_.type == QuantType::binary) return 1;
  if (!cfg_.learned_bits) return cfg_.bits;
  return static_cast<int>(std::nearbyint(std::fabs(bit_offset_.data().f32()[0]) + 2.0f));
}

Variable Quantizer::stat_of(const Variable& x) const {
  // Differentiable like Brevitas' statistics (torch.max / kthvalue / mean and std), so a
  // statistics-based scale also pulls the outliers it comes from.
  Variable st;
  switch (cfg_.stat) {
    case ScaleStat::max_abs:
    case ScaleStat::min_max:  // without a zero point: max(|min|, |max|) = max |x|
      st = abs_max(x, axis_);
      break;
    case ScaleStat::percentile:
      LB_CHECK(axis_ < 0, cfg_.name, ": percentile statistics are per tensor");
      st = abs_percentile(x, cfg_.percentile);
      break;
    case ScaleStat::mean_std: st = abs_mean_k_std(x, axis_, cfg_.std_k); break;
  }
  floored(st.data());  // in place; no gradient below the floor
  return st;
}

Tensor Quantizer::batch_stat(const Tensor& x) const {
  NoGradGuard ng;
  return stat_of(Variable(x)).data();
}

Quantizer::Range Quantizer::range() {
  Range r;
  if (!cfg_.learned_bits) {
    r.qmin = static_cast<float>(quant_min(cfg_));
    r.qmax = static_cast<float>(quant_max(cfg_));
    r.threshold = threshold_;
    r.bits = cfg_.type == QuantType::binary ? 1 : cfg_.bits;
    return r;
  }
  // bits = round_ste(|offset| + 2) (half to even; |.| with gradient sign(offset), sign(0) = +1).
  // The range and threshold follow it; fake_quant_learned_bits differentiates through them.
  Variable bw = round_ste(affine(abs_sign_grad(bit_offset_), 1.f, 2.f));
  const float b = bw.data().f32()[0];
  LB_CHECK(std::isfinite(b) && b <= 32.f, describe(), ": the learned bit width is ", b, " (bit_offset ",
           bit_offset_.data().f32()[0], "), outside 2..32");
  r.bits = static_cast<int>(b);
  const LearnedRange lr = learned_range(b, learned_form());
  r.qmin = static_cast<float>(lr.qmin);
  r.qmax = static_cast<float>(lr.qmax);
  r.threshold = lr.threshold;
  r.learned = true;
  bits_var_ = bw;
  return r;
}

LearnedBitsForm Quantizer::learned_form() const {
  LearnedBitsForm f;
  f.is_signed = cfg_.is_signed;
  f.narrow = cfg_.narrow;
  f.pow2 = cfg_.restrict_to == ScaleRestrict::pow2;
  f.lsq = cfg_.lsq;
  return f;
}

// threshold-domain value (C) -> scale (C): restriction, then / T.
Variable Quantizer::to_scale(const Variable& v, bool is_log2_param, const Range& r) const {
  Variable t = v;
  if (is_log2_param) t = exp2(v);
  if (cfg_.restrict_to == ScaleRestrict::pow2) t = pow2_ceil_ste(t);
  if (r.learned) return t;  // the numerator: fake_quant_learned_bits divides by T(bits)
  return r.threshold == 1.0 ? t : div_scalar(t, static_cast<float>(r.threshold));
}

Variable Quantizer::scale_for(const Variable& x, Tensor& zero_point, const Range& r) {
  const bool log2p = cfg_.restrict_to == ScaleRestrict::log2;
  auto update_buffer = [&](const Tensor& st, int32_t n) {
    for (int64_t i = 0; i < st.numel(); ++i) {
      float& b = stat_buffer_->f32()[i];
      b = n == 0 ? st.f32()[i] : b * static_cast<float>(1 - cfg_.momentum) + static_cast<float>(cfg_.momentum) * st.f32()[i];
    }
  };
  switch (cfg_.scale_impl) {
    case ScaleImpl::constant:
      return to_scale(Variable(Tensor::full({1}, static_cast<float>(cfg_.scale_init))), false, r);
    case ScaleImpl::stats: {
      if (cfg_.zero_point) {
        Tensor mn, mx;
        min_max(x.data(), axis_, mn, mx);
        Tensor s = Tensor::empty(mn.shape());
        zero_point = Tensor::empty(mn.shape());
        const float qmin = r.qmin, qmax = r.qmax;
        for (int64_t i = 0; i < s.numel(); ++i) {
          const float lo = std::min(mn.f32()[i], 0.f), hi = std::max(mx.f32()[i], 0.f);  // keep 0 representable
          s.f32()[i] = std::max((hi - lo) / (qmax - qmin), kScaleFloor);
          zero_point.f32()[i] = std::min(qmax, std::max(qmin, qmin - std::nearbyint(lo / s.f32()[i])));
        }
        return Variable(s);
      }
      return to_scale(stat_of(x), false, r);  // the gradient reaches the arg-max weight (Brevitas)
    }
    case ScaleImpl::running_stats: {
      if (collecting()) {  // this batch's statistic, with its gradient (Brevitas)
        Variable st = stat_of(x);
        int32_t& n = counter_->data<int32_t>()[0];
        update_buffer(st.data(), n);
        n = n < INT32_MAX ? n + 1 : n;
        return to_scale(st, false, r);
      }
      Tensor b = counter_->data<int32_t>()[0] > 0 ? stat_buffer_->clone() : batch_stat(x.data());
      return to_scale(Variable(floored(b)), false, r);
    }
    case ScaleImpl::parameter_from_stats: {
      int32_t& n = counter_->data<int32_t>()[0];
      if (n < handed_over_count()) {
        if (!collecting()) {  // eval before the hand-over: the buffer (or this batch when empty)
          Tensor b = n > 0 ? stat_buffer_->clone() : batch_stat(x.data());
          return to_scale(Variable(floored(b)), false, r);
        }
        if (n < cfg_.collect_steps) {
          // This batch's statistic with its gradient: Brevitas' collection phase is
          // differentiable, which keeps outlier activations (and so the scale) from growing.
          Variable st = stat_of(x);
          update_buffer(st.data(), n);
          ++n;
          if (!cfg_.runtime_stats && n == cfg_.collect_steps) set_value_from_stat(*stat_buffer_, r);
          return to_scale(st, false, r);
        }
        // Runtime statistics: the hand-over at the start of call collect_steps + 1, which already
        // uses the learned value (Brevitas' counter ends at collect_steps + 1).
        set_value_from_stat(*stat_buffer_, r);
        ++n;
      }
      [[fallthrough]];
    }
    case ScaleImpl::parameter: {
      if (cfg_.lsq) {
        Variable p = value_;
        if (cfg_.lsq_grad_scale) {
          const double per = static_cast<double>(x.numel()) / static_cast<double>(value_.numel());
          p = grad_scale(p, static_cast<float>(1.0 / std::sqrt(per * static_cast<double>(r.qmax))));
        }
        return p;
      }
      Variable v = log2p ? value_ : abs_sign_grad(value_);
      return to_scale(v, log2p, r);
    }
  }
  return Variable();
}

void Quantizer::set_value_from_stat(const Tensor& stat, const Range& r) {
  const bool log2p = cfg_.restrict_to == ScaleRestrict::log2;
  for (int64_t i = 0; i < value_.numel(); ++i) {
    const float b = stat.f32()[std::min<int64_t>(i, stat.numel() - 1)];  // a per-tensor stat fills every channel
    value_.data().f32()[i] = cfg_.lsq ? b / static_cast<float>(r.threshold) : (log2p ? std::log2(b) : b);
  }
}

bool Quantizer::scale_from_data() const {
  switch (cfg_.scale_impl) {
    case ScaleImpl::parameter:
    case ScaleImpl::constant: return false;
    case ScaleImpl::parameter_from_stats: return counter_->data<int32_t>()[0] < handed_over_count();
    default: return true;  // stats, running_stats
  }
}

void Quantizer::check_scale(const Variable& s) const {
  const Tensor sd = s.data().contiguous();
  for (int64_t i = 0; i < sd.numel(); ++i) {
    const float v = sd.f32()[i];
    if (std::isfinite(v) && v > 0.f) continue;
    std::string hint;
    if (value_.defined()) {
      const float p = value_.data().f32()[std::min<int64_t>(i, value_.numel() - 1)];
      hint = " (learned parameter " + (path_.empty() ? cfg_.name : path_) + ".value = " + std::to_string(p) + ")";
    }
    LB_FAIL(describe(), ": scale ", v, " (channel ", i, ") is not a positive finite number", hint);
  }
}

Variable Quantizer::quantize(const Variable& x, const Variable& s_in, const Tensor& zp, const Range& r, int axis,
                             Variable& scale, float in_lo, float in_hi) {
  // With a learned bit width s_in is the numerator of s = num / T(bits) (the scale for LSQ).
  scale = r.learned && !cfg_.lsq ? div_scalar(s_in, static_cast<float>(r.threshold)) : s_in;
  check_scale(scale);
  if (cfg_.type == QuantType::binary) return binary_quant(x, scale, axis, cfg_.binary_clip);
  FakeQuantSpec spec;
  spec.elem.qmin = r.qmin;
  spec.elem.qmax = r.qmax;
  spec.elem.rounding = cfg_.rounding;
  spec.elem.reciprocal = cfg_.reciprocal;
  spec.elem.clamp_before_round = cfg_.pact;
  spec.elem.ternary = cfg_.type == QuantType::ternary;
  spec.elem.threshold = cfg_.ternary_threshold;
  spec.elem.in_lo = in_lo;
  spec.elem.in_hi = in_hi;
  spec.axis = axis;
  spec.ste_clamp = cfg_.ste_clamp;
  spec.inside_scale_grad = !cfg_.pact;
  if (r.learned) return fake_quant_learned_bits(x, s_in, bits_var_, zp, spec, learned_form());
  return fake_quant(x, scale, zp, spec);
}

void Quantizer::record_meta(const Variable& s, const Tensor& zp, const Range& r, const Shape& shape, int axis) {
  meta_.scale = s.data().clone();
  meta_.scale_var = s;
  meta_.zero_point = zp;
  meta_.bits = cfg_.type == QuantType::binary ? 1 : r.bits;
  meta_.is_signed = cfg_.is_signed || cfg_.type != QuantType::integer;
  meta_.axis = axis;
  meta_.shape = shape;
  meta_.source = path_.empty() ? cfg_.name : path_;
  meta_.why.clear();
}

Variable Quantizer::forward_asym_clip(const Variable& x) {
  int32_t& done = clip_init_->data<int32_t>()[0];
  if (!done) {  // the bounds start at the tensor's range, with 0 inside it (0 stays exact)
    Tensor mn, mx;
    min_max(x.data(), axis_, mn, mx);
    LB_CHECK(mn.numel() == clip_lo_.numel(), describe(), ": ", mn.numel(), " channels but ", clip_lo_.numel(),
             " clipping bounds");
    for (int64_t i = 0; i < mn.numel(); ++i) {
      float lo = std::min(mn.f32()[i], 0.f), hi = std::max(mx.f32()[i], 0.f);
      if (!(hi > lo)) hi = lo + 1e-8f;  // an all-zero tensor
      clip_lo_.data().f32()[i] = lo;
      clip_hi_.data().f32()[i] = hi;
    }
    done = 1;
  }
  const Range r = range();
  for (int64_t i = 0; i < clip_lo_.numel(); ++i) {
    const float lo = clip_lo_.data().f32()[i], hi = clip_hi_.data().f32()[i];
    LB_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi, describe(), ": the learned clipping bounds crossed or ",
             "are not finite (channel ", i, ": clip_lo ", lo, ", clip_hi ", hi, "); lower the learning rate");
  }
  Variable xc = clip_learned(x, clip_lo_, clip_hi_, axis_);
  const Tensor lo = clip_lo_.data().contiguous(), hi = clip_hi_.data().contiguous();
  Tensor s = Tensor::empty(lo.shape()), zp = Tensor::empty(lo.shape());
  for (int64_t i = 0; i < s.numel(); ++i) {
    s.f32()[i] = (hi.f32()[i] - lo.f32()[i]) / r.qmax;
    zp.f32()[i] = std::nearbyint(-lo.f32()[i] / s.f32()[i]);
  }
  // s is a value without gradient (Rusci et al.): the bounds' gradients come from clip_learned.
  Variable scale;
  Variable y = quantize(xc, Variable(s), zp, r, axis_, scale);
  record_meta(scale, zp, r, x.shape(), axis_);
  return y;
}

bool Quantizer::fuses_activation() const {
  return cfg_.type == QuantType::integer && !cfg_.learned_bits && !cfg_.pact && !cfg_.asym_clip &&
         !cfg_.external_scale && !calibrating_ && !scale_from_data();
}

Variable Quantizer::forward_after_activation(const Variable& x, float lo, float hi) {
  LB_CHECK(fuses_activation(), describe(), ": internal: fused activation while the scale needs the activation's output");
  Range r = range();
  Tensor zp;
  Variable scale;
  Variable y = quantize(x, scale_for(x, zp, r), zp, r, axis_, scale, lo, hi);
  record_meta(scale, zp, r, x.shape(), axis_);
  return y;
}

Variable Quantizer::forward(const Variable& x) {
  if (cfg_.asym_clip) return forward_asym_clip(x);
  LB_CHECK(!cfg_.external_scale, describe(),
           ": this quantizer takes its scale from the layer's input and weight scales (a bias quantizer); it cannot "
           "quantize a tensor on its own");
  Range r = range();
  Tensor zp;
  Variable scale;
  Variable y = quantize(x, scale_for(x, zp, r), zp, r, axis_, scale);
  record_meta(scale, zp, r, x.shape(), axis_);
  return y;
}

Variable Quantizer::forward_with_scale(const Variable& x, const Variable& scale) {
  Range r = range();
  const int axis = scale.numel() == 1 ? -1 : cfg_.channel_axis;
  Variable used;
  Variable y = quantize(x, scale, Tensor(), r, axis, used);
  record_meta(used, Tensor(), r, x.shape(), axis);
  return y;
}

std::vector<Variable> Quantizer::forward_shared(const std::vector<Variable>& xs) {
  LB_CHECK(!xs.empty(), describe(), ": shared quantization of no tensors");
  LB_CHECK(!cfg_.asym_clip, describe(), ": asymmetric clipping (asym_clip) is a weight quantizer; it cannot be shared by ",
           "the inputs of an add or a concat");
  LB_CHECK(axis_ < 0, describe(), ": a quantizer shared by the inputs of an add or a concat needs a per-tensor scale ",
           "(per_channel: false)");
  Range r = range();
  Variable all;
  if (scale_from_data() && xs.size() > 1) {  // statistics over every input together
    int64_t n = 0;
    for (const auto& x : xs) n += x.numel();
    Tensor cat = Tensor::empty({n});
    int64_t off = 0;
    for (const auto& x : xs) {
      const Tensor c = x.data().contiguous();
      std::copy(c.f32(), c.f32() + c.numel(), cat.f32() + off);
      off += c.numel();
    }
    all = Variable(cat);
  } else {
    all = xs[0];
  }
  Tensor zp;
  Variable s = scale_for(all, zp, r), scale;
  std::vector<Variable> ys;
  for (const auto& x : xs) ys.push_back(quantize(x, s, zp, r, -1, scale));
  record_meta(scale, zp, r, xs[0].shape(), -1);
  return ys;
}

void Quantizer::finish_calibration() {
  calibrating_ = false;
  if (cfg_.scale_impl != ScaleImpl::parameter_from_stats || !counter_) return;
  int32_t& n = counter_->data<int32_t>()[0];
  if (n == 0 || n >= handed_over_count()) return;
  set_value_from_stat(*stat_buffer_, range());
  n = handed_over_count();
}

void Quantizer::reset_from(const Tensor& x) {
  if (clip_init_) {  // asymmetric clipping: the next forward takes the bounds from its tensor
    clip_init_->data<int32_t>()[0] = 0;
    return;
  }
  if (cfg_.external_scale || cfg_.scale_impl == ScaleImpl::stats || cfg_.scale_impl == ScaleImpl::constant) return;
  Tensor st = batch_stat(x);
  if (stat_buffer_) {
    stat_buffer_->copy_from(st);
    int32_t& n = counter_->data<int32_t>()[0];
    n = cfg_.scale_impl == ScaleImpl::parameter_from_stats ? handed_over_count() : std::max(n, 1);
  }
  if (value_.defined()) set_value_from_stat(st, range());
}

Tensor Quantizer::current_scale() const { return meta_.scale; }

void assign_quantizer_paths(nn::Module& root) {
  for (auto& [name, m] : root.named_modules())
    if (auto* q = dynamic_cast<Quantizer*>(m)) q->set_path(name);
}

std::vector<std::pair<std::string, Quantizer*>> quantizers_of(nn::Module& root) {
  std::vector<std::pair<std::string, Quantizer*>> out;
  for (auto& [name, m] : root.named_modules())
    if (auto* q = dynamic_cast<Quantizer*>(m)) out.emplace_back(name, q);
  return out;
}

}  // namespace lowbit::quant
