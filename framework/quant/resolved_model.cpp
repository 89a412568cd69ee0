#include "quant/resolved_model.h"

#include <cstdio>
#include <map>
#include <type_traits>

#include "core/error.h"
#include "quant/qat.h"
#include "quant/quant_layers.h"
#include "quant/quant_meta.h"
#include "quant/quantizer_options.h"

namespace lowbit::quant {

namespace {

// Numbers as written by hand ("99.999", "0.1"), not with 17 significant digits.
YAML::Node num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return YAML::Node(std::string(buf));
}

YAML::Node shape_yaml(const Shape& s, bool skip_batch) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (size_t d = skip_batch ? 1 : 0; d < s.rank(); ++d) n.push_back(s[d]);
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

YAML::Node meta_yaml(const QuantMeta& m) {
  YAML::Node n;
  if (!m.valid()) {
    n["quantized"] = false;
    n["why"] = m.why;
    return n;
  }
  n["bits"] = m.bits;
  n["signed"] = m.is_signed;
  n["scale"] = m.scale.numel() == 1 ? std::string("per tensor") : "per channel (" + std::to_string(m.scale.numel()) + ")";
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

}  // namespace

YAML::Node quantizer_yaml(const QuantizerConfig& c) {
  YAML::Node n;
  n["preset"] = c.preset.empty() ? c.name : c.preset;
  if (c.name != c.preset && !c.preset.empty()) n["name"] = c.name;
  for (const QuantizerOption& o : quantizer_options()) {
    if (!o.shown(c)) continue;
    std::visit(
        [&](auto member) {
          const auto& field = c.*member;
          using T = std::remove_cv_t<std::remove_reference_t<decltype(field)>>;
          if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, int>) n[std::string(o.key)] = field;
          else if constexpr (std::is_floating_point_v<T>) n[std::string(o.key)] = num(field);
          else n[std::string(o.key)] = std::string(enum_name(field));
        },
        o.field);
  }
  // Integer range and threshold T (scale = statistic / T) at the configured width.
  if (c.type == QuantType::integer && !c.learned_bits) {
    YAML::Node r(YAML::NodeType::Sequence);
    r.push_back(quant_min(c));
    r.push_back(quant_max(c));
    r.SetStyle(YAML::EmitterStyle::Flow);
    n["int_range"] = r;
    if (!c.external_scale && !c.asym_clip) n["threshold"] = num(quant_threshold(c));
  }
  return n;
}

std::string resolved_model_yaml(config::BuiltModel& m, const std::string& model_file, const std::string& header) {
  nn::Graph& g = *m.graph;
  // The model file's layer entries by name, echoed as the float layer each node came from.
  std::map<std::string, YAML::Node> entries;
  YAML::Node doc = io::load_yaml_file(model_file);
  if (doc["layers"] && doc["layers"].IsSequence()) {
    int i = 0;
    for (auto e : doc["layers"]) {
      YAML::Node c = YAML::Clone(e);
      const std::string name = c["name"] ? c["name"].as<std::string>() : std::to_string(i);
      c.remove("name");
      c.SetStyle(YAML::EmitterStyle::Flow);
      entries[name] = c;
      ++i;
    }
  }
  // One forward of zeros in eval mode: every quantizer reports its bits and the metadata of each
  // output (scales from zeros mean nothing and are not shown).
  std::vector<NodeMeta> metas;
  {
    NoGradGuard ng;
    const bool was_training = g.training();
    g.eval();
    std::vector<int64_t> dims{1};
    for (size_t d = 0; d < m.input.rank(); ++d) dims.push_back(m.input[d]);
    g.forward(Variable(Tensor::zeros(Shape(dims))));
    metas = trace_quant_meta(g);
    g.train(was_training);
  }
  std::vector<int64_t> in_dims{1};
  for (size_t d = 0; d < m.input.rank(); ++d) in_dims.push_back(m.input[d]);
  const std::vector<Shape> shapes = g.node_shapes(Shape(in_dims));
  YAML::Node out;
  out["name"] = m.name;
  out["model_file"] = model_file;
  out["input"] = shape_yaml(Shape(in_dims), true);
  const WeightBits wb = weight_bits(g);
  out["weight_bits"] = wb.total_bits;
  out["weights"] = wb.weights;
  YAML::Node layers(YAML::NodeType::Sequence);
  const auto& nodes = g.nodes();
  for (size_t k = 0; k < nodes.size(); ++k) {
    const nn::GraphNode& n = nodes[k];
    nn::Module* mod = n.module.get();
    YAML::Node l;
    l["name"] = n.name;
    l["type"] = mod->type_name();
    if (entries.count(n.name)) l["float"] = entries[n.name];
    if (!(n.inputs.size() == 1 && n.inputs[0] == static_cast<int>(k) - 1)) {
      YAML::Node from(YAML::NodeType::Sequence);
      for (int i : n.inputs) from.push_back(i < 0 ? std::string("input") : nodes[i].name);
      from.SetStyle(YAML::EmitterStyle::Flow);
      l["from"] = from;
    }
    l["output_shape"] = shape_yaml(shapes[k], true);
    bool quantized = false;
    if (auto* qw = dynamic_cast<QuantWeightLayer*>(mod)) {
      quantized = true;
      l["weights"] = qw->weight().numel();
      l["weight_quant"] = quantizer_yaml(qw->weight_quant().config());
      if (qw->bias().defined() || qw->batchnorm())
        l["bias_quant"] = qw->bias_quant() ? quantizer_yaml(qw->bias_quant()->config()) : YAML::Node("float");
      if (qw->accumulator().bits > 0) {
        YAML::Node a;
        a["bits"] = qw->accumulator().bits;
        a["mode"] = qw->accumulator().truncate ? "truncate" : "saturate";
        a.SetStyle(YAML::EmitterStyle::Flow);
        l["accumulator"] = a;
      }
      if (qw->batchnorm()) {
        YAML::Node b;
        for (const auto& o : nodes)
          if (o.module.get() == qw->batchnorm()) b["batch_norm"] = o.name;
        b["delay_epochs"] = qw->fold_delay();
        b.SetStyle(YAML::EmitterStyle::Flow);
        l["bn_fold"] = b;
      }
    } else if (auto* qa = dynamic_cast<QuantAct*>(mod)) {
      quantized = true;
      l["act_quant"] = quantizer_yaml(qa->act_quant().config());
    } else if (auto* qs = dynamic_cast<QuantShared*>(mod)) {
      quantized = true;
      l["shared_input_quant"] = quantizer_yaml(qs->input_quant().config());
    } else if (auto* sb = dynamic_cast<QuantScaleBias*>(mod)) {
      quantized = true;
      if (sb->weight_quant()) l["weight_quant"] = quantizer_yaml(sb->weight_quant()->config());
      if (sb->output_quant()) l["act_quant"] = quantizer_yaml(sb->output_quant()->config());
    } else if (dynamic_cast<QuantAvgPool*>(mod)) {
      quantized = true;
    } else if (mod->kind() == nn::LayerKind::foldable_batch_norm) {
      l["note"] = "folded into the layer before it from its delay on";
    } else if (mod->traits().weights != nn::Weights::none) {
      l["note"] = "float (left unquantized)";
    }
    (void)quantized;
    l["output"] = meta_yaml(metas[k].output);
    layers.push_back(l);
  }
  out["layers"] = layers;
  YAML::Emitter e;
  e.SetDoublePrecision(9);
  e.SetFloatPrecision(9);
  e << out;
  LB_CHECK(e.good(), "could not write the resolved model: ", e.GetLastError());
  std::string text;
  std::string h = header;
  size_t pos = 0;
  while (pos < h.size()) {
    const size_t nl = h.find('\n', pos);
    text += "# " + h.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos) + "\n";
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return text + e.c_str() + "\n";
}

}  // namespace lowbit::quant
