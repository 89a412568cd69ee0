#include "deploy/footprint.h"

#include <algorithm>
#include <set>
#include <vector>

#include "deploy/planner.h"

namespace lowbit::deploy {

namespace {

int64_t align4(int64_t bytes) { return (bytes + 3) / 4 * 4; }

std::vector<size_t> readers_of(const intnet::Network& net, int v) {
  std::vector<size_t> r;
  for (size_t k = 0; k < net.nodes.size(); ++k)
    for (int i : net.nodes[k].inputs)
      if (i == v) r.push_back(k);
  return r;
}

}  // namespace

Footprint exact_footprint(const intnet::Network& net) {
  Footprint f;
  for (size_t k = 0; k < net.nodes.size(); ++k) {
    const intnet::Node& n = net.nodes[k];
    const intnet::WeightTensor* w = nullptr;
    if (const auto* c = std::get_if<intnet::ConvAttrs>(&n.attrs)) w = &c->weight;
    if (const auto* m = std::get_if<intnet::MatmulAttrs>(&n.attrs)) w = &m->weight;
    if (!w) continue;
    LayerFootprint l;
    l.name = n.name;
    l.weight_bits = w->bits;
    const intnet::Value& in = net.value(n.inputs.at(0));
    const intnet::Value& acc = net.value(n.output);
    l.in_bits = in.bits;
    const intnet::Node* rq = nullptr;  // the requantization (or threshold) reading the accumulator
    for (const intnet::Node& m : net.nodes)
      if ((m.op == intnet::OpKind::requantize || m.op == intnet::OpKind::threshold) && m.inputs.at(0) == n.output) rq = &m;
    const int64_t channels = w->out_channels();
    l.weight_bytes = align4(packed_bytes(static_cast<int64_t>(w->data.size()), w->bits));
    if (const auto* a = rq ? std::get_if<intnet::RequantizeAttrs>(&rq->attrs) : nullptr) {
      const int64_t g = static_cast<int64_t>(a->m0.size());
      l.param_bytes = 4 * channels + 4 * g + align4(2 * g + 2);
      l.out_bits = intnet::storage_bits(net.value(rq->output).bits);
    } else if (const auto* t = rq ? std::get_if<intnet::ThresholdAttrs>(&rq->attrs) : nullptr) {
      // bias, thresholds (int32, C x K), descending flags (one byte per channel) only when any is set
      const bool any_desc = std::any_of(t->descending.begin(), t->descending.end(), [](uint8_t d) { return d != 0; });
      l.param_bytes = 4 * channels + 4 * static_cast<int64_t>(t->thresholds.size()) + (any_desc ? align4(channels) : 0);
      l.out_bits = intnet::storage_bits(net.value(rq->output).bits);
    } else {
      l.requantized = false;
      l.param_bytes = 4 * channels;
      l.out_bits = 32;
    }
    l.ram_bytes = align4(packed_bytes(in.numel(), intnet::storage_bits(l.in_bits))) + align4(packed_bytes(acc.numel(), l.out_bits));
    // Values alive across this layer because a later node reads them (residual shortcuts).
    // Values written before this layer and read after it (residual shortcuts). An accumulator
    // whose only reader is its requantization (or threshold) is stored as that node's output: the
    // exporters run the pair as one step, so the int32 never takes memory.
    std::set<int> live;
    for (size_t j = 0; j < k; ++j) {
      int v = net.nodes[j].output;
      const intnet::OpKind op = net.nodes[j].op;
      if (op == intnet::OpKind::conv2d || op == intnet::OpKind::matmul || op == intnet::OpKind::add) {
        const std::vector<size_t> r = readers_of(net, v);
        if (r.size() == 1 && (net.nodes[r[0]].op == intnet::OpKind::requantize || net.nodes[r[0]].op == intnet::OpKind::threshold))
          v = net.nodes[r[0]].output;
      }
      if (v == n.inputs.at(0) || (rq && v == rq->output)) continue;
      for (size_t r : readers_of(net, v))
        if (r > k) live.insert(v);
    }
    for (int v : live) l.ram_bytes += align4(packed_bytes(net.value(v).numel(), intnet::storage_bits(net.value(v).bits)));
    f.flash_bytes += l.weight_bytes + l.param_bytes;
    if (l.ram_bytes > f.ram_bytes) {
      f.ram_bytes = l.ram_bytes;
      f.ram_layer = l.name;
    }
    f.layers.push_back(l);
  }
  return f;
}

}  // namespace lowbit::deploy
