// The integer network: the contract between training and every exporter (MCU C, FPGA RTL, ONNX).
//
// A plain graph IR. Values are integer tensors (what the numbers mean: real = (q - zp) * scale);
// nodes read values and write one value, with typed attributes per op. It knows nothing of nn/
// or quant/: deploy/lower.h builds it once from a trained QAT model, intnet/engine.h executes it,
// and exporters walk it. An exporter's test compares its artifact with the engine bit for bit.
//
// Layout: per-sample shapes without the batch dimension, channels first: (C, H, W) for feature
// maps, (F) for vectors. Weights: conv (C_out, C_in/groups, KH, KW), matmul (out, in), one int8
// per element whatever the bit width (packing is the exporter's business).
//
// Ops (y is the output value, x the inputs):
//   quantize    float input -> integers: q = clamp(round(x / scale + zp), lo, hi) with the
//               quantizer's own float32 arithmetic and rounding (kernels/common/fake_quant_math.h)
//   conv2d      y[c] = bias[c] + 2^acc_shift * sum w[c, ...] * (x[...] - x_zp)   int32 accumulator
//   matmul      y[o] = bias[o] + 2^acc_shift * sum_i w[o, i] * (x[i] - x_zp)     int32 accumulator
//               (acc_shift > 0 gives a float bias or batch-norm shift acc_shift more fraction bits
//               than the dot product's grid, so it is rounded far finer than one LSB)
//   requantize  y[c] = clamp(requant(x[c] - x_zp, m0[c], shift[c]) + y_zp, lo, hi)
//               (kernels/common/requant_math.h, the network's rounding mode)
//   max_pool    window max (padding never wins)
//   avg_pool    window sum of (x - x_zp), then floor-shift by `shift` and clamp to [lo, hi]
//               (the output's scale is the input's * 2^shift / window)
//   add         y = sum of (x_k - zp_k); inputs on one scale
//   concat      channel concatenation; inputs on one grid
//   reshape     the same integers in another shape (flatten)
//   lut         y = table[x - in_lo]: any function of a small integer input
//   threshold   y[c] = base + step * #{k : x[c] >= t[c][k]} (#{k : x[c] <= t[c][k]} on channels
//               marked descending): FINN's MultiThreshold; a binary (bipolar) activation is one
//               threshold per channel with base -1, step 2
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "kernels/common/fake_quant_math.h"
#include "kernels/common/requant_math.h"

namespace lowbit::intnet {

using kernels::RequantRounding;

const char* rounding_name(RequantRounding r);
// "tflm", "single" or "floor"; throws a lowbit::Error listing them otherwise.
RequantRounding parse_rounding(const std::string& s);

// An integer tensor of the network (the batch dimension is not part of it).
struct Value {
  std::string name;            // the trained model's node whose output it is ("relu1"), or a derived name
  std::vector<int64_t> shape;  // per sample: (C, H, W) or (F)
  int bits = 32;               // integers fit `bits` bits (signed or not), within [lo, hi]
  bool is_signed = true;
  int64_t lo = INT32_MIN, hi = INT32_MAX;  // range every element is proven to lie in
  // real = (q - zero_point[c]) * scale[c]; one entry (per tensor) or shape[0] entries (per
  // channel, or per feature after a flatten). Positive, except on an int32 accumulator whose
  // batch norm has a negative gamma (the network's last layer, unrequantized).
  std::vector<double> scale{1.0};
  std::vector<int32_t> zero_point{0};
  int64_t numel() const;
  double scale_of(int64_t channel) const { return scale.size() == 1 ? scale[0] : scale.at(static_cast<size_t>(channel)); }
  int32_t zero_point_of(int64_t channel) const {
    return zero_point.size() == 1 ? zero_point[0] : zero_point.at(static_cast<size_t>(channel));
  }
};

enum class OpKind : uint8_t { quantize, conv2d, matmul, requantize, max_pool, avg_pool, add, concat, reshape, lut, threshold };
const char* op_name(OpKind k);

// Float -> integer at the network input (per tensor).
struct QuantizeAttrs {
  float scale = 1.f;   // float32, exactly as the quantizer divides by it
  float zero_point = 0.f;
  kernels::FakeQuantElem elem;  // range (qmin/qmax), rounding, division form, fused clamp
};

enum class WeightKind : uint8_t {
  integer,  // two's complement in `bits` bits
  bipolar,  // binary weights stored as -1 / +1 (1 bit each: 0 means -1)
  ternary,  // -1 / 0 / +1 (2 bits)
};
const char* weight_kind_name(WeightKind k);

struct WeightTensor {
  std::vector<int64_t> shape;  // conv (C_out, C_in/groups, KH, KW), matmul (out, in)
  std::vector<int8_t> data;    // row-major, one element per entry
  int bits = 8;
  WeightKind kind = WeightKind::integer;
  std::vector<double> scale;   // per output channel (or one): real weight = w * scale
  int64_t out_channels() const { return shape.empty() ? 0 : shape[0]; }
  int64_t per_output() const;  // elements per output channel
  // Bytes on a device with sub-byte packing (bits per element, rounded up per tensor).
  int64_t packed_bytes() const;
};

struct ConvAttrs {
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0, pad_bottom = 0,
          pad_right = 0, dil_h = 1, dil_w = 1, groups = 1;
  WeightTensor weight;
  std::vector<int32_t> bias;  // (C_out) on the accumulator grid s_in * s_w[c]
  int32_t input_zero_point = 0;
  int acc_shift = 0;          // the dot product is scaled by 2^acc_shift before the bias is added
  int64_t acc_bound = 0;      // proven max |accumulator| (bias included)
};

struct MatmulAttrs {
  WeightTensor weight;        // (out, in)
  std::vector<int32_t> bias;  // (out)
  int32_t input_zero_point = 0;
  int acc_shift = 0;          // as in ConvAttrs
  int64_t acc_bound = 0;
};

struct RequantizeAttrs {
  // Per output channel (or one): M[c] = m0[c] * 2^(shift[c] - 31); multiplier[c] keeps the
  // real M the pair stands for (reports; the engine uses only m0 / shift).
  std::vector<int32_t> m0;
  std::vector<int8_t> shift;
  std::vector<double> multiplier;
  int32_t input_zero_point = 0, output_zero_point = 0;
  int32_t lo = INT32_MIN, hi = INT32_MAX;  // output clamp (the output grid's range and any activation)
  bool pow2 = false;          // every M is a power of two: a pure (rounding) shift
  int64_t input_bound = 0;    // proven max |x - input_zero_point|
};

struct PoolAttrs {
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  // avg_pool: the window sum of (x - input_zero_point) loses `shift` low bits (floor) and is
  // clamped to [lo, hi]; padding counts as zero.
  int32_t input_zero_point = 0;
  int shift = 0;
  int32_t lo = INT32_MIN, hi = INT32_MAX;
};

struct LutAttrs {
  int32_t in_lo = 0;            // table[i] is the output for input in_lo + i
  std::vector<int32_t> table;
};

struct ThresholdAttrs {
  int64_t per_channel = 1;           // thresholds per channel (K)
  std::vector<int64_t> thresholds;   // (C, K) row-major, ascending per channel (descending channels: descending)
  std::vector<uint8_t> descending;   // per channel: 1 counts x <= t (a negative scale: batch norm gamma < 0)
  int32_t base = 0, step = 1;        // output = base + step * count
};

struct NoAttrs {};

using Attrs = std::variant<NoAttrs, QuantizeAttrs, ConvAttrs, MatmulAttrs, RequantizeAttrs, PoolAttrs, LutAttrs,
                           ThresholdAttrs>;

struct Node {
  OpKind op = OpKind::reshape;
  std::string name;         // unique; the trained layer it comes from, with a suffix where one layer makes several
  std::vector<int> inputs;  // value ids
  int output = -1;          // value id
  Attrs attrs;
};

struct Network {
  std::string name;          // the model's name
  RequantRounding rounding = RequantRounding::single;
  std::vector<int64_t> input_shape;  // per-sample float input (C, H, W)
  std::vector<Value> values;
  std::vector<Node> nodes;   // in execution order: a node's inputs are the network input's
                             // quantize node or earlier nodes' outputs
  int output = -1;           // value id of the network's output (int32 logits and their scale)

  int add_value(Value v);
  // Appends a node and returns its output value id.
  int add_node(Node n);
  const Value& value(int id) const { return values.at(static_cast<size_t>(id)); }
  // Consistency of ids, shapes and attributes; throws a lowbit::Error naming the node.
  void validate() const;
  // Bytes of weights + biases + requantization parameters (packed sub-byte weights).
  int64_t parameter_bytes() const;
};

// Bits per element of a value in memory (exporters, the planner's exact accounting): 1-8 bits
// packed at their width, 9-16 bits as int16, wider as int32.
inline int storage_bits(int bits) { return bits <= 8 ? bits : (bits <= 16 ? 16 : 32); }

// Bits of a signed integer that holds every value in [-bound, bound].
int signed_bits_for(int64_t bound);

}  // namespace lowbit::intnet
