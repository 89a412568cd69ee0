// Quantization metadata propagation (Brevitas' QuantTensor): what scale, zero point, bit width
// and signedness the output of every layer carries, given the quantizers' state after a forward.
//
//   quantizer (QuantAct, input_quant)   its scale / zero point / bits
//   conv2d / linear (quantized)         s_out = s_in * s_w (per output channel), signed,
//                                       bits = ceil(log2((2^b_in - 1)(2^b_w - 1) * K * C_in/groups)),
//                                       with a bias on the s_in*s_w grid max(bits, b_bias) + 1;
//                                       only with a per-tensor, zero-zero-point input and no float bias
//   relu, max pool, dropout, identity   unchanged (shape follows)
//   flatten / reshape                   per-channel (C) scales over (N, C, H, W) become per-feature
//                                       (C*H*W) scales (each repeated H*W times)
//   avg pool (k x k), global avg pool   scale / (k*k), bits ceil(log2((2^b - 1) * k*k))
//   add                                 equal scales: kept, bits + ceil(log2(inputs)); else none
//   concat                              identical per-tensor metadata: kept; else none
//   anything else (batch norm, float layers, sigmoid, ...): none, with the reason
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "nn/graph.h"
#include "quant/quantizer.h"

namespace lowbit::quant {

struct NodeMeta {
  std::string name, type;
  std::vector<QuantMeta> inputs;
  QuantMeta output;
};

// Metadata of the output of node `index` (-1: the graph input), from the quantizers' last
// forward. Cheap (small tensors only); used by bias quantizers with external scale during the
// forward itself.
QuantMeta node_output_meta(nn::Graph& g, int index);
// Metadata of every node's inputs and output after a forward (eval(x) or a training step).
std::vector<NodeMeta> trace_quant_meta(nn::Graph& g);
// One line per node: "conv1 quant_conv2d in: scale 0.0078 (1), 8 bit unsigned | out: ...".
std::string format_quant_meta(const std::vector<NodeMeta>& m);
std::string format_meta(const QuantMeta& m);

// Accumulator bit width of a dot product of `terms` products of b_in-bit inputs and b_w-bit
// weights: ceil(log2((2^b_in - 1) * (2^b_w - 1) * terms)).
int accumulator_bits(int b_in, int b_w, int64_t terms);

// The rule of a module that is not itself a producer of metadata (relu, pools, flatten, add...),
// applied to its input metadata; `in_shapes` are the input shapes.
QuantMeta propagate_meta(const nn::Module& m, const std::vector<QuantMeta>& in, const std::string& name);

// Wires every layer that needs its input's metadata during the forward (bias with external
// scale, accumulator width, truncating average pool) to the graph. apply_recipe() calls it; the
// layers keep a pointer to `g` and look their node up by name, so they must stay in it.
void connect_meta_sources(nn::Graph& g);

}  // namespace lowbit::quant
