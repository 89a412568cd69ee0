#include "deploy/planner.h"

#include <utility>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>

#include "core/error.h"
#include "nn/graph.h"
#include "nn/layers.h"

namespace lowbit::deploy {

namespace {

constexpr int kMinBits = 2;   // 8 -> 4 -> 2, never below
constexpr double kShareMargin = 0.05;  // next_cut: within 5 percentage points of the largest share

int64_t align4(int64_t bytes) { return (bytes + 3) / 4 * 4; }
int64_t ceil_div8(int64_t bits) { return (bits + 7) / 8; }

std::string layer_label(const Network& net, size_t i) {
  return "layer " + std::to_string(i) + " '" + net.layers[i].name + "'";
}

std::string fmt_bytes(int64_t b) { return group_digits(b) + " B (" + human_bytes(b) + ")"; }

}  // namespace

const char* to_string(Accounting a) { return a == Accounting::paper ? "paper" : "exact"; }
const char* to_string(Scaling s) { return s == Scaling::per_layer ? "per_layer" : "per_channel"; }
const char* method_name(Scaling s) { return s == Scaling::per_layer ? "MixPL" : "MixPC"; }

// ---------------------------------------------------------------------------------------------
// The network as the planner sees it.

Network describe(const nn::Graph& g, const Shape& input, const std::string& name) {
  bool known = input.rank() == 3;
  for (size_t i = 0; known && i < 3; ++i) known = input[i] > 0;
  LB_CHECK(known, "model '", name, "': unknown input size ", input.str(),
           ": the planner needs the (C, H, W) of one input sample to size the activations (set the model "
           "file's `input:` or its params, e.g. --param input_size=224)");
  const auto& nodes = g.nodes();
  LB_CHECK(!nodes.empty(), "model '", name, "' has no layers");
  const Shape batched({1, input[0], input[1], input[2]});
  const std::vector<Shape> shapes = g.node_shapes(batched);

  // Activation tensors with tied bit widths: a union-find over the buffers the conv/linear layers
  // read and write. Pass-through nodes keep their input's tensor; add/concat merge theirs.
  std::vector<int> parent;
  std::vector<std::string> tname;
  auto make = [&](const std::string& n) {
    parent.push_back(static_cast<int>(parent.size()));
    tname.push_back(n);
    return static_cast<int>(parent.size()) - 1;
  };
  auto find = [&](int t) {
    while (parent[t] != t) t = parent[t] = parent[parent[t]];
    return t;
  };
  const int input_t = make("input");
  std::vector<int> node_t(nodes.size(), -1);
  auto in_t = [&](int i) { return i < 0 ? input_t : node_t[i]; };
  auto in_shape = [&](int i) -> const Shape& { return i < 0 ? batched : shapes[i]; };

  std::vector<int> last_read(nodes.size(), -1);  // the last node reading each node's output
  for (size_t k = 0; k < nodes.size(); ++k)
    for (int i : nodes[k].inputs)
      if (i >= 0) last_read[static_cast<size_t>(i)] = static_cast<int>(k);

  Network net;
  net.name = name;
  for (size_t k = 0; k < nodes.size(); ++k) {
    const nn::GraphNode& n = nodes[k];
    const nn::Module* m = n.module.get();
    switch (m->traits().planner) {
      case nn::Planner::weight_layer: {
        PlanLayer l;
        l.name = n.name;
        if (m->kind() == nn::LayerKind::conv2d) {
          const nn::Conv2dOptions& o = static_cast<const nn::Conv2d*>(m)->options();
          l.kind = o.groups == 1 ? "conv2d"
                   : (o.groups == o.in_channels && o.out_channels == o.in_channels) ? "depthwise"
                                                                                     : "grouped";
          l.weights = o.out_channels * (o.in_channels / o.groups) * o.kernel_h * o.kernel_w;
          l.channels = o.out_channels;
        } else if (m->kind() == nn::LayerKind::linear) {
          const nn::LinearOptions& o = static_cast<const nn::Linear*>(m)->options();
          l.kind = "linear";
          l.weights = o.in_features * o.out_features;
          l.channels = o.out_features;
        } else {
          LB_FAIL("model '", name, "': node '", n.name, "' (", m->type_name(),
                  ") is already quantized; the planner reads float models (plan the float model file)");
        }
        l.in_elems = in_shape(n.inputs[0]).numel();
        l.out_elems = shapes[k].numel();
        for (size_t j = 0; j < k; ++j)  // outputs of earlier nodes read after this one (not its input)
          if (static_cast<int>(j) != n.inputs[0] && last_read[j] > static_cast<int>(k))
            l.live.emplace_back(shapes[j].numel(), node_t[j]);
        l.in_tensor = in_t(n.inputs[0]);
        l.out_tensor = node_t[k] = make(n.name);
        net.layers.push_back(l);
        break;
      }
      case nn::Planner::unsupported:
        LB_FAIL("model '", name, "': node '", n.name, "' (", m->type_name(), ") is not something the planner reads",
                m->kind() == nn::LayerKind::graph ? " (a nested graph)" : "");
      case nn::Planner::alias:  // batch norm (folded), activations, pooling, flatten, dropout: same tensor
      case nn::Planner::merge: {
        // add / concat: integer deployment needs equal formats on all inputs, so one tensor.
        const int t = find(in_t(n.inputs[0]));
        for (size_t j = 1; j < n.inputs.size(); ++j) parent[find(in_t(n.inputs[j]))] = t;
        node_t[k] = t;
        break;
      }
    }
  }
  LB_CHECK(!net.layers.empty(), "model '", name,
           "' has no conv2d or linear layers: nothing to plan (the planner chooses the bit widths of "
           "conv2d and linear layers and of the activations between them)");

  // Compact the tensors the layers use, in order of first use; mark the input and output fixed.
  const int in_root = find(input_t), out_root = find(node_t.back());
  std::map<int, int> index;
  auto compact = [&](int t) {
    const int r = find(t);
    auto it = index.find(r);
    if (it != index.end()) return it->second;
    const int id = static_cast<int>(net.tensors.size());
    index[r] = id;
    net.tensors.push_back({tname[r], r == in_root || r == out_root});
    return id;
  };
  for (PlanLayer& l : net.layers) {
    l.in_tensor = compact(l.in_tensor);
    l.out_tensor = compact(l.out_tensor);
    for (auto& [elems, t] : l.live) t = compact(t);
  }
  return net;
}

Network make_chain(const std::vector<ChainLayer>& layers, const std::string& name) {
  Network net;
  net.name = name;
  net.tensors.push_back({"input", true});
  for (size_t i = 0; i < layers.size(); ++i) {
    const ChainLayer& c = layers[i];
    net.layers.push_back({c.name, c.kind, c.weights, c.channels, c.in_elems, c.out_elems, static_cast<int>(i),
                          static_cast<int>(i) + 1, {}});
    net.tensors.push_back({c.name, i + 1 == layers.size()});
  }
  return net;
}

Bits all_8bit(const Network& net) {
  return {std::vector<int>(net.layers.size(), 8), std::vector<int>(net.tensors.size(), 8)};
}

// ---------------------------------------------------------------------------------------------
// Accounting.

int64_t packed_bytes(int64_t elems, int bits) { return (elems * bits + 7) / 8; }

int64_t paper_param_bytes(int64_t n, bool last, int weight_bits, int out_bits, Scaling s) {
  // The method's code (bias 32 bit, M0 32 bit, N0 8 bit, per-channel weight zero point 8 bit).
  if (s == Scaling::per_channel) return last ? 4 * n + n + 4 + 2 * n : 4 * n + n + 4 * n + n + 8;
  if (last) return 4 * n + 20;                               // bias + Zi, Zo, Zw, M0, N0
  if (weight_bits < 8 || out_bits < 8) return 4 * n + n + 4 * n + 12;  // ICN: M0, N0, bias + Zw, Zi, Zo
  return 4 * n + 20;                                         // folded into the weights
}

int64_t exact_param_bytes(int64_t n, Scaling s) {
  // int32 bias[n]; int32 M0[g]; then one byte each: shift[g], weight zero point[g], input and
  // output zero points; that byte block padded to 4. g = n per channel, 1 per layer.
  const int64_t g = s == Scaling::per_channel ? n : 1;
  return 4 * n + 4 * g + align4(2 * g + 2);
}

LayerCost layer_cost(const Network& net, const Bits& bits, size_t i, const PlanOptions& opt) {
  const PlanLayer& l = net.layers.at(i);
  const int wb = bits.weight.at(i), ib = bits.act.at(l.in_tensor), ob = bits.act.at(l.out_tensor);
  const bool last = i + 1 == net.layers.size();
  LayerCost c;
  if (opt.accounting == Accounting::paper) {
    c.weight_bits = l.weights * wb;
    // The method's first flash check counts the parameters as folded: all weights are still 8 bits
    // there, and it does not re-evaluate the folding after an activation cut (docs/mixed-precision.md).
    c.param_bits = 8 * paper_param_bytes(l.channels, last, wb, opt.paper_first_check ? 8 : ob, opt.scaling);
    c.ram_bits = l.in_elems * ib + l.out_elems * ob;
  } else {
    c.weight_bits = 8 * align4(packed_bytes(l.weights, wb));
    c.param_bits = 8 * exact_param_bytes(l.channels, opt.scaling);
    c.ram_bits = 8 * (align4(packed_bytes(l.in_elems, ib)) + align4(packed_bytes(l.out_elems, ob)));
    for (const auto& [elems, t] : l.live) c.ram_bits += 8 * align4(packed_bytes(elems, bits.act.at(t)));
  }
  return c;
}

namespace {

int64_t flash_bits(const Network& net, const Bits& b, const PlanOptions& opt) {
  int64_t s = 0;
  for (size_t i = 0; i < net.layers.size(); ++i) {
    const LayerCost c = layer_cost(net, b, i, opt);
    s += c.weight_bits + c.param_bits;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Activation pass (RAM): the sweeps of the method's cut_activation_footprint.

enum class ActStep { cut_out, cut_in, not_ok, stuck };

// What layer (ib, ob, in, out) does when over the limit. `in_fixed`: its input is the network input
// (the "first layer" rules); `out_fixed`: its output is the network output (the "last layer" rules).
ActStep decide(bool forward, bool in_fixed, bool out_fixed, int ib, int ob, int64_t in, int64_t out) {
  if (in_fixed && out_fixed) return ActStep::stuck;
  if (in_fixed) {  // first layer: the forward sweep cuts ob, the backward sweep leaves it
    if (ob <= kMinBits) return ActStep::stuck;
    return forward ? ActStep::cut_out : ActStep::not_ok;
  }
  if (out_fixed) {  // last layer: the backward sweep cuts ib (= ob of the layer before)
    if (ib <= kMinBits) return ActStep::stuck;
    return forward ? ActStep::not_ok : ActStep::cut_in;
  }
  if (ib == kMinBits && ob == kMinBits) return ActStep::stuck;
  // The direction that can fix it: "in" (backward) or "out" (forward).
  bool want_in;
  if (ib > ob && ib > kMinBits) want_in = true;
  else if (ib < ob && ob > kMinBits) want_in = false;
  else if (ib == ob) want_in = in * ib > out * ob && ib > kMinBits;  // equal bits: the larger tensor
  else if (ob > kMinBits) want_in = false;
  else if (ib > kMinBits) want_in = true;
  else return ActStep::stuck;
  if (want_in) return forward ? ActStep::not_ok : ActStep::cut_in;
  return forward ? ActStep::cut_out : ActStep::not_ok;
}

struct ActResult {
  int cuts = 0;
  int stuck_layer = -1;  // set when a layer cannot be fixed (only if the floor check was skipped)
};

ActResult activation_pass(const Network& net, const PlanOptions& opt, int64_t ram_limit, Bits& b,
                          std::vector<std::string>* steps) {
  ActResult r;
  const size_t L = net.layers.size();
  const int64_t cap = 8 * ram_limit;
  PlanOptions o = opt;
  o.ram_limit = ram_limit;
  size_t i = 0;
  bool forward = true;
  bool ok_net = false;  // as in the original: the first forward sweep is always followed by a backward one
  // Each sweep after one with a "not OK" mark cuts at least once, and there are at most
  // 2 * tensors cuts: this bounds the layer visits.
  const size_t max_visits = L * (4 * net.tensors.size() + 8);
  for (size_t visits = 0;; ++visits) {
    LB_CHECK(visits < max_visits, "internal error: the activation sweeps do not terminate");
    bool ok_layer = true;
    int64_t ram = layer_cost(net, b, i, o).ram_bits;
    while (ram > cap && ok_layer) {
      const PlanLayer& l = net.layers[i];
      int& ib = b.act[l.in_tensor];
      int& ob = b.act[l.out_tensor];
      const ActStep s = decide(forward, net.tensors[l.in_tensor].fixed, net.tensors[l.out_tensor].fixed, ib, ob,
                               l.in_elems, l.out_elems);
      const char* dir = forward ? "forward" : "backward";
      char buf[512];
      if (s == ActStep::stuck) {
        r.stuck_layer = static_cast<int>(i);
        return r;
      } else if (s == ActStep::not_ok) {
        ok_layer = false;
        if (steps) {
          std::snprintf(buf, sizeof buf, "act %-8s %s: not OK (RAM %s B, in %d / out %d bits), left to the %s sweep",
                        dir, layer_label(net, i).c_str(), group_digits(ceil_div8(ram)).c_str(), ib, ob,
                        forward ? "backward" : "forward");
          steps->push_back(buf);
        }
      } else {
        int& cut = s == ActStep::cut_out ? ob : ib;
        const int t = s == ActStep::cut_out ? l.out_tensor : l.in_tensor;
        if (steps) {
          std::snprintf(buf, sizeof buf, "act %-8s %s: RAM %s B > %s B: cut %s activation '%s' %d -> %d bits", dir,
                        layer_label(net, i).c_str(), group_digits(ceil_div8(ram)).c_str(),
                        group_digits(ram_limit).c_str(), s == ActStep::cut_out ? "output" : "input",
                        net.tensors[t].name.c_str(), cut, cut / 2);
          steps->push_back(buf);
        }
        cut /= 2;
        ++r.cuts;
      }
      ram = layer_cost(net, b, i, o).ram_bits;
    }
    if (!ok_layer) ok_net = false;
    if (forward) {
      if (i + 1 == L) {
        if (ok_net) break;
        forward = false;
        ok_net = true;
      } else {
        ++i;
      }
    } else {
      if (i == 0) {
        if (ok_net) break;
        forward = true;
        ok_net = true;
      } else {
        --i;
      }
    }
  }
  return r;
}

// Bits with every cuttable activation at 2 (the floor of the activation pass).
Bits act_floor(const Network& net) {
  Bits b = all_8bit(net);
  for (size_t t = 0; t < net.tensors.size(); ++t)
    if (!net.tensors[t].fixed) b.act[t] = kMinBits;
  return b;
}

// Runs the weight-cut sequence from `b` to the end (every layer at 2 bits) and returns the smallest
// flash footprint (bits) met on the way, the one the loop would stop at for the smallest limit.
int64_t min_flash_bits(const Network& net, Bits b, const PlanOptions& opt) {
  int64_t best = flash_bits(net, b, opt);
  for (int c; (c = next_weight_cut(net, b.weight)) >= 0;) {
    b.weight[c] /= 2;
    best = std::min(best, flash_bits(net, b, opt));
  }
  return best;
}

}  // namespace

int next_weight_cut(const Network& net, const std::vector<int>& wb) {
  const size_t L = net.layers.size();
  std::vector<double> f(L);
  double total = 0;
  for (size_t i = 0; i < L; ++i) {
    f[i] = static_cast<double>(net.layers[i].weights) * wb[i] / 8.0;
    total += f[i];
  }
  double max_share = -1;
  for (size_t i = 0; i < L; ++i)
    if (wb[i] > kMinBits) max_share = std::max(max_share, f[i] / total);
  if (max_share < 0) return -1;
  const double thr = max_share - kShareMargin;
  for (size_t i = 0; i < L; ++i)
    if (wb[i] > kMinBits && f[i] / total > thr) return static_cast<int>(i);
  return -1;  // unreachable: the largest share exceeds thr
}

// ---------------------------------------------------------------------------------------------

Plan plan(const Network& net, const PlanOptions& opt) {
  LB_CHECK(opt.flash_limit > 0, "the flash limit must be a positive number of bytes, got ", opt.flash_limit);
  LB_CHECK(opt.ram_limit > 0, "the RAM limit must be a positive number of bytes, got ", opt.ram_limit);
  LB_CHECK(!net.layers.empty(), "model '", net.name, "' has no conv2d or linear layers: nothing to plan");
  for (const PlanLayer& l : net.layers) {
    LB_CHECK(l.in_tensor >= 0 && l.in_tensor < static_cast<int>(net.tensors.size()) && l.out_tensor >= 0 &&
                 l.out_tensor < static_cast<int>(net.tensors.size()),
             "planner: layer '", l.name, "' names an activation tensor that does not exist");
    LB_CHECK(l.weights > 0 && l.channels > 0 && l.in_elems > 0 && l.out_elems > 0, "planner: layer '", l.name,
             "' has an empty weight or activation");
  }
  const size_t L = net.layers.size();
  Plan p;
  p.net = net;
  p.options = opt;
  p.bits = all_8bit(net);

  // Smallest RAM: every layer at its floor (2 bits where the method may cut). The sweeps only
  // stop on a layer already at its floor, so the limit is met iff every floor fits.
  const Bits floor = act_floor(net);
  std::vector<int64_t> floor_ram(L);
  for (size_t i = 0; i < L; ++i) {
    floor_ram[i] = layer_cost(net, floor, i, opt).ram_bits;
    p.min_ram = std::max(p.min_ram, ceil_div8(floor_ram[i]));
    if (floor_ram[i] > 8 * opt.ram_limit) p.ram_blockers.push_back(static_cast<int>(i));
  }

  if (!p.ram_blockers.empty()) {
    int worst = p.ram_blockers[0];
    for (int i : p.ram_blockers)
      if (floor_ram[i] > floor_ram[worst]) worst = i;
    p.failed = "RAM";
    p.fail_layer = worst;
    p.shortfall = ceil_div8(floor_ram[worst] - 8 * opt.ram_limit);
    Bits at_min = p.bits;
    activation_pass(net, opt, p.min_ram, at_min, nullptr);
    p.min_flash = ceil_div8(min_flash_bits(net, at_min, opt));
    const PlanLayer& l = net.layers[worst];
    const int fib = floor.act[l.in_tensor], fob = floor.act[l.out_tensor];
    std::string m = "the RAM limit " + fmt_bytes(opt.ram_limit) + " cannot be met: " + layer_label(net, worst) + " (" +
                    l.kind + ") needs " + fmt_bytes(ceil_div8(floor_ram[worst])) + " at the fewest bits the method allows (input " +
                    group_digits(l.in_elems) + " x " + std::to_string(fib) + " bits" +
                    (net.tensors[l.in_tensor].fixed ? " (network input)" : "") + " + output " +
                    group_digits(l.out_elems) + " x " + std::to_string(fob) + " bits" +
                    (net.tensors[l.out_tensor].fixed ? " (network output)" : "") + "), " +
                    group_digits(p.shortfall) + " B over the limit";
    if (p.ram_blockers.size() > 1) {
      m += "; " + std::to_string(p.ram_blockers.size() - 1) + " more layer" + (p.ram_blockers.size() > 2 ? "s" : "") +
           " cannot fit either:";
      size_t shown = 0;
      for (int i : p.ram_blockers) {
        if (i == worst) continue;
        if (shown == 5) {
          m += " and " + std::to_string(p.ram_blockers.size() - 1 - shown) + " more";
          break;
        }
        m += std::string(shown++ ? ", '" : " '") + net.layers[i].name + "' (" +
             group_digits(ceil_div8(floor_ram[i] - 8 * opt.ram_limit)) + " B over)";
      }
    }
    m += ". Smallest limits that would work: --ram " + std::to_string(p.min_ram) + " (" + human_bytes(p.min_ram) +
         "), and then --flash " + std::to_string(p.min_flash) + " (" + human_bytes(p.min_flash) + ")";
    p.message = m;
    return p;
  }

  // 1. Activations against RAM.
  ActResult ar = activation_pass(net, opt, opt.ram_limit, p.bits, &p.steps);
  LB_CHECK(ar.stuck_layer < 0, "internal error: the activation pass stopped at layer ", ar.stuck_layer,
           " although every layer fits at its floor");
  p.act_cuts = ar.cuts;

  // 2. Weights against flash. In `paper` accounting with per-layer scales the first check counts
  // every layer as folded, as the method's code does; a layer made ICN by an activation cut is
  // counted as such from the first weight cut on, and not at all when no weight cut is needed.
  p.min_flash = ceil_div8(min_flash_bits(net, p.bits, opt));
  PlanOptions first = opt;
  first.paper_first_check = opt.accounting == Accounting::paper && opt.scaling == Scaling::per_layer;
  int64_t fb = flash_bits(net, p.bits, first);
  while (fb > 8 * opt.flash_limit) {
    const int c = next_weight_cut(net, p.bits.weight);
    if (c < 0) break;
    char buf[512];
    std::snprintf(buf, sizeof buf, "weights %s: flash %s B > %s B: cut weights %d -> %d bits", layer_label(net, c).c_str(),
                  group_digits(ceil_div8(fb)).c_str(), group_digits(opt.flash_limit).c_str(), p.bits.weight[c],
                  p.bits.weight[c] / 2);
    p.steps.push_back(buf);
    p.bits.weight[c] /= 2;
    ++p.weight_cuts;
    fb = flash_bits(net, p.bits, opt);
  }

  // Per-layer figures and totals.
  int64_t wbits = 0;
  p.layers.resize(L);
  for (size_t i = 0; i < L; ++i) {
    LayerPlan& lp = p.layers[i];
    lp.weight_bits = p.bits.weight[i];
    lp.in_bits = p.bits.act[net.layers[i].in_tensor];
    lp.out_bits = p.bits.act[net.layers[i].out_tensor];
    lp.cost = layer_cost(net, p.bits, i, p.weight_cuts == 0 ? first : opt);
    wbits += lp.cost.weight_bits;
    if (lp.cost.ram_bits > (p.ram_peak_layer < 0 ? -1 : p.layers[p.ram_peak_layer].cost.ram_bits))
      p.ram_peak_layer = static_cast<int>(i);
  }
  p.flash_bytes = ceil_div8(fb);
  p.weight_bytes = ceil_div8(wbits);
  p.ram_bytes = p.layers[p.ram_peak_layer].cost.ram_bytes();

  if (fb > 8 * opt.flash_limit) {
    // Every layer is at 2 bits and it still does not fit.
    int biggest = 0;
    for (size_t i = 1; i < L; ++i)
      if (p.layers[i].cost.flash_bytes() > p.layers[biggest].cost.flash_bytes()) biggest = static_cast<int>(i);
    p.failed = "flash";
    p.fail_layer = biggest;
    p.shortfall = p.min_flash - opt.flash_limit;
    p.message = "the flash limit " + fmt_bytes(opt.flash_limit) +
                " cannot be met: with every layer's weights at 2 bits the network needs " + fmt_bytes(p.flash_bytes) +
                " (weights " + group_digits(p.weight_bytes) + " B + quantization parameters " +
                group_digits(p.flash_bytes - p.weight_bytes) + " B); the fewest bytes on the method's cut sequence are " +
                group_digits(p.min_flash) + ", " + group_digits(p.shortfall) + " B over the limit. The largest layer is " +
                layer_label(net, biggest) + " with " + fmt_bytes(p.layers[biggest].cost.flash_bytes()) +
                ". Smallest limits that would work: --flash " + std::to_string(p.min_flash) + " (" +
                human_bytes(p.min_flash) + ") with --ram " + std::to_string(opt.ram_limit) + "; the smallest RAM limit is " +
                std::to_string(p.min_ram) + " (" + human_bytes(p.min_ram) + ")";
    return p;
  }
  p.ok = true;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Sizes.

int64_t parse_byte_size(const std::string& text, const std::string& what) {
  // User input: plain messages without the C++ source location.
  const std::string hint =
      " (sizes are positive: plain bytes, or kB/KB, MB, GB = powers of 1000, or KiB, MiB, GiB = powers of 1024; "
      "e.g. 2MB = 2,000,000, 512kB = 512,000, 2MiB = 2,097,152)";
  auto fail = [&](const std::string& why) { throw Error(what + ": " + why + hint); };
  size_t i = 0;
  while (i < text.size() && text[i] == ' ') ++i;
  if (i < text.size() && text[i] == '-') fail("the size must be positive, got '" + text + "'");
  size_t j = i;
  while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
  const std::string num = text.substr(i, j - i);
  if (num.empty() || std::count(num.begin(), num.end(), '.') > 1 || num == ".")
    fail("'" + text + "' is not a size");
  while (j < text.size() && text[j] == ' ') ++j;
  const std::string unit = text.substr(j);
  static const std::vector<std::pair<std::string, double>> units{
      {"", 1},           {"B", 1},           {"kB", 1e3},        {"KB", 1e3},       {"MB", 1e6},
      {"GB", 1e9},       {"KiB", 1024.0},    {"MiB", 1048576.0}, {"GiB", 1073741824.0}};
  double mult = 0;
  for (auto& [u, m] : units)
    if (u == unit) mult = m;
  if (mult == 0) fail("unknown unit '" + unit + "' in '" + text + "'");
  const double v = std::stod(num) * mult;
  if (!(v > 0)) fail("the size must be positive, got '" + text + "'");
  if (v > 9.0e15) fail("'" + text + "' is too large");
  const double r = std::round(v);
  if (std::fabs(v - r) > 1e-6 * std::max(1.0, v)) fail("'" + text + "' is not a whole number of bytes");
  return static_cast<int64_t>(r);
}

std::string human_bytes(int64_t b) {
  char buf[64];
  if (b < 1024) {
    std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(b));
  } else if (b < 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.2f KiB", b / 1024.0);
  } else if (b < 1024LL * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  }
  return buf;
}

std::string group_digits(int64_t v) {
  const std::string s = std::to_string(v < 0 ? -v : v);
  std::string r = v < 0 ? "-" : "";
  for (size_t k = 0; k < s.size(); ++k) {
    if (k > 0 && (s.size() - k) % 3 == 0) r += ',';
    r += s[k];
  }
  return r;
}

}  // namespace lowbit::deploy
