#include "quant/quant_meta.h"

#include <cmath>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "quant/quant_layers.h"
#include "quant/quant_ops.h"

namespace lowbit::quant {

int accumulator_bits(int b_in, int b_w, int64_t terms) {
  // ceil(log2(max |product sum|)) with unsigned maxima, as Brevitas' max_output_bit_width.
  const double max_in = std::ldexp(1.0, b_in) - 1, max_w = std::ldexp(1.0, b_w) - 1;
  const double v = max_in * max_w * static_cast<double>(terms);
  return v <= 1 ? 1 : static_cast<int>(std::ceil(std::log2(v)));
}

namespace {

bool same_tensor(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  if (a.numel() != b.numel()) return false;
  const Tensor ac = a.contiguous(), bc = b.contiguous();
  for (int64_t i = 0; i < ac.numel(); ++i)
    if (ac.f32()[i] != bc.f32()[i]) return false;
  return true;
}

bool zero_or_none(const Tensor& t) {
  if (!t.defined()) return true;
  const Tensor c = t.contiguous();
  for (int64_t i = 0; i < c.numel(); ++i)
    if (c.f32()[i] != 0.f) return false;
  return true;
}

// Per-`axis` values of a (S_axis) tensor for a tensor of shape `s`, laid out over the features of
// flatten(s, 1): feature f uses value (f / inner) % S_axis, inner = prod(s[axis+1:]).
Tensor expand_over_features(const Tensor& v, const Shape& s, int axis) {
  int64_t features = 1, inner = 1;
  for (size_t d = 1; d < s.rank(); ++d) features *= s[d];
  for (size_t d = axis + 1; d < s.rank(); ++d) inner *= s[d];
  const int64_t extent = s[axis];
  Tensor out = Tensor::empty({features});
  const Tensor c = v.contiguous();
  for (int64_t f = 0; f < features; ++f) out.f32()[f] = c.f32()[(f / inner) % extent];
  return out;
}

QuantMeta meta_rec(nn::Graph& g, int idx, std::vector<std::optional<QuantMeta>>& memo) {
  if (idx < 0) return QuantMeta::none("the model input is not quantized (quant.input)");
  if (memo[idx]) return *memo[idx];
  const nn::GraphNode& n = g.nodes()[idx];
  nn::Module* m = n.module.get();
  auto in_meta = [&](size_t k) { return meta_rec(g, n.inputs[k], memo); };
  QuantMeta out;
  if (auto* qa = dynamic_cast<QuantAct*>(m)) {
    out = qa->act_quant().meta();
    if (!out.valid()) out = QuantMeta::none(n.name + " has not run yet");
  } else if (auto* qw = dynamic_cast<QuantWeightLayer*>(m)) {
    out = qw->output_meta(in_meta(0));
  } else if (auto* qs = dynamic_cast<QuantShared*>(m)) {
    out = qs->input_quant().meta();
    if (!out.valid()) {
      out = QuantMeta::none(n.name + " has not run yet");
    } else {
      if (!qs->last_shapes().empty()) out.shape = qs->op().infer_shape(qs->last_shapes());
      if (qs->is_add()) {  // a sum of k integers of b bits: b + ceil(log2 k) bits
        const int k = static_cast<int>(qs->last_shapes().size());
        out.bits += static_cast<int>(std::ceil(std::log2(std::max(k, 1))));
      }
      out.source = n.name;
    }
  } else if (auto* ap = dynamic_cast<QuantAvgPool*>(m)) {
    out = ap->output_meta(in_meta(0));
  } else if (auto* sb = dynamic_cast<QuantScaleBias*>(m)) {
    out = sb->output_quant() ? sb->output_quant()->meta()
                             : QuantMeta::none("the output of scale_bias " + n.name + " is not quantized");
    if (sb->output_quant() && !out.valid()) out = QuantMeta::none(n.name + " has not run yet");
  } else {
    std::vector<QuantMeta> ins;
    for (size_t k = 0; k < n.inputs.size(); ++k) ins.push_back(in_meta(k));
    out = propagate_meta(*m, ins, n.name);
  }
  memo[idx] = out;
  return out;
}

}  // namespace

QuantMeta propagate_meta(const nn::Module& m, const std::vector<QuantMeta>& in, const std::string& name) {
  const std::string t = m.type_name();
  auto keep = [&](const QuantMeta& a) {
    if (!a.valid()) return QuantMeta::none("the input of " + name + " is not quantized (" + a.why + ")");
    QuantMeta o = a;
    if (a.shape.rank() > 0) o.shape = m.infer_shape({a.shape});
    return o;
  };
  switch (m.traits().grid) {
    case nn::Grid::keep: return keep(in.at(0));
    case nn::Grid::folded_bn:
      if (static_cast<const FoldableBatchNorm&>(m).folded()) return keep(in.at(0));  // folded: the identity
      return QuantMeta::none("batch norm " + name + " is not folded: its output is not on an integer grid");
    case nn::Grid::keep_flatten: {
      QuantMeta o = keep(in.at(0));
      if (!o.valid() || o.scale.numel() == 1 || o.axis < 1) return o;
      const QuantMeta& a = in.at(0);
      if (a.shape.rank() < 2) return QuantMeta::none("flatten " + name + ": per-channel input without a known shape");
      // Per-channel (C) scales over (N, C, H, W) -> per-feature (C*H*W) scales over (N, C*H*W).
      o.scale = expand_over_features(a.scale, a.shape, a.axis);
      if (a.zero_point.defined()) o.zero_point = expand_over_features(a.zero_point, a.shape, a.axis);
      o.scale_var = Variable();
      o.axis = 1;
      return o;
    }
    case nn::Grid::window_average: {
      const QuantMeta& a = in.at(0);
      if (!a.valid()) return QuantMeta::none("the input of " + name + " is not quantized (" + a.why + ")");
      if (a.shape.rank() != 4) return QuantMeta::none(name + ": input shape unknown");
      const auto& p = dynamic_cast<const nn::Pool2d&>(m);
      const auto& o = p.options();
      const bool global = p.pool_kind() == nn::PoolKind::global_avg;
      if (!global && (o.pad_h || o.pad_w) && !o.count_include_pad)
        return QuantMeta::none(name + ": padded windows without count_include_pad have varying divisors");
      const int64_t k2 = global ? a.shape[2] * a.shape[3] : o.kernel_h * o.kernel_w;
      QuantMeta r = keep(a);
      r.scale = a.scale.clone();
      for (int64_t i = 0; i < r.scale.numel(); ++i)
        r.scale.f32()[i] = static_cast<float>(static_cast<double>(r.scale.f32()[i]) / static_cast<double>(k2));
      r.scale_var = a.scale_var.defined() ? div_scalar(a.scale_var, static_cast<float>(k2)) : Variable();
      r.bits = accumulator_bits(a.bits, 1, k2);  // ceil(log2((2^b - 1) * k*k))
      return r;
    }
    case nn::Grid::sum:
    case nn::Grid::concat: {
      const bool is_sum = m.traits().grid == nn::Grid::sum;
      for (size_t k = 0; k < in.size(); ++k)
        if (!in[k].valid())
          return QuantMeta::none("input " + std::to_string(k + 1) + " of " + t + " " + name + " is not quantized (" +
                                 in[k].why + ")");
      for (size_t k = 1; k < in.size(); ++k) {
        const bool same = same_tensor(in[k].scale, in[0].scale) && zero_or_none(in[k].zero_point) &&
                          zero_or_none(in[0].zero_point) &&
                          (is_sum || (in[k].bits == in[0].bits && in[k].is_signed == in[0].is_signed));
        if (!same)
          return QuantMeta::none("the inputs of " + t + " " + name + " are on different grids (" + in[0].source +
                                 " and " + in[k].source + "): share one quantizer (quant." + t + ": shared)");
      }
      QuantMeta o = in[0];
      std::vector<Shape> shapes;
      bool known = true;
      int bits = 0;
      bool is_signed = false;
      for (const auto& a : in) {
        shapes.push_back(a.shape);
        known = known && a.shape.rank() > 0;
        bits = std::max(bits, a.bits);
        is_signed = is_signed || a.is_signed;
      }
      if (known) o.shape = m.infer_shape(shapes);
      if (is_sum) {
        o.bits = bits + static_cast<int>(std::ceil(std::log2(static_cast<double>(in.size()))));
        o.is_signed = is_signed;
      }
      o.source = name;
      return o;
    }
    case nn::Grid::own_quantizer:  // meta_rec asks the quantized layers themselves
      return QuantMeta::none("the output of " + name + " (" + t + ") comes from its own quantizer");
    case nn::Grid::breaks: break;
  }
  if (m.traits().weights != nn::Weights::none) return QuantMeta::none(name + " is a float layer");
  if (m.traits().lowering == nn::Lowering::fold)
    return QuantMeta::none("batch norm " + name + " is not folded: its output is not on an integer grid");
  return QuantMeta::none("the output of " + name + " (" + t + ") is not on an integer grid");
}

QuantMeta node_output_meta(nn::Graph& g, int index) {
  std::vector<std::optional<QuantMeta>> memo(g.nodes().size());
  return meta_rec(g, index, memo);
}

std::vector<NodeMeta> trace_quant_meta(nn::Graph& g) {
  std::vector<std::optional<QuantMeta>> memo(g.nodes().size());
  std::vector<NodeMeta> out;
  for (size_t k = 0; k < g.nodes().size(); ++k) {
    const nn::GraphNode& n = g.nodes()[k];
    NodeMeta nm;
    nm.name = n.name;
    nm.type = n.module->type_name();
    for (int i : n.inputs) nm.inputs.push_back(meta_rec(g, i, memo));
    nm.output = meta_rec(g, static_cast<int>(k), memo);
    out.push_back(std::move(nm));
  }
  return out;
}

std::string format_meta(const QuantMeta& m) {
  if (!m.valid()) return "float (" + m.why + ")";
  std::ostringstream os;
  os << m.bits << "-bit " << (m.is_signed ? "signed" : "unsigned") << ", scale ";
  const Tensor s = m.scale.contiguous();
  if (s.numel() == 1) {
    os << s.f32()[0];
  } else {
    os << "[" << s.f32()[0];
    for (int64_t i = 1; i < std::min<int64_t>(s.numel(), 4); ++i) os << ", " << s.f32()[i];
    os << (s.numel() > 4 ? ", ..." : "") << "] (" << s.numel() << " along dim " << m.axis << ")";
  }
  if (!zero_or_none(m.zero_point)) os << ", zero point " << m.zero_point.contiguous().f32()[0];
  return os.str();
}

std::string format_quant_meta(const std::vector<NodeMeta>& nodes) {
  std::ostringstream os;
  for (const auto& n : nodes) os << n.name << " (" << n.type << "): " << format_meta(n.output) << "\n";
  return os.str();
}

void connect_meta_sources(nn::Graph& g) {
  nn::Graph* gp = &g;
  for (size_t k = 0; k < g.nodes().size(); ++k) {
    const nn::GraphNode& n = g.nodes()[k];
    const std::string name = n.name;
    // Look the node up by name at call time: indices shift when nodes are prepended.
    auto source = [gp, name]() {
      const int i = gp->find(name);
      if (i < 0) return QuantMeta::none("node " + name + " is no longer in the graph");
      return node_output_meta(*gp, gp->nodes()[i].inputs.at(0));
    };
    if (auto* qw = dynamic_cast<QuantWeightLayer*>(n.module.get())) qw->set_input_meta(source);
    if (auto* ap = dynamic_cast<QuantAvgPool*>(n.module.get())) ap->set_input_meta(source);
  }
}

}  // namespace lowbit::quant
