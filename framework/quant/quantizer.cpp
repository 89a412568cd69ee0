#include "quant/quantizer.h"

#include <cmath>

#include "quant/quant_ops.h"

namespace lowbit::quant {

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
  LB_CHECK(c.ternary_threshold > 0 && c.ternary_threshold < 1, where, ": ternary_threshold must be in (0, 1)");
}

Quantizer::Quantizer(QuantizerConfig cfg, int64_t channels) : cfg_(std::move(cfg)) {
  validate(cfg_, cfg_.name);
  LB_CHECK(channels >= 1, cfg_.name, ": channel count must be positive");
  axis_ = cfg_.per_channel ? cfg_.channel_axis : -1;
  threshold_ = quant_threshold(cfg_);
  const int64_t c = cfg_.per_channel ? channels : 1;
  const bool learned = cfg_.scale_impl == ScaleImpl::parameter || cfg_.scale_impl == ScaleImpl::parameter_from_stats;
  if (learned) {
    float init = static_cast<float>(cfg_.scale_init);
    if (cfg_.restrict_to == ScaleRestrict::log2) init = std::log2(init);
    value_ = register_parameter("value", Tensor::full({c}, init));
  }
  if (cfg_.scale_impl == ScaleImpl::running_stats || cfg_.scale_impl == ScaleImpl::parameter_from_stats) {
    stat_buffer_ = register_buffer("stat_buffer", Tensor::zeros({c}));
    counter_ = register_buffer("collect_count", Tensor::zeros({1}, DType::s32));
  }
}

Tensor Quantizer::batch_stat(const Tensor& x) const {
  switch (cfg_.stat) {
    case ScaleStat::max_abs: {
      NoGradGuard ng;
      return abs_max(Variable(x), axis_).data();
    }
    case ScaleStat::percentile:
      LB_CHECK(axis_ < 0, cfg_.name, ": percentile statistics are per tensor");
      return abs_percentile(x, cfg_.percentile);
    case ScaleStat::mean_std: return abs_mean_k_std(x, axis_, cfg_.std_k);
    case ScaleStat::min_max: {
      Tensor mn, mx;
      min_max(x, axis_, mn, mx);
      Tensor r = Tensor::empty(mn.shape());
      for (int64_t i = 0; i < r.numel(); ++i) r.f32()[i] = std::max(std::fabs(mn.f32()[i]), std::fabs(mx.f32()[i]));
      return r;
    }
  }
  return Tensor();
}

// threshold-domain value (C) -> scale (C): restriction, then / T.
static Variable to_scale(const Variable& v, ScaleRestrict r, double threshold, bool is_log2_param) {
  Variable t = v;
  if (is_log2_param) t = exp2(v);
  if (r == ScaleRestrict::pow2) t = pow2_ceil_ste(t);
  return threshold == 1.0 ? t : div_scalar(t, static_cast<float>(threshold));
}

Variable Quantizer::scale_for(const Variable& x, Tensor& zero_point) {
  const float floor_v = 1e-10f;  // Brevitas' floor: a zero tensor gives a tiny scale, not NaN
  auto floored = [&](Tensor t) {
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = std::max(t.f32()[i], floor_v);
    return t;
  };
  const bool log2p = cfg_.restrict_to == ScaleRestrict::log2;
  switch (cfg_.scale_impl) {
    case ScaleImpl::constant:
      return to_scale(Variable(Tensor::full({1}, static_cast<float>(cfg_.scale_init))), cfg_.restrict_to, threshold_, false);
    case ScaleImpl::stats: {
      if (cfg_.zero_point) {
        Tensor mn, mx;
        min_max(x.data(), axis_, mn, mx);
        Tensor s = Tensor::empty(mn.shape());
        zero_point = Tensor::empty(mn.shape());
        const float qmin = static_cast<float>(quant_min(cfg_)), qmax = static_cast<float>(quant_max(cfg_));
        for (int64_t i = 0; i < s.numel(); ++i) {
          const float lo = std::min(mn.f32()[i], 0.f), hi = std::max(mx.f32()[i], 0.f);  // keep 0 representable
          s.f32()[i] = std::max((hi - lo) / (qmax - qmin), floor_v);
          zero_point.f32()[i] = std::min(qmax, std::max(qmin, qmin - std::nearbyint(lo / s.f32()[i])));
        }
        return Variable(s);
      }
      if (cfg_.stat == ScaleStat::max_abs) {
        // Differentiable: the gradient reaches the arg-max weight (Brevitas).
        Variable st = abs_max(x, axis_);
        for (int64_t i = 0; i < st.numel(); ++i) st.data().f32()[i] = std::max(st.data().f32()[i], floor_v);
        return to_scale(st, cfg_.restrict_to, threshold_, false);
      }
      return to_scale(Variable(floored(batch_stat(x.data()))), cfg_.restrict_to, threshold_, false);
    }
    case ScaleImpl::running_stats: {
      if (training_) {
        Tensor st = floored(batch_stat(x.data()));
        int32_t& n = counter_->data<int32_t>()[0];
        for (int64_t i = 0; i < st.numel(); ++i) {
          float& b = stat_buffer_->f32()[i];
          b = n == 0 ? st.f32()[i] : b * static_cast<float>(1 - cfg_.momentum) + static_cast<float>(cfg_.momentum) * st.f32()[i];
        }
        n = n < INT32_MAX ? n + 1 : n;
        return to_scale(Variable(st), cfg_.restrict_to, threshold_, false);
      }
      Tensor b = counter_->data<int32_t>()[0] > 0 ? stat_buffer_->clone() : floored(batch_stat(x.data()));
      return to_scale(Variable(floored(b)), cfg_.restrict_to, threshold_, false);
    }
    case ScaleImpl::parameter_from_stats: {
      int32_t& n = counter_->data<int32_t>()[0];
      if (n < cfg_.collect_steps) {
        if (!training_) {  // eval before collection finished: the buffer (or this batch when empty)
          Tensor b = n > 0 ? stat_buffer_->clone() : floored(batch_stat(x.data()));
          return to_scale(Variable(floored(b)), cfg_.restrict_to, threshold_, false);
        }
        Tensor st = floored(batch_stat(x.data()));
        for (int64_t i = 0; i < st.numel(); ++i) {
          float& b = stat_buffer_->f32()[i];
          b = n == 0 ? st.f32()[i] : b * static_cast<float>(1 - cfg_.momentum) + static_cast<float>(cfg_.momentum) * st.f32()[i];
        }
        ++n;
        if (n == cfg_.collect_steps) {  // hand over to the learned parameter
          for (int64_t i = 0; i < st.numel(); ++i) {
            const float b = stat_buffer_->f32()[i];
            value_.data().f32()[i] = cfg_.lsq ? b / static_cast<float>(threshold_) : (log2p ? std::log2(b) : b);
          }
        }
        return to_scale(Variable(st), cfg_.restrict_to, threshold_, false);
      }
      [[fallthrough]];
    }
    case ScaleImpl::parameter: {
      if (cfg_.lsq) {
        Variable p = value_;
        if (cfg_.lsq_grad_scale) {
          const double per = static_cast<double>(x.numel()) / static_cast<double>(value_.numel());
          p = grad_scale(p, static_cast<float>(1.0 / std::sqrt(per * static_cast<double>(quant_max(cfg_)))));
        }
        return p;
      }
      Variable v = log2p ? value_ : abs_sign_grad(value_);
      return to_scale(v, cfg_.restrict_to, threshold_, log2p);
    }
  }
  return Variable();
}

Variable Quantizer::forward(const Variable& x) {
  Tensor zp;
  Variable s = scale_for(x, zp);
  for (int64_t i = 0; i < s.numel(); ++i)
    LB_CHECK(std::isfinite(s.data().f32()[i]) && s.data().f32()[i] > 0.f, "quantizer ", cfg_.name, ": scale ",
             s.data().f32()[i], " (channel ", i, ") is not a positive finite number");
  Variable y;
  if (cfg_.type == QuantType::binary) {
    y = binary_quant(x, s, axis_, cfg_.binary_clip);
  } else {
    FakeQuantSpec spec;
    spec.elem.qmin = static_cast<float>(quant_min(cfg_));
    spec.elem.qmax = static_cast<float>(quant_max(cfg_));
    spec.elem.rounding = cfg_.pact ? kernels::Rounding::floor : cfg_.rounding;
    spec.elem.reciprocal = cfg_.reciprocal;
    spec.elem.clamp_before_round = cfg_.pact;
    spec.elem.ternary = cfg_.type == QuantType::ternary;
    spec.elem.threshold = cfg_.ternary_threshold;
    spec.axis = axis_;
    spec.ste_clamp = cfg_.ste_clamp;
    spec.inside_scale_grad = !cfg_.pact;
    y = fake_quant(x, s, zp, spec);
  }
  meta_.scale = s.data().clone();
  meta_.zero_point = zp;
  meta_.bits = cfg_.type == QuantType::binary ? 1 : cfg_.bits;
  meta_.is_signed = cfg_.is_signed;
  meta_.axis = axis_;
  return y;
}

Tensor Quantizer::current_scale() const { return meta_.scale; }

}  // namespace lowbit::quant
