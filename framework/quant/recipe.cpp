#include "quant/recipe.h"

#include <cmath>
#include <set>

#include "core/error.h"
#include "nn/layers.h"
#include "quant/presets.h"
#include "quant/quant_layers.h"
#include "quant/quant_meta.h"

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

// merge() over an optional base: without one the override must name a preset.
QuantizerConfig merge_opt(const std::optional<QuantizerConfig>& base, const YAML::Node& node, const QuantRecipe& r,
                          const std::string& key) {
  if (base) return merge(*base, node, r, key);
  LB_CHECK(node.IsScalar() || node["preset"], r.src.where(node, key), ": ", key,
           ": there is no default quantizer to override here: name a preset ({preset: NAME, ...})");
  return parse_quantizer(node, r.src, key, r.user_quantizers);
}

std::optional<QuantizerConfig> optional_quantizer(const YAML::Node& q, const std::string& k, const QuantRecipe& r) {
  YAML::Node n = q[k];
  if (!n || n.IsNull() || (n.IsScalar() && (n.Scalar() == "none" || n.Scalar() == "float"))) return std::nullopt;
  return parse_quantizer(n, r.src, "quant." + k, r.user_quantizers);
}

AccumulatorConfig parse_accumulator(const YAML::Node& n, const io::YamlSource& src, const std::string& key,
                                    AccumulatorConfig a = {}) {
  LB_CHECK(n.IsMap(), src.where(n, key), ": ", key, " is a map {bits: N, mode: saturate | truncate}");
  for (auto it = n.begin(); it != n.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (k == "bits") {
      a.bits = static_cast<int>(io::yaml_int(it->second, src, key + ".bits"));
      LB_CHECK(a.bits == 0 || (a.bits >= 2 && a.bits <= 32), src.where(it->second, key + ".bits"), ": ", key,
               ".bits must be 0 (off) or 2..32, got ", a.bits);
    } else if (k == "mode") {
      const std::string m = io::yaml_string(it->second, src, key + ".mode");
      LB_CHECK(m == "saturate" || m == "truncate", src.where(it->second, key + ".mode"), ": ", key,
               ".mode must be saturate or truncate, got '", m, "'");
      a.truncate = m == "truncate";
    } else {
      LB_FAIL(src.where(it->first, key + "." + k), ": unknown key '", k, "' in ", key, " (bits, mode)");
    }
  }
  return a;
}

SharedMode parse_shared(const YAML::Node& n, const io::YamlSource& src, const std::string& key) {
  const std::string m = io::yaml_string(n, src, key);
  if (m == "shared") return SharedMode::shared;
  if (m == "require_equal") return SharedMode::require_equal;
  if (m == "float" || m == "none") return SharedMode::none;
  LB_FAIL(src.where(n, key), ": ", key, " must be shared, require_equal or float, got '", m, "'");
}

bool given(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }

// The recipe's quant.add / quant.concat mode for a float add or concat; none for other layers.
SharedMode shared_mode(const QuantRecipe& r, nn::LayerKind kind) {
  if (kind == nn::LayerKind::add) return r.add;
  if (kind == nn::LayerKind::concat) return r.concat;
  return SharedMode::none;
}

// Layers whose output is on their input's grid. A foldable batch norm counts: it is folded (or
// will be, at bn_fold_delay) into the conv before it, and then it is the identity.
bool keeps_grid(const nn::Module& m) {
  const nn::Grid g = m.traits().grid;
  return g == nn::Grid::keep || g == nn::Grid::keep_flatten || g == nn::Grid::folded_bn;
}

// The quantizer whose integer grid node `idx`'s output is on (following layers that keep the
// grid), or null with `why` naming the first layer that is not on one.
const Quantizer* grid_quantizer(const nn::Graph& g, int idx, std::string& why) {
  while (true) {
    if (idx < 0) {
      why = "the model input (no quant.input)";
      return nullptr;
    }
    const nn::GraphNode& n = g.nodes()[idx];
    if (auto* qa = dynamic_cast<QuantAct*>(n.module.get())) return &qa->act_quant();
    if (auto* qs = dynamic_cast<QuantShared*>(n.module.get())) return &qs->input_quant();
    if (!keeps_grid(*n.module)) {
      why = "'" + n.name + "' (" + n.module->type_name() + ")";
      return nullptr;
    }
    idx = n.inputs.at(0);
  }
}

// Whether node `idx`'s output carries quantization metadata (a quantizer upstream, through
// grid-keeping layers, average pools and quantized conv/linear layers).
bool has_grid(const nn::Graph& g, int idx, std::string& why) {
  if (idx < 0) {
    why = "the model input (no quant.input)";
    return false;
  }
  const nn::GraphNode& n = g.nodes()[idx];
  nn::Module* m = n.module.get();
  if (dynamic_cast<QuantAct*>(m) || dynamic_cast<QuantShared*>(m)) return true;
  if (auto* sb = dynamic_cast<QuantScaleBias*>(m)) {
    if (sb->output_quant()) return true;
  } else if (auto* qw = dynamic_cast<QuantWeightLayer*>(m)) {
    // Its output is on the s_in * s_w grid only with per-tensor weights and no float bias.
    const bool ext_bias = qw->bias_quant() && qw->bias_quant()->config().external_scale;
    if (!qw->weight_quant().config().per_channel && (ext_bias || !qw->bias().defined()))
      return has_grid(g, n.inputs.at(0), why);
    why = "'" + n.name + "' (" + m->type_name() + (qw->weight_quant().config().per_channel
                                                       ? ": per-channel output scales"
                                                       : ": its bias is not on the s_in * s_w grid") + ")";
    return false;
  } else if (keeps_grid(*m) || m->kind() == nn::LayerKind::quant_avg_pool2d ||
             m->traits().grid == nn::Grid::window_average) {
    return has_grid(g, n.inputs.at(0), why);
  } else if (m->kind() == nn::LayerKind::add || m->kind() == nn::LayerKind::concat) {
    for (int i : n.inputs)
      if (!has_grid(g, i, why)) return false;
    return true;
  }
  why = "'" + n.name + "' (" + m->type_name() + ")";
  return false;
}


}  // namespace

QuantRecipe parse_recipe(const YAML::Node& q, const io::YamlSource& src) {
  QuantRecipe r;
  r.src = src;
  if (!q || q.IsNull() || (q.IsMap() && q.size() == 0)) return r;
  LB_CHECK(q.IsMap(), src.where(q, "quant"), ": quant must be a map (weights, activations, input, ...)");
  static const std::vector<std::string> keys{"weights", "activations", "signed_activations", "input", "bias", "bits",
                                             "first_last_bits", "float", "layers", "quantizers", "bit_cost",
                                             "accumulator", "add", "concat", "shared_quantizer", "avg_pool",
                                             "bn_fold", "plan"};
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
  // Signed activations default to the activation quantizer made signed; PACT has no signed
  // form, so with PACT activations a layer with negative outputs needs signed_activations.
  if (r.activations && !r.signed_activations && !r.activations->pact) {
    r.signed_activations = r.activations;
    r.signed_activations->is_signed = true;
  }
  if (YAML::Node f = q["first_last_bits"]) {
    r.first_last_bits = static_cast<int>(io::yaml_int(f, src, "quant.first_last_bits"));
    LB_CHECK(r.first_last_bits >= 0 && r.first_last_bits <= 32, src.where(f, "quant.first_last_bits"),
             ": quant.first_last_bits must be 0 (off) or a bit width up to 32");
  }
  if (YAML::Node bc = q["bit_cost"]) {
    r.bit_cost = io::yaml_number(bc, src, "quant.bit_cost");
    LB_CHECK(r.bit_cost >= 0 && std::isfinite(r.bit_cost), src.where(bc, "quant.bit_cost"),
             ": quant.bit_cost must be a finite number >= 0, got ", r.bit_cost);
  }
  if (YAML::Node p = q["plan"]) {
    LB_CHECK(p.IsScalar() && !p.Scalar().empty(), src.where(p, "quant.plan"),
             ": quant.plan is the path of a plan file written by `lowbit plan -o plan.yaml`");
    r.plan = p.Scalar();
    r.plan_where = src.where(p, "quant.plan");
  }
  if (YAML::Node a = q["accumulator"]) r.accumulator = parse_accumulator(a, src, "quant.accumulator");
  if (YAML::Node a = q["add"]) r.add = parse_shared(a, src, "quant.add");
  if (YAML::Node a = q["concat"]) r.concat = parse_shared(a, src, "quant.concat");
  r.shared_quantizer = optional_quantizer(q, "shared_quantizer", r);
  if (!r.shared_quantizer) r.shared_quantizer = r.signed_activations;
  if (YAML::Node a = q["avg_pool"]) {
    if (a.IsScalar() && (a.Scalar() == "trunc" || a.Scalar() == "float")) {
      r.trunc_avg_pool = a.Scalar() == "trunc";
    } else {
      LB_CHECK(a.IsMap(), src.where(a, "quant.avg_pool"), ": quant.avg_pool is trunc, float or {bits: N}");
      r.trunc_avg_pool = true;
      for (auto it = a.begin(); it != a.end(); ++it) {
        const std::string k = it->first.as<std::string>();
        LB_CHECK(k == "bits", src.where(it->first, "quant.avg_pool." + k), ": unknown key '", k, "' in quant.avg_pool (bits)");
        r.avg_pool_bits = static_cast<int>(io::yaml_int(it->second, src, "quant.avg_pool.bits"));
        LB_CHECK(r.avg_pool_bits >= 0 && r.avg_pool_bits <= 32, src.where(it->second, "quant.avg_pool.bits"),
                 ": quant.avg_pool.bits must be 0 (the input's width) or 1..32");
      }
    }
  }
  if (YAML::Node b = q["bn_fold"]) {
    LB_CHECK(b.IsMap() && b["delay_epochs"], src.where(b, "quant.bn_fold"), ": quant.bn_fold is {delay_epochs: D}");
    for (auto it = b.begin(); it != b.end(); ++it) {
      const std::string k = it->first.as<std::string>();
      LB_CHECK(k == "delay_epochs", src.where(it->first, "quant.bn_fold." + k), ": unknown key '", k,
               "' in quant.bn_fold (delay_epochs)");
    }
    r.bn_fold_delay = io::yaml_int(b["delay_epochs"], src, "quant.bn_fold.delay_epochs");
    LB_CHECK(r.bn_fold_delay >= 0, src.where(b["delay_epochs"], "quant.bn_fold.delay_epochs"),
             ": quant.bn_fold.delay_epochs must be >= 0");
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
        else if (k == "accumulator") {
          parse_accumulator(jt->second, src, "quant.layers." + o.pattern + ".accumulator");  // validate now
          o.accumulator = jt->second;
        }
        else LB_FAIL(src.where(jt->first, "quant.layers." + o.pattern + "." + k), ": unknown key '", k,
                     "' in a layer override (weights, activations, bias, accumulator)");
      }
      r.layers.push_back(o);
    }
  }
  return r;
}

void apply_recipe(nn::Graph& model, const QuantRecipe& r, const Shape& input) {
  if (!r.enabled) return;
  const auto& nodes = model.nodes();
  std::vector<Shape> shapes;  // every node's output (1, C, ...), computed when first needed
  auto channels_of = [&](size_t i, const std::string& name) -> int64_t {
    LB_CHECK(input.rank() > 0, r.src.file, ": per-channel activation quantization of layer '", name,
             "' needs the model's input shape (internal: apply_recipe called without it)");
    if (shapes.empty()) {
      std::vector<int64_t> d{1};
      for (size_t k = 0; k < input.rank(); ++k) d.push_back(input[k]);
      shapes = model.node_shapes(Shape(d));
    }
    LB_CHECK(shapes.at(i).rank() >= 2, r.src.file, ": layer '", name, "' has output ", shapes.at(i).str(),
             ": no channel dimension for a per-channel activation scale");
    return shapes.at(i)[1];
  };
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
    if (nodes[i].module->traits().weights != nn::Weights::none) {
      if (first_w < 0) first_w = static_cast<int>(i);
      last_w = static_cast<int>(i);
    }
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string name = nodes[i].name;
    std::shared_ptr<nn::Module> m = nodes[i].module;
    if (is_float(name)) continue;
    const std::string t = m->type_name();
    std::vector<const LayerOverride*> overrides;  // the quant.layers entries matching this layer, in order
    for (const auto& o : r.layers)
      if (glob_match(o.pattern, name)) overrides.push_back(&o);
    const nn::LayerKind kind = m->kind();
    if ((kind == nn::LayerKind::conv2d || kind == nn::LayerKind::linear) && r.weights) {
      QuantizerConfig w = *r.weights;
      if (r.first_last_bits > 0 && (static_cast<int>(i) == first_w || static_cast<int>(i) == last_w))
        w.bits = r.first_last_bits;
      std::optional<QuantizerConfig> b = r.bias;
      for (const LayerOverride* o : overrides) {
        w = merge(w, o->weights, r, "quant.layers." + o->pattern + ".weights");
        if (given(o->bias)) b = merge_opt(b ? b : r.weights, o->bias, r, "quant.layers." + o->pattern + ".bias");
      }
      if (w.per_channel && w.channel_axis != 0) w.channel_axis = 0;
      AccumulatorConfig acc = r.accumulator;
      for (const LayerOverride* o : overrides)
        if (given(o->accumulator)) acc = parse_accumulator(o->accumulator, r.src, "quant.layers." + o->pattern + ".accumulator", acc);
      auto layer = std::make_shared<QuantWeightLayer>(m, w, b);
      layer->set_accumulator(acc);
      model.replace(static_cast<int>(i), layer);
    } else if (dynamic_cast<nn::Activation*>(m.get())) {
      const bool non_neg = m->traits().non_negative;
      std::optional<QuantizerConfig> a = non_neg ? r.activations : r.signed_activations;
      for (const LayerOverride* o : overrides)
        if (given(o->activations)) a = merge_opt(a ? a : r.activations, o->activations, r, "quant.layers." + o->pattern + ".activations");
      LB_CHECK(a || non_neg || !r.activations, r.src.file, ": layer '", name, "' (", t,
               ") has negative outputs and the PACT activation quantizer ", r.activations->name,
               " is unsigned: set signed_activations (or keep the layer in float with quant.float)");
      if (!a) continue;
      LB_CHECK(a->is_signed || non_neg || a->pact, r.src.file, ": layer '", name, "' (", t,
               ") has negative outputs but its activation quantizer ", a->name, " is unsigned: set signed_activations");
      int64_t channels = 1;
      if (a->per_channel) {
        const bool from_percentile =
            a->stat == ScaleStat::percentile && a->scale_impl != ScaleImpl::parameter && a->scale_impl != ScaleImpl::constant;
        LB_CHECK(!from_percentile, r.src.file, ": layer '", name, "': a per-channel activation scale cannot come from ",
                 "the percentile statistic (it is per tensor): add stat: max_abs (or mean_std) to ", a->name);
        a->channel_axis = 1;
        channels = channels_of(i, name);
      }
      model.replace(static_cast<int>(i), std::make_shared<QuantAct>(m, *a, channels));
    }
  }
  // Readers of every node's output.
  std::vector<int> readers(nodes.size(), 0);
  for (const auto& n : nodes)
    for (int i : n.inputs)
      if (i >= 0) ++readers[i];
  // Batch-norm folding during QAT: a batch norm that alone reads a quantized conv2d/linear.
  if (r.bn_fold_delay >= 0) {
    int folded = 0;
    for (size_t i = 0; i < nodes.size(); ++i) {
      auto* bn = dynamic_cast<nn::BatchNorm2d*>(nodes[i].module.get());
      if (!bn || nodes[i].inputs.size() != 1 || nodes[i].inputs[0] < 0) continue;
      const int src = nodes[i].inputs[0];
      auto* layer = dynamic_cast<QuantWeightLayer*>(nodes[src].module.get());
      if (!layer || readers[src] != 1) continue;
      auto fb = std::make_shared<FoldableBatchNorm>(*bn);
      model.replace(static_cast<int>(i), fb);
      layer->attach_batchnorm(fb, r.bn_fold_delay);
      ++folded;
    }
    LB_CHECK(folded > 0, r.src.file, ": quant.bn_fold: no batch norm directly follows a quantized conv2d/linear ",
             "(layers: ", list_names(), ")");
  }
  // Shared quantizers for add / concat.
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string name = nodes[i].name;
    const std::string t = nodes[i].module->type_name();
    const SharedMode mode = shared_mode(r, nodes[i].module->kind());
    if (mode != SharedMode::shared || is_float(name)) continue;
    LB_CHECK(r.shared_quantizer, r.src.file, ": quant.", t, ": shared needs a quantizer for the inputs of '", name,
             "' (set quant.shared_quantizer or quant.signed_activations)");
    try {
      model.replace(static_cast<int>(i), std::make_shared<QuantShared>(nodes[i].module, *r.shared_quantizer));
    } catch (const Error& e) {
      LB_FAIL(r.src.file, ": quant.", t, ": the inputs of ", t, " '", name, "' cannot share one quantizer: ", e.what());
    }
  }
  // Truncating average pools.
  if (r.trunc_avg_pool)
    for (size_t i = 0; i < nodes.size(); ++i) {
      auto pool = std::dynamic_pointer_cast<nn::Pool2d>(nodes[i].module);
      if (!pool || pool->pool_kind() == nn::PoolKind::max || is_float(nodes[i].name)) continue;
      model.replace(static_cast<int>(i), std::make_shared<QuantAvgPool>(pool, r.avg_pool_bits));
    }
  if (r.input) {
    LB_CHECK(model.find("input_quant") < 0, "the model already has a layer named input_quant");
    model.prepend("input_quant", std::make_shared<QuantAct>(nullptr, *r.input));
  }
  assign_quantizer_paths(model);
  connect_meta_sources(model);
  // Static checks of what needs an upstream quantizer.
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& n = nodes[i];
    const std::string t = n.module->type_name();
    if (auto* layer = dynamic_cast<QuantWeightLayer*>(n.module.get())) {
      std::string why;
      const bool ext_bias = layer->bias_quant() && layer->bias_quant()->config().external_scale;
      if ((ext_bias || layer->accumulator().bits > 0) && !has_grid(model, n.inputs[0], why))
        LB_FAIL(r.src.file, ": layer '", n.name, "' ", ext_bias ? "quantizes its bias with input scale x weight scale (" +
                layer->bias_quant()->config().name + ")" : std::string("has an accumulator width"),
                ", but its input has no quantizer upstream: ", why,
                " (quantize it: quant.input / activations, or use Int8BiasPerTensorFloatInternalScaling)");
    }
    if (dynamic_cast<QuantAvgPool*>(n.module.get())) {
      std::string why;
      LB_CHECK(has_grid(model, n.inputs[0], why), r.src.file, ": quant.avg_pool: the truncating average pool '", n.name,
               "' needs a quantized input, but ", why, " is not quantized");
    }
    const SharedMode mode = shared_mode(r, n.module->kind());
    if (mode == SharedMode::require_equal) {
      const Quantizer* first = nullptr;
      std::string first_name;
      for (int in : n.inputs) {
        std::string why;
        const Quantizer* q = grid_quantizer(model, in, why);
        const std::string in_name = in < 0 ? "the model input" : "'" + nodes[in].name + "'";
        LB_CHECK(q, r.src.file, ": quant.", t, ": require_equal: the inputs of ", t, " '", n.name,
                 "' cannot share a scale: input ", in_name, " is not quantized (", why,
                 "); use quant.", t, ": shared to quantize all inputs with one quantizer");
        if (!first) {
          first = q;
          first_name = in_name;
        }
        LB_CHECK(q == first, r.src.file, ": quant.", t, ": require_equal: the inputs of ", t, " '", n.name,
                 "' cannot share a scale: ", first_name, " comes from ", first->describe(), " but ", in_name,
                 " from ", q->describe(), "; use quant.", t, ": shared to quantize all inputs with one quantizer");
      }
    }
  }
  if (r.bit_cost > 0) {
    bool any = false;
    for (auto& [name, q] : quantizers_of(model)) any = any || q->config().learned_bits;
    LB_CHECK(any, r.src.file, ": quant.bit_cost regularizes learned bit widths, but no quantizer has learned_bits: true ",
             "(e.g. weights: {preset: Int8WeightPerChannelFloat, learned_bits: true})");
  }
}

void start_epoch(nn::Graph& model, int64_t epoch) {
  for (const auto& n : model.nodes())
    if (auto* layer = dynamic_cast<QuantWeightLayer*>(n.module.get())) layer->start_epoch(epoch);
}

}  // namespace lowbit::quant
