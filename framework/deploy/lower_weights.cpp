// Lowering of conv2d / linear layers: integer weights and biases, the accumulator state.
#include <cmath>

#include "autograd/variable.h"
#include "core/error.h"
#include "deploy/lower_detail.h"

namespace lowbit::deploy::detail {

namespace {

// TF SAME padding of one dimension: (before, after), as ops::conv2d computes it.
std::pair<int64_t, int64_t> same_pad(int64_t in, int64_t out, int64_t k, int64_t s, int64_t d) {
  const int64_t total = std::max<int64_t>((out - 1) * s + (k - 1) * d + 1 - in, 0);
  return {total / 2, total - total / 2};
}

intnet::WeightKind weight_kind(const quant::QuantizerConfig& c) {
  switch (c.type) {
    case quant::QuantType::integer: return intnet::WeightKind::integer;
    case quant::QuantType::binary: return intnet::WeightKind::bipolar;
    case quant::QuantType::ternary: return intnet::WeightKind::ternary;
  }
  return intnet::WeightKind::integer;
}

// The integer weights w = W_fq / s_w[c] of the weight quantizer's output (exact multiples).
intnet::WeightTensor integer_weights(Lowerer& L, int node, const Tensor& wfq, const quant::Quantizer& wq) {
  const quant::QuantMeta& wm = wq.meta();
  intnet::WeightTensor t;
  t.shape = wfq.shape().dims();
  t.kind = weight_kind(wq.config());
  t.bits = t.kind == intnet::WeightKind::bipolar ? 1 : t.kind == intnet::WeightKind::ternary ? 2 : wm.bits;
  const std::vector<float> s = floats_of(wm.scale);
  for (size_t c = 0; c < s.size(); ++c)
    if (!(std::isfinite(s[c]) && s[c] > 0))
      L.refuse(node, "its weight scale " + std::string(s.size() > 1 ? "of output channel " + std::to_string(c) + " " : "") +
                         "is " + number(s[c]) + " (" + quantizer_name(wq) + ")",
               "a scale must be finite and positive: retrain or re-import the weights (the checkpoint may be damaged)");
  t.scale.assign(s.begin(), s.end());
  if (!(t.bits >= 1 && t.bits <= 8))
    L.refuse(node, "its weights have " + std::to_string(t.bits) + " bits",
             "integer weights of 1 to 8 bits are lowered: set the weight quantizer's bits to 8 or fewer");
  const std::vector<float> w = floats_of(wfq);
  const int64_t per = t.per_output();
  t.data.resize(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    const double sc = t.scale[s.size() == 1 ? 0 : i / static_cast<size_t>(per)];
    const double v = static_cast<double>(w[i]) / sc;
    const double q = std::nearbyint(v);
    LB_CHECK(std::fabs(v - q) < 1e-3 && std::fabs(q) <= 128, "lowering ", L.model, ": weight ", i, " of ",
             L.g.nodes()[node].name, " is ", w[i], ", not an integer multiple of its scale ", sc);
    t.data[i] = static_cast<int8_t>(q);
  }
  return t;
}

}  // namespace

void fold_pending_bias(Lowerer& L, int node, State& s, bool fine) {
  if (s.kind != State::Kind::affine) return;
  bool any = false;
  for (double v : s.b) any = any || v != 0.0;
  if (!any) return;
  intnet::Node& p = L.out.net.nodes.at(static_cast<size_t>(s.producer));
  std::vector<int32_t>* bias = nullptr;
  int* acc_shift = nullptr;
  const intnet::WeightTensor* w = nullptr;
  int32_t zp = 0;
  if (auto* c = std::get_if<intnet::ConvAttrs>(&p.attrs)) bias = &c->bias, acc_shift = &c->acc_shift, w = &c->weight, zp = c->input_zero_point;
  if (auto* m = std::get_if<intnet::MatmulAttrs>(&p.attrs)) bias = &m->bias, acc_shift = &m->acc_shift, w = &m->weight, zp = m->input_zero_point;
  LB_CHECK(bias, "lowering: the accumulator of ", p.name, " has no bias to fold into");
  // The largest shift (up to 16) whose worst-case accumulator stays within 2^30 on every channel.
  int shift = 0;
  if (fine && s.rounded_bias) {
    const intnet::Value& x = L.out.net.value(p.inputs.at(0));
    const double x_max = std::max(std::fabs(static_cast<double>(x.lo - zp)), std::fabs(static_cast<double>(x.hi - zp)));
    const int64_t per = w->per_output();
    auto fits = [&](int k) {
      for (size_t c = 0; c < s.b.size(); ++c) {
        double sum = 0;
        for (int64_t j = 0; j < per; ++j) sum += std::fabs(static_cast<double>(w->data[static_cast<size_t>(static_cast<int64_t>(c) * per + j)]));
        const double fine_bias = std::fabs(std::ldexp(static_cast<double>((*bias)[c]) + s.b[c] / s.a[c], k)) + 1;
        if (std::ldexp(sum * x_max, k) + fine_bias > 1073741824.0) return false;
      }
      return true;
    };
    while (shift < 16 && fits(shift + 1)) ++shift;
  }
  if (s.rounded_bias)
    L.out.notes.push_back(p.name + ": a float bias or batch-norm shift is rounded to the int32 accumulator grid" +
                          (shift ? " with " + std::to_string(shift) + " extra fraction bits (acc_shift)" : std::string()) +
                          " (exact with Int32Bias and quant.bn_fold)");
  *acc_shift = shift;
  for (size_t c = 0; c < s.b.size(); ++c) {
    const double q = std::nearbyint(std::ldexp(s.b[c] / s.a[c], shift)) + std::ldexp(static_cast<double>((*bias)[c]), shift);
    if (!(std::fabs(q) < 2147483647.0))
      L.refuse(node, "the bias of output channel " + std::to_string(c) + " is " + number(s.b[c]) +
                         ", which is " + number(q) + " on the accumulator grid: it does not fit int32",
               "the batch norm or bias is far larger than the accumulator's scale; check the checkpoint");
    (*bias)[c] = static_cast<int32_t>(q);
    s.b[c] = 0.0;
    s.a[c] = std::ldexp(s.a[c], -shift);
  }
}

State lower_weight_layer(Lowerer& L, int node, quant::QuantWeightLayer& layer, const State& in) {
  const std::string& name = L.g.nodes()[static_cast<size_t>(node)].name;
  if (in.kind != State::Kind::integer)
    L.refuse(node, "its input is not on an integer grid (" + in.why + ")",
             "quantize its input: an activation quantizer (quant.activations / quant.input) before " + name);
  const intnet::Value& x = L.out.net.value(in.value);
  if (x.scale.size() != 1 || x.zero_point.size() != 1)
    L.refuse(node, "its input has per-channel scales or zero points (" + x.name + "), which do not factor out of a dot product",
             "use a per-tensor activation quantizer before " + name);
  if (layer.accumulator().bits > 0)
    L.refuse(node, "its accumulator is re-gridded to " + std::to_string(layer.accumulator().bits) +
                       " bits (quant.accumulator), which the integer network does not lower yet",
             "remove quant.accumulator for " + name);
  NoGradGuard no_grad;
  Variable w, b;
  layer.effective_weight_bias(w, b);
  quant::Quantizer& wq = layer.weight_quant();
  const Tensor wfq = wq.forward(w).data();
  if (!wq.meta().valid()) L.refuse(node, "its weight quantizer gave no integer grid (" + wq.meta().why + ")", "check the recipe");
  for (float zp : wq.meta().zero_point.defined() ? floats_of(wq.meta().zero_point) : std::vector<float>{})
    if (zp != 0.f) L.refuse(node, "its weights have a zero point", "use a symmetric weight quantizer (zero_point: false)");
  intnet::WeightTensor wt = integer_weights(L, node, wfq, wq);
  const int64_t cout = wt.out_channels();

  State s;
  s.kind = State::Kind::affine;
  s.a.resize(static_cast<size_t>(cout));
  s.b.assign(static_cast<size_t>(cout), 0.0);
  const float s_in = static_cast<float>(x.scale[0]);
  for (int64_t c = 0; c < cout; ++c) s.a[c] = x.scale[0] * wt.scale[wt.scale.size() == 1 ? 0 : c];
  std::vector<int32_t> bias(static_cast<size_t>(cout), 0);
  if (b.defined()) {
    quant::Quantizer* bq = layer.bias_quant();
    if (bq && bq->config().external_scale) {  // Int32Bias & co: integers on s_in * s_w (float32 product)
      Tensor sb = Tensor::empty({cout});
      for (int64_t c = 0; c < cout; ++c) sb.f32()[c] = s_in * static_cast<float>(wt.scale[wt.scale.size() == 1 ? 0 : c]);
      const std::vector<float> bfq = floats_of(bq->forward_with_scale(b, Variable(sb)).data());
      for (int64_t c = 0; c < cout; ++c) bias[c] = static_cast<int32_t>(std::nearbyint(bfq[c] / sb.f32()[c]));
    } else {
      const std::vector<float> bf = floats_of(bq ? bq->forward(b).data() : b.data());
      for (int64_t c = 0; c < cout; ++c) s.b[c] = bf[c];
      s.rounded_bias = true;
    }
  }

  intnet::Value acc;
  acc.name = name;
  acc.shape = L.sample_shape(node);
  acc.scale = s.a;
  intnet::Node n;
  n.name = name;
  n.inputs = {in.value};
  if (layer.is_conv()) {
    const auto& co = static_cast<nn::Conv2d&>(layer.float_layer()).options();
    intnet::ConvAttrs a;
    a.kernel_h = co.kernel_h;
    a.kernel_w = co.kernel_w;
    a.stride_h = co.stride_h;
    a.stride_w = co.stride_w;
    a.dil_h = co.dil_h;
    a.dil_w = co.dil_w;
    a.groups = co.groups;
    if (co.pad_same) {
      std::tie(a.pad_top, a.pad_bottom) = same_pad(x.shape.at(1), acc.shape.at(1), a.kernel_h, a.stride_h, a.dil_h);
      std::tie(a.pad_left, a.pad_right) = same_pad(x.shape.at(2), acc.shape.at(2), a.kernel_w, a.stride_w, a.dil_w);
    } else {
      a.pad_top = a.pad_bottom = co.pad_h;
      a.pad_left = a.pad_right = co.pad_w;
    }
    a.input_zero_point = x.zero_point[0];
    a.weight = std::move(wt);
    a.bias = std::move(bias);
    n.op = intnet::OpKind::conv2d;
    n.attrs = std::move(a);
  } else {
    intnet::MatmulAttrs a;
    a.input_zero_point = x.zero_point[0];
    a.weight = std::move(wt);
    a.bias = std::move(bias);
    n.op = intnet::OpKind::matmul;
    n.attrs = std::move(a);
  }
  // The accumulator's scale may be negative later (a batch norm's negative gamma); its sign
  // lives in the multiplier, so the value keeps the magnitude here.
  for (double& v : acc.scale) v = std::fabs(v);
  n.output = L.out.net.add_value(std::move(acc));
  s.value = L.out.net.add_node(std::move(n));
  s.producer = static_cast<int>(L.out.net.nodes.size()) - 1;
  return s;
}

}  // namespace lowbit::deploy::detail
