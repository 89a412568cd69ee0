// The generated C99 of one network: <name>.h (the API) and <name>.c (constant parameters, the
// arena layout, one function per step). docs/mcu-export.md describes both.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "intnet/int_network.h"
#include "mcu/memory_plan.h"

namespace lowbit::mcu {

// The flash arrays of one step (bytes as written, each a multiple of 4).
struct StepBytes {
  int64_t weights = 0;  // packed weights
  int64_t params = 0;   // bias, multipliers, shifts, zero points, thresholds
  int64_t tables = 0;   // input and lookup tables
};

struct CSource {
  std::string header, source;
  std::vector<StepBytes> bytes;  // per step of the plan
};

// `pixel_values`: (C, 256), the float value the trained model saw for each byte value of each
// input channel (the run's test transforms). `source` is named in the files' first comment.
CSource write_c_source(const intnet::Network& net, const MemoryPlan& plan, const std::string& name,
                       const std::vector<float>& pixel_values, const std::string& source);

// Sub-byte packing of weights (docs/mixed-precision.md, "exact"): element i at bits
// [i*b, (i+1)*b), least significant first, padded with zero bytes to a multiple of 4.
std::vector<uint8_t> pack_weights(const intnet::WeightTensor& w);

}  // namespace lowbit::mcu
