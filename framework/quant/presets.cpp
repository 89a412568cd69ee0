#include "quant/presets.h"

#include <functional>

#include "core/error.h"

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
    auto integer = [&] { return static_cast<int>(io::yaml_int(v, src, kk)); };
    auto number = [&] { return io::yaml_number(v, src, kk); };
    auto boolean = [&] { return io::yaml_bool(v, src, kk); };
    auto choice = [&](const std::vector<std::string>& opts) {
      std::string s = io::yaml_string(v, src, kk);
      for (size_t i = 0; i < opts.size(); ++i)
        if (opts[i] == s) return static_cast<int>(i);
      std::string all;
      for (auto& o : opts) all += (all.empty() ? "" : " | ") + o;
      LB_FAIL(src.where(v, kk), ": ", kk, ": unknown value '", s, "' (choose ", all, ")");
    };
    if (k == "preset") continue;
    else if (k == "bits") c.bits = integer();
    else if (k == "signed") c.is_signed = boolean();
    else if (k == "narrow") c.narrow = boolean();
    else if (k == "per_channel") c.per_channel = boolean();
    else if (k == "scale_impl") c.scale_impl = static_cast<ScaleImpl>(choice({"stats", "running_stats", "parameter", "parameter_from_stats", "constant"}));
    else if (k == "stat") c.stat = static_cast<ScaleStat>(choice({"max_abs", "percentile", "min_max", "mean_std"}));
    else if (k == "percentile") c.percentile = number();
    else if (k == "std_k") c.std_k = number();
    else if (k == "restrict") c.restrict_to = static_cast<ScaleRestrict>(choice({"fp", "log2", "pow2"}));
    else if (k == "rounding") c.rounding = static_cast<kernels::Rounding>(choice({"half_even", "floor", "ceil", "half_away"}));
    else if (k == "reciprocal") c.reciprocal = boolean();
    else if (k == "zero_point") c.zero_point = boolean();
    else if (k == "ste_clamp") c.ste_clamp = boolean();
    else if (k == "scale_init") c.scale_init = number();
    else if (k == "collect_steps") c.collect_steps = integer();
    else if (k == "momentum") c.momentum = number();
    else if (k == "lsq_grad_scale") c.lsq_grad_scale = boolean();
    else if (k == "binary_clip") c.binary_clip = static_cast<float>(number());
    else if (k == "ternary_threshold") c.ternary_threshold = static_cast<float>(number());
    else if (k == "learned_bits") c.learned_bits = boolean();
    else if (k == "asym_clip") c.asym_clip = boolean();
    else if (k == "weight_decay") {
      c.weight_decay = number();
      LB_CHECK(c.weight_decay >= 0 && std::isfinite(c.weight_decay), src.where(v, kk), ": ", kk, ": weight decay must be a ",
               "finite number >= 0, got ", c.weight_decay);
    }
    else if (k == "external_scale") c.external_scale = boolean();
    else if (k == "min_val") min_val = number();
    else if (k == "max_val") max_val = number();
    else {
      static const std::vector<std::string> keys{"preset", "bits", "signed", "narrow", "per_channel", "scale_impl", "stat",
                                                 "percentile", "std_k", "restrict", "rounding", "reciprocal", "zero_point",
                                                 "ste_clamp", "scale_init", "collect_steps", "momentum", "lsq_grad_scale",
                                                 "binary_clip", "ternary_threshold", "learned_bits", "external_scale", "weight_decay", "asym_clip",
                                                 "min_val", "max_val"};
      LB_FAIL(src.where(it->first, kk), ": ", key, ": unknown quantizer option '", k, "' (options: ", io::closest_names(k, keys), ")");
    }
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
