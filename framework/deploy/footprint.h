// The flash and RAM of an integer network under the planner's `exact` accounting
// (docs/mixed-precision.md, "exact"): what `lowbit inspect --integer` reports and what a
// `quant.plan` run is checked against.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "intnet/int_network.h"

namespace lowbit::deploy {

struct LayerFootprint {
  std::string name;           // the conv / matmul node
  int64_t weight_bytes = 0;   // align4(ceil(w * bits / 8))
  int64_t param_bytes = 0;    // bias, multiplier, shift, zero points (4n + 4g + align4(2g + 2)); a threshold after it:
                              // bias + int32 thresholds (+ align4(n) descending flags); neither: 4n
  int64_t ram_bytes = 0;      // align4(input buffer) + align4(output buffer) + buffers alive across it, at their
                              // storage bits (intnet::storage_bits)
  int in_bits = 8, out_bits = 8, weight_bits = 8;
  bool requantized = true;    // false: the last layer, int32 logits (no multiplier; a 32-bit output buffer)
};

struct Footprint {
  std::vector<LayerFootprint> layers;  // every conv / matmul, in order
  int64_t flash_bytes = 0;             // sum of weights + parameters
  int64_t ram_bytes = 0;               // the largest layer RAM
  std::string ram_layer;
};

// Per conv / matmul node: its input value, its weights, and the requantization that reads its
// accumulator (if any) for the output buffer's bits and the multiplier count.
Footprint exact_footprint(const intnet::Network& net);

}  // namespace lowbit::deploy
