#include "quant/presets.h"

#include <cmath>
#include <functional>
#include <type_traits>

#include "core/error.h"
#include "quant/quantizer_options.h"

namespace lowbit::quant {

namespace {

QuantizerConfig weight_base(const char* name) {
  QuantizerConfig c;
  c.name = name;
  c.bits = 8;
  c.is_signed = true;
  c.narrow = true;
  c.scale_impl = ScaleImpl::stats;
  c.stat = ScaleStat::max_abs;
  c.ste_clamp = true;
  c.channel_axis = 0;
  c.runtime_stats = false;  // Brevitas' weight scaling (parameter_from_stats: the value is set by its call)
  return c;
}

QuantizerConfig act_base(const char* name, bool is_signed) {
  QuantizerConfig c;
  c.name = name;
  c.bits = 8;
  c.is_signed = is_signed;
  c.narrow = false;
  c.scale_impl = ScaleImpl::parameter_from_stats;
  c.stat = ScaleStat::percentile;
  c.percentile = 99.999;
  c.collect_steps = 300;
  c.momentum = 0.1;
  c.ste_clamp = false;
  c.channel_axis = 1;
  return c;
}

// Bias with external scale s_in * s_w (Brevitas IntBias): signed wide B bits, zp 0, clamp not
// straight-through; needs an input quantizer upstream of its layer.
QuantizerConfig external_bias(const char* name, int bits) {
  QuantizerConfig c;
  c.name = name;
  c.bits = bits;
  c.is_signed = true;
  c.narrow = false;
  c.external_scale = true;
  c.scale_impl = ScaleImpl::stats;
  c.ste_clamp = false;
  c.channel_axis = 0;
  return c;
}

const std::map<std::string, std::function<QuantizerConfig()>>& registry() {
  static const std::map<std::string, std::function<QuantizerConfig()>> r = {
      {"Int8WeightPerTensorFloat", [] { return weight_base("Int8WeightPerTensorFloat"); }},
      {"Int8WeightPerChannelFloat",
       [] {
         auto c = weight_base("Int8WeightPerChannelFloat");
         c.per_channel = true;
         return c;
       }},
      {"Int8WeightPerTensorFixedPoint",
       [] {
         auto c = weight_base("Int8WeightPerTensorFixedPoint");
         c.restrict_to = ScaleRestrict::pow2;
         return c;
       }},
      {"Int8ActPerTensorFloat", [] { return act_base("Int8ActPerTensorFloat", true); }},
      {"Uint8ActPerTensorFloat", [] { return act_base("Uint8ActPerTensorFloat", false); }},
      {"Int8ActPerTensorFixedPoint",
       [] {
         auto c = act_base("Int8ActPerTensorFixedPoint", true);
         c.restrict_to = ScaleRestrict::pow2;
         return c;
       }},
      {"Int8ActPerTensorFloatMinMaxInit",
       [] {  // learned from the start, initialized to max(|min_val|, |max_val|) (default hardtanh range)
         auto c = act_base("Int8ActPerTensorFloatMinMaxInit", true);
         c.scale_impl = ScaleImpl::parameter;
         c.scale_init = 1.0;
         return c;
       }},
      {"Int8BiasPerTensorFloatInternalScaling",
       [] {  // s = max|b| / 128, independent of input and weights; clamp not straight-through
         QuantizerConfig c;
         c.name = "Int8BiasPerTensorFloatInternalScaling";
         c.bits = 8;
         c.is_signed = true;
         c.narrow = false;
         c.scale_impl = ScaleImpl::stats;
         c.stat = ScaleStat::max_abs;
         return c;
       }},
      {"Int8Bias", [] { return external_bias("Int8Bias", 8); }},
      {"Int16Bias", [] { return external_bias("Int16Bias", 16); }},
      {"Int32Bias", [] { return external_bias("Int32Bias", 32); }},
      {"Uint8ActPACT",
       [] {  // Rusci et al. / PACT: y = floor(clamp(x, 0, a) * (2^Q-1)/a) * a/(2^Q-1), a learned from 6
         QuantizerConfig c;
         c.name = "Uint8ActPACT";
         c.bits = 8;
         c.is_signed = false;
         c.pact = true;
         c.rounding = kernels::Rounding::floor;  // Rusci et al.'s code; `rounding: half_even` as in the PACT paper
         c.scale_impl = ScaleImpl::parameter;
         c.scale_init = 6.0;
         c.channel_axis = 1;
         return c;
       }},
      {"PerLayerAsymPACT",
       [] {  // Rusci et al. 2019: learned asymmetric clipping bounds per layer, unsigned integers + zero point
         auto c = weight_base("PerLayerAsymPACT");
         c.is_signed = false;
         c.narrow = false;
         c.asym_clip = true;
         c.ste_clamp = true;
         return c;
       }},
      {"Int8WeightLSQ",
       [] {  // LSQ (Esser et al. 2020): learned scale s itself, gradient scaled by 1/sqrt(N * qmax)
         auto c = weight_base("Int8WeightLSQ");
         c.ste_clamp = false;
         c.scale_impl = ScaleImpl::parameter_from_stats;
         c.collect_steps = 1;
         c.stat = ScaleStat::max_abs;
         c.lsq = true;
         c.lsq_grad_scale = true;
         return c;
       }},
      {"Uint8ActLSQ",
       [] {
         auto c = act_base("Uint8ActLSQ", false);
         c.collect_steps = 1;
         c.stat = ScaleStat::max_abs;
         c.lsq = true;
         c.lsq_grad_scale = true;
         return c;
       }},
      {"Int8ActLSQ",
       [] {
         auto c = act_base("Int8ActLSQ", true);
         c.collect_steps = 1;
         c.stat = ScaleStat::max_abs;
         c.lsq = true;
         c.lsq_grad_scale = true;
         return c;
       }},
      {"SignedBinaryWeightPerTensorConst",
       [] {  // y = sign(W) * 0.1 (sign(0) = +1), STE
         QuantizerConfig c;
         c.name = "SignedBinaryWeightPerTensorConst";
         c.type = QuantType::binary;
         c.bits = 1;
         c.scale_impl = ScaleImpl::constant;
         c.scale_init = 0.1;
         return c;
       }},
      {"SignedBinaryWeightPerTensorStats",
       [] {  // scale = max|W| per tensor (learns with the weights), STE
         QuantizerConfig c;
         c.name = "SignedBinaryWeightPerTensorStats";
         c.type = QuantType::binary;
         c.bits = 1;
         c.scale_impl = ScaleImpl::stats;
         c.stat = ScaleStat::max_abs;
         return c;
       }},
      {"SignedBinaryActPerTensorConst",
       [] {  // y = sign(x) * 1, STE clipped to |x| <= 1 (BNN)
         QuantizerConfig c;
         c.name = "SignedBinaryActPerTensorConst";
         c.type = QuantType::binary;
         c.bits = 1;
         c.scale_impl = ScaleImpl::constant;
         c.scale_init = 1.0;
         c.binary_clip = 1.0f;
         c.channel_axis = 1;
         return c;
       }},
      {"SignedTernaryWeightPerTensorConst",
       [] {  // narrow 2-bit integer with constant scale 0.1: |W| <= 0.05 -> 0
         auto c = weight_base("SignedTernaryWeightPerTensorConst");
         c.type = QuantType::ternary;
         c.bits = 2;
         c.scale_impl = ScaleImpl::constant;
         c.scale_init = 0.1;
         return c;
       }},
      {"SignedTernaryWeightPerTensorStats",
       [] {  // ternary with scale max|W|: |W| > 0.5 * max|W| -> +-max|W|
         auto c = weight_base("SignedTernaryWeightPerTensorStats");
         c.type = QuantType::ternary;
         c.bits = 2;
         return c;
       }},
  };
  return r;
}

// Reads one option's YAML value into its field (the table says which field and type).
void set_option(QuantizerConfig& c, const QuantizerOption& opt, const YAML::Node& v, const io::YamlSource& src,
                const std::string& kk) {
  auto choice = [&](auto* e) {
    using E = std::remove_pointer_t<decltype(e)>;
    const std::string s = io::yaml_string(v, src, kk);
    const std::optional<E> parsed = enum_from_name<E>(s);
    if (!parsed) LB_FAIL(src.where(v, kk), ": ", kk, ": unknown value '", s, "' (choose ", enum_choices<E>(), ")");
    return *parsed;
  };
  std::visit(
      [&](auto member) {
        auto& field = c.*member;
        using T = std::remove_reference_t<decltype(field)>;
        if constexpr (std::is_same_v<T, bool>) field = io::yaml_bool(v, src, kk);
        else if constexpr (std::is_same_v<T, int>) field = static_cast<int>(io::yaml_int(v, src, kk));
        else if constexpr (std::is_floating_point_v<T>) field = static_cast<T>(io::yaml_number(v, src, kk));
        else field = choice(static_cast<T*>(nullptr));
      },
      opt.field);
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> n;
  for (auto& [k, v] : registry()) n.push_back(k);
  return n;
}

QuantizerConfig preset(const std::string& name) {
  auto it = registry().find(name);
  if (it == registry().end()) LB_FAIL("unknown quantizer preset '", name, "' (presets: ", io::closest_names(name, preset_names()), ")");
  QuantizerConfig c = it->second();
  c.preset = name;
  return c;
}

QuantizerConfig parse_quantizer(const YAML::Node& node, const io::YamlSource& src, const std::string& key,
                                const std::map<std::string, QuantizerConfig>& user_defined) {
  auto named = [&](const std::string& name, const YAML::Node& at) {
    auto u = user_defined.find(name);
    if (u != user_defined.end()) return u->second;
    if (registry().count(name)) return preset(name);
    std::vector<std::string> all = preset_names();
    for (auto& [k, v] : user_defined) all.push_back(k);
    LB_FAIL(src.where(at, key), ": ", key, ": unknown quantizer preset '", name, "' (closest: ", io::closest_names(name, all), ")");
  };
  if (node.IsScalar()) {
    QuantizerConfig c = named(node.Scalar(), node);
    validate(c, src.where(node, key) + ": " + key);
    return c;
  }
  LB_CHECK(node.IsMap(), src.where(node, key), ": ", key, ": a quantizer is a preset name or a map {preset: NAME, ...}");
  LB_CHECK(node["preset"], src.where(node, key), ": ", key, ": missing `preset:` (one of ",
           io::closest_names("", preset_names()), ")");
  QuantizerConfig c = named(io::yaml_string(node["preset"], src, key + ".preset"), node["preset"]);
  double min_val = NAN, max_val = NAN;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    const std::string kk = key + "." + k;
    const YAML::Node v = it->second;  // a copy: it->second belongs to a temporary proxy
    if (k == "preset") continue;
    if (k == "min_val" || k == "max_val") {
      (k == "min_val" ? min_val : max_val) = io::yaml_number(v, src, kk);
      continue;
    }
    const QuantizerOption* opt = nullptr;
    for (const QuantizerOption& o : quantizer_options())
      if (o.settable && o.key == k) opt = &o;
    if (!opt)
      LB_FAIL(src.where(it->first, kk), ": ", key, ": unknown quantizer option '", k, "' (options: ",
              io::closest_names(k, settable_quantizer_keys()), ")");
    set_option(c, *opt, v, src, kk);
    const std::string bad = opt->check(c);
    LB_CHECK(bad.empty(), src.where(v, kk), ": ", kk, ": ", bad, ", got ", v.Scalar());
  }
  if (!std::isnan(min_val) || !std::isnan(max_val)) {
    const double lo = std::isnan(min_val) ? -1.0 : min_val, hi = std::isnan(max_val) ? 1.0 : max_val;
    c.scale_init = std::max(std::fabs(lo), std::fabs(hi));
  }
  if (c.type == QuantType::binary) LB_CHECK(c.bits == 1, src.where(node, key), ": ", key, ": a binary quantizer has 1 bit");
  validate(c, src.where(node, key) + ": " + key);
  return c;
}

}  // namespace lowbit::quant
