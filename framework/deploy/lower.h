// Lowering: a trained QAT model (nn::Graph with quantized layers) -> the integer network
// (intnet/int_network.h). Runs once per export / verification; reads the layer-kind table's
// `lowering` column to decide what each layer becomes.
//
// How the fake-quant model maps to integers:
//   input quantizer            quantize (float -> int), the quantizer's own float arithmetic
//   conv2d / linear            integer weights round(W_fq / s_w), int32 accumulator on s_in * s_w[c];
//                              an Int32Bias bias is added as its integers; a float bias (or
//                              the bias of a batch norm folded during QAT) stays pending
//   batch norm (not folded)    pending affine on the accumulator: gamma / sigma goes into the
//                              per-channel multiplier (Integer Channel Normalization, sign in M0),
//                              the shift into the int32 bias
//   activation quantizer       requantize: M[c] = s_acc[c] / s_out (pending bias rounded into
//                              the int32 bias), relu / relu6 / hardtanh as the clamp bounds;
//                              other activations on a small integer input become a lookup table
//   max / avg pool, flatten    max_pool, avg_pool (window sum; truncation as the quantizer's),
//                              reshape
//   add / concat               inputs requantized to the shared quantizer's grid, then add / concat
//   the last layer             its int32 accumulator (bias folded) with the scale per channel
// Anything without an integer equivalent is refused with the layer's name, the reason and the
// recipe change that fixes it.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/shape.h"
#include "intnet/int_network.h"
#include "nn/graph.h"

namespace lowbit::deploy {

struct LowerOptions {
  // single is the default: x * M rounded once reproduces the fake-quant model's rounding, where
  // TFLM's double rounding changes about 1 in 20,000 requantized integers and the change spreads
  // through a deep 4-bit network (docs/integer-network.md has the measurements).
  intnet::RequantRounding rounding = intnet::RequantRounding::single;
};

struct LoweredModel {
  intnet::Network net;
  // Per node of the trained graph: the integer value that holds the same numbers on that value's
  // grid (real = (q - zp) * scale), or -1 where the node's output has no integer counterpart of
  // its own (a float accumulator before its batch norm, a quantizer fused into a later node).
  std::vector<int> node_value;
  std::vector<std::string> notes;  // what the lowering approximated (a float bias rounded to int32, ...)
  // Floor rounding: per accumulator value, the integers added to each channel's bias so that
  // floor(M * acc) rounds to nearest (half an output step); comparisons subtract them.
  std::map<int, std::vector<int32_t>> rounding_offset;
};

// `model` must be in eval mode and have run one forward on real inputs (the quantizers' scales
// and metadata); `input` is the per-sample input shape (C, H, W). Throws a lowbit::Error naming the
// layer, the reason and the fix when a layer has no integer equivalent.
LoweredModel lower(nn::Graph& model, const Shape& input, const std::string& name, const LowerOptions& opt = {});

// Whether an untrained model (fresh from a recipe) has an integer form: a few training-mode
// forwards of random inputs set its quantizers' statistics, then it is lowered. Changes the
// model's quantizer state, so give it a model of its own. Returns "" when it lowers, else the
// refusal (layer, reason, fix) without the source location.
std::string lowering_refusal(nn::Graph& model, const Shape& input, const std::string& name, const LowerOptions& opt = {});

}  // namespace lowbit::deploy
