// `lowbit inspect RUN_DIR --integer`: the integer network of a run, layer by layer.
#include <algorithm>
#include <cstdio>
#include <string>

#include "commands.h"
#include "deploy/footprint.h"
#include "verify/integer_model.h"

namespace lowbit::cli {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += 'x';
    out += std::to_string(s[i]);
  }
  return out;
}

std::string grid_str(const intnet::Value& v) {
  char b[96];
  std::snprintf(b, sizeof b, "%d%s s=%.4g%s%s", v.bits, v.is_signed ? "s" : "u", v.scale[0],
                v.scale.size() > 1 ? "..." : "",
                v.zero_point.size() == 1 && v.zero_point[0] == 0 ? "" : (" zp=" + std::to_string(v.zero_point[0])).c_str());
  return b;
}

// Bytes per element of a buffer holding `bits`-bit integers (int8 / int16 / int32).
int64_t element_bytes(int bits) { return bits <= 8 ? 1 : bits <= 16 ? 2 : 4; }

// Peak bytes of the activation buffers alive at once, running the nodes in order (a value lives
// from its node to its last reader; the network input's float buffer is not counted).
int64_t peak_activation_bytes(const intnet::Network& net) {
  std::vector<int> last(net.values.size(), -1);
  for (size_t k = 0; k < net.nodes.size(); ++k)
    for (int i : net.nodes[k].inputs) last[static_cast<size_t>(i)] = static_cast<int>(k);
  last[static_cast<size_t>(net.output)] = static_cast<int>(net.nodes.size());
  int64_t peak = 0;
  for (size_t k = 0; k < net.nodes.size(); ++k) {
    int64_t live = 0;
    for (size_t j = 0; j <= k; ++j) {
      const int v = net.nodes[j].output;
      if (last[static_cast<size_t>(v)] >= static_cast<int>(k))
        live += net.value(v).numel() * element_bytes(net.value(v).bits);
    }
    peak = std::max(peak, live);
  }
  return peak;
}

}  // namespace

int inspect_integer(const std::string& run, const std::string& rounding) {
  deploy::LowerOptions lo;
  lo.rounding = intnet::parse_rounding(rounding);
  const verify::IntegerModel m = verify::load_integer_model(run, {"data.test_limit=1000"}, lo);
  const intnet::Network& net = m.lowered.net;
  std::printf("integer network of %s (weights %s), rounding %s\n", net.name.c_str(), m.checkpoint.c_str(),
              intnet::rounding_name(net.rounding));
  std::printf("%-18s %-10s %-10s %-24s %-16s %-26s %8s %8s\n", "node", "op", "shape", "output grid", "weights",
              "M0 / shift (first channel)", "acc bits", "bytes");
  for (const intnet::Node& n : net.nodes) {
    const intnet::Value& y = net.value(n.output);
    std::string weights = "-", mult = "-", acc = "-";
    int64_t bytes = 0;
    auto weight_info = [&](const intnet::WeightTensor& w, const std::vector<int32_t>& bias, int64_t bound, int shift) {
      weights = std::to_string(w.bits) + "b " + intnet::weight_kind_name(w.kind) + " x" + std::to_string(w.data.size());
      if (w.scale.size() > 1) weights += " pc";
      acc = std::to_string(intnet::signed_bits_for(bound)) + (shift ? " <<" + std::to_string(shift) : "");
      bytes = w.packed_bytes() + 4 * static_cast<int64_t>(bias.size());
    };
    if (const auto* c = std::get_if<intnet::ConvAttrs>(&n.attrs)) weight_info(c->weight, c->bias, c->acc_bound, c->acc_shift);
    if (const auto* mm = std::get_if<intnet::MatmulAttrs>(&n.attrs)) weight_info(mm->weight, mm->bias, mm->acc_bound, mm->acc_shift);
    if (const auto* r = std::get_if<intnet::RequantizeAttrs>(&n.attrs)) {
      char b[64];
      std::snprintf(b, sizeof b, "%d / %d%s%s", r->m0[0], r->shift[0], r->m0.size() > 1 ? " (per ch)" : "",
                    r->pow2 ? " pow2" : "");
      mult = b;
      bytes = 8 * static_cast<int64_t>(r->m0.size());
    }
    if (const auto* l = std::get_if<intnet::LutAttrs>(&n.attrs)) bytes = 4 * static_cast<int64_t>(l->table.size());
    std::printf("%-18s %-10s %-10s %-24s %-16s %-26s %8s %8lld\n", n.name.c_str(), intnet::op_name(n.op),
                shape_str(y.shape).c_str(), grid_str(y).c_str(), weights.c_str(), mult.c_str(), acc.c_str(),
                static_cast<long long>(bytes));
  }
  const intnet::Value& out = net.value(net.output);
  std::printf("output: %s int32 logits %s, scale %.6g%s\n", out.name.c_str(), shape_str(out.shape).c_str(), out.scale[0],
              out.scale.size() > 1 ? " (per class)" : "");
  std::printf("parameter_bytes=%lld activation_bytes=%lld\n", static_cast<long long>(net.parameter_bytes()),
              static_cast<long long>(peak_activation_bytes(net)));
  // The planner's `exact` accounting (docs/mixed-precision.md): packed, 4-byte-aligned arrays.
  const deploy::Footprint fp = deploy::exact_footprint(net);
  std::printf("exact accounting (lowbit plan --accounting exact):\n");
  for (const deploy::LayerFootprint& l : fp.layers)
    std::printf("  %-16s w%d in%d out%-2d flash %7lld (weights %lld + parameters %lld)  RAM %7lld%s\n", l.name.c_str(),
                l.weight_bits, l.in_bits, l.out_bits, static_cast<long long>(l.weight_bytes + l.param_bytes),
                static_cast<long long>(l.weight_bytes), static_cast<long long>(l.param_bytes),
                static_cast<long long>(l.ram_bytes), l.requantized ? "" : "  (int32 logits: no requantization)");
  std::printf("flash_exact=%lld ram_exact=%lld ram_layer=%s\n", static_cast<long long>(fp.flash_bytes),
              static_cast<long long>(fp.ram_bytes), fp.ram_layer.c_str());
  for (const std::string& note : m.lowered.notes) std::printf("note: %s\n", note.c_str());
  return 0;
}

}  // namespace lowbit::cli
