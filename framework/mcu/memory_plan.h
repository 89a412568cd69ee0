// How an integer network runs on a microcontroller: the steps of the generated C (IR nodes fused
// where the int32 accumulator never needs memory), how each value is stored, and one static arena
// laid out from the buffers' lifetimes.
//
// Fusions: conv2d / matmul / add whose only reader is a requantize (or a threshold) run as one
// step that never stores the accumulator; reshape is an alias (same bytes). Pools and elementwise
// steps write over their input when the input dies there, the storage is the same and no later
// output of the step reads an overwritten element (checked element by element).
//
// Storage: values of 1-8 bits are packed at their bit width (element i at bits [i*b, (i+1)*b)
// of the byte string, least significant first, as the weights: docs/mcu-export.md); 9-16 bits as
// int16, wider as int32. Every buffer is a multiple of 4 bytes and starts 4-byte aligned, which is
// the planner's `exact` accounting (docs/mixed-precision.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "intnet/int_network.h"

namespace lowbit::mcu {

enum class Encoding : uint8_t { twos, unsigned_int, bipolar };  // bipolar: bit 1 = +1, bit 0 = -1

struct Storage {
  int bits = 32;  // 1-8 (packed), 16 or 32
  Encoding enc = Encoding::twos;
};
// Throws a lowbit::Error naming the value when its range does not fit its bits and sign.
Storage storage_of(const intnet::Value& v);
// align4(ceil(numel * bits / 8))
int64_t storage_bytes(const intnet::Value& v);

enum class StepKind : uint8_t { input, conv, matmul, requantize, max_pool, avg_pool, add, concat, lut, threshold };
const char* step_kind_name(StepKind k);

struct Step {
  StepKind kind = StepKind::input;
  int node = -1;           // the IR node it runs (the conv / matmul / add of a fused pair)
  int post = -1;           // the requantize / threshold node fused after it, or -1
  std::vector<int> inputs; // value ids read
  int output = -1;         // value id written
  bool in_place = false;   // the output overwrites input 0
  std::string name;        // the IR node whose value it writes
  int64_t macs = 0;        // multiply-accumulates per inference (conv / matmul)
};

// A region of the arena and the values that live in it (aliases and in-place outputs share one).
struct Buffer {
  int64_t offset = 0;
  int64_t bytes = 0;       // the largest of its values
  std::vector<int> values;
};

struct MemoryPlan {
  std::vector<Step> steps;
  std::vector<int> buffer_of_value;  // per value id: its buffer, -1 when it is never stored
  std::vector<int> step_of_value;    // per value id: the step that writes it (-1: not stored)
  std::vector<int> last_read;        // per value id: the last step that reads it (the output: past the end)
  std::vector<Buffer> buffers;
  int64_t arena_bytes = 0;           // the largest end offset
};

// Throws a lowbit::Error naming the node for a network the exporter cannot run.
MemoryPlan plan_memory(const intnet::Network& net);

}  // namespace lowbit::mcu
