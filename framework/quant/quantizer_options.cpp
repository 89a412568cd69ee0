#include "quant/quantizer_options.h"

#include <cmath>

namespace lowbit::quant {

namespace {

bool always(const QC&) { return true; }
// The scale comes from this quantizer's own statistic or parameter (not s_in * s_w, not learned bounds).
bool own_scale(const QC& c) { return !c.external_scale && !c.asym_clip; }
bool learned_or_constant(const QC& c) {
  return own_scale(c) && (c.scale_impl == ScaleImpl::parameter || c.scale_impl == ScaleImpl::constant);
}
bool runs_statistics(const QC& c) {
  return own_scale(c) && (c.scale_impl == ScaleImpl::running_stats || c.scale_impl == ScaleImpl::parameter_from_stats);
}
std::string no_check(const QC&) { return ""; }

}  // namespace

const std::vector<QuantizerOption>& quantizer_options() {
  static const std::vector<QuantizerOption> options = {
      {"type", &QC::type, false, always, no_check},
      {"bits", &QC::bits, true, always, no_check},
      {"learned_bits", &QC::learned_bits, true, always, no_check},
      {"signed", &QC::is_signed, true, always, no_check},
      {"narrow", &QC::narrow, true, always, no_check},
      {"per_channel", &QC::per_channel, true, always, no_check},
      {"external_scale", &QC::external_scale, true, [](const QC& c) { return c.external_scale; }, no_check},
      {"asym_clip", &QC::asym_clip, true, [](const QC& c) { return !c.external_scale && c.asym_clip; }, no_check},
      {"scale_impl", &QC::scale_impl, true, own_scale, no_check},
      {"stat", &QC::stat, true, own_scale, no_check},
      {"percentile", &QC::percentile, true, [](const QC& c) { return own_scale(c) && c.stat == ScaleStat::percentile; },
       no_check},
      {"std_k", &QC::std_k, true, [](const QC& c) { return own_scale(c) && c.stat == ScaleStat::mean_std; }, no_check},
      {"restrict", &QC::restrict_to, true, own_scale, no_check},
      {"scale_init", &QC::scale_init, true, learned_or_constant, no_check},
      {"collect_steps", &QC::collect_steps, true,
       [](const QC& c) { return own_scale(c) && c.scale_impl == ScaleImpl::parameter_from_stats; }, no_check},
      {"momentum", &QC::momentum, true, runs_statistics, no_check},
      {"zero_point", &QC::zero_point, true, own_scale, no_check},
      {"rounding", &QC::rounding, true, always, no_check},
      {"reciprocal", &QC::reciprocal, true, always, no_check},
      {"ste_clamp", &QC::ste_clamp, true, always, no_check},
      {"lsq", &QC::lsq, false, [](const QC& c) { return c.lsq; }, no_check},
      {"lsq_grad_scale", &QC::lsq_grad_scale, true, [](const QC& c) { return c.lsq; }, no_check},
      {"pact", &QC::pact, false, [](const QC& c) { return c.pact; }, no_check},
      {"weight_decay", &QC::weight_decay, true, [](const QC& c) { return c.weight_decay >= 0; },
       [](const QC& c) {
         return c.weight_decay >= 0 && std::isfinite(c.weight_decay) ? std::string()
                                                                      : "weight decay must be a finite number >= 0";
       }},
      {"binary_clip", &QC::binary_clip, true, [](const QC& c) { return c.type == QuantType::binary; }, no_check},
      {"ternary_threshold", &QC::ternary_threshold, true, [](const QC& c) { return c.type == QuantType::ternary; },
       no_check},
  };
  return options;
}

std::vector<std::string> settable_quantizer_keys() {
  std::vector<std::string> keys{"preset"};
  for (const QuantizerOption& o : quantizer_options())
    if (o.settable) keys.emplace_back(o.key);
  keys.insert(keys.end(), {"min_val", "max_val"});  // set scale_init from a hardtanh range (Brevitas' MinMaxInit)
  return keys;
}

}  // namespace lowbit::quant
