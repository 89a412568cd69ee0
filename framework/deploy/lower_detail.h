// Internals of the lowering (deploy/lower.h), shared by its source files.
#pragma once
#include <string>
#include <vector>

#include "deploy/lower.h"
#include "quant/quant_layers.h"

namespace lowbit::deploy::detail {

// What a trained node's output is in the integer network under construction.
struct State {
  enum class Kind { none, integer, affine };
  Kind kind = Kind::none;
  int value = -1;             // integer: the value on the node's grid; affine: the int32 accumulator
  // affine: real[c] = a[c] * acc[c] + b[c], per channel (dim 0 of the value); b is what is
  // still to be rounded into the accumulator's int32 bias.
  std::vector<double> a, b;
  int producer = -1;          // affine: index in net.nodes of the conv / matmul writing the accumulator
  bool consumed = false;      // affine: a requantization has read it (its bias is final)
  bool rounded_bias = false;  // affine: b holds a float bias or a batch-norm shift (rounded when folded)
  std::string why;            // none: why the output has no integer form
};

struct Lowerer {
  nn::Graph& g;
  const std::string& model;
  const LowerOptions& opt;
  LoweredModel out;
  std::vector<State> states;
  std::vector<Shape> shapes;  // per node: output shape (N = 1)

  // Throws "cannot lower MODEL to integers: layer NAME (TYPE): WHY. Fix: FIX".
  [[noreturn]] void refuse(int node, const std::string& why, const std::string& fix) const;
  const State& input_state(int node, size_t k) const;
  // Appends a node writing the new value `y`; returns y's id.
  int emit(intnet::OpKind op, const std::string& name, std::vector<int> inputs, intnet::Value y,
           intnet::Attrs attrs = intnet::NoAttrs{});
  std::vector<int64_t> sample_shape(int node) const;  // output shape without N
};

inline State integer_state(int value) {
  State s;
  s.kind = State::Kind::integer;
  s.value = value;
  return s;
}

inline State none_state(std::string why) {
  State s;
  s.why = std::move(why);
  return s;
}

// The elements of a float tensor (quantizer scales, fake-quant weights), contiguous.
std::vector<float> floats_of(const Tensor& t);

// "quantizer relu1.act_quant (Uint8ActPerTensorFloat)".
std::string quantizer_name(const quant::Quantizer& q);
// A number for messages: 6 significant digits ("0.0123", "6.7e-12", "nan").
std::string number(double v);

// conv2d / linear with its weight (and bias) quantizers: an accumulator (affine state).
State lower_weight_layer(Lowerer& L, int node, quant::QuantWeightLayer& layer, const State& in);
// Every other layer kind (lower_layers.cpp); activation quantizers are lowered in lower.cpp.
State lower_node(Lowerer& L, int node);
// Requantizes the output of trained node `src` onto quantizer q's grid (no activation clamp).
int requantize_to_grid(Lowerer& L, int node, int src, quant::Quantizer& q, const std::string& name);
// Rounds the pending bias b of an affine state into its producer's int32 bias (b becomes 0).
// With `fine`, a float bias or batch-norm shift gets up to 16 more fraction bits: the producer's
// dot product is scaled by 2^acc_shift (as far as the int32 range proof allows) and the state's
// multipliers a divided by it, so the rounding is far below one LSB of the requantized output.
void fold_pending_bias(Lowerer& L, int node, State& s, bool fine);

}  // namespace lowbit::deploy::detail
