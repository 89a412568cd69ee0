#include "quant/recipe.h"

#include <set>

#include "core/error.h"
#include "nn/layers.h"
#include "quant/presets.h"
#include "quant/quant_layers.h"

namespace lowbit::quant {

bool glob_match(const std::string& p, const std::string& s) {
  size_t pi = 0, si = 0, star = std::string::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) { ++pi; ++si; }
    else if (pi < p.size() && p[pi] == '*') { star = pi++; mark = si; }
    else if (star != std::string::npos) { pi = star + 1; si = ++mark; }
    else return false;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

namespace {

// Partial map over a base config: {bits: 8} keeps everything else; {preset: X, ...} starts anew.
QuantizerConfig merge(const QuantizerConfig& base, const YAML::Node& node, const QuantRecipe& r, const std::string& key) {
  if (!node || node.IsNull()) return base;
  if (node.IsScalar() || node["preset"]) return parse_quantizer(node, r.src, key, r.user_quantizers);
  YAML::Node full = YAML::Clone(node);
  full["preset"] = "__base__";
  std::map<std::string, QuantizerConfig> with_base = r.user_quantizers;
  with_base["__base__"] = base;
  QuantizerConfig c = parse_quantizer(full, r.src, key, with_base);
  c.name = base.name;
  return c;
}

std::optional<QuantizerConfig> optional_quantizer(const YAML::Node& q, const std::string& k, const QuantRecipe& r) {
  YAML::Node n = q[k];
  if (!n || n.IsNull() || (n.IsScalar() && (n.Scalar() == "none" || n.Scalar() == "float"))) return std::nullopt;
  return parse_quantizer(n, r.src, "quant." + k, r.user_quantizers);
}

bool non_negative_activation(nn::ActivationKind k) {
  return k == nn::ActivationKind::relu || k == nn::ActivationKind::relu6 || k == nn::ActivationKind::sigmoid;
}

}  // namespace

QuantRecipe parse_recipe(const YAML::Node& q, const io::YamlSource& src) {
  QuantRecipe r;
  r.src = src;
  if (!q || q.IsNull() || (q.IsMap() && q.size() == 0)) return r;
  LB_CHECK(q.IsMap(), src.where(q, "quant"), ": quant must be a map (weights, activations, input, ...)");
  static const std::vector<std::string> keys{"weights", "activations", "signed_activations", "input", "bias", "bits",
                                             "first_last_bits", "float", "layers", "quantizers"};
  for (auto it = q.begin(); it != q.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      LB_FAIL(src.where(it->first, "quant." + k), ": unknown key 'quant.", k, "' (keys: ", io::closest_names(k, keys), ")");
  }
  r.enabled = true;
  if (YAML::Node uq = q["quantizers"]) {
    LB_CHECK(uq.IsMap(), src.where(uq, "quant.quantizers"), ": quant.quantizers maps names to quantizers");
    for (auto it = uq.begin(); it != uq.end(); ++it) {
      const std::string name = it->first.as<std::string>();
      QuantizerConfig c = parse_quantizer(it->second, src, "quant.quantizers." + name, r.user_quantizers);
      c.name = name;
      r.user_quantizers[name] = c;
    }
  }
  r.weights = optional_quantizer(q, "weights", r);
  r.activations = optional_quantizer(q, "activations", r);
  r.signed_activations = optional_quantizer(q, "signed_activations", r);
  r.input = optional_quantizer(q, "input", r);
  r.bias = optional_quantizer(q, "bias", r);
  if (YAML::Node b = q["bits"]) {
    const int bits = static_cast<int>(io::yaml_int(b, src, "quant.bits"));
    for (auto* c : {&r.weights, &r.activations, &r.signed_activations})
      if (*c) c->value().bits = bits;
    for (auto* c : {&r.weights, &r.activations, &r.signed_activations})
      if (*c) validate(**c, src.where(b, "quant.bits") + ": quant.bits");
  }
  if (r.activations && !r.signed_activations) {
    r.signed_activations = r.activations;
    r.signed_activations->is_signed = true;
  }
  if (YAML::Node f = q["first_last_bits"]) {
    r.first_last_bits = static_cast<int>(io::yaml_int(f, src, "quant.first_last_bits"));
    LB_CHECK(r.first_last_bits >= 0 && r.first_last_bits <= 32, src.where(f, "quant.first_last_bits"),
             ": quant.first_last_bits must be 0 (off) or a bit width up to 32");
  }
  if (YAML::Node f = q["float"]) {
    LB_CHECK(f.IsSequence(), src.where(f, "quant.float"), ": quant.float is a list of layer names or globs");
    for (auto x : f) r.float_layers.push_back(io::yaml_string(x, src, "quant.float"));
  }
  if (YAML::Node l = q["layers"]) {
    LB_CHECK(l.IsMap(), src.where(l, "quant.layers"), ": quant.layers maps layer names (or globs) to overrides");
    for (auto it = l.begin(); it != l.end(); ++it) {
      LayerOverride o;
      o.pattern = it->first.as<std::string>();
      o.where = src.where(it->first, "quant.layers." + o.pattern);
      LB_CHECK(it->second.IsMap(), o.where, ": quant.layers.", o.pattern, " must be a map (weights, activations, bias)");
      for (auto jt = it->second.begin(); jt != it->second.end(); ++jt) {
        const std::string k = jt->first.as<std::string>();
        if (k == "weights") o.weights = jt->second;
        else if (k == "activations") o.activations = jt->second;
        else if (k == "bias") o.bias = jt->second;
        else LB_FAIL(src.where(jt->first, "quant.layers." + o.pattern + "." + k), ": unknown key '", k,
                     "' in a layer override (weights, activations, bias)");
      }
      r.layers.push_back(o);
    }
  }
  return r;
}

void apply_recipe(nn::Graph& model, const QuantRecipe& r) {
  if (!r.enabled) return;
  const auto& nodes = model.nodes();
  std::vector<std::string> names;
  for (const auto& n : nodes) names.push_back(n.name);
  auto list_names = [&] {
    std::string s;
    for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
    return s;
  };
  for (const auto& o : r.layers) {
    bool any = false;
    for (const auto& n : names) any = any || glob_match(o.pattern, n);
    LB_CHECK(any, o.where, ": quant.layers.", o.pattern, " names no layer of the model (layers: ", list_names(), ")");
  }
  for (const auto& f : r.float_layers) {
    bool any = false;
    for (const auto& n : names) any = any || glob_match(f, n);
    LB_CHECK(any, r.src.file, ": quant.float entry '", f, "' names no layer of the model (layers: ", list_names(), ")");
  }
  auto is_float = [&](const std::string& n) {
    for (const auto& f : r.float_layers)
      if (glob_match(f, n)) return true;
    return false;
  };
  // First and last weight layers (in execution order).
  int first_w = -1, last_w = -1;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string t = nodes[i].module->type_name();
    if (t == "conv2d" || t == "linear") {
      if (first_w < 0) first_w = static_cast<int>(i);
      last_w = static_cast<int>(i);
    }
  }
  const Shape in_shape({1, 1, 1, 1});
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string name = nodes[i].name;
    std::shared_ptr<nn::Module> m = nodes[i].module;
    if (is_float(name)) continue;
    const std::string t = m->type_name();
    auto overrides_for = [&](auto field) {
      std::vector<const LayerOverride*> v;
      for (const auto& o : r.layers)
        if (glob_match(o.pattern, name)) v.push_back(&o);
      (void)field;
      return v;
    };
    if ((t == "conv2d" || t == "linear") && r.weights) {
      QuantizerConfig w = *r.weights;
      if (r.first_last_bits > 0 && (static_cast<int>(i) == first_w || static_cast<int>(i) == last_w))
        w.bits = r.first_last_bits;
      std::optional<QuantizerConfig> b = r.bias;
      for (const LayerOverride* o : overrides_for(0)) {
        w = merge(w, o->weights, r, "quant.layers." + o->pattern + ".weights");
        if (o->bias) b = merge(b ? *b : *r.weights, o->bias, r, "quant.layers." + o->pattern + ".bias");
      }
      if (w.per_channel && w.channel_axis != 0) w.channel_axis = 0;
      model.replace(static_cast<int>(i), std::make_shared<QuantWeightLayer>(m, w, b));
    } else if (auto* act = dynamic_cast<nn::Activation*>(m.get())) {
      const bool non_neg = non_negative_activation(act->options().kind);
      std::optional<QuantizerConfig> a = non_neg ? r.activations : r.signed_activations;
      for (const LayerOverride* o : overrides_for(0))
        if (o->activations) a = merge(a ? *a : *r.activations, o->activations, r, "quant.layers." + o->pattern + ".activations");
      if (!a) continue;
      LB_CHECK(a->is_signed || non_neg || a->pact, r.src.file, ": layer '", name, "' (", t,
               ") has negative outputs but its activation quantizer ", a->name, " is unsigned: set signed_activations");
      int64_t channels = 1;
      if (a->per_channel) {
        std::vector<Shape> shapes;  // per-channel activations need the channel count
        (void)in_shape;
        LB_FAIL(r.src.file, ": per-channel activation quantization is not supported yet (layer '", name, "')");
      }
      model.replace(static_cast<int>(i), std::make_shared<QuantAct>(m, *a, channels));
    }
  }
  if (r.input) {
    LB_CHECK(model.find("input_quant") < 0, "the model already has a layer named input_quant");
    model.prepend("input_quant", std::make_shared<QuantAct>(nullptr, *r.input));
  }
}

}  // namespace lowbit::quant
