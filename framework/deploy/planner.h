// Memory-driven mixed-precision planner (Rusci, Capotondi, Benini 2019, "Memory-Driven Mixed Low
// Precision Quantization for Enabling Deep Network Inference on Microcontrollers"; the MixPL and
// MixPC methods). Given a device's flash (read-only: weights + quantization parameters) and RAM
// (read-write: activations), it assigns every conv/linear layer a weight bit width and every
// activation tensor a bit width in {8, 4, 2} so the integer-only network fits:
//   1. activation cuts first, against RAM, with the method's forward/backward sweeps;
//   2. then weight cuts, against flash, always the lowest-index layer whose share of the weight
//      bytes is within 5 percentage points of the largest share.
// Limits that cannot be met end with the layer, the shortfall and the smallest limits that work
// (the original code loops forever or gives up silently there). docs/mixed-precision.md has the
// method, both accountings (`paper`, `exact`: the byte layout Lowbit's integer export emits) and
// the plan file; numbers here and there must agree.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/shape.h"

namespace lowbit::nn {
class Graph;
}

namespace lowbit::deploy {

// Which bytes are counted. `paper`: the overhead model of the method's code (results compare with
// the paper). `exact`: the arrays Lowbit's integer export writes (docs/mixed-precision.md).
enum class Accounting { paper, exact };
// Weight quantization granularity: per layer (MixPL) or per output channel (MixPC).
enum class Scaling { per_layer, per_channel };

const char* to_string(Accounting a);
const char* to_string(Scaling s);          // "per_layer" / "per_channel"
const char* method_name(Scaling s);        // "MixPL" / "MixPC"

// One conv or linear layer, in forward order.
struct PlanLayer {
  std::string name;
  std::string kind;            // conv2d | depthwise | grouped | linear
  int64_t weights = 0;         // w_i: weight elements (no bias)
  int64_t channels = 0;        // n_i: output channels (features for linear)
  int64_t in_elems = 0;        // in_i: elements of the input activation (one sample)
  int64_t out_elems = 0;       // out_i: elements of the output activation
  int in_tensor = 0;           // activation tensors whose bit width this layer reads / writes
  int out_tensor = 0;
  // Buffers that stay alive across this layer because a later node reads them (the shortcut of a
  // residual block): (elements, tensor). Counted in the `exact` RAM, not in the paper's model.
  std::vector<std::pair<int64_t, int>> live;
};

// An activation tensor as far as bit widths go. Buffers joined by layers that keep the integer
// format (batch norm, activations, pooling, flatten, dropout) or that need equal formats (add,
// concat) are one tensor: their bit widths are tied.
struct ActTensor {
  std::string name;            // the node that produces it ("input" for the network input)
  bool fixed = false;          // network input or output: stays at 8 bits
};

struct Network {
  std::string name;
  std::vector<PlanLayer> layers;
  std::vector<ActTensor> tensors;
};

// The planner's view of a model: every Conv2d / Linear node of `g` in order. `input` is (C, H, W).
// Throws lowbit::Error for an unknown (non-positive) input size or a model without conv/linear.
Network describe(const nn::Graph& g, const Shape& input, const std::string& name);

// A plain chain (tests, hand-made examples): layer i reads tensor i and writes tensor i + 1;
// tensor 0 (the input) and the last tensor (the output) are fixed at 8 bits.
struct ChainLayer {
  std::string name;
  int64_t weights, channels, in_elems, out_elems;
  std::string kind = "conv2d";
};
Network make_chain(const std::vector<ChainLayer>& layers, const std::string& name = "chain");

struct PlanOptions {
  int64_t flash_limit = 0;     // bytes, > 0
  int64_t ram_limit = 0;       // bytes, > 0
  Scaling scaling = Scaling::per_layer;
  Accounting accounting = Accounting::exact;
  // paper + per_layer only: count every layer's parameters as folded (4n + 20), as the method's
  // code does in its first flash check, before any weight cut (set by plan(), not by users).
  bool paper_first_check = false;
};

// Bit widths: one per layer for weights, one per activation tensor.
struct Bits {
  std::vector<int> weight;     // per layer
  std::vector<int> act;        // per tensor
};
Bits all_8bit(const Network& net);

// Costs of one layer under given bit widths. Flash = weight bytes + parameter bytes; RAM = input +
// output buffers. `*_bits` are exact (a paper-mode 2-bit buffer of 3 elements is 6 bits); the byte
// figures are rounded up.
struct LayerCost {
  int64_t weight_bits = 0;     // paper: w*wb; exact: 8 * packed, 4-byte-aligned bytes
  int64_t param_bits = 0;      // 8 * quantization-parameter bytes
  int64_t ram_bits = 0;        // paper: in*ib + out*ob; exact: 8 * aligned buffer bytes
  int64_t weight_bytes() const { return (weight_bits + 7) / 8; }
  int64_t param_bytes() const { return (param_bits + 7) / 8; }
  int64_t flash_bytes() const { return (weight_bits + param_bits + 7) / 8; }
  int64_t ram_bytes() const { return (ram_bits + 7) / 8; }
};
LayerCost layer_cost(const Network& net, const Bits& bits, size_t layer, const PlanOptions& opt);

// Bytes of the quantization parameters of one layer (both accountings; see the docs' tables).
int64_t paper_param_bytes(int64_t channels, bool last, int weight_bits, int out_bits, Scaling s);
int64_t exact_param_bytes(int64_t channels, Scaling s);
// Packed sub-byte array: ceil(elems * bits / 8) bytes (no alignment).
int64_t packed_bytes(int64_t elems, int bits);

struct LayerPlan {
  int weight_bits = 8, in_bits = 8, out_bits = 8;
  LayerCost cost;
};

struct Plan {
  bool ok = false;
  Network net;
  PlanOptions options;
  Bits bits;
  std::vector<LayerPlan> layers;
  int64_t flash_bytes = 0;     // total (weights + parameters), rounded up once
  int64_t weight_bytes = 0;    // weights only
  int64_t ram_bytes = 0;       // peak over layers
  int ram_peak_layer = -1;
  int act_cuts = 0, weight_cuts = 0;
  std::vector<std::string> steps;  // every cut and every "not OK" mark, in order (for --verbose)

  // Smallest limits under which this planner succeeds on this network: `min_ram` is the largest
  // per-layer RAM with every cuttable activation at 2 bits; `min_flash` is the smallest flash
  // footprint along the weight-cut sequence, given the activation bits planned for
  // max(ram_limit, min_ram). Always filled.
  int64_t min_ram = 0, min_flash = 0;

  // When !ok: what failed ("RAM" or "flash"), the layer that cannot fit (-1 when no single layer
  // is to blame), the bytes over the limit, and a complete message.
  std::string failed;
  int fail_layer = -1;
  int64_t shortfall = 0;
  std::vector<int> ram_blockers;   // every layer whose RAM exceeds the limit even at 2 bits
  std::string message;
};

// Runs the method. Throws lowbit::Error for invalid options (limits <= 0, empty network);
// infeasible limits are a Plan with ok == false, not an exception.
Plan plan(const Network& net, const PlanOptions& opt);

// The layer the weight pass cuts next: the lowest-index layer still above 2 bits whose share of
// the weight bytes (w_i * wb_i / 8 over all layers) exceeds max(share) - 0.05; -1 when every
// layer is at 2 bits.
int next_weight_cut(const Network& net, const std::vector<int>& weight_bits);

// --- sizes ---------------------------------------------------------------------------------
// "2MB" (2,000,000), "512kB" / "512KB" (512,000), "2MiB" (2,097,152), "512KiB", "1.5MB",
// "2048000", "100B". Throws lowbit::Error naming `what` for anything else, zero or negatives.
int64_t parse_byte_size(const std::string& text, const std::string& what);
// "1.87 MiB", "500.00 KiB", "512 B" (binary units).
std::string human_bytes(int64_t bytes);
// "2,568,144".
std::string group_digits(int64_t v);

}  // namespace lowbit::deploy
