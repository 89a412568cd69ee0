// Lowering of the layers between the weight layers and the quantizers: batch norm, pools,
// flatten, clamps, add and concat (deploy/lower.h).
#include <cmath>

#include "core/error.h"
#include "deploy/lower_detail.h"
#include "quant/quant_meta.h"

namespace lowbit::deploy {

using detail::Lowerer;
using detail::State;
using detail::number;
using detail::integer_state;
using detail::none_state;

namespace {

// A value like `x` (grid and range) with another name and shape.
intnet::Value like(const intnet::Value& x, const std::string& name, std::vector<int64_t> shape) {
  intnet::Value y = x;
  y.name = name;
  y.shape = std::move(shape);
  return y;
}

float tensor_at(const Tensor& t, int64_t i) { return t.contiguous().f32()[i]; }

// Batch norm after a conv / linear: its affine map joins the accumulator's (Integer Channel
// Normalization: gamma / sigma in the multiplier, the shift in the bias).
State lower_batch_norm(Lowerer& L, int node, nn::BatchNorm2d& bn, const State& in) {
  const std::string& name = L.g.nodes()[static_cast<size_t>(node)].name;
  if (in.kind != State::Kind::affine)
    return none_state("batch norm " + name + " does not follow a conv or linear accumulator" +
                      (in.kind == State::Kind::none ? " (" + in.why + ")" : "") +
                      ": fold it into the layer before (quant.bn_fold) or move the quantizer after it");
  if (in.consumed) return none_state("batch norm " + name + " reads an accumulator that is already requantized");
  Tensor gamma, beta, mean, var;
  for (auto& [n, v] : bn.named_parameters()) (n == "weight" ? gamma : beta) = v.data();
  for (auto& [n, t] : bn.named_buffers()) {
    if (n == "running_mean") mean = *t;
    if (n == "running_var") var = *t;
  }
  State s = in;
  s.rounded_bias = true;
  for (size_t c = 0; c < s.a.size(); ++c) {
    const int64_t i = static_cast<int64_t>(c);
    const double v = tensor_at(var, i);
    if (!(std::isfinite(v) && v >= 0))
      L.refuse(node, "its running variance of channel " + std::to_string(c) + " is " + number(v),
               "the checkpoint is damaged or the training diverged: retrain");
    const double f = (gamma.defined() ? tensor_at(gamma, i) : 1.0) / std::sqrt(v + static_cast<double>(bn.options().eps));
    if (!(std::isfinite(f) && f != 0.0))
      L.refuse(node, "gamma / sigma of channel " + std::to_string(c) + " is " + number(f),
               "a channel with gamma 0 is constant: retrain, or prune the channel");
    s.a[c] *= f;
    s.b[c] = (s.b[c] - tensor_at(mean, i)) * f + (beta.defined() ? tensor_at(beta, i) : 0.0);
  }
  return s;
}

// Window size and pool geometry of an average / max pool on input value x.
intnet::PoolAttrs pool_attrs(const nn::Pool2d& p, const intnet::Value& x) {
  intnet::PoolAttrs a;
  if (p.pool_kind() == nn::PoolKind::global_avg) {
    a.kernel_h = a.stride_h = x.shape.at(1);
    a.kernel_w = a.stride_w = x.shape.at(2);
    return a;
  }
  const auto& o = p.options();
  a.kernel_h = o.kernel_h;
  a.kernel_w = o.kernel_w;
  a.stride_h = o.stride_h;
  a.stride_w = o.stride_w;
  a.pad_h = o.pad_h;
  a.pad_w = o.pad_w;
  return a;
}

State lower_avg_pool(Lowerer& L, int node, nn::Pool2d& pool, const State& in, const quant::QuantAvgPool* trunc) {
  const std::string& name = L.g.nodes()[static_cast<size_t>(node)].name;
  if (in.kind != State::Kind::integer)
    return none_state("the input of average pool " + name + " is not on an integer grid" +
                      (in.kind == State::Kind::none ? " (" + in.why + ")" : ""));
  const intnet::Value x = L.out.net.value(in.value);
  if (x.zero_point.size() != 1) return none_state("the input of " + name + " has a zero point per channel");
  intnet::PoolAttrs a = pool_attrs(pool, x);
  if ((a.pad_h || a.pad_w) && !pool.options().count_include_pad)
    return none_state(name + ": padded windows without count_include_pad have varying divisors");
  a.input_zero_point = x.zero_point[0];
  const int64_t k2 = a.kernel_h * a.kernel_w;
  intnet::Value y = like(x, name, L.sample_shape(node));
  y.zero_point = {0};
  double factor = 1.0;
  if (trunc) {  // Brevitas TruncAvgPool2d: the window sum loses its low bits down to `bits`
    const int sum_bits = quant::accumulator_bits(x.bits, 1, k2);
    const int target = trunc->bits() > 0 ? trunc->bits() : x.bits;
    a.shift = std::max(0, sum_bits - target);
    a.lo = x.is_signed ? -(int32_t{1} << (target - 1)) : 0;
    a.hi = static_cast<int32_t>(x.is_signed ? (int64_t{1} << (target - 1)) - 1 : (int64_t{1} << target) - 1);
    factor = std::ldexp(1.0, a.shift);
    y.bits = target;
  } else {
    y.bits = quant::accumulator_bits(x.bits, 1, k2);  // the whole window sum
  }
  for (double& s : y.scale)  // the sum's scale, rounded to float32 as the fake-quant model rounds it
    s = static_cast<double>(static_cast<float>(s / static_cast<double>(k2))) * factor;
  return integer_state(L.emit(intnet::OpKind::avg_pool, name, {in.value}, std::move(y), a));
}

State lower_flatten(Lowerer& L, int node, const State& in) {
  const std::string& name = L.g.nodes()[static_cast<size_t>(node)].name;
  if (in.kind != State::Kind::integer)
    return none_state("the input of flatten " + name + " is not on an integer grid" +
                      (in.kind == State::Kind::none ? " (" + in.why + ")" : ""));
  const intnet::Value x = L.out.net.value(in.value);
  intnet::Value y = like(x, name, L.sample_shape(node));
  const int64_t channels = x.shape.empty() ? 1 : x.shape[0];
  const int64_t inner = x.numel() / channels;
  auto expand = [&](auto& v) {  // per channel -> per feature (each repeated over H*W)
    if (v.size() <= 1) return;
    auto src = v;
    v.clear();
    for (int64_t c = 0; c < channels; ++c) v.insert(v.end(), static_cast<size_t>(inner), src[static_cast<size_t>(c)]);
  };
  expand(y.scale);
  expand(y.zero_point);
  return integer_state(L.emit(intnet::OpKind::reshape, name, {in.value}, std::move(y)));
}

// A float relu on an integer grid: max(q, zp), as a requantization by exactly 1.
State lower_relu(Lowerer& L, int node, const State& in) {
  const std::string& name = L.g.nodes()[static_cast<size_t>(node)].name;
  if (in.kind != State::Kind::integer)
    return none_state("relu " + name + " has no quantizer after an accumulator: quantize its output (quant.activations)");
  const intnet::Value x = L.out.net.value(in.value);
  if (x.zero_point.size() != 1) return none_state("relu " + name + ": zero point per channel");
  intnet::RequantizeAttrs a;
  a.m0 = {1 << 30};
  a.shift = {1};
  a.multiplier = {1.0};
  a.pow2 = true;
  a.input_zero_point = a.output_zero_point = x.zero_point[0];
  intnet::Value y = like(x, name, x.shape);
  y.lo = std::max<int64_t>(x.lo, x.zero_point[0]);
  a.lo = static_cast<int32_t>(y.lo);
  a.hi = static_cast<int32_t>(y.hi);
  return integer_state(L.emit(intnet::OpKind::requantize, name, {in.value}, std::move(y), a));
}

// Inputs of a float add / concat: integers on one per-tensor grid already.
State lower_merge(Lowerer& L, int node, bool is_add) {
  const nn::GraphNode& gn = L.g.nodes()[static_cast<size_t>(node)];
  std::vector<int> ins;
  for (size_t k = 0; k < gn.inputs.size(); ++k) {
    const State& s = L.input_state(node, k);
    if (s.kind != State::Kind::integer)
      return none_state("input " + std::to_string(k + 1) + " of " + gn.name + " is not on an integer grid" +
                        (s.kind == State::Kind::none ? " (" + s.why + ")" : "") + ": share one quantizer (quant." +
                        (is_add ? "add" : "concat") + ": shared)");
    ins.push_back(s.value);
  }
  const intnet::Value& x0 = L.out.net.value(ins[0]);
  for (int v : ins) {
    const intnet::Value& x = L.out.net.value(v);
    const bool same = x.scale == x0.scale && x.zero_point == x0.zero_point && x.scale.size() == 1 &&
                      (is_add ? x.zero_point[0] == 0 : (x.bits == x0.bits && x.is_signed == x0.is_signed));
    if (!same)
      return none_state("the inputs of " + gn.name + " are on different grids (" + x0.name + " and " + x.name +
                        "): share one quantizer (quant." + (is_add ? "add" : "concat") + ": shared)");
  }
  intnet::Value y = like(x0, gn.name, L.sample_shape(node));
  if (!is_add) {
    for (int v : ins) {
      y.lo = std::min(y.lo, L.out.net.value(v).lo);
      y.hi = std::max(y.hi, L.out.net.value(v).hi);
    }
  }
  return integer_state(L.emit(is_add ? intnet::OpKind::add : intnet::OpKind::concat, gn.name, ins, std::move(y)));
}

// QuantEltwiseAdd / QuantCat: every input requantized to the shared quantizer's grid first.
State lower_shared(Lowerer& L, int node, quant::QuantShared& qs) {
  const nn::GraphNode& gn = L.g.nodes()[static_cast<size_t>(node)];
  std::vector<int> ins;
  for (size_t k = 0; k < gn.inputs.size(); ++k) {
    const State& s = L.input_state(node, k);
    if (s.kind == State::Kind::none)
      L.refuse(node, "input " + std::to_string(k + 1) + " is not on an integer grid (" + s.why + ")",
               "quantize or fold what comes before " + gn.name);
    ins.push_back(detail::requantize_to_grid(L, node, gn.inputs[k], qs.input_quant(), gn.name + ".in" + std::to_string(k)));
  }
  const intnet::Value& x0 = L.out.net.value(ins[0]);
  if (qs.is_add() && x0.zero_point[0] != 0)
    L.refuse(node, "the quantizer shared by its inputs has a zero point", "use a symmetric shared quantizer");
  intnet::Value y = like(x0, gn.name, L.sample_shape(node));
  return integer_state(L.emit(qs.is_add() ? intnet::OpKind::add : intnet::OpKind::concat, gn.name, ins, std::move(y)));
}

}  // namespace

State detail::lower_node(Lowerer& L, int node) {
  const nn::GraphNode& gn = L.g.nodes()[static_cast<size_t>(node)];
  nn::Module& m = *gn.module;
  const std::string& name = gn.name;
  const State& in = L.input_state(node, 0);
  switch (m.traits().lowering) {
    case nn::Lowering::conv:
    case nn::Lowering::matmul:
      if (auto* qw = dynamic_cast<quant::QuantWeightLayer*>(&m)) return detail::lower_weight_layer(L, node, *qw, in);
      return none_state(name + " is a float layer (it has no weight quantizer: is it in quant.float?)");
    case nn::Lowering::fold:
      if (m.kind() == nn::LayerKind::quant_scale_bias)
        L.refuse(node, "scale_bias layers are not lowered yet", "fold the batch norm instead (quant.bn_fold)");
      if (auto* fb = dynamic_cast<quant::FoldableBatchNorm*>(&m); fb && fb->folded()) return in;  // already in the weights
      return lower_batch_norm(L, node, static_cast<nn::BatchNorm2d&>(m), in);
    case nn::Lowering::clamp:
      if (m.kind() == nn::LayerKind::relu) return lower_relu(L, node, in);
      return none_state("a float " + m.type_name() + " (" + name + ") leaves the integer grid: quantize its output");
    case nn::Lowering::lut:
      return none_state("a float " + m.type_name() + " (" + name +
                        ") has no integer grid: quantize its output (quant.activations / signed_activations)");
    case nn::Lowering::max_pool: {
      if (in.kind != State::Kind::integer)
        return none_state("the input of max pool " + name + " is not on an integer grid" +
                          (in.kind == State::Kind::none ? " (" + in.why + ")" : ""));
      const intnet::Value x = L.out.net.value(in.value);
      intnet::PoolAttrs a = pool_attrs(static_cast<nn::Pool2d&>(m), x);
      return integer_state(L.emit(intnet::OpKind::max_pool, name, {in.value}, like(x, name, L.sample_shape(node)), a));
    }
    case nn::Lowering::avg_pool:
      if (auto* qp = dynamic_cast<quant::QuantAvgPool*>(&m)) return lower_avg_pool(L, node, qp->pool(), in, qp);
      return lower_avg_pool(L, node, static_cast<nn::Pool2d&>(m), in, nullptr);
    case nn::Lowering::reshape: return lower_flatten(L, node, in);
    case nn::Lowering::identity: return in;
    case nn::Lowering::add:
    case nn::Lowering::concat:
      if (auto* qs = dynamic_cast<quant::QuantShared*>(&m)) return lower_shared(L, node, *qs);
      return lower_merge(L, node, m.traits().lowering == nn::Lowering::add);
    case nn::Lowering::container:
      L.refuse(node, "a nested graph is not lowered", "write the model as one flat list of layers");
    case nn::Lowering::none:
      L.refuse(node, "a bare quantizer node is not a layer of the integer network", "quantize through the recipe");
    case nn::Lowering::quantize: break;  // lower.cpp
  }
  LB_FAIL("lowering: unexpected layer ", name);
}

}  // namespace lowbit::deploy
