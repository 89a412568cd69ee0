#include "deploy/lower.h"

#include <cmath>
#include <cstdio>

#include "autograd/variable.h"
#include "core/error.h"
#include "deploy/lower_detail.h"
#include "intnet/ranges.h"

namespace lowbit::deploy {

namespace detail {

void Lowerer::refuse(int node, const std::string& why, const std::string& fix) const {
  const nn::GraphNode& n = g.nodes().at(static_cast<size_t>(node));
  LB_FAIL("cannot lower ", model, " to integers: layer ", n.name, " (", n.module->type_name(), "): ", why, ". Fix: ", fix);
}

const State& Lowerer::input_state(int node, size_t k) const {
  static const State graph_input = [] {
    State s;
    s.why = "it is the float model input (quant.input quantizes it)";
    return s;
  }();
  const int i = g.nodes().at(static_cast<size_t>(node)).inputs.at(k);
  return i < 0 ? graph_input : states.at(static_cast<size_t>(i));
}

std::vector<float> floats_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::vector<float>(c.f32(), c.f32() + c.numel());
}

std::string quantizer_name(const quant::Quantizer& q) {
  return "quantizer " + q.path() + " (" + q.config().name + ")";
}

std::string number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

int Lowerer::emit(intnet::OpKind op, const std::string& name, std::vector<int> inputs, intnet::Value y,
                  intnet::Attrs attrs) {
  intnet::Node n;
  n.op = op;
  n.name = name;
  n.inputs = std::move(inputs);
  n.output = out.net.add_value(std::move(y));
  n.attrs = std::move(attrs);
  return out.net.add_node(std::move(n));
}

std::vector<int64_t> Lowerer::sample_shape(int node) const {
  const auto& d = shapes.at(static_cast<size_t>(node)).dims();
  return std::vector<int64_t>(d.begin() + 1, d.end());
}

}  // namespace detail

namespace {

using detail::Lowerer;
using detail::State;
using detail::number;
using detail::quantizer_name;
using detail::floats_of;
using detail::integer_state;

// The integer grid an activation quantizer maps to (after its last forward).
struct TargetGrid {
  std::vector<float> scale;  // 1 or C
  float zero_point = 0;
  kernels::FakeQuantElem elem;  // range and rounding, as the quantizer applies them
  int bits = 8;
  bool is_signed = true;
};

TargetGrid grid_of(Lowerer& L, int node, quant::Quantizer& q) {
  const quant::QuantizerConfig& c = q.config();
  const quant::QuantMeta& m = q.meta();
  if (!m.valid()) L.refuse(node, quantizer_name(q) + " has not run (" + m.why + ")", "evaluate the model once before lowering");
  if (c.type != quant::QuantType::integer)
    L.refuse(node, quantizer_name(q) + " is a " + std::string(c.type == quant::QuantType::binary ? "binary" : "ternary") +
                       " activation quantizer, which the integer network does not lower yet",
             "use an integer activation quantizer (bits: 2 or more)");
  TargetGrid t;
  t.scale = floats_of(m.scale);
  for (size_t i = 0; i < t.scale.size(); ++i) {
    // Statistics are floored at 1e-10 (quantizer.h): a scale that small means the statistic was 0.
    if (std::isfinite(t.scale[i]) && t.scale[i] > 0 && t.scale[i] < 1e-9f)
      L.refuse(node, quantizer_name(q) + " has scale " + number(t.scale[i]) + ", at the floor of its statistic: it " +
                         "saw only zeros", "check the layer's input (a dead relu?) or calibrate with real data");
    if (!(std::isfinite(t.scale[i]) && t.scale[i] > 0))
      L.refuse(node, quantizer_name(q) + " has scale " + number(t.scale[i]) +
                         (t.scale.size() > 1 ? " in channel " + std::to_string(i) : std::string()),
               "a scale must be finite and positive: retrain or recalibrate (`lowbit calibrate`); the checkpoint may be damaged");
  }
  const std::vector<float> zp = m.zero_point.defined() ? floats_of(m.zero_point) : std::vector<float>{0.f};
  for (float z : zp)
    if (z != zp[0]) L.refuse(node, quantizer_name(q) + " has a zero point per channel", "use one zero point (per-tensor activations)");
  t.zero_point = zp[0];
  quant::QuantizerConfig sized = c;
  sized.bits = m.bits;
  t.bits = m.bits;
  t.is_signed = c.is_signed;
  t.elem.qmin = static_cast<float>(quant::quant_min(sized));
  t.elem.qmax = static_cast<float>(quant::quant_max(sized));
  t.elem.rounding = c.rounding;
  t.elem.reciprocal = c.reciprocal;
  t.elem.clamp_before_round = c.pact;
  const bool half_even = c.rounding == kernels::Rounding::half_even, floor = c.rounding == kernels::Rounding::floor;
  if (!half_even && !(floor && L.opt.rounding == intnet::RequantRounding::floor))
    L.refuse(node, quantizer_name(q) + " rounds with mode " + std::to_string(static_cast<int>(c.rounding)) +
                       ", which no requantization mode reproduces",
             "round half to even (the default), or round with floor and lower with --rounding floor");
  return t;
}

// A value on grid `t` with range [lo, hi].
intnet::Value grid_value(const std::string& name, std::vector<int64_t> shape, const TargetGrid& t, int64_t lo, int64_t hi) {
  intnet::Value y;
  y.name = name;
  y.shape = std::move(shape);
  y.bits = t.bits;
  y.is_signed = t.is_signed;
  y.lo = lo;
  y.hi = hi;
  y.scale.assign(t.scale.begin(), t.scale.end());
  y.zero_point = {static_cast<int32_t>(t.zero_point)};
  return y;
}

// The integer the quantizer gives to the real value x on channel c (its own float arithmetic).
int32_t grid_level(const TargetGrid& t, size_t c, float x) {
  bool inside;
  return static_cast<int32_t>(kernels::fq_quantize(x, t.scale[t.scale.size() == 1 ? 0 : c], t.zero_point, t.elem, &inside));
}

// Requantizes the output of trained node `src` (integer or accumulator state) onto grid `t`,
// with an activation clamp [act_lo, act_hi] in real numbers in front. Returns the new value.
int requantize_to(Lowerer& L, int node, int src, const TargetGrid& t, float act_lo, float act_hi, const std::string& name) {
  State& in = L.states.at(static_cast<size_t>(src));
  const intnet::Value x = L.out.net.value(in.value);
  const int64_t channels = x.shape.empty() ? 1 : x.shape[0];
  if (t.scale.size() != 1 && static_cast<int64_t>(t.scale.size()) != channels)
    L.refuse(node, "its quantizer has " + std::to_string(t.scale.size()) + " scales for " + std::to_string(channels) + " channels",
             "use a per-tensor activation quantizer");
  const bool floor_mode = L.opt.rounding == intnet::RequantRounding::floor;
  intnet::RequantizeAttrs a;
  bool per_channel = t.scale.size() > 1 || (in.kind == State::Kind::integer && x.scale.size() > 1);
  if (in.kind == State::Kind::affine)  // one multiplier when every channel has the same (per-tensor weights, no ICN)
    for (double ac : in.a) per_channel = per_channel || ac != in.a[0];
  const size_t count = per_channel ? static_cast<size_t>(channels) : 1;
  if (in.kind == State::Kind::affine) {
    if (in.consumed)
      L.refuse(node, "the accumulator of " + x.name + " is requantized twice (two quantizers read it)",
               "let one activation quantizer read " + x.name + " and the others read that quantizer's output");
    in.consumed = true;
    if (floor_mode && t.elem.rounding == kernels::Rounding::half_even) {  // floor(y + 1/2): the half rides in the bias
      std::vector<int32_t>& off = L.out.rounding_offset[in.value];
      for (size_t c = 0; c < in.b.size(); ++c) {
        const double half = 0.5 * t.scale[t.scale.size() == 1 ? 0 : c];
        const double before = std::nearbyint(in.b[c] / in.a[c]);
        in.b[c] += half;
        off.push_back(static_cast<int32_t>(std::nearbyint(in.b[c] / in.a[c]) - before));
      }
    }
    // Finer bias rounding, except where floor rounding's half already rides in the bias.
    detail::fold_pending_bias(L, node, in, L.out.rounding_offset.count(in.value) == 0);
    L.out.node_value[static_cast<size_t>(src)] = in.value;
    intnet::Value& acc = L.out.net.values.at(static_cast<size_t>(in.value));
    acc.scale = in.a;
  } else {
    if (x.zero_point.size() != 1)
      L.refuse(node, "its input " + x.name + " has a zero point per channel", "use one zero point (per-tensor activations)");
    a.input_zero_point = x.zero_point[0];
  }
  bool pow2 = true;
  for (size_t c = 0; c < count; ++c) {
    const double s_in = in.kind == State::Kind::affine ? in.a[in.a.size() == 1 ? 0 : c] : x.scale_of(static_cast<int64_t>(c));
    const double m = s_in / static_cast<double>(t.scale[t.scale.size() == 1 ? 0 : c]);
    const kernels::QuantizedMultiplier qm = kernels::quantize_multiplier(m);
    if (qm.shift > 30)
      L.refuse(node, "its requantization multiplier is " + number(m) + " (2^31 or more)",
               "the input scale is far larger than the output scale; check the quantizer's scale");
    a.m0.push_back(qm.m0);
    a.shift.push_back(static_cast<int8_t>(qm.shift));
    a.multiplier.push_back(m);
    pow2 = pow2 && (qm.m0 == (1 << 30) || qm.m0 == -(1 << 30));
  }
  a.pow2 = pow2;
  a.output_zero_point = static_cast<int32_t>(t.zero_point);
  int64_t lo = static_cast<int64_t>(t.elem.qmin), hi = static_cast<int64_t>(t.elem.qmax);
  for (size_t c = 0; c < t.scale.size(); ++c) {  // the activation's bounds on this grid (monotone, so exact)
    const int64_t clo = std::isfinite(act_lo) ? grid_level(t, c, act_lo) : lo;
    const int64_t chi = std::isfinite(act_hi) ? grid_level(t, c, act_hi) : hi;
    if (c > 0 && (clo != std::max(lo, clo) || chi != std::min(hi, chi)) && (std::isfinite(act_lo) || std::isfinite(act_hi)))
      L.refuse(node, "its activation bounds fall on different integers per channel",
               "use a per-tensor quantizer for a bounded activation (relu6 / hardtanh)");
    lo = std::max(lo, clo);
    hi = std::min(hi, chi);
  }
  a.lo = static_cast<int32_t>(lo);
  a.hi = static_cast<int32_t>(hi);
  return L.emit(intnet::OpKind::requantize, name, {in.value}, grid_value(name, x.shape, t, lo, hi), std::move(a));
}

// relu / relu6 / hardtanh bounds in real numbers; false for other activations.
bool clamp_bounds(nn::Module* act, float& lo, float& hi) {
  lo = -INFINITY;
  hi = INFINITY;
  if (!act) return true;
  auto* a = dynamic_cast<nn::Activation*>(act);
  if (!a) return false;
  switch (a->options().kind) {
    case nn::ActivationKind::relu: lo = 0.f; return true;
    case nn::ActivationKind::relu6: lo = 0.f; hi = 6.f; return true;
    case nn::ActivationKind::hardtanh: lo = a->options().min_val; hi = a->options().max_val; return true;
    case nn::ActivationKind::identity: return true;
    default: return false;
  }
}

State lower_input_quant(Lowerer& L, int node, quant::QuantAct& qa, float lo, float hi) {
  quant::Quantizer& q = qa.act_quant();
  const TargetGrid t = grid_of(L, node, q);
  if (t.scale.size() != 1) L.refuse(node, "the input quantizer is per channel", "quantize the model input per tensor");
  intnet::QuantizeAttrs a;
  a.scale = t.scale[0];
  a.zero_point = t.zero_point;
  a.elem = t.elem;
  a.elem.in_lo = lo;
  a.elem.in_hi = hi;
  const int64_t qmin = static_cast<int64_t>(t.elem.qmin), qmax = static_cast<int64_t>(t.elem.qmax);
  const int64_t y_lo = std::isfinite(lo) ? std::max<int64_t>(grid_level(t, 0, lo), qmin) : qmin;
  const int64_t y_hi = std::isfinite(hi) ? std::min<int64_t>(grid_level(t, 0, hi), qmax) : qmax;
  const std::string& name = L.g.nodes()[static_cast<size_t>(node)].name;
  return integer_state(
      L.emit(intnet::OpKind::quantize, name, {}, grid_value(name, L.sample_shape(node), t, y_lo, y_hi), a));
}

// Any activation + quantizer on a small per-tensor integer input: a table of the fake-quant
// model's own outputs for every input integer.
State lower_lut(Lowerer& L, int node, quant::QuantAct& qa, const State& in) {
  const intnet::Value x = L.out.net.value(in.value);
  const std::string& name = L.g.nodes()[static_cast<size_t>(node)].name;
  if (x.scale.size() != 1 || x.zero_point.size() != 1)
    L.refuse(node, "a lookup table needs a per-tensor input grid, but " + x.name + " is per channel",
             "quantize the input of " + name + " per tensor");
  const int64_t count = x.hi - x.lo + 1;
  if (count > 65536)
    L.refuse(node, "its input has " + std::to_string(count) + " integer levels: too many for a lookup table",
             "quantize the input of " + name + " to 16 bits or fewer (an activation quantizer before it)");
  const TargetGrid t = grid_of(L, node, qa.act_quant());
  if (t.scale.size() != 1) L.refuse(node, "a lookup table needs a per-tensor output quantizer", "quantize per tensor");
  Tensor xs = Tensor::empty({1, count});
  const float s = static_cast<float>(x.scale[0]);
  for (int64_t i = 0; i < count; ++i) xs.f32()[i] = static_cast<float>(x.lo + i - x.zero_point[0]) * s;
  NoGradGuard no_grad;
  const std::vector<float> ys = floats_of(qa.forward(Variable(xs)).data());
  intnet::LutAttrs a;
  a.in_lo = static_cast<int32_t>(x.lo);
  int64_t lo = INT32_MAX, hi = INT32_MIN;
  for (float v : ys) {
    const int32_t q = static_cast<int32_t>(std::nearbyint(v / t.scale[0] + t.zero_point));
    a.table.push_back(q);
    lo = std::min<int64_t>(lo, q);
    hi = std::max<int64_t>(hi, q);
  }
  return integer_state(L.emit(intnet::OpKind::lut, name, {in.value}, grid_value(name, x.shape, t, lo, hi), std::move(a)));
}

// A binary activation quantizer (y = s * (x >= 0 ? 1 : -1)) after an accumulator or an integer
// grid: one threshold per channel on the input integers (FINN's bipolar MultiThreshold), exact
// because the sign of a * acc + b is decided by comparing acc with -b / a.
State lower_binary_act(Lowerer& L, int node, quant::QuantAct& qa, float lo, float hi) {
  const nn::GraphNode& gn = L.g.nodes()[static_cast<size_t>(node)];
  quant::Quantizer& q = qa.act_quant();
  if (!(lo < 0 && hi > 0))
    L.refuse(node, "a binary quantizer after an activation that is never negative (or never positive)",
             "drop the activation before the binary quantizer, or use hardtanh");
  const std::vector<float> s = floats_of(q.meta().scale);
  if (s.size() != 1 || !(std::isfinite(s[0]) && s[0] > 0))
    L.refuse(node, quantizer_name(q) + " needs one positive finite scale", "use a per-tensor binary quantizer");
  State& in = L.states.at(static_cast<size_t>(gn.inputs.at(0)));
  const intnet::Value x = L.out.net.value(in.value);
  const int64_t channels = x.shape.empty() ? 1 : x.shape[0];
  intnet::ThresholdAttrs a;
  a.base = -1;
  a.step = 2;
  for (int64_t c = 0; c < channels; ++c) {
    double t = 0;
    bool descending = false;
    if (in.kind == State::Kind::affine) {  // a * acc + b >= 0
      const double ac = in.a[static_cast<size_t>(c)], bc = in.b[static_cast<size_t>(c)];
      descending = ac < 0;
      t = descending ? std::floor(-bc / ac) : std::ceil(-bc / ac);
    } else {  // (q - zp) * s_in >= 0
      if (x.zero_point.size() != 1 && x.zero_point.size() != static_cast<size_t>(channels))
        L.refuse(node, "its input has an unexpected zero point count", "quantize the input per tensor");
      t = x.zero_point_of(c);
    }
    if (!(std::fabs(t) < 2147483647.0))
      L.refuse(node, "the threshold of channel " + std::to_string(c) + " is " + number(t) + ", beyond int32",
               "check the batch norm before it (a gamma near 0?)");
    a.thresholds.push_back(static_cast<int64_t>(t));
    a.descending.push_back(descending ? 1 : 0);
  }
  if (in.kind == State::Kind::affine) {
    if (in.consumed)
      L.refuse(node, "the accumulator of " + x.name + " is read by two quantizers", "let one quantizer read it");
    in.consumed = true;
  }
  TargetGrid bipolar;  // -1 / +1 on scale s
  bipolar.scale = {s[0]};
  bipolar.bits = 1;
  return integer_state(
      L.emit(intnet::OpKind::threshold, gn.name, {in.value}, grid_value(gn.name, x.shape, bipolar, -1, 1), std::move(a)));
}

State lower_quant_act(Lowerer& L, int node, quant::QuantAct& qa) {
  float lo, hi;
  const bool clamps = clamp_bounds(qa.activation(), lo, hi);
  const nn::GraphNode& gn = L.g.nodes()[static_cast<size_t>(node)];
  if (gn.inputs[0] < 0) {
    if (!clamps) L.refuse(node, "a " + qa.activation()->type_name() + " on the float model input", "quantize the input first");
    return lower_input_quant(L, node, qa, lo, hi);
  }
  const State& in = L.input_state(node, 0);
  if (in.kind == State::Kind::none)
    L.refuse(node, "its input is not on an integer grid (" + in.why + ")", "quantize or fold what comes before " + gn.name);
  if (qa.act_quant().config().type == quant::QuantType::binary) {
    if (!clamps) L.refuse(node, "a binary quantizer after " + qa.activation()->type_name(), "use hardtanh or no activation");
    return lower_binary_act(L, node, qa, lo, hi);
  }
  if (!clamps) {
    if (in.kind == State::Kind::affine)
      L.refuse(node, "a " + qa.activation()->type_name() + " of an accumulator has no integer form",
               "quantize the accumulator first: an activation quantizer (quant identity) before " + gn.name);
    return lower_lut(L, node, qa, in);
  }
  return integer_state(requantize_to(L, node, gn.inputs[0], grid_of(L, node, qa.act_quant()), lo, hi, gn.name));
}

}  // namespace

int detail::requantize_to_grid(Lowerer& L, int node, int src, quant::Quantizer& q, const std::string& name) {
  return requantize_to(L, node, src, grid_of(L, node, q), -INFINITY, INFINITY, name);
}

LoweredModel lower(nn::Graph& model, const Shape& input, const std::string& name, const LowerOptions& opt) {
  LB_CHECK(!model.nodes().empty(), "cannot lower ", name, ": the model has no layers");
  Lowerer L{model, name, opt, {}, {}, {}};
  std::vector<int64_t> in4{1};
  in4.insert(in4.end(), input.dims().begin(), input.dims().end());
  L.shapes = model.node_shapes(Shape(in4));
  L.out.net.name = name;
  L.out.net.rounding = opt.rounding;
  L.out.net.input_shape = input.dims();
  L.states.resize(model.nodes().size());
  L.out.node_value.assign(model.nodes().size(), -1);
  for (int k = 0; k < static_cast<int>(model.nodes().size()); ++k) {
    nn::Module& m = *model.nodes()[static_cast<size_t>(k)].module;
    State s = m.traits().lowering == nn::Lowering::quantize ? lower_quant_act(L, k, static_cast<quant::QuantAct&>(m))
                                                             : detail::lower_node(L, k);
    if (s.kind == State::Kind::integer) L.out.node_value[static_cast<size_t>(k)] = s.value;
    L.states[static_cast<size_t>(k)] = std::move(s);
  }
  const int last = static_cast<int>(model.nodes().size()) - 1;
  State& out = L.states.back();
  if (out.kind == State::Kind::none)
    L.refuse(last, "the model output is not on an integer grid (" + out.why + ")", "quantize the last layer");
  if (out.kind == State::Kind::affine) {  // int32 logits with their (per-class) scale
    detail::fold_pending_bias(L, last, out, false);  // the logits keep the dot product's grid
    L.out.net.values.at(static_cast<size_t>(out.value)).scale = out.a;
    L.out.node_value[static_cast<size_t>(last)] = out.value;
  }
  L.out.net.output = out.value;
  intnet::prove_ranges(L.out.net);
  L.out.net.validate();
  return std::move(L.out);
}

}  // namespace lowbit::deploy
