// What the training loop needs from quantization beyond the layers themselves: the weight
// bit count and its differentiable regularizer (learned bit widths), and per-epoch switches
// (batch-norm folding after a delay).
#pragma once
#include <string>
#include <vector>

#include "nn/graph.h"

namespace lowbit::quant {

struct LayerBits {
  std::string layer;
  int64_t weights = 0;  // number of weights
  int bits = 32;        // 32 for a float layer
};
struct WeightBits {
  int64_t total_bits = 0;  // sum of weights * bits over conv2d/linear layers
  int64_t weights = 0;
  std::vector<LayerBits> layers;
};
// Weight-bit count of the model now (learned bit widths as they round today).
WeightBits weight_bits(nn::Graph& model);

// Bit-width (hardware cost) regularizer: sum_l numel_l * bits_l / sum_l numel_l over the
// quantized conv2d/linear layers, i.e. the mean weight bit width, with the learned bit widths
// of the last forward as Variables (d/d offset = numel_l / N * sign(offset)). Undefined when no
// weight quantizer has a learned bit width (nothing to regularize).
Variable weight_bit_cost(nn::Graph& model);

// "conv1 8, conv2 3, fc1 3, ... = 183,450 bits" for logs.
std::string weight_bits_summary(const WeightBits& b);

}  // namespace lowbit::quant
