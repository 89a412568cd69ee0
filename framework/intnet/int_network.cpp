#include "intnet/int_network.h"

#include <cmath>

#include "core/error.h"

namespace lowbit::intnet {

const char* rounding_name(RequantRounding r) {
  switch (r) {
    case RequantRounding::tflm: return "tflm";
    case RequantRounding::single: return "single";
    case RequantRounding::floor: return "floor";
  }
  return "?";
}

RequantRounding parse_rounding(const std::string& s) {
  if (s == "tflm") return RequantRounding::tflm;
  if (s == "single") return RequantRounding::single;
  if (s == "floor") return RequantRounding::floor;
  LB_FAIL("unknown rounding '", s,
          "': use tflm (CMSIS-NN / TFLite Micro double rounding, the default), single (their single-rounding build ",
          "option) or floor (PULP / NEMO arithmetic shift)");
}

const char* op_name(OpKind k) {
  switch (k) {
    case OpKind::quantize: return "quantize";
    case OpKind::conv2d: return "conv2d";
    case OpKind::matmul: return "matmul";
    case OpKind::requantize: return "requantize";
    case OpKind::max_pool: return "max_pool";
    case OpKind::avg_pool: return "avg_pool";
    case OpKind::add: return "add";
    case OpKind::concat: return "concat";
    case OpKind::reshape: return "reshape";
    case OpKind::lut: return "lut";
    case OpKind::threshold: return "threshold";
  }
  return "?";
}

const char* weight_kind_name(WeightKind k) {
  switch (k) {
    case WeightKind::integer: return "integer";
    case WeightKind::bipolar: return "bipolar";
    case WeightKind::ternary: return "ternary";
  }
  return "?";
}

int64_t Value::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t WeightTensor::per_output() const {
  int64_t n = 1;
  for (size_t d = 1; d < shape.size(); ++d) n *= shape[d];
  return n;
}

int64_t WeightTensor::packed_bytes() const {
  return (static_cast<int64_t>(data.size()) * bits + 7) / 8;
}

int signed_bits_for(int64_t bound) {
  int b = 1;
  while (b < 64 && (int64_t{1} << (b - 1)) - 1 < bound) ++b;
  return b;
}

int Network::add_value(Value v) {
  values.push_back(std::move(v));
  return static_cast<int>(values.size()) - 1;
}

int Network::add_node(Node n) {
  for (const Node& m : nodes) LB_CHECK(m.name != n.name, "integer network: node name '", n.name, "' is used twice");
  const int out = n.output;
  nodes.push_back(std::move(n));
  return out;
}

namespace {

void check_per_channel(const std::string& node, const char* what, size_t n, int64_t channels) {
  LB_CHECK(n == 1 || static_cast<int64_t>(n) == channels, "integer network: node ", node, ": ", what, " has ", n,
           " entries for ", channels, " channels");
}

// Weights and one int32 bias per output channel (conv2d, matmul).
void check_weight(const Node& n, const WeightTensor& w, const std::vector<int32_t>& bias) {
  LB_CHECK(bias.size() == static_cast<size_t>(w.out_channels()), "integer network: node ", n.name, ": ", bias.size(),
           " biases for ", w.out_channels(), " outputs");
  int64_t numel = 1;
  for (int64_t d : w.shape) numel *= d;
  LB_CHECK(numel == static_cast<int64_t>(w.data.size()), "integer network: node ", n.name, ": weight shape holds ",
           numel, " elements but ", w.data.size(), " are stored");
  LB_CHECK(w.bits >= 1 && w.bits <= 8, "integer network: node ", n.name, ": weight bits ", w.bits, " (1..8)");
  check_per_channel(n.name, "the weight scale", w.scale.size(), w.out_channels());
}

}  // namespace

void Network::validate() const {
  LB_CHECK(!nodes.empty(), "integer network ", name, ": no nodes");
  std::vector<bool> produced(values.size(), false);
  for (const Node& n : nodes) {
    for (int i : n.inputs) {
      LB_CHECK(i >= 0 && i < static_cast<int>(values.size()), "integer network: node ", n.name, " reads value ", i,
               ", which does not exist");
      LB_CHECK(produced[static_cast<size_t>(i)], "integer network: node ", n.name, " reads ", values[i].name,
               " before a node writes it");
    }
    LB_CHECK(n.output >= 0 && n.output < static_cast<int>(values.size()), "integer network: node ", n.name,
             " writes no value");
    LB_CHECK(!produced[static_cast<size_t>(n.output)], "integer network: value ", values[n.output].name,
             " is written twice");
    produced[static_cast<size_t>(n.output)] = true;
    const Value& out = values[n.output];
    LB_CHECK(out.lo <= out.hi, "integer network: value ", out.name, " has an empty range");
    check_per_channel(n.name, "the output scale", out.scale.size(), out.shape.empty() ? 1 : out.shape[0]);
    for (double s : out.scale)
      LB_CHECK(std::isfinite(s) && s != 0, "integer network: value ", out.name, " has scale ", s, " (must be finite, not 0)");
    const bool takes_float = n.op == OpKind::quantize;
    LB_CHECK(takes_float ? n.inputs.empty() : !n.inputs.empty(), "integer network: node ", n.name, " (", op_name(n.op),
             ") has ", n.inputs.size(), " inputs");
    switch (n.op) {
      case OpKind::conv2d: {
        const auto& a = std::get<ConvAttrs>(n.attrs);
        check_weight(n, a.weight, a.bias);
        LB_CHECK(a.acc_shift >= 0 && a.acc_shift <= 24, "integer network: node ", n.name, ": acc_shift ", a.acc_shift,
                 " outside [0, 24]");
        break;
      }
      case OpKind::matmul: {
        const auto& a = std::get<MatmulAttrs>(n.attrs);
        check_weight(n, a.weight, a.bias);
        LB_CHECK(a.acc_shift >= 0 && a.acc_shift <= 24, "integer network: node ", n.name, ": acc_shift ", a.acc_shift,
                 " outside [0, 24]");
        break;
      }
      case OpKind::requantize: {
        const auto& a = std::get<RequantizeAttrs>(n.attrs);
        LB_CHECK(a.m0.size() == a.shift.size() && !a.m0.empty(), "integer network: node ", n.name,
                 ": m0 and shift differ in length");
        check_per_channel(n.name, "the multiplier", a.m0.size(), out.shape.empty() ? 1 : out.shape[0]);
        for (int8_t s : a.shift)
          LB_CHECK(s >= -31 && s <= 30, "integer network: node ", n.name, ": shift ", int(s), " outside [-31, 30]");
        break;
      }
      case OpKind::quantize: LB_CHECK(std::holds_alternative<QuantizeAttrs>(n.attrs), "node ", n.name); break;
      case OpKind::max_pool:
      case OpKind::avg_pool: LB_CHECK(std::holds_alternative<PoolAttrs>(n.attrs), "node ", n.name); break;
      case OpKind::lut: {
        const auto& a = std::get<LutAttrs>(n.attrs);
        const Value& in = values[n.inputs[0]];
        LB_CHECK(in.lo >= a.in_lo && in.hi < a.in_lo + static_cast<int64_t>(a.table.size()), "integer network: node ",
                 n.name, ": the table does not cover the input range [", in.lo, ", ", in.hi, "]");
        break;
      }
      case OpKind::threshold: {
        const auto& a = std::get<ThresholdAttrs>(n.attrs);
        const int64_t channels = out.shape.empty() ? 1 : out.shape[0];
        LB_CHECK(a.per_channel >= 1 && static_cast<int64_t>(a.thresholds.size()) == channels * a.per_channel &&
                     static_cast<int64_t>(a.descending.size()) == channels,
                 "integer network: node ", n.name, ": ", a.thresholds.size(), " thresholds and ", a.descending.size(),
                 " directions for ", channels, " channels of ", a.per_channel);
        break;
      }
      case OpKind::add:
      case OpKind::concat:
      case OpKind::reshape: break;
    }
  }
  LB_CHECK(output >= 0 && output < static_cast<int>(values.size()) && produced[output], "integer network ", name,
           ": no output value");
}

int64_t Network::parameter_bytes() const {
  int64_t bytes = 0;
  for (const Node& n : nodes) {
    if (const auto* c = std::get_if<ConvAttrs>(&n.attrs)) bytes += c->weight.packed_bytes() + 4 * static_cast<int64_t>(c->bias.size());
    if (const auto* m = std::get_if<MatmulAttrs>(&n.attrs))
      bytes += m->weight.packed_bytes() + 4 * static_cast<int64_t>(m->bias.size());
    if (const auto* r = std::get_if<RequantizeAttrs>(&n.attrs)) bytes += 8 * static_cast<int64_t>(r->m0.size());
    if (const auto* l = std::get_if<LutAttrs>(&n.attrs)) bytes += 4 * static_cast<int64_t>(l->table.size());
    if (const auto* t = std::get_if<ThresholdAttrs>(&n.attrs)) bytes += 4 * static_cast<int64_t>(t->thresholds.size());
  }
  return bytes;
}

}  // namespace lowbit::intnet
