// The layer-kind table: one row per kind of layer, read by every folder that needs to know what a
// layer is (quant/ for quantization metadata and the recipe, deploy/ for the planner and the
// integer lowering, persist/ for weight import/export) instead of comparing type names or casting.
//
// Adding a layer: a module class whose kind() returns a new LayerKind, a row in kLayerTable (the
// static_asserts below fail until the row exists, in enum order, with every column set) and its
// tests. Switches over the column enums have no default, so -Wswitch names every place that must
// learn a new column value. See docs/adding-a-layer.md.
//
// Rule: ask the table for properties; cast to a concrete class only to call that class's own API
// (a conv's geometry, a quantizer's config).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lowbit::nn {

enum class LayerKind : uint8_t {
  // Float layers: the `type:`s of model files.
  conv2d, linear, batch_norm2d, batch_norm1d,
  relu, relu6, hardtanh, leaky_relu, hardswish, tanh, sigmoid, identity,
  max_pool2d, avg_pool2d, global_avg_pool2d, flatten, dropout, add, concat,
  graph,
  // Quantized layers (classes in quant/), made from the float layers by a quant: recipe.
  quant_conv2d, quant_linear, quant_act, quant_add, quant_concat, quant_avg_pool2d, quant_scale_bias,
  foldable_batch_norm, quantizer,
};
inline constexpr int kLayerKindCount = 29;

// Whether a layer has weights, and their layout (import/export, planner, lowering).
enum class Weights : uint8_t {
  none,
  conv_oihw,  // (C_out, C_in/groups, KH, KW) + bias (C_out); Keras HWIO / depthwise HWCM on import
  linear_oi,  // (out, in) + bias (out); Keras (in, out) on import
};

// How the integer grid (scale, zero point, bits) of a layer's input reaches its output.
enum class Grid : uint8_t {
  keep,            // the same grid (relu, max pool, dropout, identity)
  keep_flatten,    // the same grid; per-channel scales become per-feature scales
  window_average,  // average pool: scale / window size, bits grow by log2(window)
  sum,             // add: all inputs on one grid; bits + ceil(log2(inputs))
  concat,          // concat: all inputs on one grid with the same bits and sign
  own_quantizer,   // a quantized layer: its own quantizers define the output grid
  folded_bn,       // batch norm folded into the conv before it: the identity once folded
  breaks,          // a float output (float weights, batch norm, tanh, ...): no integer grid
};

// How the mixed-precision planner counts a layer.
enum class Planner : uint8_t {
  weight_layer,  // weights in flash, an activation tensor in RAM
  alias,         // output shares the input's tensor (elementwise, pooling, flatten)
  merge,         // several inputs, one output tensor (add, concat)
  unsupported,   // refused (a nested graph)
};

// What a layer becomes in the integer network.
enum class Lowering : uint8_t {
  conv,        // integer convolution + requantization
  matmul,      // integer matrix product + requantization
  clamp,       // a clamp on the integer grid (relu, relu6, hardtanh)
  lut,         // a 2^bits-entry lookup table from the input grid to the output grid
  max_pool,    // integer max pool
  avg_pool,    // integer sum pool + requantization
  reshape,     // no arithmetic (flatten)
  identity,    // dropped (dropout, identity, a folded batch norm)
  add,         // integer add of inputs on one grid
  concat,      // channel concatenation of inputs on one grid
  fold,        // folded into the weight layer before it (batch norm)
  quantize,    // the model input's quantizer: float -> integer
  container,   // a graph: its nodes are lowered
  none,        // not a layer of the integer network (a quantizer inside a layer)
};

struct LayerTraits {
  LayerKind kind;
  std::string_view name;  // the model-file type ("conv2d"); for quantized kinds, the layer's type name
  bool model_file;        // a model YAML can name it
  bool multi_input;       // takes >= 2 inputs (add, concat)
  Weights weights;
  Grid grid;
  bool non_negative;      // the output is >= 0 for every input (relu, relu6, sigmoid)
  Planner planner;
  Lowering lowering;
};

namespace layer_table_detail {
using K = LayerKind;
using W = Weights;
using G = Grid;
using P = Planner;
using L = Lowering;
// One row: every column is an argument, so a row cannot leave one out.
constexpr LayerTraits row(K k, std::string_view name, bool model_file, bool multi, W w, G g, bool nonneg, P p, L l) {
  return LayerTraits{k, name, model_file, multi, w, g, nonneg, p, l};
}
}  // namespace layer_table_detail

// clang-format off
inline constexpr std::array<LayerTraits, kLayerKindCount> kLayerTable = [] {
  using namespace layer_table_detail;
  return std::array<LayerTraits, kLayerKindCount>{{
  //   kind                  name                 file   multi  weights        grid               >=0    planner            lowering
  row(K::conv2d,            "conv2d",            true,  false, W::conv_oihw,  G::breaks,         false, P::weight_layer,   L::conv),
  row(K::linear,            "linear",            true,  false, W::linear_oi,  G::breaks,         false, P::weight_layer,   L::matmul),
  row(K::batch_norm2d,      "batch_norm2d",      true,  false, W::none,       G::breaks,         false, P::alias,          L::fold),
  row(K::batch_norm1d,      "batch_norm1d",      true,  false, W::none,       G::breaks,         false, P::alias,          L::fold),
  row(K::relu,              "relu",              true,  false, W::none,       G::keep,           true,  P::alias,          L::clamp),
  row(K::relu6,             "relu6",             true,  false, W::none,       G::breaks,         true,  P::alias,          L::clamp),
  row(K::hardtanh,          "hardtanh",          true,  false, W::none,       G::breaks,         false, P::alias,          L::clamp),
  row(K::leaky_relu,        "leaky_relu",        true,  false, W::none,       G::breaks,         false, P::alias,          L::lut),
  row(K::hardswish,         "hardswish",         true,  false, W::none,       G::breaks,         false, P::alias,          L::lut),
  row(K::tanh,              "tanh",              true,  false, W::none,       G::breaks,         false, P::alias,          L::lut),
  row(K::sigmoid,           "sigmoid",           true,  false, W::none,       G::breaks,         true,  P::alias,          L::lut),
  row(K::identity,          "identity",          true,  false, W::none,       G::keep,           false, P::alias,          L::identity),
  row(K::max_pool2d,        "max_pool2d",        true,  false, W::none,       G::keep,           false, P::alias,          L::max_pool),
  row(K::avg_pool2d,        "avg_pool2d",        true,  false, W::none,       G::window_average, false, P::alias,          L::avg_pool),
  row(K::global_avg_pool2d, "global_avg_pool2d", true,  false, W::none,       G::window_average, false, P::alias,          L::avg_pool),
  row(K::flatten,           "flatten",           true,  false, W::none,       G::keep_flatten,   false, P::alias,          L::reshape),
  row(K::dropout,           "dropout",           true,  false, W::none,       G::keep,           false, P::alias,          L::identity),
  row(K::add,               "add",               true,  true,  W::none,       G::sum,            false, P::merge,          L::add),
  row(K::concat,            "concat",            true,  true,  W::none,       G::concat,         false, P::merge,          L::concat),
  row(K::graph,             "graph",             false, false, W::none,       G::breaks,         false, P::unsupported,    L::container),
  row(K::quant_conv2d,      "quant_conv2d",      false, false, W::conv_oihw,  G::own_quantizer,  false, P::weight_layer,   L::conv),
  row(K::quant_linear,      "quant_linear",      false, false, W::linear_oi,  G::own_quantizer,  false, P::weight_layer,   L::matmul),
  row(K::quant_act,         "quant_act",         false, false, W::none,       G::own_quantizer,  false, P::alias,          L::quantize),
  row(K::quant_add,         "quant_eltwise_add", false, true,  W::none,       G::own_quantizer,  false, P::merge,          L::add),
  row(K::quant_concat,      "quant_cat",         false, true,  W::none,       G::own_quantizer,  false, P::merge,          L::concat),
  row(K::quant_avg_pool2d,  "quant_avg_pool2d",  false, false, W::none,       G::own_quantizer,  false, P::alias,          L::avg_pool),
  row(K::quant_scale_bias,  "quant_scale_bias",  false, false, W::none,       G::own_quantizer,  false, P::alias,          L::fold),
  row(K::foldable_batch_norm, "batch_norm2d",    false, false, W::none,       G::folded_bn,      false, P::alias,          L::fold),
  row(K::quantizer,         "quantizer",         false, false, W::none,       G::own_quantizer,  false, P::unsupported,    L::none),
  }};
}();
// clang-format on

constexpr bool layer_table_in_enum_order() {
  for (int i = 0; i < kLayerKindCount; ++i)
    if (static_cast<int>(kLayerTable[static_cast<size_t>(i)].kind) != i) return false;
  return true;
}
static_assert(static_cast<int>(LayerKind::quantizer) + 1 == kLayerKindCount,
              "kLayerKindCount must count every LayerKind: add the new kind's row to kLayerTable");
static_assert(layer_table_in_enum_order(), "kLayerTable rows must be in LayerKind order, one per kind");

constexpr const LayerTraits& traits(LayerKind k) { return kLayerTable[static_cast<size_t>(k)]; }

// The float kind a model file names by `type` ("conv2d"), or nullopt.
constexpr std::optional<LayerKind> model_file_kind(std::string_view type) {
  for (const LayerTraits& t : kLayerTable)
    if (t.model_file && t.name == type) return t.kind;
  return std::nullopt;
}

}  // namespace lowbit::nn
